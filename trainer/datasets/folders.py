"""Generic class-folder datasets: ``real``/``fake`` folders of videos or images.

Video folder (``video_folder``)::

    <root>/{real,fake}/*.mp4                         one pool; split by split_fraction or default_split
    <root>/{train,val,test}/{real,fake}/*.mp4        explicit splits (dev/validation = val)

Image folder (``image_folder``; seed 4, spec §4.4)::

    <root>/{train,test[,val]}/{real,fake}/*.jpg|png

Class folders are matched case-insensitively: ``real`` -> 0, ``fake`` -> 1.
Numeric class folders ``0``/``1`` are ambiguous across seeds and need
``numeric_labels``: seed 3's ``train/{0,1}`` uses ``'1=real'`` (spec §3.1);
``'1=fake'`` is this package's convention. Seed 4 read ``real`` as 1 and
``fake`` as 0 (spec §4.1); the folder names are unambiguous, so its items
come out as real = 0, fake = 1 like every other adapter.

Files are listed, never opened. Files in sub-folders of a class folder are
included (e.g. ``fake/<video>/<frame>.png``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence, Union

from trainer.datasets.items import (
    FAKE,
    REAL,
    DatasetLayoutError,
    ImageItem,
    VideoItem,
    assign_group_splits,
    normalise_split,
)

__all__ = ["VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS", "video_folder", "image_folder"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".3gp", ".mpg", ".mpeg", ".wmv", ".flv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: A frame file ``<video>_<frame:04d>`` (seed 4's FF++ extraction, spec §4.4) belongs to ``<video>``.
FRAME_SUFFIX = re.compile(r"^(?P<video>.+)_\d{4,}$")

_NUMERIC = {"1=real": {"1": REAL, "0": FAKE}, "1=fake": {"1": FAKE, "0": REAL}}


def _class_dirs(folder: Path, numeric_labels: Optional[str]) -> list[tuple[Path, int]]:
    """``[(class folder, label)]`` of ``folder``."""
    out = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        key = d.name.lower()
        if key in ("real", "fake"):
            out.append((d, REAL if key == "real" else FAKE))
        elif key in ("0", "1"):
            if numeric_labels not in _NUMERIC:
                raise DatasetLayoutError(
                    d, "numeric class folders need numeric_labels='1=real' (seed 3) or '1=fake'"
                )
            out.append((d, _NUMERIC[numeric_labels][key]))
    if not out:
        raise DatasetLayoutError(folder, "no class folders: expected real/ and fake/ (or 0/ and 1/)")
    return out


def _split_dirs(root: Path) -> dict[Path, str]:
    """``{folder: split}`` for the split-named sub-folders of ``root`` (train, val/dev/validation, test)."""
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            out[d] = normalise_split(d.name, path=d)
        except DatasetLayoutError:
            continue
    return out


def _files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise DatasetLayoutError(root, "the dataset folder does not exist")


def video_folder(
    root: Union[str, Path],
    *,
    split_fraction: Optional[Sequence[float]] = None,
    seed: int = 0,
    default_split: str = "test",
    numeric_labels: Optional[str] = None,
    dataset: str = "video_folder",
) -> list[VideoItem]:
    """List a ``real``/``fake`` video folder.

    Args:
        root: the folder (see the module docstring for both layouts).
        split_fraction: ``(train, val, test)`` fractions for the single-pool
            layout; whole groups (file stems) are assigned by
            :func:`~trainer.datasets.items.assign_group_splits` with ``seed``.
            Not allowed with explicit split folders.
        seed: permutation seed of ``split_fraction``.
        default_split: split of every video of a single pool without ``split_fraction``.
        numeric_labels: ``'1=real'`` or ``'1=fake'`` for ``0``/``1`` class folders.
        dataset: the ``dataset`` name given to the items.

    Returns:
        :class:`VideoItem` list (method = class folder name as found,
        compression None, ``video_id`` = ``group`` = file stem), sorted by path.

    Raises:
        DatasetLayoutError: no class folders, numeric folders without
            ``numeric_labels``, or no videos at all.
        ValueError: bad ``split_fraction`` or ``default_split``.
    """
    root = Path(root)
    _check_root(root)
    default_split = normalise_split(default_split, path=root)
    splits = _split_dirs(root)
    pools = [(d, s) for d, s in splits.items()] if splits else [(root, None)]
    if splits and split_fraction is not None:
        raise ValueError(f"{root} has split folders ({', '.join(d.name for d in splits)}); drop split_fraction")
    found = []
    for folder, split in pools:
        for cls, label in _class_dirs(folder, numeric_labels):
            for p in _files(cls, VIDEO_EXTENSIONS):
                found.append((p, label, split, cls.name))
    if not found:
        raise DatasetLayoutError(root, f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in the class folders")
    assigned = (
        assign_group_splits({p.stem for p, *_ in found}, split_fraction, seed=seed) if split_fraction else {}
    )
    items = [
        VideoItem(p, label, split or assigned.get(p.stem, default_split), dataset, method, None, p.stem, p.stem)
        for p, label, split, method in found
    ]
    return sorted(items, key=lambda it: str(it.path))


def image_folder(
    root: Union[str, Path],
    *,
    numeric_labels: Optional[str] = None,
    dataset: str = "image_folder",
) -> list[ImageItem]:
    """List an image folder ``<root>/{train,test[,val]}/{real,fake}/*`` (spec §4.4).

    Groups: an image in a sub-folder of its class folder
    (``fake/<video>/<frame>.png``) is grouped by that sub-folder; otherwise by
    its stem with a trailing frame number ``_NNNN`` (4+ digits) removed
    (``000_003_0042.jpg`` -> ``'000_003'``), else the stem.

    Args:
        root: the dataset folder.
        numeric_labels: ``'1=real'`` or ``'1=fake'`` for ``0``/``1`` class folders.
        dataset: the ``dataset`` name given to the items.

    Returns:
        :class:`ImageItem` list (method = class folder name, ``image_id`` =
        stem), sorted by path.

    Raises:
        DatasetLayoutError: no split folders, a split folder without class
            folders, or no images at all.
    """
    root = Path(root)
    _check_root(root)
    splits = _split_dirs(root)
    if not splits:
        raise DatasetLayoutError(root, "no split folders: expected train/ and test/ (and optionally val/)")
    items = []
    for folder, split in splits.items():
        for cls, label in _class_dirs(folder, numeric_labels):
            for p in _files(cls, IMAGE_EXTENSIONS):
                rel = p.parent.relative_to(cls)
                if rel.parts:
                    group = rel.as_posix()
                else:
                    m = FRAME_SUFFIX.match(p.stem)
                    group = m.group("video") if m else p.stem
                items.append(ImageItem(p, label, split, dataset, cls.name, p.stem, group))
    if not items:
        raise DatasetLayoutError(root, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders")
    return sorted(items, key=lambda it: str(it.path))
