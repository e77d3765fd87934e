"""engine.features.spectrum against straightforward numpy re-computations (seeds.md §4.1)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.interpolate import CubicSpline

from engine.features import MIN_CROP_PX, azimuthal_spectra, azimuthal_spectrum

IMAGES = Path(__file__).parents[2] / "data" / "images"
FACES = ["0-f1-su-ph.jpg", "single_face.jpg"]  # 512x512 and 572x562 (non-square)
N = 300


def load_rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(IMAGES / name).convert("RGB"))


def log_magnitude_of_centre_third(rgb: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape[0] // 3, gray.shape[1] // 3
    crop = gray[h:-h, w:-w]
    return 20 * np.log(np.abs(np.fft.fftshift(np.fft.fft2(crop)) + 1e-8))


def ring_means_loop(mag: np.ndarray) -> np.ndarray:
    """Explicit loop: mean of each integer-radius ring, dropping ring 0 and the last ring."""
    y, x = np.indices(mag.shape)
    r = np.hypot(x - (x.max() - x.min()) / 2, y - (y.max() - y.min()) / 2).astype(int)
    means = [mag[r == k].mean() for k in range(r.max() + 1) if np.any(r == k)]
    return np.array(means[1:-1])


def ring_means_seed_cumsum(mag: np.ndarray) -> np.ndarray:
    """The seed's cumulative-sum construction, as described in seeds.md §4.1 step 4."""
    y, x = np.indices(mag.shape)
    r = np.hypot(x - (x.max() - x.min()) / 2, y - (y.max() - y.min()) / 2)
    order = np.argsort(r.flat)
    r_int = r.flat[order].astype(int)
    values = mag.flat[order]
    rind = np.where(r_int[1:] - r_int[:-1])[0]
    csim = np.cumsum(values, dtype=float)
    return (csim[rind[1:]] - csim[rind[:-1]]) / (rind[1:] - rind[:-1])


def resample_and_normalise(profile: np.ndarray) -> np.ndarray:
    """Not-a-knot cubic spline (what griddata 'cubic' does in 1-D), then / first value."""
    curve = CubicSpline(np.linspace(0, N, len(profile)), profile)(np.linspace(0, N, N))
    return curve / curve[0]


@pytest.mark.parametrize("name", FACES)
@pytest.mark.parametrize("ring_means", [ring_means_loop, ring_means_seed_cumsum])
def test_matches_independent_reference(name, ring_means):
    rgb = load_rgb(name)
    ref = resample_and_normalise(ring_means(log_magnitude_of_centre_third(rgb)))
    ours = azimuthal_spectrum(rgb)
    diff = float(np.abs(ours - ref).max())
    print(f"{name} vs {ring_means.__name__}: max abs diff {diff:.3e}")
    assert diff < 1e-9


@pytest.mark.parametrize("name", FACES)
def test_output_contract(name):
    x = azimuthal_spectrum(load_rgb(name))
    assert x.shape == (N,) and x.dtype == np.float64
    assert np.all(np.isfinite(x)) and np.any(x != 0)
    assert x[0] == 1.0


def test_gray_input_equals_rgb_input():
    rgb = load_rgb(FACES[1])
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(azimuthal_spectrum(gray), azimuthal_spectrum(rgb))


def test_n_features():
    assert azimuthal_spectrum(load_rgb(FACES[0]), n_features=64).shape == (64,)


def test_batch_helper():
    images = [load_rgb(name) for name in FACES]
    batch = azimuthal_spectra(images)
    assert batch.shape == (2, N)
    for row, image in zip(batch, images):
        np.testing.assert_array_equal(row, azimuthal_spectrum(image))
    assert np.all(batch[:, 0] == 1.0)
    assert azimuthal_spectra([]).shape == (0, N)


def test_batch_helper_names_bad_image():
    images = [load_rgb(FACES[0]), np.zeros((12, 12, 3), np.uint8)]
    with pytest.raises(ValueError, match="image 1: .*too small"):
        azimuthal_spectra(images)


def test_smallest_accepted_image():
    rng = np.random.default_rng(0)
    x = azimuthal_spectrum(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))
    assert np.all(np.isfinite(x)) and x[0] == 1.0
    assert 28 - 2 * (28 // 3) == MIN_CROP_PX


@pytest.mark.parametrize(
    "image,match",
    [
        (np.zeros((27, 27, 3), np.uint8), "too small"),
        (np.zeros((200, 20), np.uint8), "too small"),
        (np.zeros((2, 2), np.uint8), "too small"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64, 4), np.uint8), "shape"),
        (np.zeros(64, np.uint8), "shape"),
    ],
)
def test_bad_input_raises(image, match):
    with pytest.raises(ValueError, match=match):
        azimuthal_spectrum(image)
