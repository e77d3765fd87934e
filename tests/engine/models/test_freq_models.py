"""engine.models.svm_rbf / engine.models.freq: sklearn parity, pickle-free state, DeepFreq = seed §4.2."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from sklearn.svm import SVC

from engine.models.freq import (
    ARCHITECTURES,
    CLASSES,
    DeepFreq,
    FreqClassifier,
    FreqConfig,
    from_seed_labels,
)
from engine.models.svm_rbf import STATE_KEYS, RBFSVM


def _spectra_like(rng, n, d=300, shift=0.0):
    """Curves like azimuthal spectra (start at ~1, decay), plus noise: float64 (n, d)."""
    base = np.linspace(1.0, 0.35, d)
    return base + shift + rng.normal(0.0, 0.06, (n, d))


def _fit_svc(x, y, **kw):
    params = dict(C=6.37, kernel="rbf", gamma=0.86, probability=True, random_state=0)
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability=True deprecated in sklearn 1.9
        svc = SVC(**params).fit(x, y)
        return svc, svc.decision_function, svc.predict_proba


@pytest.mark.parametrize("fake_first", [False, True])
def test_rbfsvm_matches_sklearn_seed_params(fake_first):
    """Seed §4.2 hyper-parameters on 300-d spectra; class 1 listed first in the data in one case."""
    rng = np.random.default_rng(1)
    real, fake = _spectra_like(rng, 70), _spectra_like(rng, 70, shift=0.02)
    x = np.vstack([fake, real] if fake_first else [real, fake])
    y = np.r_[np.ones(70), np.zeros(70)] if fake_first else np.r_[np.zeros(70), np.ones(70)]
    svc, dec, proba = _fit_svc(x, y.astype(int))
    svm = RBFSVM.from_sklearn(svc)
    xt = np.vstack([_spectra_like(rng, 100, shift=0.01), _spectra_like(rng, 20, shift=0.2)])
    np.testing.assert_allclose(svm.decision_function(xt), dec(xt), rtol=0, atol=1e-9)
    np.testing.assert_allclose(svm.predict_proba(xt), proba(xt), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(svm.predict(xt), svc.predict(xt))
    assert svm.support_vectors.shape == (svc.support_vectors_.shape[0], 300)
    assert svm.classes.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rbfsvm_matches_sklearn_random_low_dim(seed):
    """Random 5-d data, gamma='scale', arbitrary numeric classes (-3, 7): columns follow classes_."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(0, 1, (50, 5)), rng.normal(0.6, 1.2, (50, 5))])
    y = np.r_[np.full(50, 7), np.full(50, -3)]
    svc, dec, proba = _fit_svc(x, y, gamma="scale", C=1.0, random_state=seed)
    svm = RBFSVM.from_sklearn(svc)
    xt = rng.normal(0.3, 2.0, (400, 5))
    np.testing.assert_allclose(svm.decision_function(xt), dec(xt), rtol=0, atol=1e-9)
    np.testing.assert_allclose(svm.predict_proba(xt), proba(xt), rtol=0, atol=1e-6)
    # positive decision = classes[1]; P(classes[1]) rises with the decision value
    assert svm.classes.tolist() == [-3.0, 7.0]
    order = np.argsort(svm.decision_function(xt))
    assert np.corrcoef(np.arange(len(order)), svm.predict_proba(xt)[order, 1])[0, 1] > 0.9


def test_rbfsvm_not_plain_platt():
    """sklearn's libsvm couples the pairwise probability iteratively even for 2 classes."""
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(0, 1, (40, 4)), rng.normal(1, 1, (40, 4))])
    svc, dec, proba = _fit_svc(x, np.r_[np.zeros(40), np.ones(40)].astype(int))
    svm = RBFSVM.from_sklearn(svc)
    xt = rng.normal(0.5, 1.5, (200, 4))
    plain = 1.0 / (1.0 + np.exp(-svm.prob_a * dec(xt) + svm.prob_b))  # P(classes[0]) by Platt alone
    assert np.abs(plain - proba(xt)[:, 0]).max() > 1e-4  # the shortcut would fail the 1e-6 parity
    np.testing.assert_allclose(svm.predict_proba(xt), proba(xt), rtol=0, atol=1e-12)


