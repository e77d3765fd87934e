"""deepfake.triplet detector: per-frame P(fake), majority vote, nearest references as explanation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip, analyze
from engine.weights import ModelCard, WeightsIntegrityError, save_weights


@pytest.fixture(scope="module")
def triplet_dir(tmp_path_factory):
    """Untrained networks + classifiers fitted on random 64-d data + a 24-face reference bank."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier

    from engine.models.triplet import ReferenceBank, TripletConfig, TripletModel, bundle_state, export_classifier

    torch.manual_seed(0)
    cfg = TripletConfig(n_references=24)
    model = TripletModel(cfg)
    rng = np.random.default_rng(0)
    X = rng.normal(scale=0.05, size=(60, 64)).astype(np.float32)
    y = np.repeat([0, 1], 30)
    X[y == 1, :8] += 0.05
    clfs = {"sgd": SGDClassifier(loss="log_loss", max_iter=50, tol=None, random_state=0), "logreg": LogisticRegression(),
            "rf": RandomForestClassifier(n_estimators=10, random_state=0), "knn": KNeighborsClassifier(10)}
    exported = {k: export_classifier(c.fit(X, y)) for k, c in clfs.items()}
    refs = ReferenceBank(X[18:42], y[18:42], rng.integers(0, 256, (24, 48, 48, 3), dtype=np.uint8))
    out = tmp_path_factory.mktemp("triplet") / "deepfake.triplet"
    save_weights(bundle_state(model, exported, refs), ModelCard(
        detector_id="deepfake.triplet", architecture="triplet", config=cfg.to_dict(), classes=["real", "fake"],
        training_data="untrained (test)", metrics={}, evaluation="none", limitations=["test weights"], sha256=""), out)
    return out


def test_triplet_detector_on_real_faces(triplet_dir, tmp_path):
    from engine.detectors.triplet import TripletDetector

    det = TripletDetector(device="cpu", model_dir=triplet_dir, batch_size=2)
    result = analyze(DATA / "retalking_face5.mp4", [det], device="cpu", config=ClipConfig(sampling=Uniform(3)))
    r = result.detectors[0]
    assert r.status == "ok", r.message
    p = np.array([s.score for s in r.frame_scores])
    assert len(p) == 3 and np.all((p >= 0) & (p <= 1))
    assert r.score == pytest.approx(p.mean())  # video probability = mean of frame predict_proba
    vote = float(np.mean(p > 0.5))
    assert r.details["vote_fraction"] == pytest.approx(vote)
    assert r.label == ("fake" if vote >= 0.5 else "real")  # seed 3 majority vote
    for s in r.frame_scores:
        assert s.heatmap_key is None and s.crop["size_hw"] == [160, 160] and s.track_id == 0

    # nearest references: k real + k fake per scored frame, nearest first, exact distances in the 64-d space
    nr = r.details["nearest_references"]
    assert nr["k"] == 5 and [f["frame_index"] for f in nr["frames"]] == [s.frame_index for s in r.frame_scores]
    clip = MediaClip(DATA / "retalking_face5.mp4", ClipConfig(sampling=Uniform(3), device="cpu"))
    z = det.embed(np.stack([c.image for _, c in clip.face_crops("mtcnn_margin40_160")]))
    refs = det.references
    for zi, f in zip(z, nr["frames"]):
        d = ((refs.embeddings.astype(np.float64) - zi) ** 2).sum(1)
        for cls, lab in (("real", 0), ("fake", 1)):
            ids = [i for i, _ in f[cls]]
            assert len(ids) == 5 and all(refs.labels[i] == lab for i in ids)
            assert ids == sorted(np.flatnonzero(refs.labels == lab), key=lambda i: d[i])[:5]
            np.testing.assert_allclose([dd for _, dd in f[cls]], d[ids], rtol=1e-4, atol=1e-9)
            for i in ids:
                thumb = r.heatmaps[f"refs/{i}"]
                assert thumb.dtype == np.uint8 and thumb.shape == (48, 48, 3)
                np.testing.assert_array_equal(thumb, refs.thumbnails[i])
    plot = r.plots["distance to nearest references"]
    assert plot["kind"] == "timeline" and plot["x"] == pytest.approx([s.pts for s in r.frame_scores])
    assert set(plot["series"]) == {"real (mean of 5 nearest)", "self-blended fake (mean of 5 nearest)"}
    first = nr["frames"][0]
    assert plot["series"]["real (mean of 5 nearest)"][0] == pytest.approx(np.mean([d for _, d in first["real"]]),
                                                                           rel=1e-5)
    # the result (JSON + npz sidecar with the thumbnails) saves
    result.save(tmp_path / "result.json")
    assert (tmp_path / "result.json").stat().st_size > 0


def test_triplet_classifier_choice_and_score_crops(triplet_dir):
    from engine.detectors.triplet import TripletDetector
    from engine.models.triplet import p_fake

    crops = [np.random.default_rng(i).integers(0, 256, (120 + 10 * i, 100, 3), dtype=np.uint8) for i in range(3)]
    sgd = TripletDetector(model_dir=triplet_dir)
    rf = TripletDetector(model_dir=triplet_dir, classifier="rf", explain=False)
    assert sgd.classifier_name == "sgd"  # the card's default (seed 3's evaluation)
    ps, pr = sgd.score_crops(crops), rf.score_crops(crops)
    assert ps.shape == pr.shape == (3,) and ps.dtype == np.float32
    assert np.all((pr >= 0) & (pr <= 1))
    from engine.faces import FaceBox, crop_face

    sized = np.stack([crop_face(c, FaceBox(0, 0, c.shape[1], c.shape[0], 1.0), "mtcnn_margin40_160").image
                      for c in crops])
    np.testing.assert_allclose(pr, p_fake(rf.classifiers["rf"], rf.embed(sized)), rtol=1e-6)
    assert sgd.score_crops([]).shape == (0,)
    with pytest.raises(ValueError, match="not in the weights"):
        TripletDetector(model_dir=triplet_dir, classifier="svm")


def test_triplet_without_explanations(triplet_dir):
    from engine.detectors.triplet import TripletDetector

    det = TripletDetector(model_dir=triplet_dir, explain=False)
    r = analyze(DATA / "retalking_face5.mp4", [det], device="cpu", config=ClipConfig(sampling=Uniform(2))).detectors[0]
    assert r.status == "ok" and not r.heatmaps and not r.plots and "nearest_references" not in r.details


def test_triplet_tampered_weights_refused(triplet_dir, tmp_path):
    import shutil

    from engine.detectors.triplet import TripletDetector

    bad = tmp_path / "deepfake.triplet"
    shutil.copytree(triplet_dir, bad)
    w = bad / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x01
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError):
        TripletDetector(model_dir=bad)
