"""``camera.audio``, ``camera.image``, ``camera.fusion``: camera-model identification (seed 1).

Seed 1 (spec/seeds.md §1), XAIDevIDFusion (Korgialas, Tsingalis, Kotropoulos,
Asilomar 2024): two unimodal CNNs name the camera model that recorded a video,
one from its audio, one from its frames, and their softmax outputs are fused
late. Read top to bottom:

* **id / task**: ``camera.audio``, ``camera.image``, ``camera.fusion`` / ``camera``.
* **audio input** (§1.3, §1.4): the clip's audio resampled to 22,050 Hz mono,
  turned into the 3-resolution log-mel ``float32 (3, 128, 1500)`` by
  :meth:`MediaClip.log_mel_3res` (:func:`engine.features.log_mel_3res`, the
  function the trainer calls). No audio stream → ``status="skipped"``.
* **image input** (§1.6): every sampled frame of the clip (``clip.frames``,
  the clip's sampling policy: default 32 frames uniformly over the duration;
  the seed trained on every 2nd frame, which the trainer keeps), centre-cropped
  to 256×256 at full resolution with no resize
  (:func:`engine.models.camera.center_crop_256`), RGB 0–255, no normalisation
  (:func:`engine.models.camera.preprocess_frames`).
* **models** (§1.7): :class:`engine.models.camera.CameraAudioNet`
  (MobileNetV3-Large, architecture ``camera_audio``) and
  :class:`engine.models.camera.CameraImageNet` (ResNet50, ``camera_image``),
  rebuilt from ``resources/models/camera.audio/`` and
  ``resources/models/camera.image/`` (``model.safetensors`` + ``card.json``,
  SHA-256 verified, :func:`engine.weights.load_weights`). Class names come
  from the card config ``classes`` (logit order).
* **frame -> video** (§1.9): audio: one log-mel per video, ``p_a = softmax``.
  Image: ``p_v`` = **mean of each frame's own softmax vector**. (The seed's
  ``eval_image.py`` [quirk] gave every frame of a batch the first frame's
  vector; we use each frame's own, as the seed intended.)
* **late fusion** (§1.9): product rule ``argmax(p_a ⊙ p_v)`` (shown
  renormalised, ``p_a ⊙ p_v / Σ(p_a ⊙ p_v)``) and sum rule
  ``argmax((p_a + p_v) / 2)``, equal weights; both are reported. With one
  modality missing the fusion falls back to the other and says so.
* **explanation** (§1.10): Grad-CAM (pytorch-grad-cam via
  :func:`engine.explain.gradcam_maps`; ReLU, per-map min-max to [0, 1]) for the
  predicted class: on the audio net's last conv block over the log-mel, and on
  the image net's ``layer4`` per frame for the video's top class (backward
  truncated at that layer: same maps, ~5x cheaper on CPU). The seed's
  Colab ran Grad-CAM on a ResNet18 with ImageNet-normalised 224 px PNGs, which
  do not match its training tensors; we explain the exact tensors classified.

Probabilities are computed in float64 from ``log_softmax`` of the logits, so
the product rule never divides 0 by 0 when two confident models disagree.
Each unimodal prediction is stored in the clip cache under
``("camera.audio", weights sha256)`` / ``("camera.image", weights sha256)``,
so ``camera.fusion`` run in the same analysis reuses it and no network runs
twice (run alone, it computes them through the same functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from engine.pipeline import DetectorResult, FrameScore, MediaClip, register_detector, resolve_device
from engine.weights import ModelCard, WeightsIntegrityError, find_model_dir, load_card, load_weights

__all__ = [
    "AUDIO_ID",
    "IMAGE_ID",
    "FUSION_ID",
    "AudioPrediction",
    "CameraAudioDetector",
    "CameraFusionDetector",
    "CameraImageDetector",
    "CameraNet",
    "CenterCrops",
    "FusionOutcome",
    "ImagePrediction",
    "card_classes",
    "center_crops",
    "crop_placement",
    "fuse",
    "logmel_axes",
    "predict_audio",
    "predict_image",
]

AUDIO_ID = "camera.audio"
IMAGE_ID = "camera.image"
FUSION_ID = "camera.fusion"
TASK = "camera"


# ============================================================================ weights
def card_classes(card: ModelCard) -> list[str]:
    """Class names in logit order from a camera model card (``config["classes"]``).

    Raises:
        ValueError: no classes in the config, or the card's ``classes`` field
            disagrees with ``config["classes"]``.
    """
    classes = list(card.config.get("classes") or [])
    if not classes:
        raise ValueError(f"model card {card.card_id}: config has no 'classes'")
    if card.classes and list(card.classes) != classes:
        raise ValueError(f"model card {card.card_id}: 'classes' {card.classes} differ from config['classes'] {classes}")
    return classes


class CameraNet:
    """One camera network (audio or image) and its card; the weights load on first use.

    Args:
        detector_id: ``"camera.audio"`` or ``"camera.image"`` (the model folder name).
        architecture: the card architecture required (``"camera_audio"`` / ``"camera_image"``).
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``(detector_id)``.
        device: torch device string (already resolved, e.g. ``"cpu"``).

    Attributes:
        card: the :class:`ModelCard` (read at construction).
        classes: class names in logit order.
        sha256: SHA-256 of the weight file named by the card (the cache key).

    Raises:
        engine.weights.WeightsNotFound: no card on the search path / in ``model_dir``.
        ValueError: wrong architecture or unusable class list.
    """

    def __init__(self, detector_id: str, architecture: str, model_dir: str | Path | None, device: str):
        self.detector_id = detector_id
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir(detector_id)
        self.card = load_card(self.model_dir)
        if self.card.architecture != architecture:
            raise ValueError(f"{self.model_dir}: card architecture {self.card.architecture!r} is not {architecture!r}")
        self.classes = card_classes(self.card)
        self.device = torch.device(device)
        self._model: torch.nn.Module | None = None

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of ``model.safetensors`` as recorded in the card."""
        return self.card.sha256

    @property
    def model(self) -> torch.nn.Module:
        """The network in ``eval()`` on ``device``, loaded (SHA-256 verified) on first access.

        Raises:
            engine.weights.WeightsNotFound: the weight file is missing.
            engine.weights.WeightsIntegrityError: it does not match the card
                (or the card changed since construction).
        """
        if self._model is None:
            from engine.models import create_model

            state, card = load_weights(self.model_dir, device="cpu")
            if card.sha256 != self.card.sha256:
                raise WeightsIntegrityError(f"{self.model_dir}: model card changed while in use; reload the detector")
            model = create_model(card.architecture, card.config)
            model.load_state_dict(state)
            self._model = model.to(self.device).eval()
        return self._model

    @torch.no_grad()
    def log_probs(self, clip: MediaClip, x: torch.Tensor, batch_size: int) -> np.ndarray:
        """``float64 (N, C)`` log-softmax of the logits of ``x (N, ...)``, batched, cancellable."""
        model = self.model
        out = []
        with clip.cancellable(model):
            for start in range(0, x.shape[0], batch_size):
                clip.check_cancel()
                logits = model(x[start : start + batch_size].to(self.device))
                out.append(torch.log_softmax(logits.double(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))


def _softmax_log(logp: np.ndarray) -> np.ndarray:
    """Normalised probabilities from unnormalised log-probabilities ``(C,)`` (float64)."""
    z = logp - np.max(logp)
    p = np.exp(z)
    return p / p.sum()


def _class_probs(classes: list[str], probs: np.ndarray) -> dict[str, float]:
    return {c: float(p) for c, p in zip(classes, probs)}


# ============================================================================ audio
@dataclass(frozen=True)
class AudioPrediction:
    """The audio model's output on one clip (cached per clip and weights).

    Attributes:
        classes: class names in logit order.
        log_probs: ``float64 (C,)`` log-softmax of the logits, or None when skipped.
        duration_s: seconds of audio the log-mel's 1500 columns cover (0 when none).
        skipped: why there is no prediction (no audio stream, audio too short); ``""`` when there is.
    """

    classes: tuple[str, ...]
    log_probs: np.ndarray | None
    duration_s: float
    skipped: str = ""

    @property
    def probs(self) -> np.ndarray | None:
        """``float64 (C,)`` softmax probabilities (sum 1), or None when skipped."""
        return None if self.log_probs is None else np.exp(self.log_probs)


def predict_audio(clip: MediaClip, net: CameraNet) -> AudioPrediction:
    """``p_a`` of the clip (§1.9 audio), computed once per clip and weights.

    Cache key ``("camera.audio", net.sha256)`` in :meth:`MediaClip.cached`.

    Returns:
        :class:`AudioPrediction`; ``skipped`` says why when the clip has no
        audio stream or its audio is too short for the log-mel (< 0.1 s).

    Raises:
        AnalysisCancelled: cancelled during the forward pass.
    """
    from engine.features import LOGMEL_SR

    def compute() -> AudioPrediction:
        track = clip.audio(LOGMEL_SR)
        if not track.has_audio:
            reason = track.missing_reason or "no audio stream"
            return AudioPrediction(tuple(net.classes), None, 0.0, f"no audio ({reason})")
        try:
            mel = clip.log_mel_3res()
        except ValueError as exc:  # too short, NaN samples ...
            why = f"audio unusable for the log-mel ({exc})"
            return AudioPrediction(tuple(net.classes), None, track.duration_s, why)
        x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None]
        return AudioPrediction(tuple(net.classes), net.log_probs(clip, x, 1)[0], track.duration_s)

    return clip.cached((AUDIO_ID, net.sha256), compute)


