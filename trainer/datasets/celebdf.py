"""Celeb-DF v2 (Li et al., CVPR 2020, arXiv:1909.12962) video lists.

Layout (spec §7; seed 3)::

    <root>/Celeb-real/id<k>_<nnnn>.mp4             real (celebrity interviews)
    <root>/YouTube-real/<nnnnn>.mp4                 real (other YouTube videos)
    <root>/Celeb-synthesis/id<t>_id<s>_<nnnn>.mp4   fake: video id<t>_<nnnn> with the face of id<s>
    <root>/List_of_testing_videos.txt               official test list

Test list lines are ``"<1=real|0=fake> <folder>/<file>.mp4"`` (518 lines:
178 real, 340 fake). That file uses seed 3's **1 = real** convention; the
adapter normalises to 1 = fake and checks it against the folder. Listed videos
are ``'test'``; every other video is ``'train'`` (or ``'val'``, see
``val_fraction``).

Groups: the identity whose footage the video shows: ``'id<k>'`` for
Celeb-real, ``'id<t>'`` (the target) for Celeb-synthesis, so a fake and the
real video it was made from share a group; ``'youtube_<nnnnn>'`` for
YouTube-real. The official test list is chosen per video, so an identity may
appear in both train and test; :func:`trainer.datasets.group_leaks` reports
it. The train/val carve-out is by group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Union

from trainer.datasets.items import (
    FAKE,
    REAL,
    DatasetLayoutError,
    VideoItem,
    assign_group_splits,
    require_files,
)

__all__ = ["CELEBDF_FOLDERS", "TEST_LIST", "celebdf"]

#: Folder -> label (1 = fake).
CELEBDF_FOLDERS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
#: Default name of the official test list.
TEST_LIST = "List_of_testing_videos.txt"
VIDEO_EXTENSIONS = (".mp4", ".avi")

_CELEB_RE = re.compile(r"^(id\d+)_(?:id\d+_)?\d+$")


def _group(folder: str, stem: str) -> str:
    if folder == "YouTube-real":
        return f"youtube_{stem}"
    m = _CELEB_RE.match(stem)
    return m.group(1) if m else stem


def _read_test_list(path: Path) -> dict[str, int]:
    """``{"<folder>/<file>": label (1 = fake)}`` from the official list."""
    out: dict[str, int] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetLayoutError(path, f"line {n}: expected '<1=real|0=fake> <folder>/<file>.mp4', got {line!r}")
        rel = parts[1].replace("\\", "/")
        folder = rel.split("/", 1)[0]
        if folder not in CELEBDF_FOLDERS or "/" not in rel:
            raise DatasetLayoutError(path, f"line {n}: {rel!r} is not in one of {tuple(CELEBDF_FOLDERS)}")
        label = REAL if parts[0] == "1" else FAKE  # the list's 1 = real (seed 3 convention)
        if label != CELEBDF_FOLDERS[folder]:
            raise DatasetLayoutError(
                path, f"line {n}: label {parts[0]} contradicts folder {folder} (the list uses 1 = real)"
            )
        out[rel] = label
    if not out:
        raise DatasetLayoutError(path, "the test list is empty")
    return out


def celebdf(
    root: Union[str, Path],
    *,
    test_list: Optional[Union[str, Path]] = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    require_listed: bool = True,
) -> list[VideoItem]:
    """List the Celeb-DF v2 videos under ``root`` with labels, official test split and groups.

    Args:
        root: the Celeb-DF v2 root (holding the three video folders).
        test_list: the official test list; default ``<root>/List_of_testing_videos.txt``.
        val_fraction: fraction of the non-test *groups* moved to ``'val'``
            (deterministic, :func:`~trainer.datasets.items.assign_group_splits`
            with ``seed``); 0 keeps everything else in ``'train'``.
        seed: seed of that carve-out.
        require_listed: raise when a video of the test list is not on disk.

    Returns:
        :class:`VideoItem` list (dataset ``'celebdf'``, method = folder name,
        ``compression`` None, ``video_id`` = file stem), sorted by path.

    Raises:
        DatasetLayoutError: a missing folder or test list, a malformed list
            line, a list label contradicting its folder, or a listed video
            missing (with ``require_listed``).
    """
    root = Path(root)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    for folder in CELEBDF_FOLDERS:
        if not (root / folder).is_dir():
            raise DatasetLayoutError(root / folder, f"missing Celeb-DF folder {folder}/")
    list_path = Path(test_list) if test_list is not None else root / TEST_LIST
    if not list_path.is_file():
        raise DatasetLayoutError(list_path, "missing the official test list (List_of_testing_videos.txt)")
    listed = _read_test_list(list_path)
    if require_listed:
        require_files((root / rel for rel in sorted(listed)), root, "test videos")

    videos = []
    for folder, label in CELEBDF_FOLDERS.items():
        for p in sorted((root / folder).iterdir()):
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
                rel = f"{folder}/{p.name}"
                videos.append((p, folder, label, "test" if rel in listed else "train"))

    if val_fraction > 0:
        train_groups = {_group(f, p.stem) for p, f, _, s in videos if s == "train"}
        assigned = assign_group_splits(train_groups, (1.0 - val_fraction, val_fraction, 0.0), seed=seed)
    else:
        assigned = {}
    items = []
    for p, folder, label, split in videos:
        group = _group(folder, p.stem)
        if split == "train":
            split = assigned.get(group, "train")
        items.append(VideoItem(p, label, split, "celebdf", folder, None, p.stem, group))
    return sorted(items, key=lambda it: str(it.path))
