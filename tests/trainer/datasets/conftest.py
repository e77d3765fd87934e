"""Fixtures for the dataset-adapter tests: tiny fake dataset trees of empty files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import pytest


@pytest.fixture
def touch(tmp_path) -> Callable[..., Path]:
    """``touch(*relative_paths, root=tmp_path)``: create empty files (and parents); returns the root.

    The files are empty on purpose: an adapter that tried to decode a video
    or image would fail on them.
    """

    def _touch(*paths: Iterable[str] | str, root: Path = tmp_path) -> Path:
        for rel in paths:
            for r in [rel] if isinstance(rel, str) else rel:
                p = root / r
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"")
        return root

    return _touch
