"""Seed 1's result tables: late-fusion accuracies (Tables II-III) and significance tests (spec §1.9).

Input: per-video probabilities written by evaluation runs, one ``proba.json``
per run (any depth under the runs folder)::

    {"classes": ["D01-D26", ...],          # C class names, label order
     "content": "Native",                  # Native | WA | YT
     "fold": 0,
     "modality": "audio",                  # audio | image
     "videos": {"D26_V_indoor_move_0001": {"label": 0, "proba": [C floats]}, ...}}

For ``image`` the per-video vector is the mean of the frame softmax vectors
(§1.9; each frame's own vector, not the seed's first-frame-of-batch quirk).
:func:`collect_runs` pairs the audio and image file of each content x fold;
their videos (stems), labels and classes must match.

Per content x fold (:func:`evaluate_pair`):

* **accuracies** (:func:`fusion_accuracies`, §1.9 ``late_fusion.py``): audio
  ``argmax p_a``, image ``argmax p_v``, **product** ``argmax p_a * p_v``
  (element-wise), **sum** ``argmax p_a + p_v``; equal weights; accuracy =
  correct / videos.
* **significance** (:func:`significance_tests`, §1.9 ``significance_test.py``)
  for the pairs Product vs Sum, Product vs Audio, Product vs Video, Sum vs
  Audio, Sum vs Video (Video = the image model), H0 "equal performance"
  rejected when p < 0.05, with two tests, both reported:

  - ``ftest``: the test the seed actually ran, ``mlxtend.evaluate.ftest(y,
    pred_1, pred_2)`` (Looney 1988 F-test for comparing classifiers; mlxtend
    uses df = (1, N)).
  - ``mcnemar``: ``mlxtend.evaluate.mcnemar`` on ``mcnemar_table`` (imported
    but commented out in the seed). **Exact binomial** (two-sided, n = b + c,
    p = 0.5) when the discordant count b + c < 25, otherwise **chi-squared with
    Edwards' continuity correction** (|b - c| - 1)^2 / (b + c), 1 df; the
    ``method`` column says which.

  When the two models are right on exactly the same videos (b = c = 0) both
  statistics are 0 and p = 1 (mlxtend's F would be 0/0).

Outputs (:func:`write_tables`): ``tables.md``, ``accuracy.csv``,
``significance.csv``, ``tables.tex``; rows per content x fold, then mean ± std
(population std, ddof = 0) over the folds per content; for the tests, the
number of folds where H0 is rejected.

CLI (wired by ``trainer.cli``): ``forensic-train tables vision --runs DIR --out DIR``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from engine.io import atomic_write_bytes

__all__ = [
    "ALPHA",
    "CONTENT_ORDER",
    "MCNEMAR_EXACT_BELOW",
    "MODELS",
    "PAIRS",
    "FoldResult",
    "PairedRun",
    "ProbaFileError",
    "collect_runs",
    "evaluate_pair",
    "fusion_accuracies",
    "fusion_predictions",
    "load_proba",
    "main_tables",
    "significance_tests",
    "write_tables",
]

#: Significance level: H0 (equal performance) is rejected when p < ALPHA (§1.9).
ALPHA = 0.05
#: McNemar uses the exact binomial test when the discordant count b + c is below this.
MCNEMAR_EXACT_BELOW = 25
#: Model keys, in table order.
MODELS = ("audio", "image", "product", "sum")
#: Display names of :data:`MODELS` (the seed's wording: image = "Video" in the tests).
MODEL_NAMES = {"audio": "Audio", "image": "Video", "product": "Product", "sum": "Sum"}
#: The five compared pairs of §1.9, in the seed's order.
PAIRS = (("product", "sum"), ("product", "audio"), ("product", "image"), ("sum", "audio"), ("sum", "image"))
#: Content order of the tables.
CONTENT_ORDER = ("Native", "WA", "YT")
MODALITIES = ("audio", "image")
TEST_LABELS = {
    "ftest": "F-test (Looney 1988; mlxtend.evaluate.ftest, as run by the seed)",
    "mcnemar": (f"McNemar (mlxtend.evaluate.mcnemar; exact binomial if b+c < {MCNEMAR_EXACT_BELOW}, "
                "else chi2 with continuity correction)"),
}


class ProbaFileError(ValueError):
    """A ``proba.json`` is malformed, or the audio/image files of a content x fold do not pair up.

    The message names the file(s).
    """


@dataclass(frozen=True)
class PairedRun:
    """Audio and image probabilities of one content x fold, aligned by video.

    Attributes:
        content: ``'Native'``, ``'WA'`` or ``'YT'``.
        fold: fold index.
        classes: the C class names (label order).
        stems: the N video stems, sorted.
        y: (N,) int64 true labels.
        p_audio: (N, C) float64 audio probabilities.
        p_image: (N, C) float64 image probabilities (mean of frame softmaxes).
        audio_path, image_path: the two ``proba.json`` files.
    """

    content: str
    fold: int
    classes: tuple[str, ...]
    stems: tuple[str, ...]
    y: np.ndarray
    p_audio: np.ndarray
    p_image: np.ndarray
    audio_path: Path
    image_path: Path


@dataclass(frozen=True)
class FoldResult:
    """Accuracies and significance tests of one content x fold.

    Attributes:
        content, fold: as in :class:`PairedRun`.
        n_videos: N.
        accuracy: ``{model: fraction correct}`` for :data:`MODELS`.
        tests: one dict per pair x test, see :func:`significance_tests`.
    """

    content: str
    fold: int
    n_videos: int
    accuracy: dict[str, float]
    tests: list[dict] = field(default_factory=list)


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProbaFileError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ProbaFileError(f"{path}: expected a JSON object")
    return data


def load_proba(path: Union[str, Path]) -> dict:
    """Read and validate one ``proba.json`` (format in the module docstring).

    Returns:
        ``{"path", "classes": tuple[str], "content", "fold": int, "modality",
        "stems": tuple[str] (sorted), "y": (N,) int64, "proba": (N, C) float64}``.

    Raises:
        ProbaFileError: missing/ill-typed keys, unknown content or modality,
            no videos, a label outside 0..C-1, a probability vector of the
            wrong length or not finite.
    """
    path = Path(path)
    d = _load_json(path)
    for key in ("classes", "content", "fold", "modality", "videos"):
        if key not in d:
            raise ProbaFileError(f"{path}: missing key {key!r}")
    classes = d["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ProbaFileError(f"{path}: classes must be a non-empty list of names")
    if d["content"] not in CONTENT_ORDER:
        raise ProbaFileError(f"{path}: content must be one of {CONTENT_ORDER}, got {d['content']!r}")
    if d["modality"] not in MODALITIES:
        raise ProbaFileError(f"{path}: modality must be 'audio' or 'image', got {d['modality']!r}")
    if not isinstance(d["fold"], int) or isinstance(d["fold"], bool) or d["fold"] < 0:
        raise ProbaFileError(f"{path}: fold must be an int >= 0, got {d['fold']!r}")
    videos = d["videos"]
    if not isinstance(videos, dict) or not videos:
        raise ProbaFileError(f"{path}: videos must be a non-empty object {{stem: {{label, proba}}}}")
    stems = tuple(sorted(videos))
    n_classes = len(classes)
    y = np.empty(len(stems), dtype=np.int64)
    proba = np.empty((len(stems), n_classes), dtype=np.float64)
    for i, stem in enumerate(stems):
        v = videos[stem]
        try:
            label, p = v["label"], np.asarray(v["proba"], dtype=np.float64)
        except (TypeError, KeyError, ValueError):
            raise ProbaFileError(f"{path}: video {stem!r} needs 'label' (int) and 'proba' ({n_classes} floats)") from None
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < n_classes:
            raise ProbaFileError(f"{path}: video {stem!r} label {label!r} not in 0..{n_classes - 1}")
        if p.shape != (n_classes,) or not np.all(np.isfinite(p)):
            raise ProbaFileError(f"{path}: video {stem!r} proba must be {n_classes} finite floats")
        y[i], proba[i] = label, p
    return {"path": path, "classes": tuple(classes), "content": d["content"], "fold": d["fold"],
            "modality": d["modality"], "stems": stems, "y": y, "proba": proba}


def _shown(items: Sequence[str], n: int = 5) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def collect_runs(runs_dir: Union[str, Path]) -> list[PairedRun]:
    """Find every ``proba.json`` under ``runs_dir`` and pair audio with image per content x fold.

    Args:
        runs_dir: folder searched recursively for files named ``proba.json``.

    Returns:
        One :class:`PairedRun` per content x fold, sorted by (Native, WA, YT), fold.

    Raises:
        ProbaFileError: no ``proba.json`` found; a malformed file; two files for
            one content x fold x modality; a content x fold with only one
            modality; paired files whose classes, video stems or labels differ
            (the message names both files and up to five stems).
    """
    runs_dir = Path(runs_dir)
    paths = sorted(runs_dir.rglob("proba.json")) if runs_dir.is_dir() else []
    if not paths:
        raise ProbaFileError(f"{runs_dir}: no proba.json files found")
    found: dict[tuple[str, int, str], dict] = {}
    for p in paths:
        d = load_proba(p)
        key = (d["content"], d["fold"], d["modality"])
        if key in found:
            raise ProbaFileError(
                f"{p} and {found[key]['path']}: both are {key[2]} {key[0]} fold {key[1]}; keep one run per "
                "content x fold x modality"
            )
        found[key] = d
    out = []
    for content, fold in sorted({k[:2] for k in found}, key=lambda k: (CONTENT_ORDER.index(k[0]), k[1])):
        a, v = found.get((content, fold, "audio")), found.get((content, fold, "image"))
        if a is None or v is None:
            have = a or v
            missing = "image" if a is not None else "audio"
            raise ProbaFileError(f"{have['path']}: no {missing} proba.json for {content} fold {fold} to pair with")
        where = f"{a['path']} (audio) and {v['path']} (image)"
        if a["classes"] != v["classes"]:
            raise ProbaFileError(f"{where}: different class lists")
        if a["stems"] != v["stems"]:
            only_a = set(a["stems"]) - set(v["stems"])
            only_v = set(v["stems"]) - set(a["stems"])
            raise ProbaFileError(
                f"{where}: the videos differ ({content} fold {fold}); only in audio: {_shown(only_a) or '-'}; "
                f"only in image: {_shown(only_v) or '-'}"
            )
        bad = [s for s, ya, yv in zip(a["stems"], a["y"], v["y"]) if ya != yv]
        if bad:
            raise ProbaFileError(f"{where}: labels differ for {_shown(bad)}")
        out.append(PairedRun(content, fold, a["classes"], a["stems"], a["y"], a["proba"], v["proba"],
                             a["path"], v["path"]))
    return out


def _check_inputs(p_audio: np.ndarray, p_image: np.ndarray, y: Optional[np.ndarray] = None):
    pa, pv = np.asarray(p_audio, dtype=np.float64), np.asarray(p_image, dtype=np.float64)
    if pa.ndim != 2 or pa.shape != pv.shape or pa.shape[0] == 0:
        raise ValueError(f"p_audio and p_image must both be (N, C) with N > 0, got {pa.shape} and {pv.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (pa.shape[0],):
            raise ValueError(f"y must be ({pa.shape[0]},), got {y.shape}")
    return pa, pv, y


def fusion_predictions(p_audio: np.ndarray, p_image: np.ndarray) -> dict[str, np.ndarray]:
    """Predicted labels of the four models of §1.9.

    Args:
        p_audio: (N, C) audio class probabilities.
        p_image: (N, C) image (video-level mean of frames) class probabilities.

    Returns:
        ``{"audio", "image", "product", "sum"}`` -> (N,) int64 labels:
        ``argmax p_a``, ``argmax p_v``, ``argmax p_a * p_v``, ``argmax p_a + p_v``
        (equal weights; ties go to the lowest label, as ``np.argmax``).

    Raises:
        ValueError: shapes differ, are not 2-D, or N = 0.
    """
    pa, pv, _ = _check_inputs(p_audio, p_image)
    return {
        "audio": pa.argmax(axis=1),
        "image": pv.argmax(axis=1),
        "product": (pa * pv).argmax(axis=1),
        "sum": (pa + pv).argmax(axis=1),
    }


def fusion_accuracies(p_audio: np.ndarray, p_image: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Audio, image, product-rule and sum-rule accuracies (§1.9 ``late_fusion.py``; Tables II-III).

    Args:
        p_audio: (N, C) audio probabilities.
        p_image: (N, C) image probabilities.
        y: (N,) true labels (int).

    Returns:
        ``{"audio", "image", "product", "sum"}`` -> fraction correct in [0, 1].

    Raises:
        ValueError: shapes inconsistent or N = 0.
    """
    pa, pv, y = _check_inputs(p_audio, p_image, y)
    return {k: float(np.mean(pred == y)) for k, pred in fusion_predictions(pa, pv).items()}


