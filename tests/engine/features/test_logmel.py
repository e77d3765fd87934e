"""engine.features.logmel against an independent librosa/numpy computation (seeds.md §1.4, §1.5).

The reference re-derives every step from the spec, without torchaudio or PIL:
librosa STFT power (float64), a numpy HTK triangular filterbank, natural log,
and a numpy re-implementation of PIL's bilinear (triangle-filter) resize.

One seed fact shapes the reference: torchaudio lays its mel filterbank on the
grid ``linspace(0, sr//2, n_fft//2 + 1)``, which for odd n_fft (551, 2205) is
not librosa's true FFT grid ``k*sr/n_fft``. librosa's own
``feature.melspectrogram`` is therefore only comparable for channel 1
(n_fft 1102, even), which is tested separately.
"""

from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
from PIL import Image

from engine.features import LOGMEL_SHAPE, LOGMEL_SR, log_mel_3res, log_mel_3res_bandpass
from engine.features.logmel import _mel_transform, _resize_pil_bilinear

JFK = Path(__file__).parents[2] / "data" / "media" / "jfk.flac"
SR = 22050
RESOLUTIONS = [(551, 220), (1102, 551), (2205, 1102)]  # seeds.md §1.4 table, in samples
TOL = 1e-4


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    y, sr = librosa.load(JFK, sr=SR)  # the seed's loader: 22050 Hz mono float32
    assert sr == SR and y.dtype == np.float32
    return y


@pytest.fixture(scope="module")
def long_speech(speech) -> np.ndarray:
    """~66 s: channel 0 has ~6600 frames, so the resize squeezes (anti-aliased path)."""
    return np.tile(speech, 6)


def htk_filterbank_on_grid(freqs_hz: np.ndarray, n_mels=128, fmin=0.0, fmax=SR / 2) -> np.ndarray:
    """float64 (n_freqs, n_mels) triangular HTK filters, no normalisation."""
    f_pts = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=True)
    slopes = f_pts[None, :] - freqs_hz[:, None]
    down = -slopes[:, :-2] / np.diff(f_pts)[:-1]
    up = slopes[:, 2:] / np.diff(f_pts)[1:]
    return np.maximum(0.0, np.minimum(down, up))


def torchaudio_grid(n_fft: int) -> np.ndarray:
    return np.linspace(0, SR // 2, n_fft // 2 + 1)


def pil_bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of Pillow's BILINEAR resample along one axis."""
    scale = n_in / n_out
    support = max(scale, 1.0)  # triangle support widens when downscaling
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        x = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs((x - centre + 0.5) / support))
        weights[i, lo:hi] = w / w.sum()
    return weights


def reference_log_mel(y: np.ndarray) -> np.ndarray:
    """float32 (3, 128, 1500) from the spec alone (float64 maths)."""
    y = y.astype(np.float64)
    channels = []
    for win, hop in RESOLUTIONS:
        stft = librosa.stft(y, n_fft=win, hop_length=hop, win_length=win, window="hann",
                            center=True, pad_mode="reflect")
        mel = htk_filterbank_on_grid(torchaudio_grid(win)).T @ (np.abs(stft) ** 2)
        log_mel = np.log(mel + 1e-6).astype(np.float32)
        resized = log_mel.astype(np.float64) @ pil_bilinear_weights(log_mel.shape[1], 1500).T
        channels.append(resized.astype(np.float32))
    return np.stack(channels)


def bandpass(y: np.ndarray, low=4000.0, high=11000.0, order=5) -> np.ndarray:
    b, a = scipy.signal.butter(order, [low / (SR / 2), high / (SR / 2)], btype="band")
    return scipy.signal.lfilter(b, a, y.astype(np.float64))


def channel_diffs(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.abs(a[c] - b[c]).max()) for c in range(3)]


def test_shape_dtype_constants(speech):
    x = log_mel_3res(speech)
    assert LOGMEL_SR == 22050 and LOGMEL_SHAPE == (3, 128, 1500)
    assert x.shape == LOGMEL_SHAPE and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    # Channel 0 has exactly 2 empty mel filters (seeds.md §1.4): constant log(1e-6).
    empty = np.all(x[0] == np.float32(np.log(1e-6)), axis=1)
    assert empty.sum() == 2


