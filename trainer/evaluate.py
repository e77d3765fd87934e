"""``forensic-train evaluate`` and ``cross-test``: score detectors on labelled datasets.

Scoring goes through the detectors the analyst uses (``engine.detectors``):
videos through :func:`engine.pipeline.analyze` (one decode, one face pass,
the detector's own frame → video rule), image datasets (face crops already,
spec §4.4) through the detector's ``score_crops``. Metrics come from
:mod:`trainer.metrics`, the one evaluation module.

``cross-test`` reproduces seed 4's protocol (§4.2–4.3): every model × every
test set, printed as a matrix (rows = model, columns = test set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.io import atomic_write_bytes, atomic_write_json
from engine.weights import load_card


@dataclass(frozen=True)
class DatasetSpec:
    """``NAME:ROOT[:SPLIT]`` from the command line, e.g. ``image_folder:/data/c23:test``."""

    name: str
    root: Path
    split: str = "test"

    @classmethod
    def parse(cls, text: str) -> "DatasetSpec":
        """Parse ``NAME:ROOT[:SPLIT]``.

        Raises:
            ValueError: not in that form.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"dataset {text!r}: expected NAME:ROOT[:SPLIT]")
        return cls(parts[0], Path(parts[1]), parts[2] if len(parts) == 3 else "test")

    @property
    def label(self) -> str:
        """Column name in tables: the root folder's name and the split."""
        return f"{self.root.name}/{self.split}"


def detector_from_model_dir(model_dir: Path, device: str = "cpu"):
    """Instantiate the registered detector named by a model folder's card.

    Explanations are switched off (``explain=False``) for detectors that have
    them: evaluation needs scores only, and relevancy/Grad-CAM triple the cost.
    """
    import inspect

    from engine.pipeline import _REGISTRY, create_detector, registered_detectors

    card = load_card(model_dir)
    registered_detectors()  # imports the detector modules, filling the registry
    kwargs = {}
    factory = _REGISTRY.get(card.detector_id)
    if factory is not None and "explain" in inspect.signature(factory).parameters:
        kwargs["explain"] = False
    return create_detector(card.detector_id, device=device, model_dir=model_dir, **kwargs)


def score_dataset(detector, spec: DatasetSpec, frames: int = 32, device: str = "cpu") -> list[dict[str, Any]]:
    """Score every item of ``spec``'s split; one row per video/image.

    Returns:
        Rows ``{video, label (1 = fake), score, group, n_frames, status}``; items the
        detector could not score have ``score`` None and ``status`` saying why.
    """
    import cv2

    from engine.media import EvidenceError, Uniform
    from engine.pipeline import ClipConfig, analyze
    from trainer.datasets import ImageItem, load_dataset

    items = [it for it in load_dataset(spec.name, spec.root) if it.split == spec.split]
    if not items:
        raise ValueError(f"{spec.root}: no items in split {spec.split!r}")
    rows = []
    for it in items:
        row = {"video": str(it.path), "label": int(it.label), "group": it.method, "score": None, "n_frames": 0}
        try:
            if isinstance(it, ImageItem):
                bgr = cv2.imread(str(it.path), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError("not a readable image")
                row["score"] = float(detector.score_crops([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0])
                row["n_frames"], row["status"] = 1, "ok"
            else:
                res = analyze(it.path, [detector], device=device, config=ClipConfig(sampling=Uniform(frames)),
                              compute_features=())
                d = res.detectors[0]
                row["score"], row["n_frames"], row["status"] = d.score, len(d.frame_scores), d.status
                if d.status != "ok":
                    row["status"] = f"{d.status}: {d.message}"
        except (EvidenceError, ValueError) as exc:
            row["status"] = f"failed: {exc}"
        rows.append(row)
    return rows


def metrics_of(rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Binary metrics over the scored rows (unscored rows are counted, not scored)."""
    from trainer.metrics import binary_metrics

    scored = [r for r in rows if r["score"] is not None]
    out = binary_metrics([r["label"] for r in scored], [r["score"] for r in scored], threshold)
    out["n_unscored"] = len(rows) - len(scored)
    return out


def run_evaluate(model_dir: Path, spec: DatasetSpec, out_dir: Path, frames: int = 32, device: str = "cpu") -> dict:
    """Evaluate one model on one dataset split; write metrics, per-video results and the ROC plot."""
    from trainer.metrics import per_group_metrics, roc_png, write_video_results

    detector = detector_from_model_dir(model_dir, device)
    rows = score_dataset(detector, spec, frames, device)
    threshold = float(getattr(detector, "threshold", 0.5))
    scored = [r for r in rows if r["score"] is not None]
    result = {"model": str(model_dir), "card_id": detector.card.card_id, "dataset": spec.name, "root": str(spec.root),
              "split": spec.split, "threshold": threshold, "metrics": metrics_of(rows, threshold)}
    groups = [r["group"] for r in scored]
    if len(set(groups)) > 1:
        result["per_group"] = per_group_metrics([r["label"] for r in scored], [r["score"] for r in scored], groups,
                                                threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_video_results(out_dir / "results.csv", out_dir / "results.json", rows)
    if len({r["label"] for r in scored}) == 2:
        roc_png(out_dir / "roc.png", {detector.card.card_id: ([r["label"] for r in scored], [r["score"] for r in scored])})
    atomic_write_json(out_dir / "metrics.json", result)
    return result


def run_cross_test(model_dirs: Sequence[Path], specs: Sequence[DatasetSpec], out_dir: Path, metric: str = "accuracy",
                   frames: int = 32, device: str = "cpu") -> np.ndarray:
    """Every model × every test set (seed 4 §4.2 ``crosstest.py``); writes ``matrix.{md,csv,json}``.

    Returns:
        ``float64 (n_models, n_datasets)`` of ``metric``.
    """
    matrix = np.full((len(model_dirs), len(specs)), np.nan)
    names = []
    for i, md in enumerate(model_dirs):
        det = detector_from_model_dir(md, device)
        names.append(Path(md).name)
        thr = float(getattr(det, "threshold", 0.5))
        for j, spec in enumerate(specs):
            m = metrics_of(score_dataset(det, spec, frames, device), thr)
            matrix[i, j] = float(m[metric]) if m.get(metric) is not None else np.nan
    cols = [s.label for s in specs]
    md_lines = [f"| model \\ test ({metric}) | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    md_lines += [f"| {n} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for n, row in zip(names, matrix)]
    table = "\n".join(md_lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "matrix.md", (table + "\n").encode())
    csv = "model," + ",".join(cols) + "\n" + "".join(
        f"{n}," + ",".join(f"{v:.6f}" for v in row) + "\n" for n, row in zip(names, matrix))
    atomic_write_bytes(out_dir / "matrix.csv", csv.encode())
    atomic_write_json(out_dir / "matrix.json", {"metric": metric, "models": [str(m) for m in model_dirs],
                                                "datasets": cols, "matrix": matrix.tolist()})
    print(table)
    return matrix