def logmel_axes(duration_s: float, n_mels: int = 128, n_columns: int = 1500, f_max_hz: float = 11025.0) -> dict:
    """Axes of a ``(n_mels, n_columns)`` map over the §1.4 log-mel, JSON-ready.

    Rows are the HTK mel bands of torchaudio's ``MelSpectrogram`` (f_min 0,
    f_max = 11025 Hz = sr/2 at 22,050 Hz): band ``i`` is the triangle with
    edges ``row_low_hz[i]``/``row_high_hz[i]`` peaking at ``row_center_hz[i]``
    (HTK mel points ``linspace(0, mel(f_max), n_mels + 2)``); row 0 is the lowest
    band. Columns are stretched over the whole audio duration (§1.4 resize):
    column ``j`` covers ``[j, j + 1) * duration_s / n_columns`` seconds from the
    first decoded audio sample (the origin of ``display_spectrogram/times_s``).

    Args:
        duration_s: audio duration in seconds.
        n_mels, n_columns, f_max_hz: the §1.4 log-mel geometry.

    Returns:
        dict with ``shape``, ``rows``, ``columns`` (descriptions), ``mel_scale``,
        ``f_min_hz``, ``f_max_hz``, ``row_center_hz``/``row_low_hz``/``row_high_hz``
        (lists of ``n_mels`` floats, Hz), ``duration_s``, ``column_s``, ``time_origin``.
    """
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731  (HTK)
    pts = 700.0 * (10.0 ** (np.linspace(0.0, mel(f_max_hz), n_mels + 2) / 2595.0) - 1.0)
    r = lambda a: [round(float(v), 2) for v in a]  # noqa: E731
    return {
        "shape": [n_mels, n_columns],
        "rows": f"{n_mels} HTK mel bands over 0-{f_max_hz:g} Hz, row 0 = lowest band",
        "columns": f"{n_columns} columns stretched over the whole audio duration ({duration_s:.3f} s): "
                   f"column j covers [j, j+1) * {duration_s:.6f} / {n_columns} s",
        "mel_scale": "htk",
        "f_min_hz": 0.0,
        "f_max_hz": float(f_max_hz),
        "row_center_hz": r(pts[1:-1]),
        "row_low_hz": r(pts[:-2]),
        "row_high_hz": r(pts[2:]),
        "duration_s": float(duration_s),
        "column_s": float(duration_s) / n_columns,
        "time_origin": "first decoded audio sample (same origin as display_spectrogram/times_s)",
    }


