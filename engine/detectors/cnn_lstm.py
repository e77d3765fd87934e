"""``deepfake.cnn_lstm``: seed 3's CNN-LSTM over the frozen ``deepfake.cnn`` ``fc1`` features (spec §3.4).

"Detecting Deepfakes with Metric Learning" (Kumar, Bhavsar [, Verma], IWBF 2020),
``05.lstm_features.py`` / ``07.evaluate_CNN_LSTM.py``. Read top to bottom:

* **id / task**: ``deepfake.cnn_lstm`` / ``deepfake``. Needs two weight folders:
  its own and the ``deepfake.cnn`` weights its features come from
  (``requires_weights``); the card's ``config.cnn_sha256`` must equal the installed
  ``deepfake.cnn`` weights' SHA-256, else loading fails naming both hashes.
* **input spec**: the main face track's ``mtcnn_margin40_160`` crops over the clip's
  sampled frames (default 32 uniformly over the duration), through
  :meth:`engine.detectors.cnn.CNNDetector.clip_features` (512-d ``fc1`` per crop, cached
  on the clip, so running ``deepfake.cnn`` too costs no second forward pass). The
  sequence is the **first** ``seq_length`` (25) of those crops, as the seed took the
  first 25 frames with a face; shorter tracks are padded and masked.
* **model**: :class:`engine.models.cnn_lstm.CNNLSTM` (variant from the card).
* **frame -> video**: one sequence per video (seed); video score = softmax P(fake) of the
  whole sequence; threshold **0.5**. Per-frame scores: ``FrameScore.score`` of the frame at
  sequence position t is P(fake) of the **sequence prefix** ending at t (frames 0..t), i.e.
  what the model concluded having seen the video up to that frame; frames after the
  first ``seq_length`` get no score.
* **explanation**: temporal saliency, ``plots["temporal saliency"]``: for each frame t,
  ``|| d fake_logit / d feature_t ||_2`` of the whole-sequence fake logit, divided by its
  maximum over the sequence (so in [0, 1]), on the PTS time axis (seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, make_plot, register_detector, resolve_device
from engine.weights import WeightsError, find_model_dir, load_weights

__all__ = ["CNNLSTMDetector", "CNNMismatch"]


class CNNMismatch(WeightsError):
    """The installed ``deepfake.cnn`` weights are not the ones ``deepfake.cnn_lstm`` was trained on."""


@register_detector("deepfake.cnn_lstm")
class CNNLSTMDetector:
    """Seed 3's CNN-LSTM detector (spec §3.4).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: ``deepfake.cnn_lstm`` weights; default ``find_model_dir("deepfake.cnn_lstm")``.
        cnn_model_dir: ``deepfake.cnn`` weights; default ``find_model_dir("deepfake.cnn")``.
        batch_size: crops per CNN forward pass.
        explain: compute the temporal saliency plot.

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        CNNMismatch: the ``deepfake.cnn`` weights differ from those the LSTM was trained on.
        ValueError: the card is not a ``cnn_lstm`` model.
    """

    id: ClassVar[str] = "deepfake.cnn_lstm"
    task: ClassVar[str] = "deepfake"
    requires_weights: ClassVar[tuple[str, ...]] = ("deepfake.cnn_lstm", "deepfake.cnn")
    track: ClassVar[int] = 0
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = ("one sequence per video: softmax P(fake) of the CNN-LSTM over the first "
                                  "seq_length main-track frames (seed 3 §3.4); frame score = P(fake) of the "
                                  "sequence prefix ending at that frame")

    @staticmethod
    def cache_frame_inputs(clip: MediaClip) -> None:
        """Cache the ``deepfake.cnn`` face crops this detector reads, before the pipeline releases the frames."""
        from engine.detectors.cnn import CNNDetector

        CNNDetector.cache_frame_inputs(clip)

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None,
                 cnn_model_dir: str | Path | None = None, batch_size: int = 4, explain: bool = True):
        from engine.detectors.cnn import CNNDetector
        from engine.models import create_model

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "cnn_lstm":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'cnn_lstm'")
        self.cnn = CNNDetector(device=device, model_dir=cnn_model_dir, batch_size=batch_size, explain=False)
        wanted = self.card.config.get("cnn_sha256", "")
        if wanted != self.cnn.card.sha256:
            raise CNNMismatch(
                f"deepfake.cnn_lstm ({self.model_dir}) was trained on deepfake.cnn features of weights "
                f"{wanted or '(not recorded)'}, but the deepfake.cnn weights found ({self.cnn.model_dir}) are "
                f"{self.cnn.card.sha256}; install the matching deepfake.cnn weights or retrain deepfake.cnn_lstm")
        self.model = create_model("cnn_lstm", self.card.config)
        ms = self.model.state_dict()
        self.model.load_state_dict({k: v.to(ms[k].dtype) for k, v in state.items()})
        self.model.to(self.device).eval()
        self.explain = explain

    def sequence_scores(self, features: np.ndarray) -> tuple[float, np.ndarray]:
        """Whole-sequence and prefix P(fake) of one feature sequence.

        Args:
            features: ``float32 (T, 512)``, ``1 <= T <= seq_length``.

        Returns:
            ``(P(fake) of all T frames, float32 (T,) P(fake) of prefixes 0..t)``.
        """
        t = len(features)
        x = torch.from_numpy(np.ascontiguousarray(features, np.float32)).to(self.device)
        prefixes = x[None].expand(t, -1, -1)  # row t-1 masked to its first t frames
        with torch.no_grad():
            p = torch.softmax(self.model(prefixes, torch.arange(1, t + 1)), 1)[:, 1].float().cpu().numpy()
        return float(p[-1]), p.astype(np.float32)

    def temporal_saliency(self, features: np.ndarray) -> np.ndarray:
        """``float32 (T,)`` in [0, 1]: ``||d fake_logit / d feature_t||_2`` / its maximum (0s if all zero)."""
        x = torch.from_numpy(np.ascontiguousarray(features, np.float32))[None].to(self.device).requires_grad_(True)
        with torch.enable_grad():
            self.model(x)[0, 1].backward()
        g = x.grad[0].norm(dim=1).cpu().numpy().astype(np.float32)
        m = float(g.max())
        return g / m if m > 0 else g

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the main face track's first ``seq_length`` frames as one sequence.

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` when no face was found).
        """
        L = int(self.model.config.seq_length)
        params = {"track": self.track, "threshold": self.threshold, "variant": self.model.config.variant,
                  "seq_length": L, "features": f"deepfake.cnn fc1 (512-d), weights {self.cnn.card.sha256}",
                  "crop_policy": self.cnn.crop_policy, "explain": self.explain,
                  "saliency": "L2 norm over the 512 features of d(fake logit)/d(feature_t), divided by its max"}
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        feats = self.cnn.clip_features(clip)
        if not feats.crops:
            return DetectorResult(status="skipped", message="no face track in the sampled frames", **base)
        if progress:
            progress(0.7)
        clip.check_cancel()
        crops = feats.crops[:L]
        f = feats.features[:L]
        score, prefix = self.sequence_scores(f)
        plots = {}
        if self.explain:
            sal = self.temporal_saliency(f)
            plots["temporal saliency"] = make_plot(
                [fr.pts for fr, _ in crops], {"saliency": sal.tolist()}, "time (s)", "saliency (normalised)",
                kind="timeline",
                note=("How strongly each frame's CNN features move the sequence's fake logit (gradient L2 norm, "
                      "1 = the most influential frame); it shows which frames the LSTM relied on, not where a "
                      "manipulation is."))
        scores = [
            FrameScore(fr.index, fr.pts, float(pi), self.track,
                       [round(float(v), 2) for v in (c.box.x1, c.box.y1, c.box.x2, c.box.y2)], None, c.placement)
            for (fr, c), pi in zip(crops, prefix)
        ]
        if progress:
            progress(1.0)
        return DetectorResult(
            score=score, label="fake" if score > self.threshold else "real",
            class_probs={"real": 1.0 - score, "fake": score}, frame_scores=scores, plots=plots,
            details={"frames_in_sequence": len(crops), "frames_with_face": len(feats.crops)}, **base,
        )
