"""engine.features.spectrogram: the GUI's display spectrogram and its axes."""

import numpy as np
import pytest

from engine.features import DisplaySpectrogram, display_spectrogram

SR = 22050


def sine(freq_hz: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_axes_match_db_shape():
    wave = sine(1000.0)
    spec = display_spectrogram(wave, SR)
    hop = round(SR / 100)
    assert spec.db.dtype == np.float32
    assert spec.times_s.dtype == np.float64 and spec.freqs_hz.dtype == np.float64
    assert spec.db.shape == (len(spec.freqs_hz), len(spec.times_s)) == (513, 1 + len(wave) // hop)
    assert spec.freqs_hz[0] == 0 and spec.freqs_hz[-1] == SR / 2


def test_sine_peaks_at_nearest_bin():
    spec = display_spectrogram(sine(1000.0), SR)
    peak_rows = spec.db.argmax(axis=0)
    nearest = int(np.abs(spec.freqs_hz - 1000.0).argmin())
    assert np.all(peak_rows == nearest)


def test_db_range():
    spec = display_spectrogram(sine(1000.0), SR, top_db=60.0)
    assert spec.db.max() == 0.0
    assert spec.db.min() >= -60.0


@pytest.mark.parametrize("sr,hop_length,expected_hop", [(SR, None, 220), (16000, None, 160), (SR, 512, 512)])
def test_time_axis_spacing(sr, hop_length, expected_hop):
    spec = display_spectrogram(sine(440.0, sr=sr), sr, hop_length=hop_length)
    assert spec.times_s[0] == 0.0
    np.testing.assert_allclose(np.diff(spec.times_s), expected_hop / sr, rtol=0, atol=1e-12)


def test_column_at():
    spec = display_spectrogram(sine(440.0), SR)
    dt = spec.times_s[1]
    assert spec.column_at(0.0) == 0
    assert spec.column_at(-5.0) == 0
    assert spec.column_at(1e6) == len(spec.times_s) - 1
    assert spec.column_at(spec.times_s[7] + 0.4 * dt) == 7
    assert spec.column_at(spec.times_s[7] + 0.6 * dt) == 8
    with pytest.raises(ValueError):
        spec.column_at(float("nan"))


def test_arrays_are_read_only():
    spec = display_spectrogram(sine(440.0), SR)
    with pytest.raises(ValueError):
        spec.db[0, 0] = 1.0


def test_axes_must_match():
    with pytest.raises(ValueError, match="does not match"):
        DisplaySpectrogram(db=np.zeros((3, 4), np.float32), times_s=np.zeros(5), freqs_hz=np.zeros(3))


@pytest.mark.parametrize(
    "waveform,match",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.zeros((2, 4096), np.float32), "mono"),
        (np.zeros(100, np.float32), "n_fft"),
        (np.zeros(4096, np.int16), "floating"),
        (np.full(4096, np.inf, np.float32), "NaN or infinite"),
    ],
)
def test_bad_input_raises(waveform, match):
    with pytest.raises(ValueError, match=match):
        display_spectrogram(waveform, SR)


@pytest.mark.parametrize("block_columns", [1, 7, 100, 4096])
def test_blockwise_stft_equals_one_librosa_call(block_columns):
    """The column blocks give exactly the columns of librosa.stft(center=True) + amplitude_to_db(ref=max)."""
    import librosa

    rng = np.random.default_rng(4)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 2) / 16000) + 0.05 * rng.standard_normal(32000))
    wave = wave.astype(np.float32)
    expected = librosa.amplitude_to_db(np.abs(librosa.stft(wave, n_fft=1024, hop_length=160, center=True)),
                                       ref=np.max, top_db=80.0)
    got = display_spectrogram(wave, 16000, block_columns=block_columns)
    assert got.db.shape == expected.shape and got.db.dtype == np.float32
    np.testing.assert_allclose(got.db, expected, atol=1e-3)
    silent = display_spectrogram(np.zeros(4000, np.float32), 16000, block_columns=block_columns)
    assert np.isfinite(silent.db).all() and (silent.db == 0).all()  # 0 dB re. a zero maximum, as librosa
