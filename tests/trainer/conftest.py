"""Shared generators of tiny trainer datasets (used by test_evaluate.py, test_reproduce.py, test_cnn_bagging.py
and test_labelled.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "media"  # = tests/conftest.py's DATA


def _faces(video: str, n: int):
    from engine.media import Uniform
    from engine.pipeline import ClipConfig, MediaClip

    clip = MediaClip(DATA / video, ClipConfig(sampling=Uniform(n), device="cpu"))
    return [(c.image, c.box) for _, c in clip.face_crops("freq_square1p5")]


def make_image_dataset(root: Path, videos_by_split: dict[str, list[str]], seed: int, n: int) -> Path:
    """``root/{train,test}/{real,fake}/*.png``: real ``freq_square1p5`` face crops of bundled test videos
    (``n`` frames each) and one self-blend of each (seed 4's image-folder layout, spec §4.4)."""
    from trainer.sbi import self_blend

    rng = np.random.default_rng(seed)
    for split, videos in videos_by_split.items():
        for video in videos:
            for i, (img, _) in enumerate(_faces(video, n)):
                for label, im in (("real", img), ("fake", self_blend(img, rng=rng).image)):
                    d = root / split / label
                    d.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(d / f"{video.split('.')[0]}_{i:04d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    return root


def make_video_folder(root: Path, tree: dict[str, list[str] | dict[str, str]]) -> Path:
    """A labelled ``video_folder`` tree of copies of the bundled test videos (one file stem = one group).

    Args:
        tree: ``{"<class folder>": [bundled video, ...]}`` (copied under their own names) or
            ``{"<class folder>": {"<new name>": "<bundled video>"}}``, with class folders such as ``real``,
            ``fake``, ``train/real`` or ``val/fake`` (trainer.datasets.folders.video_folder layout).
    """
    import shutil

    for folder, names in tree.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        pairs = names.items() if isinstance(names, dict) else ((n, n) for n in names)
        for dst, src in pairs:
            shutil.copy(DATA / src, root / folder / dst)
    return root


@pytest.fixture(scope="session")
def image_dataset() -> Callable[..., Path]:
    """:func:`make_image_dataset` as a fixture."""
    return make_image_dataset


@pytest.fixture(scope="session")
def video_folder() -> Callable[..., Path]:
    """:func:`make_video_folder` as a fixture."""
    return make_video_folder
