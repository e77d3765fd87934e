"""Evaluation metrics shared by every deepfake detector's trainer (one module, many callers).

Conventions (engine-wide): label **1 = fake**, 0 = real; a score is **P(fake)**
in [0, 1] (any monotone score works for AUC / EER).

What the seeds computed, and where it lives here:

* seed 2 §2.4 (``test_model.py``): accuracy, F1 (``sklearn.f1_score``,
  positive = fake), ROC AUC (``roc_curve`` + ``auc``); decision "score >
  threshold means fake" (seed threshold 0.55, ``custom_round``); video score
  = mean of frame probabilities; ROC plot titled "ROC curve", dashed ``k--``
  diagonal, axes "False positive rate" / "True positive rate", legend
  ``<name> (area = 0.xxx)`` -> :func:`binary_metrics`, :func:`video_scores`,
  :func:`roc_png`.
* seed 3 §3.5 (``10.evaluate_triplets.py``): **EER = FNR at
  argmin |FNR - FPR|** over the points of ``sklearn.metrics.roc_curve``
  (default ``drop_intermediate=True``, as the seed called it) ->
  ``binary_metrics(...)["eer"]``. (Seed 3's ``auc_roc_prc.py`` reported the
  FPR at the same index instead; we return it too, as ``eer_fpr``.)
  Seed 3's video rule (majority vote of frame labels) is ``rule="vote"``.

Results are plain JSON-ready dicts / rows; files are written atomically
(:mod:`engine.io`) as CSV, JSON or PNG, never pickled.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from engine.io import atomic_write_bytes, atomic_write_json

__all__ = [
    "VIDEO_RULES",
    "VideoResult",
    "video_scores",
    "binary_metrics",
    "eer",
    "per_group_metrics",
    "roc_png",
    "write_video_results",
]

VIDEO_RULES = ("mean", "median", "max", "vote")
"""Frame -> video aggregation rules of :func:`video_scores`."""


# ============================================================================ aggregation
def video_scores(
    frame_probs: Mapping[str, Sequence[float]], rule: str = "mean", frame_threshold: float = 0.5
) -> dict[str, float]:
    """Aggregate per-frame P(fake) into one score per video.

    Args:
        frame_probs: video id -> frame P(fake) values (float, any length >= 1).
        rule: ``"mean"`` (seed 2 §2.4 for one face track; seed 3 §3.5 video
            probability; our detectors), ``"median"``, ``"max"``, or
            ``"vote"``: fraction of frames with P(fake) > ``frame_threshold``
            (seed 3 §3.5 majority vote: the video is fake when this is >= 0.5).
        frame_threshold: per-frame decision threshold for ``"vote"``.

    Returns:
        video id -> float video score in [0, 1], same order as ``frame_probs``.

    Raises:
        ValueError: unknown rule, or a video with no frames / non-finite values.
    """
    if rule not in VIDEO_RULES:
        raise ValueError(f"unknown video rule {rule!r}; choose from {VIDEO_RULES}")
    out: dict[str, float] = {}
    for video, probs in frame_probs.items():
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.size == 0:
            raise ValueError(f"video {video!r} has no frame scores")
        if not np.all(np.isfinite(p)):
            raise ValueError(f"video {video!r} has non-finite frame scores")
        if rule == "mean":
            out[video] = float(p.mean())
        elif rule == "median":
            out[video] = float(np.median(p))
        elif rule == "max":
            out[video] = float(p.max())
        else:
            out[video] = float(np.mean(p > frame_threshold))
    return out


# ============================================================================ metrics
def _check_binary(y_true: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"y_true and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if y.size == 0:
        raise ValueError("no samples")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0 (real) and 1 (fake) only")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return y.astype(np.int64), s


def eer(y_true: Sequence[int], scores: Sequence[float]) -> tuple[float, float, float]:
    """Equal error rate as seed 3 §3.5: FNR at ``argmin |FNR - FPR|`` of ``roc_curve``.

    Args:
        y_true: int (N,) 1 = fake, 0 = real; both classes must be present.
        scores: float (N,) P(fake).

    Returns:
        ``(eer, fpr_at_that_point, threshold)``: ``eer`` is the FNR (seed 3's
        ``10.evaluate_triplets.py``); the FPR there is what seed 3's
        ``auc_roc_prc.py`` printed. ``threshold`` is sklearn's: samples with
        ``score >= threshold`` count as fake at that operating point (``inf``
        if the best point is the all-real one).

    Raises:
        ValueError: only one class present.
    """
    from sklearn.metrics import roc_curve

    y, s = _check_binary(y_true, scores)
    if np.unique(y).size < 2:
        raise ValueError("EER needs both classes")
    fpr, tpr, thr = roc_curve(y, s, pos_label=1)
    fnr = 1.0 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float(fnr[i]), float(fpr[i]), float(thr[i])


def binary_metrics(y_true: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, F1, ROC AUC, EER and the confusion matrix of a fake/real decision.

    Args:
        y_true: int (N,) labels, **1 = fake**, 0 = real.
        scores: float (N,) P(fake) (video or frame scores).
        threshold: decision rule ``fake <=> score > threshold`` (seed 2 §2.4;
            the seed used 0.55, our detectors 0.5).

    Returns:
        JSON-ready dict:

        * ``n``, ``n_real``, ``n_fake``, ``threshold``;
        * ``accuracy``; ``f1`` (positive = fake, 0.0 when undefined);
        * ``roc_auc`` (``sklearn.metrics.roc_auc_score``); ``eer``,
          ``eer_fpr``, ``eer_threshold`` (see :func:`eer`): all ``None``
          when only one class is present (and ``eer_threshold`` is None if
          not finite);
        * ``tn``, ``fp``, ``fn``, ``tp``: confusion matrix counts
          (rows true real/fake, columns predicted real/fake).

    Raises:
        ValueError: lengths differ, labels not 0/1, non-finite scores, no samples.
    """
    from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

    y, s = _check_binary(y_true, scores)
    pred = (s > threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    both = np.unique(y).size == 2
    out: dict[str, Any] = {
        "n": int(y.size),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "threshold": float(threshold),
        "accuracy": float((pred == y).mean()),
        "f1": float(f1_score(y, pred, pos_label=1, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, s)) if both else None,
        "eer": None,
        "eer_fpr": None,
        "eer_threshold": None,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }
    if both:
        e, e_fpr, e_thr = eer(y, s)
        out.update(eer=e, eer_fpr=e_fpr, eer_threshold=e_thr if math.isfinite(e_thr) else None)
    return out


def per_group_metrics(
    y_true: Sequence[int],
    scores: Sequence[float],
    groups: Sequence[str],
    threshold: float = 0.5,
    include_all_reals: bool = False,
) -> dict[str, dict[str, Any]]:
    """:func:`binary_metrics` per group, e.g. per manipulation method of FF++.

    Args:
        y_true: int (N,) 1 = fake.
        scores: float (N,) P(fake).
        groups: str (N,) group of each sample (e.g. ``"Deepfakes"``,
            ``"Face2Face"``, ``"original"``).
        threshold: as in :func:`binary_metrics`.
        include_all_reals: if True, every group holding fakes is scored
            together with **all** real samples (of any group), the usual
            per-method protocol where methods share one pool of originals;
            groups holding only reals are then scored on their own.

    Returns:
        group -> metrics dict (sorted by group name); AUC / EER are None for
        a group with a single class.
    """
    y, s = _check_binary(y_true, scores)
    g = np.asarray([str(v) for v in groups])
    if g.shape != y.shape:
        raise ValueError(f"groups and y_true differ in length: {g.shape[0]} vs {y.shape[0]}")
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(g.tolist())):
        mask = g == name
        if include_all_reals and (y[mask] == 1).any():
            mask = mask | (y == 0)
        out[name] = binary_metrics(y[mask], s[mask], threshold)
    return out


