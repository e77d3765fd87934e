"""camera.audio / camera.image / camera.fusion (seed 1): probabilities, late fusion, Grad-CAM placement, weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import DATA
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip, analyze
from camera_weights import save_camera_model
from engine.weights import WeightsIntegrityError, WeightsNotFound

CLASSES = ["D01-D26", "D02-D10", "D03"]
WITH_AUDIO = DATA / "single_face.mp4"  # 640x360, 2.4 s AAC
NO_AUDIO = DATA / "carphone_pristine.mp4"  # 176x144 (smaller than the 256 crop), no audio stream


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models folder with tiny-data (random-init, 3-class) ``camera.audio`` and ``camera.image`` weights."""
    from camera_weights import make_camera_models

    return make_camera_models(tmp_path_factory.mktemp("models"), CLASSES, seed=0)


@pytest.fixture(scope="module")
def detectors(models_dir):
    from engine.detectors.camera import CameraAudioDetector, CameraFusionDetector, CameraImageDetector

    return (CameraAudioDetector(model_dir=models_dir / "camera.audio"),
            CameraImageDetector(model_dir=models_dir / "camera.image", batch_size=2),
            CameraFusionDetector(model_dir=models_dir))


@pytest.fixture(scope="module")
def run(detectors):
    """One analysis of the clip with audio: audio, image and fusion in that order (shared clip cache)."""
    calls = {"audio": 0, "image": 0}
    audio, image, _ = detectors
    hooks = [audio.net.model.register_forward_hook(lambda *_: calls.__setitem__("audio", calls["audio"] + 1)),
             image.net.model.register_forward_hook(lambda *_: calls.__setitem__("image", calls["image"] + 1))]
    try:
        result = analyze(WITH_AUDIO, list(detectors), device="cpu", config=ClipConfig(sampling=Uniform(3)),
                         compute_features=())
    finally:
        for h in hooks:
            h.remove()
    return result, calls


def _probs(r) -> np.ndarray:
    return np.array([r.class_probs[c] for c in CLASSES])


def test_audio_detector_probabilities_and_logmel_gradcam(run):
    r = run[0].detectors[0]
    assert r.detector_id == "camera.audio" and r.task == "camera" and r.status == "ok", r.message
    p = _probs(r)
    assert list(r.class_probs) == CLASSES and p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert r.label == CLASSES[int(p.argmax())] and r.score == pytest.approx(p.max())
    assert r.frame_scores == [] and r.explanations == {"Grad-CAM": "logmel_gradcam"}
    cam = r.heatmaps["logmel_gradcam"]
    assert cam.shape == (128, 1500) and cam.dtype == np.float16
    assert 0.0 <= float(cam.min()) and float(cam.max()) <= 1.0
    axes = r.parameters["logmel_gradcam_axes"]
    assert axes["shape"] == [128, 1500] and axes["f_max_hz"] == 11025.0 and "row 0 = lowest" in axes["rows"]
    assert axes["duration_s"] == pytest.approx(2.4, abs=0.1)
    assert axes["column_s"] == pytest.approx(axes["duration_s"] / 1500)
    c = np.array(axes["row_center_hz"])
    assert c.shape == (128,) and (np.diff(c) > 0).all() and 0 < c[0] < 100 and c[-1] < 11025
    assert r.parameters["gradcam_target"] == r.label and r.weights_sha256
    assert r.model_card_id.startswith("camera.audio@")


