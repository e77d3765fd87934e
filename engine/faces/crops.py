"""Face crop policies, one per seed, and the single crop -> frame mapping.

Each policy turns ``(frame_rgb, FaceBox)`` into a :class:`FaceCrop`: the
crop image plus the geometry needed to map anything computed on the crop
(a Grad-CAM or relevancy heatmap, a point) back onto the frame. That mapping
is done in one place only, :meth:`FaceCrop.heatmap_to_frame`.

Registered policies (:data:`CROP_POLICIES`):

============================  =========  ==========================================================
name                          seed       rule
============================  =========  ==========================================================
``effvit_square224``          2, §2.1    box padded to a square (no margin), clamped at 0 top/left,
                                         isotropic resize (longest side 224) + centred zero pad
``mtcnn_margin40_160``        3, §3.1    facenet-pytorch ``extract_face``: margin 40 output px,
                                         clamped to the image, stretched to 160x160
``freq_square1p5``            4, §4.4    FF++ ``get_boundingbox(scale=1.5)``: square of side
                                         1.5 x max(w, h) about the centre, clipped, no resize
``tmc_shifted1p4_224``        5, §5.1    side 2.8 s (s = max(w, h)/2) square shifted down to the
                                         chin, padded with grey 110, resized to 224x224
============================  =========  ==========================================================

Coordinates: frame pixels as in :mod:`engine.faces.types` (continuous, origin
at the top-left corner of pixel (0, 0)); crop pixels likewise, on the crop image.
All crops are RGB; a model trained on BGR (seeds 2 and 5 fed BGR) must flip
the channels itself.
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from engine.faces.types import FaceBox

__all__ = [
    "FaceCrop",
    "CropPolicy",
    "EffVitSquare224",
    "MTCNNMargin40_160",
    "FreqSquare1p5",
    "TMCShifted1p4_224",
    "CROP_POLICIES",
    "get_crop_policy",
    "crop_face",
    "place_heatmap",
]

Rect = tuple[float, float, float, float]


# ---------------------------------------------------------------------------
# the crop record and its mapping back to the frame
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FaceCrop:
    """A face crop and its placement in the frame.

    The crop image is an axis-aligned, possibly anisotropically scaled copy of
    the frame rectangle ``region``: crop pixel coordinate ``(u, v)`` shows frame
    point ``(region[0] + u * sx, region[1] + v * sy)`` with
    ``sx = (region[2] - region[0]) / image_width`` and likewise ``sy``.

    Attributes:
        image: ``uint8 (S, S, 3)`` RGB crop (``(h, w, 3)`` for
            ``freq_square1p5``, whose size follows the face).
        region: ``(x1, y1, x2, y2)`` float, frame pixels: the frame rectangle
            the whole crop image covers. It may extend beyond the frame where
            the policy padded.
        content: ``(x0, y0, x1, y1)`` float, crop pixels: the part of the crop
            image holding real frame pixels (the rest is padding: zeros for
            ``effvit_square224``, 110 for ``tmc_shifted1p4_224``). Equals
            ``(0, 0, w, h)`` when nothing was padded.
        box: the face box the crop was made from (frame pixels).
        policy: the crop policy name.
        frame_hw: ``(H, W)`` of the source frame in pixels.
    """

    image: np.ndarray
    region: Rect
    content: Rect
    box: FaceBox
    policy: str
    frame_hw: tuple[int, int]

    def without_image(self) -> "FaceCrop":
        """The same placement with a read-only, zero-stride placeholder (no memory) of ``image``'s
        shape instead of the pixels: :attr:`scale`, :attr:`placement` and the heatmap mapping still
        hold. For crops whose pixels were consumed (e.g. ``deepfake.freq``'s native-resolution
        crops once their spectra exist); never read its pixels."""
        return dataclasses.replace(self, image=np.broadcast_to(np.zeros((), np.uint8), self.image.shape))

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: frame pixels per crop pixel along x and y."""
        h, w = self.image.shape[:2]
        x1, y1, x2, y2 = self.region
        return ((x2 - x1) / w, (y2 - y1) / h)

    def crop_to_frame_xy(self, points: np.ndarray) -> np.ndarray:
        """Map crop-pixel points ``float (..., 2)`` ``(u, v)`` to frame pixels ``(x, y)``."""
        p = np.asarray(points, dtype=np.float64)
        sx, sy = self.scale
        return np.stack([self.region[0] + p[..., 0] * sx, self.region[1] + p[..., 1] * sy], axis=-1)

    def frame_to_crop_xy(self, points: np.ndarray) -> np.ndarray:
        """Map frame-pixel points ``float (..., 2)`` ``(x, y)`` to crop pixels ``(u, v)``."""
        p = np.asarray(points, dtype=np.float64)
        sx, sy = self.scale
        return np.stack([(p[..., 0] - self.region[0]) / sx, (p[..., 1] - self.region[1]) / sy], axis=-1)

    @property
    def content_in_frame(self) -> Rect:
        """The frame rectangle ``(x1, y1, x2, y2)`` (frame pixels) shown by the crop's real pixels."""
        (x1, y1), (x2, y2) = self.crop_to_frame_xy(np.array([self.content[:2], self.content[2:]]))
        return (float(x1), float(y1), float(x2), float(y2))

    def heatmap_to_frame(
        self, heatmap: np.ndarray, frame_hw: Optional[tuple[int, int]] = None
    ) -> np.ndarray:
        """Map a heatmap computed on this crop onto the frame (see :func:`place_heatmap`).

        Args:
            heatmap: ``float (h, w)`` in crop coordinates, any range and resolution.
            frame_hw: ``(H, W)`` of the output; defaults to the source frame's.

        Returns:
            ``float32 (H, W)``, ``NaN`` where the crop's real content does not cover the frame.

        Raises:
            ValueError: ``heatmap`` is not 2-D or is empty.
        """
        return place_heatmap(heatmap, self.region, self.content, self.image.shape[:2],
                             self.frame_hw if frame_hw is None else frame_hw)

    @property
    def placement(self) -> dict:
        """JSON-ready placement ``{"region", "content", "size_hw"}``; :func:`place_heatmap` takes it back."""
        return {"region": [round(float(v), 3) for v in self.region],
                "content": [round(float(v), 3) for v in self.content],
                "size_hw": [int(self.image.shape[0]), int(self.image.shape[1])]}


