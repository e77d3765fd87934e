"""trainer.datasets: registry, item types, split helpers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trainer.datasets import (
    ADAPTERS,
    DatasetLayoutError,
    VideoItem,
    assign_group_splits,
    group_leaks,
    load_dataset,
    normalise_split,
)


def test_registry_names():
    assert set(ADAPTERS) == {"ffpp", "celebdf", "dfdc", "tmc", "video_folder", "image_folder"}
    with pytest.raises(KeyError, match="known: celebdf, dfdc, ffpp"):
        load_dataset("faceforensics", "/nowhere")


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_adapter_rejects_an_empty_folder(name, tmp_path):
    with pytest.raises(DatasetLayoutError) as err:
        load_dataset(name, tmp_path)
    assert err.value.path.is_relative_to(tmp_path) and str(tmp_path) in str(err.value)


def test_items_are_frozen_and_validated(tmp_path):
    it = VideoItem(tmp_path / "a.mp4", 1, "train", "x", None, None, "a", "a")
    assert it.weight == 1.0
    with pytest.raises(AttributeError):
        it.label = 0  # type: ignore[misc]
    with pytest.raises(ValueError, match="label"):
        VideoItem(Path("a"), 2, "train", "x", None, None, "a", "a")
    with pytest.raises(ValueError, match="split"):
        VideoItem(Path("a"), 0, "dev", "x", None, None, "a", "a")


def test_split_helpers():
    assert [normalise_split(s) for s in ("Train", "dev", "VAL", "validation", "test")] == [
        "train", "val", "val", "val", "test",
    ]
    with pytest.raises(DatasetLayoutError):
        normalise_split("holdout")
    groups = [f"g{i}" for i in range(7)]
    a = assign_group_splits(groups, (0.6, 0.2, 0.2), seed=0)
    assert a == assign_group_splits(reversed(groups), (0.6, 0.2, 0.2), seed=0)  # order-independent
    assert Counter(a.values()) == {"train": 4, "val": 2, "test": 1}  # cumulative rounding: 4.2 -> 4, 5.6 -> 6
    b = assign_group_splits(groups[:5], (0.9, 0.1, 0.0), seed=None)  # a zero fraction stays empty
    assert list(b.values()) == ["train"] * 4 + ["val"] and "test" not in b.values()
    with pytest.raises(ValueError):
        assign_group_splits(groups, (0.5, 0.5, 0.5))
    rows = [("a", "train", "p"), ("b", "test", "p"), ("c", "test", "q")]
    items = [VideoItem(Path(n), 0, s, "x", None, None, n, g) for n, s, g in rows]
    assert group_leaks(items) == {"p": {"train", "test"}}
