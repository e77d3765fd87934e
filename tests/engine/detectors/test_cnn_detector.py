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
    assert r.details == {} and "bagging_members" not in r.parameters  # K = 1: no vote
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


# ------------------------------------------------------------------ bagging / max voting (spec §3.1)
def test_max_vote_majority_and_tie():
    from engine.detectors.cnn import max_vote

    v = max_vote([0.9, 0.8, 0.1])
    assert (v.label, v.fake_votes, v.members, v.tie) == ("fake", 2, 3, False)
    assert v.text() == "2 of 3 members: fake" and v.to_dict()["member_votes"] == ["fake", "fake", "real"]
    v = max_vote(np.array([0.2, 0.6, 0.3]))
    assert (v.label, v.majority) == ("real", 2) and v.text() == "2 of 3 members: real"
    # mean score 0.62 > 0.5 but the majority says real: the vote, not the mean, decides
    assert max_vote([0.99, 0.45, 0.42]).label == "real"
    assert max_vote([0.51]).text() == "1 of 1 members: fake" and max_vote([0.5]).label == "real"  # > threshold
    # ties (even K): broken by the mean member score (> threshold = fake, else real)
    t = max_vote([0.9, 0.3])
    assert t.tie and t.label == "fake" and t.text() == "1 of 2 members: fake (tie broken by the mean score)"
    t = max_vote([0.6, 0.1, 0.7, 0.2])
    assert t.tie and t.fake_votes == 2 and t.label == "real"
    assert max_vote([0.9, 0.1]).label == "real"  # mean exactly 0.5: not > threshold
    assert max_vote([0.7, 0.65, 0.2], threshold=0.68).label == "real"
    for bad in ([], [[0.1, 0.2]], [0.2, float("nan")]):
        with pytest.raises(ValueError):
            max_vote(bad)


def test_split_members():
    from engine.detectors.cnn import split_members

    a, b = torch.zeros(2), torch.ones(3)
    assert split_members({"fc1.weight": a}) == [{"fc1.weight": a}]
    m = split_members({"bag1.fc1.weight": b, "bag0.fc1.weight": a, "bag0.fc2.bias": b})
    assert [sorted(x) for x in m] == [["fc1.weight", "fc2.bias"], ["fc1.weight"]] and m[1]["fc1.weight"] is b
    with pytest.raises(ValueError, match="mix"):
        split_members({"bag0.fc1.weight": a, "fc1.weight": a})
    with pytest.raises(ValueError, match="bag0"):
        split_members({"bag0.fc1.weight": a, "bag2.fc1.weight": a})


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory):
    """Three random members in one ``model.safetensors`` with ``bag{k}.`` prefixes (as ``fit_cnn`` writes)."""
    from engine.models.cnn import CNN, CNNConfig

    cfg = CNNConfig(backbone="efficientnet_lite0")
    state = {}
    for k in range(3):
        torch.manual_seed(10 + k)
        state.update({f"bag{k}.{n}": t for n, t in CNN(cfg).state_dict().items()})
    out = tmp_path_factory.mktemp("bag") / "deepfake.cnn"
    save_weights(state, ModelCard(
        detector_id="deepfake.cnn", architecture="cnn", config=asdict(cfg), classes=["real", "fake"],
        training_data="untrained (test)", metrics={}, evaluation="none", limitations=["test weights"], sha256="",
        training={"bagging": {"members": 3}}), out)
    return out


def test_cnn_bagged_detector_votes(bag_dir, clip):
    from engine.detectors.cnn import CNNDetector
    from engine.models.cnn import CNN, preprocess_crops
    from engine.weights import load_weights

    det = CNNDetector(device="cpu", model_dir=bag_dir, batch_size=3)
    assert det.n_members == 3 and det.model is det.members[0] and "max voting" in det.aggregation
    r = det.analyze(clip)
    assert r.status == "ok", r.message
    v = r.details["bagging"]
    feats = det.clip_features(clip)
    assert feats.member_probs.shape == (3, 4) and feats.member_probs.dtype == np.float32
    # per frame = mean of the members' softmax; member video score = mean of its frames
    assert [s.score for s in r.frame_scores] == pytest.approx(feats.member_probs.mean(0).tolist(), abs=1e-6)
    assert v["member_video_scores"] == pytest.approx(feats.member_probs.mean(1).tolist(), abs=1e-5)
    assert r.score == pytest.approx(np.mean(v["member_video_scores"]), abs=1e-6)
    fake_votes = int((feats.member_probs.mean(1) > 0.5).sum())
    assert v["fake_votes"] == fake_votes and r.label == ("fake" if fake_votes >= 2 else "real")
    assert v["vote"] == f"{max(fake_votes, 3 - fake_votes)} of 3 members: {r.label}"
    # Grad-CAM of the first member that voted with the label
    assert v["member_votes"][v["gradcam_member"]] == r.label
    assert v["member_votes"][: v["gradcam_member"]].count(r.label) == 0 and len(r.heatmaps) == 4
    # member 1 reproduced by hand from its prefixed keys
    state, card = load_weights(bag_dir)
    m1 = CNN(det.model.config)
    m1.load_state_dict({k[5:]: t for k, t in state.items() if k.startswith("bag1.")})
    with torch.no_grad():
        p1 = torch.softmax(m1.eval()(preprocess_crops(np.stack([c.image for _, c in feats.crops]))), 1)[:, 1]
    assert feats.member_probs[1] == pytest.approx(p1.numpy(), abs=1e-5)
    # fc1 features (deepfake.cnn_lstm) are member 0's
    f0, _ = det.fc1_features(np.stack([c.image for _, c in feats.crops]))
    assert np.allclose(f0, feats.features, atol=1e-5)


def test_cnn_bag_count_must_match_card(bag_dir, tmp_path):
    import shutil

    from engine.detectors.cnn import CNNDetector
    from engine.weights import update_card

    bad = tmp_path / "bad"
    shutil.copytree(bag_dir, bad)
    update_card(bad, training={"bagging": {"members": 2}})
    with pytest.raises(ValueError, match="2 bagging members"):
        CNNDetector(model_dir=bad)


def test_bundled_cnn_k1_unchanged():
    """The bundled single-model weights (plain keys) still load and score as a plain CNN (K = 1 format)."""
    from engine.detectors.cnn import CNNDetector
    from engine.models.cnn import CNN, CNNConfig, preprocess_crops
    from engine.weights import BUNDLED_MODELS_DIR, load_weights

    model_dir = BUNDLED_MODELS_DIR / "deepfake.cnn"
    state, card = load_weights(model_dir)
    assert not any(k.startswith("bag") for k in state)
    det = CNNDetector(device="cpu", model_dir=model_dir, explain=False)
    assert det.n_members == 1 and det.aggregation == CNNDetector.aggregation
    ref = CNN(CNNConfig(**card.config))
    own = ref.state_dict()
    ref.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    crops = np.random.default_rng(0).integers(0, 255, (3, 160, 160, 3), dtype=np.uint8)
    with torch.no_grad():
        p = torch.softmax(ref.eval()(preprocess_crops(crops, normalize=det.normalize)), 1)[:, 1].numpy()
    f, q = det.fc1_features(crops)
    assert f.shape == (3, 512) and q == pytest.approx(p, abs=1e-6)