def place_heatmap(heatmap: np.ndarray, region: Sequence[float], content: Sequence[float],
                  crop_hw: Sequence[int], frame_hw: Sequence[int]) -> np.ndarray:
    """Map a heatmap computed on a face crop onto the frame the crop came from.

    The heatmap may have any resolution; it is taken to cover the whole crop
    image (e.g. a 7x7 Grad-CAM of a 224x224 crop). It is resized to the size of
    ``region`` in frame pixels (``cv2.INTER_AREA`` when shrinking,
    ``cv2.INTER_LINEAR`` otherwise) and placed at ``region`` with sub-pixel
    accuracy (``cv2.remap`` at frame pixel centres). Used by
    :meth:`FaceCrop.heatmap_to_frame` and, from a saved result's crop placement,
    by the GUI and the report.

    Args:
        heatmap: ``float (h, w)`` in crop coordinates, any range.
        region: ``(x1, y1, x2, y2)`` frame pixels covered by the whole crop image.
        content: ``(x0, y0, x1, y1)`` crop pixels holding real frame pixels.
        crop_hw: ``(h, w)`` of the crop image in pixels.
        frame_hw: ``(H, W)`` of the output frame in pixels.

    Returns:
        ``float32 (H, W)``: the heatmap value at every frame pixel whose centre
        lies inside the crop's real content and inside the frame; ``NaN``
        everywhere else (not covered by the crop, or covered only by padding).

    Raises:
        ValueError: ``heatmap`` is not 2-D or is empty.
    """
    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 2 or hm.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {hm.shape}")
    H, W = int(frame_hw[0]), int(frame_hw[1])
    out = np.full((H, W), np.nan, dtype=np.float32)
    rx1, ry1, rx2, ry2 = (float(v) for v in region)
    rw, rh = rx2 - rx1, ry2 - ry1
    sx, sy = rw / int(crop_hw[1]), rh / int(crop_hw[0])

    # frame pixels whose centres lie inside the content rectangle
    fx1, fy1 = rx1 + content[0] * sx, ry1 + content[1] * sy
    fx2, fy2 = rx1 + content[2] * sx, ry1 + content[3] * sy
    i0, i1 = max(0, math.ceil(fx1 - 0.5)), min(W, math.ceil(fx2 - 0.5))
    j0, j1 = max(0, math.ceil(fy1 - 0.5)), min(H, math.ceil(fy2 - 0.5))
    if i1 <= i0 or j1 <= j0:
        return out

    # resize to about one heatmap pixel per frame pixel over the region
    tw, th = max(1, int(round(rw))), max(1, int(round(rh)))
    shrink = tw < hm.shape[1] or th < hm.shape[0]
    resized = cv2.resize(hm, (tw, th), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    # placement: sample `resized` at the covered frame pixel centres
    xs = (np.arange(i0, i1, dtype=np.float64) + 0.5 - rx1) * (tw / rw) - 0.5
    ys = (np.arange(j0, j1, dtype=np.float64) + 0.5 - ry1) * (th / rh) - 0.5
    map_x = np.broadcast_to(xs[None, :], (j1 - j0, i1 - i0)).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (j1 - j0, i1 - i0)).astype(np.float32)
    out[j0:j1, i0:i1] = cv2.remap(
        resized, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{type(frame).__name__} {getattr(frame, 'dtype', '')} {getattr(frame, 'shape', '')}"
        raise ValueError(f"expected a uint8 (H, W, 3) RGB frame, got {desc}")


def _extract(frame: np.ndarray, x1: int, y1: int, x2: int, y2: int, pad_value: int) -> np.ndarray:
    """Pixels ``frame[y1:y2, x1:x2]``, with out-of-frame parts filled with ``pad_value``."""
    H, W = frame.shape[:2]
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty crop rectangle ({x1}, {y1}, {x2}, {y2})")
    out = np.full((y2 - y1, x2 - x1, 3), pad_value, dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = frame[sy1:sy2, sx1:sx2]
    return out


def _resize(img: np.ndarray, w: int, h: int, down: int, up: int) -> np.ndarray:
    if img.shape[1] == w and img.shape[0] == h:
        return img.copy()
    interp = down if (w * h) < (img.shape[0] * img.shape[1]) else up
    return cv2.resize(img, (w, h), interpolation=interp)


def _floor(v: float) -> int:
    return int(math.floor(v))


# ---------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CropPolicy:
    """Base class of the crop policies: a named, immutable crop rule.

    Subclasses implement :meth:`crop`; instances live in :data:`CROP_POLICIES`.

    Attributes:
        name: registry key.
        seed_section: the spec/seeds.md section implemented.
    """

    name: str = ""
    seed_section: str = ""

    def crop(self, frame_rgb: np.ndarray, box: FaceBox) -> FaceCrop:
        """Crop ``box`` out of ``frame_rgb`` (``uint8 (H, W, 3)`` RGB, box in frame pixels).

        Raises:
            ValueError: bad frame, or a box that gives an empty crop.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class EffVitSquare224(CropPolicy):
    """Seed 2 (spec/seeds.md §2.1, ``extract_crops.py`` + the test transforms).

    1. Box corners truncated to integers; the shorter side is padded to a square
       by ``int((long - short) / 2)`` on each side; **no margin**.
    2. Crop ``frame[max(y1 - p_h, 0) : y2 + p_h, max(x1 - p_w, 0) : x2 + p_w]``:
       clamped at 0 top/left and (by slicing) at the frame's right/bottom, so
       crops at the frame edge are not square.
    3. ``IsotropicResize(224)``: longest side to 224 (``INTER_AREA`` down,
       ``INTER_CUBIC`` up), then ``PadIfNeeded(224, 224)``: centred zero padding.

    Output ``uint8 (224, 224, 3)`` RGB (the seed's model read BGR).
    """

    name: str = "effvit_square224"
    seed_section: str = "2.1"
    size: int = 224

    def crop(self, frame_rgb: np.ndarray, box: FaceBox) -> FaceCrop:
        _check_frame(frame_rgb)
        H, W = frame_rgb.shape[:2]
        b = box.clipped(W, H)
        xmin, ymin, xmax, ymax = (_floor(v) for v in b.xyxy)
        w, h = xmax - xmin, ymax - ymin
        p_w = int((h - w) / 2) if h > w else 0
        p_h = int((w - h) / 2) if w > h else 0
        x1, y1 = max(xmin - p_w, 0), max(ymin - p_h, 0)
        x2, y2 = min(xmax + p_w, W), min(ymax + p_h, H)
        patch = _extract(frame_rgb, x1, y1, x2, y2, 0)

        ch, cw = patch.shape[:2]
        S = self.size
        if max(cw, ch) == S:
            rw, rh = cw, ch
        elif cw > ch:
            rw, rh = S, max(1, int(ch * (S / cw)))
        else:
            rw, rh = max(1, int(cw * (S / ch))), S
        resized = _resize(patch, rw, rh, cv2.INTER_AREA, cv2.INTER_CUBIC)
        top, left = (S - rh) // 2, (S - rw) // 2
        image = np.zeros((S, S, 3), dtype=np.uint8)
        image[top : top + rh, left : left + rw] = resized

        sx, sy = cw / rw, ch / rh  # frame px per crop px
        rx1, ry1 = x1 - left * sx, y1 - top * sy
        region = (rx1, ry1, rx1 + S * sx, ry1 + S * sy)
        content = (float(left), float(top), float(left + rw), float(top + rh))
        return FaceCrop(image, region, content, box, self.name, (H, W))


@dataclass(frozen=True)
class MTCNNMargin40_160(CropPolicy):
    """Seed 3 (spec/seeds.md §3.1): facenet-pytorch ``extract_face(img, box, 160, margin=40)``.

    ``margin_x = 40 * (x2 - x1) / (160 - 40)`` and likewise ``margin_y``; the box
    grows by half the margin on each side, is clamped to the image and truncated
    to integers, and the patch is stretched to 160x160 (``cv2.INTER_AREA``, as
    facenet's numpy path; the aspect ratio is *not* preserved). About 20 of the
    160 output pixels on each side are margin.

    Output ``uint8 (160, 160, 3)`` RGB, 0-255 (``post_process=False``).
    """

    name: str = "mtcnn_margin40_160"
    seed_section: str = "3.1"
    size: int = 160
    margin: int = 40

    def crop(self, frame_rgb: np.ndarray, box: FaceBox) -> FaceCrop:
        _check_frame(frame_rgb)
        H, W = frame_rgb.shape[:2]
        S, m = self.size, self.margin
        mx = m * (box.x2 - box.x1) / (S - m)
        my = m * (box.y2 - box.y1) / (S - m)
        x1 = int(max(box.x1 - mx / 2, 0))
        y1 = int(max(box.y1 - my / 2, 0))
        x2 = int(min(box.x2 + mx / 2, W))
        y2 = int(min(box.y2 + my / 2, H))
        patch = _extract(frame_rgb, x1, y1, x2, y2, 0)
        image = cv2.resize(patch, (S, S), interpolation=cv2.INTER_AREA)
        return FaceCrop(
            image, (float(x1), float(y1), float(x2), float(y2)), (0.0, 0.0, float(S), float(S)), box, self.name, (H, W)
        )


@dataclass(frozen=True)
class FreqSquare1p5(CropPolicy):
    """Seed 4 (spec/seeds.md §4.4): FaceForensics++ ``get_boundingbox(face, W, H, scale=1.5)``.

    ``size = int(1.5 * max(w, h))`` about the integer box centre; the top-left
    corner is clamped at 0 and ``size`` shrunk so the square fits the frame
    (so the crop stays square, and is not re-centred at the edges). **No
    resize**: the frequency features are computed at native resolution.

    Output ``uint8 (size, size, 3)`` RGB (the seed read grey from a JPEG of it).
    """

    name: str = "freq_square1p5"
    seed_section: str = "4.4"
    scale: float = 1.5

    def crop(self, frame_rgb: np.ndarray, box: FaceBox) -> FaceCrop:
        _check_frame(frame_rgb)
        H, W = frame_rgb.shape[:2]
        b = box.clipped(W, H)
        bx1, by1, bx2, by2 = (_floor(v) for v in b.xyxy)
        size = int(max(bx2 - bx1, by2 - by1) * self.scale)
        cx, cy = (bx1 + bx2) // 2, (by1 + by2) // 2
        x1 = max(int(cx - size // 2), 0)
        y1 = max(int(cy - size // 2), 0)
        size = min(W - x1, size)
        size = min(H - y1, size)
        image = _extract(frame_rgb, x1, y1, x1 + size, y1 + size, 0)
        return FaceCrop(
            image,
            (float(x1), float(y1), float(x1 + size), float(y1 + size)),
            (0.0, 0.0, float(size), float(size)),
            box,
            self.name,
            (H, W),
        )


@dataclass(frozen=True)
class TMCShifted1p4_224(CropPolicy):
    """Seed 5 (spec/seeds.md §5.1, ``crop.py: apply_crop(margin=0.4)``).

    ``s = max(h, w) / 2`` and centre ``(cx, cy)`` of the (temporally smoothed)
    box; the frame is padded by ``int(1.8 s)`` with the constant grey **110**;
    rows ``[cy - s, cy + 1.8 s)`` and columns ``[cx - 1.4 s, cx + 1.4 s)`` are
    taken (a square of side 2.8 s = 1.4 x the box's longest side, shifted down
    to include chin and mouth), truncated to integer pixels, and resized to
    224x224 (``cv2.INTER_LINEAR``, OpenCV's default, as in the seed).

    Differences from the seed, on purpose: no random centre jitter at
    inference (the seed jittered by +-1.5 % during preprocessing), and the crop
    stays **RGB**; the seed stored ``[:, :, ::-1]`` (BGR), a storage quirk;
    a model that wants BGR flips the channels itself. Smoothing of size and
    centre (seed: ``uniform_filter1d(size=13)``) belongs to
    :func:`engine.faces.tracks.build_tracks`; pass the smoothed box here.

    Output ``uint8 (224, 224, 3)`` RGB.
    """

    name: str = "tmc_shifted1p4_224"
    seed_section: str = "5.1"
    size: int = 224
    pad_value: int = 110

    def crop(self, frame_rgb: np.ndarray, box: FaceBox) -> FaceCrop:
        _check_frame(frame_rgb)
        H, W = frame_rgb.shape[:2]
        s = max(box.height, box.width) / 2.0
        cx, cy = box.center
        if s <= 0:
            raise ValueError(f"empty face box {box.xyxy}")
        # The seed pads by int(1.8 s) and slices the padded frame with int() of
        # non-negative indices; that equals flooring the unpadded coordinates.
        # _extract pads with 110 wherever the rectangle leaves the frame.
        x1, x2 = _floor(cx - 1.4 * s), _floor(cx + 1.4 * s)
        y1, y2 = _floor(cy - s), _floor(cy + 1.8 * s)
        patch = _extract(frame_rgb, x1, y1, x2, y2, self.pad_value)
        S = self.size
        image = cv2.resize(patch, (S, S), interpolation=cv2.INTER_LINEAR)

        sx, sy = (x2 - x1) / S, (y2 - y1) / S
        # part of the crop showing real frame pixels
        cx0 = (max(x1, 0) - x1) / sx
        cy0 = (max(y1, 0) - y1) / sy
        cx1 = (min(x2, W) - x1) / sx
        cy1 = (min(y2, H) - y1) / sy
        content = (float(cx0), float(cy0), float(max(cx1, cx0)), float(max(cy1, cy0)))
        return FaceCrop(image, (float(x1), float(y1), float(x2), float(y2)), content, box, self.name, (H, W))


#: Every crop policy by name.
CROP_POLICIES: dict[str, CropPolicy] = {
    p.name: p for p in (EffVitSquare224(), MTCNNMargin40_160(), FreqSquare1p5(), TMCShifted1p4_224())
}


def get_crop_policy(policy: Union[str, CropPolicy]) -> CropPolicy:
    """Look a policy up by name (or pass a :class:`CropPolicy` through).

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if isinstance(policy, CropPolicy):
        return policy
    try:
        return CROP_POLICIES[policy]
    except KeyError:
        raise KeyError(f"unknown crop policy {policy!r}; known: {sorted(CROP_POLICIES)}") from None


def crop_face(frame_rgb: np.ndarray, box: FaceBox, policy: Union[str, CropPolicy]) -> FaceCrop:
    """Crop one face from a frame with a named policy.

    Args:
        frame_rgb: ``uint8 (H, W, 3)`` RGB frame.
        box: face box in that frame's pixel coordinates (use a track's
            ``smoothed`` box for video).
        policy: a key of :data:`CROP_POLICIES` or a :class:`CropPolicy`.

    Returns:
        The :class:`FaceCrop` (image, region, content, box, policy name, frame size).

    Raises:
        KeyError: unknown policy name.
        ValueError: bad frame or a box giving an empty crop.
    """
    return get_crop_policy(policy).crop(frame_rgb, box)
