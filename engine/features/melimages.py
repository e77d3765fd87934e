"""Seed 5's mel-spectrogram "frames": 16 coloured mel images of the clip's audio (spec §5.3).

The seed (TMC ``crop.py: extract``) splits ``[0, min(16 s, duration)]`` into 16 equal
chunks, loads each with ``librosa.load`` (22,050 Hz mono), computes
``librosa.power_to_db(librosa.feature.melspectrogram(y, sr))`` (n_fft 2048, hop 512,
128 mel bands, power 2; ``ref=1.0, amin=1e-10, top_db=80``), draws it with
``librosa.display.specshow`` into a 1×1-inch figure at 1000 dpi (axes hidden,
``bbox_inches='tight', pad_inches=0``), saves a JPEG, reads it back with
``cv2.imread`` (BGR) and resizes it to 224×224. Without audio: 16 black images.

Here the specshow picture is rendered **directly as an array**, without the
figure/JPEG round trip:

* colour map chosen as ``librosa.display.cmap`` does: ``magma`` when the 2–98th
  percentile range of the chunk's dB values does not straddle 0, else ``coolwarm``;
* colour limits = the chunk's own min / max (``pcolormesh``'s autoscaling): **per-chunk**;
* lowest mel band at the **bottom**, time left to right, one cell per (band, STFT frame)
  on a linear grid (specshow with ``y_axis=None``);
* the cells are drawn nearest-neighbour onto :data:`RENDER_HW` = 770×775 px (what the
  default axes of a 1-inch, 1000-dpi figure cover after the tight bbox), then resized to
  ``size``×``size`` with ``cv2.INTER_LINEAR`` as the seed's ``cv2.resize`` did.

Differences from the seed (documented in the ``deepfake.av`` card): no JPEG
compression, no matplotlib anti-aliasing at cell edges; audio comes from the shared
decode resampled to 22,050 Hz once (the seed re-read a 44.1 kHz WAV per chunk).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

__all__ = ["MEL_SR", "MEL_IMAGES", "RENDER_HW", "mel_chunks", "mel_db", "specshow_cmap_name", "render_specshow",
           "mel_images"]

#: Sample rate of the mel images (librosa.load default), Hz.
MEL_SR = 22050
#: Number of mel images per clip.
MEL_IMAGES = 16
#: (height, width) in pixels of the specshow axes area of a 1×1-inch, 1000-dpi figure.
RENDER_HW = (770, 775)


def mel_chunks(wave: np.ndarray, sr: int = MEL_SR, max_s: float = 16.0, n: int = MEL_IMAGES) -> list[np.ndarray]:
    """Split ``wave[: min(max_s, duration)]`` into ``n`` equal consecutive chunks.

    Args:
        wave: float32 ``(N,)`` mono samples in [-1, 1] at ``sr`` Hz.
        sr: Hz. max_s: clip length cap in seconds (16). n: chunks (16).

    Returns:
        ``n`` float32 arrays; chunk ``k`` covers samples ``[floor(k L / n), floor((k+1) L / n))``
        of the first ``L = min(len, max_s·sr)`` samples (some empty when ``L < n``).

    Raises:
        ValueError: ``wave`` is not 1-D.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"wave must be mono (N,), got shape {wave.shape}")
    total = min(len(wave), int(round(max_s * sr)))
    edges = [k * total // n for k in range(n + 1)]
    return [wave[edges[k]: edges[k + 1]] for k in range(n)]


def mel_db(chunk: np.ndarray, sr: int = MEL_SR) -> np.ndarray:
    """``librosa.power_to_db(librosa.feature.melspectrogram(y=chunk, sr=sr))`` with librosa defaults.

    Args:
        chunk: float32 ``(N,)`` samples, ``N >= 1``.

    Returns:
        float32 ``(128, 1 + N // 512)`` dB (ref 1.0, amin 1e-10, top_db 80), mel band 0 = lowest.
    """
    import librosa

    with warnings.catch_warnings():  # "n_fft=2048 is too large for input signal of length=…" on short chunks
        warnings.simplefilter("ignore", UserWarning)
        mel = librosa.feature.melspectrogram(y=np.asarray(chunk, dtype=np.float32), sr=sr)
    return librosa.power_to_db(mel, ref=1.0).astype(np.float32)


def specshow_cmap_name(db: np.ndarray) -> str:
    """``librosa.display.cmap(db)``'s choice: ``"magma"`` unless the 2–98 % range straddles 0 (``"coolwarm"``)."""
    finite = np.asarray(db)[np.isfinite(db)]
    if finite.size == 0:
        return "magma"
    lo, hi = np.percentile(finite, [2, 98])
    return "magma" if (lo >= 0 or hi <= 0) else "coolwarm"


def render_specshow(db: np.ndarray, size: int = 224) -> np.ndarray:
    """Draw a dB mel spectrogram as ``librosa.display.specshow`` would, as a BGR image.

    Args:
        db: float ``(n_mels, frames)``, band 0 = lowest frequency.
        size: output side in pixels.

    Returns:
        uint8 ``(size, size, 3)`` **BGR**; low frequencies at the bottom; colour limits are
        ``db``'s own min / max (all one colour, the map's lowest, when ``db`` is constant).
    """
    from matplotlib import colormaps

    db = np.asarray(db, dtype=np.float64)
    lo, hi = float(np.min(db)), float(np.max(db))
    normed = (db - lo) / (hi - lo) if hi > lo else np.zeros_like(db)
    rgba = colormaps[specshow_cmap_name(db)](normed[::-1])  # row 0 = top of the picture = highest band
    rgb = np.round(rgba[..., :3] * 255.0).astype(np.uint8)
    h, w = RENDER_HW
    rows = np.minimum((np.arange(h) * rgb.shape[0]) // h, rgb.shape[0] - 1)
    cols = np.minimum((np.arange(w) * rgb.shape[1]) // w, rgb.shape[1] - 1)
    canvas = rgb[rows][:, cols]  # pcolormesh cells at the figure's pixel size
    out = cv2.resize(np.ascontiguousarray(canvas), (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out[..., ::-1])


def mel_images(wave: np.ndarray | None, sr: int = MEL_SR, max_s: float = 16.0, n: int = MEL_IMAGES,
               size: int = 224) -> np.ndarray:
    """Seed 5's 16 mel images of a clip (spec §5.3).

    Args:
        wave: float32 ``(N,)`` mono at ``sr`` Hz (``MediaClip.audio(22050).waveform``), or None /
            empty when the clip has no audio.
        sr: must be 22,050 Hz (the seed's rate; other rates would change the mel bands).
        max_s: seconds of audio used (16). n: images (16). size: image side in pixels (224).

    Returns:
        uint8 ``(n, size, size, 3)`` **BGR**; all zeros (black) without audio; an empty
        chunk (clip shorter than ``n`` samples) gives a black image.

    Raises:
        ValueError: ``sr`` is not 22,050 or ``wave`` is not 1-D.
    """
    if sr != MEL_SR:
        raise ValueError(f"mel images are defined at {MEL_SR} Hz, got {sr}")
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    if wave is None or np.asarray(wave).size == 0:
        return out
    for k, chunk in enumerate(mel_chunks(wave, sr, max_s, n)):
        if chunk.size:
            out[k] = render_specshow(mel_db(chunk, sr), size)
    return out