@register_detector(AUDIO_ID)
class CameraAudioDetector:
    """Seed 1's audio camera-model classifier: MobileNetV3-Large on the 3-resolution log-mel.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("camera.audio")``.
        explain: compute the Grad-CAM map over the log-mel.

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not a ``camera_audio`` model or has no usable class list.
    """

    id: ClassVar[str] = AUDIO_ID
    task: ClassVar[str] = TASK
    aggregation: ClassVar[str] = "one log-mel per video: p_a = softmax(logits) (seed 1 §1.9)"
    gradcam_layer_name: ClassVar[str] = "net.features[-1] (last conv block, 960 ch, 1/32 resolution)"

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, explain: bool = True):
        self.net = CameraNet(AUDIO_ID, "camera_audio", model_dir, resolve_device(device))
        self.net.model  # noqa: B018  (load + verify now: tampered weights are refused at construction)
        self.card, self.model_dir, self.explain = self.net.card, self.net.model_dir, explain

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Classify the clip's audio and explain the top class on the log-mel.

        Returns:
            :class:`DetectorResult`: ``class_probs`` = every class → ``p_a``
            (sums to 1), ``label`` = top class, ``score`` = its probability,
            no ``frame_scores``; with ``explain``: ``heatmaps["logmel_gradcam"]``
            ``float16 (128, 1500)`` in [0, 1] (rows/columns as the log-mel, see
            ``parameters["logmel_gradcam_axes"]`` and :func:`logmel_axes`),
            ``explanations = {"Grad-CAM": "logmel_gradcam"}``.
            ``status="skipped"`` when the clip has no (usable) audio.

        Raises:
            AnalysisCancelled: cancelled.
        """
        from engine.explain import gradcam_maps

        params = {"input": "3-resolution log-mel float32 (3, 128, 1500), 22050 Hz mono, raw (seed 1 §1.4)",
                  "classes": list(self.net.classes), "explain": self.explain, "model_dir": str(self.model_dir)}
        base = dict(detector_id=self.id, task=self.task, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        pred = predict_audio(clip, self.net)
        if pred.log_probs is None:
            return DetectorResult(status="skipped", message=f"{pred.skipped}; the audio camera model cannot run",
                                  **base)
        probs = pred.probs
        top = int(np.argmax(probs))
        params["duration_s"] = pred.duration_s
        heat, expl = {}, {}
        if progress:
            progress(0.5)
        if self.explain:
            clip.check_cancel()
            x = torch.from_numpy(np.ascontiguousarray(clip.log_mel_3res(), dtype=np.float32))[None]
            with clip.cancellable(self.net.model):
                cam = gradcam_maps(self.net.model, self.net.model.gradcam_layer(), x.to(self.net.device), top,
                                   truncate=True)
            heat["logmel_gradcam"] = np.clip(cam.maps[0], 0.0, 1.0).astype(np.float16)
            expl = {"Grad-CAM": "logmel_gradcam"}
            params.update(gradcam_layer=self.gradcam_layer_name, gradcam_target=self.net.classes[top],
                          gradcam_normalisation="ReLU, bilinear resize to (128, 1500), min-max per map",
                          logmel_gradcam_axes=logmel_axes(pred.duration_s))
        if progress:
            progress(1.0)
        return DetectorResult(status="ok", score=float(probs[top]), label=self.net.classes[top],
                              class_probs=_class_probs(self.net.classes, probs), heatmaps=heat, explanations=expl,
                              **base)


# ============================================================================ image
def crop_placement(box: tuple[int, int, int, int], size: int = 256) -> dict:
    """Placement of a ``size``×``size`` centre crop in the frame, in the ``FaceCrop.placement`` schema.

    Args:
        box: ``(x1, y1, x2, y2)`` frame pixels of the real pixels in the crop
            (:func:`engine.models.camera.center_crop_box`).
        size: crop side in pixels (256).

    Returns:
        ``{"region": [x1, y1, x1 + size, y1 + size]`` (frame px covered by the
        whole crop image, beyond the frame where the frame is smaller than the
        crop), ``"content": [0, 0, x2 - x1, y2 - y1]`` (crop px holding frame
        pixels; the rest is the zero padding of ``center_crop_256``),
        ``"size_hw": [size, size]}``; :func:`engine.faces.place_heatmap` and
        ``ResultView.heatmap_at`` map a crop heatmap onto the frame with it.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    return {"region": [float(x1), float(y1), float(x1 + size), float(y1 + size)],
            "content": [0.0, 0.0, float(x2 - x1), float(y2 - y1)], "size_hw": [int(size), int(size)]}


