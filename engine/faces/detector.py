"""Face detectors: the :class:`FaceDetector` protocol, MTCNN (default) and RetinaFace (optional).

* :class:`MTCNNDetector` wraps ``facenet_pytorch.MTCNN`` with the settings of
  seed 2 (spec/seeds.md §2.1: ``thresholds=[0.85, 0.95, 0.95]``, ``margin=0``,
  batches of 32, detection on a downscaled frame, boxes rescaled to full
  resolution). It is the offline default: its P/R/O-Net weights ship inside the
  facenet-pytorch wheel (``facenet_pytorch/data/{pnet,rnet,onet}.pt``).

  Weight-loading safety: facenet-pytorch 2.5.3 loads those files in
  ``facenet_pytorch/models/mtcnn.py`` with a bare torch ``load`` call (no arguments) followed
  by ``load_state_dict``. The files are plain ``OrderedDict[str, Tensor]``
  state dicts, and since torch 2.6 that loader defaults to
  ``weights_only=True``, which unpickles only tensors and primitive
  containers, never code. Checked under torch 2.11: loading all three files
  with ``weights_only=True`` succeeds (``tests/engine/faces/test_face_detector.py``
  checks this, and also checks that facenet's own calls leave ``weights_only``
  at that default). The one exception is the environment variable
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, which switches the default off; the
  detector logs a warning when it is set. (Those files also come from the same
  wheel as facenet's own Python code, so they are exactly as trusted as that code.)

* :class:`RetinaFaceDetector` wraps serengil's ``retina-face`` package
  (TensorFlow/Keras, ``retinaface.h5`` weights). It is used only when the
  package imports **and** its weights file already exists; it never downloads.
  The weights are looked up in this order: ``$FORENSIC_RETINAFACE_WEIGHTS`` (a
  file path), then ``$DEEPFACE_HOME/.deepface/weights/retinaface.h5``, then
  ``~/.deepface/weights/retinaface.h5``.
  Seed 5 (§5.1) used a different RetinaFace (ternaus, ResNet50, PyTorch), whose
  weights cannot be obtained here. Either detector feeds the same crop policies.

* :func:`create_face_detector` picks a backend by name (``'auto'``,
  ``'mtcnn'``, ``'retinaface'``) and falls back to MTCNN with a logged message
  that names the missing file.

All detectors take RGB ``uint8 (H, W, 3)`` frames and return
:class:`~engine.faces.types.FaceBox` objects in the coordinates of the frame
they were given, best score first.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import threading
import types
from pathlib import Path
from typing import Iterator, Optional, Protocol, Sequence, Union, runtime_checkable

import cv2
import numpy as np
import torch

from engine.faces.types import FaceBox

__all__ = [
    "FaceDetector",
    "MTCNNDetector",
    "RetinaFaceDetector",
    "RetinaFaceUnavailable",
    "create_face_detector",
    "retinaface_status",
    "retinaface_weights_path",
    "resolve_device",
    "RETINAFACE_WEIGHTS_ENV",
]

log = logging.getLogger(__name__)

#: Environment variable holding an explicit path to serengil's ``retinaface.h5``.
RETINAFACE_WEIGHTS_ENV = "FORENSIC_RETINAFACE_WEIGHTS"

DeviceLike = Union[str, torch.device]


@runtime_checkable
class FaceDetector(Protocol):
    """What every face detector backend provides.

    Attributes:
        name: short backend id (``"mtcnn"``, ``"retinaface"``), recorded in
            result provenance.
    """

    name: str

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Detect faces in a batch of frames.

        Args:
            images: frames, each ``uint8 (H, W, 3)`` RGB; sizes may differ.

        Returns:
            One list per input image, in input order, of boxes in that image's
            own pixel coordinates, sorted by score descending (empty when no face).
        """
        ...


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def resolve_device(device: DeviceLike = "cpu") -> torch.device:
    """Turn ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'auto'`` or a ``torch.device`` into a device.

    ``'auto'`` means CUDA when available, else CPU.

    Raises:
        RuntimeError: a CUDA device was asked for but CUDA is not available.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"face detector asked for device {dev} but CUDA is not available")
    return dev


def _check_image(img: np.ndarray, i: int) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{type(img).__name__} {getattr(img, 'dtype', '')} {getattr(img, 'shape', '')}"
        raise ValueError(f"image {i}: expected a uint8 (H, W, 3) RGB array, got {desc}")


def _sort_boxes(boxes: list[FaceBox]) -> list[FaceBox]:
    # score descending; ties broken by position so the order is deterministic
    return sorted(boxes, key=lambda b: (-b.score, b.y1, b.x1, b.y2, b.x2))


# ---------------------------------------------------------------------------
# MTCNN
# ---------------------------------------------------------------------------
class MTCNNDetector:
    """facenet-pytorch MTCNN with seed 2's settings (spec/seeds.md §2.1).

    Each frame is downscaled (``cv2.INTER_AREA``) so its longest side is at most
    ``max_side`` pixels, frames of equal detection size go through one
    ``MTCNN.detect`` call in chunks of ``batch_size``, and the boxes and
    landmarks are scaled back to the original frame and clipped to it. Seed 2
    detected every 1080p frame at half resolution; ``max_side=960`` does the
    same for 1920x1080 and leaves frames of 960 px or less untouched.

    Args:
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'auto'`` or a
            ``torch.device``; the three networks run there.
        thresholds: P-Net, R-Net, O-Net probability thresholds (seed 2:
            ``(0.85, 0.95, 0.95)``; facenet's default is ``(0.6, 0.7, 0.7)``).
        min_face_size: smallest face MTCNN looks for, in pixels **of the
            downscaled detection image** (facenet's meaning), so on a 1080p
            frame with ``max_side=960`` the smallest face found is about 40 px.
        max_side: longest side of the detection image in pixels; ``None`` or
            0 detects at full resolution.
        batch_size: frames per ``MTCNN.detect`` call.
        factor: scale step of MTCNN's image pyramid (facenet default 0.709).

    Raises:
        RuntimeError: CUDA asked for but not available.
        ValueError: invalid ``thresholds``, ``batch_size`` or ``max_side``.
    """

    name = "mtcnn"

    def __init__(
        self,
        device: DeviceLike = "cpu",
        thresholds: Sequence[float] = (0.85, 0.95, 0.95),
        min_face_size: int = 20,
        max_side: Optional[int] = 960,
        batch_size: int = 32,
        factor: float = 0.709,
    ) -> None:
        from facenet_pytorch import MTCNN  # heavy import, deferred

        if len(thresholds) != 3 or not all(0.0 <= float(t) <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_side is not None and max_side < 0:
            raise ValueError(f"max_side must be >= 0 or None, got {max_side}")
        if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0").lower() in ("1", "y", "yes", "true"):
            log.warning(
                "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set: facenet-pytorch's MTCNN weights will be "
                "loaded with full unpickling instead of torch's weights_only loader"
            )
        self.device = resolve_device(device)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.min_face_size = int(min_face_size)
        self.max_side = int(max_side) if max_side else 0
        self.batch_size = int(batch_size)
        self.factor = float(factor)
        self._mtcnn = MTCNN(
            margin=0,
            min_face_size=self.min_face_size,
            thresholds=list(self.thresholds),
            factor=self.factor,
            keep_all=True,
            select_largest=False,  # boxes come back in probability order
            post_process=False,
            device=self.device,
        )
        self._mtcnn.eval()

    @property
    def params(self) -> dict:
        """The detector settings, JSON-serialisable, for result provenance."""
        return {
            "backend": self.name,
            "thresholds": list(self.thresholds),
            "min_face_size": self.min_face_size,
            "max_side": self.max_side,
            "factor": self.factor,
            "device": str(self.device),
        }

    def _detection_size(self, h: int, w: int) -> tuple[int, int]:
        longest = max(h, w)
        if not self.max_side or longest <= self.max_side:
            return h, w
        s = self.max_side / float(longest)
        return max(1, int(round(h * s))), max(1, int(round(w * s)))

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Detect all faces in each frame (``keep_all=True``).

        Args:
            images: frames, each ``uint8 (H, W, 3)`` RGB; sizes may differ
                (frames are grouped by detection size, order is preserved).

        Returns:
            For each input frame, its faces as :class:`FaceBox` in that frame's
            original pixel coordinates (clipped to the frame), with 5 landmarks,
            sorted by score descending; ``[]`` when no face passes the thresholds.

        Raises:
            ValueError: an image is not ``uint8 (H, W, 3)``.
        """
        results: list[list[FaceBox]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        small: list[Optional[np.ndarray]] = [None] * len(images)
        for i, img in enumerate(images):
            _check_image(img, i)
            h, w = img.shape[:2]
            dh, dw = self._detection_size(h, w)
            # MTCNN's image pyramid starts at scale 12/min_face_size: a frame smaller than
            # min_face_size (or the 12 px P-Net window) has no pyramid level, nothing to find
            if min(dh, dw) < max(12, self.min_face_size):
                continue
            small[i] = img if (dh, dw) == (h, w) else cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA)
            groups.setdefault((dh, dw), []).append(i)

        for (dh, dw), idxs in groups.items():
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start : start + self.batch_size]
                batch = np.stack([small[i] for i in chunk])
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
                for j, i in enumerate(chunk):
                    h, w = images[i].shape[:2]
                    results[i] = self._to_faceboxes(boxes[j], probs[j], points[j], w / dw, h / dh, w, h)
        return results

    @staticmethod
    def _to_faceboxes(
        boxes: Optional[np.ndarray],
        probs: Sequence,
        points: Optional[np.ndarray],
        sx: float,
        sy: float,
        w: int,
        h: int,
    ) -> list[FaceBox]:
        if boxes is None or len(boxes) == 0:
            return []
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        pts = None if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
        out: list[FaceBox] = []
        for k in range(len(boxes)):
            x1, y1, x2, y2 = boxes[k] * (sx, sy, sx, sy)
            x1, x2 = np.clip([x1, x2], 0.0, w)
            y1, y2 = np.clip([y1, y2], 0.0, h)
            if x2 - x1 < 1.0 or y2 - y1 < 1.0:
                continue
            lm = None if pts is None else (pts[k] * (sx, sy)).astype(np.float32)
            score = float(np.clip(probs[k], 0.0, 1.0))
            out.append(FaceBox(float(x1), float(y1), float(x2), float(y2), score, lm))
        return _sort_boxes(out)


# ---------------------------------------------------------------------------
# RetinaFace (optional)
# ---------------------------------------------------------------------------
class RetinaFaceUnavailable(RuntimeError):
    """RetinaFace cannot be used: the ``retina-face`` package or its weights file is missing.

    Attributes:
        weights_path: the weights file that was looked for (``Path``).
    """

    def __init__(self, message: str, weights_path: Path) -> None:
        super().__init__(message)
        self.weights_path = weights_path


def retinaface_weights_path() -> Path:
    """Where serengil's ``retinaface.h5`` is looked for (the file need not exist).

    Order: ``$FORENSIC_RETINAFACE_WEIGHTS`` if set, else
    ``$DEEPFACE_HOME/.deepface/weights/retinaface.h5`` if ``DEEPFACE_HOME`` is
    set, else ``~/.deepface/weights/retinaface.h5``.
    """
    explicit = os.environ.get(RETINAFACE_WEIGHTS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("DEEPFACE_HOME") or str(Path.home())
    return Path(home).expanduser() / ".deepface" / "weights" / "retinaface.h5"


def retinaface_status() -> tuple[bool, str]:
    """Check, without importing TensorFlow or touching the network, whether RetinaFace is usable.

    Returns:
        ``(True, path)`` when the ``retinaface`` package is installed and the
        weights file exists, else ``(False, reason)`` where ``reason`` names
        what is missing (the package, or the weights file's full path).
    """
    weights = retinaface_weights_path()
    problems = []
    if not weights.is_file():
        problems.append(
            f"RetinaFace weights file not found: {weights} (set ${RETINAFACE_WEIGHTS_ENV} or place "
            "retinaface.h5 under $DEEPFACE_HOME/.deepface/weights/; it is never downloaded)"
        )
    try:
        spec = importlib.util.find_spec("retinaface")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        problems.append("the optional 'retina-face' package is not installed (pip install retina-face)")
    if problems:
        return False, "; ".join(problems)
    return True, str(weights)


_RETINA_BUILD_LOCK = threading.Lock()


def _refuse_download(*_args, **_kwargs):
    raise RuntimeError("engine.faces never downloads RetinaFace weights")


@contextlib.contextmanager
def _offline_retinaface_build(weights: Path) -> Iterator[None]:
    """Patch serengil's weight loaders so a model build reads ``weights`` and can never download.

    Covers the TensorFlow ``retinaface_model.load_weights(model)`` hook (retina-face
    <= 0.0.17), the newer ``weight_utils.download_weights_if_necessary`` and any
    module-level ``gdown`` reference. The patches are undone on exit.
    """
    patches: list[tuple[object, str, object]] = []

    def patch(obj: object, attr: str, value: object) -> None:
        if hasattr(obj, attr):
            patches.append((obj, attr, getattr(obj, attr)))
            setattr(obj, attr, value)

    def load_weights(model):
        model.load_weights(str(weights))
        return model

    def weights_if_necessary(file_name, *_args, **_kwargs):
        if Path(str(file_name)).name != weights.name:
            raise RuntimeError(f"engine.faces never downloads RetinaFace files ({file_name})")
        return str(weights)

    no_gdown = types.SimpleNamespace(download=_refuse_download, cached_download=_refuse_download)
    for modname in (
        "retinaface.model.retinaface_model",
        "retinaface.commons.weight_utils",
        "retinaface.RetinaFace",
    ):
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        patch(mod, "load_weights", load_weights)
        patch(mod, "download_weights_if_necessary", weights_if_necessary)
        patch(mod, "gdown", no_gdown)
    try:
        yield
    finally:
        for obj, attr, old in reversed(patches):
            setattr(obj, attr, old)


class RetinaFaceDetector:
    """serengil ``retina-face`` (RetinaFace ResNet50, Keras) behind the :class:`FaceDetector` protocol.

    Only constructed when the package imports and the weights file exists
    (see :func:`retinaface_weights_path`); the weights are loaded from that
    file with the package's download code patched out, so nothing is fetched.
    Frames are processed one at a time (the package has no batch API) and
    handed to it as BGR, which is what it expects.

    Args:
        threshold: minimum face score in ``[0, 1]`` (package default 0.9).
        allow_upscaling: passed to ``RetinaFace.detect_faces``.

    Raises:
        RetinaFaceUnavailable: the package or the weights file is missing, or
            the model cannot be built from that file.
    """

    name = "retinaface"

    def __init__(self, threshold: float = 0.9, allow_upscaling: bool = True) -> None:
        ok, reason = retinaface_status()
        weights = retinaface_weights_path()
        if not ok:
            raise RetinaFaceUnavailable(reason, weights)
        try:
            rf = importlib.import_module("retinaface.RetinaFace")
        except Exception as exc:  # ImportError, or TensorFlow failing to initialise
            raise RetinaFaceUnavailable(f"cannot import retinaface.RetinaFace: {exc}", weights) from exc
        try:
            with _RETINA_BUILD_LOCK, _offline_retinaface_build(weights):
                self._model = rf.build_model()
        except Exception as exc:
            raise RetinaFaceUnavailable(f"cannot build RetinaFace from {weights}: {exc}", weights) from exc
        self._rf = rf
        self.threshold = float(threshold)
        self.allow_upscaling = bool(allow_upscaling)
        self.weights_path = weights
        self.device = torch.device("cpu")  # TensorFlow chooses its own device

    @property
    def params(self) -> dict:
        """The detector settings, JSON-serialisable, for result provenance."""
        return {"backend": self.name, "threshold": self.threshold, "weights": str(self.weights_path)}

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Detect faces in each RGB ``uint8 (H, W, 3)`` frame; see :meth:`FaceDetector.detect_batch`.

        Raises:
            ValueError: an image is not ``uint8 (H, W, 3)``.
        """
        out: list[list[FaceBox]] = []
        for i, img in enumerate(images):
            _check_image(img, i)
            h, w = img.shape[:2]
            bgr = np.ascontiguousarray(img[:, :, ::-1])
            resp = self._rf.detect_faces(
                bgr, threshold=self.threshold, model=self._model, allow_upscaling=self.allow_upscaling
            )
            boxes: list[FaceBox] = []
            if isinstance(resp, dict):
                for face in resp.values():
                    x1, y1, x2, y2 = (float(v) for v in face["facial_area"])
                    x1, x2 = float(np.clip(x1, 0, w)), float(np.clip(x2, 0, w))
                    y1, y2 = float(np.clip(y1, 0, h)), float(np.clip(y2, 0, h))
                    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
                        continue
                    lm = face.get("landmarks") or {}
                    keys = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
                    # the subject's right eye is on the image's left: same order as MTCNN
                    pts = np.array([lm[k] for k in keys], np.float32) if all(k in lm for k in keys) else None
                    score = float(np.clip(float(face["score"]), 0.0, 1.0))
                    boxes.append(FaceBox(x1, y1, x2, y2, score, pts))
            out.append(_sort_boxes(boxes))
        return out


# ---------------------------------------------------------------------------
# factory
# ---------------------------------------------------------------------------
def create_face_detector(
    backend: str = "auto", device: DeviceLike = "cpu", strict: bool = False
) -> FaceDetector:
    """Create a face detector by backend name.

    Args:
        backend: ``'mtcnn'``; ``'retinaface'`` (falls back to MTCNN with a
            WARNING log naming the missing package or weights file, unless
            ``strict``); ``'auto'`` (RetinaFace when it is usable, otherwise
            MTCNN, silently).
        device: torch device for MTCNN (``'cpu'``, ``'cuda'``, ``'auto'``, ...).
        strict: with ``backend='retinaface'``, raise instead of falling back.

    Returns:
        An object satisfying :class:`FaceDetector`.

    Raises:
        ValueError: unknown backend name.
        RetinaFaceUnavailable: ``strict=True`` and RetinaFace cannot be used.
        RuntimeError: CUDA asked for but not available.
    """
    backend = backend.lower()
    if backend == "mtcnn":
        return MTCNNDetector(device=device)
    if backend == "retinaface":
        try:
            return RetinaFaceDetector()
        except RetinaFaceUnavailable as exc:
            if strict:
                raise
            log.warning("RetinaFace requested but unavailable: %s. Falling back to MTCNN.", exc)
            return MTCNNDetector(device=device)
    if backend == "auto":
        ok, reason = retinaface_status()
        if ok:
            try:
                return RetinaFaceDetector()
            except RetinaFaceUnavailable as exc:
                log.info("RetinaFace not usable (%s); using MTCNN", exc)
        else:
            log.debug("RetinaFace not available (%s); using MTCNN", reason)
        return MTCNNDetector(device=device)
    raise ValueError(f"unknown face detector backend {backend!r}; use 'auto', 'mtcnn' or 'retinaface'")
