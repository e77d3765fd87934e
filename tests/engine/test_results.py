"""engine.results.ResultView: the one reader of saved analyses (GUI panes and reports)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.faces import FaceBox, crop_face
from engine.io import atomic_save_npz, atomic_write_json
from engine.results import ResultFormatError, ResultView


def _doc_and_arrays():
    frame = np.zeros((120, 160, 3), np.uint8)
    crop = crop_face(frame, FaceBox(40.0, 30.0, 80.0, 90.0), "effvit_square224")
    frames = [{"index": i, "pts": i / 10} for i in (0, 10, 20)]
    scores = [0.2, 0.9, 0.5]
    doc = {
        "evidence": {"sha256": "ab" * 32},
        "sampling": {"frames": frames},
        "faces": {"tracks": [{"track_id": 0, "entries": [
            {"frame_index": f["index"], "pts": f["pts"], "box": [40, 30, 80, 90], "smoothed_box": [41, 31, 79, 89]}
            for f in frames]}]},
        "detectors": [{
            "detector_id": "deepfake.x", "task": "deepfake", "status": "ok", "score": 0.53, "label": "real",
            "threshold": 0.55, "explanations": {"relevancy": "f{frame}"},
            "frame_scores": [{"frame_index": f["index"], "pts": f["pts"], "score": s, "box": [40, 30, 80, 90],
                              "crop": crop.placement} for f, s in zip(frames, scores)],
        }, {"detector_id": "deepfake.spec", "task": "deepfake", "status": "ok", "score": 0.1, "label": "real",
            "threshold": 0.5, "frame_scores": [{"frame_index": 10, "pts": 1.0, "score": 0.1}]}],
    }
    arrays = {f"deepfake.x/f{f['index']}": np.full((224, 224), 0.25 * (k + 1), np.float16) for k, f in enumerate(frames)}
    arrays["deepfake.spec/spectrum/f10"] = np.arange(5, dtype=np.float32)
    arrays["deepfake.spec/class_mean/real"] = np.ones(5, np.float32)
    arrays["display_spectrogram/db"] = np.zeros((3, 4), np.float16)
    arrays["display_spectrogram/times_s"] = np.arange(4) * 0.01
    arrays["display_spectrogram/freqs_hz"] = np.array([0.0, 4000.0, 8000.0])
    return doc, arrays, crop


def test_scores_faces_and_ranking():
    doc, arrays, _ = _doc_and_arrays()
    v = ResultView(doc, arrays)
    assert v.detector_ids == ["deepfake.x", "deepfake.spec"]
    s = v.scores("deepfake.x")
    assert s.threshold == 0.55 and list(s.frame_index) == [0, 10, 20]
    assert v.most_suspicious("deepfake.x") == [(10, 1.0, 0.9), (20, 2.0, 0.5), (0, 0.0, 0.2)]
    assert v.nearest_sample(1.4) == (10, 1.0) and v.nearest_sample(1.6) == (20, 2.0)
    faces = v.faces_at(0.96)
    assert len(faces) == 1 and faces[0].frame_index == 10 and faces[0].box == [41, 31, 79, 89]
    assert v.faces_at(5.0) == []  # far from any sampled frame
    db, times, freqs = v.spectrogram()
    assert db.dtype == np.float32 and db.shape == (3, 4) and freqs[-1] == 8000.0


def test_heatmap_is_the_crop_map_placed_on_the_frame():
    doc, arrays, crop = _doc_and_arrays()
    v = ResultView(doc, arrays)
    assert v.explanation_views("deepfake.x") == ["relevancy"] and v.explanation_views("deepfake.spec") == []
    hm = v.heatmap_at("deepfake.x", "relevancy", 1.2, (120, 160))
    assert hm.frame_index == 10 and hm.score == 0.9 and hm.heatmap.shape == (120, 160)
    expected = crop.heatmap_to_frame(np.full((224, 224), 0.5, np.float32))
    np.testing.assert_array_equal(np.isnan(hm.heatmap), np.isnan(expected))
    np.testing.assert_allclose(hm.heatmap[np.isfinite(hm.heatmap)], 0.5, atol=1e-6)
    assert v.heatmap_at("deepfake.x", "Grad-CAM", 1.2, (120, 160)) is None  # no such view
    assert v.heatmap_at("deepfake.spec", "relevancy", 1.0, (120, 160)) is None
    curves = v.spectrum_curves("deepfake.spec", 0.0)
    assert set(curves) == {"frame", "class_mean/real"}


def test_load_round_trip_and_bad_files(tmp_path):
    doc, arrays, _ = _doc_and_arrays()
    atomic_save_npz(tmp_path / "r.npz", arrays)
    atomic_write_json(tmp_path / "r.json", {**doc, "arrays_file": "r.npz"})
    v = ResultView.load(tmp_path / "r.json")
    assert v.sha256 == "ab" * 32 and "deepfake.x/f10" in v.arrays
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultFormatError, match="bad.json"):
        ResultView.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ResultFormatError, match="not an analysis result"):
        ResultView.load(tmp_path / "other.json")
    (tmp_path / "r.npz").write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(ResultFormatError, match="cannot read arrays"):
        ResultView.load(tmp_path / "r.json")
