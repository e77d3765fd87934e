"""``deepfake.triplet``: face embedding -> semi-hard triplet network -> classifier, explained by nearest references.

Seed 3 (spec/seeds.md §3.5), "Deepfake detection with metric learning"
(arXiv 2003.08645). Read top to bottom:

* **id / task**: ``deepfake.triplet`` / ``deepfake``.
* **input spec**: the main face track (track 0) of the shared
  :class:`engine.pipeline.MediaClip`, cropped with ``mtcnn_margin40_160``
  (facenet-pytorch ``extract_face``, margin 40, 160x160; §3.1). Frames: the
  clip's sampling policy (seed 3 read the first 25 frames of the video).
* **preprocess**: :func:`engine.models.triplet.preprocess_faces` (RGB/255,
  ImageNet mean/std) — the same function the trainer calls.
* **model**: :class:`engine.models.triplet.TripletModel` (512-d face embedding,
  then the spec's TNN 512-256-256-128-64) and a classifier on the 64-d output,
  all from one ``model.safetensors`` (SHA-256 verified, never unpickled; the
  scikit-learn classifiers are stored as arrays and run in numpy). Default
  classifier: the card's ``default_classifier`` (SGD, seed 3's evaluation).
* **frame -> video**: P(fake) per crop = classifier ``predict_proba``; video
  score = **mean** of the frame probabilities; video label = **majority vote**
  of the frame labels (fake when the fraction of frames with P(fake) > 0.5
  is >= 0.5; §3.5 step 3). Label and score can therefore disagree near 0.5;
  ``details["vote_fraction"]`` holds the fraction.
* **explanation**: nearest references. The weights carry a bank of up to 400
  training faces (balanced real / self-blended fake) with their 64-d TNN
  embeddings and 48x48 thumbnails. For each scored frame the k = 5 nearest real
  and 5 nearest fake references (squared L2 in the 64-d space) go to
  ``details["nearest_references"]``; the thumbnails of referenced ids to
  ``heatmaps["refs/<id>"]`` (``uint8 (48, 48, 3)`` RGB, not a heatmap); and the
  mean distance to each class's 5 nearest references over time to
  ``plots["distance to nearest references"]`` (a score-timeline plot).
  No map is overlaid on the frame (``FrameScore.heatmap_key`` is None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, cache_track_crops, make_plot, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["TripletDetector"]


@register_detector("deepfake.triplet")
class TripletDetector:
    """Seed 3's metric-learning detector.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (networks only; classifiers run in numpy).
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.triplet")``.
        classifier: ``"sgd"``, ``"rf"``, ``"logreg"`` or ``"knn"``; None = the card's default.
        batch_size: crops per forward pass (8: about 100 MB less peak memory than 32 on CPU,
            and no slower there).
        explain: compute the nearest references (cheap; off skips them).

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not a ``triplet`` model, or the classifier is not in the weights.
    """

    id: ClassVar[str] = "deepfake.triplet"
    task: ClassVar[str] = "deepfake"
    crop_policy: ClassVar[str] = "mtcnn_margin40_160"
    track: ClassVar[int] = 0
    #: caches this detector's face crops before the pipeline releases the frames' pixels
    cache_frame_inputs = classmethod(cache_track_crops)
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = ("score = mean of frame predict_proba P(fake); label = majority vote of frame "
                                  "labels (fake if >= 50% of frames have P(fake) > 0.5), seed 3 §3.5")

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, classifier: str | None = None,
                 batch_size: int = 8, explain: bool = True):
        from engine.models.triplet import TripletConfig, bundle_from_state

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "triplet":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'triplet'")
        self.config = TripletConfig(**self.card.config)
        bundle = bundle_from_state(state, self.config)
        self.model = bundle.model.to(self.device).eval()
        self.classifiers = bundle.classifiers
        self.references = bundle.references
        self.classifier_name = classifier or self.config.default_classifier
        if self.classifier_name not in self.classifiers:
            raise ValueError(f"classifier {self.classifier_name!r} not in the weights "
                             f"({', '.join(self.classifiers)})")
        self.classifier = self.classifiers[self.classifier_name]
        self.batch_size = batch_size
        self.explain = explain

    # ------------------------------------------------------------------ scoring
    def embed(self, crops: np.ndarray, clip: MediaClip | None = None,
              progress: Callable[[float], None] | None = None) -> np.ndarray:
        """64-d TNN embeddings of ``uint8 (N, 160, 160, 3)`` RGB crops, ``float32 (N, 64)``."""
        from engine.models.triplet import preprocess_faces

        x_all = preprocess_faces(crops, self.config.image_size)
        out = []
        with torch.no_grad():
            for start in range(0, len(x_all), self.batch_size):
                if clip is not None:
                    clip.check_cancel()
                out.append(self.model(x_all[start : start + self.batch_size].to(self.device)).float().cpu().numpy())
                if progress:
                    progress(min(1.0, (start + self.batch_size) / len(x_all)))
        return np.concatenate(out) if out else np.zeros((0, self.config.out_dim), np.float32)

    def p_fake(self, z: np.ndarray) -> np.ndarray:
        """P(fake) ``float64 (N,)`` of 64-d embeddings with the chosen classifier."""
        from engine.models.triplet import p_fake

        return p_fake(self.classifier, z)

    def score_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) of face images given directly (image datasets), ``float32 (N,)``.

        Each image is treated as its own face box and cropped with the
        ``mtcnn_margin40_160`` policy (margin clamped to the image, stretched to 160x160).
        """
        from engine.faces import FaceBox, crop_face

        if not crops:
            return np.zeros(0, np.float32)
        sized = np.stack([crop_face(c, FaceBox(0.0, 0.0, float(c.shape[1]), float(c.shape[0]), 1.0),
                                    self.crop_policy).image for c in crops])
        return self.p_fake(self.embed(sized)).astype(np.float32)

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the main face track's crops, vote, and list the nearest references per frame.

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` when no face was found).
        """
        k = int(self.config.k_nearest)
        params = {"crop_policy": self.crop_policy, "track": self.track, "threshold": self.threshold,
                  "classifier": self.classifier_name, "batch_size": self.batch_size, "explain": self.explain,
                  "k_nearest": k, "references": int(len(self.references.labels)),
                  "distance": "squared L2 in the 64-d triplet-network space"}
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        crops = clip.face_crops(self.crop_policy, self.track)
        if not crops:
            return DetectorResult(status="skipped", message="no face track in the sampled frames", **base)
        with clip.cancellable(self.model):
            z = self.embed(np.stack([c.image for _, c in crops]), clip, progress)
        p = self.p_fake(z)
        vote = float(np.mean(p > 0.5))
        score = float(p.mean())
        scores = [
            FrameScore(f.index, f.pts, float(pi), self.track,
                       [round(float(v), 2) for v in (c.box.x1, c.box.y1, c.box.x2, c.box.y2)], None, c.placement)
            for (f, c), pi in zip(crops, p)
        ]
        details: dict = {"vote_fraction": vote, "classifier": self.classifier_name}
        heat: dict[str, np.ndarray] = {}
        plots: dict = {}
        if self.explain:
            near = self.references.nearest(z, k)
            frames_out, used = [], set()
            for (f, _), nb in zip(crops, near):
                frames_out.append({"frame_index": int(f.index), "pts": float(f.pts),
                                   "real": [[i, round(d, 6)] for i, d in nb["real"]],
                                   "fake": [[i, round(d, 6)] for i, d in nb["fake"]]})
                used.update(i for i, _ in nb["real"] + nb["fake"])
            details["nearest_references"] = {"k": k, "frames": frames_out}
            for i in sorted(used):
                heat[f"refs/{i}"] = self.references.thumbnails[i]
            plots["distance to nearest references"] = make_plot(
                [f.pts for f, _ in crops],
                {f"real (mean of {k} nearest)": [float(np.mean([d for _, d in nb["real"]])) for nb in near],
                 f"self-blended fake (mean of {k} nearest)": [float(np.mean([d for _, d in nb["fake"]])) for nb in near]},
                "time (s)", "squared L2 distance", kind="timeline",
                note="Mean squared distance, in the triplet network's 64-d space, from each frame's face to its "
                     f"{k} nearest real and {k} nearest self-blended training faces; a face closer to the fakes than to "
                     "the reals looks more like the self-blended training fakes.")
        return DetectorResult(
            score=score, label="fake" if vote >= 0.5 else "real",
            class_probs={"real": 1.0 - score, "fake": score}, frame_scores=scores, heatmaps=heat,
            explanations={}, plots=plots, details=details, **base,
        )
