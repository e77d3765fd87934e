"""Detector panel (issue 7): the combined deepfake verdict with a switchable rule, explanation plots
(A/V offset curve, timeline curves) and the nearest reference faces, offscreen with pytest-qt."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from engine.fusion import combined_verdict  # noqa: E402
from engine.pipeline import make_plot  # noqa: E402
from engine.results import ResultView  # noqa: E402
from forensic_gui.detector_panel import DetectorPanel  # noqa: E402
from forensic_gui.panes import ScoreTimeline  # noqa: E402


def _view() -> ResultView:
    frames = [{"frame_index": i, "pts": i * 0.5, "score": s, "track_id": 0, "box": None, "heatmap_key": None,
               "crop": None} for i, s in enumerate((0.2, 0.9, 0.4))]
    dets = [
        {"detector_id": "deepfake.av", "task": "deepfake", "status": "ok", "score": 0.9, "label": "fake",
         "threshold": 0.5, "frame_scores": frames, "message": "", "model_card_id": None, "weights_sha256": None,
         "aggregation": "",
         "plots": {"A/V offset": make_plot(list(range(-15, 16)), {"mean distance": list(np.linspace(9, 12, 31))},
                                           "offset (frames)", "distance", marker_x=-15)}},
        {"detector_id": "deepfake.triplet", "task": "deepfake", "status": "ok", "score": 0.2, "label": "real",
         "threshold": 0.5, "frame_scores": frames, "message": "", "model_card_id": None, "weights_sha256": None,
         "aggregation": "",
         "plots": {"distance to nearest references": make_plot(
             [0.0, 0.5, 1.0], {"real (mean of 5 nearest)": [1.0, 2.0, 4.0], "fake (mean of 5 nearest)": [3, 2, 1]},
             "time (s)", "squared L2", kind="timeline")},
         "details": {"nearest_references": {"k": 1, "frames": [
             {"frame_index": 1, "pts": 0.5, "real": [[4, 0.3]], "fake": [[9, 1.2]]}]}}},
    ]
    doc = {"evidence": {"sha256": "ef" * 32}, "sampling": {"frames": []}, "detectors": dets,
           "combined": combined_verdict(dets)}
    arrays = {"deepfake.triplet/refs/4": np.zeros((48, 48, 3), np.uint8),
              "deepfake.triplet/refs/9": np.full((48, 48, 3), 255, np.uint8)}
    return ResultView(doc, arrays)


def test_combined_verdict_follows_the_chosen_rule(qtbot):
    panel = DetectorPanel(["deepfake.av", "deepfake.triplet"], {})
    qtbot.addWidget(panel)
    panel.set_result(_view(), {})
    text = panel.verdict.text()
    assert "Combined deepfake verdict" in text and "P(fake) 0.550" in text and "mean of the detectors" in text
    panel.fusion_rule.setCurrentText("max")
    assert "P(fake) 0.900" in panel.verdict.text() and "largest video P(fake)" in panel.verdict.text()
    panel.fusion_rule.setCurrentText("weighted")
    assert panel.fusion_weights.isVisibleTo(panel)
    panel.fusion_weights.setText("deepfake.av=0,deepfake.triplet=1")
    panel.fusion_weights.editingFinished.emit()
    assert "P(fake) 0.200" in panel.verdict.text()
    panel.fusion_weights.setText("deepfake.av:0")  # not id=number: marked, ignored
    panel.fusion_weights.editingFinished.emit()
    assert "P(fake) 0.550" in panel.verdict.text() and "detector_id=number" in panel.fusion_weights.toolTip()


def test_plots_and_reference_faces_are_drawn(qtbot):
    view = _view()
    panel = DetectorPanel(["deepfake.av", "deepfake.triplet"], {})
    qtbot.addWidget(panel)
    panel.show()
    panel.show_plots(view.plots("deepfake.av", "line"), "#56B4E9")
    assert panel.explain_plot.isVisible()
    items = panel.explain_plot.plotItem.listDataItems()
    assert len(items) == 1 and len(items[0].xData) == 31 and items[0].xData[0] == -15
    panel.show_plots({}, "#56B4E9")
    assert not panel.explain_plot.isVisible()

    timeline = ScoreTimeline()
    qtbot.addWidget(timeline)
    curves = {label: (p["x"], y) for p in view.plots("deepfake.triplet", "timeline").values()
              for label, y in p["series"].items()}
    timeline.set_overlays(curves, "#009E73")
    names = sorted(timeline.overlays)
    assert names == ["fake (mean of 5 nearest) (scaled)", "real (mean of 5 nearest) (scaled)"]
    assert np.allclose(timeline.overlays["real (mean of 5 nearest) (scaled)"].yData, [0.25, 0.5, 1.0])
    timeline.set_overlays({}, "#009E73")
    assert timeline.overlays == {}

    entry = view.details("deepfake.triplet")["nearest_references"]["frames"][0]
    thumbs = {cls: [(view.arrays.get(f"deepfake.triplet/refs/{i}"), d) for i, d in entry[cls]] for cls in ("real", "fake")}
    panel.references.set_references("nearest", thumbs)
    assert panel.references.isVisible() and len(panel.references.labels) == 2
    assert not panel.references.labels[0].pixmap().isNull()
    assert "distance 0.300" in panel.references.labels[0].toolTip()
    panel.references.set_references("", {})
    assert not panel.references.isVisible()
