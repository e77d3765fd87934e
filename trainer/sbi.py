"""Self-Blended Images (SBI): synthetic fakes made from one real face.

Paper: K. Shiohara and T. Yamasaki, "Detecting Deepfakes with Self-Blended
Images", CVPR 2022, arXiv:2204.08376. Implemented from the paper's text only.

A self-blended image is a real face blended with a slightly altered copy of
itself, so the only evidence of manipulation is the kind every face-swap
leaves behind: a blending boundary, a colour/frequency mismatch between the
inner face and its surroundings, and a small misalignment of facial parts.
The paper's three stages map to three functions here:

==================================  =====================================  ==============================
paper                               what it does                           here
==================================  =====================================  ==============================
§3.1 Source-Target Generator (STG)  two copies of the image; the *source*  :func:`source_target_augment`
  with Source-Target Augmentation     gets colour + frequency perturbations
  (STA)                               and a small resize/translation
§3.2 Mask Generator (MG)            face-region mask (convex hull of       :func:`blend_mask`
                                      landmarks), deformed, blurred, scaled
                                      by a random blend ratio
§3.3 blending                       ``I_SB = M * I_s + (1 - M) * I_t``      :func:`self_blend`
==================================  =====================================  ==============================

The paper names the transform families (RGB shift, hue/saturation/value,
brightness/contrast; downscaling or sharpening; resizing and translation;
elastic landmark/mask deformation; Gaussian smoothing) and the blend ratios
{0.25, 0.5, 0.75, 1, 1, 1}. The paper uses 81 dlib landmarks for the hull; we
only have the 5 MTCNN points, so the hull is built from a fixed face-outline
template fitted to those 5 points by a similarity transform (see
:func:`face_outline`). Every numeric range is in :class:`SBIConfig`, each
marked either as from the paper or as our choice.

Coordinates: *crop pixels* — ``(x, y)`` with the origin at the top-left
corner of the crop, x right, y down (as :class:`engine.faces.FaceCrop`).
A :class:`~engine.faces.FaceBox` detected on the frame must first be mapped
into the crop (``FaceCrop.frame_to_crop_xy``).

Typical use::

    rng = np.random.default_rng(0)
    fake = self_blend(crop_rgb, landmarks=lm_crop, rng=rng)   # SBISample(image, 1, mask)
    ds = SelfBlendedPairs(crops, landmarks=lms, seed=0, transform=to_tensor)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from engine.faces import FaceBox

__all__ = [
    "BLEND_RATIOS",
    "FACE_TEMPLATE_5PT",
    "FACE_OUTLINE_TEMPLATE",
    "SBIConfig",
    "SBISample",
    "SBIPair",
    "self_blend",
    "real_sample",
    "source_target_augment",
    "blend_mask",
    "face_outline",
    "SelfBlendedPairs",
]

#: Blend ratios of the Mask Generator (§3.2): the mask is multiplied by one of
#: these, drawn uniformly, so half of the fakes are fully blended (ratio 1).
BLEND_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

#: 5-point reference face (left eye, right eye, nose, mouth left, mouth right)
#: in a 112x112 aligned-face frame (the widely used ArcFace alignment template).
FACE_TEMPLATE_5PT = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

#: Face outline (mid-forehead, temples, cheeks, jaw, chin) in the same 112x112
#: frame as :data:`FACE_TEMPLATE_5PT`. Our choice, from average face
#: proportions: width at the temples ~2.2x the inter-ocular distance (IOD),
#: top ~0.85 IOD above the eyes (forehead, below the hairline), chin ~0.65x the
#: eye-mouth distance below the mouth. It stands in for the outer points of
#: the paper's 81-landmark hull.
FACE_OUTLINE_TEMPLATE = np.array(
    [
        [56.0, 22.0], [38.0, 24.5], [74.0, 24.5], [26.0, 32.0], [86.0, 32.0],
        [19.0, 47.0], [93.0, 47.0], [18.5, 64.0], [93.5, 64.0], [21.5, 82.0],
        [90.5, 82.0], [29.0, 99.0], [83.0, 99.0], [40.0, 111.0], [72.0, 111.0],
        [56.0, 117.0],
    ],
    dtype=np.float64,
)

#: Default face box when neither landmarks nor a box are given, as fractions of
#: (W, H): the face box of an MTCNN margin-40 160x160 crop (seed 3, spec §3.1:
#: a ~120 px box with ~20 px on each side), i.e. a centred face crop.
DEFAULT_BOX_FRACTIONS = (0.125, 0.125, 0.875, 0.875)


# ---------------------------------------------------------------------------
# configuration and results
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SBIConfig:
    """Every random range of the SBI generator.

    "paper" = stated in Shiohara & Yamasaki 2022; "ours" = our choice where the
    paper names the operation but not the number (kept mild so that the fake
    differs from the real only by subtle boundary artefacts). All draws are
    uniform over the range unless stated.

    Attributes:
        p_rgb_shift: probability of the RGB shift (§3.1 STA colour; ours).
        rgb_shift: per-channel additive shift ``U[-v, v]`` in uint8 levels (ours).
        p_hsv: probability of the hue/saturation/value jitter (§3.1; ours).
        hue_shift: hue shift ``U[-v, v]`` in degrees (ours).
        sat_scale: saturation factor ``U[1-v, 1+v]`` (ours).
        val_scale: value (HSV V) factor ``U[1-v, 1+v]`` (ours).
        p_brightness_contrast: probability of brightness/contrast jitter (§3.1; ours).
        brightness: additive brightness ``U[-v, v]`` as a fraction of 255 (ours).
        contrast: contrast factor ``U[1-v, 1+v]`` about the image mean (ours).
        p_frequency: probability of one frequency transform, downscale or
            sharpen with equal odds (§3.1 STA frequency; probability ours).
        downscale: downscale factor range; the image is resized down by it
            (area) and back up (linear), a low-pass blur (ours).
        sharpen: unsharp-mask amount range, ``x + a (x - G_1px(x))`` (ours).
        translate: source translation ``U[-v, v]`` as a fraction of W and of H
            (§3.1 names resizing and translation; the ±3 % range is ours).
        scale: source isotropic scale range about the crop centre (§3.1; the
            0.95-1.05 range is ours).
        elastic_alpha: elastic mask deformation amplitude range, fraction of
            the face size (§3.2 mask deformation; ours).
        elastic_grid: control-point grid of the smooth displacement field
            (``g x g`` random normal displacements, bicubic-upsampled; ours).
        morph: maximum erosion/dilation radius as a fraction of the face size;
            erode, dilate or neither with equal odds (§3.2 varied mask size; ours).
        blur_sigma: Gaussian smoothing sigma range of the mask, fraction of the
            face size (§3.2; ours).
        blend_ratios: the mask is multiplied by one of these (§3.2; paper).
    """

    p_rgb_shift: float = 0.5
    rgb_shift: float = 12.0
    p_hsv: float = 0.5
    hue_shift: float = 6.0
    sat_scale: float = 0.15
    val_scale: float = 0.1
    p_brightness_contrast: float = 0.5
    brightness: float = 0.06
    contrast: float = 0.1
    p_frequency: float = 0.5
    downscale: tuple[float, float] = (0.45, 0.85)
    sharpen: tuple[float, float] = (0.3, 1.0)
    translate: float = 0.03
    scale: tuple[float, float] = (0.95, 1.05)
    elastic_alpha: tuple[float, float] = (0.0, 0.04)
    elastic_grid: int = 5
    morph: float = 0.06
    blur_sigma: tuple[float, float] = (0.01, 0.05)
    blend_ratios: tuple[float, ...] = BLEND_RATIOS


class SBISample(NamedTuple):
    """One training sample (a ``NamedTuple``, so torch's default collate batches it).

    Attributes:
        image: ``uint8 (H, W, 3)`` RGB, crop pixels (or whatever the dataset's
            ``transform`` returned).
        label: 1 = fake (self-blended), 0 = real.
        blend_mask: ``float32 (H, W)`` in ``[0, 1]``, crop pixels: the weight of
            the source in the blend (all zeros for a real sample).
    """

    image: np.ndarray
    label: int
    blend_mask: np.ndarray


class SBIPair(NamedTuple):
    """A real crop and its self-blended fake (as the paper trains: each batch
    holds real images together with their SBIs)."""

    real: SBISample
    fake: SBISample


Landmarks = Optional[np.ndarray]
BoxLike = Optional[Union[Sequence[float], np.ndarray, "FaceBox"]]


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------
def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"expected a uint8 (H, W, 3) RGB crop, got {desc}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"crop too small for self-blending: {image.shape[:2]}")


def _check_landmarks(landmarks: object) -> Optional[np.ndarray]:
    if landmarks is None:
        return None
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"landmarks must be a finite float (5, 2) array in crop pixels, got shape {lm.shape}")
    return lm


def _box_xyxy(box: BoxLike, hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` crop pixels from a FaceBox-like, a 4-sequence or the default."""
    h, w = hw
    if box is None:
        f = DEFAULT_BOX_FRACTIONS
        return (f[0] * w, f[1] * h, f[2] * w, f[3] * h)
    if hasattr(box, "xyxy"):
        box = box.xyxy  # engine.faces.FaceBox (already in crop pixels)
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"box must be (x1, y1, x2, y2) crop pixels with x2 > x1, y2 > y1, got {box!r}")
    return tuple(float(v) for v in b)  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# §3.2 face region