def test_rbfsvm_state_dict_roundtrip_through_safetensors():
    rng = np.random.default_rng(4)
    x = np.vstack([_spectra_like(rng, 30), _spectra_like(rng, 30, shift=0.05)])
    svc, _, _ = _fit_svc(x, np.r_[np.zeros(30), np.ones(30)].astype(int))
    svm = RBFSVM.from_sklearn(svc)
    state = svm.state_dict()
    assert set(state) == set(STATE_KEYS)
    assert all(t.dtype == torch.float64 for t in state.values())
    back = RBFSVM.from_state_dict(st_load(st_save(state)))
    xt = _spectra_like(rng, 25, shift=0.02)
    np.testing.assert_array_equal(back.predict_proba(xt), svm.predict_proba(xt))
    assert back.gamma == svm.gamma == 0.86
    with pytest.raises(KeyError, match="missing"):
        RBFSVM.from_state_dict({k: v for k, v in state.items() if k != "prob_a"})


def test_rbfsvm_refuses_unsupported_svc():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 3)), np.r_[np.zeros(20), np.ones(20)].astype(int)
    with pytest.raises(ValueError, match="probability=True"):
        RBFSVM.from_sklearn(SVC(kernel="rbf").fit(x, y))
    with pytest.raises(ValueError, match="kernel='rbf'"):
        RBFSVM.from_sklearn(SVC(kernel="linear").fit(x, y))
    with pytest.raises(ValueError, match="features"):
        svc, _, _ = _fit_svc(x, y)
        RBFSVM.from_sklearn(svc).decision_function(np.zeros((2, 4)))


def test_rbfsvm_chunked_kernel_equals_direct(monkeypatch):
    import engine.models.svm_rbf as mod

    rng = np.random.default_rng(6)
    x = np.vstack([_spectra_like(rng, 30), _spectra_like(rng, 30, shift=0.05)])
    svc, _, _ = _fit_svc(x, np.r_[np.zeros(30), np.ones(30)].astype(int))
    svm = RBFSVM.from_sklearn(svc)
    xt = _spectra_like(rng, 37)
    whole = svm.decision_function(xt)
    monkeypatch.setattr(mod, "_CHUNK_ELEMS", 1)  # one row per block
    np.testing.assert_array_equal(svm.decision_function(xt), whole)
    assert svm.predict_proba(np.zeros((0, 300))).shape == (0, 2)


# ---------------------------------------------------------------------------- DeepFreq
def test_deepfreq_is_the_seed_architecture():
    torch.manual_seed(0)
    net = DeepFreq()
    layers = list(net.net)
    assert [type(m).__name__ for m in layers] == ["Linear", "PReLU"] * 4  # PReLU after the output, as the seed
    assert [(m.in_features, m.out_features) for m in layers if isinstance(m, torch.nn.Linear)] == [
        (300, 100), (100, 40), (40, 10), (10, 2)
    ]
    assert sum(p.numel() for p in net.parameters()) == 34_576
    out = net(torch.randn(5, 300))
    assert out.shape == (5, 2) and out.dtype == torch.float32


def test_deepfreq_kaiming_uniform_init():
    """kaiming_uniform_ defaults: bound sqrt(6 / fan_in), not PyTorch's default 1 / sqrt(fan_in)."""
    torch.manual_seed(0)
    for m in DeepFreq().modules():
        if isinstance(m, torch.nn.Linear):
            bound = math.sqrt(6.0 / m.in_features)
            w = m.weight.detach().abs()
            assert w.max() <= bound
            if m.weight.numel() >= 400:
                assert w.max() > 0.9 * bound and w.max() > 1.5 / math.sqrt(m.in_features)