@dataclass(frozen=True)
class CenterCrops:
    """The §1.6 centre crops of a clip's sampled frames (model-independent, cached per clip).

    Attributes:
        frame_index: frame positions (presentation order), one per crop.
        pts: frame times in seconds.
        boxes: ``(x1, y1, x2, y2)`` frame pixels of each crop's real pixels.
        images: ``uint8 (N, 256, 256, 3)`` RGB crops (zero-padded bottom/right
            for frames smaller than 256 px).
    """

    frame_index: tuple[int, ...]
    pts: tuple[float, ...]
    boxes: tuple[tuple[int, int, int, int], ...]
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)


def center_crops(clip: MediaClip) -> CenterCrops:
    """256×256 centre crops of every sampled frame (seed 1 §1.6), computed once per clip.

    Returns:
        :class:`CenterCrops` (empty for audio-only evidence).
    """
    from engine.models.camera import CAMERA_CROP, center_crop_256, center_crop_box

    def compute() -> CenterCrops:
        frames = clip.frames
        images = (np.stack([center_crop_256(f.rgb) for f in frames]) if frames
                  else np.zeros((0, CAMERA_CROP, CAMERA_CROP, 3), np.uint8))
        return CenterCrops(tuple(int(f.index) for f in frames), tuple(float(f.pts) for f in frames),
                           tuple(center_crop_box(f.rgb.shape[0], f.rgb.shape[1]) for f in frames), images)

    return clip.cached(("camera.center_crops", CAMERA_CROP), compute)


