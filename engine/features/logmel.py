"""Three-resolution log-mel "image" of an audio track (seeds.md §1.4, §1.5).

Seed 1 (XAIDevIDFusion, Korgialas et al., Asilomar 2024) turns a video's audio
into a 3-channel image for an ImageNet CNN: one channel per STFT resolution
(ESC-50-style multi-resolution), each a natural-log mel spectrogram stretched
to 128 mel x 1500 time.

Implementation notes (read against seeds.md §1.4):

* Mel spectrograms come from ``torchaudio.transforms.MelSpectrogram`` with
  torchaudio defaults (f_min 0, f_max sr//2, periodic Hann, power 2,
  ``center=True`` reflect padding, HTK mel, no filter norm), as in the seed.
  torchaudio places the filterbank on the frequency grid
  ``linspace(0, sr//2, n_fft//2 + 1)``; for the odd ``n_fft`` of channels 0
  and 2 (551, 2205) that is *not* the true FFT grid ``k*sr/n_fft`` that
  librosa uses. We keep torchaudio's grid on purpose: it is what the seed's
  features (and models trained on them) contain.
* The STFT and the mel projection run in **float64**, with the Hann window
  and the filterbank built in float64 (same definitions as torchaudio's). The
  seed ran in float32; torchaudio's float32 filterbank weights are off by up
  to ~2e-5 and its float32 window and FFT add a rounding floor, which
  ``log(S + 1e-6)`` turns into differences of up to ~2e-3 (at filter tails
  and in near-silent bands; measured on speech, mean ~1e-5). float64 makes the features reproducible across FFT back-ends; the
  log-mel is cast to float32 before the resize, as in the seed.
* Resize: the seed used ``torchvision.transforms.Resize((128, 1500))`` on a
  PIL mode-"F" image, which calls ``PIL.Image.resize((1500, 128),
  Image.BILINEAR)``. We call PIL directly (same result, no torchvision
  import). PIL's bilinear is a triangle filter whose support widens with the
  reduction factor (it anti-aliases when the time axis is squeezed); the mel
  axis (128 -> 128) is left untouched.
"""

from __future__ import annotations

import warnings
from functools import lru_cache, partial

import numpy as np
import scipy.signal
import torch
import torchaudio
from PIL import Image

__all__ = [
    "LOGMEL_SR",
    "LOGMEL_SHAPE",
    "LOGMEL_RESOLUTIONS_MS",
    "log_mel_3res",
    "log_mel_3res_bandpass",
]

LOGMEL_SR = 22050
"""Sample rate (Hz) the log-mel features and the seed-1 audio model expect."""

LOGMEL_SHAPE = (3, 128, 1500)
"""Output shape: (resolution channel, mel band, time column)."""

LOGMEL_RESOLUTIONS_MS = ((25, 10), (50, 25), (100, 50))
"""(window, hop) in milliseconds for channels 0, 1, 2 (seeds.md §1.4)."""

_N_MELS, _N_TIME = LOGMEL_SHAPE[1], LOGMEL_SHAPE[2]
_LOG_EPS = 1e-6


def _ms_to_samples(ms: float, sr: int) -> int:
    """Milliseconds -> samples with Python's banker's rounding (220.5 -> 220)."""
    return int(round(ms * sr / 1000))


def _resolutions(sr: int) -> list[tuple[int, int]]:
    """(win, hop) in samples per channel; at 22050 Hz: 551/220, 1102/551, 2205/1102."""
    return [(_ms_to_samples(w, sr), _ms_to_samples(h, sr)) for w, h in LOGMEL_RESOLUTIONS_MS]


