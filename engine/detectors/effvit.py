"""``deepfake.effvit``: EfficientNet-B0 + ViT face classifier with attention-relevancy maps.

Seed 2 (spec/seeds.md §2), "Explainable Attention Based Deepfake Detector"
(after Coccomini et al., "Combining EfficientNet and Vision Transformers";
relevancy after Chefer et al., ICCV 2021). Read top to bottom:

* **id / task**: ``deepfake.effvit`` / ``deepfake``.
* **input spec**: the main face track (track 0) of the shared
  :class:`engine.pipeline.MediaClip`, cropped with ``effvit_square224`` (box
  padded to a square, no margin, isotropic resize + zero pad to 224; §2.1).
  Frames: the clip's sampling policy (default 32 uniformly over the duration:
  the equidistant sampling seed 2 intended, not its listdir quirk).
* **preprocess**: :func:`engine.models.effvit.preprocess_crops` (RGB → BGR,
  raw 0–255 floats, no normalisation, as the seed's model reads) — the same
  function the trainer calls.
* **model**: :class:`engine.models.effvit.EffViT` rebuilt from the card's
  config, weights from ``model.safetensors`` (SHA-256 verified).
* **frame -> video**: P(fake) = sigmoid(logit) per crop; video score = **mean**
  of the frame probabilities (§2.4, one face track); decision threshold
  **0.55** (§2.4 ``custom_round``).
* **explanation**: per crop, three views, each ``(224, 224)`` in [0, 1]:
  ``relevancy`` (key ``f<frame_index>``): Chefer relevancy (rules 5 and 6,
  §2.5) carried onto the 7×7 feature-map cells through the token embedding
  (:func:`engine.explain.spatial_relevancy_maps`; the tokens themselves have no
  location), the view whose blanking test is in the model card;
  ``relevancy (seed token grid)`` (key ``tokens/f<frame_index>``): the seed's
  picture, token relevance laid out on a 32×32 grid; and ``Grad-CAM`` on the
  last MBConv stage (key ``gradcam/f<frame_index>``). Both are ``float16`` in crop coordinates;
  ``FaceCrop.heatmap_to_frame`` maps them onto the frame. All three views and the
  crop's score come from one shared forward/backward per ``explain_batch`` crops
  (:func:`engine.explain.relevancy_gradcam_maps`); without ``explain`` a plain
  no-grad forward scores the crops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, cache_track_crops, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["EffViTDetector"]


@register_detector("deepfake.effvit")
class EffViTDetector:
    """Seed 2's EfficientNet-B0 + ViT detector.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.effvit")``.
        batch_size: crops per forward pass.
        explain: compute relevancy and Grad-CAM maps (the costly part on CPU).
        explain_batch: crops per shared relevancy + Grad-CAM forward/backward. Memory grows
            with it (the transformer blocks are recomputed in the backward pass, so one
            block's ``8 x 1025 x 1025`` attention and its gradient are alive at a time:
            about 0.3 GB per crop on CPU at the peak), while the per-crop time hardly
            changes; so one crop at a time by default (each crop's maps do not depend on
            the others in its batch).

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not an ``effvit`` model.
    """

    id: ClassVar[str] = "deepfake.effvit"
    task: ClassVar[str] = "deepfake"
    crop_policy: ClassVar[str] = "effvit_square224"
    track: ClassVar[int] = 0
    #: caches this detector's face crops before the pipeline releases the frames' pixels
    cache_frame_inputs = classmethod(cache_track_crops)
    threshold: ClassVar[float] = 0.55
    aggregation: ClassVar[str] = "mean of per-crop sigmoid P(fake) over the main face track (seed 2 §2.4)"

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, batch_size: int = 8,
                 explain: bool = True, explain_batch: int = 1):
        from engine.models import create_model

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "effvit":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'effvit'")
        self.model = create_model("effvit", self.card.config)
        self.model.load_state_dict(state)
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.explain = explain
        self.explain_batch = max(1, int(explain_batch))

    def score_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) of face images given directly (image datasets), ``float32 (N,)``.

        Each image is treated as its own face box and cropped with the
        ``effvit_square224`` policy (isotropic resize + pad to 224), then scored.
        """
        from engine.faces import FaceBox, crop_face
        from engine.models.effvit import preprocess_crops

        if not crops:
            return np.zeros(0, np.float32)
        sized = [crop_face(c, FaceBox(0.0, 0.0, float(c.shape[1]), float(c.shape[0]), 1.0), self.crop_policy).image
                 for c in crops]
        x_all = preprocess_crops(np.stack(sized))
        out = []
        with torch.no_grad():
            for start in range(0, len(x_all), self.batch_size):
                x = x_all[start : start + self.batch_size].to(self.device)
                out.append(torch.sigmoid(self.model(x)[:, 0]).float().cpu().numpy())
        return np.concatenate(out)

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the main face track's crops, aggregate, and explain each crop.

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` when no face was found).
        """
        from engine.explain import relevancy_gradcam_maps, tokens_to_grid
        from engine.models.effvit import preprocess_crops

        params = {"crop_policy": self.crop_policy, "track": self.track, "threshold": self.threshold,
                  "batch_size": self.batch_size, "explain": self.explain, "explain_batch": self.explain_batch,
                  "relevancy": "Chefer rules 5+6; token relevance split over the 7x7 cells by |grad x input| of "
                               "the token embedding; bilinear x32, min-max per crop",
                  "relevancy (seed token grid)": "Chefer rules 5+6, 32x32 token grid, AvgPool2d(2), bilinear x14, "
                                                 "min-max per crop (seed 2 §2.5 picture; tokens have no location)",
                  "gradcam_layer": "efficient_net.features[7] (last MBConv stage)"}
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        crops = clip.face_crops(self.crop_policy, self.track)
        if not crops:
            return DetectorResult(status="skipped", message="no face track in the sampled frames", **base)
        frames = [f for f, _ in crops]
        x_all = preprocess_crops(np.stack([c.image for _, c in crops]))
        probs, heat = [], {}
        n = len(crops)
        with clip.cancellable(self.model):  # a cancel stops inside a forward pass, not after the batch
            for start in range(0, n, self.batch_size):
                clip.check_cancel()
                x = x_all[start : start + self.batch_size].to(self.device)
                if not self.explain:
                    with torch.no_grad():
                        probs.append(torch.sigmoid(self.model(x)[:, 0]).float().cpu().numpy())
                for sub in range(0, len(x) if self.explain else 0, self.explain_batch):
                    xs = x[sub : sub + self.explain_batch]  # a few crops at a time: bounded memory
                    # one forward/backward gives the score, both relevancy views and Grad-CAM
                    # (backward only down to the Grad-CAM layer: no backbone weight grads)
                    ex = relevancy_gradcam_maps(self.model, xs, self.model.gradcam_layer(),
                                                batch_size=self.explain_batch)
                    probs.append(1.0 / (1.0 + np.exp(-ex.logits[:, 0].astype(np.float64))))
                    clip.check_cancel()
                    for j in range(len(xs)):
                        idx = frames[start + sub + j].index
                        heat[f"f{idx}"] = tokens_to_grid(ex.cells[j], pool=1).astype(np.float16)
                        heat[f"tokens/f{idx}"] = tokens_to_grid(ex.tokens[j]).astype(np.float16)
                        heat[f"gradcam/f{idx}"] = ex.gradcam.maps[j].astype(np.float16)
                    del ex
                    if progress:  # explanations take seconds per crop on CPU: report each one
                        progress(min(1.0, (start + sub + len(xs)) / n))
                if progress:
                    progress(min(1.0, (start + self.batch_size) / n))
        p = np.concatenate(probs).astype(np.float32)
        scores = [
            FrameScore(f.index, f.pts, float(pi), self.track,
                       [round(float(v), 2) for v in (c.box.x1, c.box.y1, c.box.x2, c.box.y2)],
                       f"f{f.index}" if self.explain else None, c.placement)
            for (f, c), pi in zip(crops, p)
        ]
        score = float(p.mean())
        return DetectorResult(
            score=score, label="fake" if score > self.threshold else "real",
            class_probs={"real": 1.0 - score, "fake": score}, frame_scores=scores, heatmaps=heat,
            explanations={"relevancy": "f{frame}", "relevancy (seed token grid)": "tokens/f{frame}",
                          "Grad-CAM": "gradcam/f{frame}"} if self.explain else {}, **base,
        )
