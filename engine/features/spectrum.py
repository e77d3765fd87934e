"""Azimuthally averaged FFT spectrum of a face crop (seeds.md §4.1).

Seed 4 ("Frequency Solver", after Durall et al., "Unmasking DeepFakes with
simple Features") describes an image by the 1-D profile of its log-magnitude
spectrum averaged over rings of equal spatial frequency, resampled to 300
values and normalised by the first one.

Pipeline, numbered as seeds.md §4.1:

1. grayscale with OpenCV luma (``cv2.COLOR_RGB2GRAY``; the seed read files
   with ``cv2.imread(path, 0)``, which for JPEGs lets libjpeg do the
   conversion and can differ by +-1 grey level),
2. keep the middle third: ``img[H//3:-(H//3), W//3:-(W//3)]``, no resizing,
3. ``F = fftshift(fft2(img)) + 1e-8``; ``mag = 20 * ln|F|``,
4. azimuthal average around the fractional centre
   ``((W-1)/2, (H-1)/2)`` with integer radius bins ``floor(r)``; the seed's
   cumulative-sum construction yields the mean of bins 1 .. last-1 (DC bin 0
   and the outermost, partial corner bin are dropped). We compute the same
   bin means with ``np.bincount``,
5. cubic ``griddata`` from ``linspace(0, N, len(profile))`` onto
   ``linspace(0, N, N)``, divided by its first value.

Intended behaviour, not the seed's quirk (§4.1 item 6): the seed left rows of
zeros for missing images; here every call returns a finite feature vector or
raises ``ValueError``.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np
from scipy.interpolate import griddata

__all__ = ["SPECTRUM_FEATURES", "MIN_CROP_PX", "azimuthal_spectrum", "azimuthal_spectra"]

SPECTRUM_FEATURES = 300
"""Default feature length N (seeds.md §4.1 step 5)."""

MIN_CROP_PX = 10
"""Smallest side (px) of the centre crop: 10x10 gives 5 ring means, enough
for cubic interpolation (>= 4 points). Images need >= 28x28 px."""


def _to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 (H,W,3) RGB or (H,W) gray -> uint8 (H,W) gray (OpenCV luma)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255), got dtype {img.dtype}")
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"image must be (H,W,3) RGB or (H,W) grayscale, got shape {img.shape}")


def _centre_third(gray: np.ndarray) -> np.ndarray:
    """(H,W) -> (H - 2*(H//3), W - 2*(W//3)) middle third (seed step 2)."""
    h, w = gray.shape[0] // 3, gray.shape[1] // 3
    crop = gray[h : gray.shape[0] - h, w : gray.shape[1] - w]
    if min(crop.shape) < MIN_CROP_PX:
        raise ValueError(
            f"image too small for the azimuthal spectrum: {gray.shape[1]}x{gray.shape[0]} px gives "
            f"a {crop.shape[1]}x{crop.shape[0]} px centre crop, need >= {MIN_CROP_PX}x{MIN_CROP_PX}"
        )
    return crop


def _log_magnitude(img: np.ndarray) -> np.ndarray:
    """(h,w) gray -> float64 (h,w) centred ``20*ln|FFT + 1e-8|`` (seed step 3)."""
    spectrum = np.fft.fftshift(np.fft.fft2(img)) + 1e-8
    return 20.0 * np.log(np.abs(spectrum))


def _azimuthal_average(mag: np.ndarray) -> np.ndarray:
    """float64 (h,w) -> float64 (n_bins - 2,) ring means, bins 1 .. last-1 (seed step 4).

    Bin ``k`` holds the pixels with ``k <= r < k+1``, ``r`` the distance (px)
    to the fractional centre ``((w-1)/2, (h-1)/2)``. The seed's
    ``cumsum``/``np.where(diff)`` construction returns the means of the
    occupied bins except the first (DC) and the last (partial corner ring);
    bins are never empty in between, so this is ``means[1:-1]``.
    """
    y, x = np.indices(mag.shape)
    radius = np.hypot(x - (mag.shape[1] - 1) / 2, y - (mag.shape[0] - 1) / 2).astype(int).ravel()
    counts = np.bincount(radius)
    sums = np.bincount(radius, weights=mag.ravel())
    occupied = counts > 0
    return (sums[occupied] / counts[occupied])[1:-1]


def _interpolate(profile: np.ndarray, n_features: int) -> np.ndarray:
    """(P,) ring means -> (n_features,) cubic resampling / first value (seed step 5)."""
    points = np.linspace(0, n_features, num=len(profile))
    xi = np.linspace(0, n_features, n_features)
    resampled = griddata(points, profile, xi, method="cubic")
    if not np.all(np.isfinite(resampled)) or resampled[0] == 0:
        raise ValueError("degenerate azimuthal profile (non-finite values or zero first value)")
    return resampled / resampled[0]


def azimuthal_spectrum(rgb_or_gray: np.ndarray, n_features: int = SPECTRUM_FEATURES) -> np.ndarray:
    """Azimuthally averaged log-magnitude spectrum of one face crop (seeds.md §4.1).

    Args:
        rgb_or_gray: uint8 ``(H, W, 3)`` RGB (channel order R, G, B) or uint8
            ``(H, W)`` grayscale face crop in pixels, not resized (e.g. the
            "square 1.5x box" crop). Needs H, W >= 28 so that the centre third
            is at least ``MIN_CROP_PX`` = 10 px on each side.
        n_features: output length N (default 300).

    Returns:
        float64 ``(n_features,)``; element 0 is exactly 1.0. Index ``i``
        corresponds to the radius fraction ``i / (N-1)`` of the profile from
        ring 1 (just above DC) to the last complete ring (pixels of the crop).

    Raises:
        ValueError: not uint8, wrong shape, image too small, or a degenerate
            (non-finite / zero-leading) profile. Never returns zeros or NaN.
    """
    crop = _centre_third(_to_gray(rgb_or_gray))
    profile = _azimuthal_average(_log_magnitude(crop))
    if len(profile) < 4:
        raise ValueError(f"degenerate azimuthal profile: {len(profile)} rings, cubic needs >= 4")
    return _interpolate(profile, n_features)


def azimuthal_spectra(images: Iterable[np.ndarray], n_features: int = SPECTRUM_FEATURES) -> np.ndarray:
    """Stack :func:`azimuthal_spectrum` over several crops of any size (seeds.md §4.1).

    Args:
        images: iterable of uint8 ``(H, W, 3)`` RGB or ``(H, W)`` gray crops.
        n_features: output length N per image.

    Returns:
        float64 ``(M, n_features)``; ``(0, n_features)`` for no images.

    Raises:
        ValueError: for the first bad image, with its index in the message.
    """
    rows = []
    for i, image in enumerate(images):
        try:
            rows.append(azimuthal_spectrum(image, n_features))
        except ValueError as err:
            raise ValueError(f"image {i}: {err}") from err
    return np.stack(rows) if rows else np.zeros((0, n_features))