@dataclass(frozen=True)
class ImagePrediction:
    """The image model's output on one clip (cached per clip and weights).

    Attributes:
        classes: class names in logit order.
        crops: the classified :class:`CenterCrops`.
        frame_log_probs: ``float64 (N, C)`` per-frame log-softmax.
        log_probs: ``float64 (C,)`` log of the video probability (mean of the
            frame softmax vectors), or None when there are no frames.
        skipped: why there is no prediction; ``""`` when there is.
    """

    classes: tuple[str, ...]
    crops: CenterCrops
    frame_log_probs: np.ndarray
    log_probs: np.ndarray | None
    skipped: str = ""

    @property
    def frame_probs(self) -> np.ndarray:
        """``float64 (N, C)`` per-frame softmax (rows sum to 1)."""
        return np.exp(self.frame_log_probs)

    @property
    def probs(self) -> np.ndarray | None:
        """``float64 (C,)`` video probability ``p_v`` = mean of the frame softmax vectors, or None."""
        return None if self.log_probs is None else np.exp(self.log_probs)


def predict_image(clip: MediaClip, net: CameraNet, batch_size: int = 8,
                  progress: Callable[[float], None] | None = None) -> ImagePrediction:
    """``p_v`` of the clip (§1.9 image: mean of each frame's own softmax), once per clip and weights.

    Cache key ``("camera.image", net.sha256)`` in :meth:`MediaClip.cached`.

    Args:
        clip: the shared clip (its sampled frames are classified).
        net: the loaded image network.
        batch_size: crops per forward pass.
        progress: ``progress(fraction)`` while classifying (not called on a cache hit).

    Returns:
        :class:`ImagePrediction`; ``skipped`` says why when there are no frames.

    Raises:
        AnalysisCancelled: cancelled between or inside forward passes.
    """
    from engine.models.camera import preprocess_frames

    def compute() -> ImagePrediction:
        crops = center_crops(clip)
        c = len(net.classes)
        if not len(crops):
            why = "no video stream" if not clip.has_video else "no frame decoded"
            return ImagePrediction(tuple(net.classes), crops, np.zeros((0, c)), None, why)
        x = preprocess_frames(crops.images)
        rows = []
        for start in range(0, len(crops), batch_size):
            rows.append(net.log_probs(clip, x[start : start + batch_size], batch_size))
            if progress:
                progress(min(1.0, (start + batch_size) / len(crops)))
        flp = np.concatenate(rows)
        m = flp.max(axis=0)
        video = m + np.log(np.exp(flp - m).mean(axis=0))  # log of the mean frame softmax, underflow-safe
        return ImagePrediction(tuple(net.classes), crops, flp, video - np.log(np.exp(video).sum()))

    return clip.cached((IMAGE_ID, net.sha256), compute)