# ---------------------------------------------------------------------------
def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``dst ~ s R src + t`` (Umeyama 1991); returns a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    var_s = (s0**2).sum() / len(src)
    scale = float(np.trace(np.diag(sv) @ sign) / var_s) if var_s > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """Face-outline points for the 5 landmarks: the hull input of the Mask Generator.

    :data:`FACE_OUTLINE_TEMPLATE` is mapped onto the face by the similarity
    transform (rotation, isotropic scale, translation) that best maps
    :data:`FACE_TEMPLATE_5PT` onto ``landmarks``; the 5 landmarks themselves
    are appended.

    Args:
        landmarks: float ``(5, 2)`` ``(x, y)`` crop pixels, MTCNN order (left
            eye, right eye, nose, mouth left, mouth right).

    Returns:
        float64 ``(21, 2)`` ``(x, y)`` crop pixels (may lie outside the crop).
    """
    lm = _check_landmarks(landmarks)
    m = _similarity(FACE_TEMPLATE_5PT, lm)
    outline = FACE_OUTLINE_TEMPLATE @ m[:, :2].T + m[:, 2]
    return np.vstack([outline, lm])


def _face_region(hw: tuple[int, int], landmarks: Landmarks, box: BoxLike) -> tuple[np.ndarray, float]:
    """Binary face region ``float32 (H, W)`` in {0, 1} and the face size in pixels."""
    h, w = hw
    region = np.zeros((h, w), dtype=np.uint8)
    shift = 4  # sub-pixel polygon/ellipse vertices (1/16 px)
    if landmarks is not None:
        pts = face_outline(landmarks)
        hull = cv2.convexHull(np.round(pts * (1 << shift)).astype(np.int32))
        cv2.fillConvexPoly(region, hull, 1, lineType=cv2.LINE_8, shift=shift)
        span = pts.max(0) - pts.min(0)
    else:
        x1, y1, x2, y2 = _box_xyxy(box, hw)
        # ellipse inscribed in the box (an MTCNN box spans brows..chin, cheek to cheek)
        centre = (int(round((x1 + x2) / 2 * (1 << shift))), int(round((y1 + y2) / 2 * (1 << shift))))
        axes = (int(round(0.5 * (x2 - x1) * (1 << shift))), int(round(0.5 * (y2 - y1) * (1 << shift))))
        cv2.ellipse(region, centre, axes, 0.0, 0.0, 360.0, 1, thickness=-1, lineType=cv2.LINE_8, shift=shift)
        span = np.array([x2 - x1, y2 - y1])
    return region.astype(np.float32), float(max(span.max(), 1.0))


