"""Shared fixtures for the engine.faces tests: one MTCNN for the session, cached frame samples."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from engine.faces import MTCNNDetector
from engine.media import Frame, Uniform, VideoReader

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def mtcnn() -> MTCNNDetector:
    """The default detector (seed 2 thresholds, CPU), built once."""
    return MTCNNDetector(device="cpu")


@pytest.fixture(scope="session")
def uniform_frames() -> Callable[[str], tuple[Frame, ...]]:
    """``uniform_frames(rel_path)`` -> ``VideoReader(ROOT / rel_path).sample(Uniform(32))``, decoded once."""
    cache: dict[str, tuple[Frame, ...]] = {}

    def get(rel_path: str) -> tuple[Frame, ...]:
        if rel_path not in cache:
            cache[rel_path] = tuple(VideoReader(ROOT / rel_path).sample(Uniform(32)))
        return cache[rel_path]

    return get