def test_image_detector_mean_of_frame_softmax_and_placement(run):
    from engine.faces import place_heatmap
    from engine.results import ResultView

    result = run[0]
    r = result.detectors[1]
    assert r.detector_id == "camera.image" and r.status == "ok", r.message
    p, fp = _probs(r), np.array(r.parameters["frame_class_probs"])
    assert fp.shape == (3, 3) and np.allclose(fp.sum(axis=1), 1.0, atol=1e-5)
    assert p.sum() == pytest.approx(1.0) and np.allclose(p, fp.mean(axis=0), atol=1e-5)  # §1.9: own-frame mean
    top = int(p.argmax())
    assert r.label == CLASSES[top] and r.score == pytest.approx(p[top])
    assert [s.frame_index for s in r.frame_scores] == [f["index"] for f in result.sampling["frames"]]
    view = ResultView.from_result(result)
    for s, row in zip(r.frame_scores, fp):
        assert s.score == pytest.approx(row[top], abs=1e-5) and s.track_id is None
        # 640x360 frame: centre crop starts at ((640-256)//2, (360-256)//2)
        assert s.box == [192.0, 52.0, 448.0, 308.0] and s.heatmap_key == f"gradcam/f{s.frame_index}"
        hm = r.heatmaps[s.heatmap_key]
        assert hm.shape == (256, 256) and hm.dtype == np.float16 and 0 <= float(hm.min()) <= float(hm.max()) <= 1
        on = place_heatmap(np.ones((8, 8)), s.crop["region"], s.crop["content"], s.crop["size_hw"], (360, 640))
        ys, xs = np.nonzero(np.isfinite(on))
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (192, 52, 448, 308)
        placed = view.heatmap_at("camera.image", "Grad-CAM", s.pts, (360, 640))
        assert placed.frame_index == s.frame_index
        assert np.isfinite(placed.heatmap).sum() == 256 * 256
        assert np.allclose(placed.heatmap[52:308, 192:448], hm.astype(np.float32), atol=2e-3)


def test_fusion_is_product_and_sum_of_unimodal_without_rerunning(run, detectors):
    result, calls = run
    ra, rv, rf = result.detectors
    assert rf.detector_id == "camera.fusion" and rf.status == "ok" and rf.message == ""
    pa, pv = _probs(ra), _probs(rv)
    prod = pa * pv / (pa * pv).sum()
    assert np.allclose(_probs(rf), prod, atol=1e-9) and rf.label == CLASSES[int(prod.argmax())]
    assert rf.score == pytest.approx(prod.max())
    pr, sr = rf.parameters["product_rule"], rf.parameters["sum_rule"]
    assert pr["label"] == rf.label and np.allclose([pr["class_probs"][c] for c in CLASSES], prod)
    summ = (pa + pv) / 2
    assert np.allclose([sr["class_probs"][c] for c in CLASSES], summ) and sr["label"] == CLASSES[int(summ.argmax())]
    assert rf.parameters["audio"]["label"] == ra.label and rf.parameters["image"]["label"] == rv.label
    assert rf.parameters["fallback"] is None and rf.parameters["modalities"] == ["audio", "image"]
    assert pr["normaliser"] == pytest.approx((pa * pv).sum())
    json.dumps(result.to_dict())  # every parameter is plain JSON (no numpy scalars)
    # the fusion reused the unimodal predictions: its own networks were never loaded
    fusion = detectors[2]
    assert fusion.audio._model is None and fusion.image._model is None
    assert calls["audio"] == 2 and calls["image"] == 2 + 2  # probs + Grad-CAM; 3 frames in batches of 2


def test_fusion_alone_computes_the_same(run, models_dir):
    from engine.detectors.camera import CameraFusionDetector

    ref = run[0].detectors[2]
    det = CameraFusionDetector(audio_dir=models_dir / "camera.audio", image_dir=models_dir / "camera.image")
    r = det.analyze(MediaClip(WITH_AUDIO, ClipConfig(sampling=Uniform(3), device="cpu")))
    assert r.status == "ok" and r.label == ref.label
    assert np.allclose(_probs(r), _probs(ref), atol=1e-5)


def test_no_audio_skips_audio_and_fusion_falls_back(detectors):
    from engine.faces import place_heatmap

    result = analyze(NO_AUDIO, list(detectors), device="cpu", config=ClipConfig(sampling=Uniform(2)),
                     compute_features=())
    ra, rv, rf = result.detectors
    assert ra.status == "skipped" and "no audio" in ra.message and ra.class_probs == {}
    assert rv.status == "ok" and len(rv.frame_scores) == 2
    s = rv.frame_scores[0]
    # frame smaller than the crop: the crop is zero-padded; only the frame part maps back, covering the frame
    assert s.box == [0.0, 0.0, 176.0, 144.0] and s.crop == {
        "region": [0.0, 0.0, 256.0, 256.0], "content": [0.0, 0.0, 176.0, 144.0], "size_hw": [256, 256]}
    assert np.isfinite(place_heatmap(rv.heatmaps[s.heatmap_key], **{
        "region": s.crop["region"], "content": s.crop["content"], "crop_hw": s.crop["size_hw"],
        "frame_hw": (144, 176)})).all()
    assert rf.status == "ok" and rf.parameters["fallback"] == "image" and rf.parameters["audio"] is None
    assert "audio modality missing" in rf.message and "falls back to the image model" in rf.message
    assert np.allclose(_probs(rf), _probs(rv)) and rf.label == rv.label
    assert rf.parameters["sum_rule"]["label"] == rv.label


