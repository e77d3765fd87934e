"""Fit the Frequency Solver classifiers (spec/seeds.md §4.2) and export them as safetensors.

Input: azimuthal spectra float64 ``(N, 300)`` computed by the *same*
:func:`engine.features.azimuthal_spectrum` the detector calls (§4.1), with
engine labels **1 = fake**, 0 = real (the seed used real = 1, fake = 0; see
:mod:`engine.models.freq`).

* ``variant="svm"``: ``SVC(C=6.37, kernel='rbf', gamma=0.86,
  probability=True, random_state=seed)`` on the raw features, no scaling
  (§4.2), converted to the pickle-free :class:`engine.models.svm_rbf.RBFSVM`.
* ``variant="mlp"``: :class:`engine.models.freq.DeepFreq` in a Lightning
  system (:class:`FreqSystem`): ``Adam(lr=1e-4, weight_decay=1e-8)``, batch
  256 shuffled, ``CrossEntropyLoss``, ``random_split`` 80/20, at most 300
  epochs, ``EarlyStopping(val_loss, patience=30)``. No Lightning checkpoint
  is written (``enable_checkpointing=False``, ``logger=False``); the weights
  of the epoch with the lowest ``val_loss`` are kept in memory and exported.

Output folder: ``model.safetensors`` (the classifier's state dict plus
``class_mean_real`` / ``class_mean_fake``, float64 (300,)) and ``card.json``
via :func:`engine.weights.save_weights` (SHA-256 recorded). Nothing is pickled.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from engine.models.freq import CLASSES, DeepFreq, FreqClassifier, FreqConfig
from engine.models.svm_rbf import RBFSVM
from engine.weights import ModelCard, save_weights
from trainer.metrics import binary_metrics

__all__ = ["DETECTOR_ID", "PAPER", "FreqFitResult", "FreqSystem", "FreqDataModule", "KeepBest", "fit_freq"]

DETECTOR_ID = "deepfake.freq"
PAPER = "Durall et al. 2020 / Frequency Solver (seed 4)"

_COMMON_QUIRKS = [
    "seed §4.1 item 6 [quirk] (feature array preallocated with zeros, missing images left as zero rows "
    "that kept their label): not reproduced; every row is a computed spectrum "
    "(engine.features.azimuthal_spectrum raises instead of returning zeros).",
    "seed §4.2 [quirk] (only num_files_test = 10 test images per class processed): not reproduced; "
    "the evaluation uses the whole held-out set passed to the trainer (see 'evaluation').",
    "label convention: the seed labels real = 1, fake = 0; here label 1 = fake, classes ['real', 'fake'] "
    "in output order, and the detector reports P(fake) = output column 1.",
]
_SVM_QUIRKS = [
    "stored pickle-free: the fitted sklearn SVC is converted to arrays (engine.models.svm_rbf.RBFSVM) that "
    "reproduce SVC.predict_proba, including libsvm's iterative two-class probability coupling.",
]
_MLP_QUIRKS = [
    "PReLU after the output layer kept, as in the seed's DeepFreq (§4.2).",
    "exported weights are those of the epoch with the lowest val_loss (the seed saved the last epoch's "
    "checkpoint, up to 30 epochs after the best); no Lightning checkpoint is written.",
]


@dataclass
class FreqFitResult:
    """What :func:`fit_freq` produced.

    Attributes:
        card: the model card as written (``sha256`` filled in).
        model_dir: folder holding ``model.safetensors`` and ``card.json``.
        classifier: the fitted classifier (same weights as the file).
        history: fit facts (SVM: support vector count; MLP: epochs run, best
            epoch, best ``val_loss``, split sizes).
    """

    card: ModelCard
    model_dir: Path
    classifier: FreqClassifier
    history: dict[str, Any] = field(default_factory=dict)


# ============================================================================ MLP (Lightning)
class FreqDataModule(L.LightningDataModule):
    """Owns the seed's 80/20 ``random_split`` of the training spectra (§4.2).

    Args:
        x: float (N, 300) spectra. y: int (N,) labels, 1 = fake.
        batch_size: 256 in the seed; training batches are shuffled.
        val_fraction: 0.2 in the seed.
        seed: seeds the split and the shuffling.

    Raises:
        ValueError: too few samples for a split with both parts non-empty.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256, val_fraction: float = 0.2, seed: int = 0):
        super().__init__()
        data = TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))
        n_val = int(round(len(data) * val_fraction))
        if n_val < 1 or n_val >= len(data):
            raise ValueError(f"cannot split {len(data)} samples {1 - val_fraction:.0%}/{val_fraction:.0%}")
        self.train_set, self.val_set = random_split(
            data, [len(data) - n_val, n_val], generator=torch.Generator().manual_seed(seed)
        )
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=True,
            generator=torch.Generator().manual_seed(self.seed + 1),
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False)