def _ftest(y: np.ndarray, pred_1: np.ndarray, pred_2: np.ndarray, b: int, c: int) -> tuple[float, float]:
    if b + c == 0:
        return 0.0, 1.0
    from mlxtend.evaluate import ftest

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        f, p = ftest(y, pred_1, pred_2)
    return float(f), float(p)


def _mcnemar(table: np.ndarray) -> tuple[float, float, str]:
    b, c = int(table[0, 1]), int(table[1, 0])
    if b + c == 0:
        return 0.0, 1.0, "none (b+c=0)"
    from mlxtend.evaluate import mcnemar

    if b + c < MCNEMAR_EXACT_BELOW:
        _, p = mcnemar(table, exact=True)
        return float(min(b, c)), float(p), "exact binomial"
    chi2, p = mcnemar(table, corrected=True, exact=False)
    return float(chi2), float(p), "chi2 (continuity-corrected)"


def significance_tests(
    y: np.ndarray, predictions: dict[str, np.ndarray], alpha: float = ALPHA
) -> list[dict]:
    """F-test and McNemar test for the five pairs of §1.9.

    Args:
        y: (N,) true labels.
        predictions: ``{model: (N,) labels}`` with the keys of :data:`MODELS`
            (see :func:`fusion_predictions`).
        alpha: H0 (equal performance) is rejected when p < alpha.

    Returns:
        For each pair of :data:`PAIRS`, two dicts (``test`` = ``'ftest'`` then
        ``'mcnemar'``) with keys ``pair`` (e.g. ``'Product vs Video'``),
        ``model_1``, ``model_2`` (keys of :data:`MODELS`), ``test``, ``method``,
        ``statistic`` (F; McNemar chi2, or min(b, c) for the exact test),
        ``p_value``, ``reject_h0`` (bool), ``n_videos``, ``acc_1``, ``acc_2``,
        ``b`` (model 1 right, model 2 wrong), ``c`` (model 2 right, model 1 wrong).

    Raises:
        ValueError: a missing model or arrays of different lengths.
    """
    from mlxtend.evaluate import mcnemar_table

    y = np.asarray(y)
    rows = []
    for m1, m2 in PAIRS:
        if m1 not in predictions or m2 not in predictions:
            raise ValueError(f"predictions need the models {MODELS}, got {sorted(predictions)}")
        p1, p2 = np.asarray(predictions[m1]), np.asarray(predictions[m2])
        if p1.shape != y.shape or p2.shape != y.shape or y.ndim != 1:
            raise ValueError(f"y and the predictions must all be (N,), got {y.shape}, {p1.shape}, {p2.shape}")
        table = mcnemar_table(y_target=y, y_model1=p1, y_model2=p2)
        b, c = int(table[0, 1]), int(table[1, 0])
        common = {"pair": f"{MODEL_NAMES[m1]} vs {MODEL_NAMES[m2]}", "model_1": m1, "model_2": m2,
                  "n_videos": int(y.size), "acc_1": float(np.mean(p1 == y)), "acc_2": float(np.mean(p2 == y)),
                  "b": b, "c": c}
        f, p_f = _ftest(y, p1, p2, b, c)
        rows.append({**common, "test": "ftest", "method": "F(1, N)", "statistic": f, "p_value": p_f,
                     "reject_h0": bool(p_f < alpha)})
        stat, p_m, method = _mcnemar(table)
        rows.append({**common, "test": "mcnemar", "method": method, "statistic": stat, "p_value": p_m,
                     "reject_h0": bool(p_m < alpha)})
    return rows


