"""The analysis pipeline: one decode, one face pass, shared features, every detector.

DESIGN.md "The analysis data flow"::

    file --probe/hash--> Evidence
         --VideoReader.sample(policy)--> frames             [decoded once]
         --load_audio(sr)--> waveform                       [decoded once per rate]
         --FaceDetector.detect_batch--> boxes --tracks-->   [detected once]
         --each Detector.analyze(clip)--> DetectorResult
         --> AnalysisResult --> JSON (+ .npz sidecar for arrays)

:class:`MediaClip` computes each of those lazily and caches it, so several
detectors share one decode, one face detection and one log-mel. ``analyze``
reports progress through a plain callable and polls a plain ``cancel``
callable (the GUI wraps both in Qt signals; the CLI in a tqdm bar).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from . import __version__
from .io import atomic_save_npz, atomic_write_json, load_npz
from .media import (
    AudioTrack,
    EvidenceError,
    Evidence,
    Frame,
    Indices,
    SamplingPolicy,
    Uniform,
    VideoReader,
    load_audio,
    probe,
)
from .media.probe import utc_now_iso
from .weights import hash_check

log = logging.getLogger(__name__)

#: Version of the JSON result schema written by :meth:`AnalysisResult.save`.
RESULT_SCHEMA_VERSION = 1

ProgressFn = Callable[[str, float], None]
"""``progress(stage, fraction)``: a human-readable stage and the overall fraction done in [0, 1]."""

CancelFn = Callable[[], bool]
"""``cancel()`` → True when the user asked to stop; polled between units of work."""


class AnalysisCancelled(Exception):
    """Raised inside ``analyze`` when ``cancel()`` returned True; nothing partial is saved."""


def is_cuda_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is CUDA running out of memory (``torch.cuda.OutOfMemoryError``, or the
    ``RuntimeError("CUDA out of memory ...")`` of older torch builds)."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def _release_cuda_memory() -> None:
    """Drop cached CUDA blocks after an out-of-memory error (no-op without CUDA)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


#: glibc ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (``malloc.h``).
_M_MMAP_THRESHOLD = -3
#: Allocations from this size (bytes) get their own ``mmap`` (see :func:`bound_heap_retention`).
MMAP_THRESHOLD_BYTES = 1 << 20
_heap_configured = False


