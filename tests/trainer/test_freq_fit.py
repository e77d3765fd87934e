"""trainer.freq_fit: SVM and MLP on synthetic spectra -> safetensors + card, reload identical."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.media.container import sha256_file
from engine.models.freq import DeepFreq, FreqClassifier, FreqConfig
from engine.weights import load_weights
from trainer.freq_fit import fit_freq
from trainer.metrics import binary_metrics


def clouds(n_per_class: int, seed: int, sep: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Two separable Gaussian clouds around a decaying 300-value curve: float64 (2n, 300), labels 1 = fake."""
    rng = np.random.default_rng(seed)
    base = np.linspace(1.0, 0.35, 300)
    real = base + rng.normal(0.0, 0.05, (n_per_class, 300))
    fake = base + sep * np.linspace(0.0, 1.0, 300) + rng.normal(0.0, 0.05, (n_per_class, 300))
    return np.vstack([real, fake]), np.r_[np.zeros(n_per_class), np.ones(n_per_class)].astype(np.int64)


TEXT = dict(
    training_data="synthetic Gaussian spectra (tests)",
    evaluation="synthetic held-out spectra (tests)",
    limitations=["test weights; not a forensic model"],
)


@pytest.fixture(scope="module")
def data():
    return clouds(60, seed=0), clouds(40, seed=1)


def _check_written(result, out_dir, architecture, eval_xy):
    assert sorted(p.name for p in out_dir.iterdir()) == ["card.json", "model.safetensors"]  # no ckpt, no pickles
    card = json.loads((out_dir / "card.json").read_text(encoding="utf-8"))
    assert card["sha256"] == sha256_file(out_dir / "model.safetensors") == result.card.sha256
    assert card["detector_id"] == "deepfake.freq" and card["architecture"] == architecture
    assert card["classes"] == ["real", "fake"]
    assert card["config"]["variant"] == result.classifier.variant
    assert card["paper"] == "Durall et al. 2020 / Frequency Solver (seed 4)"
    quirks = " ".join(card["quirks"])
    assert "zero rows" in quirks and "num_files_test = 10" in quirks and "real = 1, fake = 0" in quirks
    assert card["training_data"] == TEXT["training_data"] and card["limitations"] == TEXT["limitations"]
    assert card["metrics"]["roc_auc"] > 0.9

    state, loaded = load_weights(out_dir)
    assert state["class_mean_real"].shape == (300,) and state["class_mean_fake"].shape == (300,)
    again = FreqClassifier.from_weights(state, loaded)
    x, y = eval_xy
    p = result.classifier.predict_proba(x)
    np.testing.assert_array_equal(again.predict_proba(x), p)
    assert binary_metrics(y, p)["roc_auc"] > 0.9
    return state, card


def test_fit_svm(tmp_path, data):
    (x, y), (xe, ye) = data
    out = tmp_path / "deepfake.freq"
    result = fit_freq(x, y, "svm", out, seed=3, eval_X=xe, eval_y=ye, **TEXT)
    state, card = _check_written(result, out, "svm_rbf", (xe, ye))
    assert {"support_vectors", "dual_coef", "intercept", "gamma", "classes", "prob_a", "prob_b"} <= set(state)
    assert state["support_vectors"].shape[1] == 300 and str(state["support_vectors"].dtype) == "torch.float64"
    fit = card["config"]["fit"]
    assert (fit["C"], fit["gamma"], fit["kernel"], fit["random_state"]) == (6.37, 0.86, "rbf", 3)
    np.testing.assert_allclose(state["class_mean_fake"].numpy(), x[y == 1].mean(0))


def test_fit_mlp(tmp_path, data):
    (x, y), (xe, ye) = data
    out = tmp_path / "mlp"
    result = fit_freq(x, y, "mlp", out, seed=0, eval_X=xe, eval_y=ye, max_epochs=15, lr=1e-3, device="cpu", **TEXT)
    state, card = _check_written(result, out, "deepfake_freq_mlp", (xe, ye))
    assert "net.6.weight" in state and tuple(state["net.6.weight"].shape) == (2, 10)
    # FreqConfig(**card.config) works as is (engine.models.create_model style)
    net = DeepFreq(FreqConfig(**card["config"]))
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("class_mean")})
    fit = card["config"]["fit"]
    assert fit["n_train"] == 96 and fit["n_val"] == 24 and fit["batch_size"] == 256 and fit["max_epochs"] == 15
    assert 0 <= fit["best_epoch"] < 15 and fit["early_stopping"] == {"monitor": "val_loss", "patience": 30}
    # seeded: a second run gives the same weights
    again = fit_freq(x, y, "mlp", tmp_path / "mlp2", seed=0, max_epochs=15, lr=1e-3, device="cpu", **TEXT)
    assert again.card.sha256 == result.card.sha256


def test_fit_rejects_bad_input(tmp_path):
    x, y = clouds(5, seed=2)
    with pytest.raises(ValueError, match=r"\(N, 300\)"):
        fit_freq(x[:, :10], y, "svm", tmp_path / "a", **TEXT)
    with pytest.raises(ValueError, match="both labels"):
        fit_freq(x, np.ones_like(y), "svm", tmp_path / "b", **TEXT)
    with pytest.raises(ValueError, match="variant"):
        fit_freq(x, y, "forest", tmp_path / "c", **TEXT)
    assert not any(tmp_path.iterdir())