def _elastic(mask: np.ndarray, alpha_px: float, grid: int, rng: np.random.Generator) -> np.ndarray:
    """Warp ``mask`` by a smooth random displacement field of RMS ~``alpha_px`` pixels."""
    h, w = mask.shape
    if alpha_px <= 0:
        return mask
    coarse = rng.standard_normal((2, grid, grid)).astype(np.float32) * np.float32(alpha_px)
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def blend_mask(
    hw: tuple[int, int],
    landmarks: Landmarks = None,
    box: BoxLike = None,
    *,
    rng: np.random.Generator,
    config: SBIConfig = SBIConfig(),
) -> np.ndarray:
    """The Mask Generator (§3.2): a soft, randomly deformed face-region mask.

    Steps: (1) face region = convex hull of :func:`face_outline` (landmarks)
    or the ellipse inscribed in ``box``; (2) elastic deformation by a smooth
    random field; (3) random erosion or dilation (elliptical kernel); (4)
    Gaussian smoothing; (5) normalised to a peak of 1 and multiplied by a
    blend ratio drawn from ``config.blend_ratios``.

    Args:
        hw: ``(H, W)`` of the crop in pixels.
        landmarks: optional float ``(5, 2)`` crop pixels (MTCNN order). Wins over ``box``.
        box: optional face box ``(x1, y1, x2, y2)`` in crop pixels, or a
            :class:`~engine.faces.FaceBox` already in crop pixels. With neither,
            :data:`DEFAULT_BOX_FRACTIONS` of the crop.
        rng: the random generator (all randomness comes from it).
        config: the random ranges.

    Returns:
        ``float32 (H, W)`` in ``[0, 1]``, crop pixels.
    """
    lm = _check_landmarks(landmarks)
    region, size = _face_region(hw, lm, box)
    alpha = rng.uniform(*config.elastic_alpha) * size
    mask = _elastic(region, alpha, max(2, int(config.elastic_grid)), rng)
    op = int(rng.integers(3))  # 0 erode, 1 dilate, 2 neither
    radius = int(round(rng.uniform(0.0, config.morph) * size))
    if op < 2 and radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        eroded = cv2.erode(mask, kernel) if op == 0 else cv2.dilate(mask, kernel)
        if eroded.max() > 0.5:  # never erode the face away entirely
            mask = eroded
    sigma = rng.uniform(*config.blur_sigma) * size
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    peak = float(mask.max())
    if peak > 0:
        mask = mask / peak
    ratio = float(config.blend_ratios[int(rng.integers(len(config.blend_ratios)))])
    return np.clip(mask * ratio, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------
# §3.1 source-target augmentation
# ---------------------------------------------------------------------------
def _rgb_shift(img: np.ndarray, v: float, rng: np.random.Generator) -> np.ndarray:
    return img + rng.uniform(-v, v, size=3).astype(np.float32)


def _hsv_jitter(img: np.ndarray, cfg: SBIConfig, rng: np.random.Generator) -> np.ndarray:
    u8 = np.clip(np.round(img), 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(u8, cv2.COLOR_RGB2HSV).astype(np.float32)  # H in [0, 180): 2 degrees per unit
    hsv[..., 0] = np.mod(hsv[..., 0] + rng.uniform(-cfg.hue_shift, cfg.hue_shift) / 2.0, 180.0)
    hsv[..., 1] *= rng.uniform(1 - cfg.sat_scale, 1 + cfg.sat_scale)
    hsv[..., 2] *= rng.uniform(1 - cfg.val_scale, 1 + cfg.val_scale)
    hsv[..., 0] = np.minimum(hsv[..., 0], 179.0)
    hsv = np.clip(np.round(hsv), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)


def _brightness_contrast(img: np.ndarray, cfg: SBIConfig, rng: np.random.Generator) -> np.ndarray:
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    b = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
    mean = float(img.mean())
    return (img - mean) * np.float32(c) + np.float32(mean + b)


def _frequency(img: np.ndarray, cfg: SBIConfig, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if rng.random() < 0.5:  # low-pass: downscale then upscale
        f = rng.uniform(*cfg.downscale)
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    a = rng.uniform(*cfg.sharpen)  # high-boost: unsharp mask
    blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=1.0)
    return img + np.float32(a) * (img - blurred)


def _affine(img: np.ndarray, cfg: SBIConfig, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = rng.uniform(*cfg.scale)
    tx = rng.uniform(-cfg.translate, cfg.translate) * w
    ty = rng.uniform(-cfg.translate, cfg.translate) * h
    cx, cy = w / 2.0, h / 2.0
    m = np.array([[s, 0.0, cx - s * cx + tx], [0.0, s, cy - s * cy + ty]], dtype=np.float64)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def source_target_augment(
    image: np.ndarray, *, rng: np.random.Generator, config: SBIConfig = SBIConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """The Source-Target Generator (§3.1): two copies, the source perturbed.

    Source pipeline, in order: colour (RGB shift, HSV jitter,
    brightness/contrast; each with its own probability), frequency (one of
    downscale-upscale blur or unsharp sharpening, with ``config.p_frequency``),
    then an isotropic resize about the crop centre and a translation (always;
    borders reflected). The target is the untouched image.

    Args:
        image: ``uint8 (H, W, 3)`` RGB crop.
        rng: the random generator.
        config: the random ranges.

    Returns:
        ``(source, target)``, both ``float32 (H, W, 3)`` RGB in ``[0, 255]``.
    """
    _check_image(image)
    target = image.astype(np.float32)
    src = target.copy()
    if rng.random() < config.p_rgb_shift:
        src = _rgb_shift(src, config.rgb_shift, rng)
    if rng.random() < config.p_hsv:
        src = _hsv_jitter(src, config, rng)
    if rng.random() < config.p_brightness_contrast:
        src = _brightness_contrast(src, config, rng)
    src = np.clip(src, 0.0, 255.0)
    if rng.random() < config.p_frequency:
        src = np.clip(_frequency(src, config, rng), 0.0, 255.0)
    src = _affine(src, config, rng)
    return src.astype(np.float32), target


# ---------------------------------------------------------------------------
# §3.3 blending
# ---------------------------------------------------------------------------
def self_blend(
    image: np.ndarray,
    landmarks: Landmarks = None,
    *,
    rng: Union[np.random.Generator, int, None] = None,
    box: BoxLike = None,
    config: SBIConfig = SBIConfig(),
) -> SBISample:
    """Make one self-blended fake from a real face crop.

    ``fake = M * source + (1 - M) * target`` (§3.3), with ``source, target``
    from :func:`source_target_augment` and ``M`` from :func:`blend_mask`.
    Outside the mask the fake equals the input exactly.

    Args:
        image: ``uint8 (H, W, 3)`` RGB real face crop.
        landmarks: optional float ``(5, 2)`` ``(x, y)`` crop pixels, MTCNN
            order (left eye, right eye, nose, mouth left, mouth right).
        rng: a ``np.random.Generator`` (or a seed for one). ``None`` draws
            fresh OS entropy, so pass a generator for reproducible fakes.
        box: optional face box in crop pixels, used when ``landmarks`` is
            None (see :func:`blend_mask`).
        config: the random ranges.

    Returns:
        :class:`SBISample` with ``image`` uint8 (H, W, 3), ``label`` 1 and
        ``blend_mask`` float32 (H, W) in ``[0, 1]``.

    Raises:
        ValueError: ``image`` is not ``uint8 (H, W, 3)``, or ``landmarks`` /
            ``box`` are malformed.
    """
    _check_image(image)
    lm = _check_landmarks(landmarks)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    source, target = source_target_augment(image, rng=gen, config=config)
    mask = blend_mask(image.shape[:2], lm, box, rng=gen, config=config)
    m = mask[..., None]
    fake = m * source + (1.0 - m) * target
    return SBISample(np.clip(np.round(fake), 0, 255).astype(np.uint8), 1, mask)


def real_sample(image: np.ndarray) -> SBISample:
    """The real counterpart: a copy of ``image`` (uint8 (H, W, 3)), label 0, an all-zero float32 (H, W) mask."""
    _check_image(image)
    return SBISample(image.copy(), 0, np.zeros(image.shape[:2], dtype=np.float32))


# ---------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------
class SelfBlendedPairs:
    """A map-style dataset (torch ``Dataset`` protocol) of real crops and their SBIs.

    Deterministic: the fake for crop ``i`` at epoch ``e`` is drawn from
    ``np.random.default_rng([seed, e, i])``, so it does not depend on worker
    count, order of access or earlier items; :meth:`set_epoch` moves to fresh
    fakes (call it at the start of every epoch, as with a DistributedSampler).

    Modes:
        ``"pair"`` (default): ``len == N``; item ``i`` is an :class:`SBIPair`
        ``(real, fake)`` of crop ``i`` (the paper's batches hold each real
        image with its SBI).
        ``"alternate"``: ``len == 2 N``; item ``j`` is an :class:`SBISample`
        of crop ``j // 2``, real when ``j`` is even and fake when odd.

    Args:
        images: ``uint8 (N, H, W, 3)`` RGB array, or a sequence of ``uint8
            (H, W, 3)`` crops (sizes may differ).
        landmarks: optional per-crop float ``(5, 2)`` crop pixels (array
            ``(N, 5, 2)`` or a sequence); ``None`` or NaN entries mean "no
            landmarks" (``trainer.cache`` stores NaN), and that crop's box is used.
        boxes: optional per-crop face boxes in crop pixels (``(N, 4)`` or a
            sequence with ``None``), used where a crop has no landmarks.
        seed: base seed (non-negative int).
        mode: ``"pair"`` or ``"alternate"``.
        transform: optional callable applied to every image (real and fake)
            *after* blending, e.g. normalisation + ``ToTensor``. The mask is
            not transformed: a geometric transform must handle it itself.
        config: the SBI random ranges.

    Raises:
        ValueError: a bad mode or seed, or ``landmarks``/``boxes`` whose
            length differs from ``images``.
    """

    def __init__(
        self,
        images: Union[np.ndarray, Sequence[np.ndarray]],
        landmarks: Optional[Union[np.ndarray, Sequence[Optional[np.ndarray]]]] = None,
        boxes: Optional[Union[np.ndarray, Sequence[Optional[Sequence[float]]]]] = None,
        *,
        seed: int = 0,
        mode: str = "pair",
        transform: Optional[Callable[[np.ndarray], object]] = None,
        config: SBIConfig = SBIConfig(),
    ) -> None:
        if mode not in ("pair", "alternate"):
            raise ValueError(f"mode must be 'pair' or 'alternate', got {mode!r}")
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        self.images = images
        n = len(images)
        for name, extra in (("landmarks", landmarks), ("boxes", boxes)):
            if extra is not None and len(extra) != n:
                raise ValueError(f"{name} has {len(extra)} entries for {n} images")
        self.landmarks = landmarks
        self.boxes = boxes
        self.seed = int(seed)
        self.mode = mode
        self.transform = transform
        self.config = config
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the fakes of ``epoch`` (non-negative int)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.images)
        return n if self.mode == "pair" else 2 * n

    def _crop(self, i: int) -> np.ndarray:
        return np.asarray(self.images[i])

    def _fake(self, i: int) -> SBISample:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        lm = None if self.landmarks is None else self.landmarks[i]
        if lm is not None and not np.isfinite(np.asarray(lm, dtype=np.float64)).all():
            lm = None  # NaN marks "no landmarks" (trainer.cache's landmarks/<policy>)
        box = None if self.boxes is None else self.boxes[i]
        return self_blend(self._crop(i), lm, rng=rng, box=box, config=self.config)

    def _out(self, sample: SBISample) -> SBISample:
        if self.transform is None:
            return sample
        return SBISample(self.transform(sample.image), sample.label, sample.blend_mask)

    def __getitem__(self, index: int) -> Union[SBIPair, SBISample]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        if self.mode == "pair":
            return SBIPair(self._out(real_sample(self._crop(index))), self._out(self._fake(index)))
        i, is_fake = divmod(index, 2)
        sample = self._fake(i) if is_fake else real_sample(self._crop(i))
        return self._out(sample)
