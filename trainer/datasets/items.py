"""Dataset items, the layout error and split helpers shared by every adapter.

Label convention of this package: **1 = fake, 0 = real** (P(fake) is what
every detector reports). Two seeds used the opposite convention and the
adapters normalise it:

* seed 3 (spec §3.1): folders ``0``/``1`` with **1 = real, 0 = fake**, and the
  Celeb-DF test list likewise (``"<1=real|0=fake> <folder>/<file>.mp4"``);
* seed 4 (spec §4.1 item 7): **real = 1, fake = 0** for the
  ``{train,test}/{real,fake}`` image folders.

Seeds 2 and 5 already use 1 = fake (FF++ ``Original`` -> 0, DFDC ``FAKE`` -> 1,
TMC CSV ``label`` 1 = fake).

Adapters only list files; none of them opens or decodes a video or image.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

__all__ = [
    "FAKE",
    "REAL",
    "SPLITS",
    "VideoItem",
    "ImageItem",
    "Item",
    "DatasetLayoutError",
    "normalise_split",
    "group_leaks",
    "assign_group_splits",
    "count",
    "require_files",
]

log = logging.getLogger(__name__)

#: Label of a manipulated (fake) sample.
FAKE = 1
#: Label of a pristine (real) sample.
REAL = 0
#: The split names items use.
SPLITS = ("train", "val", "test")

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",  # seed 5 quirk (spec §5.4): README says val, code filters on dev
    "test": "test",
    "testing": "test",
}


class DatasetLayoutError(ValueError):
    """A dataset root does not have the expected layout.

    The message names the offending path and what is missing or malformed.
    """

    def __init__(self, path: Union[str, Path], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _check_common(label: int, split: str, weight: float) -> None:
    if label not in (REAL, FAKE):
        raise ValueError(f"label must be 0 (real) or 1 (fake), got {label!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"weight must be finite and >= 0, got {weight!r}")


@dataclass(frozen=True)
class VideoItem:
    """One labelled video of a dataset.

    Attributes:
        path: the video file (for TMC possibly the preprocessed ``.npz``).
        label: 1 = fake, 0 = real (normalised; see the module docstring).
        split: ``'train'``, ``'val'`` or ``'test'``.
        dataset: adapter name, e.g. ``'ffpp'``.
        method: manipulation or source, e.g. ``'Deepfakes'``, ``'Original'``,
            ``'Celeb-synthesis'``; None where the dataset does not say.
        compression: ``'c0'``, ``'c23'`` or ``'c40'`` (FF++), else None.
        video_id: id unique within ``(dataset, method, compression)``, e.g.
            ``'000_003'``.
        group: identity/source id; all items sharing it must be in one split
            for person-wise evaluation (see :func:`group_leaks`).
        weight: per-sample loss weight (TMC CSV ``weight``), default 1.0.
    """

    path: Path
    label: int
    split: str
    dataset: str
    method: Optional[str]
    compression: Optional[str]
    video_id: str
    group: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        _check_common(self.label, self.split, self.weight)


@dataclass(frozen=True)
class ImageItem:
    """One labelled image (face crop or frame) of an image-folder dataset.

    Attributes:
        path: the image file.
        label: 1 = fake, 0 = real (normalised).
        split: ``'train'``, ``'val'`` or ``'test'``.
        dataset: adapter name (``'image_folder'``) or a caller-given name.
        method: class folder name as found (e.g. ``'fake'``), or None.
        image_id: the file stem.
        group: the source video / identity (see :func:`trainer.datasets.folders.image_folder`).
        weight: per-sample loss weight, default 1.0.
    """

    path: Path
    label: int
    split: str
    dataset: str
    method: Optional[str]
    image_id: str
    group: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        _check_common(self.label, self.split, self.weight)


Item = Union[VideoItem, ImageItem]


def normalise_split(value: str, *, path: Union[str, Path] = "") -> str:
    """Map a split name (``train``/``dev``/``val``/``validation``/``test`` ..., any case) to :data:`SPLITS`.

    Raises:
        DatasetLayoutError: an unknown split name (``path`` names where it was read).
    """
    key = str(value).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise DatasetLayoutError(path, f"unknown split {value!r} (expected train, dev/val or test)")
    return _SPLIT_ALIASES[key]


def group_leaks(items: Iterable[Item]) -> dict[str, set[str]]:
    """Groups that occur in more than one split: ``{group: {splits}}`` (empty when person-disjoint)."""
    splits: dict[str, set[str]] = defaultdict(set)
    for it in items:
        splits[it.group].add(it.split)
    return {g: s for g, s in splits.items() if len(s) > 1}


def assign_group_splits(
    groups: Iterable[str], fractions: Sequence[float], seed: Optional[int] = 0
) -> dict[str, str]:
    """Assign whole groups to train/val/test with exact, deterministic counts.

    Groups are sorted; with ``seed`` not None they are then permuted by
    ``np.random.default_rng(seed)``; the first ``round(f_train * n)`` go to
    train, those up to ``round((f_train + f_val) * n)`` to val and the rest
    to test (none when ``f_test == 0``).

    Args:
        groups: group ids (duplicates ignored).
        fractions: ``(train, val, test)`` fractions, each >= 0, summing to 1.
        seed: permutation seed, or None to keep sorted order.

    Returns:
        ``{group: split}``.

    Raises:
        ValueError: bad fractions.
    """
    f = [float(x) for x in fractions]
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be (train, val, test) >= 0 summing to 1, got {fractions!r}")
    ordered = sorted(set(groups))
    if seed is not None:
        ordered = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    n = len(ordered)
    # cumulative rounding: the boundaries add up to n exactly, and a zero fraction stays empty
    b1 = int(round(f[0] * n))
    b2 = n if f[2] == 0 else int(round((f[0] + f[1]) * n))
    return {g: "train" if i < b1 else "val" if i < b2 else "test" for i, g in enumerate(ordered)}


def count(items: Iterable[Item]) -> dict[tuple[str, int], int]:
    """``{(split, label): n}``: a quick summary for logs and tests."""
    out: dict[tuple[str, int], int] = defaultdict(int)
    for it in items:
        out[(it.split, it.label)] += 1
    return dict(out)


def require_files(paths: Iterable[Path], root: Union[str, Path], what: str) -> None:
    """Raise :class:`DatasetLayoutError` naming up to five of ``paths`` that do not exist."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetLayoutError(root, f"{len(missing)} {what} listed but not found: {shown}{more}")


def read_json(path: Path, kind: type, expected: str):
    """Parse a dataset's JSON file, checking its top-level type.

    Raises:
        DatasetLayoutError: unreadable, not JSON, or not of type ``kind`` (message ``expected``).
    """
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetLayoutError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, kind):
        raise DatasetLayoutError(path, expected)
    return data