# ---------------------------------------------------------------------------- FreqClassifier
def test_freq_classifier_mlp_returns_softmax_fake_column():
    torch.manual_seed(1)
    cfg = FreqConfig(variant="mlp")
    net = DeepFreq(cfg)
    clf = FreqClassifier(cfg, net, np.ones(300), np.zeros(300))
    x = _spectra_like(np.random.default_rng(7), 6)
    with torch.no_grad():
        want = torch.softmax(net(torch.as_tensor(x, dtype=torch.float32)), 1)[:, 1].double().numpy()
    p = clf.predict_proba(x)
    assert p.dtype == np.float64 and p.shape == (6,)
    np.testing.assert_array_equal(p, want)
    state = clf.state_dict()
    assert {"class_mean_real", "class_mean_fake", "net.0.weight", "net.7.weight"} <= set(state)
    back = FreqClassifier.from_state_dict(st_load(st_save(state)), cfg)
    np.testing.assert_array_equal(back.predict_proba(x), p)
    np.testing.assert_array_equal(back.class_means["real"], np.ones(300))


def test_freq_classifier_svm_fake_is_class_one():
    rng = np.random.default_rng(8)
    real, fake = _spectra_like(rng, 40), _spectra_like(rng, 40, shift=0.1)
    svc, _, proba = _fit_svc(np.vstack([real, fake]), np.r_[np.zeros(40), np.ones(40)].astype(int))
    clf = FreqClassifier(FreqConfig(variant="svm"), RBFSVM.from_sklearn(svc))
    xt = np.vstack([_spectra_like(rng, 10), _spectra_like(rng, 10, shift=0.1)])
    p = clf.predict_proba(xt)
    np.testing.assert_allclose(p, proba(xt)[:, 1], atol=1e-12)
    assert p[:10].mean() < 0.5 < p[10:].mean()
    with pytest.raises(ValueError, match="spectra must be"):
        clf.predict_proba(np.zeros((3, 299)))


def test_freq_classifier_checks():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 300)) * 0.05
    svc, _, _ = _fit_svc(x, np.r_[np.full(20, 1), np.full(20, 2)])
    with pytest.raises(ValueError, match=r"classes must be \[0 \(real\), 1 \(fake\)\]"):
        FreqClassifier(FreqConfig(variant="svm"), RBFSVM.from_sklearn(svc))
    with pytest.raises(TypeError, match="needs a DeepFreq"):
        FreqClassifier(FreqConfig(variant="mlp"), RBFSVM.from_sklearn(svc))
    with pytest.raises(ValueError, match="variant"):
        FreqConfig(variant="xgboost")


def test_freq_config_roundtrip_and_names():
    cfg = FreqConfig(variant="mlp")
    d = cfg.to_dict()
    assert d["hidden"] == [100, 40, 10] and d["svm_c"] == 6.37 and d["svm_gamma"] == 0.86
    assert FreqConfig.from_dict({**d, "unknown": 1}) == cfg
    with_fit = FreqConfig(**{**d, "fit": {"lr": 1e-4}})  # a card's config, as engine.models.create_model passes it
    assert with_fit == cfg and with_fit.fit == {"lr": 1e-4} and with_fit.to_dict()["fit"] == {"lr": 1e-4}
    assert ARCHITECTURES == {"svm": "svm_rbf", "mlp": "deepfake_freq_mlp"} and cfg.architecture == "deepfake_freq_mlp"
    assert CLASSES == ("real", "fake")


def test_from_seed_labels():
    """Seed: real = 1, fake = 0 -> engine: fake = 1."""
    np.testing.assert_array_equal(from_seed_labels([1, 1, 0]), [0, 0, 1])
    with pytest.raises(ValueError):
        from_seed_labels([2])