def test_fuse_confident_disagreement_is_defined():
    from engine.detectors.camera import fuse

    la = np.log(np.array([1 - 2e-300, 1e-300, 1e-300]))
    lv = np.array([-1e4, 0.0, -1e4])  # log-probs of a model sure of class 1
    out = fuse(la, lv)
    assert np.isfinite(out.product).all() and out.product.sum() == pytest.approx(1.0)
    assert int(out.product.argmax()) == 1 and out.sum == pytest.approx([0.5, 0.5, 0.0])
    with pytest.raises(ValueError):
        fuse(np.zeros(3), np.zeros(4))


def test_missing_weights_make_camera_detectors_unavailable(models_dir, tmp_path, monkeypatch):
    import engine.weights
    from engine.detectors.camera import CameraFusionDetector
    from engine.pipeline import available_detectors, create_detector

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(engine.weights, "search_path", lambda: [empty])
    ok, missing = available_detectors()
    assert {"camera.audio", "camera.image", "camera.fusion"} <= set(missing) and not set(ok) & set(missing)
    assert "no weights for 'camera.audio'" in missing["camera.audio"]
    with pytest.raises(WeightsNotFound):
        create_detector("camera.image")
    with pytest.raises(WeightsNotFound):
        create_detector("camera.fusion")
    monkeypatch.setattr(engine.weights, "search_path", lambda: [models_dir])
    ok, _ = available_detectors()
    assert {"camera.audio", "camera.image"} <= set(ok)
    assert CameraFusionDetector.requires_weights == ("camera.audio", "camera.image")
    assert create_detector("camera.fusion").classes == CLASSES


def test_class_list_mismatch_is_a_clear_error(models_dir, tmp_path):
    from engine.detectors.camera import CameraFusionDetector
    from engine.models import CameraAudioConfig, CameraAudioNet

    other = ["D01-D26", "D03", "D02-D10"]  # same names, other order: still not fusable
    bad = save_camera_model(CameraAudioNet(CameraAudioConfig(classes=other)), "camera.audio", "camera_audio", other,
                tmp_path / "camera.audio")
    with pytest.raises(ValueError, match="same class list") as exc:
        CameraFusionDetector(audio_dir=bad, image_dir=models_dir / "camera.image")
    assert "D03" in str(exc.value) and str(bad) in str(exc.value)


def test_wrong_architecture_and_tampered_weights_refused(models_dir, tmp_path):
    from engine.detectors.camera import CameraAudioDetector, CameraFusionDetector

    with pytest.raises(ValueError, match="camera_audio"):
        CameraAudioDetector(model_dir=models_dir / "camera.image")
    bad = tmp_path / "camera.audio"
    shutil.copytree(models_dir / "camera.audio", bad)
    w = bad / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x01
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError):
        CameraAudioDetector(model_dir=bad)
    with pytest.raises(WeightsIntegrityError):
        CameraFusionDetector(audio_dir=bad, image_dir=models_dir / "camera.image")


def test_truncated_gradcam_equals_full_backward(detectors):
    from engine.explain import gradcam_maps

    model = detectors[0].net.model
    x = torch.randn(2, 3, 128, 192) * 3 - 8
    full = gradcam_maps(model, model.gradcam_layer(), x, [0, 2])
    cut = gradcam_maps(model, model.gradcam_layer(), x, [0, 2], truncate=True)
    np.testing.assert_allclose(cut.raw, full.raw, rtol=1e-5, atol=1e-7)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())  # flags and grads restored


def test_audio_only_evidence_skips_image_and_fusion_uses_audio(detectors):
    _, image, fusion = detectors
    clip = MediaClip(DATA / "jfk.flac", ClipConfig(sampling=Uniform(2), device="cpu"))
    rv = image.analyze(clip)
    assert rv.status == "skipped" and "no video stream" in rv.message
    rf = fusion.analyze(clip)
    assert rf.status == "ok" and rf.parameters["fallback"] == "audio" and "image modality missing" in rf.message
    assert rf.parameters["image"] is None and rf.label == rf.parameters["audio"]["label"]
    assert sum(rf.class_probs.values()) == pytest.approx(1.0)
