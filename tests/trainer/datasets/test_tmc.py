"""trainer.datasets.tmc: seed-5 CSV (filename,filepath,label,split,weight), dev == val."""

from __future__ import annotations

import pytest

from trainer.datasets import DatasetLayoutError, count, group_leaks, load_dataset
from trainer.datasets.tmc import tmc

CSV = (
    "filename,filepath,label,split,weight\n"
    "a.mp4,npz,0,train,1.0\n"
    "b.mp4,npz,1,train,0.5\n"
    "c.mp4,npz,1,dev,1\n"
    "d.mp4,npz,0,val,2\n"
    "e.mp4,raw,1,test,\n"
)


@pytest.fixture
def root(touch, tmp_path):
    touch(["npz/a.npz", "npz/b.npz", "npz/c.npz", "npz/d.npz", "raw/e.mp4"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train_dev_test.csv").write_text(CSV)
    return tmp_path


def test_rows_splits_weights(root):
    items = tmc(root)
    assert [it.video_id for it in items] == ["a", "b", "c", "d", "e"]
    assert count(items) == {("train", 0): 1, ("train", 1): 1, ("val", 1): 1, ("val", 0): 1, ("test", 1): 1}
    assert [it.weight for it in items] == [1.0, 0.5, 1.0, 2.0, 1.0]
    assert items[0].path == root / "npz" / "a.npz"  # the preprocessed sample
    assert items[4].path == root / "raw" / "e.mp4"  # the raw video when present
    assert all(it.dataset == "tmc" and it.group == it.video_id for it in items)
    assert not group_leaks(items)


def test_csv_argument_and_absolute_filepath(root, tmp_path):
    other = tmp_path / "elsewhere.csv"
    other.write_text(f"filename,filepath,label,split\nx.mp4,{root / 'npz'},1,test\n")
    (root / "npz" / "x.npz").write_bytes(b"")
    items = load_dataset("tmc", root, csv_path=other)
    assert [(it.path, it.weight, it.split) for it in items] == [(root / "npz" / "x.npz", 1.0, "test")]
    assert load_dataset("tmc", root / "data" / "train_dev_test.csv", base_dir=root) == tmc(root)
    with pytest.raises(DatasetLayoutError, match="not found"):  # relative to the CSV's folder by default
        tmc(root / "data" / "train_dev_test.csv")


@pytest.mark.parametrize(
    "csv_text, match",
    [
        ("filename,label,split\na.mp4,0,train\n", "expected columns"),
        ("filename,filepath,label,split\na.mp4,npz,2,train\n", "label must be 0"),
        ("filename,filepath,label,split\na.mp4,npz,0,holdout\n", "unknown split 'holdout'"),
        ("filename,filepath,label,split\nq.mp4,npz,0,train\n", "not found: .*q.npz"),
        ("filename,filepath,label,split,weight\na.mp4,npz,0,train,-1\n", "weight"),
        ("filename,filepath,label,split\na.mp4,npz,0,train\na.mp4,npz,0,train\n", "duplicate"),
    ],
)
def test_layout_errors(root, csv_text, match):
    (root / "data" / "train_dev_test.csv").write_text(csv_text)
    with pytest.raises(DatasetLayoutError, match=match) as err:
        tmc(root)
    assert str(root) in str(err.value)


def test_no_csv(tmp_path):
    with pytest.raises(DatasetLayoutError, match="no TMC CSV"):
        tmc(tmp_path)
    (tmp_path / "one.csv").write_text("")
    (tmp_path / "two.csv").write_text("")
    with pytest.raises(DatasetLayoutError, match="several CSVs"):
        tmc(tmp_path)