class FreqSystem(L.LightningModule):
    """Lightning system around :class:`DeepFreq` (seed ``freq_nn``, §4.2).

    Args:
        model: the plain ``nn.Module`` (exported on its own, never the system).
        lr: Adam learning rate (seed 1e-4).
        weight_decay: Adam weight decay (seed 1e-8).
    """

    def __init__(self, model: DeepFreq, lr: float = 1e-4, weight_decay: float = 1e-8):
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (N, 300) -> (N, 2) scores (real, fake)."""
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self.model(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        scores = self.model(x)
        self.log("val_loss", self.loss(scores, y), on_epoch=True, batch_size=len(y))
        self.log("val_acc", (scores.argmax(1) == y).float().mean(), on_epoch=True, batch_size=len(y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class KeepBest(L.Callback):
    """Keeps a CPU copy of the model's state dict from the epoch with the lowest ``val_loss``."""

    def __init__(self):
        self.best_loss = math.inf
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: FreqSystem) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_loss")
        if value is not None and float(value) < self.best_loss:
            self.best_loss = float(value)
            self.best_epoch = int(trainer.current_epoch)
            self.state = {k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()}


def _fit_mlp(
    x: np.ndarray, y: np.ndarray, config: FreqConfig, seed: int, device: str, *, lr: float, weight_decay: float,
    batch_size: int, max_epochs: int, patience: int, val_fraction: float,
) -> tuple[DeepFreq, dict[str, Any]]:
    L.seed_everything(seed, workers=True, verbose=False)
    model = DeepFreq(config)  # kaiming_uniform_ init drawn from the seeded global RNG
    system = FreqSystem(model, lr=lr, weight_decay=weight_decay)
    data = FreqDataModule(x, y, batch_size=batch_size, val_fraction=val_fraction, seed=seed)
    keep_best = KeepBest()
    early = EarlyStopping(monitor="val_loss", patience=patience, mode="min")
    accelerator = {"auto": "auto", "cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}.get(str(device).split(":")[0], "auto")
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="freq_fit_") as scratch, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*log_every_n_steps.*")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # lightning 2.6 vs torch 2.11 internals
            trainer = L.Trainer(
                max_epochs=max_epochs,
                accelerator=accelerator,
                devices=1,
                callbacks=[early, keep_best],
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                deterministic=True,
                num_sanity_val_steps=0,
                log_every_n_steps=1,
                default_root_dir=scratch,  # nothing should land here; a temp dir makes sure of it
            )
            trainer.fit(system, datamodule=data)
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags[2], flags[3]
    if keep_best.state is None:
        raise RuntimeError("MLP training produced no validation loss")
    model = model.cpu()
    model.load_state_dict(keep_best.state)
    history = {
        "epochs_run": int(trainer.current_epoch),
        "best_epoch": keep_best.best_epoch,
        "best_val_loss": keep_best.best_loss,
        "stopped_early": bool(early.stopped_epoch > 0),
        "n_train": len(data.train_set),
        "n_val": len(data.val_set),
    }
    return model, history


# ============================================================================ SVM
def _fit_svm(x: np.ndarray, y: np.ndarray, config: FreqConfig, seed: int) -> tuple[RBFSVM, dict[str, Any]]:
    from sklearn.svm import SVC

    svc = SVC(C=config.svm_c, kernel="rbf", gamma=config.svm_gamma, probability=True, random_state=seed)
    with warnings.catch_warnings():  # scikit-learn 1.9 deprecates probability=True; we only read its Platt fit
        warnings.simplefilter("ignore", FutureWarning)
        svc.fit(x, y)
        check = x[: min(len(x), 256)]
        want = svc.predict_proba(check)
    svm = RBFSVM.from_sklearn(svc)
    got = svm.predict_proba(check)
    if not np.allclose(got, want, rtol=0, atol=1e-9):  # guards against a changed libsvm in a new scikit-learn
        raise RuntimeError(
            f"RBFSVM does not reproduce this scikit-learn's predict_proba (max diff {np.abs(got - want).max():.3g})"
        )
    return svm, {"n_support": int(svm.support_vectors.shape[0]), "n_train": int(len(x))}


# ============================================================================ entry point
def _check_xy(x: np.ndarray, y: np.ndarray, n_features: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"{what}_X must be (N, {n_features}) spectra, got shape {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"{what}_X and {what}_y differ in length: {len(x)} vs {len(y)}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}_X has non-finite values")
    if not np.isin(y, (0, 1)).all() or np.unique(y).size != 2:
        raise ValueError(f"{what}_y must hold both labels 0 (real) and 1 (fake)")
    return x, y.astype(np.int64)


