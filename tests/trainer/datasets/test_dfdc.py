"""trainer.datasets.dfdc: metadata.json parts, label CSVs, groups by original."""

from __future__ import annotations

import json

import pytest

from trainer.datasets import DatasetLayoutError, count, group_leaks, load_dataset
from trainer.datasets.dfdc import dfdc

META0 = {
    "aaa.mp4": {"label": "REAL", "split": "train", "original": None},
    "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
    "ccc.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
    "ddd.mp4": {"label": "REAL", "split": "train", "original": None},
}
META1 = {
    "eee.mp4": {"label": "FAKE", "split": "train", "original": "ddd.mp4"},
    "fff.mp4": {"label": "REAL", "split": "train"},
    "ggg.mp4": {"label": "FAKE", "split": "train", "original": "fff.mp4"},
}


@pytest.fixture
def root(touch, tmp_path):
    touch(["dfdc_train_part_0/" + n for n in META0] + ["dfdc_train_part_1/" + n for n in META1])
    (tmp_path / "dfdc_train_part_0" / "metadata.json").write_text(json.dumps(META0))
    (tmp_path / "dfdc_train_part_1" / "metadata.json").write_text(json.dumps(META1))
    touch(["test/x1.mp4", "test/x2.mp4", "val/v1.mp4"])
    (tmp_path / "dfdc_test_labels.csv").write_text("filename,label\nx1.mp4,1\nx2.mp4,0\n")
    (tmp_path / "dfdc_val_labels.csv").write_text("filename,label\nv1.mp4,FAKE\n")
    return tmp_path


def test_labels_splits_groups(root):
    items = dfdc(root)
    assert len(items) == 10
    assert count(items) == {("train", 0): 3, ("train", 1): 4, ("test", 1): 1, ("test", 0): 1, ("val", 1): 1}
    by_id = {it.video_id: it for it in items}
    assert by_id["bbb"].group == by_id["ccc"].group == by_id["aaa"].group == "aaa"
    assert by_id["eee"].group == "ddd"  # the original may live in another part folder
    assert by_id["x1"].path == root / "test" / "x1.mp4" and by_id["x1"].label == 1
    assert by_id["bbb"].path == root / "dfdc_train_part_0" / "bbb.mp4"
    assert all(it.dataset == "dfdc" and it.method is None for it in items)
    assert not group_leaks(items)


def test_val_carve_out_keeps_real_and_its_fakes_together(root):
    items = load_dataset("dfdc", root, val_fraction=0.5, seed=1)
    train_val = [it for it in items if it.split in ("train", "val")]
    assert {it.split for it in train_val} == {"train", "val"}
    assert not group_leaks(items)
    assert items == dfdc(root, val_fraction=0.5, seed=1)


def test_single_metadata_at_root(touch, tmp_path):
    touch(["a.mp4", "b.mp4"])
    meta = {"a.mp4": {"label": "REAL"}, "b.mp4": {"label": "FAKE", "original": "a.mp4", "split": "test"}}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    items = dfdc(tmp_path)
    got = [(it.video_id, it.label, it.split, it.group) for it in items]
    assert got == [("a", 0, "train", "a"), ("b", 1, "test", "a")]


@pytest.mark.parametrize(
    "breakage, match",
    [
        ("empty_root", "no metadata.json"),
        ("bad_label", "label 'MAYBE'"),
        ("bad_split", "unknown split 'holdout'"),
        ("missing_video", "not found: .*zzz.mp4"),
        ("bad_csv", "expected columns filename,label"),
        ("conflicting_labels", "contradicts"),
        ("not_json", "not valid JSON"),
    ],
)
def test_layout_errors(touch, tmp_path, breakage, match):
    touch(["p/a.mp4"])
    meta = {"a.mp4": {"label": "REAL", "split": "train"}}
    if breakage == "bad_label":
        meta["a.mp4"]["label"] = "MAYBE"
    elif breakage == "bad_split":
        meta["a.mp4"]["split"] = "holdout"
    elif breakage == "missing_video":
        meta["zzz.mp4"] = {"label": "FAKE", "original": "a.mp4"}
    elif breakage == "bad_csv":
        (tmp_path / "dfdc_test_labels.csv").write_text("name,is_fake\na.mp4,1\n")
    elif breakage == "conflicting_labels":
        (tmp_path / "dfdc_test_labels.csv").write_text("filename,label\na.mp4,1\n")
    if breakage != "empty_root":
        text = "{not json" if breakage == "not_json" else json.dumps(meta)
        (tmp_path / "p" / "metadata.json").write_text(text)
    with pytest.raises(DatasetLayoutError, match=match) as err:
        dfdc(tmp_path)
    assert str(tmp_path) in str(err.value)
