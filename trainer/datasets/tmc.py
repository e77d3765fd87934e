"""AI Singapore Trusted Media Challenge (TMC, arXiv:2201.04788) sample lists.

Layout (spec §5.4 and §7; seed 5)::

    <root>/data/<data-version>.csv      e.g. train_dev_test.csv
    <filepath>/<stem>.npz               the preprocessed sample (spec §5.4), and/or
    <filepath>/<filename>               the raw video

CSV columns ``filename,filepath,label,split,weight``:

* ``filename`` e.g. ``x.mp4``; ``filepath`` is the **directory** holding the
  sample (relative paths are taken relative to ``root``, see ``base_dir``);
* ``label`` 0 = real, 1 = fake (already this package's convention);
* ``split`` in ``train``, ``dev``, ``test``. **[quirk]** seed 5's README says
  ``val`` but its code filters on ``dev``: both are accepted and map to ``'val'``;
* ``weight``: per-sample loss weight (required by seed 5's code, missing from
  its README); 1.0 when the column is absent or empty.

``VideoItem.path`` is the raw video when it exists, otherwise the ``.npz``.
Groups: TMC gives no identity, so each video is its own group (its stem).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Union

from trainer.datasets.items import DatasetLayoutError, VideoItem, normalise_split, require_files

__all__ = ["TMC_COLUMNS", "tmc"]

#: Required CSV columns (``weight`` is optional).
TMC_COLUMNS = ("filename", "filepath", "label", "split")


def _find_csv(root: Path) -> Path:
    if root.is_file():
        return root
    for cand in (root / "train_dev_test.csv", root / "data" / "train_dev_test.csv"):
        if cand.is_file():
            return cand
    for folder in (root / "data", root):
        found = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DatasetLayoutError(folder, f"several CSVs ({names}); pass csv=<file>")
    raise DatasetLayoutError(root, "no TMC CSV found (train_dev_test.csv, data/*.csv or *.csv); pass csv=<file>")


def tmc(
    root: Union[str, Path],
    *,
    csv_path: Optional[Union[str, Path]] = None,
    base_dir: Optional[Union[str, Path]] = None,
    require_samples: bool = True,
) -> list[VideoItem]:
    """List the TMC samples of a seed-5 CSV.

    Args:
        root: the TMC root (``root_path``), or the CSV file itself.
        csv_path: the CSV; default: found under ``root`` (see the module docstring).
        base_dir: folder that relative ``filepath`` values are relative to;
            default ``root``, or the CSV's folder when ``root`` is the CSV.
        require_samples: raise when neither ``<filepath>/<filename>`` nor
            ``<filepath>/<stem>.npz`` exists.

    Returns:
        :class:`VideoItem` list (dataset ``'tmc'``, method and compression
        None, ``video_id`` = stem, ``weight`` from the CSV), in CSV order.

    Raises:
        DatasetLayoutError: no CSV, missing columns, a bad label, split or
            weight, a duplicate row, or missing samples.
    """
    root = Path(root)
    path = Path(csv_path) if csv_path is not None else _find_csv(root)
    if not path.is_file():
        raise DatasetLayoutError(path, "the TMC CSV does not exist")
    base = Path(base_dir) if base_dir is not None else (root.parent if root.is_file() else root)
    items, seen, missing = [], set(), []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not set(TMC_COLUMNS) <= cols:
            raise DatasetLayoutError(
                path, f"expected columns filename,filepath,label,split[,weight], got {reader.fieldnames}"
            )
        for n, row in enumerate(reader, start=2):
            name = row["filename"].strip()
            folder = Path(row["filepath"].strip())
            folder = folder if folder.is_absolute() else base / folder
            try:
                label = int(float(row["label"]))
                weight = float(row["weight"]) if row.get("weight") not in (None, "") else 1.0
            except ValueError as exc:
                raise DatasetLayoutError(path, f"line {n}: bad label or weight ({exc})") from exc
            if not (weight >= 0 and weight != float("inf")):
                raise DatasetLayoutError(path, f"line {n}: weight must be finite and >= 0, got {row['weight']!r}")
            if label not in (0, 1):
                raise DatasetLayoutError(path, f"line {n}: label must be 0 (real) or 1 (fake), got {row['label']!r}")
            split = normalise_split(row["split"], path=path)
            key = (str(folder), name)
            if key in seen:
                raise DatasetLayoutError(path, f"line {n}: duplicate row for {name}")
            seen.add(key)
            video, npz = folder / name, folder / f"{Path(name).stem}.npz"
            sample = video if video.is_file() else npz
            if not sample.is_file():
                missing.append(npz)
            items.append(VideoItem(sample, label, split, "tmc", None, None, Path(name).stem, Path(name).stem, weight))
    if require_samples:
        require_files(missing, path, "samples (video or .npz)")
    return items
