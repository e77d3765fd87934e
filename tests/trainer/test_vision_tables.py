"""trainer.vision_tables: seed 1 late-fusion accuracies and significance tables (spec §1.9).

Expected values are computed independently here: the four accuracies by hand,
the two-model F-test from its closed form (the Looney/mlxtend sums of squares
reduce to F = (N-1)(b-c)^2 / (N(b+c) - (b-c)^2), df = (1, N)), McNemar from the
binomial / continuity-corrected chi-squared formulas with scipy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from trainer.vision_tables import (
    MCNEMAR_EXACT_BELOW,
    PAIRS,
    ProbaFileError,
    collect_runs,
    evaluate_pair,
    fusion_accuracies,
    fusion_predictions,
    main_tables,
    significance_tests,
    write_tables,
)

# 4 videos, 3 classes. Per video: audio / image / product / sum prediction (✓ = correct)
P_AUDIO = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25], [0.3, 0.6, 0.1]])
P_IMAGE = np.array([[0.0, 0.4, 0.6], [0.3, 0.4, 0.3], [0.1, 0.3, 0.6], [0.6, 0.2, 0.2]])
Y = np.array([0, 1, 2, 0])
# v0: audio 0 ✓, image 2, product [0, .04, 0] -> 1, sum [.9, .5, .6] -> 0 ✓
# v1: 1 ✓, 1 ✓, [.06, .2, .09] -> 1 ✓, [.5, .9, .6] -> 1 ✓
# v2: 0, 2 ✓, [.04, .105, .15] -> 2 ✓, [.5, .65, .85] -> 2 ✓
# v3: 1, 0 ✓, [.18, .12, .02] -> 0 ✓, [.9, .8, .3] -> 0 ✓


def test_fusion_accuracies_hand_checked():
    assert fusion_accuracies(P_AUDIO, P_IMAGE, Y) == {"audio": 0.5, "image": 0.75, "product": 0.75, "sum": 1.0}
    preds = fusion_predictions(P_AUDIO, P_IMAGE)
    assert {k: v.tolist() for k, v in preds.items()} == {
        "audio": [0, 1, 0, 1], "image": [2, 1, 2, 0], "product": [1, 1, 2, 0], "sum": [0, 1, 2, 0],
    }
    with pytest.raises(ValueError, match="N, C"):
        fusion_accuracies(P_AUDIO, P_IMAGE[:3], Y)
    with pytest.raises(ValueError, match="y must be"):
        fusion_accuracies(P_AUDIO, P_IMAGE, Y[:3])


def _two_models(n: int, a: int, b: int, c: int):
    """Labels and two prediction vectors with a both-right, b only-1-right, c only-2-right, rest both wrong."""
    y = np.zeros(n, dtype=int)
    right_1 = np.r_[np.ones(a + b), np.zeros(n - a - b)].astype(bool)
    right_2 = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(n - a - b - c)].astype(bool)
    return y, np.where(right_1, 0, 1), np.where(right_2, 0, 2)


def _rows(y, p1, p2):
    preds = {"product": p1, "sum": p2, "audio": p1, "image": p2}
    rows = significance_tests(y, preds)
    assert len(rows) == 2 * len(PAIRS) and rows[0]["pair"] == "Product vs Sum"
    assert [r["pair"] for r in rows[::2]] == [
        "Product vs Sum", "Product vs Audio", "Product vs Video", "Sum vs Audio", "Sum vs Video",
    ]
    return {r["test"]: r for r in rows[:2]}


def _f_closed_form(n, b, c):
    f = (n - 1) * (b - c) ** 2 / (n * (b + c) - (b - c) ** 2)
    return f, stats.f.sf(f, 1, n)


def test_ftest_and_mcnemar_exact_small_discordance():
    n, a, b, c = 40, 20, 7, 2  # b + c = 9 < 25: exact binomial
    rows = _rows(*_two_models(n, a, b, c))
    f, p_f = _f_closed_form(n, b, c)
    assert rows["ftest"]["statistic"] == pytest.approx(f, rel=1e-9)
    assert rows["ftest"]["p_value"] == pytest.approx(p_f, rel=1e-9)
    assert (rows["ftest"]["b"], rows["ftest"]["c"]) == (7, 2)
    m = rows["mcnemar"]
    assert m["method"] == "exact binomial" and b + c < MCNEMAR_EXACT_BELOW
    assert m["p_value"] == pytest.approx(92 / 512)  # 2 * (C(9,0) + C(9,1) + C(9,2)) / 2^9
    assert m["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)
    assert not m["reject_h0"]
    assert (m["acc_1"], m["acc_2"]) == (27 / 40, 22 / 40)


def test_ftest_and_mcnemar_chi2_large_discordance():
    n, a, b, c = 60, 25, 20, 8  # b + c = 28 >= 25: chi2 with continuity correction
    rows = _rows(*_two_models(n, a, b, c))
    assert rows["ftest"]["statistic"] == pytest.approx(8496 / 1536)  # 59 * 144 / (60 * 28 - 144)
    assert rows["ftest"]["p_value"] == pytest.approx(_f_closed_form(n, b, c)[1], rel=1e-9)
    assert rows["ftest"]["reject_h0"] and rows["ftest"]["p_value"] < 0.05
    m = rows["mcnemar"]
    assert m["method"] == "chi2 (continuity-corrected)"
    assert m["statistic"] == pytest.approx(121 / 28)  # (|20 - 8| - 1)^2 / 28
    assert m["p_value"] == pytest.approx(stats.chi2.sf(121 / 28, 1))
    assert m["reject_h0"]


def test_identical_correctness_gives_p_one():
    y, p1, _ = _two_models(10, 6, 0, 0)
    rows = _rows(y, p1, p1.copy())
    assert all(r["statistic"] == 0.0 and r["p_value"] == 1.0 and not r["reject_h0"] for r in rows.values())


# ------------------------------------------------------------------------------------------ files


def _write(path: Path, modality: str, content: str, fold: int, proba, labels, stems=None) -> Path:
    stems = stems or [f"D03_V_indoor_move_{i:04d}" for i in range(len(labels))]
    doc = {"classes": ["A", "B", "C"], "content": content, "fold": fold, "modality": modality,
           "videos": {s: {"label": int(y), "proba": list(map(float, p))} for s, p, y in zip(stems, proba, labels)}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "proba.json").write_text(json.dumps(doc))
    return path / "proba.json"


@pytest.fixture
def runs(tmp_path) -> Path:
    r = tmp_path / "runs"
    _write(r / "audio/Native/fold0/run0", "audio", "Native", 0, P_AUDIO, Y)
    _write(r / "image/Native/fold0", "image", "Native", 0, P_IMAGE, Y)
    # fold 1: audio perfect, image = fold 0's image
    _write(r / "audio/Native/fold1/run3", "audio", "Native", 1, np.eye(3)[Y], Y)
    _write(r / "image/Native/fold1", "image", "Native", 1, P_IMAGE, Y)
    _write(r / "a/WA/f0", "audio", "WA", 0, P_AUDIO, Y)
    _write(r / "i/WA/f0", "image", "WA", 0, P_IMAGE, Y)
    return r


def test_collect_and_write_tables(runs, tmp_path):
    paired = collect_runs(runs)
    assert [(p.content, p.fold) for p in paired] == [("Native", 0), ("Native", 1), ("WA", 0)]
    assert paired[0].p_audio.shape == (4, 3) and paired[0].classes == ("A", "B", "C")
    results = [evaluate_pair(p) for p in paired]
    assert results[1].accuracy == {"audio": 1.0, "image": 0.75, "product": 1.0, "sum": 1.0}
    out = tmp_path / "tables"
    md = write_tables(results, out)
    assert (out / "tables.md").read_text() == md
    assert {p.name for p in out.iterdir()} == {"tables.md", "tables.tex", "accuracy.csv", "significance.csv"}
    acc = list(csv.DictReader((out / "accuracy.csv").open()))
    assert [(r["content"], r["fold"]) for r in acc] == [
        ("Native", "0"), ("Native", "1"), ("Native", "mean"), ("Native", "std"),
        ("WA", "0"), ("WA", "mean"), ("WA", "std"),
    ]
    assert float(acc[2]["audio"]) == pytest.approx(0.75) and float(acc[3]["audio"]) == pytest.approx(0.25)
    assert float(acc[2]["sum"]) == 1.0 and float(acc[3]["sum"]) == 0.0
    sig = list(csv.DictReader((out / "significance.csv").open()))
    assert len(sig) == 3 * 5 * 2 and {r["test"] for r in sig} == {"ftest", "mcnemar"}
    row = next(r for r in sig if r["content"] == "Native" and r["fold"] == "0"
               and r["pair"] == "Sum vs Audio" and r["test"] == "mcnemar")
    assert (row["b"], row["c"], row["method"]) == ("2", "0", "exact binomial")
    assert float(row["p_value"]) == pytest.approx(0.5) and row["reject_h0"] == "False"
    assert "F-test (Looney 1988" in md and "McNemar (mlxtend.evaluate.mcnemar" in md
    assert "| **Native** | mean ± std | | 75.00 ± 25.00 | 75.00 ± 0.00 | 87.50 ± 12.50 | 100.00 ± 0.00 |" in md
    assert "Product vs Video" in md and "Folds with H0 rejected (ftest)" in md
    tex = (out / "tables.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 3 and r"$75.00 \pm 25.00$" in tex


def test_main_tables_cli(runs, tmp_path, capsys):
    assert main_tables(["--runs", str(runs), "--out", str(tmp_path / "o")]) == 0
    assert "Tables II-III" in capsys.readouterr().out and (tmp_path / "o" / "tables.tex").is_file()
    assert main_tables(["vision", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 1
    assert "no proba.json" in capsys.readouterr().err


def test_pairing_errors(runs):
    stems = [f"D03_V_indoor_move_{i:04d}" for i in range(3)] + ["D03_V_indoor_move_0099"]
    bad = _write(runs / "image/Native/fold0", "image", "Native", 0, P_IMAGE, Y, stems)
    with pytest.raises(ProbaFileError, match="the videos differ") as err:
        collect_runs(runs)
    msg = str(err.value)
    assert str(bad) in msg and "only in audio: D03_V_indoor_move_0003" in msg and "only in image: D03_V_indoor_move_0099" in msg
    _write(runs / "image/Native/fold0", "image", "Native", 0, P_IMAGE, [0, 1, 2, 1])
    with pytest.raises(ProbaFileError, match="labels differ for D03_V_indoor_move_0003"):
        collect_runs(runs)
    (runs / "image/Native/fold0/proba.json").unlink()
    with pytest.raises(ProbaFileError, match="no image proba.json for Native fold 0"):
        collect_runs(runs)
    _write(runs / "image/Native/fold0", "image", "Native", 0, P_IMAGE, Y)
    _write(runs / "image/Native/fold0/again", "image", "Native", 0, P_IMAGE, Y)
    with pytest.raises(ProbaFileError, match="keep one run"):
        collect_runs(runs)
    (runs / "image/Native/fold0/again/proba.json").write_text(json.dumps({"classes": ["A"], "content": "Native"}))
    with pytest.raises(ProbaFileError, match="missing key 'fold'"):
        collect_runs(runs)