# ============================================================================ files
def roc_png(
    path: str | Path,
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    title: str = "ROC curve",
    dpi: int = 100,
) -> Path:
    """Plot ROC curves to a PNG, seed 2 §2.4 style, written atomically.

    640x480 px at ``dpi=100``; dashed ``k--`` chance diagonal; axes "False
    positive rate" / "True positive rate"; one line per curve with legend
    ``<name> (area = 0.xxx)`` (area = ``sklearn.metrics.auc`` of the ROC).
    Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch).

    Args:
        path: output ``.png``.
        curves: name -> ``(y_true int (N,) 1 = fake, scores float (N,))``;
            each needs both classes.
        title: figure title.
        dpi: pixels per inch (figure is 6.4 x 4.8 in).

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import auc, roc_curve

    fig = Figure(figsize=(6.4, 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], "k--")
    for name, (y_true, scores) in curves.items():
        y, s = _check_binary(y_true, scores)
        if np.unique(y).size < 2:
            raise ValueError(f"ROC curve {name!r} needs both classes")
        fpr, tpr, _ = roc_curve(y, s, pos_label=1)
        ax.plot(fpr, tpr, label=f"{name} (area = {auc(fpr, tpr):.3f})")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title)
    if curves:
        ax.legend(loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


@dataclass
class VideoResult:
    """One evaluated video, a row of :func:`write_video_results`.

    Attributes:
        video: video id or path (relative to the dataset root).
        label: true label, 1 = fake, 0 = real (None if unknown).
        score: video P(fake) after the frame -> video rule.
        pred: predicted label (1 = fake: ``score > threshold``).
        group: e.g. manipulation method or source dataset (optional).
        n_frames: frames (face crops) the score was aggregated from.
    """

    video: str
    label: int | None
    score: float
    pred: int
    group: str | None = None
    n_frames: int = 0


def _row_dict(row: VideoResult | Mapping[str, Any]) -> dict[str, Any]:
    d = dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row)
    clean: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        clean[str(k)] = v
    return clean


def write_video_results(
    path_csv: str | Path, path_json: str | Path, rows: Sequence[VideoResult | Mapping[str, Any]]
) -> tuple[Path, Path]:
    """Write per-video results as CSV and JSON (both atomic, UTF-8).

    Args:
        path_csv: CSV with a header; columns = union of the rows' keys in
            first-seen order; None / NaN written as an empty cell.
        path_json: JSON list of row objects (NaN written as null).
        rows: :class:`VideoResult` instances or mappings of scalars.

    Returns:
        ``(path_csv, path_json)``.
    """
    dicts = [_row_dict(r) for r in rows]
    columns: list[str] = []
    for d in dicts:
        columns += [k for k in d if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for d in dicts:
        writer.writerow({k: ("" if d.get(k) is None else d.get(k)) for k in columns})
    return (
        atomic_write_bytes(path_csv, buf.getvalue().encode("utf-8")),
        atomic_write_json(path_json, dicts),
    )
