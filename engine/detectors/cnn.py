"""``deepfake.cnn``: seed 3's 2D CNN face classifier with Grad-CAM (spec §3.2, §3.6).

"Detecting Deepfakes with Metric Learning" (Kumar, Bhavsar [, Verma], IWBF 2020),
``02.evaluate_CNN.py`` + ``grad_cam_visualize.py``. Read top to bottom:

* **id / task**: ``deepfake.cnn`` / ``deepfake``.
* **input spec**: the main face track (track 0) of the shared
  :class:`engine.pipeline.MediaClip`, cropped with ``mtcnn_margin40_160``
  (facenet-pytorch ``extract_face``, margin 40, 160×160, §3.1). Frames: the clip's
  sampling policy (default 32 uniformly over the duration); the seed took the
  first 25 frames with a face — recorded in the card's quirks.
* **preprocess**: :func:`engine.models.cnn.preprocess_crops` (RGB /255, plus
  ImageNet mean/std when the card's ``init`` is ImageNet) — the trainer's function.
* **model**: :class:`engine.models.cnn.CNN` from the card's config; weights from
  ``model.safetensors`` (SHA-256 verified; float16 storage is cast back to float32).
* **frame -> video**: per crop softmax P(fake) (logit order ``["real", "fake"]``);
  video score = **mean** of the frame P(fake) (the seed's mean of the softmax
  vectors, §3.2); threshold **0.5** (the seed's argmax of two classes).
* **explanation**: Grad-CAM (pytorch-grad-cam via :func:`engine.explain.gradcam_maps`)
  of the fake logit at the backbone's last activation (Xception ``act4`` =
  Keras ``block14_sepconv2_act``, §3.6; EfficientNet ``bn2``), ``(160, 160)``
  ``float16`` in [0, 1] in crop coordinates, key ``f<frame_index>``; each map is
  min-max normalised on its own (the library's rule; not comparable across frames).
  The seed switched the last Dense to linear and explained the argmax class; here
  the target is always the fake logit (pre-softmax, linear as in the seed).
* **features**: :meth:`CNNDetector.clip_features` gives the 512-d ``fc1``
  activations per crop and caches them on the clip under
  ``("deepfake.cnn", "fc1", weights_sha256)`` so ``deepfake.cnn_lstm`` reuses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["CNNDetector", "ClipFeatures"]


class ClipFeatures:
    """The ``fc1`` features of a clip's main-track crops (cached per clip and weights).

    Attributes:
        crops: ``list[(Frame, FaceCrop)]`` of the main face track, in frame order.
        features: ``float32 (M, 512)`` ``fc1`` activations (eval mode), one row per crop.
        probs: ``float32 (M,)`` P(fake) of each crop from the same forward pass.
    """

    def __init__(self, crops: list, features: np.ndarray, probs: np.ndarray):
        self.crops, self.features, self.probs = crops, features, probs


@register_detector("deepfake.cnn")
class CNNDetector:
    """Seed 3's 2D CNN detector (spec §3.2).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.cnn")``.
        batch_size: crops per forward pass.
        explain: compute Grad-CAM maps.

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not a ``cnn`` model.
    """

    id: ClassVar[str] = "deepfake.cnn"
    task: ClassVar[str] = "deepfake"
    crop_policy: ClassVar[str] = "mtcnn_margin40_160"
    track: ClassVar[int] = 0
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = ("mean of per-crop softmax P(fake) over the main face track's sampled frames "
                                  "(seed 3 §3.2: mean of the frame softmax vectors)")

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, batch_size: int = 16,
                 explain: bool = True):
        from engine.models import create_model

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "cnn":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'cnn'")
        self.model = create_model("cnn", self.card.config)
        model_state = self.model.state_dict()
        # float16 storage (bundled weights) is cast back to the model's dtype
        self.model.load_state_dict({k: v.to(model_state[k].dtype) for k, v in state.items()})
        self.model.to(self.device).eval()
        self.normalize = bool(self.model.config.normalize)
        self.batch_size = batch_size
        self.explain = explain

    # ------------------------------------------------------------------ scoring
    def _input(self, crops_rgb: np.ndarray) -> torch.Tensor:
        from engine.models.cnn import preprocess_crops

        return preprocess_crops(crops_rgb, normalize=self.normalize, image_size=self.model.config.image_size)

    @torch.no_grad()
    def fc1_features(self, crops_rgb: np.ndarray, check: Callable[[], None] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``fc1`` features and P(fake) of ``mtcnn_margin40_160`` crops (spec §3.4 per-frame features).

        The one feature function: the detector, ``deepfake.cnn_lstm`` and its trainer call it.

        Args:
            crops_rgb: ``uint8 (N, 160, 160, 3)`` RGB crops.
            check: called between batches (e.g. ``clip.check_cancel``).

        Returns:
            ``(features float32 (N, 512), P(fake) float32 (N,))``.
        """
        feats, probs = [], []
        for start in range(0, len(crops_rgb), self.batch_size):
            if check:
                check()
            x = self._input(crops_rgb[start : start + self.batch_size]).to(self.device)
            f = self.model.features(x)
            feats.append(f.float().cpu().numpy())
            probs.append(torch.softmax(self.model.fc2(f).float(), 1)[:, 1].cpu().numpy())
        if not feats:
            return np.zeros((0, self.model.config.hidden), np.float32), np.zeros(0, np.float32)
        return np.concatenate(feats).astype(np.float32), np.concatenate(probs).astype(np.float32)

    def clip_features(self, clip: MediaClip) -> ClipFeatures:
        """Main-track crops + ``fc1`` features + P(fake), computed once per clip and weights.

        Cached through ``clip.cached(("deepfake.cnn", "fc1", weights_sha256), ...)``.
        """

        def compute() -> ClipFeatures:
            crops = clip.face_crops(self.crop_policy, self.track)
            if not crops:
                return ClipFeatures([], np.zeros((0, self.model.config.hidden), np.float32), np.zeros(0, np.float32))
            with clip.cancellable(self.model):
                f, p = self.fc1_features(np.stack([c.image for _, c in crops]), clip.check_cancel)
            return ClipFeatures(crops, f, p)

        return clip.cached(("deepfake.cnn", "fc1", self.card.sha256), compute)

    def score_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) of face images given directly (image datasets), ``float32 (N,)``.

        Each image is treated as its own face box and cropped with ``mtcnn_margin40_160``
        (so the 40-px margin is added around the whole image, clamped to it, then resized
        to 160×160), then scored.
        """
        from engine.faces import FaceBox, crop_face

        if not crops:
            return np.zeros(0, np.float32)
        sized = [crop_face(c, FaceBox(0.0, 0.0, float(c.shape[1]), float(c.shape[0]), 1.0), self.crop_policy).image
                 for c in crops]
        return self.fc1_features(np.stack(sized))[1]

    # ------------------------------------------------------------------ analysis
    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the main face track's crops, aggregate by the mean, and Grad-CAM each crop.

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` when no face was found).
        """
        from engine.explain import gradcam_maps

        layer = "backbone.act4 (Keras block14_sepconv2_act)" if self.model.config.backbone == "xception" \
            else "backbone.bn2 (head conv + BN + activation)"
        params = {"crop_policy": self.crop_policy, "track": self.track, "threshold": self.threshold,
                  "batch_size": self.batch_size, "explain": self.explain, "backbone": self.model.config.backbone,
                  "input": "RGB /255" + (" + ImageNet mean/std" if self.normalize else ""),
                  "gradcam_layer": layer, "gradcam_target": "fake logit (pre-softmax)",
                  "gradcam_normalisation": "min-max per crop (pytorch-grad-cam)"}
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        feats = self.clip_features(clip)
        crops = feats.crops
        if not crops:
            return DetectorResult(status="skipped", message="no face track in the sampled frames", **base)
        if progress:
            progress(0.3 if self.explain else 1.0)
        heat: dict[str, np.ndarray] = {}
        if self.explain:
            x_all = self._input(np.stack([c.image for _, c in crops]))
            n = len(crops)
            with clip.cancellable(self.model):
                for start in range(0, n, self.batch_size):
                    clip.check_cancel()
                    x = x_all[start : start + self.batch_size].to(self.device)
                    # backward only down to the Grad-CAM layer: the same maps, no backbone weight grads
                    cam = gradcam_maps(self.model, self.model.gradcam_layer(), x, target=1, truncate=True)
                    for j in range(len(x)):
                        heat[f"f{crops[start + j][0].index}"] = cam.maps[j].astype(np.float16)
                    if progress:
                        progress(0.3 + 0.7 * min(1.0, (start + self.batch_size) / n))
        p = feats.probs
        scores = [
            FrameScore(f.index, f.pts, float(pi), self.track,
                       [round(float(v), 2) for v in (c.box.x1, c.box.y1, c.box.x2, c.box.y2)],
                       f"f{f.index}" if self.explain else None, c.placement)
            for (f, c), pi in zip(crops, p)
        ]
        score = float(np.mean(p))
        return DetectorResult(
            score=score, label="fake" if score > self.threshold else "real",
            class_probs={"real": 1.0 - score, "fake": score}, frame_scores=scores, heatmaps=heat,
            explanations={"Grad-CAM": "f{frame}"} if self.explain else {}, **base,
        )
