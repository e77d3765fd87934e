"""VISION camera-model identification dataset (seed 1, spec/seeds.md §1.1-§1.2).

Layout (the per-device folders of the VISION download)::

    <root>/<Dxx_Brand_Model>/videos/<category>/<Dxx>_V_<category>_<motion>_<NNNN>.<ext>
    <root>/VISION/dataset/<Dxx_Brand_Model>/videos/...      (downloadVISION.py layout, detected)
    <root>/dataset/<Dxx_Brand_Model>/videos/...             (root = the VISION folder, detected)

* ``<category>``: ``flat indoor outdoor`` (Native), ``flatWA indoorWA outdoorWA``
  (WhatsApp), ``flatYT indoorYT outdoorYT`` (YouTube); ``<motion>``: ``still``,
  ``move`` or ``panrot``; ``<ext>``: mp4, mov, 3gp (any case). Two D06 files are
  named ``*.mov.mp4``; their **stem** drops the ``.mov`` too, as the split CSVs
  list them (``D06_V_indoorWA_move_0002``).
* Only files directly inside ``videos/<category>/`` are listed, and only those
  with a video extension: ``frames_for_prnu/*.bmp`` (D31) and ``images/`` are
  ignored. A device folder without ``videos/`` (e.g. a ``splits/`` folder) is
  skipped. Files are listed, never opened.
* **Visual content** of a video (§1.2): ``YT`` if ``'YT'`` is in its category,
  else ``WA`` if ``'WA'`` is, else ``Native``.
* **Exclusions** (§1.1): every ``flat*`` category, and devices D04, D12, D17, D22.
* **Class merging** (§1.1, same physical model): D01+D26, D02+D10, D05+D14+D18,
  D06+D15, D29+D34 -> 25 classes named ``D01-D26``, ``D05-D14-D18``, ``D03`` ...;
  the label is the index in the sorted class names (``sklearn.LabelEncoder``),
  exactly :data:`VISION_CLASSES`.

Counts on the full VISION set (§1.1): Native 383 (indoor 190 / outdoor 193),
WA 383, YT 370 usable videos.

Folds (§1.2): :func:`vision_folds` reads the seed's exact fold lists
``<splits_dir>/<content>/{train,val,test}_fold<k>.csv`` (columns
``dev_alphabetical_id,dev_numerical_id`` = video stem, label). The seed's lists
ship with the trainer in ``trainer/data/vision_splits/`` (Apache-2.0, see the
README there); :data:`VISION_SPLITS_DIR` points at them.

**Generic trees** (e.g. simulated devices): a ``<root>/dataset.json`` overrides
the VISION constants::

    {"name": "simcam", "device_classes": {"D01": "D01", "D02": "D02"},
     "excluded_devices": [], "splits_dir": "splits"}

``device_classes`` (required) maps device id -> class name; class names are the
sorted set of the mapped values of the devices not excluded, labels their index;
``excluded_devices`` defaults to none; ``splits_dir`` (optional) is relative to
``root`` and holds CSVs in the same format. Explicit function arguments override
both.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from trainer.datasets.items import DatasetLayoutError, read_json

__all__ = [
    "CONTENTS",
    "VISION_CLASSES",
    "VISION_DEVICE_CLASSES",
    "VISION_EXCLUDED_DEVICES",
    "VISION_SPLITS_DIR",
    "VISION_VIDEO_EXTENSIONS",
    "VisionVideo",
    "content_of",
    "vision",
    "vision_classes",
    "vision_folds",
    "vision_splits_dir",
]

log = logging.getLogger(__name__)

#: The three visual contents of §1.2; contents are never mixed in a split.
CONTENTS = ("Native", "WA", "YT")
#: Video extensions listed (lower case; matched case-insensitively).
VISION_VIDEO_EXTENSIONS = (".mp4", ".mov", ".3gp")
#: Devices the seed excludes everywhere (§1.1; no reason given in its code).
VISION_EXCLUDED_DEVICES = ("D04", "D12", "D17", "D22")
_MERGED = (("D01", "D26"), ("D02", "D10"), ("D05", "D14", "D18"), ("D06", "D15"), ("D29", "D34"))
#: Device id -> merged class name for all 35 VISION devices (§1.1).
VISION_DEVICE_CLASSES: dict[str, str] = {f"D{i:02d}": f"D{i:02d}" for i in range(1, 36)}
for _group in _MERGED:
    VISION_DEVICE_CLASSES.update({d: "-".join(_group) for d in _group})
#: The 25 class names in label order (sorted strings, as ``LabelEncoder``), §1.1.
VISION_CLASSES: tuple[str, ...] = tuple(
    sorted({c for d, c in VISION_DEVICE_CLASSES.items() if d not in VISION_EXCLUDED_DEVICES})
)
#: The seed's fold lists shipped with the trainer (``<content>/{train,val,test}_fold<k>.csv``).
VISION_SPLITS_DIR = Path(__file__).resolve().parent.parent / "data" / "vision_splits"

_SPLIT_NAMES = ("train", "val", "test")
_CSV_COLUMNS = ["dev_alphabetical_id", "dev_numerical_id"]
_NAME = re.compile(r"^(?P<device>[A-Za-z0-9]+)_V_(?P<category>[A-Za-z0-9]+)_(?P<motion>[A-Za-z]+)_(?P<number>\d+)$")


@dataclass(frozen=True)
class VisionVideo:
    """One usable VISION video (or a video of a generic ``dataset.json`` tree).

    Attributes:
        path: the video file.
        stem: the name the split CSVs use, e.g. ``'D06_V_indoorWA_move_0002'``
            (extension, and the ``.mov`` of ``*.mov.mp4``, removed).
        device: device id, e.g. ``'D01'``.
        device_folder: the device folder name, e.g. ``'D01_Samsung_GalaxyS3Mini'``.
        class_name: merged class, e.g. ``'D01-D26'`` (§1.1).
        label: index of ``class_name`` in the sorted class names (int, 0..24 for VISION).
        content: ``'Native'``, ``'WA'`` or ``'YT'`` (§1.2).
        category: the category folder, e.g. ``'indoorWA'``.
        motion: ``'still'``, ``'move'`` or ``'panrot'`` (as named in the file).
    """

    path: Path
    stem: str
    device: str
    device_folder: str
    class_name: str
    label: int
    content: str
    category: str
    motion: str

    def __post_init__(self) -> None:
        if self.content not in CONTENTS:
            raise ValueError(f"content must be one of {CONTENTS}, got {self.content!r}")
        if not isinstance(self.label, int) or self.label < 0:
            raise ValueError(f"label must be an int >= 0, got {self.label!r}")


@dataclass(frozen=True)
class _Config:
    device_classes: dict[str, str]
    excluded: frozenset[str]
    classes: tuple[str, ...]
    splits_dir: Optional[Path]
    name: str


def content_of(category: str) -> str:
    """Visual content of a category or video name (§1.2): ``'YT'``, ``'WA'`` or ``'Native'``.

    ``'YT'`` if the string contains ``YT``, else ``'WA'`` if it contains ``WA``, else ``'Native'``.
    """
    return "YT" if "YT" in category else "WA" if "WA" in category else "Native"


def _check_content(content: Optional[str], allow_none: bool) -> None:
    if content is None and allow_none:
        return
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {CONTENTS}{' or None' if allow_none else ''}, got {content!r}")


def _data_root(root: Path) -> Path:
    """The folder holding the device folders: ``root``, ``root/VISION/dataset`` or ``root/dataset``."""
    for cand in (root, root / "VISION" / "dataset", root / "dataset"):
        if cand.is_dir() and any((d / "videos").is_dir() for d in cand.iterdir() if d.is_dir()):
            return cand
    raise DatasetLayoutError(
        root,
        "no device folders <Dxx_Brand_Model>/videos/<category>/ found "
        "(looked in the folder itself, VISION/dataset/ and dataset/)",
    )


def _config(
    root: Optional[Path],
    device_classes: Optional[Mapping[str, str]] = None,
    excluded_devices: Optional[Iterable[str]] = None,
    splits_dir: Optional[Union[str, Path]] = None,
) -> _Config:
    """VISION constants, overridden by ``root/dataset.json``, overridden by explicit arguments."""
    dc: Mapping[str, str] = VISION_DEVICE_CLASSES
    ex: Iterable[str] = VISION_EXCLUDED_DEVICES
    sd: Optional[Path] = None
    name = "vision"
    spec_path = root / "dataset.json" if root is not None else None
    if spec_path is not None and spec_path.is_file():
        data = read_json(spec_path, dict, "expected a JSON object with device_classes (see trainer.datasets.vision)")
        dc = data.get("device_classes")
        if not isinstance(dc, dict) or not dc or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in dc.items()
        ):
            raise DatasetLayoutError(spec_path, "device_classes must be a non-empty object {device id: class name}")
        ex = data.get("excluded_devices", [])
        if not isinstance(ex, list) or not all(isinstance(d, str) for d in ex):
            raise DatasetLayoutError(spec_path, "excluded_devices must be a list of device ids")
        if data.get("splits_dir") is not None:
            if not isinstance(data["splits_dir"], str):
                raise DatasetLayoutError(spec_path, "splits_dir must be a path relative to the dataset root")
            sd = root / data["splits_dir"]
        name = str(data.get("name") or root.name)
    if device_classes is not None:
        dc = dict(device_classes)
    if excluded_devices is not None:
        ex = excluded_devices
    if splits_dir is not None:
        sd = Path(splits_dir)
    excluded = frozenset(ex)
    classes = tuple(sorted({c for d, c in dc.items() if d not in excluded}))
    if not classes:
        if root is None:
            raise ValueError("no classes left after excluding devices")
        raise DatasetLayoutError(root, "no classes left after excluding devices")
    return _Config(dict(dc), excluded, classes, sd, name)


def vision_classes(root: Optional[Union[str, Path]] = None) -> list[str]:
    """Class names in label order (§1.1).

    Args:
        root: a dataset root; with a ``dataset.json`` its ``device_classes`` decide.
            None (or a plain VISION root) gives the 25 VISION classes.

    Returns:
        Sorted class names; the label of a class is its index.

    Raises:
        DatasetLayoutError: malformed ``dataset.json``.
    """
    return list(_config(Path(root) if root is not None else None).classes)


def vision_splits_dir(root: Optional[Union[str, Path]] = None) -> Optional[Path]:
    """The fold-list folder of a dataset root (§1.2).

    Returns:
        ``root/<splits_dir>`` of a ``dataset.json`` that sets one, None for a
        ``dataset.json`` without it, else :data:`VISION_SPLITS_DIR`.

    Raises:
        DatasetLayoutError: malformed ``dataset.json``.
    """
    if root is None or not (Path(root) / "dataset.json").is_file():
        return VISION_SPLITS_DIR
    return _config(Path(root)).splits_dir


def _stem(path: Path) -> str:
    """File name without its extension, and without a ``.mov`` before ``.mp4`` (D06 quirk, §1.1)."""
    stem = path.name[: -len(path.suffix)]
    if path.suffix.lower() == ".mp4" and stem.lower().endswith(".mov"):
        stem = stem[:-4]
    return stem


def vision(
    root: Union[str, Path],
    content: Optional[str] = None,
    splits_dir: Optional[Union[str, Path]] = None,
    device_classes: Optional[Mapping[str, str]] = None,
    excluded_devices: Optional[Iterable[str]] = None,
) -> list[VisionVideo]:
    """List the usable videos of a VISION (or generic ``dataset.json``) tree, §1.1-§1.2.

    Args:
        root: the dataset folder (device folders directly, or ``VISION/dataset/``
            or ``dataset/`` inside it; see the module docstring).
        content: ``'Native'``, ``'WA'``, ``'YT'``, or None for all three.
        splits_dir: a fold-list folder to check the listing against: every
            ``<splits_dir>/<content>/*_fold<k>.csv`` of a listed content must
            resolve (see :func:`vision_folds`), so an incomplete download fails
            here. None = the ``dataset.json`` ``splits_dir`` if any, else no check.
        device_classes: device id -> class name (default :data:`VISION_DEVICE_CLASSES`
            or ``dataset.json``).
        excluded_devices: device ids to drop (default :data:`VISION_EXCLUDED_DEVICES`,
            or ``dataset.json``'s list, empty when it has none).

    Returns:
        :class:`VisionVideo` list sorted by path; ``flat*`` categories and
        excluded devices left out.

    Raises:
        DatasetLayoutError: root missing; no device folders with ``videos/``;
            a device with no class; a video not named
            ``<device>_V_<category>_<motion>_<NNNN>`` or whose name disagrees with
            its device/category folder; two videos with one stem in a content;
            no videos of ``content``; a fold list that does not resolve.
        ValueError: unknown ``content``.
    """
    _check_content(content, allow_none=True)
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(root, "the dataset folder does not exist")
    cfg = _config(root, device_classes, excluded_devices, splits_dir)
    data_root = _data_root(root)
    label_of = {c: i for i, c in enumerate(cfg.classes)}
    videos: list[VisionVideo] = []
    for dev_dir in sorted(d for d in data_root.iterdir() if d.is_dir() and (d / "videos").is_dir()):
        device = dev_dir.name.split("_")[0]
        if device in cfg.excluded:
            continue
        if device not in cfg.device_classes:
            raise DatasetLayoutError(
                dev_dir, f"device {device!r} has no class: add it to device_classes or excluded_devices"
            )
        class_name = cfg.device_classes[device]
        for cat_dir in sorted(c for c in (dev_dir / "videos").iterdir() if c.is_dir()):
            category = cat_dir.name
            if category.lower().startswith("flat"):
                continue
            cat_content = content_of(category)
            if content is not None and cat_content != content:
                continue
            for path in sorted(cat_dir.iterdir()):
                if not path.is_file() or path.suffix.lower() not in VISION_VIDEO_EXTENSIONS:
                    continue
                stem = _stem(path)
                m = _NAME.match(stem)
                if m is None:
                    raise DatasetLayoutError(
                        path, "not a VISION video name <device>_V_<category>_<motion>_<NNNN>.<ext>"
                    )
                if m["device"] != device or m["category"] != category:
                    raise DatasetLayoutError(
                        path, f"name says {m['device']}/{m['category']} but the file is in {dev_dir.name}/videos/{category}"
                    )
                videos.append(
                    VisionVideo(path, stem, device, dev_dir.name, class_name, label_of[class_name],
                                cat_content, category, m["motion"])
                )
    if not videos:
        what = f"{content} " if content else ""
        raise DatasetLayoutError(data_root, f"no usable {what}videos (flat* and excluded devices are dropped)")
    seen: dict[tuple[str, str], Path] = {}
    for v in videos:
        key = (v.content, v.stem)
        if key in seen:
            raise DatasetLayoutError(v.path, f"stem {v.stem!r} also used by {seen[key]}")
        seen[key] = v.path
    if cfg.splits_dir is not None:
        _check_splits(videos, cfg.splits_dir)
    return sorted(videos, key=lambda v: str(v.path))


def _check_splits(videos: Sequence[VisionVideo], splits_dir: Path) -> None:
    """Resolve every fold list of each listed content that has a folder under ``splits_dir``."""
    for content in CONTENTS:
        if not any(v.content == content for v in videos) or not (splits_dir / content).is_dir():
            continue
        fold = 0
        while (splits_dir / content / f"test_fold{fold}.csv").is_file():
            vision_folds(videos, content, fold, splits_dir)
            fold += 1
        if fold == 0:
            raise DatasetLayoutError(splits_dir / content, "no fold lists test_fold<k>.csv")


def _read_fold_csv(path: Path) -> list[tuple[str, int]]:
    """``[(stem, label)]`` of a ``dev_alphabetical_id,dev_numerical_id`` CSV, in file order."""
    if not path.is_file():
        raise DatasetLayoutError(path, "fold list not found")
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != _CSV_COLUMNS:
            raise DatasetLayoutError(path, f"expected the header {','.join(_CSV_COLUMNS)}, got {header!r}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                stem, label = row[0].strip(), int(row[1])
            except (IndexError, ValueError):
                raise DatasetLayoutError(path, f"line {line}: expected <video stem>,<integer label>, got {row!r}") from None
            rows.append((stem, label))
    return rows


def _splits_dir_of(videos: Sequence[VisionVideo]) -> Path:
    """The ``dataset.json`` ``splits_dir`` of the tree the videos come from, else the shipped VISION lists."""
    if not videos:
        return VISION_SPLITS_DIR
    data_root = videos[0].path.parents[3]  # <data_root>/<device>/videos/<category>/<file>
    candidates = [data_root]
    if data_root.name == "dataset":
        candidates.append(data_root.parent)
        if data_root.parent.name == "VISION":
            candidates.append(data_root.parent.parent)
    for cand in candidates:
        if (cand / "dataset.json").is_file():
            sd = _config(cand).splits_dir
            if sd is None:
                raise DatasetLayoutError(cand / "dataset.json", "no splits_dir: pass splits_dir to vision_folds")
            return sd
    return VISION_SPLITS_DIR


def vision_folds(
    videos: Sequence[VisionVideo],
    content: str,
    fold: int,
    splits_dir: Optional[Union[str, Path]] = None,
) -> dict[str, list[VisionVideo]]:
    """The seed's train/val/test lists of one content and fold (§1.2).

    Reads ``<splits_dir>/<content>/{train,val,test}_fold<fold>.csv`` (columns
    ``dev_alphabetical_id,dev_numerical_id``) and maps each stem to its video.
    On VISION: Native/WA train 275/275/275/276/276, val 31, test 77/77/77/76/76;
    YT train 266, val 30, test 74; the test folds partition the videos.

    Args:
        videos: a :func:`vision` listing (any content; only ``content`` is used).
        content: ``'Native'``, ``'WA'`` or ``'YT'``.
        fold: fold index (0..4 for VISION).
        splits_dir: the fold-list folder; None = the ``dataset.json`` ``splits_dir``
            of the tree the videos come from, else :data:`VISION_SPLITS_DIR`.

    Returns:
        ``{'train': [...], 'val': [...], 'test': [...]}`` in CSV order.

    Raises:
        DatasetLayoutError: (naming the CSV) a list is missing or malformed,
            lists a video not in ``videos``, gives a label other than the
            video's, or one video is in two splits of the fold.
        ValueError: unknown ``content`` or a negative ``fold``.
    """
    _check_content(content, allow_none=False)
    if not isinstance(fold, int) or fold < 0:
        raise ValueError(f"fold must be an int >= 0, got {fold!r}")
    sd = Path(splits_dir) if splits_dir is not None else _splits_dir_of(videos)
    pool = {v.stem: v for v in videos if v.content == content}
    out: dict[str, list[VisionVideo]] = {}
    split_of: dict[str, str] = {}
    for split in _SPLIT_NAMES:
        path = sd / content / f"{split}_fold{fold}.csv"
        rows = _read_fold_csv(path)
        missing = [s for s, _ in rows if s not in pool]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetLayoutError(
                path, f"{len(missing)} {content} videos listed but not in the dataset: {shown}"
            )
        picked = []
        for stem, label in rows:
            v = pool[stem]
            if v.label != label:
                raise DatasetLayoutError(
                    path, f"{stem}: label {label} in the list but {v.label} ({v.class_name}) from its device {v.device}"
                )
            if stem in split_of:
                raise DatasetLayoutError(path, f"{stem} is also in {split_of[stem]}_fold{fold}.csv")
            split_of[stem] = split
            picked.append(v)
        out[split] = picked
    return out
