"""trainer.datasets.vision: the VISION camera-model adapter and the seed's folds (spec §1.1-§1.2).

The module fixture builds a full VISION tree of **empty files** from the
per-device table of spec §1.1 (35 devices x 9 categories, 1916 entries incl.
the two D31 ``.bmp``): every non-flat video of the 31 kept devices is named as
in the shipped fold CSVs, flat videos and excluded devices get synthetic names.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from trainer.datasets import ADAPTERS, CAMERA_ADAPTERS, DatasetLayoutError
from trainer.datasets.vision import (
    CONTENTS,
    VISION_CLASSES,
    VISION_SPLITS_DIR,
    VisionVideo,
    content_of,
    vision,
    vision_classes,
    vision_folds,
    vision_splits_dir,
)

# spec §1.1 per-device video counts: flat indoor outdoor flatWA indoorWA outdoorWA flatYT indoorYT outdoorYT
TABLE = """
D01_Samsung_GalaxyS3Mini 4 6 12 4 6 12 4 6 6
D02_Apple_iPhone4s 4 3 6 4 3 6 4 3 6
D03_Huawei_P9 7 6 6 7 6 6 7 6 6
D04_LG_D290 7 6 6 7 5 6 7 6 6
D05_Apple_iPhone5c 7 6 6 7 6 6 7 6 6
D06_Apple_iPhone6 5 6 6 5 6 6 4 5 6
D07_Lenovo_P70A 7 6 6 7 6 6 7 6 6
D08_Samsung_GalaxyTab3 13 12 12 12 12 12 13 9 12
D09_Apple_iPhone4 7 6 6 7 6 6 7 6 6
D10_Apple_iPhone4s 4 6 5 4 6 5 4 6 5
D11_Samsung_GalaxyS3 7 6 6 7 6 6 7 6 6
D12_Sony_XperiaZ1Compact 7 6 6 7 6 6 7 6 6
D13_Apple_iPad2 4 6 6 4 6 6 4 6 6
D14_Apple_iPhone5c 7 6 6 7 6 6 7 6 6
D15_Apple_iPhone6 7 6 5 7 6 5 7 6 5
D16_Huawei_P9Lite 7 6 6 7 6 6 7 6 6
D17_Microsoft_Lumia640LTE 4 3 3 4 3 3 4 3 3
D18_Apple_iPhone5c 5 4 4 5 4 4 5 4 4
D19_Apple_iPhone6Plus 7 6 6 7 6 6 7 6 6
D20_Apple_iPadMini 4 6 6 4 6 6 4 6 6
D21_Wiko_Ridge4G 4 3 4 3 3 4 4 3 4
D22_Samsung_GalaxyTrendPlus 4 6 6 4 5 6 4 6 6
D23_Asus_Zenfone2Laser 7 6 6 7 6 6 7 6 6
D24_Xiaomi_RedmiNote3 7 6 6 7 6 6 7 6 6
D25_OnePlus_A3000 7 6 6 7 6 6 7 6 6
D26_Samsung_GalaxyS3Mini 4 6 6 4 6 6 4 6 6
D27_Samsung_GalaxyS5 7 6 6 7 6 6 7 6 6
D28_Huawei_P8 7 6 6 7 6 6 7 6 6
D29_Apple_iPhone5 7 6 6 7 6 6 7 6 6
D30_Huawei_Honor5c 7 6 6 7 6 6 7 6 6
D31_Samsung_GalaxyS4Mini 9 6 6 7 6 6 7 6 6
D32_OnePlus_A3003 7 6 6 7 6 6 7 6 6
D33_Huawei_Ascend 7 6 6 7 6 6 6 6 6
D34_Apple_iPhone5 13 12 7 13 12 7 2 10 6
D35_Samsung_GalaxyTabA 4 6 6 4 6 6 4 6 6
"""
CATEGORIES = ("flat", "indoor", "outdoor", "flatWA", "indoorWA", "outdoorWA", "flatYT", "indoorYT", "outdoorYT")
EXCLUDED = {"D04", "D12", "D17", "D22"}
MOTIONS = ("still", "move", "panrot")
MOV_MP4 = {"D06_V_indoorWA_move_0002", "D06_V_outdoorWA_panrot_0002"}  # spec §1.1: *.mov.mp4

# spec §1.1 class sizes in label order
SIZES_NATIVE_WA = [30, 20, 12, 32, 23, 12, 24, 12, 12, 12, 12, 12, 12, 7, 12, 12, 12, 12, 12, 31, 12, 12, 12, 12, 12]
SIZES_YT = [24, 20, 12, 32, 22, 12, 21, 12, 12, 12, 12, 12, 12, 7, 12, 12, 12, 12, 12, 28, 12, 12, 12, 12, 12]
FOLD_SIZES = {  # spec §1.2: (train, val, test) per fold
    "Native": [(275, 31, 77), (275, 31, 77), (275, 31, 77), (276, 31, 76), (276, 31, 76)],
    "WA": [(275, 31, 77), (275, 31, 77), (275, 31, 77), (276, 31, 76), (276, 31, 76)],
    "YT": [(266, 30, 74)] * 5,
}


def _csv_stems() -> dict[tuple[str, str], list[str]]:
    """``{(device, category): [stems]}`` from the shipped fold CSVs (all 5 test folds = all videos)."""
    out: dict[tuple[str, str], list[str]] = {}
    for content in CONTENTS:
        for k in range(5):
            with (VISION_SPLITS_DIR / content / f"test_fold{k}.csv").open() as fh:
                for row in csv.DictReader(fh):
                    stem = row["dev_alphabetical_id"]
                    out.setdefault((stem[:3], stem.split("_")[2]), []).append(stem)
    return out


def _ext(stem: str, device: str, category: str) -> str:
    if stem in MOV_MP4:
        return ".mov.mp4"
    if category in ("indoor", "outdoor") and device in ("D02", "D09", "D10"):
        return ".mov"
    if category in ("indoor", "outdoor") and device == "D21":
        return ".3gp"
    return ".mp4"


@pytest.fixture(scope="module")
def vision_root(tmp_path_factory) -> Path:
    """A full VISION tree (empty files), per the §1.1 table."""
    root = tmp_path_factory.mktemp("vision")
    real = _csv_stems()
    n_entries = 0
    for line in TABLE.strip().splitlines():
        folder, *counts = line.split()
        device = folder[:3]
        for category, n in zip(CATEGORIES, map(int, counts)):
            cat_dir = root / folder / "videos" / category
            cat_dir.mkdir(parents=True)
            if device not in EXCLUDED and not category.startswith("flat"):
                stems = real[(device, category)]
                assert len(stems) == n, (device, category)  # shipped CSVs agree with the §1.1 table
            else:
                n_videos = n - 2 if (device, category) == ("D31", "flat") else n
                stems = [f"{device}_V_{category}_{MOTIONS[i % 3]}_{i // 3 + 1:04d}" for i in range(n_videos)]
            for stem in stems:
                (cat_dir / (stem + _ext(stem, device, category))).write_bytes(b"")
            n_entries += len(stems)
        (root / folder / "images" / "flat").mkdir(parents=True)
        (root / folder / "images" / "flat" / f"{device}_I_flat_0001.jpg").write_bytes(b"")
    prnu = root / "D31_Samsung_GalaxyS4Mini" / "videos" / "flat" / "frames_for_prnu"
    prnu.mkdir()
    for i in (1, 2):
        (prnu / f"tmp000{i}.bmp").write_bytes(b"")
    assert n_entries + 2 == 1916  # spec §1.1 total
    return root


@pytest.fixture(scope="module")
def all_videos(vision_root) -> list[VisionVideo]:
    return vision(vision_root)


def test_usable_video_counts(vision_root, all_videos):
    native = vision(vision_root, "Native")
    assert len(native) == 383
    assert Counter(v.category for v in native) == {"indoor": 190, "outdoor": 193}
    assert len(vision(vision_root, content="WA")) == 383
    assert len(vision(vision_root, content="YT")) == 370
    assert Counter(v.content for v in all_videos) == {"Native": 383, "WA": 383, "YT": 370}
    assert not {v.device for v in all_videos} & EXCLUDED
    assert not any("flat" in v.category for v in all_videos)
    assert {v.motion for v in all_videos} == set(MOTIONS)
    assert all(v.path.is_file() and v.path.suffix.lower() in (".mp4", ".mov", ".3gp") for v in all_videos)
    with pytest.raises(ValueError, match="content"):
        vision(vision_root, "native")


def test_mov_mp4_stem_and_fields(all_videos):
    by_stem = {(v.content, v.stem): v for v in all_videos}
    v = by_stem[("WA", "D06_V_indoorWA_move_0002")]
    assert v.path.name == "D06_V_indoorWA_move_0002.mov.mp4"
    assert (v.device, v.device_folder, v.class_name, v.label) == ("D06", "D06_Apple_iPhone6", "D06-D15", 4)
    assert (v.category, v.motion, v.content) == ("indoorWA", "move", "WA")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.label = 0  # type: ignore[misc]
    assert [content_of(c) for c in ("indoor", "outdoorWA", "flatYT")] == ["Native", "WA", "YT"]


def test_merged_classes_and_sizes(all_videos):
    assert vision_classes() == list(VISION_CLASSES)
    assert VISION_CLASSES[:5] == ("D01-D26", "D02-D10", "D03", "D05-D14-D18", "D06-D15")
    assert VISION_CLASSES[19] == "D29-D34" and VISION_CLASSES[24] == "D35" and len(VISION_CLASSES) == 25
    for content, sizes in (("Native", SIZES_NATIVE_WA), ("WA", SIZES_NATIVE_WA), ("YT", SIZES_YT)):
        labels = Counter(v.label for v in all_videos if v.content == content)
        assert [labels[i] for i in range(25)] == sizes, content
    assert all(VISION_CLASSES[v.label] == v.class_name for v in all_videos)
    assert {v.class_name for v in all_videos if v.device in ("D05", "D14", "D18")} == {"D05-D14-D18"}


@pytest.mark.parametrize("content", CONTENTS)
def test_seed_folds(all_videos, content):
    tests = []
    for k, sizes in enumerate(FOLD_SIZES[content]):
        f = vision_folds(all_videos, content, k)
        assert (len(f["train"]), len(f["val"]), len(f["test"])) == sizes
        stems = {s: {v.stem for v in f[s]} for s in ("train", "val", "test")}
        assert not stems["train"] & stems["test"] and not stems["val"] & stems["test"]
        assert not stems["train"] & stems["val"]
        assert all(v.content == content for s in f.values() for v in s)
        tests += f["test"]
    pool = [v for v in all_videos if v.content == content]
    assert len(tests) == len(set(tests)) == len(pool) and set(tests) == set(pool)  # test folds partition


def test_download_layout_and_splits_check(touch, tmp_path):
    root = touch(
        [
            "VISION/dataset/D03_Huawei_P9/videos/indoor/D03_V_indoor_move_0001.mp4",
            "VISION/dataset/D03_Huawei_P9/videos/flat/D03_V_flat_still_0001.mp4",
            "VISION/dataset/D03_Huawei_P9/videos/indoor/notes.txt",
            "VISION/dataset/D12_Sony_XperiaZ1Compact/videos/indoor/D12_V_indoor_move_0001.mp4",
            "VISION/dataset/D35_Samsung_GalaxyTabA/images/flat/D35_I_flat_0001.jpg",
        ],
        root=tmp_path / "dl",
    )
    (v,) = vision(root)
    assert (v.stem, v.label, v.content) == ("D03_V_indoor_move_0001", 2, "Native")
    assert vision(root / "VISION") == [v]  # root = the VISION folder
    # a partial download (e.g. the base subset, §1.1 quirk) fails early when asked to check the folds
    with pytest.raises(DatasetLayoutError, match="Native videos listed but not in the dataset") as err:
        vision(root, splits_dir=VISION_SPLITS_DIR)
    assert err.value.path == VISION_SPLITS_DIR / "Native" / "train_fold0.csv"


def test_missing_video_and_wrong_label(all_videos, tmp_path):
    dropped = [v for v in all_videos if v.stem != "D26_V_indoor_move_0001"]
    with pytest.raises(DatasetLayoutError, match="1 Native videos listed but not in the dataset: D26_V_indoor_move_0001") as err:
        vision_folds(dropped, "Native", 0)
    assert err.value.path == VISION_SPLITS_DIR / "Native" / "test_fold0.csv"  # the video is in test fold 0
    relabelled = [dataclasses.replace(v, label=5) if v.stem == "D26_V_indoor_move_0001" else v for v in all_videos]
    with pytest.raises(DatasetLayoutError, match=r"D26_V_indoor_move_0001: label 0 in the list but 5") as err:
        vision_folds(relabelled, "Native", 0)
    assert err.value.path.name == "test_fold0.csv"
    with pytest.raises(DatasetLayoutError, match="fold list not found") as err:
        vision_folds(all_videos, "YT", 5)
    assert err.value.path.name == "train_fold5.csv"
    bad = tmp_path / "splits" / "Native"
    bad.mkdir(parents=True)
    (bad / "train_fold0.csv").write_text("video,label\nD03_V_indoor_move_0001,2\n")
    with pytest.raises(DatasetLayoutError, match="header"):
        vision_folds(all_videos, "Native", 0, splits_dir=tmp_path / "splits")


@pytest.mark.parametrize(
    "files, match",
    [
        ([], "no device folders"),
        (["D03_Huawei_P9/D03_V_indoor_move_0001.mp4"], "no device folders"),
        (["D03_Huawei_P9/videos/indoor/clip.mp4"], "not a VISION video name"),
        (["D03_Huawei_P9/videos/indoor/D05_V_indoor_move_0001.mp4"], "name says D05/indoor"),
        (["D03_Huawei_P9/videos/outdoor/D03_V_indoor_move_0001.mp4"], "name says D03/indoor"),
        (["D36_Nokia_X/videos/indoor/D36_V_indoor_move_0001.mp4"], "device 'D36' has no class"),
        (["D03_Huawei_P9/videos/flat/D03_V_flat_move_0001.mp4"], "no usable videos"),
        (["D03_Huawei_P9/videos/indoor/D03_V_indoor_move_0001.mp4",
          "D03_Huawei_P9/videos/indoor/D03_V_indoor_move_0001.mov"], "also used by"),
    ],
)
def test_layout_errors(touch, tmp_path, files, match):
    root = tmp_path / "ds"
    root.mkdir()
    touch(files, root=root)
    with pytest.raises(DatasetLayoutError, match=match) as err:
        vision(root)
    assert str(root) in str(err.value)


def test_missing_root_and_registry(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        vision(tmp_path / "nope")
    assert CAMERA_ADAPTERS == {"vision": vision} and "vision" not in ADAPTERS
    readme = (VISION_SPLITS_DIR / "README.md").read_text()
    assert "ckorgial/XAIDevIDFusion" in readme and "Copied into the trainer" in readme
    assert (VISION_SPLITS_DIR / "LICENSE-Apache-2.0").read_text().lstrip().startswith("Apache License")
    assert len(list(VISION_SPLITS_DIR.glob("*/*_fold*.csv"))) == 45


def _write_fold(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("dev_alphabetical_id,dev_numerical_id\n" + "".join(f"{s},{y}\n" for s, y in rows))


def test_generic_dataset_json_tree(touch, tmp_path):
    """Simulated devices: dataset.json overrides classes, exclusions and the fold lists."""
    root = tmp_path / "sim"
    files = [f"D0{d}_Sim_{d}/videos/{cat}/D0{d}_V_{cat}_still_000{i}.mp4"
             for d in (1, 2, 3, 4) for cat in ("indoor", "outdoorYT", "flat") for i in (1, 2)]
    touch(files, root=root)
    spec = {"name": "simcam", "device_classes": {"D01": "camB", "D02": "camA", "D03": "camA", "D04": "camC"},
            "excluded_devices": ["D04"], "splits_dir": "splits"}
    (root / "dataset.json").write_text(json.dumps(spec))
    assert vision_classes(root) == ["camA", "camB"]
    assert vision_splits_dir(root) == root / "splits" and vision_splits_dir() == VISION_SPLITS_DIR
    # no fold lists yet: the listing works, the folds say which file is missing
    videos = vision(root)
    assert Counter((v.content, v.class_name, v.label) for v in videos) == {
        ("Native", "camA", 0): 4, ("Native", "camB", 1): 2, ("YT", "camA", 0): 4, ("YT", "camB", 1): 2,
    }
    with pytest.raises(DatasetLayoutError, match="fold list not found") as err:
        vision_folds(videos, "Native", 0)
    assert err.value.path == root / "splits" / "Native" / "train_fold0.csv"
    native = sorted(v.stem for v in videos if v.content == "Native")
    label = {v.stem: v.label for v in videos}
    _write_fold(root / "splits/Native/train_fold0.csv", [(s, label[s]) for s in native[:4]])
    _write_fold(root / "splits/Native/val_fold0.csv", [(native[4], label[native[4]])])
    _write_fold(root / "splits/Native/test_fold0.csv", [(native[5], label[native[5]])])
    folds = vision_folds(vision(root, "Native"), "Native", 0)  # splits_dir found from dataset.json
    assert [v.stem for v in folds["train"]] == native[:4] and [v.stem for v in folds["test"]] == native[5:]
    # explicit arguments override dataset.json; a wrong label in a fold list is caught by the listing
    merged = vision(root, "Native", device_classes={"D01": "camA", "D02": "camA", "D03": "camA"},
                    excluded_devices=["D04"], splits_dir=tmp_path / "none")
    assert {v.label for v in merged} == {0}
    _write_fold(root / "splits/Native/test_fold0.csv", [(native[5], 1 - label[native[5]])])
    with pytest.raises(DatasetLayoutError, match="label") as err:
        vision(root, "Native")
    assert err.value.path == root / "splits" / "Native" / "test_fold0.csv"
    (root / "dataset.json").write_text(json.dumps({"device_classes": ["D01"]}))
    with pytest.raises(DatasetLayoutError, match="device_classes") as err:
        vision(root)
    assert err.value.path == root / "dataset.json"
