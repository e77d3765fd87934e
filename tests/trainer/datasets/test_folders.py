"""trainer.datasets.folders: real/fake video folders and seed-4 image folders."""

from __future__ import annotations

from collections import Counter

import pytest

from trainer.datasets import DatasetLayoutError, ImageItem, VideoItem, count, group_leaks, load_dataset
from trainer.datasets.folders import image_folder, video_folder


def test_video_pool_default_split(touch):
    root = touch(["real/r1.mp4", "real/r2.MOV", "fake/f1.mp4", "fake/notes.txt"])
    items = video_folder(root)
    assert [(it.video_id, it.label, it.split, it.method) for it in items] == [
        ("f1", 1, "test", "fake"), ("r1", 0, "test", "real"), ("r2", 0, "test", "real"),
    ]
    assert all(isinstance(it, VideoItem) and it.group == it.video_id for it in items)
    assert {it.split for it in video_folder(root, default_split="train")} == {"train"}


def test_video_pool_split_fraction(touch):
    root = touch([f"real/r{i:02d}.mp4" for i in range(10)] + [f"fake/f{i:02d}.mp4" for i in range(10)])
    items = load_dataset("video_folder", root, split_fraction=(0.6, 0.2, 0.2), seed=4)
    assert Counter(it.split for it in items) == {"train": 12, "val": 4, "test": 4}
    assert not group_leaks(items)
    assert items == video_folder(root, split_fraction=(0.6, 0.2, 0.2), seed=4)
    assert items != video_folder(root, split_fraction=(0.6, 0.2, 0.2), seed=5)


def test_video_split_folders_and_seed3_numeric_labels(touch):
    # seed 3 (spec §3.1): train/{0,1} with 1 = REAL, 0 = fake
    root = touch(["train/1/real_a.mp4", "train/0/fake_a.mp4", "dev/1/real_b.mp4", "test/0/fake_b.mp4"])
    items = video_folder(root, numeric_labels="1=real")
    got = {it.video_id: (it.label, it.split) for it in items}
    assert got == {"real_a": (0, "train"), "fake_a": (1, "train"), "real_b": (0, "val"), "fake_b": (1, "test")}
    assert {it.video_id: it.label for it in video_folder(root, numeric_labels="1=fake")}["real_a"] == 1
    with pytest.raises(DatasetLayoutError, match="numeric_labels"):
        video_folder(root)
    with pytest.raises(ValueError, match="split_fraction"):
        video_folder(root, numeric_labels="1=real", split_fraction=(0.8, 0.1, 0.1))


def test_image_folder_seed4_layout(touch):
    # seed 4 (spec §4.4): <ds>/{train,test[,val]}/{real,fake}; its code used real = 1, fake = 0
    root = touch(
        [
            "train/real/000_0003.jpg", "train/real/000_0007.jpg", "train/fake/001_002_0001.png",
            "val/real/005_0010.jpg", "test/real/010_0000.jpg", "test/fake/011_012_0004.jpg",
            "test/fake/vid9/0001_0.png", "test/fake/vid9/0002_0.png", "test/fake/readme.md",
        ]
    )
    items = image_folder(root)
    assert all(isinstance(it, ImageItem) for it in items)
    assert count(items) == {("train", 0): 2, ("train", 1): 1, ("val", 0): 1, ("test", 0): 1, ("test", 1): 3}
    groups = {it.path.name: it.group for it in items}
    assert groups["000_0003.jpg"] == groups["000_0007.jpg"] == "000"  # frames of one video
    assert groups["011_012_0004.jpg"] == "011_012"
    assert groups["0001_0.png"] == groups["0002_0.png"] == "vid9"  # per-video sub-folder
    assert {it.method for it in items} == {"real", "fake"}
    assert not group_leaks(items)


@pytest.mark.parametrize(
    "adapter, files, match",
    [
        (video_folder, ["real.mp4", "videos/a.mp4"], "no class folders"),
        (video_folder, ["real/a.txt", "fake/b.txt"], "no videos"),
        (image_folder, ["real/a.jpg", "fake/b.jpg"], "no split folders"),
        (image_folder, ["train/pics/a.jpg"], "no class folders"),
        (image_folder, ["train/real/a.mp4"], "no images"),
    ],
)
def test_layout_errors(touch, tmp_path, adapter, files, match):
    root = touch(files, root=tmp_path / "ds")
    with pytest.raises(DatasetLayoutError, match=match) as err:
        adapter(root)
    assert str(root) in str(err.value)


def test_missing_root(tmp_path):
    for adapter in (video_folder, image_folder):
        with pytest.raises(DatasetLayoutError, match="does not exist"):
            adapter(tmp_path / "nope")