def _libc():
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def bound_heap_retention() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` (1 MiB), once per process.

    glibc serves an allocation from ``mmap`` (returned to the OS on ``free``) only above
    a threshold that it raises, by default, up to 32 MB each time such a block is
    freed. After the first large activation is freed, every activation, crop batch
    and STFT buffer under 32 MB comes from the heap arenas, which keep freed memory
    and fragment, so each detector's peak stacks on the leftovers of the last one.
    With the threshold fixed (``mallopt(M_MMAP_THRESHOLD)``, which also turns off the
    dynamic raise) large blocks go back to the OS when freed: on the reference
    10-minute 1080p analysis the peak RSS is 1.83 GiB instead of 1.95 GiB and the
    per-detector peaks are 50-150 MB lower (``bench/analyze.py``). The price is page
    faults on fresh blocks: on the 2-core reference CPU ``camera.image`` takes 4.2 s
    instead of 3.0 s on 32 frames and the ``deepfake.effvit`` explanation about 15 %
    longer. Process-wide and idempotent; :func:`analyze` calls it.

    Returns:
        True when the setting is in effect (glibc on Linux), False elsewhere.
    """
    global _heap_configured
    if _heap_configured:
        return True
    libc = _libc()
    try:
        _heap_configured = bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except AttributeError:  # a libc without mallopt (e.g. musl)
        return False
    return _heap_configured


def trim_heap() -> bool:
    """Give freed heap memory back to the OS (glibc ``malloc_trim(0)``); False where unavailable.

    Between detectors the activations of the last one are freed, but glibc keeps much of
    it in its arenas, so the resident size ratchets up detector by detector; trimming
    keeps it near what is live (about 100-350 MB less after a full analysis on the
    2-core reference machine).
    """
    libc = _libc()
    try:
        return bool(libc is not None and libc.malloc_trim(0))
    except AttributeError:
        return False


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a CUDA device is available, else ``"cpu"``; others pass through."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# ============================================================================ MediaClip
@dataclass(frozen=True)
class ClipConfig:
    """How a :class:`MediaClip` samples and detects.

    Attributes:
        sampling: frame sampling policy (default: 32 frames uniformly over the duration).
        face_backend: ``"auto"``, ``"mtcnn"`` or ``"retinaface"`` (see ``engine.faces``).
        face_batch: frames per face-detection call; cancel is polled between calls.
        device: torch device for face detection and detectors (``"auto"``, ``"cpu"``, ``"cuda"``).
    """

    sampling: SamplingPolicy = Uniform()
    face_backend: str = "auto"
    face_batch: int = 8
    device: str = "auto"


class MediaClip:
    """One evidence file plus everything detectors share, each computed once on first use.

    Args:
        path: evidence file (read-only).
        config: sampling, face backend, device.
        evidence: an :class:`Evidence` from :func:`probe` to reuse (else probed here).
        cancel: polled during long steps (frame decoding, face detection).

    Raises:
        EvidenceError subclasses from probe/decoding, naming the file.
    """

    def __init__(
        self,
        path: str | Path,
        config: ClipConfig = ClipConfig(),
        evidence: Evidence | None = None,
        cancel: CancelFn | None = None,
        face_detector: Any | None = None,
    ):
        self.path = Path(path)
        self.config = config
        self.device = resolve_device(config.device)
        self._cancel = cancel or (lambda: False)
        self._evidence = evidence
        self._face_detector = face_detector
        self._reader: VideoReader | None = None
        self._frames: list[Frame] | None = None
        self._pixels_released = False
        self._detections: list[list] | None = None
        self._tracks: list | None = None
        self._audio: dict[tuple[int, bool], AudioTrack] = {}
        self._cache: dict[Any, Any] = {}
        #: problems worth reporting in the result (e.g. a CUDA out-of-memory fallback to CPU)
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ helpers
    def check_cancel(self) -> None:
        """Raise :class:`AnalysisCancelled` if the user asked to stop."""
        if self._cancel():
            raise AnalysisCancelled(f"{self.path}: analysis cancelled")

    @contextlib.contextmanager
    def cancellable(self, model: Any) -> Iterator[None]:
        """Make a ``torch.nn.Module``'s forward passes stop on cancel, layer by layer.

        For the duration of the ``with`` block every submodule runs
        :meth:`check_cancel` before its forward, so a long forward pass on CPU
        (one EffViT batch takes seconds) ends within one layer of the request
        instead of at the next batch. For backward passes (relevancy, Grad-CAM)
        the input of every layer with weights (``nn.Conv*``/``nn.Linear``) gets a
        gradient hook that checks too; tensor hooks, unlike module backward
        hooks, do not clash with the in-place activations of the backbones.
        Hooks are removed on exit, also on error.

        Raises:
            AnalysisCancelled: from inside the forward or backward pass, when cancelled.
        """
        import torch

        def grad_check(grad):
            self.check_cancel()
            return grad

        def hook(_module, _inputs):
            self.check_cancel()

        def weighted_hook(_module, inputs):
            self.check_cancel()
            x = inputs[0] if inputs else None
            if isinstance(x, torch.Tensor) and x.requires_grad and torch.is_grad_enabled():
                x.register_hook(grad_check)

        weighted = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
        handles = [m.register_forward_pre_hook(weighted_hook if isinstance(m, weighted) else hook)
                   for m in model.modules()]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def cached(self, key: Any, compute: Callable[[], Any], keep: bool = True) -> Any:
        """Generic per-clip cache for derived tensors (features a detector computes).

        Args:
            key: cache key. compute: makes the value when it is not cached.
            keep: store a newly computed value (``False`` for large values one consumer
                reads once); an existing entry is returned either way.
        """
        if key in self._cache:
            return self._cache[key]
        value = compute()
        if keep:
            self._cache[key] = value
        return value

    # ------------------------------------------------------------------ media
    @property
    def evidence(self) -> Evidence:
        """Probe result (SHA-256 taken when first accessed)."""
        if self._evidence is None:
            self._evidence = probe(self.path)
        return self._evidence

    @property
    def has_video(self) -> bool:
        """Whether the file has a video stream."""
        return bool(self.evidence.video)

    @property
    def reader(self) -> VideoReader:
        """The frame-accurate reader, reusing the probe's frame index.

        Raises:
            NoVideoStream: audio-only evidence.
        """
        if self._reader is None:
            ev = self.evidence
            self._reader = VideoReader(self.path, index=ev.frame_index, rotation=ev.primary_video.rotation)
        return self._reader

    @property
    def frames(self) -> list[Frame]:
        """Sampled frames (``config.sampling``), decoded once; ``[]`` for audio-only evidence.

        After :meth:`release_frame_pixels` each access decodes them again (the same
        frames: seeking is exact) and the clip does not keep them.
        """
        if self._frames is None:
            if not self.has_video:
                self._frames = []
            else:
                frames = self.reader.sample(self.config.sampling, cancel=self._cancel)
                self.check_cancel()
                if self._pixels_released:
                    log.debug("%s: sampled frames decoded again after their pixels were released", self.path)
                    return frames
                self._frames = frames
        return self._frames

    @property
    def pixels_released(self) -> bool:
        """True after :meth:`release_frame_pixels`."""
        return self._pixels_released

    def release_frame_pixels(self) -> int:
        """Drop the full-resolution pixels of the sampled frames; returns the bytes released.

        The sampled frames are the largest thing a clip holds (32 frames of 1080p RGB
        are 190 MB) and, once every detector's crops are cut, nothing reads them.
        The :meth:`analyze` pipeline calls this after the detectors'
        ``cache_frame_inputs``. The cached ``(frame, crop)`` pairs keep their crops;
        their frames become :meth:`Frame.without_pixels` copies (index, PTS and size
        only). A later reader of :attr:`frames` (e.g. a crop policy nobody cut before)
        gets them decoded again, which costs a decode but gives the same pixels.
        """
        if self._pixels_released:
            return 0
        released = sum(f.rgb.nbytes for f in self._frames or [] if f.has_pixels)
        for key, value in list(self._cache.items()):
            if isinstance(key, tuple) and key and key[0] == "crops":
                self._cache[key] = [(f.without_pixels(), c) for f, c in value]
        self._frames = None
        self._pixels_released = True
        return released

    def audio(self, sr: int, mono: bool = True) -> AudioTrack:
        """The audio track at ``sr`` Hz, decoded once per (rate, mono); may be ``AudioTrack.missing``."""
        key = (int(sr), bool(mono))
        if key not in self._audio:
            if self.evidence.has_audio:
                self._audio[key] = load_audio(self.path, sr, mono=mono)
            else:
                self._audio[key] = AudioTrack.missing(sr, f"{self.path.name}: no audio stream", mono)
        return self._audio[key]

    # ------------------------------------------------------------------ faces
    @property
    def face_detector(self):
        """The face detector (created on first use, on ``self.device``)."""
        if self._face_detector is None:
            from .faces import create_face_detector

            self._face_detector = create_face_detector(self.config.face_backend, device=self.device)
        return self._face_detector

    def _face_detector_to_cpu(self, exc: BaseException) -> None:
        """After CUDA ran out of memory: warn, free the cache, and detect faces on the CPU from now on."""
        from .faces import create_face_detector

        msg = f"face detection: CUDA out of memory on {self.device} ({exc}); continuing on CPU"
        log.warning("%s: %s", self.path, msg)
        self.warnings.append(msg)
        self._face_detector = None
        _release_cuda_memory()
        self._face_detector = create_face_detector(self.config.face_backend, device="cpu")

    def detect_faces(self, progress: Callable[[float], None] | None = None) -> list[list]:
        """Face boxes per sampled frame (``list[list[FaceBox]]``), detected once in batches.

        On CUDA, an out-of-memory error switches face detection to the CPU (with a
        warning in :attr:`warnings`) and the batch is detected again there.
        """
        if self._detections is None:
            frames = self.frames
            out: list[list] = []
            step = max(1, self.config.face_batch)
            for start in range(0, len(frames), step):
                self.check_cancel()
                batch = [f.rgb for f in frames[start : start + step]]
                try:
                    out.extend(self.face_detector.detect_batch(batch))
                except Exception as exc:
                    if not is_cuda_oom(exc) or self.device == "cpu":
                        raise
                    self._face_detector_to_cpu(exc)
                    out.extend(self.face_detector.detect_batch(batch))
                if progress:
                    progress(min(1.0, (start + step) / max(len(frames), 1)))
            self._detections = out
        return self._detections

    @property
    def face_tracks(self) -> list:
        """Face tracks over the sampled frames, main face first (``list[FaceTrack]``)."""
        if self._tracks is None:
            from .faces import build_tracks

            dets = self.detect_faces()
            self._tracks = build_tracks([(f.index, f.pts, d) for f, d in zip(self.frames, dets)])
        return self._tracks

    def face_crops(self, policy: str, track: int = 0, cache: bool = True) -> list[tuple[Frame, Any]]:
        """``(frame, FaceCrop)`` for each sampled frame where face track ``track`` is present.

        Crops use the track's smoothed boxes and the named crop policy
        (``engine.faces.CROP_POLICIES``); computed once per (policy, track).

        Args:
            policy: crop policy name. track: face track index (0 = main face).
            cache: keep the crops for later callers. ``False`` for policies at native
                resolution that one consumer reads once (``freq_square1p5`` crops of a
                1080p face are about 8 MB each, 250-300 MB for 32 frames); an existing
                cached entry is still returned.
        """

        def compute():
            from .faces import crop_face

            tracks = self.face_tracks
            if track >= len(tracks):
                return []
            by_index = {f.index: f for f in self.frames}
            return [
                (by_index[e.frame_index], crop_face(by_index[e.frame_index].rgb, e.smoothed, policy))
                for e in tracks[track].entries
            ]

        return self.cached(("crops", policy, track), compute, keep=cache)

    def forget(self, key: Any) -> None:
        """Drop one entry of the per-clip cache (no error when absent), e.g. a large array
        the analysis has already copied into its result."""
        self._cache.pop(key, None)

    def dense_face_crops(self, fps: float = 25.0, max_s: float = 16.0, policy: str = "tmc_shifted1p4_224",
                         track: int = 0) -> "DenseFaces":
        """Face crops of every frame of the first ``max_s`` seconds resampled to ``fps`` (seed 5 §5.1).

        Seed 5 decodes ``[0, min(16 s, duration)]`` at 25 fps and gives each frame the
        box of the nearest frame with a detection. Here the boxes are the main face
        track's smoothed boxes from the shared sampled-frame detection (nearest track
        entry by frame index), so faces are never detected twice; frames are decoded
        sequentially and cropped at once (only crops are held: 400 × 224² × 3 B ≈ 60 MB).
        Output time ``k / fps`` shows the frame on screen then (frames repeat when the
        source rate is below ``fps``). Without a face track the whole frame is the box
        (seed 5's fallback) and ``has_face`` is False.

        Args:
            fps: output frame rate in frames/s. max_s: clip length cap in seconds.
            policy: crop policy (``engine.faces.CROP_POLICIES``). track: face track.

        Returns:
            :class:`DenseFaces` (cached per arguments).

        Raises:
            NoVideoStream: audio-only evidence. AnalysisCancelled: cancelled while decoding.
        """

        def compute() -> DenseFaces:
            from .faces import FaceBox, crop_face

            index = self.reader.index
            secs = index.seconds
            start = float(secs[0])
            end = min(float(secs[-1]) + 1e-6, start + max_s)
            n = max(1, int(np.floor((end - start) * fps + 1e-9)))
            wanted = [index.index_at(start + k / fps) for k in range(n)]
            tracks = self.face_tracks if self.has_video else []
            main = tracks[track] if track < len(tracks) else None
            by_index: dict[int, Any] = {}
            for frame in self.reader.iter_sample(Indices(tuple(sorted(set(wanted)))), cancel=self._cancel):
                if main is not None:
                    box = main.nearest_entry(frame.index).smoothed
                else:
                    h, w = frame.rgb.shape[:2]
                    box = FaceBox(0.0, 0.0, float(w), float(h), 0.0)
                by_index[frame.index] = (frame.pts, crop_face(frame.rgb, box, policy))
            self.check_cancel()
            pairs = [by_index[i] for i in wanted if i in by_index]
            return DenseFaces(
                fps=float(fps),
                frame_index=np.array([i for i in wanted if i in by_index], dtype=np.int64),
                pts=np.array([p for p, _ in pairs], dtype=np.float64),
                crops=np.stack([c.image for _, c in pairs]) if pairs else np.zeros((0, 1, 1, 3), np.uint8),
                placements=[c.placement for _, c in pairs],
                has_face=main is not None,
                policy=policy,
            )

        return self.cached(("dense_faces", float(fps), float(max_s), policy, track), compute)

    # ------------------------------------------------------------------ features
    def log_mel_3res(self) -> np.ndarray | None:
        """Seed 1's 3-resolution log-mel, ``float32 (3, 128, 1500)``; None without audio."""
        from .features import LOGMEL_SR, log_mel_3res

        def compute():
            track = self.audio(LOGMEL_SR)
            return log_mel_3res(track.waveform, LOGMEL_SR) if track.has_audio else None

        return self.cached("log_mel_3res", compute)

    def azimuthal_spectra(self, track: int = 0) -> np.ndarray:
        """Seed 4's azimuthal spectra of the face crops (``freq_square1p5``), ``float64 (M, 300)``."""
        from .features import azimuthal_spectra

        return self.cached(
            ("azimuthal", track),
            lambda: azimuthal_spectra([c.image for _, c in self.face_crops("freq_square1p5", track, cache=False)]),
        )

    def display_spectrogram(self, sr: int = 16000, cache: bool = True):
        """dB spectrogram for the GUI (``DisplaySpectrogram``), or None without audio.

        ``cache=False``: do not keep it on the clip (the analysis stores a float16 copy in
        its result; the float32 array of 10 minutes at 16 kHz is about 120 MB).
        """
        from .features import display_spectrogram

        def compute():
            track = self.audio(sr)
            return display_spectrogram(track.waveform, sr) if track.has_audio else None

        return self.cached(("display_spectrogram", sr), compute, keep=cache)


@dataclass(frozen=True)
class DenseFaces:
    """Face crops of consecutive frames at a fixed rate (:meth:`MediaClip.dense_face_crops`).

    Attributes:
        fps: output rate (frames/s); crop ``k`` shows time ``pts[0] + k / fps`` (seconds).
        frame_index: ``int64 (N,)`` source frame shown by each output frame (repeats when the
            source rate is below ``fps``).
        pts: ``float64 (N,)`` presentation time of each source frame, seconds.
        crops: ``uint8 (N, S, S, 3)`` RGB crops (``policy``).
        placements: ``FaceCrop.placement`` of each crop (maps crop heatmaps onto the frame).
        has_face: False when no face track exists and whole frames were cropped.
        policy: crop policy name.
    """

    fps: float
    frame_index: np.ndarray
    pts: np.ndarray
    crops: np.ndarray
    placements: list
    has_face: bool
    policy: str


# ============================================================================ detectors
@dataclass
class FrameScore:
    """A detector's score on one sampled frame (and face track, when face-based).

    Attributes:
        frame_index: frame position in presentation order.
        pts: frame time in seconds.
        score: P(fake) for deepfake detectors, top-class probability for camera ones.
        track_id: face track, or None for whole-frame / audio detectors.
        box: face box ``[x1, y1, x2, y2]`` in frame pixels, or None.
        heatmap_key: key of this frame's main explanation map in ``DetectorResult.heatmaps``.
        crop: placement of the face crop the heatmaps cover, ``FaceCrop.placement``
            (``{"region": frame px, "content": crop px, "size_hw": crop px}``);
            :func:`engine.faces.place_heatmap` maps a crop heatmap onto the frame with it.
    """

    frame_index: int
    pts: float
    score: float
    track_id: int | None = None
    box: list[float] | None = None
    heatmap_key: str | None = None
    crop: dict[str, list[float]] | None = None


@dataclass
class DetectorResult:
    """What one detector concluded about one evidence file.

    Attributes:
        detector_id, task: e.g. ``"deepfake.effvit"``, ``"deepfake"`` / ``"camera"``.
        status: ``"ok"``, ``"failed"`` (``message`` says why) or ``"skipped"`` (e.g. no faces).
        score: video-level P(fake) (deepfake) or top-class probability (camera).
        label: decision, e.g. ``"fake"``/``"real"`` or a camera-model class name.
        class_probs: class name → probability (camera models; both classes for deepfake).
        threshold: decision threshold applied to ``score``.
        aggregation: frame → video rule used, e.g. ``"mean of frame sigmoid (seed 2 §2.4)"``.
        frame_scores: per sampled frame.
        heatmaps: key → ``float16 (h, w)`` in [0, 1], crop coordinates (saved in the npz sidecar).
        explanations: view name → heatmap key template with ``{frame}`` for the frame
            index, e.g. ``{"relevancy": "f{frame}", "Grad-CAM": "gradcam/f{frame}"}``;
            the views a GUI or report can overlay on the frame.
        plots: explanation curves small enough for the JSON, name → ``{"kind": "line" | "timeline",
            "x": [...], "series": {label: [...]}, "x_label": str, "y_label": str,
            "marker_x": float | None, "note": str}``. ``"timeline"`` plots have ``x`` in
            seconds (PTS) and are drawn on the score timeline; ``"line"`` ones as their own
            figure (e.g. the A/V offset curve of ``deepfake.av``). :func:`make_plot` builds one.
        details: other JSON-ready explanation data a detector wants shown verbatim
            (e.g. the nearest reference faces of ``deepfake.triplet``).
        model_card_id, weights_sha256: provenance of the weights.
        parameters: every setting that changes the result.
    """

    detector_id: str
    task: str
    status: str = "ok"
    message: str = ""
    score: float | None = None
    label: str | None = None
    class_probs: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    aggregation: str = ""
    frame_scores: list[FrameScore] = field(default_factory=list)
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    explanations: dict[str, str] = field(default_factory=dict)
    plots: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    model_card_id: str | None = None
    weights_sha256: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; heatmaps are listed by key and shape (arrays go to the sidecar)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "heatmaps"}
        d["frame_scores"] = [dataclasses.asdict(s) for s in self.frame_scores]
        d["heatmaps"] = {k: list(np.shape(v)) for k, v in self.heatmaps.items()}
        return d


def make_plot(x: Sequence[float], series: dict[str, Sequence[float]], x_label: str, y_label: str,
              kind: str = "line", marker_x: float | None = None, note: str = "") -> dict[str, Any]:
    """One entry of :attr:`DetectorResult.plots`, rounded to 6 significant digits for the JSON.

    Args:
        x: abscissa values (seconds for ``kind="timeline"``).
        series: label → ordinates, each as long as ``x``.
        x_label, y_label: axis labels with units. marker_x: a vertical marker (e.g. the
            measured A/V offset). note: one sentence saying how to read the plot.

    Raises:
        ValueError: unknown ``kind`` or a series whose length differs from ``x``.
    """
    if kind not in ("line", "timeline"):
        raise ValueError(f"plot kind must be 'line' or 'timeline', got {kind!r}")
    xs = [float(f"{float(v):.6g}") for v in x]
    out = {}
    for label, ys in series.items():
        if len(ys) != len(xs):
            raise ValueError(f"series {label!r} has {len(ys)} values for {len(xs)} x values")
        out[label] = [float(f"{float(v):.6g}") for v in ys]
    return {"kind": kind, "x": xs, "series": out, "x_label": x_label, "y_label": y_label,
            "marker_x": None if marker_x is None else float(marker_x), "note": note}


@runtime_checkable
class Detector(Protocol):
    """A forensic detector: preprocessing + model + aggregation + explanation (DESIGN.md).

    Implementations live one per module in ``engine/detectors/`` and register with
    :func:`register_detector`. They read everything from the shared
    :class:`MediaClip` (never decode or detect faces themselves).

    Optional class-level hook ``cache_frame_inputs(clip) -> None``: cut and cache on the
    clip whatever the detector will read from the full-resolution sampled frames (its
    face crops, centre crops); :func:`analyze` calls it for every detector before
    :meth:`MediaClip.release_frame_pixels`. A detector without it that reads
    ``clip.frames`` later still works, at the cost of a second decode.
    """

    id: ClassVar[str]
    task: ClassVar[str]

    def analyze(self, clip: MediaClip, progress: Callable[[float], None] | None = None) -> DetectorResult:
        """Analyse the clip; call ``progress(fraction)`` and ``clip.check_cancel()`` between batches."""
        ...


def cache_track_crops(cls: Any, clip: MediaClip) -> None:
    """``cache_frame_inputs`` of a detector that reads ``clip.face_crops(cls.crop_policy, cls.track)``."""
    clip.face_crops(cls.crop_policy, cls.track)


DetectorFactory = Callable[..., Detector]
_REGISTRY: dict[str, DetectorFactory] = {}


def register_detector(detector_id: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Class decorator: make a detector available under ``detector_id``.

    Raises:
        ValueError: the id is already registered.
    """

    def wrap(factory: DetectorFactory) -> DetectorFactory:
        if detector_id in _REGISTRY and _REGISTRY[detector_id] is not factory:
            raise ValueError(f"detector id {detector_id!r} registered twice")
        _REGISTRY[detector_id] = factory
        return factory

    return wrap


def _load_detector_modules() -> None:
    from . import detectors  # noqa: F401  (imports register every detector module)


def registered_detectors() -> list[str]:
    """Ids of all registered detectors, sorted."""
    _load_detector_modules()
    return sorted(_REGISTRY)


def available_detectors() -> tuple[list[str], dict[str, str]]:
    """Registered detectors whose weights are on the search path, and the others with the reason.

    Returns:
        ``(available ids, {unavailable id: reason})``.
    """
    from .weights import WeightsError, find_model_dir

    ok, missing = [], {}
    for det_id in registered_detectors():
        try:
            # a detector without weights of its own (camera.fusion) names the ones it needs
            for weights_id in getattr(_REGISTRY[det_id], "requires_weights", (det_id,)):
                find_model_dir(weights_id)
            ok.append(det_id)
        except WeightsError as exc:
            missing[det_id] = str(exc)
    return ok, missing


def create_detector(detector_id: str, device: str = "cpu", **kwargs: Any) -> Detector:
    """Instantiate a registered detector (loads its weights).

    Raises:
        KeyError: unknown id (the message lists the registered ones).
        engine.weights.WeightsError: its weights are missing or fail their SHA-256 check.
    """
    _load_detector_modules()
    if detector_id not in _REGISTRY:
        raise KeyError(f"unknown detector {detector_id!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[detector_id](device=device, **kwargs)


# ============================================================================ results
def _array_summary(a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)
    finite = a[np.isfinite(a)] if a.size else a
    return {
        "shape": list(a.shape),
        "dtype": str(a.dtype),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
    }


@dataclass
class AnalysisResult:
    """Everything one analysis found, with provenance; saved as JSON plus an ``.npz`` sidecar.

    Attributes:
        evidence: ``Evidence.to_dict()`` (SHA-256 at intake).
        sha256_at_end: SHA-256 re-taken after analysis (must equal the intake hash).
        sampling: policy and the sampled frames ``[{index, pts}]``.
        faces: backend, tracks with per-frame boxes, frames without a face.
        audio: presence, reason when missing, rate, duration.
        features: name → shape/dtype/min/max/mean (arrays in the sidecar).
        detectors: one :class:`DetectorResult` per detector run.
        combined: the combined deepfake verdict (:func:`engine.fusion.combined_verdict`,
            late fusion of every deepfake detector that scored), or None when none ran.
        arrays: name → array written to the sidecar (features, heatmaps).
    """

    evidence: dict[str, Any]
    sampling: dict[str, Any]
    faces: dict[str, Any]
    audio: dict[str, Any]
    features: dict[str, Any]
    detectors: list[DetectorResult]
    device: str
    started: str
    finished: str
    duration_s: float
    sha256_at_end: str | None = None
    warnings: list[str] = field(default_factory=list)
    combined: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    schema_version: int = RESULT_SCHEMA_VERSION
    tool: dict[str, str] = field(
        default_factory=lambda: {"name": "forensic-workbench", "engine_version": __version__}
    )

    def to_dict(self, sidecar: str | None = None) -> dict[str, Any]:
        """JSON-ready dict; ``sidecar`` is the npz file name recorded for the arrays."""
        return {
            "schema_version": self.schema_version,
            "tool": self.tool,
            "environment": {"python": platform.python_version(), "platform": platform.platform()},
            "evidence": self.evidence,
            "sha256_at_end": self.sha256_at_end,
            "evidence_unchanged": self.sha256_at_end == self.evidence.get("sha256"),
            "device": self.device,
            "started": self.started,
            "finished": self.finished,
            "duration_s": self.duration_s,
            "sampling": self.sampling,
            "faces": self.faces,
            "audio": self.audio,
            "features": self.features,
            "detectors": [d.to_dict() for d in self.detectors],
            "combined": self.combined,
            "warnings": self.warnings,
            "arrays_file": sidecar,
            "arrays": sorted(self.all_arrays()),
        }

    def all_arrays(self) -> dict[str, np.ndarray]:
        """Feature arrays plus every detector heatmap (keys ``<detector_id>/<key>``)."""
        out = dict(self.arrays)
        for d in self.detectors:
            for k, v in d.heatmaps.items():
                out[f"{d.detector_id}/{k}"] = v
        return out

    def save_arrays(self, npz_path: str | Path) -> str | None:
        """Write the arrays (features, heatmaps) to an ``.npz`` atomically; returns its file name or None."""
        arrays = self.all_arrays()
        if not arrays:
            return None
        atomic_save_npz(npz_path, arrays)
        return Path(npz_path).name

    def save(self, json_path: str | Path) -> Path:
        """Write ``<name>.json`` and its ``<name>.npz`` sidecar atomically (sidecar first).

        Returns:
            The JSON path.
        """
        json_path = Path(json_path)
        sidecar = self.save_arrays(json_path.with_suffix(".npz"))
        atomic_write_json(json_path, self.to_dict(sidecar))
        return json_path


def load_result_arrays(json_path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a saved result (its ``.npz`` sidecar), loaded without pickle."""
    import json

    json_path = Path(json_path)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    if not doc.get("arrays_file"):
        return {}
    return load_npz(json_path.parent / doc["arrays_file"])


def _policy_dict(policy: SamplingPolicy) -> dict[str, Any]:
    return {"policy": type(policy).__name__, **dataclasses.asdict(policy)}


def _faces_summary(clip: MediaClip) -> dict[str, Any]:
    if not clip.has_video:
        return {"backend": None, "tracks": [], "frames_without_face": []}
    tracks = clip.face_tracks
    with_face = {e.frame_index for t in tracks for e in t.entries}
    box = lambda b: [round(float(v), 2) for v in (b.x1, b.y1, b.x2, b.y2)]  # noqa: E731
    return {
        "backend": getattr(clip.face_detector, "name", type(clip.face_detector).__name__),
        "tracks": [
            {
                "track_id": t.track_id,
                "entries": [
                    {
                        "frame_index": e.frame_index,
                        "pts": round(e.pts, 6),
                        "box": box(e.box),
                        "smoothed_box": box(e.smoothed),
                        "score": round(float(e.box.score), 4),
                    }
                    for e in t.entries
                ],
            }
            for t in tracks
        ],
        "frames_without_face": [f.index for f in clip.frames if f.index not in with_face],
    }


class _Stages:
    """Maps per-stage fractions onto one overall progress fraction."""

    def __init__(self, progress: ProgressFn | None, weights: dict[str, float]):
        self.progress = progress
        total = sum(weights.values())
        self.spans: dict[str, tuple[float, float]] = {}
        acc = 0.0
        for name, w in weights.items():
            self.spans[name] = (acc / total, (acc + w) / total)
            acc += w

    def report(self, stage: str, label: str, fraction: float) -> None:
        if self.progress is not None:
            lo, hi = self.spans[stage]
            self.progress(label, lo + (hi - lo) * min(max(fraction, 0.0), 1.0))


def _detector_on_cpu(det: str | Detector, instance: Detector, exc: BaseException) -> Detector:
    """The detector to re-run on the CPU after ``exc`` (CUDA out of memory).

    A detector given by id is created again on the CPU (the CUDA one is dropped first, so
    its memory can be freed); an instance is moved with its ``to("cpu")`` when it has one.

    Raises:
        exc: an instance without ``to`` (it cannot be moved; the detector is recorded as failed).
    """
    if isinstance(det, str):
        del instance
        _release_cuda_memory()
        return create_detector(det, device="cpu")
    if callable(getattr(instance, "to", None)):
        moved = instance.to("cpu")
        _release_cuda_memory()
        return moved if moved is not None else instance
    raise exc


#: shared features computed from the sampled frames (the others come from the audio)
_FRAME_FEATURES = ("azimuthal_spectra",)


def _release_frames(clip: MediaClip, detectors: Sequence[str | Detector]) -> None:
    """Run every detector's ``cache_frame_inputs`` (see :class:`Detector`), then
    :meth:`MediaClip.release_frame_pixels`: every crop the detectors read is cut, so the
    full-resolution frames can go (190 MB for 32 sampled 1080p frames)."""
    if any(isinstance(det, str) for det in detectors):
        _load_detector_modules()
    for det in detectors:
        cls = _REGISTRY.get(det) if isinstance(det, str) else type(det)
        cache_inputs = getattr(cls, "cache_frame_inputs", None)
        if cache_inputs is None:
            continue
        try:
            cache_inputs(clip)
        except (AnalysisCancelled, KeyboardInterrupt):
            raise
        except Exception:  # the detector meets the same problem in its own run and is marked failed there
            log.debug("%s: cache_frame_inputs failed", det, exc_info=True)
    clip.release_frame_pixels()


def analyze(
    path: str | Path,
    detectors: Sequence[str | Detector] = (),
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    config: ClipConfig | None = None,
    compute_features: Iterable[str] = ("log_mel_3res", "azimuthal_spectra", "display_spectrogram"),
    fusion: Any | None = None,
) -> AnalysisResult:
    """Analyse one evidence file: probe, sample, detect faces, compute features, run detectors.

    Args:
        path: evidence file (never modified; hashed before and after).
        detectors: detector ids or instances; none → the shared stages only.
        device: ``"auto"`` (CUDA if present), ``"cpu"``, ``"cuda"``.
        progress: ``progress(stage_label, overall_fraction)``.
        cancel: ``cancel() -> bool``, polled between frames/batches.
        config: sampling and face settings (device here overrides ``config.device``).
        compute_features: shared features to compute and save even if no detector asks.
        fusion: :class:`engine.fusion.FusionRule` of the combined deepfake verdict (default: mean,
            threshold 0.5).

    Returns:
        :class:`AnalysisResult`. A detector that raises is recorded with
        ``status="failed"`` and its message; the others still run. When CUDA runs out
        of memory (``torch.cuda.OutOfMemoryError``) in face detection or in a detector,
        that step is re-run on the CPU and the result's ``warnings`` say so.

    Raises:
        EvidenceError: the evidence cannot be read at all (named file and problem).
        AnalysisCancelled: ``cancel()`` returned True.
    """
    t0 = time.perf_counter()
    started = utc_now_iso()
    bound_heap_retention()
    cfg = dataclasses.replace(config or ClipConfig(), device=device)
    n_det = len(detectors)
    stages = _Stages(progress, {"probe": 1, "frames": 3, "faces": 4, "features": 2, "detectors": 6 * n_det, "verify": 1})
    cancel = cancel or (lambda: False)

    def check_cancel() -> None:  # before the clip exists; then clip.check_cancel
        if cancel():
            raise AnalysisCancelled(f"{path}: analysis cancelled")

    stages.report("probe", "Hashing and probing", 0.0)
    evidence = probe(path, check=check_cancel)
    clip = MediaClip(path, cfg, evidence=evidence, cancel=cancel)
    clip.check_cancel()
    warnings = list(evidence.warnings)

    stages.report("frames", "Decoding sampled frames", 0.0)
    # identities only: a reference to the frames themselves would keep their pixels past the release below
    sampled = [{"index": f.index, "pts": round(f.pts, 6)} for f in clip.frames]
    stages.report("frames", "Decoding sampled frames", 1.0)

    stages.report("faces", "Detecting faces", 0.0)
    if sampled:
        clip.detect_faces(lambda f: stages.report("faces", "Detecting faces", f))
        faces = _faces_summary(clip)
        if not faces["tracks"]:
            warnings.append("no face found in any sampled frame: face-based detectors are skipped")
    else:
        faces = _faces_summary(clip)

    stages.report("features", "Computing audio and image features", 0.0)
    audio_track = clip.audio(16000)
    audio = {
        "has_audio": audio_track.has_audio,
        "missing_reason": audio_track.missing_reason,
        "codec": audio_track.codec,
        "source_sample_rate": audio_track.source_sample_rate,
        "source_channels": audio_track.source_channels,
        "duration_s": audio_track.duration_s,
        "problems": list(audio_track.problems),
    }
    features: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    # the features read from the frames first: then the frames' pixels can go before the audio features
    wanted = sorted(compute_features, key=lambda n: n not in _FRAME_FEATURES)
    for i, name in enumerate(wanted):
        clip.check_cancel()
        if name not in _FRAME_FEATURES and not clip.pixels_released:
            _release_frames(clip, detectors)
        value = None
        try:
            if name == "log_mel_3res":
                value = clip.log_mel_3res()
            elif name == "azimuthal_spectra":
                value = clip.azimuthal_spectra() if clip.face_tracks else None
            elif name == "display_spectrogram":
                spec = clip.display_spectrogram(cache=False)  # the float16 copy below is what is kept
                if spec is not None:
                    arrays["display_spectrogram/db"] = spec.db.astype(np.float16)
                    arrays["display_spectrogram/times_s"] = np.asarray(spec.times_s)
                    arrays["display_spectrogram/freqs_hz"] = np.asarray(spec.freqs_hz)
                    features[name] = _array_summary(spec.db)
                del spec
                continue
            else:
                raise KeyError(f"unknown feature {name!r}")
        except ValueError as exc:  # e.g. audio too short for the log-mel
            features[name] = {"error": str(exc)}
            warnings.append(f"{name}: {exc}")
            continue
        if value is not None:
            arrays[name] = np.asarray(value)
            features[name] = _array_summary(value)
        else:
            features[name] = None
        stages.report("features", "Computing audio and image features", (i + 1) / max(len(wanted), 1))
    if not clip.pixels_released:
        _release_frames(clip, detectors)
    trim_heap()  # the features' transient STFT buffers, the face detector's image pyramids and the frames

    results: list[DetectorResult] = []
    for k, det in enumerate(detectors):
        clip.check_cancel()
        det_id = det if isinstance(det, str) else det.id
        label = f"Running {det_id}"
        stages.report("detectors", label, k / max(n_det, 1))
        d_started, d_t0 = utc_now_iso(), time.perf_counter()
        try:
            with hash_check(clip.check_cancel):  # a weight file's hash stops on cancel too
                instance = create_detector(det, device=clip.device) if isinstance(det, str) else det
            try:
                res = instance.analyze(
                    clip, progress=lambda f, k=k: stages.report("detectors", label, (k + f) / max(n_det, 1))
                )
            except Exception as exc:
                if not is_cuda_oom(exc) or clip.device == "cpu":
                    raise
                instance = _detector_on_cpu(det, instance, exc)
                msg = f"{det_id}: CUDA out of memory on {clip.device}; re-run on CPU"
                log.warning("%s: %s", path, msg)
                clip.warnings.append(msg)
                res = instance.analyze(
                    clip, progress=lambda f, k=k: stages.report("detectors", label, (k + f) / max(n_det, 1))
                )
        except (AnalysisCancelled, KeyboardInterrupt):
            raise
        except Exception as exc:  # a failing detector must not take the others down
            log.exception("detector %s failed on %s", det_id, path)
            res = DetectorResult(det_id, getattr(det, "task", "unknown"), status="failed", message=f"{type(exc).__name__}: {exc}")
        res.started, res.finished, res.duration_s = d_started, utc_now_iso(), time.perf_counter() - d_t0
        trim_heap()  # the detector's activations are freed: keep the resident size from ratcheting up
        results.append(res)

    warnings.extend(w for w in clip.warnings if w not in warnings)
    stages.report("verify", "Re-hashing evidence", 0.0)
    from .media import sha256_file

    end_hash = sha256_file(path, check=clip.check_cancel)
    if end_hash != evidence.sha256:
        warnings.append(f"EVIDENCE CHANGED DURING ANALYSIS: SHA-256 was {evidence.sha256}, now {end_hash}")
    stages.report("verify", "Done", 1.0)
    from .fusion import FusionRule, combined_verdict

    combined = None
    if any(r.task == "deepfake" for r in results):
        combined = combined_verdict(results, fusion if fusion is not None else FusionRule())
    return AnalysisResult(
        combined=combined,
        evidence=evidence.to_dict(),
        sampling={**_policy_dict(cfg.sampling), "frames": sampled},
        faces=faces,
        audio=audio,
        features=features,
        detectors=results,
        device=clip.device,
        started=started,
        finished=utc_now_iso(),
        duration_s=time.perf_counter() - t0,
        sha256_at_end=end_hash,
        warnings=warnings,
        arrays=arrays,
    )


__all__ = [
    "AnalysisCancelled", "AnalysisResult", "ClipConfig", "DenseFaces", "Detector", "DetectorResult", "EvidenceError",
    "FrameScore", "MediaClip", "analyze", "make_plot", "create_detector", "load_result_arrays", "register_detector",
    "available_detectors", "is_cuda_oom", "registered_detectors", "resolve_device", "trim_heap",
]
