"""trainer.metrics against hand-computed values (label 1 = fake, score = P(fake))."""

from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest

from trainer.metrics import (
    VideoResult,
    binary_metrics,
    eer,
    per_group_metrics,
    roc_png,
    video_scores,
    write_video_results,
)

# 4 real, 4 fake. Sorted by score (desc): .9F .8F .7F .6R .4F .3R .2R .1R
Y = [0, 0, 0, 0, 1, 1, 1, 1]
S = [0.1, 0.3, 0.6, 0.2, 0.4, 0.7, 0.8, 0.9]


def test_binary_metrics_hand_computed():
    m = binary_metrics(Y, S, threshold=0.5)
    # AUC = P(fake score > real score) = (3 + 4 + 4 + 4) / 16: only 0.4 < 0.6
    assert m["roc_auc"] == pytest.approx(15 / 16)
    # fake <=> score > 0.5: reals 0.6 -> FP; fakes 0.4 -> FN
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (3, 1, 1, 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # roc_curve (drop_intermediate) keeps (fpr, tpr) = (0,0) (0,.75) (.25,.75) (.25,1) (1,1) at
    # thresholds inf .7 .6 .4 .1; FNR = 1 .25 .25 0 0; |FNR - FPR| smallest (0) at threshold .6
    assert m["eer"] == pytest.approx(0.25) and m["eer_fpr"] == pytest.approx(0.25)
    assert m["eer_threshold"] == pytest.approx(0.6)
    assert (m["n"], m["n_real"], m["n_fake"], m["threshold"]) == (8, 4, 4, 0.5)
    json.dumps(m, allow_nan=False)  # JSON-ready


def test_threshold_is_strictly_greater():
    m = binary_metrics([0, 1], [0.55, 0.56], threshold=0.55)  # seed 2: > 0.55 means fake
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (1, 0, 0, 1)


def test_eer_seed3_definition_on_unequal_point():
    """EER = FNR (not FPR) at argmin |FNR - FPR| over roc_curve's default (drop_intermediate) points."""
    # desc: .8F .4R .35R .3F .1R -> (fpr, tpr) (0,0) (0,.5) (1/3,.5) (2/3,.5) (2/3,1) (1,1);
    # drop_intermediate removes the collinear (1/3,.5) at .4. Kept thresholds inf .8 .35 .3 .1:
    # FNR 1 .5 .5 0 0, FPR 0 0 2/3 2/3 1, |FNR - FPR| 1 .5 1/6 2/3 1 -> index of threshold .35
    e, e_fpr, thr = eer([0, 0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8, 0.3])
    assert e == pytest.approx(0.5) and e_fpr == pytest.approx(2 / 3) and thr == pytest.approx(0.35)


def test_single_class_has_no_auc():
    m = binary_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m["roc_auc"] is None and m["eer"] is None and m["eer_threshold"] is None
    assert (m["fn"], m["tp"]) == (1, 2) and m["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="both classes"):
        eer([1, 1], [0.1, 0.2])


@pytest.mark.parametrize(
    "y, s, match",
    [([0, 1], [0.1], "length"), ([0, 2], [0.1, 0.2], "0 \\(real\\) and 1"), ([0, 1], [0.1, np.nan], "finite"),
     ([], [], "no samples")],
)
def test_binary_metrics_rejects_bad_input(y, s, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(y, s)


def test_video_scores_rules():
    frames = {"a": [0.2, 0.4, 0.9], "b": [0.6]}
    assert video_scores(frames) == pytest.approx({"a": 0.5, "b": 0.6})
    assert video_scores(frames, "median") == pytest.approx({"a": 0.4, "b": 0.6})
    assert video_scores(frames, "max") == pytest.approx({"a": 0.9, "b": 0.6})
    assert video_scores(frames, "vote") == pytest.approx({"a": 1 / 3, "b": 1.0})
    assert list(video_scores({"z": [1], "a": [0]})) == ["z", "a"]
    with pytest.raises(ValueError, match="no frame scores"):
        video_scores({"empty": []})
    with pytest.raises(ValueError, match="unknown video rule"):
        video_scores(frames, "min")


def test_per_group_metrics():
    groups = ["orig", "orig", "orig", "orig", "DF", "DF", "F2F", "F2F"]
    alone = per_group_metrics(Y, S, groups)
    assert list(alone) == ["DF", "F2F", "orig"]
    assert alone["DF"]["roc_auc"] is None and alone["DF"]["accuracy"] == pytest.approx(0.5)  # 0.4 FN, 0.7 TP
    assert alone["orig"]["fp"] == 1 and alone["orig"]["tn"] == 3
    pooled = per_group_metrics(Y, S, groups, include_all_reals=True)
    # DF fakes (.4, .7) vs all reals (.1 .3 .6 .2): pairs won 3 + 4 of 8
    assert pooled["DF"]["roc_auc"] == pytest.approx(7 / 8) and pooled["DF"]["n"] == 6
    assert pooled["F2F"]["roc_auc"] == pytest.approx(1.0)
    assert pooled["orig"] == alone["orig"]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_roc_png_written(tmp_path):
    out = roc_png(tmp_path / "plots" / "roc.png", {"svm": (Y, S), "perfect": ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])})
    assert out == tmp_path / "plots" / "roc.png"
    assert _png_size(out) == (640, 480)
    assert not [p for p in out.parent.iterdir() if p.name != "roc.png"]  # no temp file left


def test_roc_png_labels(tmp_path, monkeypatch):
    """Title, axes, k-- diagonal and '<name> (area = 0.xxx)' legend, as seed 2 §2.4."""
    from matplotlib.figure import Figure

    seen = {}
    original = Figure.savefig

    def spy(fig, *a, **k):
        ax = fig.axes[0]
        seen["title"], seen["x"], seen["y"] = ax.get_title(), ax.get_xlabel(), ax.get_ylabel()
        seen["legend"] = [t.get_text() for t in ax.get_legend().get_texts()]
        diag = ax.get_lines()[0]
        seen["diag"] = (diag.get_linestyle(), diag.get_color(), list(diag.get_xdata()))
        return original(fig, *a, **k)

    monkeypatch.setattr(Figure, "savefig", spy)
    roc_png(tmp_path / "r.png", {"Model_freq": (Y, S)})
    assert seen["title"] == "ROC curve"
    assert (seen["x"], seen["y"]) == ("False positive rate", "True positive rate")
    assert seen["legend"] == ["Model_freq (area = 0.938)"]
    assert seen["diag"] == ("--", "k", [0, 1])


def test_write_video_results(tmp_path):
    rows = [
        VideoResult("a.mp4", 1, 0.75, 1, "DF", 4),
        VideoResult("b.mp4", 0, float("nan"), 0, None, 0),
        {"video": "c.mp4", "label": 0, "score": np.float64(0.25), "pred": 0, "extra": "x"},
    ]
    csv_path, json_path = write_video_results(tmp_path / "v.csv", tmp_path / "v.json", rows)
    with csv_path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["video", "label", "score", "pred", "group", "n_frames", "extra"]
    assert table[0]["score"] == "0.75" and table[1]["score"] == "" and table[2]["extra"] == "x"
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc[0] == {"video": "a.mp4", "label": 1, "score": 0.75, "pred": 1, "group": "DF", "n_frames": 4}
    assert doc[1]["score"] is None and doc[2]["score"] == 0.25
