"""engine.features.melimages: seed 5's 16 mel-spectrogram images (spec §5.3)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.features.melimages import (
    MEL_SR,
    mel_chunks,
    mel_db,
    mel_images,
    render_specshow,
    specshow_cmap_name,
)


def _tone(freq: float, seconds: float, sr: int = MEL_SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_no_audio_gives_16_black_images():
    for wave in (None, np.zeros(0, np.float32)):
        imgs = mel_images(wave)
        assert imgs.shape == (16, 224, 224, 3) and imgs.dtype == np.uint8 and not imgs.any()


def test_chunks_are_16_equal_parts_of_at_most_16_s():
    chunks = mel_chunks(np.zeros(20 * MEL_SR, np.float32))
    assert len(chunks) == 16 and {c.size for c in chunks} == {MEL_SR}  # 16 s cap: 1 s each
    chunks = mel_chunks(np.arange(1000, dtype=np.float32))
    assert sum(c.size for c in chunks) == 1000 and max(c.size for c in chunks) - min(c.size for c in chunks) <= 1
    assert np.array_equal(np.concatenate(chunks), np.arange(1000, dtype=np.float32))


def test_mel_db_matches_librosa_defaults():
    librosa = pytest.importorskip("librosa")
    y = _tone(440, 1.0)
    db = mel_db(y)
    assert db.shape == (128, 1 + y.size // 512)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=MEL_SR, n_fft=2048, hop_length=512,
                                                             n_mels=128), ref=1.0, amin=1e-10, top_db=80.0)
    assert np.allclose(db, ref, atol=1e-4)


def test_colormap_choice_matches_librosa_display():
    display = pytest.importorskip("librosa.display")
    rng = np.random.default_rng(0)
    for data in (rng.uniform(-80, -10, (128, 44)), rng.uniform(-20, 20, (128, 44)), rng.uniform(1, 5, (8, 8))):
        assert specshow_cmap_name(data) == display.cmap(data).name


def test_low_frequencies_at_the_bottom_bgr():
    quiet = 0.02 * _tone(150, 16.0)  # all dB < 0: magma
    assert specshow_cmap_name(mel_db(quiet[:MEL_SR])) == "magma"
    img = mel_images(quiet)[3]
    assert img.shape == (224, 224, 3)
    brightness = img.astype(np.float32).mean(axis=(1, 2))
    assert int(np.argmax(brightness)) > 224 * 3 // 4  # the 150 Hz band is a low mel band: near the bottom
    assert brightness[-40:].mean() > brightness[:40].mean() + 30
    # magma's bright end is orange-yellow: more red than blue, and red is the LAST channel in BGR
    row = img[int(np.argmax(brightness))].astype(np.float32).mean(0)
    assert row[2] > row[0]


def test_render_matches_librosa_specshow_figure():
    """Our direct render vs the seed's matplotlib route (specshow on an axes filling the figure)."""
    pytest.importorskip("librosa.display")
    import cv2
    import librosa.display
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y = _tone(300, 1.0) + 0.05 * np.random.default_rng(1).standard_normal(MEL_SR).astype(np.float32)
    db = mel_db(y)
    fig = Figure(figsize=(1, 1), dpi=448)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    librosa.display.specshow(db, ax=ax)
    canvas.draw()
    ref = np.asarray(canvas.buffer_rgba())[..., :3]
    ref_bgr = cv2.resize(np.ascontiguousarray(ref), (224, 224), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    ours = render_specshow(db)
    diff = np.abs(ours.astype(np.int16) - ref_bgr.astype(np.int16))
    assert diff.mean() < 6.0 and np.median(diff) <= 2
