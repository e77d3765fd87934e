"""FaceForensics++ (Rössler et al., ICCV 2019, arXiv:1901.08971) video lists.

Layout (spec §7; seeds 2 and 4)::

    <root>/original_sequences/youtube/<c0|c23|c40>/videos/000.mp4 ... 999.mp4
    <root>/manipulated_sequences/<Method>/<c0|c23|c40>/videos/<target>_<source>.mp4

with ``Method`` in Deepfakes, Face2Face, FaceSwap, NeuralTextures,
FaceShifter. ``<target>_<source>.mp4`` is the target video ``<target>`` with
the face of ``<source>`` (e.g. ``000_003.mp4``).

Labels: ``Original`` -> 0 (real), every method -> 1 (fake).

Splits and groups. Every fake ties two original ids together, so each item's
``group`` is the *connected component* of original ids linked by fakes
(``'953_974'`` for the FF++ pair 953/974), and whole groups go to one split:
a source never leaks from train into test as a real or as a fake.

* With ``splits_dir``: the official split files ``train.json``, ``val.json``
  and ``test.json``, each a JSON list of ``[target, source]`` id pairs (e.g.
  ``[["953", "974"], ...]``, 360/70/70 pairs). An original belongs to the
  split of its pair; a fake ``a_b`` to the split holding both ``a`` and ``b``.
  Videos whose ids no split file names are left out (logged).
* Without: the groups (components found from the files on disk) are sorted
  by their smallest id and filled in that order into train until 72 % of the
  original ids are taken, then val (14 %), then test (the rest): the
  deterministic 720/140/140 split of the 1000 ids (360/70/70 pairs). This is
  *not* the official split.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from trainer.datasets.items import FAKE, REAL, DatasetLayoutError, VideoItem, read_json

__all__ = ["FFPP_METHODS", "FFPP_COMPRESSIONS", "DEFAULT_FRACTIONS", "faceforensics"]

log = logging.getLogger(__name__)

#: Manipulation methods of FF++ (folder names under ``manipulated_sequences``).
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
#: Compression levels (folder names): raw (c0), HQ (c23), LQ (c40).
FFPP_COMPRESSIONS = ("c0", "c23", "c40")
#: Fallback split fractions of the original ids (train, val, test): 720/140/140 of 1000.
DEFAULT_FRACTIONS = (0.72, 0.14, 0.14)
VIDEO_EXTENSIONS = (".mp4", ".avi")

_REAL_RE = re.compile(r"^\d+$")
_FAKE_RE = re.compile(r"^(\d+)_(\d+)$")


class _Components:
    """Union-find over original ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> dict[str, str]:
        """``{id: group name}``; a group is named by its sorted ids joined with ``_``."""
        members: dict[str, list[str]] = {}
        for a in list(self.parent):
            members.setdefault(self.find(a), []).append(a)
        out = {}
        for ids in members.values():
            name = "_".join(sorted(ids))
            for a in ids:
                out[a] = name
        return out


