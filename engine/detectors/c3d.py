"""``deepfake.c3d``: C3D on clips of face crops, with Grad-CAM (3D) maps.

Seed 3 (spec/seeds.md §3.3 model and data, §3.6 Grad-CAM), after Tran et al.,
"Learning Spatiotemporal Features with 3D Convolutional Networks" (ICCV 2015).
Read top to bottom:

* **id / task**: ``deepfake.c3d`` / ``deepfake``.
* **input spec**: the main face track (track 0) of the shared
  :class:`engine.pipeline.MediaClip`, cropped with ``mtcnn_margin40_160`` (the
  seed's C3D reads the MTCNN 160x160 faces, §3.1). Frames: the clip's sampling
  policy (default 32 uniformly over the video), so a clip's temporal stride is
  the sampling stride (the trainer takes every 2nd frame of a 64-frame cache to
  match).
* **clips**: the crops of the track, in frame order, are cut into consecutive
  **non-overlapping** clips of ``T = clip_len`` frames (16 by default: 32
  sampled frames give 2 clips); a last clip shorter than ``T`` (also the single
  clip of a track shorter than ``T``) is padded by repeating its last frame.
  Frames without a face are not part of the track, so a clip may skip them.
* **preprocess**: :func:`engine.models.c3d.preprocess_clips` (resize to 171x128,
  centre crop rows 8:120, columns 30:142, /255) — the function the trainer calls.
* **model**: :class:`engine.models.c3d.C3D` rebuilt from the card's config,
  weights from ``model.safetensors`` (SHA-256 verified).
* **clip -> video**: P(fake) = softmax(logits)[1] per clip; video score = **mean
  of the clips' P(fake)** (each clip counts once, padded or not); threshold 0.5.
  Each frame's :class:`FrameScore` carries its clip's P(fake).
* **explanation**: Grad-CAM (3D) of the **predicted class**'s logit (pre-softmax,
  as the seed switched its last layer to linear; the class is the argmax of the
  video's mean prediction, as seed 3 §3.6 chose ``class_idx``; ``gradcam_target``
  can force ``"fake"`` or ``"real"``) at the ReLU of ``conv5b`` (the last conv
  layer, the usual Grad-CAM layer and §3.6's choice for Xception;
  ``gradcam_layer="conv4b"`` gives (T/4, 14, 14) cells) through pytorch-grad-cam's
  ``GradCAM`` (5-D activations supported). The class explained is in
  ``details["gradcam_class"]``: a map for "real" shows what made the clip look
  real, not a manipulation. Grad-CAM of a class with no positive evidence in a
  clip is all zero (ReLU of a negative map). The ``(T/8, 7, 7)`` volume is
  upsampled to ``(T, 112, 112)`` by the library (``scipy.ndimage.zoom``, cubic,
  clipped to [0, 1]) and min-max normalised **per clip** (all frames of a clip
  share one scale; clips are not comparable). Each frame's 112x112 map is placed
  back into the 160x160 crop coordinates by the exact inverse of the resize +
  centre crop (:func:`engine.models.c3d.model_map_to_crop`, zeros outside the 112
  window): heatmap key ``f<frame_index>``, ``float16 (160, 160)``; view
  "Grad-CAM (3D)".
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, cache_track_crops, register_detector, resolve_device
from engine.weights import find_model_dir, load_weights

__all__ = ["C3DDetector", "clip_chunks", "gradcam3d"]


def clip_chunks(n: int, clip_len: int) -> list[np.ndarray]:
    """Non-overlapping clips over ``n`` frames: ``int64 (clip_len,)`` index arrays.

    Consecutive chunks of ``clip_len``; the last one, if shorter, is padded by
    repeating its last index (so ``n < clip_len`` gives one padded clip). ``[]`` if ``n == 0``.
    The trainer's held-out evaluation uses the same rule (``trainer.c3d_fit.clip_windows``).
    """
    return [np.minimum(np.arange(s, s + clip_len), n - 1).astype(np.int64) for s in range(0, max(n, 0), clip_len)]


def gradcam3d(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, target: int = 1) -> np.ndarray:
    """Grad-CAM (3D) of class ``target``'s logit at a 3-D conv layer, via pytorch-grad-cam.

    Args:
        model: e.g. :class:`engine.models.c3d.C3D` (run in ``eval()``, mode restored).
        layer: module with a ``(B, C, t, h, w)`` output (``C3D.gradcam_layer()``).
        x: ``float32 (B, 3, T, H, W)`` model input.
        target: logit index (1 = fake).

    Returns:
        ``float32 (B, T, H, W)`` in [0, 1], input coordinates; ``ReLU(sum_c mean_thw(dy/dA_c) A_c)``
        upsampled by the library (cubic ``scipy.ndimage.zoom``, then clipped to [0, 1]) and
        min-max normalised per clip.
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from engine.explain import gradcam_context

    with gradcam_context(model, layer) as cam, torch.enable_grad():
        xin = x.detach().to(cam.device).requires_grad_(True)
        maps = cam(input_tensor=xin, targets=[ClassifierOutputTarget(target)] * len(x))
    maps = np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0)
    if maps.shape != (x.shape[0], *x.shape[2:]):
        raise RuntimeError(f"Grad-CAM (3D) returned {maps.shape}, expected {(x.shape[0], *x.shape[2:])}")
    return maps


