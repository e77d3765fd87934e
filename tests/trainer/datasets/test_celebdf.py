"""trainer.datasets.celebdf: Celeb-DF v2 folders, official test list (1 = real), groups."""

from __future__ import annotations

import pytest

from trainer.datasets import DatasetLayoutError, count, group_leaks, load_dataset
from trainer.datasets.celebdf import celebdf

FILES = [
    "Celeb-real/id0_0000.mp4",
    "Celeb-real/id0_0001.mp4",
    "Celeb-real/id1_0000.mp4",
    "Celeb-real/id2_0000.mp4",
    "Celeb-real/id3_0000.mp4",
    "Celeb-synthesis/id0_id1_0000.mp4",
    "Celeb-synthesis/id0_id2_0001.mp4",
    "Celeb-synthesis/id1_id0_0000.mp4",
    "Celeb-synthesis/id2_id0_0000.mp4",
    "Celeb-synthesis/id3_id1_0000.mp4",
    "YouTube-real/00000.mp4",
    "YouTube-real/00001.mp4",
]
# seed 3 / official convention: 1 = real, 0 = fake
TEST_LIST = "1 Celeb-real/id2_0000.mp4\n0 Celeb-synthesis/id2_id0_0000.mp4\n1 YouTube-real/00001.mp4\n\n"


@pytest.fixture
def root(touch, tmp_path):
    touch(FILES)
    (tmp_path / "List_of_testing_videos.txt").write_text(TEST_LIST)
    return tmp_path


def test_labels_splits_methods_groups(root):
    items = celebdf(root)
    assert len(items) == len(FILES)
    assert count(items) == {("train", 0): 5, ("train", 1): 4, ("test", 0): 2, ("test", 1): 1}
    by_id = {it.video_id: it for it in items}
    assert by_id["id2_0000"].split == "test" and by_id["id2_0000"].label == 0
    assert by_id["id2_id0_0000"].split == "test" and by_id["id2_id0_0000"].label == 1  # list "0" -> fake
    assert by_id["id0_id1_0000"].method == "Celeb-synthesis" and by_id["00000"].method == "YouTube-real"
    # a fake shares the group of the real footage it was made from (the target identity)
    assert by_id["id0_id1_0000"].group == by_id["id0_0000"].group == "id0"
    assert by_id["00001"].group == "youtube_00001"
    assert {it.dataset for it in items} == {"celebdf"} and all(it.compression is None for it in items)
    assert not group_leaks(items)  # in this tree id2 lives only in the test list


def test_val_carve_out_is_group_disjoint(root):
    items = load_dataset("celebdf", root, val_fraction=0.5, seed=3)
    assert {it.split for it in items} == {"train", "val", "test"}
    assert [it for it in items if it.video_id == "id2_0000"][0].split == "test"
    leaks = group_leaks(it for it in items if it.split != "test")
    assert not leaks
    assert items == celebdf(root, val_fraction=0.5, seed=3)


def test_official_list_may_share_identities_with_train(root, touch):
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0001.mp4\n")
    leaks = group_leaks(celebdf(root))
    assert leaks == {"id0": {"train", "test"}}  # reported, not hidden


@pytest.mark.parametrize(
    "breakage, match",
    [
        ("missing_folder", "YouTube-real"),
        ("missing_list", "List_of_testing_videos.txt"),
        ("bad_line", "line 2"),
        ("label_contradicts_folder", "contradicts folder"),
        ("listed_but_missing", "not found: .*id9_0000.mp4"),
    ],
)
def test_layout_errors(root, breakage, match):
    if breakage == "missing_folder":
        for p in (root / "YouTube-real").iterdir():
            p.unlink()
        (root / "YouTube-real").rmdir()
    elif breakage == "missing_list":
        (root / "List_of_testing_videos.txt").unlink()
    elif breakage == "bad_line":
        (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id2_0000.mp4\nfake Celeb-real/id0_0000.mp4\n")
    elif breakage == "label_contradicts_folder":
        (root / "List_of_testing_videos.txt").write_text("1 Celeb-synthesis/id2_id0_0000.mp4\n")
    else:
        (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id9_0000.mp4\n")
    with pytest.raises(DatasetLayoutError, match=match) as err:
        celebdf(root)
    assert str(root) in str(err.value)
    if breakage == "listed_but_missing":
        assert len(celebdf(root, require_listed=False)) == len(FILES)
