"""Pickle-free binary RBF SVM for inference, bit-for-bit with scikit-learn's ``SVC``.

Seed 4 (spec/seeds.md §4.2) trains ``sklearn.svm.SVC(C=6.37, kernel='rbf',
gamma=0.86, probability=True)`` and pickles it. We never pickle: the fitted
SVC is converted once, at training time, into plain arrays
(:class:`RBFSVM`), stored as float64 tensors in ``model.safetensors``, and
evaluated here with numpy only. scikit-learn is needed by
:meth:`RBFSVM.from_sklearn` alone, never at analysis time.

What scikit-learn computes (checked against its real output in
``tests/engine/models/test_freq_models.py``), binary case, classes
``classes_ = [c0, c1]`` (sorted):

* Kernel ``K(x, s) = exp(-gamma * sum_d (x_d - s_d)^2)`` (libsvm's dense
  ``k_function``: squared differences, not the ``|x|^2 + |s|^2 - 2 x.s``
  expansion).
* ``decision_function(x) = sum_i dual_coef_[0, i] K(x, sv_i) + intercept_[0]``;
  **positive means ``c1``**. scikit-learn's public ``dual_coef_`` and
  ``intercept_`` are already sign-flipped relative to libsvm's internal model,
  whose decision value ``d = -decision_function`` is positive for ``c0``.
* ``predict_proba`` (libsvm ``svm_predict_probability``, Platt scaling):
  ``r = clip(sigmoid(d * probA + probB), 1e-7, 1 - 1e-7)`` with
  ``sigmoid(z) = 1 / (1 + exp(z))`` on the *libsvm* value ``d``, so
  ``r ~ P(c0) = 1 / (1 + exp(-A f + B))`` with ``f`` the sklearn decision
  value. scikit-learn's vendored libsvm then passes the pairwise matrix
  ``[[0, r], [1-r, 0]]`` through ``multiclass_probability`` (Wu, Lin & Weng
  2004, method 2) **even for two classes**, an iterative solver stopped at a
  tolerance of ``0.005 / k``; its output differs from ``r`` by up to ~5e-3.
  :func:`_multiclass_probability_2` replays that iteration exactly, so
  ``predict_proba`` agrees with scikit-learn to ~1e-15, column 0 = ``c0``,
  column 1 = ``c1``.

Note: scikit-learn 1.9 deprecates ``SVC(probability=True)`` (removal planned
for 1.11). Conversion needs a scikit-learn that still has it; inference here
does not depend on scikit-learn at all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from sklearn.svm import SVC

__all__ = ["RBFSVM", "STATE_KEYS"]

STATE_KEYS = ("support_vectors", "dual_coef", "intercept", "gamma", "classes", "prob_a", "prob_b")
"""Keys of :meth:`RBFSVM.state_dict` (all float64 tensors)."""

_MIN_PROB = 1e-7  # libsvm svm_predict_probability: min_prob
_CHUNK_ELEMS = 4_000_000  # float64 elements per (rows, S, D) difference block (~32 MB)


def _sigmoid_predict(dec: np.ndarray, a: float, b: float) -> np.ndarray:
    """libsvm ``sigmoid_predict``: ``1 / (1 + exp(dec * a + b))``, written to avoid overflow.

    Args:
        dec: float64 (N,) libsvm decision values (positive = first class).
        a, b: Platt parameters ``probA``, ``probB``.

    Returns:
        float64 (N,) probability of libsvm's first class (``classes[0]``).
    """
    f_apb = dec * a + b
    out = np.empty_like(f_apb)
    pos = f_apb >= 0
    e = np.exp(-f_apb[pos])
    out[pos] = e / (1.0 + e)
    out[~pos] = 1.0 / (1.0 + np.exp(f_apb[~pos]))
    return out


def _multiclass_probability_2(r01: np.ndarray) -> np.ndarray:
    """libsvm ``multiclass_probability`` for k = 2 classes, vectorised over samples.

    A line-by-line replay of the C loop (Wu, Lin & Weng 2004, method 2), with
    the same start ``p = (1/2, 1/2)``, the same stopping rule
    ``max_t |(Qp)_t - p'Qp| < 0.005 / k`` and at most ``max(100, k)`` sweeps.
    Each sample stops at its own iteration, as libsvm does per call.

    Args:
        r01: float64 (N,) pairwise probability of class 0 over class 1,
            already clipped to ``[1e-7, 1 - 1e-7]``.

    Returns:
        float64 (N, 2) class probabilities (rows sum to 1).
    """
    k = 2
    n = r01.shape[0]
    r10 = 1.0 - r01
    q = np.empty((n, k, k))
    q[:, 0, 0] = r10 * r10  # Q[t][t] = sum_{j != t} r[j][t]^2
    q[:, 1, 1] = r01 * r01
    q[:, 0, 1] = q[:, 1, 0] = -r10 * r01  # Q[t][j] = -r[j][t] * r[t][j]
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    active = np.ones(n, dtype=bool)
    for _ in range(max(100, k)):
        qp = np.einsum("ntj,nj->nt", q, p)
        pqp = np.einsum("nt,nt->n", p, qp)
        active &= ~(np.abs(qp - pqp[:, None]).max(axis=1) < eps)
        if not active.any():
            break
        a = active
        qa, pa, qpa, pqpa = q[a], p[a], qp[a], pqp[a]
        for t in range(k):
            diff = (-qpa[:, t] + pqpa) / qa[:, t, t]
            pa[:, t] += diff
            pqpa = (pqpa + diff * (diff * qa[:, t, t] + 2 * qpa[:, t])) / (1 + diff) / (1 + diff)
            qpa = (qpa + diff[:, None] * qa[:, t, :]) / (1 + diff[:, None])
            pa /= 1 + diff[:, None]
        p[a] = pa
    return p


@dataclass(frozen=True, eq=False)
class RBFSVM:
    """A fitted binary RBF-kernel SVM with Platt probabilities, as plain arrays.

    Attributes:
        support_vectors: float64 (S, D) support vectors (D = 300 spectrum
            features for seed 4).
        dual_coef: float64 (1, S) scikit-learn ``dual_coef_`` (``y_i alpha_i``,
            sign such that a positive decision means ``classes[1]``).
        intercept: float64 (1,) scikit-learn ``intercept_``.
        gamma: RBF width, ``K = exp(-gamma * ||x - s||^2)`` (features squared).
        classes: float64 (2,) class labels in scikit-learn ``classes_`` order
            (sorted); for the frequency detector ``[0, 1]`` = ``[real, fake]``.
        prob_a, prob_b: libsvm Platt parameters ``probA_[0]``, ``probB_[0]``.
    """

    support_vectors: np.ndarray
    dual_coef: np.ndarray
    intercept: np.ndarray
    gamma: float
    classes: np.ndarray
    prob_a: float
    prob_b: float

    def __post_init__(self) -> None:
        sv = np.ascontiguousarray(self.support_vectors, dtype=np.float64)
        dc = np.asarray(self.dual_coef, dtype=np.float64).reshape(1, -1)
        ic = np.asarray(self.intercept, dtype=np.float64).reshape(-1)
        cl = np.asarray(self.classes, dtype=np.float64).reshape(-1)
        if sv.ndim != 2 or dc.shape[1] != sv.shape[0]:
            raise ValueError(f"support_vectors (S,D) and dual_coef (1,S) disagree: {sv.shape} vs {dc.shape}")
        if ic.shape != (1,) or cl.shape != (2,):
            raise ValueError(f"binary SVM needs intercept (1,) and classes (2,), got {ic.shape}, {cl.shape}")
        for name, v in (("gamma", self.gamma), ("prob_a", self.prob_a), ("prob_b", self.prob_b)):
            if not np.isfinite(float(v)):
                raise ValueError(f"RBFSVM.{name} must be finite, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name, v in (("support_vectors", sv), ("dual_coef", dc), ("intercept", ic), ("classes", cl)):
            v.setflags(write=False)
            object.__setattr__(self, name, v)

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_sklearn(cls, svc: "SVC") -> "RBFSVM":
        """Convert a fitted binary ``SVC(kernel='rbf', probability=True)``.

        Args:
            svc: fitted ``sklearn.svm.SVC`` with two numeric classes, an
                explicit float ``gamma`` or ``'scale'``/``'auto'`` (the
                resolved ``_gamma`` is used) and ``probability=True``.

        Raises:
            ValueError: not RBF, not binary, non-numeric classes, or fitted
                without probability estimates.
        """
        if svc.kernel != "rbf":
            raise ValueError(f"RBFSVM needs kernel='rbf', got {svc.kernel!r}")
        classes = np.asarray(svc.classes_)
        if classes.shape != (2,) or not np.issubdtype(classes.dtype, np.number):
            raise ValueError(f"RBFSVM needs two numeric classes, got {classes!r}")
        with warnings.catch_warnings():  # scikit-learn >= 1.9: probA_/probB_ deprecated with probability=True
            warnings.simplefilter("ignore", FutureWarning)
            prob_a = np.asarray(getattr(svc, "probA_", []), dtype=np.float64)
            prob_b = np.asarray(getattr(svc, "probB_", []), dtype=np.float64)
        if prob_a.size != 1 or prob_b.size != 1:
            raise ValueError("SVC was fitted without probability=True: no Platt parameters (probA_, probB_)")
        return cls(
            support_vectors=np.asarray(svc.support_vectors_, dtype=np.float64),
            dual_coef=np.asarray(svc.dual_coef_, dtype=np.float64),
            intercept=np.asarray(svc.intercept_, dtype=np.float64),
            gamma=float(svc._gamma),
            classes=classes.astype(np.float64),
            prob_a=float(prob_a[0]),
            prob_b=float(prob_b[0]),
        )

    def state_dict(self) -> dict[str, "torch.Tensor"]:
        """float64 tensors for ``safetensors`` (scalars as shape (1,)); keys :data:`STATE_KEYS`."""
        import torch

        t = lambda a: torch.from_numpy(np.array(a, dtype=np.float64).reshape(np.shape(a) or (1,)))  # noqa: E731
        return {
            "support_vectors": t(self.support_vectors),
            "dual_coef": t(self.dual_coef),
            "intercept": t(self.intercept),
            "gamma": t([self.gamma]),
            "classes": t(self.classes),
            "prob_a": t([self.prob_a]),
            "prob_b": t([self.prob_b]),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, "torch.Tensor | np.ndarray"]) -> "RBFSVM":
        """Inverse of :meth:`state_dict` (tensors or arrays; extra keys are an error).

        Raises:
            KeyError: a key of :data:`STATE_KEYS` is missing, or an unknown key is present.
        """
        missing = [k for k in STATE_KEYS if k not in state]
        extra = [k for k in state if k not in STATE_KEYS]
        if missing or extra:
            raise KeyError(f"RBFSVM state dict: missing {missing}, unexpected {extra}")
        arr = {k: np.asarray(v.cpu().numpy() if hasattr(v, "cpu") else v, dtype=np.float64) for k, v in state.items()}
        return cls(
            support_vectors=arr["support_vectors"],
            dual_coef=arr["dual_coef"],
            intercept=arr["intercept"],
            gamma=float(arr["gamma"].reshape(-1)[0]),
            classes=arr["classes"],
            prob_a=float(arr["prob_a"].reshape(-1)[0]),
            prob_b=float(arr["prob_b"].reshape(-1)[0]),
        )

    # ------------------------------------------------------------------ inference
    @property
    def n_features(self) -> int:
        """Input dimension D."""
        return int(self.support_vectors.shape[1])

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected float (N, {self.n_features}) features, got shape {x.shape}")
        return x

    def kernel(self, x: np.ndarray) -> np.ndarray:
        """RBF kernel matrix ``exp(-gamma * ||x_n - sv_s||^2)``, float64 (N, S).

        Squared distances are summed over explicit differences (as libsvm),
        in row blocks so memory stays below ~32 MB.
        """
        x = self._check_x(x)
        sv = self.support_vectors
        out = np.empty((x.shape[0], sv.shape[0]))
        step = max(1, _CHUNK_ELEMS // max(sv.size, 1))
        for i in range(0, x.shape[0], step):
            d = x[i : i + step, None, :] - sv[None, :, :]
            out[i : i + step] = np.exp(-self.gamma * np.einsum("nsd,nsd->ns", d, d))
        return out

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn ``SVC.decision_function`` for the binary case.

        Args:
            x: float (N, D) features (float64 used internally).

        Returns:
            float64 (N,); positive means ``classes[1]``.
        """
        return self.kernel(x) @ self.dual_coef[0] + self.intercept[0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn ``SVC(probability=True).predict_proba``, binary case.

        Args:
            x: float (N, D) features.

        Returns:
            float64 (N, 2); column ``j`` = P(``classes[j]``), rows sum to 1.
        """
        d_libsvm = -self.decision_function(x)  # libsvm's own sign: positive = classes[0]
        r01 = np.clip(_sigmoid_predict(d_libsvm, self.prob_a, self.prob_b), _MIN_PROB, 1 - _MIN_PROB)
        return _multiclass_probability_2(r01)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn ``SVC.predict``: ``classes[1]`` where the decision is >= 0, float64 (N,).

        (libsvm votes for ``classes[0]`` only when its own value ``-f`` is > 0.)
        """
        return np.where(self.decision_function(x) >= 0, self.classes[1], self.classes[0])