def _mel_filterbank_f64(n_freqs: int, sr: int, n_mels: int) -> np.ndarray:
    """float64 (n_freqs, n_mels) = ``torchaudio.functional.melscale_fbanks(n_freqs,
    0, sr//2, n_mels, sr)`` (HTK, no norm), which torchaudio computes in float32.

    Same definition, including torchaudio's frequency grid
    ``linspace(0, sr//2, n_freqs)``; computed in float64 because the float32
    weights are off by up to ~2e-5, which moves ``log(mel + 1e-6)`` by up to
    ~8e-4 where a strong partial meets a filter's tail.
    """
    all_freqs = np.linspace(0, sr // 2, n_freqs)
    mel_max = 2595.0 * np.log10(1.0 + (sr // 2) / 700.0)  # HTK mel of f_max; mel(0) = 0
    f_pts = 700.0 * (10.0 ** (np.linspace(0.0, mel_max, n_mels + 2) / 2595.0) - 1.0)
    slopes = f_pts[None, :] - all_freqs[:, None]
    f_diff = np.diff(f_pts)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


@lru_cache(maxsize=8)  # keyed by (sr, win, hop): three per sample rate; small modules, bounded anyway
def _mel_transform(sr: int, win: int, hop: int) -> torchaudio.transforms.MelSpectrogram:
    """The seed's MelSpectrogram for one resolution, built once, in float64.

    Window and filterbank are rebuilt in float64 (same definitions); the
    float64 filterbank is checked against torchaudio's own float32 one.
    """
    with warnings.catch_warnings():
        # Channel 0 (n_fft 551) has 2 empty mel filters by construction
        # (seeds.md §1.4 "empty mel filters"); their log is log(1e-6).
        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        transform = torchaudio.transforms.MelSpectrogram(
            sample_rate=sr,
            n_fft=win,
            win_length=win,
            hop_length=hop,
            n_mels=_N_MELS,
            window_fn=partial(torch.hann_window, dtype=torch.float64),
        )
    fb64 = torch.from_numpy(_mel_filterbank_f64(win // 2 + 1, sr, _N_MELS))
    if (fb64 - transform.mel_scale.fb.double()).abs().max() > 1e-4:
        raise RuntimeError("torchaudio's mel filterbank no longer matches seeds.md §1.4")
    transform = transform.to(torch.float64).eval()
    transform.mel_scale.fb.copy_(fb64)
    return transform


def _check_waveform(waveform: np.ndarray, sr: int) -> np.ndarray:
    """Validate a mono waveform at LOGMEL_SR; return it as float64 (N,)."""
    if sr != LOGMEL_SR:
        raise ValueError(
            f"log-mel features need audio at {LOGMEL_SR} Hz, got sr={sr}; "
            f"load/resample the audio at {LOGMEL_SR} Hz (e.g. librosa.load(path, sr={LOGMEL_SR}))"
        )
    wave = np.asarray(waveform)
    if wave.ndim != 1:
        raise ValueError(
            f"waveform must be mono, shape (N,), got shape {wave.shape}; mix channels down first"
        )
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"waveform must be floating point in [-1, 1], got dtype {wave.dtype}")
    min_len = _resolutions(sr)[-1][0]  # one window of the coarsest resolution
    if wave.size < min_len:
        raise ValueError(
            f"audio too short for log-mel features: {wave.size} samples, need at least "
            f"{min_len} ({min_len / sr:.3f} s at {sr} Hz)"
        )
    if not np.all(np.isfinite(wave)):
        raise ValueError("waveform contains NaN or infinite samples")
    return wave.astype(np.float64, copy=False)


def _resize_pil_bilinear(x: np.ndarray) -> np.ndarray:
    """float32 (128, T) -> float32 (128, 1500), as torchvision Resize on a PIL "F" image."""
    img = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))
    assert img.mode == "F"
    return np.asarray(img.resize((_N_TIME, _N_MELS), Image.BILINEAR), dtype=np.float32)


#: Most STFT values (frames x frequency bins) held at once; longer tracks are transformed in
#: chunks of frames (complex128: 4 Mi values = 64 MiB), e.g. channel 0 beyond ~2.5 min at 22050 Hz.
_MAX_STFT_VALUES = 1 << 22


def _mel_power(sr: int, win: int, hop: int, x: torch.Tensor) -> torch.Tensor:
    """``_mel_transform(sr, win, hop)(x)``, float64 ``(128, frames)``, with bounded memory.

    Short inputs go through the transform as is. Long ones (a 10-minute track's
    channel 0 STFT alone is 265 MB of complex128) are reflect-padded once as
    ``center=True`` does, then cut into runs of whole frames, each transformed with
    the same window, power and filterbank, and concatenated: the same frames, and
    the same values up to float64 rounding.
    """
    transform = _mel_transform(sr, win, hop)
    spec = transform.spectrogram
    n_freq = spec.n_fft // 2 + 1
    pad = spec.n_fft // 2
    n_frames = 1 + (x.numel() + 2 * pad - spec.n_fft) // hop
    step = max(1, _MAX_STFT_VALUES // n_freq)
    if n_frames <= step or not spec.center or x.numel() <= pad:
        return transform(x)
    xp = torch.nn.functional.pad(x[None, None], (pad, pad), mode=spec.pad_mode)[0, 0]
    out = []
    for t0 in range(0, n_frames, step):
        t1 = min(n_frames, t0 + step)
        seg = xp[t0 * hop : (t1 - 1) * hop + spec.n_fft]
        stft = torch.stft(seg, n_fft=spec.n_fft, hop_length=hop, win_length=spec.win_length,
                          window=spec.window, center=False, normalized=False, onesided=True, return_complex=True)
        out.append(transform.mel_scale(stft.abs().pow(spec.power)))
        del stft
    return torch.cat(out, dim=-1)


def _log_mel_channels(wave: np.ndarray, sr: int) -> np.ndarray:
    """float64 (N,) checked waveform -> float32 (3, 128, 1500) features."""
    x = torch.from_numpy(np.ascontiguousarray(wave))
    channels = []
    with torch.inference_mode():
        for win, hop in _resolutions(sr):
            mel = _mel_power(sr, win, hop, x)  # float64 (128, frames)
            log_mel = torch.log(mel + _LOG_EPS).numpy().astype(np.float32)
            channels.append(_resize_pil_bilinear(log_mel))
    return np.stack(channels)


def log_mel_3res(waveform: np.ndarray, sr: int = LOGMEL_SR) -> np.ndarray:
    """Three-resolution log-mel image of a mono waveform (seeds.md §1.4).

    Channel ``c`` uses the STFT window/hop ``LOGMEL_RESOLUTIONS_MS[c]``
    (25/10, 50/25, 100/50 ms = 551/220, 1102/551, 2205/1102 samples; n_fft =
    window), a 128-band HTK mel filterbank over 0-11025 Hz, power 2, then
    ``log(mel + 1e-6)`` (natural log) and a bilinear resize of the
    (128, frames) image to (128, 1500). The time axis is stretched or
    squeezed regardless of duration: column ``j`` covers the fraction
    ``[j/1500, (j+1)/1500)`` of the clip, not a fixed number of seconds.

    Args:
        waveform: float32 (or float64) ``(N,)`` mono samples in [-1, 1] at
            ``sr`` Hz (the seed loads with ``librosa.load(path)``, i.e.
            22050 Hz mono). Needs N >= 2205 (0.1 s).
        sr: sample rate in Hz; must be :data:`LOGMEL_SR` (22050).

    Returns:
        float32 ``(3, 128, 1500)``: (resolution, mel band low->high, time
        column). Values are natural-log power; silent/empty bands are
        ``log(1e-6) ~ -13.8``.

    Raises:
        ValueError: ``sr != 22050``, waveform not 1-D, not floating point,
            shorter than 2205 samples (incl. empty), or containing NaN/inf.
    """
    return _log_mel_channels(_check_waveform(waveform, sr), sr)


def log_mel_3res_bandpass(
    waveform: np.ndarray,
    sr: int = LOGMEL_SR,
    low_hz: float = 4000.0,
    high_hz: float = 11000.0,
    order: int = 5,
) -> np.ndarray:
    """Log-mel image of the band-passed waveform (seeds.md §1.5).

    Butterworth band-pass ``scipy.signal.butter(order, [low_hz, high_hz] /
    (sr/2), btype='band')`` in (b, a) form, applied with
    ``scipy.signal.lfilter`` (causal, single pass, not zero-phase, as in the
    seed), then exactly :func:`log_mel_3res`. Defaults are the seed's 5th
    order, 4000-11000 Hz (Wn = [0.3628, 0.9977]).

    Args:
        waveform: float32/float64 ``(N,)`` mono at ``sr`` Hz, N >= 2205.
        sr: sample rate in Hz; must be 22050.
        low_hz, high_hz: pass band edges in Hz, ``0 < low_hz < high_hz < sr/2``.
        order: Butterworth order (the band-pass filter has order ``2*order``).

    Returns:
        float32 ``(3, 128, 1500)``, as :func:`log_mel_3res`.

    Raises:
        ValueError: bad waveform or sr (see :func:`log_mel_3res`), or band
            edges outside ``(0, sr/2)`` / not increasing.
    """
    wave = _check_waveform(waveform, sr)
    nyq = 0.5 * sr
    if not 0 < low_hz < high_hz < nyq:
        raise ValueError(f"need 0 < low_hz < high_hz < {nyq} Hz, got {low_hz}, {high_hz}")
    b, a = scipy.signal.butter(order, [low_hz / nyq, high_hz / nyq], btype="band")
    return _log_mel_channels(scipy.signal.lfilter(b, a, wave), sr)
