"""Frequency Solver classifiers on the 300-d azimuthal spectrum (spec/seeds.md §4.2).

Seed 4: ``Ramneantu/deepfake-detection/FrequencyAnalysis`` (TUM, 2021), after
Durall et al. 2020, "Unmasking DeepFakes with simple Features" (arXiv
1911.00686). Input: the azimuthally averaged log-magnitude FFT profile of a
face crop, float64 ``(N, 300)`` from :func:`engine.features.azimuthal_spectrum`
(§4.1). Two classifiers, selected by :attr:`FreqConfig.variant`:

* ``"svm"``: ``SVC(C=6.37, kernel='rbf', gamma=0.86, probability=True)`` on the
  raw features (no scaling), stored pickle-free as
  :class:`engine.models.svm_rbf.RBFSVM` (architecture name ``"svm_rbf"``).
* ``"mlp"``: :class:`DeepFreq`, the seed's ``freq_nn.DeepFreq``
  (architecture name ``"deepfake_freq_mlp"``).

Label convention (differs from the seed, on purpose):
    The seed labels **real = 1, fake = 0** (§4.1 item 7), so its SVM's
    ``predict_proba[:, 1]`` and its network's output 1 mean *real*. The engine
    uses **label 1 = fake** and reports **P(fake)** everywhere; classes in
    logit / column order are ``["real", "fake"]`` (:data:`CLASSES`). We train
    on our labels directly, so output 1 = fake; use :func:`from_seed_labels`
    to convert feature files labelled the seed's way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from engine.models.svm_rbf import RBFSVM

__all__ = [
    "ARCHITECTURES",
    "CLASSES",
    "FAKE_INDEX",
    "CLASS_MEAN_KEYS",
    "FreqConfig",
    "DeepFreq",
    "FreqClassifier",
    "from_seed_labels",
]

CLASSES = ("real", "fake")
"""Class names in logit / probability-column order (engine convention)."""

FAKE_INDEX = 1
"""Column of P(fake) in :data:`CLASSES` order; training label 1 = fake."""

ARCHITECTURES = {"svm": "svm_rbf", "mlp": "deepfake_freq_mlp"}
"""Variant -> ``ModelCard.architecture``."""

CLASS_MEAN_KEYS = ("class_mean_real", "class_mean_fake")
"""Extra float64 (300,) entries in ``model.safetensors``: mean training spectrum per class (explanation)."""


def from_seed_labels(y_seed: np.ndarray) -> np.ndarray:
    """Seed labels (real = 1, fake = 0; §4.1 item 7) -> engine labels (fake = 1), int64 (N,)."""
    y = np.asarray(y_seed).astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("seed labels must be 0 (fake) or 1 (real)")
    return 1 - y


@dataclass(frozen=True)
class FreqConfig:
    """Architecture config of the frequency detector (stored in ``ModelCard.config``).

    Attributes:
        variant: ``"svm"`` or ``"mlp"`` (seed ``--solver svm|nn``).
        n_features: spectrum length N (§4.1 step 5: 300).
        hidden: MLP hidden widths (§4.2: 100, 40, 10).
        num_classes: MLP outputs (2, order :data:`CLASSES`).
        svm_c: SVC ``C`` (§4.2: 6.37).
        svm_gamma: SVC RBF ``gamma`` on raw features (§4.2: 0.86).
        fit: training hyper-parameters and facts recorded by the trainer
            (provenance only: the architecture ignores them, equality too).
            Kept inside the config so ``FreqConfig(**card.config)`` (e.g.
            ``engine.models.create_model``) accepts a card's config as is.
    """

    variant: str = "svm"
    n_features: int = 300
    hidden: tuple[int, ...] = (100, 40, 10)
    num_classes: int = 2
    svm_c: float = 6.37
    svm_gamma: float = 0.86
    fit: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.variant not in ARCHITECTURES:
            raise ValueError(f"FreqConfig.variant must be one of {sorted(ARCHITECTURES)}, got {self.variant!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @property
    def architecture(self) -> str:
        """``ModelCard.architecture`` for this variant."""
        return ARCHITECTURES[self.variant]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``hidden`` as a list)."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FreqConfig":
        """Build from a card's ``config`` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class DeepFreq(nn.Module):
    """Seed 4's ``freq_nn.DeepFreq`` (§4.2), layer for layer.

    ``Linear(300,100) -> PReLU -> Linear(100,40) -> PReLU -> Linear(40,10) ->
    PReLU -> Linear(10,2) -> PReLU``. The final PReLU after the output layer is
    the seed's design and kept (it makes the "logits" non-negative-slope-
    warped; ``CrossEntropyLoss`` is applied to them, no softmax inside).
    Every ``Linear`` weight is initialised with ``nn.init.kaiming_uniform_``
    (default arguments: ``a=0``, fan-in, leaky-ReLU gain sqrt(2), i.e. bound
    ``sqrt(6 / fan_in)``); biases and PReLU slopes keep PyTorch's defaults
    (uniform(+-1/sqrt(fan_in)), 0.25). 34,576 parameters.

    Args:
        config: sizes (``n_features``, ``hidden``, ``num_classes``).
    """

    def __init__(self, config: FreqConfig = FreqConfig(variant="mlp")):
        super().__init__()
        self.config = config
        widths = (config.n_features, *config.hidden, config.num_classes)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.PReLU()]
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (N, n_features) spectra -> float32 (N, num_classes) scores (logits after PReLU).

        Column order :data:`CLASSES` (0 = real, 1 = fake) when trained by
        ``trainer.freq_fit``.
        """
        return self.net(x)


class FreqClassifier:
    """Either variant behind one call: spectra in, P(fake) out.

    Args:
        config: which variant and its sizes.
        model: an :class:`RBFSVM` (``svm``; classes must be ``[0, 1]`` =
            real, fake) or a :class:`DeepFreq` (``mlp``; output 1 = fake).
        class_mean_real, class_mean_fake: float64 (n_features,) mean training
            spectrum of each class, kept for the explanation; may be None.
        device: torch device for the MLP (ignored by the SVM, which is numpy).
    """

    def __init__(
        self,
        config: FreqConfig,
        model: RBFSVM | DeepFreq,
        class_mean_real: np.ndarray | None = None,
        class_mean_fake: np.ndarray | None = None,
        device: str = "cpu",
    ):
        self.config = config
        self.device = str(device)
        if config.variant == "svm":
            if not isinstance(model, RBFSVM):
                raise TypeError(f"variant 'svm' needs an RBFSVM, got {type(model).__name__}")
            if not np.array_equal(model.classes, [0.0, 1.0]):
                raise ValueError(f"SVM classes must be [0 (real), 1 (fake)], got {model.classes.tolist()}")
            if model.n_features != config.n_features:
                raise ValueError(f"SVM has {model.n_features} features, config says {config.n_features}")
        else:
            if not isinstance(model, DeepFreq):
                raise TypeError(f"variant 'mlp' needs a DeepFreq, got {type(model).__name__}")
            model = model.to(self.device).eval()
        self.model = model
        self.class_means: dict[str, np.ndarray] = {}
        for name, mean in (("real", class_mean_real), ("fake", class_mean_fake)):
            if mean is not None:
                mean = np.asarray(mean, dtype=np.float64).reshape(-1)
                if mean.shape != (config.n_features,):
                    raise ValueError(f"class_mean_{name} must be ({config.n_features},), got {mean.shape}")
                self.class_means[name] = mean

    @property
    def variant(self) -> str:
        """``"svm"`` or ``"mlp"``."""
        return self.config.variant

    @property
    def architecture(self) -> str:
        """``"svm_rbf"`` or ``"deepfake_freq_mlp"``."""
        return self.config.architecture

    # ------------------------------------------------------------------ weights
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for ``model.safetensors``.

        ``svm``: :meth:`RBFSVM.state_dict` (float64). ``mlp``:
        ``DeepFreq.state_dict()`` (float32, keys ``net.<i>.weight|bias``).
        Both plus ``class_mean_real`` / ``class_mean_fake`` float64 (n_features,)
        when known.
        """
        state = dict(self.model.state_dict())
        for name, mean in self.class_means.items():
            state[f"class_mean_{name}"] = torch.from_numpy(mean.copy())
        return state

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, torch.Tensor], config: FreqConfig, device: str = "cpu"
    ) -> "FreqClassifier":
        """Rebuild from :meth:`state_dict` output (e.g. ``engine.weights.load_weights``).

        Raises:
            KeyError / RuntimeError: keys do not match the variant's model.
        """
        state = dict(state)
        means = {k: state.pop(k).cpu().numpy().astype(np.float64) for k in CLASS_MEAN_KEYS if k in state}
        if config.variant == "svm":
            model: RBFSVM | DeepFreq = RBFSVM.from_state_dict(state)
        else:
            model = DeepFreq(config)
            model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        return cls(config, model, means.get("class_mean_real"), means.get("class_mean_fake"), device=device)

    @classmethod
    def from_weights(cls, state: Mapping[str, torch.Tensor], card: Any, device: str = "cpu") -> "FreqClassifier":
        """Rebuild from ``(state_dict, ModelCard)`` as returned by ``engine.weights.load_weights``.

        The card's ``architecture`` decides the variant (``svm_rbf`` / ``deepfake_freq_mlp``).

        Raises:
            ValueError: unknown architecture, or it disagrees with ``config.variant``.
        """
        by_arch = {v: k for k, v in ARCHITECTURES.items()}
        if card.architecture not in by_arch:
            raise ValueError(f"model card architecture {card.architecture!r} is not a frequency model {sorted(by_arch)}")
        config = FreqConfig.from_dict({**card.config, "variant": by_arch[card.architecture]})
        if card.config.get("variant", config.variant) != config.variant:
            raise ValueError(
                f"model card disagrees with itself: architecture {card.architecture!r}, "
                f"config.variant {card.config.get('variant')!r}"
            )
        if list(card.classes) != list(CLASSES):
            raise ValueError(f"model card classes must be {list(CLASSES)}, got {card.classes}")
        return cls.from_state_dict(state, config, device=device)

    # ------------------------------------------------------------------ inference
    def predict_proba(self, spectra: np.ndarray) -> np.ndarray:
        """P(fake) per spectrum.

        Args:
            spectra: float64 (N, n_features) azimuthal spectra
                (:func:`engine.features.azimuthal_spectra`), unscaled.

        Returns:
            float64 (N,) in [0, 1]: ``RBFSVM.predict_proba[:, 1]`` (class 1 =
            fake) or ``softmax(DeepFreq(x))[:, 1]``.
        """
        x = np.asarray(spectra, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.config.n_features:
            raise ValueError(f"spectra must be (N, {self.config.n_features}), got shape {x.shape}")
        if self.variant == "svm":
            return self.model.predict_proba(x)[:, FAKE_INDEX]
        with torch.no_grad():
            scores = self.model(torch.as_tensor(x, dtype=torch.float32, device=self.device))
            return torch.softmax(scores, dim=1)[:, FAKE_INDEX].double().cpu().numpy()

