"""Value types shared by the face detector, the tracker and the crop policies.

Coordinate frame: every :class:`FaceBox` is in **frame pixels** of the image it
was detected on (after the container rotation has been applied by
``engine.media``), origin at the top-left corner of the top-left pixel, x to the
right, y down, ``x2``/``y2`` exclusive-style continuous edges (a box covering
pixel columns 10..19 is ``x1=10, x2=20``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

__all__ = ["FaceBox"]


def _readonly_landmarks(landmarks: object) -> Optional[np.ndarray]:
    if landmarks is None:
        return None
    arr = np.array(landmarks, dtype=np.float32)  # always a private copy
    if arr.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FaceBox:
    """One detected face: an axis-aligned box, a confidence and optional landmarks.

    Attributes:
        x1: left edge, pixels, frame coordinates (float).
        y1: top edge, pixels, frame coordinates (float).
        x2: right edge, pixels, frame coordinates; ``x2 >= x1``.
        y2: bottom edge, pixels, frame coordinates; ``y2 >= y1``.
        score: detector confidence in ``[0, 1]`` (MTCNN's ONet probability,
            RetinaFace's score, or 1.0 for a hand-made box).
        landmarks: optional read-only ``float32 (5, 2)`` array of ``(x, y)``
            points in frame pixels, MTCNN/RetinaFace order: left eye, right
            eye, nose, left mouth corner, right mouth corner (image left/right).

    Raises:
        ValueError: on non-finite coordinates, ``x2 < x1`` or ``y2 < y1``, a
            score outside ``[0, 1]`` or landmarks not of shape ``(5, 2)``.

    Equality compares coordinates, score and landmarks by value; boxes are
    hashable (landmarks are excluded from the hash).
    """

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0
    landmarks: Optional[np.ndarray] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("x1", "y1", "x2", "y2", "score"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"FaceBox.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, value)
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(
                f"FaceBox needs x2 >= x1 and y2 >= y1, got ({self.x1}, {self.y1}, {self.x2}, {self.y2})"
            )
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"FaceBox.score must be in [0, 1], got {self.score}")
        object.__setattr__(self, "landmarks", _readonly_landmarks(self.landmarks))

    # ------------------------------------------------------------------ helpers
    @property
    def width(self) -> float:
        """Box width ``x2 - x1`` in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """Box height ``y2 - y1`` in pixels."""
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        """Box centre ``(cx, cy)`` in frame pixels."""
        return (0.5 * (self.x1 + self.x2), 0.5 * (self.y1 + self.y2))

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """The box as a plain ``(x1, y1, x2, y2)`` tuple of floats (pixels)."""
        return (self.x1, self.y1, self.x2, self.y2)

    def iou(self, other: "FaceBox") -> float:
        """Intersection over union with ``other`` (both in the same frame coordinates).

        Returns:
            A float in ``[0, 1]``; 0.0 when the union is empty (two degenerate boxes).
        """
        ix = min(self.x2, other.x2) - max(self.x1, other.x1)
        iy = min(self.y2, other.y2) - max(self.y1, other.y1)
        inter = max(ix, 0.0) * max(iy, 0.0)
        union = self.area + other.area - inter
        return float(inter / union) if union > 0 else 0.0

    def scaled(self, sx: float, sy: Optional[float] = None) -> "FaceBox":
        """Return the box (and landmarks) with x multiplied by ``sx`` and y by ``sy``.

        Used to map boxes found on a resized image back to the original frame:
        ``sx = W_original / W_resized``. ``sy`` defaults to ``sx``.
        """
        sy = sx if sy is None else sy
        lm = None
        if self.landmarks is not None:
            lm = self.landmarks * np.array([sx, sy], dtype=np.float32)
        return FaceBox(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy, self.score, lm)

    def clipped(self, width: int, height: int) -> "FaceBox":
        """Return the box clipped to the image ``[0, width] x [0, height]`` (pixels).

        Landmarks are kept unchanged (they may legitimately lie outside the frame).
        """
        x1 = min(max(self.x1, 0.0), float(width))
        y1 = min(max(self.y1, 0.0), float(height))
        x2 = min(max(self.x2, 0.0), float(width))
        y2 = min(max(self.y2, 0.0), float(height))
        return FaceBox(x1, y1, x2, y2, self.score, self.landmarks)

    @classmethod
    def from_center_size(
        cls, cx: float, cy: float, w: float, h: float, score: float = 1.0
    ) -> "FaceBox":
        """Build a box from its centre ``(cx, cy)`` and size ``(w, h)``, all in pixels."""
        return cls(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0, score)

    # ---------------------------------------------------------------- equality
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaceBox):
            return NotImplemented
        if (self.x1, self.y1, self.x2, self.y2, self.score) != (
            other.x1,
            other.y1,
            other.x2,
            other.y2,
            other.score,
        ):
            return False
        if self.landmarks is None or other.landmarks is None:
            return self.landmarks is None and other.landmarks is None
        return bool(np.array_equal(self.landmarks, other.landmarks))

    def __hash__(self) -> int:
        return hash((self.x1, self.y1, self.x2, self.y2, self.score))
