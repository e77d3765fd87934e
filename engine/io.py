"""Atomic writes: temp file in the destination folder, fsync, then rename.

Every file the engine writes (results JSON, npz sidecars, weights, cards, case
files) goes through here, so a crash or a full disk never leaves a half-written
file in place of a good one. Nothing is ever written next to evidence by these
helpers unless the caller explicitly names such a path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder; on normal exit it replaces ``path`` (``os.replace``).

    For writers that need a file name rather than bytes (an encoder writing a
    video, a library saving to a path). The temp file is ``.<name>.<random><suffix>``,
    gets normal permissions (umask) and is removed if the block raises, so
    ``path`` is either the old file or the complete new one, never a partial one.

    Raises:
        OSError: the folder is not writable or the disk is full (``path`` is untouched).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (same-folder temp file, fsync, ``os.replace``).

    Raises:
        OSError: the folder is not writable or the disk is full (``path`` is untouched).
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Serialise ``obj`` as indented UTF-8 JSON and write it atomically (numpy scalars allowed)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def atomic_save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Save arrays as a compressed ``.npz`` atomically. Object arrays are refused (no pickles).

    Raises:
        TypeError: an array has dtype ``object``.
    """
    for key, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {key!r} has dtype object; refusing to pickle it into {path}")
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load an ``.npz`` with ``allow_pickle=False`` (never executes code from the file)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
