"""Camera-model dock and the spectrogram's audio Grad-CAM overlay (issue 6, part 4), offscreen with pytest-qt.

Tiny random-init camera weights (``tests/camera_weights.py``) are put on the
search path with ``FORENSIC_MODELS_DIR``; real samples are analysed with 3 frames.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from camera_weights import CLASSES, DEMO_LIMITATION, make_camera_models  # noqa: E402
from conftest import DATA  # noqa: E402
from forensic_gui.analysis import ResultStore  # noqa: E402
from forensic_gui.app import MainWindow  # noqa: E402

WITH_AUDIO = DATA / "single_face.mp4"  # 640x360, 2.4 s, audio
NO_AUDIO = DATA / "carphone_pristine.mp4"  # 176x144, no audio stream
CAMERA = ["camera.audio", "camera.image", "camera.fusion"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return make_camera_models(tmp_path_factory.mktemp("camera_models"))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, models_dir):
    monkeypatch.setenv("FORENSIC_WORKBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FORENSIC_MODELS_DIR", str(models_dir))
    win = MainWindow(store=ResultStore(tmp_path / "results"), settings_path=tmp_path / "settings.ini", prepare=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def _analyse(qtbot, win, path, frames=3):
    win.add_evidence(path)
    qtbot.waitUntil(lambda: win.current is not None and win.current.evidence is not None, timeout=30000)
    assert set(CAMERA) <= set(win.panel.checked())  # weights found on FORENSIC_MODELS_DIR, fusion included
    win.analyse_current(CAMERA, "cpu", frames)
    qtbot.waitUntil(lambda: win.current.result is not None and not win.queue.busy and win.refreshed, timeout=180000)
    return win.current.result


def test_panel_shows_top5_per_modality_and_both_fusion_rules_and_gradcam_overlay(qtbot, window):
    res = _analyse(qtbot, window, WITH_AUDIO)
    panel = window.camera_panel
    assert not panel.empty.isVisible() and window.camera_dock.isVisible()
    fusion = res.detector("camera.fusion")
    expected = {"audio": res.detector("camera.audio")["class_probs"],
                "image": res.detector("camera.image")["class_probs"],
                "product": fusion["parameters"]["product_rule"]["class_probs"],
                "sum": fusion["parameters"]["sum_rule"]["class_probs"]}
    for key, probs in expected.items():
        box = panel.columns[key]
        assert box.isVisible(), key
        assert len(box.shown) == 5, key
        ps = [p for _, p in box.shown]
        assert ps == sorted(ps, reverse=True)
        assert [c for c, _ in box.shown] == sorted(probs, key=lambda c: (-probs[c], CLASSES.index(c)))[:5]
        assert all(p == pytest.approx(probs[c]) for c, p in box.shown)
        assert all(bar.isVisible() for bar in box.bars) and box.bars[0].value() == round(ps[0] * 1000)
    assert panel.columns["product"].title() == "Fusion: product rule"
    assert panel.columns["sum"].title() == "Fusion: sum rule"
    assert "product rule" in panel.headline.text() and "sum rule" in panel.headline.text()
    assert ("agree" in panel.headline.text()) and not panel.fallback.isVisible()
    # the demo-weights limitation is on screen next to the result, not only in a tooltip
    assert panel.limitations.isVisible() and DEMO_LIMITATION in panel.limitations.text()
    # fusion has no card of its own: the detector panel shows both unimodal cards, nothing is "stale"
    row = res.detector_ids.index("camera.fusion")
    window.panel.table.selectRow(row)
    card = window.panel.card.toPlainText()
    assert "camera.audio@" in card and "camera.image@" in card and "no weights for" not in card
    assert "older weights" not in window.panel.table.item(row, 3).text()

    # audio Grad-CAM overlay on the spectrogram: off by default, toggles on inside the pane's ranges
    spec = window.spectrogram
    assert spec.has_data and not spec.gradcam_shown and panel.gradcam_on.isEnabled()
    panel.gradcam_on.setChecked(True)
    assert spec.gradcam_shown
    cam = res.logmel_gradcam()
    rect = spec.gradcam_rect()
    assert rect.left() == pytest.approx(0.0, abs=1e-6)
    assert rect.right() <= spec.duration_s + cam.column_s + 1e-6 and rect.right() > 0.9 * spec.duration_s
    assert rect.top() == pytest.approx(0.0) and rect.bottom() == pytest.approx(min(spec.f_max_hz, 11025.0))
    label = res.detector("camera.audio")["label"]
    assert f"Grad-CAM (camera.audio, predicted class {label})" in spec.gradcam_caption.text
    assert spec.gradcam_caption.isVisible()
    rgba = spec.gradcam_item.image
    assert rgba.ndim == 3 and rgba.shape[2] == 4 and rgba[..., 3].max() > 0  # semi-transparent colour map
    assert rgba[..., 3].max() < 255
    panel.gradcam_on.setChecked(False)
    assert not spec.gradcam_shown and not spec.gradcam_caption.isVisible()
    # the frame overlay lists camera.image (it has per-frame maps), not camera.audio (its map is on the spectrogram)
    dets = [window.panel.overlay_det.itemText(i) for i in range(window.panel.overlay_det.count())]
    assert "camera.image" in dets and "camera.audio" not in dets


def test_no_audio_sample_shows_the_fallback(qtbot, window):
    res = _analyse(qtbot, window, NO_AUDIO)
    panel = window.camera_panel
    assert res.detector("camera.audio")["status"] == "skipped"
    audio = panel.columns["audio"]
    assert audio.shown == [] and not any(bar.isVisible() for bar in audio.bars)
    assert audio.status.text().startswith("skipped") and "no audio" in audio.status.text()
    assert panel.fallback.isVisible()
    text = panel.fallback.text()
    assert "audio modality missing" in text and "falls back to the image model" in text
    assert len(panel.columns["image"].shown) == 5 and len(panel.columns["product"].shown) == 5
    assert panel.columns["product"].shown == panel.columns["image"].shown  # fallback: rules = image model
    assert not panel.gradcam_on.isEnabled()
    panel.gradcam_on.setChecked(True)
    assert not window.spectrogram.gradcam_shown
    assert np.isfinite([p for _, p in panel.columns["sum"].shown]).all()