def _as_tuple(value: Union[str, Sequence[str], None], default: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    return (value,) if isinstance(value, str) else tuple(value)


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def _read_split_files(splits_dir: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """``({id: split}, pairs)`` from ``train/val/test.json``."""
    id_split: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for split in ("train", "val", "test"):
        path = splits_dir / f"{split}.json"
        if not path.is_file():
            raise DatasetLayoutError(splits_dir, f"official split file {split}.json is missing")
        data = read_json(path, list, "expected a JSON list of [target, source] id pairs")
        for entry in data:
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
                raise DatasetLayoutError(path, f"expected [target, source] id pairs, found {entry!r}")
            a, b = (str(x) for x in entry)
            for vid in (a, b):
                if id_split.setdefault(vid, split) != split:
                    raise DatasetLayoutError(path, f"id {vid} is in both {id_split[vid]} and {split}")
            pairs.append((a, b))
    return id_split, pairs


def _split_by_sorted_id(groups: dict[str, str], fractions: Sequence[float]) -> dict[str, str]:
    """``{group: split}``: groups in order of their smallest id fill train, val, test by id count."""
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    n = sum(sizes.values())
    b1 = round(fractions[0] * n)
    b2 = round((fractions[0] + fractions[1]) * n)
    out, seen = {}, 0
    for g in sorted(sizes, key=lambda name: (int(name.split("_")[0]), name)):
        out[g] = "train" if seen < b1 else "val" if seen < b2 else "test"
        seen += sizes[g]
    return out


def faceforensics(
    root: Union[str, Path],
    *,
    compression: Union[str, Sequence[str]] = "c23",
    methods: Optional[Iterable[str]] = None,
    splits_dir: Optional[Union[str, Path]] = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> list[VideoItem]:
    """List the FF++ videos under ``root`` with labels, splits and groups.

    Args:
        root: the FF++ root (holding ``original_sequences`` and ``manipulated_sequences``).
        compression: one of ``'c0'``, ``'c23'``, ``'c40'`` or a sequence of them.
        methods: methods to include; None = every one of :data:`FFPP_METHODS`
            present on disk (at least one must be).
        splits_dir: folder with the official ``train.json``/``val.json``/``test.json``.
        fractions: ``(train, val, test)`` fractions of the original ids, used
            only without ``splits_dir``.

    Returns:
        :class:`VideoItem` list (dataset ``'ffpp'``, method ``'Original'`` or the
        method name, ``compression`` set, ``video_id`` ``'000'`` / ``'000_003'``),
        sorted by compression, method, id.

    Raises:
        DatasetLayoutError: a missing folder, an unknown method or compression,
            a malformed file name or split file.
    """
    root = Path(root)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be (train, val, test) >= 0 summing to 1, got {fractions!r}")
    comps = _as_tuple(compression, ["c23"])
    for c in comps:
        if c not in FFPP_COMPRESSIONS:
            raise DatasetLayoutError(root, f"unknown compression {c!r} (expected one of {FFPP_COMPRESSIONS})")
    explicit = methods is not None
    wanted = _as_tuple(list(methods) if explicit else None, FFPP_METHODS)
    for m in wanted:
        if m not in FFPP_METHODS:
            raise DatasetLayoutError(root, f"unknown FF++ method {m!r} (expected one of {FFPP_METHODS})")
    if not (root / "original_sequences").is_dir() and not (root / "manipulated_sequences").is_dir():
        raise DatasetLayoutError(root, "not an FF++ root: original_sequences/ and manipulated_sequences/ are missing")

    # --- list files: (compression, method, id, path)
    found: list[tuple[str, str, str, Path]] = []
    for c in comps:
        real_dir = root / "original_sequences" / "youtube" / c / "videos"
        if not real_dir.is_dir():
            raise DatasetLayoutError(
                real_dir, "missing folder of original videos (original_sequences/youtube/<comp>/videos)"
            )
        for p in _videos(real_dir):
            if not _REAL_RE.match(p.stem):
                raise DatasetLayoutError(p, "original video names must be numeric ids like 000.mp4")
            found.append((c, "Original", p.stem, p))
        n_methods = 0
        for m in wanted:
            fake_dir = root / "manipulated_sequences" / m / c / "videos"
            if not fake_dir.is_dir():
                if explicit:
                    raise DatasetLayoutError(fake_dir, f"missing folder of {m} videos")
                continue
            n_methods += 1
            for p in _videos(fake_dir):
                if not _FAKE_RE.match(p.stem):
                    raise DatasetLayoutError(p, "manipulated video names must be <target>_<source>.mp4")
                found.append((c, m, p.stem, p))
        if n_methods == 0:
            raise DatasetLayoutError(
                root / "manipulated_sequences", f"no manipulated_sequences/<Method>/{c}/videos for any of {wanted}"
            )

    # --- groups and splits
    comp = _Components()
    if splits_dir is not None:
        id_split, pairs = _read_split_files(Path(splits_dir))
        for a, b in pairs:
            comp.union(a, b)
    for _, m, vid, _ in found:
        if m == "Original":
            comp.find(vid)
        elif splits_dir is None:
            comp.union(*_FAKE_RE.match(vid).groups())  # type: ignore[union-attr]
    groups = comp.groups()
    if splits_dir is None:
        group_split = _split_by_sorted_id(groups, fractions)
        id_split = {vid: group_split[g] for vid, g in groups.items()}

    items, dropped = [], 0
    for c, m, vid, path in found:
        ids = (vid,) if m == "Original" else _FAKE_RE.match(vid).groups()  # type: ignore[union-attr]
        splits = {id_split.get(i) for i in ids}
        if len(splits) != 1 or None in splits:
            dropped += 1
            continue
        items.append(
            VideoItem(
                path=path,
                label=REAL if m == "Original" else FAKE,
                split=splits.pop(),  # type: ignore[arg-type]
                dataset="ffpp",
                method=m,
                compression=c,
                video_id=vid,
                group=groups[ids[0]],
            )
        )
    if dropped:
        log.warning("ffpp: %d videos under %s are in no split (or straddle two) and were left out", dropped, root)
    return items
