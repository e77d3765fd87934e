"""Deepfake Detection Challenge (Dolhansky et al., arXiv:2006.07397) video lists.

Layout (spec §7; seed 2's code paths)::

    <root>/metadata.json                      and/or
    <root>/<part>/metadata.json               e.g. dfdc_train_part_0/metadata.json, or
    <root>/metadata/*.json                    seed 2's data/metadata/*.json
    <root>/dfdc_val_labels.csv                optional, columns filename,label
    <root>/dfdc_test_labels.csv               optional, columns filename,label
    <root>/**/<file>.mp4                      the videos, anywhere below root

A metadata file maps ``"<file>.mp4"`` to ``{"label": "FAKE"|"REAL",
"split": ..., "original": "<file>.mp4"|null}``. ``FAKE`` -> 1, ``REAL`` -> 0;
``split`` (``train``, ``val``/``dev``, ``test``; default ``train``). The CSVs
label their videos ``val`` and ``test``; their ``label`` is DFDC's 1 = fake
(``FAKE``/``REAL`` also accepted). A video in both a metadata file and a CSV
takes the CSV's split (labels must agree).

Videos are found by file name anywhere below ``root`` (DFDC names are unique
random ids); one next to the metadata file that lists it wins a tie.

Groups: a fake's ``original`` (the real video it was made from, by stem), a
real video's own stem, so a real video and all its fakes share a split. CSV
entries carry no ``original`` and are grouped by their own stem.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Union

from trainer.datasets.items import (
    FAKE,
    REAL,
    DatasetLayoutError,
    VideoItem,
    assign_group_splits,
    normalise_split,
    read_json,
    require_files,
)

__all__ = ["LABEL_CSVS", "dfdc"]

#: Optional label CSVs and the split of their videos.
LABEL_CSVS = {"dfdc_val_labels.csv": "val", "dfdc_test_labels.csv": "test"}
VIDEO_EXTENSIONS = (".mp4",)

_LABELS = {"fake": FAKE, "1": FAKE, "real": REAL, "0": REAL}


def _label(value: object, where: Path, name: str) -> int:
    key = str(value).strip().lower()
    if key.endswith(".0"):
        key = key[:-2]
    if key not in _LABELS:
        raise DatasetLayoutError(where, f"{name}: label {value!r} is not FAKE/REAL/1/0")
    return _LABELS[key]


def _metadata_files(root: Path) -> list[Path]:
    found = [root / "metadata.json"] + sorted(root.glob("*/metadata.json")) + sorted((root / "metadata").glob("*.json"))
    return [p for p in dict.fromkeys(found) if p.is_file()]


def _read_json(path: Path) -> dict:
    return read_json(path, dict, 'expected {"<file>.mp4": {"label": "FAKE"|"REAL", ...}, ...}')


def dfdc(
    root: Union[str, Path],
    *,
    val_fraction: float = 0.0,
    seed: int = 0,
    require_videos: bool = True,
) -> list[VideoItem]:
    """List the DFDC videos described by the metadata files and label CSVs under ``root``.

    Args:
        root: folder holding the metadata file(s) and/or label CSVs and the videos.
        val_fraction: fraction of the ``'train'`` groups moved to ``'val'``
            (deterministic, seeded); 0 keeps the metadata's splits.
        seed: seed of that carve-out.
        require_videos: raise when a listed video is not found; otherwise
            its path is ``<folder of the list>/<file>`` and it is kept.

    Returns:
        :class:`VideoItem` list (dataset ``'dfdc'``, method None (DFDC does not
        name the method per video), compression None, ``video_id`` = stem),
        sorted by path.

    Raises:
        DatasetLayoutError: no metadata file or label CSV, a malformed file,
            an unknown label or split, conflicting labels, or missing videos.
    """
    root = Path(root)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not root.is_dir():
        raise DatasetLayoutError(root, "the DFDC root folder does not exist")
    metas = _metadata_files(root)
    csvs = [(root / name, split) for name, split in LABEL_CSVS.items() if (root / name).is_file()]
    if not metas and not csvs:
        raise DatasetLayoutError(
            root, "no metadata.json, */metadata.json, metadata/*.json or dfdc_{val,test}_labels.csv found"
        )

    # name -> (label, split, group, source file)
    entries: dict[str, tuple[int, str, str, Path]] = {}
    for meta in metas:
        for name, info in _read_json(meta).items():
            if not isinstance(info, dict) or "label" not in info:
                raise DatasetLayoutError(meta, f"{name}: entry needs a 'label'")
            label = _label(info["label"], meta, name)
            split = normalise_split(info.get("split") or "train", path=meta)
            original = info.get("original") if label == FAKE else None
            group = Path(original).stem if original else Path(name).stem
            entries[name] = (label, split, group, meta)
    for path, split in csvs:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
                raise DatasetLayoutError(path, f"expected columns filename,label, got {reader.fieldnames}")
            for row in reader:
                name = row["filename"].strip()
                label = _label(row["label"], path, name)
                if name in entries and entries[name][0] != label:
                    raise DatasetLayoutError(path, f"{name}: label {label} contradicts {entries[name][3]}")
                group = entries[name][2] if name in entries else Path(name).stem
                entries[name] = (label, split, group, path)

    # locate the videos by name
    on_disk: dict[str, list[Path]] = {}
    for p in root.rglob("*"):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            on_disk.setdefault(p.name, []).append(p)
    paths: dict[str, Path] = {}
    for name, (_, _, _, src) in entries.items():
        candidates = on_disk.get(Path(name).name, [])
        near = [p for p in candidates if p.parent == src.parent]
        paths[name] = (near or candidates or [src.parent / name])[0]
    if require_videos:
        require_files((paths[n] for n in sorted(entries)), root, "videos")

    if val_fraction > 0:
        train_groups = {g for _, s, g, _ in entries.values() if s == "train"}
        assigned = assign_group_splits(train_groups, (1.0 - val_fraction, val_fraction, 0.0), seed=seed)
    else:
        assigned = {}
    items = []
    for name, (label, split, group, _) in entries.items():
        if split == "train":
            split = assigned.get(group, "train")
        items.append(VideoItem(paths[name], label, split, "dfdc", None, None, Path(name).stem, group))
    return sorted(items, key=lambda it: str(it.path))
