"""Linear-frequency dB spectrogram for display (the GUI's spectrogram pane).

Not a model input: the model features are in :mod:`engine.features.logmel`.
This is the usual ``librosa.stft`` magnitude -> ``amplitude_to_db(ref=max)``
picture, with its time and frequency axes so a view can map a playhead time to
a column and a column to seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

__all__ = ["DisplaySpectrogram", "display_spectrogram"]


@dataclass(frozen=True)
class DisplaySpectrogram:
    """A dB spectrogram with its axes (arrays are read-only).

    Attributes:
        db: float32 ``(F, T)`` dB relative to the loudest bin (max 0 dB,
            floor ``-top_db``); row 0 is 0 Hz, column 0 the start.
        times_s: float64 ``(T,)`` centre time of each column, seconds from the
            waveform's first sample (``t * hop / sr``).
        freqs_hz: float64 ``(F,)`` centre frequency of each row in Hz
            (``0 .. sr/2``).
    """

    db: np.ndarray
    times_s: np.ndarray
    freqs_hz: np.ndarray

    def __post_init__(self) -> None:
        for name in ("db", "times_s", "freqs_hz"):
            view = np.asarray(getattr(self, name)).view()  # caller's array stays writable
            view.flags.writeable = False
            object.__setattr__(self, name, view)
        if self.db.shape != (len(self.freqs_hz), len(self.times_s)):
            raise ValueError(
                f"db shape {self.db.shape} does not match axes "
                f"({len(self.freqs_hz)} freqs, {len(self.times_s)} times)"
            )

    def column_at(self, t_seconds: float) -> int:
        """Index of the column whose centre time is nearest ``t_seconds``.

        Times before the first / after the last column clamp to 0 / T-1.

        Raises:
            ValueError: ``t_seconds`` is NaN.
        """
        if np.isnan(t_seconds):
            raise ValueError("t_seconds is NaN")
        i = int(np.searchsorted(self.times_s, t_seconds))
        if i == 0:
            return 0
        if i == len(self.times_s):
            return i - 1
        return i if self.times_s[i] - t_seconds < t_seconds - self.times_s[i - 1] else i - 1


def display_spectrogram(
    waveform: np.ndarray,
    sr: int,
    n_fft: int = 1024,
    hop_length: int | None = None,
    top_db: float = 80.0,
    block_columns: int = 4096,
) -> DisplaySpectrogram:
    """dB magnitude spectrogram of a mono waveform, for display (no seed section; GUI only).

    ``|librosa.stft(waveform, n_fft, hop_length, center=True)|`` (Hann window,
    zero padding of ``n_fft//2`` at both ends, so column ``t`` is centred at
    ``t * hop_length / sr`` s) converted with
    ``librosa.amplitude_to_db(ref=np.max, top_db=top_db)``.

    Args:
        waveform: float32/float64 ``(N,)`` mono samples at ``sr`` Hz, N >= n_fft.
        sr: sample rate in Hz (> 0).
        n_fft: FFT size in samples (frequency resolution ``sr / n_fft`` Hz).
        hop_length: column spacing in samples; default ``round(sr / 100)``
            (about 10 ms).
        top_db: dynamic range kept below the maximum, in dB.
        block_columns: columns transformed per ``librosa.stft`` call (memory bound only;
            the result does not depend on it).

    Returns:
        :class:`DisplaySpectrogram` with ``db`` float32 ``(n_fft//2 + 1, 1 + N//hop)``.

    Raises:
        ValueError: waveform empty, not 1-D, not floating point, shorter than
            ``n_fft`` or not finite; ``sr``, ``n_fft``, ``hop_length`` or
            ``top_db`` not positive.
    """
    wave = np.asarray(waveform)
    if wave.ndim != 1:
        raise ValueError(f"waveform must be mono, shape (N,), got shape {wave.shape}")
    if wave.size == 0:
        raise ValueError("waveform is empty")
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"waveform must be floating point, got dtype {wave.dtype}")
    if sr <= 0 or n_fft <= 0 or top_db <= 0:
        raise ValueError(f"sr, n_fft and top_db must be positive, got {sr}, {n_fft}, {top_db}")
    if wave.size < n_fft:
        raise ValueError(
            f"waveform has {wave.size} samples, fewer than n_fft={n_fft}; pass a smaller n_fft"
        )
    if not np.all(np.isfinite(wave)):
        raise ValueError("waveform contains NaN or infinite samples")
    hop = max(1, int(round(sr / 100))) if hop_length is None else int(hop_length)
    block_columns = int(block_columns)
    if hop <= 0 or block_columns <= 0:
        raise ValueError(f"hop_length and block_columns must be positive, got {hop_length}, {block_columns}")

    # librosa's centring (zero padding of n_fft//2 at both ends), then the STFT a block of
    # columns at a time into one float32 array: the same columns as one
    # librosa.stft(center=True) call, without its complex (F, T) buffer and the
    # temporaries of amplitude_to_db (10 minutes at 16 kHz: ~120 MB instead of ~600 MB)
    half = n_fft // 2
    padded = np.pad(wave.astype(np.float32, copy=False), (half, half), mode="constant")
    n_cols = 1 + (padded.size - n_fft) // hop
    db = np.empty((n_fft // 2 + 1, n_cols), dtype=np.float32)
    for c0 in range(0, n_cols, block_columns):
        c1 = min(n_cols, c0 + block_columns)
        seg = padded[c0 * hop : (c1 - 1) * hop + n_fft]
        db[:, c0:c1] = np.abs(librosa.stft(seg, n_fft=n_fft, hop_length=hop, center=False))
    # amplitude_to_db(ref=np.max, top_db): 20 log10(max(amin, S) / max(S)), floored at -top_db
    ref = db.max()  # np.float32, so the maximum maps to exactly 0 dB as with ref=np.max
    for c0 in range(0, n_cols, block_columns):
        c1 = min(n_cols, c0 + block_columns)
        db[:, c0:c1] = librosa.amplitude_to_db(db[:, c0:c1], ref=ref, top_db=None)
    np.maximum(db, db.max() - top_db, out=db)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sr, hop_length=hop).astype(np.float64)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft).astype(np.float64)
    return DisplaySpectrogram(db=db, times_s=times, freqs_hz=freqs)