def evaluate_pair(run: PairedRun, alpha: float = ALPHA) -> FoldResult:
    """Accuracies and significance tests of one content x fold (§1.9)."""
    preds = fusion_predictions(run.p_audio, run.p_image)
    acc = {k: float(np.mean(p == run.y)) for k, p in preds.items()}
    return FoldResult(run.content, run.fold, int(run.y.size), acc, significance_tests(run.y, preds, alpha))


# ---------------------------------------------------------------------------------------------- output


def _summary(results: Sequence[FoldResult]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{content: {model: (mean, std)}}`` over folds (population std)."""
    out = {}
    for content in CONTENT_ORDER:
        rs = [r for r in results if r.content == content]
        if rs:
            out[content] = {m: (float(np.mean([r.accuracy[m] for r in rs])),
                                float(np.std([r.accuracy[m] for r in rs]))) for m in MODELS}
    return out


def _rejections(results: Sequence[FoldResult], content: str, test: str, pair: str) -> tuple[int, int]:
    rows = [t for r in results if r.content == content for t in r.tests if t["test"] == test and t["pair"] == pair]
    return sum(t["reject_h0"] for t in rows), len(rows)


def _pairs() -> list[str]:
    return [f"{MODEL_NAMES[a]} vs {MODEL_NAMES[b]}" for a, b in PAIRS]


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"


def _fmt_stat(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3f}"


def _csv_text(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _sorted(results: Sequence[FoldResult]) -> list[FoldResult]:
    return sorted(results, key=lambda r: (CONTENT_ORDER.index(r.content), r.fold))


def _markdown(results: Sequence[FoldResult], alpha: float) -> str:
    summ = _summary(results)
    lines = ["# Late fusion of audio and image camera-model identification (seed 1, spec §1.9)", "",
             "## Accuracy (%) per visual content and fold (Tables II-III)", "",
             "| content | fold | videos | Audio | Video (image) | Product | Sum |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.content} | {r.fold} | {r.n_videos} | "
                     + " | ".join(f"{100 * r.accuracy[m]:.2f}" for m in MODELS) + " |")
    for content, s in summ.items():
        lines.append(f"| **{content}** | mean ± std | | "
                     + " | ".join(f"{100 * s[m][0]:.2f} ± {100 * s[m][1]:.2f}" for m in MODELS) + " |")
    for test in ("ftest", "mcnemar"):
        lines += ["", f"## Significance: {TEST_LABELS[test]}", "",
                  f"H0 (equal performance) rejected when p < {alpha:g}. b = videos only model 1 gets right, "
                  "c = only model 2.", "",
                  "| content | fold | pair | b | c | method | statistic | p | H0 |", "|---|---|---|---|---|---|---|---|---|"]
        for r in results:
            for t in r.tests:
                if t["test"] == test:
                    lines.append(f"| {r.content} | {r.fold} | {t['pair']} | {t['b']} | {t['c']} | {t['method']} | "
                                 f"{_fmt_stat(t['statistic'])} | {_fmt_p(t['p_value'])} | "
                                 f"{'rejected' if t['reject_h0'] else 'kept'} |")
        lines += ["", f"Folds with H0 rejected ({test}):", "",
                  "| content | " + " | ".join(_pairs()) + " |", "|---" * (len(PAIRS) + 1) + "|"]
        for content in summ:
            cells = [f"{k}/{n}" for k, n in (_rejections(results, content, test, p) for p in _pairs())]
            lines.append(f"| {content} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("<", r"$<$"), (">", r"$>$")):
        s = s.replace(a, b)
    return s


def _latex(results: Sequence[FoldResult], alpha: float) -> str:
    summ = _summary(results)
    out = ["% Seed 1 late-fusion tables (spec §1.9), written by trainer.vision_tables",
           r"\begin{table}[t]", r"\centering",
           r"\caption{Camera-model identification accuracy (\%) per visual content and fold.}",
           r"\begin{tabular}{llrrrrr}", r"\hline",
           r"Content & Fold & Videos & Audio & Video & Product & Sum \\", r"\hline"]
    for r in results:
        out.append(f"{r.content} & {r.fold} & {r.n_videos} & "
                   + " & ".join(f"{100 * r.accuracy[m]:.2f}" for m in MODELS) + r" \\")
    out.append(r"\hline")
    for content, s in summ.items():
        out.append(f"{content} & mean & & "
                   + " & ".join(f"${100 * s[m][0]:.2f} \\pm {100 * s[m][1]:.2f}$" for m in MODELS) + r" \\")
    out += [r"\hline", r"\end{tabular}", r"\end{table}"]
    for test in ("ftest", "mcnemar"):
        out += ["", r"\begin{table}[t]", r"\centering",
                f"\\caption{{{_tex_escape(TEST_LABELS[test])}: p-values; * = H0 rejected at $p < {alpha:g}$.}}",
                r"\begin{tabular}{ll" + "r" * len(PAIRS) + "}", r"\hline",
                "Content & Fold & " + " & ".join(_pairs()) + r" \\", r"\hline"]
        for r in results:
            cells = []
            for pair in _pairs():
                (t,) = [t for t in r.tests if t["test"] == test and t["pair"] == pair]
                cells.append(_fmt_p(t["p_value"]) + ("*" if t["reject_h0"] else ""))
            out.append(f"{r.content} & {r.fold} & " + " & ".join(cells) + r" \\")
        out += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_tables(results: Sequence[FoldResult], out_dir: Union[str, Path], alpha: float = ALPHA) -> str:
    """Write the accuracy and significance tables (§1.9) and return the Markdown.

    Files (written atomically, ``out_dir`` created):

    * ``accuracy.csv``: ``content,fold,n_videos,audio,image,product,sum``;
      accuracies as fractions; after the folds of a content, rows with
      ``fold`` = ``mean`` and ``std`` (population std over folds).
    * ``significance.csv``: one row per content x fold x pair x test:
      ``content,fold,pair,model_1,model_2,test,method,n_videos,acc_1,acc_2,b,c,statistic,p_value,reject_h0``
      (``test`` = ``ftest`` or ``mcnemar``, see the module docstring).
    * ``tables.md``: the same, readable, plus per-content counts of folds with H0 rejected.
    * ``tables.tex``: LaTeX ``tabular`` s (accuracy; p-values per test).

    Args:
        results: :func:`evaluate_pair` outputs (any order; sorted Native, WA, YT, fold).
        out_dir: output folder.
        alpha: significance level shown in the captions (the rows carry their own decision).

    Returns:
        The Markdown text of ``tables.md``.

    Raises:
        ValueError: no results.
    """
    if not results:
        raise ValueError("no results to tabulate")
    results = _sorted(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    acc_rows: list[list] = []
    summ = _summary(results)
    for content in summ:
        rs = [r for r in results if r.content == content]
        acc_rows += [[r.content, r.fold, r.n_videos] + [repr(r.accuracy[m]) for m in MODELS] for r in rs]
        n = sum(r.n_videos for r in rs)
        acc_rows.append([content, "mean", n] + [repr(summ[content][m][0]) for m in MODELS])
        acc_rows.append([content, "std", n] + [repr(summ[content][m][1]) for m in MODELS])
    atomic_write_bytes(out_dir / "accuracy.csv", _csv_text(["content", "fold", "n_videos", *MODELS], acc_rows))
    sig_cols = ["pair", "model_1", "model_2", "test", "method", "n_videos", "acc_1", "acc_2", "b", "c",
                "statistic", "p_value", "reject_h0"]
    sig_rows = [[r.content, r.fold] + [repr(t[k]) if isinstance(t[k], float) else t[k] for k in sig_cols]
                for r in results for t in r.tests]
    atomic_write_bytes(out_dir / "significance.csv", _csv_text(["content", "fold", *sig_cols], sig_rows))
    md = _markdown(results, alpha)
    atomic_write_bytes(out_dir / "tables.md", md.encode("utf-8"))
    atomic_write_bytes(out_dir / "tables.tex", _latex(results, alpha).encode("utf-8"))
    return md


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``forensic-train tables vision --runs DIR --out DIR [--alpha 0.05]``."""
    p = argparse.ArgumentParser(
        prog="forensic-train tables vision",
        description="Seed 1 Tables II-III (audio/image/product/sum accuracy) and F-test + McNemar "
                    "significance tables from per-video proba.json files (spec §1.9).",
    )
    p.add_argument("--runs", required=True, type=Path, help="folder searched recursively for proba.json")
    p.add_argument("--out", required=True, type=Path, help="output folder for tables.md/.tex, accuracy.csv, significance.csv")
    p.add_argument("--alpha", type=float, default=ALPHA, help="reject H0 when p < alpha (default 0.05)")
    return p


def main_tables(argv: Optional[Sequence[str]] = None) -> int:
    """``forensic-train tables vision --runs DIR --out DIR``: write the tables, print the Markdown.

    Args:
        argv: the arguments after ``tables vision`` (a leading ``vision`` is
            accepted too); None = ``sys.argv[1:]``.

    Returns:
        0 on success, 1 when the inputs are unusable (message on stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["vision"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if not 0 < args.alpha < 1:
        print(f"error: --alpha must be in (0, 1), got {args.alpha}", file=sys.stderr)
        return 1
    try:
        results = [evaluate_pair(run, args.alpha) for run in collect_runs(args.runs)]
    except ProbaFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(write_tables(results, args.out, args.alpha), end="")
    return 0