def fit_freq(
    train_X: np.ndarray,
    train_y: np.ndarray,
    variant: str,
    out_dir: str | Path,
    seed: int = 0,
    *,
    training_data: str,
    evaluation: str = "",
    limitations: Sequence[str] | str = (),
    metrics: Mapping[str, float] | None = None,
    eval_X: np.ndarray | None = None,
    eval_y: np.ndarray | None = None,
    config: FreqConfig | None = None,
    lr: float = 1e-4,
    weight_decay: float = 1e-8,
    batch_size: int = 256,
    max_epochs: int = 300,
    patience: int = 30,
    val_fraction: float = 0.2,
    device: str = "auto",
    command: str = "",
) -> FreqFitResult:
    """Train one frequency classifier and write ``model.safetensors`` + ``card.json``.

    Args:
        train_X: float64 (N, 300) azimuthal spectra (§4.1), unscaled.
        train_y: int (N,) labels, **1 = fake**, 0 = real; both present.
        variant: ``"svm"`` or ``"mlp"``.
        out_dir: the model folder to write (e.g. ``.../models/deepfake.freq``).
        seed: SVC ``random_state`` (Platt cross-validation) / MLP init, split
            and shuffling (``lightning.seed_everything``).
        training_data, evaluation, limitations: card text from the caller
            (what the weights were trained on; what ``metrics`` were measured
            on; caveats shown in the GUI and report).
        metrics: held-out metrics to record; if ``eval_X``/``eval_y`` are
            given, :func:`trainer.metrics.binary_metrics` at threshold 0.5 on
            them is added (``accuracy``, ``f1``, ``roc_auc``, ``eer``).
        eval_X, eval_y: optional held-out spectra / labels (1 = fake).
        config: sizes and SVM hyper-parameters (default: the seed's, §4.2);
            its ``variant`` is replaced by ``variant`` and its ``fit`` by the
            training hyper-parameters and facts (written to ``card.config``).
        lr, weight_decay, batch_size, max_epochs, patience, val_fraction:
            MLP training (seed: 1e-4, 1e-8, 256, 300, 30, 0.2).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for the MLP (SVM is CPU).
        command: provenance string for the card (e.g. the CLI line).

    Returns:
        :class:`FreqFitResult`.

    Raises:
        ValueError: bad shapes / labels / variant.
    """
    config = replace(config or FreqConfig(), variant=variant)
    x, y = _check_xy(train_X, train_y, config.n_features, "train")
    if variant == "svm":
        model, history = _fit_svm(x, y, config, seed)
        fit_params: dict[str, Any] = {
            "estimator": "sklearn.svm.SVC", "C": config.svm_c, "kernel": "rbf", "gamma": config.svm_gamma,
            "probability": True, "random_state": seed, "feature_scaling": "none",
        }
        init = "n/a (SVM fitted by libsvm)"
        quirks = _COMMON_QUIRKS + _SVM_QUIRKS
    else:
        model, history = _fit_mlp(
            x, y, config, seed, device, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
            max_epochs=max_epochs, patience=patience, val_fraction=val_fraction,
        )
        fit_params = {
            "optimizer": "Adam", "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
            "loss": "CrossEntropyLoss", "val_fraction": val_fraction, "max_epochs": max_epochs,
            "early_stopping": {"monitor": "val_loss", "patience": patience}, "seed": seed, **history,
        }
        init = f"random (kaiming_uniform_ on Linear weights, seed {seed})"
        quirks = _COMMON_QUIRKS + _MLP_QUIRKS
    fit_params.update(n_real=int((y == 0).sum()), n_fake=int((y == 1).sum()))
    config = replace(config, fit=fit_params)
    classifier = FreqClassifier(config, model, x[y == 0].mean(axis=0), x[y == 1].mean(axis=0))

    card_metrics = {str(k): float(v) for k, v in (metrics or {}).items()}
    if eval_X is not None and eval_y is not None:
        ex, ey = np.asarray(eval_X, dtype=np.float64), np.asarray(eval_y).reshape(-1)
        if ex.ndim != 2 or ex.shape[1] != config.n_features or len(ex) != len(ey):
            raise ValueError(f"eval_X must be (N, {config.n_features}) with one label each, got {ex.shape}, {ey.shape}")
        m = binary_metrics(ey, classifier.predict_proba(ex), threshold=0.5)
        card_metrics.update({k: float(m[k]) for k in ("accuracy", "f1", "roc_auc", "eer") if m[k] is not None})
        card_metrics["n_eval"] = float(m["n"])

    card = ModelCard(
        detector_id=DETECTOR_ID,
        architecture=config.architecture,
        config=config.to_dict(),
        classes=list(CLASSES),
        training_data=training_data,
        metrics=card_metrics,
        evaluation=evaluation,
        limitations=[limitations] if isinstance(limitations, str) else list(limitations),
        sha256="",
        init=init,
        paper=PAPER,
        quirks=list(quirks),
        command=command,
    )
    written = save_weights(classifier.state_dict(), card, out_dir)
    return FreqFitResult(card=written, model_dir=Path(out_dir), classifier=classifier, history=dict(history))

