"""trainer.datasets.faceforensics: FF++ layout, labels, official and fallback splits, groups."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from trainer.datasets import FFPP_METHODS, DatasetLayoutError, count, group_leaks, load_dataset
from trainer.datasets.faceforensics import faceforensics


def _pairs(n_ids: int, seed: int = 0) -> list[tuple[str, str]]:
    """A random perfect matching of ids 000..n-1, like FF++'s target/source pairs."""
    ids = [f"{i:03d}" for i in np.random.default_rng(seed).permutation(n_ids)]
    return [(ids[k], ids[k + 1]) for k in range(0, n_ids, 2)]


def _ffpp(touch, pairs, methods=FFPP_METHODS, comps=("c23",)):
    files = []
    for c in comps:
        for a, b in pairs:
            files += [f"original_sequences/youtube/{c}/videos/{i}.mp4" for i in (a, b)]
            for m in methods:
                files += [f"manipulated_sequences/{m}/{c}/videos/{v}.mp4" for v in (f"{a}_{b}", f"{b}_{a}")]
    return touch(files)


def test_fallback_split_is_720_140_140_by_sorted_id(touch):
    pairs = _pairs(1000)
    root = _ffpp(touch, pairs, methods=("Deepfakes",))
    items = faceforensics(root)
    real = [it for it in items if it.label == 0]
    assert Counter(it.split for it in real) == {"train": 720, "val": 140, "test": 140}
    assert Counter(it.split for it in items if it.label == 1) == {"train": 720, "val": 140, "test": 140}
    assert not group_leaks(items)
    # by sorted smallest id: the pair holding 000 comes first, so it is train
    by_id = {it.video_id: it for it in real}
    assert by_id["000"].split == "train"
    assert faceforensics(root) == items


def test_labels_methods_groups(touch):
    pairs = _pairs(20, seed=1)
    root = _ffpp(touch, pairs)
    items = faceforensics(root)
    assert len(items) == 20 + 20 * len(FFPP_METHODS)
    assert count(items) == {
        ("train", 0): 14, ("val", 0): 4, ("test", 0): 2,
        ("train", 1): 70, ("val", 1): 20, ("test", 1): 10,
    }
    for it in items:
        assert it.dataset == "ffpp" and it.compression == "c23" and it.path.is_file()
        assert (it.label == 0) == (it.method == "Original")
        assert it.method in FFPP_METHODS + ("Original",)
    a, b = pairs[0]
    group = "_".join(sorted((a, b)))
    mates = {(it.method, it.video_id) for it in items if it.group == group}
    assert ("Original", a) in mates and ("Original", b) in mates and ("Deepfakes", f"{a}_{b}") in mates
    assert len(mates) == 2 + 2 * len(FFPP_METHODS)
    assert not group_leaks(items)


def test_official_split_files(touch, tmp_path, caplog):
    pairs = _pairs(12, seed=2)
    root = _ffpp(touch, pairs, methods=("Deepfakes", "FaceSwap"), comps=("c23", "c40"))
    touch(["original_sequences/youtube/c23/videos/500.mp4"])  # in no split file -> left out
    splits = tmp_path / "splits"
    splits.mkdir()
    layout = {"train": pairs[:4], "val": pairs[4:5], "test": pairs[5:6]}
    for name, ps in layout.items():
        (splits / f"{name}.json").write_text(json.dumps([list(p) for p in ps]))
    items = load_dataset("ffpp", root, compression=["c23", "c40"], splits_dir=splits, methods=["Deepfakes", "FaceSwap"])
    assert "in no split" in caplog.text
    assert {it.compression for it in items} == {"c23", "c40"}
    per_comp = count(it for it in items if it.compression == "c40")
    assert per_comp == {("train", 0): 8, ("val", 0): 2, ("test", 0): 2, ("train", 1): 16, ("val", 1): 4, ("test", 1): 4}
    for split, ps in layout.items():
        for a, b in ps:
            got = {it.split for it in items if it.video_id in (a, b, f"{a}_{b}", f"{b}_{a}")}
            assert got == {split}
    assert "500" not in {it.video_id for it in items}
    assert not group_leaks(items)


def test_only_present_methods_by_default(touch):
    root = _ffpp(touch, _pairs(4), methods=("Face2Face",))
    assert {it.method for it in faceforensics(root)} == {"Original", "Face2Face"}
    with pytest.raises(DatasetLayoutError, match="Deepfakes"):
        faceforensics(root, methods=["Deepfakes"])


@pytest.mark.parametrize(
    "breakage, match",
    [
        ("no_root", "not an FF\\+\\+ root"),
        ("no_originals", "original videos"),
        ("no_fakes", "no manipulated_sequences"),
        ("bad_name", "<target>_<source>"),
        ("bad_compression", "unknown compression"),
        ("bad_method", "unknown FF\\+\\+ method"),
        ("missing_split_file", "test.json is missing"),
        ("id_in_two_splits", "in both"),
    ],
)
def test_layout_errors(touch, tmp_path, breakage, match):
    root = tmp_path / "ffpp"
    kw = {}
    if breakage == "no_root":
        touch(["something/else.mp4"], root=root)
    elif breakage == "no_originals":
        touch(["manipulated_sequences/Deepfakes/c23/videos/000_001.mp4"], root=root)
    elif breakage == "no_fakes":
        touch(["original_sequences/youtube/c23/videos/000.mp4", "manipulated_sequences/x.txt"], root=root)
    else:
        _ffpp(lambda files: touch(files, root=root), _pairs(4))
        if breakage == "bad_name":
            touch(["manipulated_sequences/Deepfakes/c23/videos/000-001.mp4"], root=root)
        elif breakage == "bad_compression":
            kw = {"compression": "c99"}
        elif breakage == "bad_method":
            kw = {"methods": ["DeepFaceLab"]}
        else:
            splits = tmp_path / "splits"
            splits.mkdir()
            (splits / "train.json").write_text('[["000", "001"]]')
            (splits / "val.json").write_text('[["001", "002"]]' if breakage == "id_in_two_splits" else "[]")
            if breakage == "id_in_two_splits":
                (splits / "test.json").write_text("[]")
            kw = {"splits_dir": splits}
    with pytest.raises(DatasetLayoutError, match=match) as err:
        faceforensics(root, **kw)
    assert str(tmp_path) in str(err.value)