@register_detector(IMAGE_ID)
class CameraImageDetector:
    """Seed 1's image camera-model classifier: ResNet50 on 256×256 full-resolution centre crops.

    Video probability = mean of each frame's own softmax vector (§1.9; not the
    seed's first-frame-of-the-batch [quirk]).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        model_dir: folder with ``model.safetensors`` + ``card.json``; default
            :func:`engine.weights.find_model_dir` ``("camera.image")``.
        batch_size: crops per forward / Grad-CAM pass.
        explain: compute a Grad-CAM map per frame.

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: missing or tampered weights.
        ValueError: the card is not a ``camera_image`` model or has no usable class list.
    """

    id: ClassVar[str] = IMAGE_ID
    task: ClassVar[str] = TASK
    aggregation: ClassVar[str] = ("p_v = mean of each frame's own softmax vector over the sampled frames "
                                  "(seed 1 §1.9; not the seed's first-frame quirk)")
    gradcam_layer_name: ClassVar[str] = "net.layer4 (last residual stage, 2048 ch, 8x8 cells of 32 px)"
    #: caches the centre crops (:func:`center_crops`) before the pipeline releases the frames' pixels
    cache_frame_inputs = staticmethod(center_crops)

    def __init__(self, device: str = "cpu", model_dir: str | Path | None = None, batch_size: int = 8,
                 explain: bool = True):
        self.net = CameraNet(IMAGE_ID, "camera_image", model_dir, resolve_device(device))
        self.net.model  # noqa: B018  (load + verify now)
        self.card, self.model_dir = self.net.card, self.net.model_dir
        self.batch_size, self.explain = batch_size, explain

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Classify every sampled frame's centre crop, average, and explain the video's top class.

        Returns:
            :class:`DetectorResult`: ``class_probs`` = every class → ``p_v``
            (sums to 1), ``label``/``score`` = top class and its probability;
            one :class:`FrameScore` per sampled frame (``score`` = that frame's
            probability of the video's top class, ``box`` = the centre-crop box
            ``[x1, y1, x2, y2]`` frame px, ``crop`` = :func:`crop_placement`,
            ``heatmap_key`` = ``gradcam/f<index>`` when explaining); heatmaps
            ``gradcam/f<index>`` ``float16 (256, 256)`` in [0, 1] in crop pixels;
            ``explanations = {"Grad-CAM": "gradcam/f{frame}"}``;
            ``parameters["frame_class_probs"]`` = per-frame probability lists in
            class order. ``status="skipped"`` without video frames.

        Raises:
            AnalysisCancelled: cancelled.
        """
        from engine.explain import gradcam_maps
        from engine.models.camera import preprocess_frames

        params = {"input": "256x256 centre crop per sampled frame, full resolution, RGB 0-255, no normalisation "
                           "(seed 1 §1.6)",
                  "classes": list(self.net.classes), "batch_size": self.batch_size, "explain": self.explain,
                  "model_dir": str(self.model_dir)}
        base = dict(detector_id=self.id, task=self.task, aggregation=self.aggregation,
                    model_card_id=self.card.card_id, weights_sha256=self.card.sha256, parameters=params)
        split = 0.4 if self.explain else 1.0
        pred = predict_image(clip, self.net, self.batch_size, (lambda f: progress(split * f)) if progress else None)
        if pred.log_probs is None:
            return DetectorResult(status="skipped", message=f"{pred.skipped}; the image camera model cannot run",
                                  **base)
        probs, fp, crops = pred.probs, pred.frame_probs, pred.crops
        top = int(np.argmax(probs))
        params["n_frames"] = len(crops)
        params["frame_class_probs"] = [[round(float(v), 6) for v in row] for row in fp]
        heat = {}
        if self.explain:
            x_all = preprocess_frames(crops.images)
            model = self.net.model
            with clip.cancellable(model):
                for start in range(0, len(crops), self.batch_size):
                    clip.check_cancel()
                    x = x_all[start : start + self.batch_size].to(self.net.device)
                    cam = gradcam_maps(model, model.gradcam_layer(), x, top, truncate=True)
                    for j, m in enumerate(cam.maps):
                        heat[f"gradcam/f{crops.frame_index[start + j]}"] = np.clip(m, 0.0, 1.0).astype(np.float16)
                    if progress:
                        progress(split + (1 - split) * min(1.0, (start + self.batch_size) / len(crops)))
            params.update(gradcam_layer=self.gradcam_layer_name, gradcam_target=self.net.classes[top],
                          gradcam_normalisation="ReLU, bilinear resize to (256, 256), min-max per map")
        scores = [
            FrameScore(crops.frame_index[i], crops.pts[i], float(fp[i, top]), None,
                       [float(v) for v in crops.boxes[i]],
                       f"gradcam/f{crops.frame_index[i]}" if self.explain else None, crop_placement(crops.boxes[i]))
            for i in range(len(crops))
        ]
        if progress:
            progress(1.0)
        return DetectorResult(status="ok", score=float(probs[top]), label=self.net.classes[top],
                              class_probs=_class_probs(self.net.classes, probs), frame_scores=scores, heatmaps=heat,
                              explanations={"Grad-CAM": "gradcam/f{frame}"} if self.explain else {}, **base)


# ============================================================================ fusion
@dataclass(frozen=True)
class FusionOutcome:
    """Late fusion of two probability vectors (§1.9), both rules.

    Attributes:
        product: ``float64 (C,)`` ``p_a ⊙ p_v`` renormalised to sum 1 (the argmax is the product rule's).
        sum: ``float64 (C,)`` ``(p_a + p_v) / 2`` (sums to 1; same argmax as ``p_a + p_v``).
        product_norm: ``Σ p_a ⊙ p_v`` (the renormalisation divisor; tiny when the models disagree).
    """

    product: np.ndarray
    sum: np.ndarray
    product_norm: float


def fuse(log_p_a: np.ndarray, log_p_v: np.ndarray) -> FusionOutcome:
    """Product and sum rules of seed 1's ``fusion/late_fusion.py`` (§1.9), equal weights.

    Args:
        log_p_a, log_p_v: ``float64 (C,)`` log-probabilities of the audio and image
            models over the same classes (log domain so that confident,
            disagreeing models still give a defined renormalised product).

    Returns:
        :class:`FusionOutcome`.

    Raises:
        ValueError: shapes differ or are not 1-D.
    """
    la, lv = np.asarray(log_p_a, np.float64), np.asarray(log_p_v, np.float64)
    if la.ndim != 1 or la.shape != lv.shape:
        raise ValueError(f"need two (C,) log-probability vectors, got {la.shape} and {lv.shape}")
    lp = la + lv
    return FusionOutcome(product=_softmax_log(lp), sum=(np.exp(la) + np.exp(lv)) / 2.0,
                         product_norm=float(np.exp(lp).sum()))


def _rule(classes: list[str], probs: np.ndarray) -> dict:
    top = int(np.argmax(probs))
    return {"label": classes[top], "score": float(probs[top]), "class_probs": _class_probs(classes, probs)}


@register_detector(FUSION_ID)
class CameraFusionDetector:
    """Seed 1's late fusion of the audio and image camera models (product and sum rules, §1.9).

    Uses the unimodal predictions already in the clip cache (when
    ``camera.audio`` / ``camera.image`` ran on the same clip with the same
    weights), else computes them through the same functions
    (:func:`predict_audio`, :func:`predict_image`). The networks are loaded
    only when needed; construction reads both cards, checks the class lists
    and verifies both weight files' SHA-256.

    Availability: the fusion has no weights of its own; it needs those of
    ``camera.audio`` and ``camera.image`` (:attr:`requires_weights`).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        audio_dir, image_dir: model folders; default :func:`engine.weights.find_model_dir`.
        batch_size: frames per forward pass of the image model.
        model_dir: a folder holding both ``camera.audio/`` and ``camera.image/``
            (used for whichever of ``audio_dir``/``image_dir`` is None).

    Raises:
        engine.weights.WeightsNotFound / WeightsIntegrityError: either model's weights missing or tampered.
        ValueError: wrong architectures, or the two models' class lists differ (names both).
    """

    id: ClassVar[str] = FUSION_ID
    task: ClassVar[str] = TASK
    requires_weights: ClassVar[tuple[str, ...]] = (AUDIO_ID, IMAGE_ID)
    #: the image model's centre crops, cached before the pipeline releases the frames' pixels
    cache_frame_inputs = staticmethod(center_crops)
    aggregation: ClassVar[str] = ("late fusion of p_a (camera.audio) and p_v (camera.image), equal weights: product "
                                  "rule argmax(p_a*p_v) (class_probs, renormalised) and sum rule argmax(p_a+p_v) "
                                  "(parameters['sum_rule']) (seed 1 §1.9)")

    def __init__(self, device: str = "cpu", audio_dir: str | Path | None = None, image_dir: str | Path | None = None,
                 batch_size: int = 8, model_dir: str | Path | None = None):
        from engine.weights import WEIGHTS_FILE, WeightsNotFound, weights_sha256

        dev = resolve_device(device)
        if model_dir is not None and (audio_dir is None or image_dir is None):
            # a folder holding both model folders, e.g. a FORENSIC_MODELS_DIR
            audio_dir = audio_dir or Path(model_dir) / AUDIO_ID
            image_dir = image_dir or Path(model_dir) / IMAGE_ID
        self.audio = CameraNet(AUDIO_ID, "camera_audio", audio_dir, dev)
        self.image = CameraNet(IMAGE_ID, "camera_image", image_dir, dev)
        if self.audio.classes != self.image.classes:
            raise ValueError(
                f"camera.fusion needs the same class list in the same order for both models: "
                f"{self.audio.card.card_id} ({self.audio.model_dir}) has {self.audio.classes}, "
                f"{self.image.card.card_id} ({self.image.model_dir}) has {self.image.classes}")
        for net in (self.audio, self.image):
            w = net.model_dir / WEIGHTS_FILE
            if not w.is_file():
                raise WeightsNotFound(f"{w}: weight file not found")
            if weights_sha256(w) != net.sha256:
                raise WeightsIntegrityError(f"{w}: SHA-256 does not match the model card ({net.sha256}); "
                                            "the file is corrupt or was replaced — refusing to load it")
        self.classes = list(self.audio.classes)
        self.batch_size = batch_size

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Fuse ``p_a`` and ``p_v`` of the clip with both rules.

        Returns:
            :class:`DetectorResult`: ``class_probs`` = product rule (renormalised),
            ``label``/``score`` = its top class and probability; ``parameters``:
            ``product_rule`` / ``sum_rule`` = ``{"label", "score", "class_probs"}``
            (``product_rule`` also ``"normaliser"`` = Σ p_a⊙p_v), ``audio`` /
            ``image`` = ``{"label", "score"}`` of each model or None,
            ``rules_agree``, ``modalities`` (used), ``fallback`` (None, or the
            only modality used). With one modality missing: ``status="ok"``,
            both rules equal that modality's probabilities and ``message``
            says which is missing and why; with both missing ``status="skipped"``.
            No heatmaps: the explanations are those of ``camera.audio`` and
            ``camera.image`` (``parameters["explanations_from"]``).

        Raises:
            AnalysisCancelled: cancelled.
        """
        card_id = f"{self.audio.card.card_id}+{self.image.card.card_id}"
        params: dict = {"classes": self.classes, "weights": {AUDIO_ID: self.audio.sha256, IMAGE_ID: self.image.sha256},
                        "explanations_from": [AUDIO_ID, IMAGE_ID]}
        base = dict(detector_id=self.id, task=self.task, aggregation=self.aggregation, model_card_id=card_id,
                    weights_sha256=None, parameters=params)
        pa = predict_audio(clip, self.audio)
        if progress:
            progress(0.2)
        pv = predict_image(clip, self.image, self.batch_size, (lambda f: progress(0.2 + 0.8 * f)) if progress else None)
        params["audio"] = None if pa.log_probs is None else _rule(self.classes, pa.probs)
        params["image"] = None if pv.log_probs is None else _rule(self.classes, pv.probs)
        for p in (params["audio"], params["image"]):
            if p is not None:
                p.pop("class_probs")
        if progress:
            progress(1.0)
        if pa.log_probs is None and pv.log_probs is None:
            return DetectorResult(status="skipped", **base,
                                  message=f"no modality to fuse: audio ({pa.skipped}), image ({pv.skipped})")
        if pa.log_probs is not None and pv.log_probs is not None:
            out = fuse(pa.log_probs, pv.log_probs)
            prod, summ, msg = out.product, out.sum, ""
            params.update(modalities=["audio", "image"], fallback=None)
            params["product_rule"] = {**_rule(self.classes, prod), "normaliser": out.product_norm}
        else:
            only, missing, why = (("image", "audio", pa.skipped) if pa.log_probs is None
                                  else ("audio", "image", pv.skipped))
            prod = summ = (pv.probs if pa.log_probs is None else pa.probs)
            msg = (f"{missing} modality missing — {why}; fusion falls back to the {only} model alone "
                   f"(camera.{only}): product and sum rules both equal its probabilities")
            params.update(modalities=[only], fallback=only)
            params["product_rule"] = {**_rule(self.classes, prod), "normaliser": None}
        params["sum_rule"] = _rule(self.classes, summ)
        params["rules_agree"] = params["product_rule"]["label"] == params["sum_rule"]["label"]
        top = int(np.argmax(prod))
        return DetectorResult(status="ok", message=msg, score=float(prod[top]), label=self.classes[top],
                              class_probs=_class_probs(self.classes, prod), **base)
