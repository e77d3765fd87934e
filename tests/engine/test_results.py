"""engine.results.ResultView: the one reader of saved analyses (GUI panes and reports)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.faces import FaceBox, crop_face
from engine.io import atomic_save_npz, atomic_write_json
from engine.results import ResultFormatError, ResultView, card_limitations


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


# ---------------------------------------------------------------------------------------------- camera model
CAM_CLASSES = ["D01", "D02", "D03", "D04", "D05", "D06"]


def _probs(values):
    return dict(zip(CAM_CLASSES, values))


def _camera_doc(audio_skipped=False, duration_s=3.0, hot=((40, 700),)):
    """A result with camera.audio / camera.image / camera.fusion entries (engine.detectors.camera format)."""
    from engine.detectors.camera import logmel_axes

    pa = [0.05, 0.30, 0.10, 0.25, 0.10, 0.20]
    pv = [0.40, 0.10, 0.10, 0.10, 0.20, 0.10]  # ties between D02, D03, D04, D06: class order
    prod = np.array(pa) * np.array(pv)
    prod = list(prod / prod.sum())
    summ = list((np.array(pa) + np.array(pv)) / 2)
    audio = {"detector_id": "camera.audio", "task": "camera", "status": "ok", "score": 0.30, "label": "D02",
             "class_probs": _probs(pa), "threshold": None, "frame_scores": [], "model_card_id": "camera.audio@aaa",
             "weights_sha256": "a" * 64, "explanations": {"Grad-CAM": "logmel_gradcam"},
             "parameters": {"gradcam_target": "D02", "logmel_gradcam_axes": logmel_axes(duration_s)}}
    if audio_skipped:
        audio = {**audio, "status": "skipped", "score": None, "label": None, "class_probs": {}, "explanations": {},
                 "message": "no audio (no audio stream); the audio camera model cannot run",
                 "parameters": {}}
    image = {"detector_id": "camera.image", "task": "camera", "status": "ok", "score": 0.40, "label": "D01",
             "class_probs": _probs(pv), "threshold": None, "frame_scores": [], "model_card_id": "camera.image@bbb",
             "weights_sha256": "b" * 64, "parameters": {"gradcam_target": "D01"}}
    fusion_params = {"weights": {"camera.audio": "a" * 64, "camera.image": "b" * 64},
                     "product_rule": {"label": CAM_CLASSES[int(np.argmax(prod))], "score": max(prod),
                                      "class_probs": _probs(prod)},
                     "sum_rule": {"label": "D01", "score": max(summ), "class_probs": _probs(summ)},
                     "rules_agree": CAM_CLASSES[int(np.argmax(prod))] == "D01", "fallback": None,
                     "modalities": ["audio", "image"]}
    message = ""
    if audio_skipped:
        fusion_params.update(product_rule={"label": "D01", "score": 0.4, "class_probs": _probs(pv)},
                             sum_rule={"label": "D01", "score": 0.4, "class_probs": _probs(pv)}, rules_agree=True,
                             fallback="image", modalities=["image"])
        message = "audio modality missing — no audio; fusion falls back to the image model alone (camera.image)"
    fusion = {"detector_id": "camera.fusion", "task": "camera", "status": "ok", "score": 0.5, "label": "D01",
              "class_probs": fusion_params["product_rule"]["class_probs"], "threshold": None, "frame_scores": [],
              "model_card_id": "camera.audio@aaa+camera.image@bbb", "weights_sha256": None, "message": message,
              "parameters": fusion_params}
    doc = {"evidence": {"sha256": "cd" * 32}, "sampling": {"frames": []}, "detectors": [audio, image, fusion]}
    cam = np.zeros((128, 1500), np.float16)
    for r, c in hot:
        cam[r, c] = 1.0
    return doc, ({} if audio_skipped else {"camera.audio/logmel_gradcam": cam})


def test_camera_summary_top5_per_modality_and_both_rules():
    doc, arrays = _camera_doc()
    s = ResultView(doc, arrays).camera_summary()
    assert [r.key for r in s.rankings] == ["audio", "image", "product", "sum"]
    assert [r.title for r in s.rankings] == ["Audio (camera.audio)", "Image (camera.image)", "Fusion: product rule",
                                             "Fusion: sum rule"]
    audio, image = s.ranking("audio"), s.ranking("image")
    assert [c for c, _ in audio.top] == ["D02", "D04", "D06", "D03", "D05"] and audio.top[0][1] == 0.30
    assert [c for c, _ in image.top] == ["D01", "D05", "D02", "D03", "D04"]  # ties keep class order
    prod = s.ranking("product")
    assert len(prod.top) == 5 and prod.label == doc["detectors"][2]["parameters"]["product_rule"]["label"]
    assert [p for _, p in prod.top] == sorted((p for _, p in prod.top), reverse=True)
    assert s.ranking("sum").label == "D01" and s.rules_agree is (prod.label == "D01") and s.fallback is None
    assert s.weights == {"camera.audio": "a" * 64, "camera.image": "b" * 64}
    assert s.gradcam_targets == {"camera.audio": "D02", "camera.image": "D01"}
    assert len(ResultView(doc, arrays).camera_summary(k=2).ranking("audio").top) == 2
    doc_no_cam, arrays_no_cam, _ = _doc_and_arrays()
    assert ResultView(doc_no_cam, arrays_no_cam).camera_summary() is None
    with pytest.raises(ValueError):
        ResultView(doc, arrays).camera_summary(k=0)


def test_camera_summary_fallback_and_missing_detectors():
    doc, arrays = _camera_doc(audio_skipped=True)
    v = ResultView(doc, arrays)
    s = v.camera_summary()
    audio = s.ranking("audio")
    assert audio.status == "skipped" and audio.top == [] and not audio.ok and "no audio" in audio.message
    assert s.fallback == "image" and "falls back to the image model" in s.fusion_message
    assert s.ranking("product").top == s.ranking("image").top
    assert v.logmel_gradcam() is None
    only_image = {**doc, "detectors": [doc["detectors"][1]]}
    s = ResultView(only_image, {}).camera_summary()
    assert s.ranking("product").status == "not run" and s.rules_agree is None and s.ranking("image").ok


def test_weights_used_and_cards_of_the_fusion(tmp_path, monkeypatch):
    import torch

    from engine.weights import ModelCard, save_weights

    doc, arrays = _camera_doc()
    v = ResultView(doc, arrays)
    assert v.weights_used("camera.audio") == {"camera.audio": "a" * 64}
    assert v.weights_used("camera.fusion") == {"camera.audio": "a" * 64, "camera.image": "b" * 64}
    for det in ("camera.audio", "camera.image"):
        save_weights({"w": torch.zeros(2)}, ModelCard(det, "x", {}, CAM_CLASSES, "none", {}, "none",
                                                      [f"{det} caveat", "demo weights"], ""), tmp_path / det)
    monkeypatch.setenv("FORENSIC_MODELS_DIR", str(tmp_path))
    cards = v.model_cards("camera.fusion")
    assert [c.weights_id for c in cards] == ["camera.audio", "camera.image"]
    assert all(c.card is not None and c.stale for c in cards)  # the result used other weights ("aaa…")
    assert cards[0].card.limitations == ["camera.audio caveat", "demo weights"]
    said, problems = card_limitations(cards)  # each text once, with every card stating it
    ids = [c.card.card_id for c in cards]
    assert said == [("camera.audio caveat", ids[:1]), ("demo weights", ids), ("camera.image caveat", ids[1:])]
    assert len(problems) == 2 and all("describes other weights" in p for p in problems)
    doc["detectors"][0]["weights_sha256"] = cards[0].card.sha256
    assert not ResultView(doc, arrays).model_cards("camera.audio")[0].stale
    missing = ResultView({**doc, "detectors": [{**doc["detectors"][1], "detector_id": "camera.other"}]}, {})
    [info] = missing.model_cards("camera.other")
    assert info.card is None and "no weights for 'camera.other'" in info.reason and not info.stale


def test_logmel_gradcam_single_hot_cell_lands_at_its_hz_and_seconds():
    duration = 3.0
    doc, arrays = _camera_doc(duration_s=duration, hot=((40, 700), (120, 100), (0, 10)))
    cam = ResultView(doc, arrays).logmel_gradcam()
    assert cam.heatmap.shape == (128, 1500) and cam.heatmap.dtype == np.float32 and cam.target == "D02"
    assert cam.caption == "Grad-CAM (camera.audio, predicted class D02)"
    assert cam.column_s == pytest.approx(duration / 1500)
    np.testing.assert_allclose(cam.row_at_hz(cam.row_center_hz), np.arange(128), atol=1e-9)
    assert np.isnan(cam.row_at_hz(12000.0)) and cam.row_at_hz(0.0) == 0.0
    assert cam.column_at_s(700.5 * cam.column_s) == 700 and cam.column_at_s(-0.1) == -1
    assert cam.column_at_s(duration + 0.01) == -1

    # on the display spectrogram's axes (16 kHz audio: 0-8000 Hz)
    grid = cam.on_linear_grid(f_max_hz=8000.0, n_rows=1600)
    t0, t1, f0, f1 = grid.extent
    assert (t0, f0, f1) == (0.0, 0.0, 8000.0) and t1 == pytest.approx(duration)
    assert grid.image.shape == (1600, 1500)
    df, dt = (f1 - f0) / grid.image.shape[0], (t1 - t0) / grid.image.shape[1]

    def hot_spot(col):
        r = int(np.argmax(grid.image[:, col]))
        return f0 + (r + 0.5) * df, grid.image[r, col]

    # row 40 / column 700: peak at band 40's centre frequency, inside its [low, high] band, at column 700's time
    f, value = hot_spot(700)
    assert value >= 1.0 - df / (cam.row_center_hz[41] - cam.row_center_hz[40])  # sampled within df/2 of the peak
    assert abs(f - cam.row_center_hz[40]) <= df and cam.row_low_hz[40] < f < cam.row_high_hz[40]
    cols = np.nonzero(grid.image.max(axis=0) > 0)[0]
    assert list(cols) == [10, 700]  # row 120 lies above 8000 Hz: not drawn
    assert 700 * cam.column_s <= t0 + (700 + 0.5) * dt <= 701 * cam.column_s
    lit = np.nonzero(grid.image[:, 700] > 0)[0]  # the band lights only between its neighbours' centres
    assert f0 + lit[0] * df >= cam.row_center_hz[39] - df and f0 + (lit[-1] + 1) * df <= cam.row_center_hz[41] + df
    # row 0 (lowest band) lands at the bottom of the axis
    f, value = hot_spot(10)
    assert value == pytest.approx(1.0) and f < cam.row_center_hz[1]
    # the whole mel range, and a crop to a shorter pane
    full = cam.on_linear_grid(n_rows=2048)
    assert full.extent[3] == pytest.approx(11025.0)
    r = int(np.argmax(full.image[:, 100]))
    assert abs((r + 0.5) * 11025.0 / 2048 - cam.row_center_hz[120]) <= 11025.0 / 2048
    short = cam.on_linear_grid(f_max_hz=8000.0, t_max_s=1.0)
    assert short.image.shape[1] == 500 and short.extent[1] == pytest.approx(1.0)
    assert cam.on_linear_grid(f_max_hz=-1.0) is None