@pytest.mark.parametrize("clip", ["speech", "long_speech"])
def test_matches_independent_reference(clip, request):
    y = request.getfixturevalue(clip)
    diffs = channel_diffs(log_mel_3res(y), reference_log_mel(y))
    print(f"{clip}: max abs diff per channel {diffs}")
    assert max(diffs) < TOL, diffs


def test_channel1_matches_librosa_melspectrogram(speech):
    """n_fft 1102 is even, so librosa's and torchaudio's frequency grids coincide."""
    S = librosa.feature.melspectrogram(
        y=speech.astype(np.float64), sr=SR, n_fft=1102, hop_length=551, win_length=1102,
        window="hann", center=True, pad_mode="reflect", power=2.0, n_mels=128,
        fmin=0, fmax=11025, htk=True, norm=None,
    )
    log_mel = np.log(S + 1e-6).astype(np.float32)
    ref = np.asarray(Image.fromarray(log_mel).resize((1500, 128), Image.BILINEAR))
    diff = float(np.abs(log_mel_3res(speech)[1] - ref).max())
    print(f"channel 1 vs librosa.feature.melspectrogram: {diff}")
    assert diff < TOL


@pytest.mark.parametrize("win,hop", RESOLUTIONS)
def test_filterbank_is_torchaudio_grid(win, hop):
    """Guards the seed quirk: filters sit on linspace(0, sr/2, n_fft//2+1), not k*sr/n_fft."""
    fb = _mel_transform(SR, win, hop).mel_scale.fb.numpy()
    assert np.abs(fb - htk_filterbank_on_grid(torchaudio_grid(win))).max() < 1e-4
    true_grid = htk_filterbank_on_grid(librosa.fft_frequencies(sr=SR, n_fft=win))
    assert (np.abs(fb - true_grid).max() > 0.01) == (win % 2 == 1)


def test_transforms_are_cached():
    assert _mel_transform(SR, 551, 220) is _mel_transform(SR, 551, 220)


def test_resize_equals_torchvision_resize_on_pil():
    torchvision_transforms = pytest.importorskip("torchvision.transforms")
    rng = np.random.default_rng(0)
    for n_frames in (221, 6014):  # stretch and squeeze
        x = rng.normal(size=(128, n_frames)).astype(np.float32)
        tv = np.asarray(torchvision_transforms.Resize((128, 1500))(Image.fromarray(x)))
        np.testing.assert_array_equal(_resize_pil_bilinear(x), tv)


def test_bandpass_matches_independent_reference(speech):
    diffs = channel_diffs(log_mel_3res_bandpass(speech), reference_log_mel(bandpass(speech)))
    print(f"band-pass: max abs diff per channel {diffs}")
    assert max(diffs) < TOL, diffs


def test_bandpass_attenuates_below_3khz(speech):
    upper_edges = librosa.mel_frequencies(130, fmin=0, fmax=SR / 2, htk=True)[2:]
    low_bands = upper_edges < 3000
    for c in range(3):
        plain = np.exp(log_mel_3res(speech)[c][low_bands]).sum()
        filtered = np.exp(log_mel_3res_bandpass(speech)[c][low_bands]).sum()
        ratio_db = 10 * np.log10(filtered / plain)
        print(f"channel {c}: power below 3 kHz changed by {ratio_db:.1f} dB")
        assert ratio_db < -30


@pytest.mark.parametrize(
    "waveform,sr,match",
    [
        (np.zeros(0, np.float32), SR, "too short"),
        (np.zeros(2204, np.float32), SR, "too short"),
        (np.zeros((2, 22050), np.float32), SR, "mono"),
        (np.zeros(22050, np.float32), 16000, "22050"),
        (np.zeros(22050, np.int16), SR, "floating"),
        (np.full(22050, np.nan, np.float32), SR, "NaN"),
    ],
)
def test_bad_input_raises(waveform, sr, match):
    with pytest.raises(ValueError, match=match):
        log_mel_3res(waveform, sr)
    with pytest.raises(ValueError, match=match):
        log_mel_3res_bandpass(waveform, sr)


def test_shortest_accepted_input():
    x = log_mel_3res(np.random.default_rng(0).normal(0, 0.1, 2205).astype(np.float32))
    assert x.shape == LOGMEL_SHAPE and np.all(np.isfinite(x))


def test_bandpass_rejects_bad_band(speech):
    with pytest.raises(ValueError, match="low_hz"):
        log_mel_3res_bandpass(speech, low_hz=11000, high_hz=4000)