@register_detector("deepfake.c3d")
class C3DDetector:
    """Seed 3's C3D clip classifier.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("deepfake.c3d")``.
        batch_size: clips per forward pass.
        explain: compute Grad-CAM (3D) maps.
        gradcam_layer: ``"conv5b"`` (default, last conv layer) or e.g. ``"conv4b"``.
        gradcam_target: ``"predicted"`` (default, seed 3 §3.6), ``"fake"`` or ``"real"``.

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not a ``c3d`` model, or an unknown ``gradcam_target``.
    """

    id: ClassVar[str] = "deepfake.c3d"
    task: ClassVar[str] = "deepfake"
    crop_policy: ClassVar[str] = "mtcnn_margin40_160"
    track: ClassVar[int] = 0
    #: caches this detector's face crops before the pipeline releases the frames' pixels
    cache_frame_inputs = classmethod(cache_track_crops)
    threshold: ClassVar[float] = 0.5
    aggregation: ClassVar[str] = ("mean of the clips' softmax P(fake); clips = consecutive non-overlapping chunks of "
                                  "clip_len sampled frames of the main face track, a short last chunk padded by "
                                  "repeating its last frame (seed 3 §3.3 scored one clip by argmax)")

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, batch_size: int = 2,
                 explain: bool = True, gradcam_layer: str = "conv5b", gradcam_target: str = "predicted"):
        from engine.models import create_model

        self.device = torch.device(resolve_device(device))
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(self.id)
        state, self.card = load_weights(self.model_dir, device="cpu")
        if self.card.architecture != "c3d":
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not 'c3d'")
        self.model = create_model("c3d", self.card.config)
        self.model.load_state_dict({k: v.float() for k, v in state.items()})  # float16 storage -> float32
        self.model.to(self.device).eval()
        self.model.gradcam_layer(gradcam_layer)  # KeyError now, not during analysis
        self.clip_len = int(self.model.config.clip_len)
        self.batch_size = batch_size
        self.explain = explain
        self.gradcam_layer = gradcam_layer
        if gradcam_target not in ("predicted", "fake", "real"):
            raise ValueError(f"gradcam_target must be 'predicted', 'fake' or 'real', got {gradcam_target!r}")
        self.gradcam_target = gradcam_target

    def _probs(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.model(x.to(self.device)).float(), dim=1)[:, 1].cpu().numpy()

    def score_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(fake) of a face-crop sequence given directly, one value per crop, ``float32 (N,)``.

        The crops (``uint8 (H, W, 3)`` RGB, in time order, e.g. 160x160 MTCNN faces) are
        resized to 160x160, cut into clips as in :meth:`analyze`, and each crop gets its clip's P(fake).
        """
        import cv2

        from engine.models.c3d import preprocess_clips

        if not crops:
            return np.zeros(0, np.float32)
        faces = np.stack([c if c.shape[:2] == (160, 160) else cv2.resize(c, (160, 160), interpolation=cv2.INTER_AREA)
                          for c in crops])
        out = np.zeros(len(faces), np.float32)
        for idx in clip_chunks(len(faces), self.clip_len):
            out[np.unique(idx)] = self._probs(preprocess_clips(faces[idx][None]))[0]
        return out

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Score the main face track's clips, aggregate, and explain each clip with Grad-CAM (3D).

        Returns:
            :class:`DetectorResult` (status ``"skipped"`` when no face was found).
        """
        from engine.models.c3d import model_map_to_crop, preprocess_clips

        params = {"crop_policy": self.crop_policy, "track": self.track, "threshold": self.threshold,
                  "clip_len": self.clip_len, "batch_size": self.batch_size, "explain": self.explain,
                  "preprocess": "resize 171x128, centre crop rows 8:120 cols 30:142, /255 (seed 3 §3.3)",
                  "gradcam_layer": f"features.relu{self.gradcam_layer[4:]} ({self.gradcam_layer} + ReLU)",
                  "gradcam_target": self.gradcam_target + (" class: argmax of the video's mean prediction "
                                                           "(seed 3 §3.6)" if self.gradcam_target == "predicted"
                                                           else " logit"),
                  "gradcam_normalisation": "min-max per clip (pytorch-grad-cam scale_cam_image); cubic zoom "
                                           "to (T, 112, 112), clipped to [0, 1]; zeros outside the 112 window"}
        base = dict(detector_id=self.id, task=self.task, threshold=self.threshold, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        crops = clip.face_crops(self.crop_policy, self.track)
        if not crops:
            return DetectorResult(status="skipped", message="no face track in the sampled frames", **base)
        faces = np.stack([c.image for _, c in crops])  # uint8 (M, 160, 160, 3)
        chunks = clip_chunks(len(faces), self.clip_len)
        batches = [chunks[s : s + self.batch_size] for s in range(0, len(chunks), self.batch_size)]
        steps = len(batches) * (2 if self.explain else 1)
        probs: list[np.ndarray] = []
        with clip.cancellable(self.model):
            for b, batch in enumerate(batches):  # 1) score every clip
                clip.check_cancel()
                probs.append(self._probs(preprocess_clips(np.stack([faces[idx] for idx in batch]))))
                if progress:
                    progress((b + 1) / steps)
            p_clip = np.concatenate(probs).astype(np.float64)
            score = float(p_clip.mean())
            label = "fake" if score > self.threshold else "real"
            target = label if self.gradcam_target == "predicted" else self.gradcam_target
            frame_prob = np.zeros(len(faces), np.float64)
            for idx, p in zip(chunks, p_clip):
                frame_prob[idx] = p  # padding repeats the last frame: same clip, same value
            heat: dict[str, np.ndarray] = {}
            for b, batch in enumerate(batches if self.explain else []):  # 2) Grad-CAM (3D) of the explained class
                clip.check_cancel()
                x = preprocess_clips(np.stack([faces[idx] for idx in batch]))
                maps = gradcam3d(self.model, self.model.gradcam_layer(self.gradcam_layer), x,
                                 target=1 if target == "fake" else 0)
                for j, idx in enumerate(batch):
                    seen: set[int] = set()
                    for t, k in enumerate(idx.tolist()):
                        if k in seen:  # padding repeats the last frame: keep its own (first) map
                            continue
                        seen.add(k)
                        frame, crop = crops[k]
                        heat[f"f{frame.index}"] = model_map_to_crop(maps[j, t], crop.image.shape[:2]).astype(np.float16)
                if progress:
                    progress((len(batches) + b + 1) / steps)
        scores = [
            FrameScore(f.index, f.pts, float(frame_prob[k]), self.track,
                       [round(float(v), 2) for v in (c.box.x1, c.box.y1, c.box.x2, c.box.y2)],
                       f"f{f.index}" if self.explain else None, c.placement)
            for k, (f, c) in enumerate(crops)
        ]
        return DetectorResult(
            score=score, label=label,
            class_probs={"real": 1.0 - score, "fake": score}, frame_scores=scores, heatmaps=heat,
            explanations={"Grad-CAM (3D)": "f{frame}"} if self.explain else {},
            details={"clip_scores": [round(float(v), 6) for v in p_clip],
                     "clip_frames": [[int(crops[k][0].index) for k in idx.tolist()] for idx in chunks],
                     **({"gradcam_class": target} if self.explain else {})},
            **base,
        )
