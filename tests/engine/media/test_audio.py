"""load_audio: PyAV decode + resample; no audio is a result, not a crash."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, SAMPLES
from engine.media import load_audio


def test_load_audio_resamples_and_mixes_to_mono():
    track = load_audio(DATA / "jfk.flac", 16000)
    wave, sr = track  # unpacks like librosa.load
    assert sr == 16000 and wave.dtype == np.float32 and wave.ndim == 1
    assert track.source_sample_rate == 44100 and track.source_channels == 2
    assert track.duration_s == pytest.approx(11.0, abs=0.02)
    assert np.abs(wave).max() <= 1.0


def test_load_audio_agrees_with_librosa():
    librosa = pytest.importorskip("librosa")
    ours, sr = load_audio(DATA / "jfk.flac", 22050)
    ref, _ = librosa.load(str(DATA / "jfk.flac"), sr=22050)
    n = min(len(ours), len(ref))
    # different resamplers (swresample vs soxr): the signals agree closely but not bit-exactly
    corr = np.corrcoef(ours[:n], ref[:n])[0, 1]
    assert abs(len(ours) - len(ref)) <= 32
    assert corr > 0.999


def test_load_audio_stereo_kept_when_not_mono():
    wave, sr = load_audio(SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4", 16000, mono=False)
    assert wave.shape[0] == 2 and wave.shape[1] == pytest.approx(8.0 * 16000, abs=1024)


def test_no_audio_is_a_testable_result():
    track = load_audio(DATA / "bikes.mp4", 22050)
    assert not track.has_audio and not track
    assert "no audio stream" in track.missing_reason and "bikes.mp4" in track.missing_reason
    assert track.waveform.size == 0 and track.sr == 22050


def test_audio_of_generated_tone(vfr_video):
    wave, sr = load_audio(vfr_video, 8000)
    spec = np.abs(np.fft.rfft(wave[2000:6000]))
    assert np.fft.rfftfreq(4000, 1 / sr)[spec.argmax()] == pytest.approx(440, abs=4)
