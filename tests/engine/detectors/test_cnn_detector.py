"""deepfake.cnn and deepfake.cnn_lstm detectors: scores, mean aggregation, Grad-CAM in crop coordinates,
shared fc1 features, prefix scores, temporal saliency, weight-hash coupling."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from conftest import DATA
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip, analyze
from engine.weights import ModelCard, WeightsIntegrityError, save_weights

VIDEO = DATA / "retalking_face5.mp4"


def _save(model, cfg, out, detector_id, arch):
    return save_weights(model.state_dict(), ModelCard(
        detector_id=detector_id, architecture=arch, config=asdict(cfg), classes=["real", "fake"],
        training_data="untrained (test)", metrics={}, evaluation="none", limitations=["test weights"], sha256=""), out)


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory):
    from engine.models.cnn import CNN, CNNConfig

    torch.manual_seed(0)
    cfg = CNNConfig(backbone="efficientnet_lite0", init="imagenet")  # random weights; ImageNet normalisation path
    out = tmp_path_factory.mktemp("cnn") / "deepfake.cnn"
    _save(CNN(cfg), cfg, out, "deepfake.cnn", "cnn")
    return out


@pytest.fixture(scope="module")
def lstm_dir(tmp_path_factory, cnn_dir):
    from engine.models.cnn_lstm import CNNLSTM, CNNLSTMConfig
    from engine.weights import load_card

    torch.manual_seed(0)
    cfg = CNNLSTMConfig(variant="lstm", cnn_sha256=load_card(cnn_dir).sha256)
    out = tmp_path_factory.mktemp("lstm") / "deepfake.cnn_lstm"
    _save(CNNLSTM(cfg), cfg, out, "deepfake.cnn_lstm", "cnn_lstm")
    return out


@pytest.fixture(scope="module")
def clip():
    return MediaClip(VIDEO, ClipConfig(sampling=Uniform(4), device="cpu"))


def test_cnn_detector_scores_and_gradcam(cnn_dir, clip):
    from engine.detectors.cnn import CNNDetector

    det = CNNDetector(device="cpu", model_dir=cnn_dir, batch_size=2)
    r = det.analyze(clip)
    assert r.status == "ok", r.message
    assert len(r.frame_scores) == 4 and all(0.0 <= s.score <= 1.0 for s in r.frame_scores)
    assert r.score == pytest.approx(np.mean([s.score for s in r.frame_scores]), abs=1e-6)
    assert r.class_probs["fake"] == pytest.approx(r.score) and r.threshold == 0.5
    assert r.label == ("fake" if r.score > 0.5 else "real")
    assert r.explanations == {"Grad-CAM": "f{frame}"}
    for s in r.frame_scores:
        cam = r.heatmaps[s.heatmap_key]
        assert s.heatmap_key == f"f{s.frame_index}"
        assert cam.shape == (160, 160) and cam.dtype == np.float16
        assert 0.0 <= float(cam.min()) and float(cam.max()) <= 1.0
        assert s.crop is not None and s.box is not None
    # the crop heatmap lands on the face in the frame
    frame, crop = clip.face_crops("mtcnn_margin40_160")[0]
    on_frame = crop.heatmap_to_frame(np.ones((160, 160), np.float32), frame.rgb.shape[:2])
    ys, xs = np.nonzero(np.isfinite(on_frame) & (on_frame > 0))
    b = crop.box
    assert xs.min() <= (b.x1 + b.x2) / 2 <= xs.max() and ys.min() <= (b.y1 + b.y2) / 2 <= ys.max()


def test_cnn_fc1_features_cached_on_clip(cnn_dir, clip):
    from engine.detectors.cnn import CNNDetector

    det = CNNDetector(device="cpu", model_dir=cnn_dir, explain=False)
    feats = det.clip_features(clip)
    assert feats.features.shape == (4, 512) and feats.features.dtype == np.float32
    assert det.clip_features(clip) is feats  # cached under (id, "fc1", sha256)
    assert clip.cached(("deepfake.cnn", "fc1", det.card.sha256), lambda: None) is feats
    # the same function scores image datasets; features of the same crops agree with analyze's
    f2, p2 = det.fc1_features(np.stack([c.image for _, c in feats.crops]))
    assert np.allclose(f2, feats.features, atol=1e-5) and np.allclose(p2, feats.probs, atol=1e-6)
    r = det.analyze(clip)
    assert r.heatmaps == {} and r.explanations == {}
    s = det.score_crops([np.full((100, 80, 3), 128, np.uint8), np.zeros((50, 50, 3), np.uint8)])
    assert s.shape == (2,) and s.dtype == np.float32 and ((0 <= s) & (s <= 1)).all()


def test_cnn_loads_float16_storage(cnn_dir, tmp_path):
    from engine.detectors.cnn import CNNDetector
    from engine.weights import load_card, load_weights

    state, card = load_weights(cnn_dir)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    save_weights(half, card, tmp_path / "half")
    det = CNNDetector(device="cpu", model_dir=tmp_path / "half")
    assert det.model.fc1.weight.dtype == torch.float32
    assert load_card(tmp_path / "half").sha256 != card.sha256


def test_cnn_tampered_weights_refused(cnn_dir, tmp_path):
    import shutil

    from engine.detectors.cnn import CNNDetector

    bad = tmp_path / "bad"
    shutil.copytree(cnn_dir, bad)
    with open(bad / "model.safetensors", "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x00" * 8)
    with pytest.raises(WeightsIntegrityError):
        CNNDetector(model_dir=bad)


def test_cnn_lstm_detector_sequence_and_saliency(cnn_dir, lstm_dir, clip):
    from engine.detectors.cnn_lstm import CNNLSTMDetector

    det = CNNLSTMDetector(device="cpu", model_dir=lstm_dir, cnn_model_dir=cnn_dir)
    assert CNNLSTMDetector.requires_weights == ("deepfake.cnn_lstm", "deepfake.cnn")
    r = det.analyze(clip)
    assert r.status == "ok", r.message
    assert len(r.frame_scores) == 4 and 0.0 <= r.score <= 1.0
    # frame score t = P(fake) of the prefix ending at t; the last prefix is the whole sequence
    assert r.frame_scores[-1].score == pytest.approx(r.score, abs=1e-5)
    feats = det.cnn.clip_features(clip)  # shared with deepfake.cnn through the clip cache
    with torch.no_grad():
        p2 = torch.softmax(det.model(torch.from_numpy(feats.features[:2])[None]), 1)[0, 1].item()
    assert r.frame_scores[1].score == pytest.approx(p2, abs=1e-5)
    plot = r.plots["temporal saliency"]
    assert plot["kind"] == "timeline" and plot["x"] == pytest.approx([s.pts for s in r.frame_scores], abs=1e-5)
    sal = np.array(plot["series"]["saliency"])
    assert sal.shape == (4,) and sal.min() >= 0.0 and sal.max() == pytest.approx(1.0)


def test_cnn_lstm_sequence_is_first_25_frames(cnn_dir, lstm_dir):
    from engine.detectors.cnn_lstm import CNNLSTMDetector

    det = CNNLSTMDetector(device="cpu", model_dir=lstm_dir, cnn_model_dir=cnn_dir, explain=False)
    f = np.random.default_rng(0).normal(size=(25, 512)).astype(np.float32)
    score, prefix = det.sequence_scores(f)
    assert prefix.shape == (25,) and score == pytest.approx(prefix[-1])
    with torch.no_grad():
        p10 = torch.softmax(det.model(torch.from_numpy(f[:10])[None]), 1)[0, 1].item()
    assert prefix[9] == pytest.approx(p10, abs=1e-5)


def test_cnn_lstm_refuses_other_cnn_weights(cnn_dir, lstm_dir, tmp_path):
    from engine.detectors.cnn_lstm import CNNLSTMDetector, CNNMismatch
    from engine.models.cnn import CNN, CNNConfig
    from engine.weights import load_card

    torch.manual_seed(1)
    cfg = CNNConfig(backbone="efficientnet_lite0")
    other = _save(CNN(cfg), cfg, tmp_path / "other", "deepfake.cnn", "cnn")
    with pytest.raises(CNNMismatch) as err:
        CNNLSTMDetector(model_dir=lstm_dir, cnn_model_dir=tmp_path / "other")
    msg = str(err.value)
    assert load_card(lstm_dir).config["cnn_sha256"] in msg and other.sha256 in msg


def test_both_detectors_through_analyze(cnn_dir, lstm_dir):
    from engine.detectors.cnn import CNNDetector
    from engine.detectors.cnn_lstm import CNNLSTMDetector

    dets = [CNNDetector(device="cpu", model_dir=cnn_dir, explain=False),
            CNNLSTMDetector(device="cpu", model_dir=lstm_dir, cnn_model_dir=cnn_dir)]
    result = analyze(VIDEO, dets, device="cpu", config=ClipConfig(sampling=Uniform(3)))
    by_id = {d.detector_id: d for d in result.detectors}
    assert by_id["deepfake.cnn"].status == "ok" and by_id["deepfake.cnn_lstm"].status == "ok"
    assert len(by_id["deepfake.cnn_lstm"].frame_scores) == 3
    assert "temporal saliency" in result.to_dict()["detectors"][1]["plots"]
