"""Preprocessing cache: the engine's own tensors for a video, stored as npz (``forensic-train prepare``).

The trainer never re-implements preprocessing (DESIGN.md): every array here
comes from :class:`engine.pipeline.MediaClip`, the same object detectors read
at analysis time. A cache file is keyed by the video's SHA-256, so re-running
``prepare`` skips videos already done (resumable) and re-does changed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.faces import CROP_POLICIES
from engine.io import atomic_save_npz, load_npz
from engine.media import Uniform, sha256_file
from engine.pipeline import ClipConfig, MediaClip

#: Bump when the cache's content changes; older caches are rebuilt.
CACHE_VERSION = 2

#: Crop policies whose crops have a fixed size and are stacked into one array.
FIXED_SIZE_POLICIES = tuple(name for name in CROP_POLICIES if name != "freq_square1p5")


@dataclass(frozen=True)
class CachedVideo:
    """One cached video: where its npz is and what it came from."""

    source: Path
    sha256: str
    cache: Path

    def load(self) -> dict[str, np.ndarray]:
        """All arrays of the cache (``allow_pickle=False``)."""
        return load_npz(self.cache)


def cache_path(out_dir: Path, source: Path, sha256: str, frames: int) -> Path:
    """``<out_dir>/<stem>.<first 12 hex of sha256>.f<frames>.v<CACHE_VERSION>.npz``.

    The frame count is part of the key: a cache made with another ``frames`` is never reused silently.
    """
    return Path(out_dir) / f"{Path(source).stem}.{sha256[:12]}.f{int(frames)}.v{CACHE_VERSION}.npz"


def cache_video(path: str | Path, out_dir: str | Path, frames: int = 32, device: str = "auto",
                overwrite: bool = False) -> CachedVideo:
    """Write the engine's preprocessing of one video to an npz (skipped if already cached).

    Arrays (T sampled frames uniformly over the duration, M = frames where the main
    face track is present):

    * ``frame_index`` int64 (T,), ``pts`` float64 (T,) seconds;
    * ``crops/<policy>`` uint8 (M, S, S, 3) RGB for the fixed-size crop policies;
    * ``landmarks/<policy>`` float32 (M, 5, 2): MTCNN's 5 points in crop pixels (NaN if absent);
    * ``crop_frames/<policy>`` int64 (M,): frame index of each crop;
    * ``freq_crops/<i>`` uint8 (h, w, 3) and ``freq_landmarks/<i>`` float32 (5, 2): the
      variable-size, unresized ``freq_square1p5`` crops (seed 4 §4.4), one key per crop;
    * ``azimuthal_spectra`` float64 (M, 300) of the ``freq_square1p5`` crops;
    * ``log_mel_3res`` float32 (3, 128, 1500) when the video has audio.

    Raises:
        EvidenceError: the video cannot be read.
    """
    path = Path(path)
    digest = sha256_file(path)
    out = cache_path(Path(out_dir), path, digest, frames)
    if out.exists() and not overwrite:
        return CachedVideo(path, digest, out)
    clip = MediaClip(path, ClipConfig(sampling=Uniform(frames), device=device))
    arrays: dict[str, np.ndarray] = {
        "frame_index": np.array([f.index for f in clip.frames], dtype=np.int64),
        "pts": np.array([f.pts for f in clip.frames], dtype=np.float64),
    }
    for name in FIXED_SIZE_POLICIES:
        crops = clip.face_crops(name)
        arrays[f"crop_frames/{name}"] = np.array([f.index for f, _ in crops], dtype=np.int64)
        size = CROP_POLICIES[name].size
        arrays[f"crops/{name}"] = (
            np.stack([c.image for _, c in crops]) if crops else np.zeros((0, size, size, 3), np.uint8)
        )
        lms = []
        for _, c in crops:
            lm = c.box.landmarks
            lms.append(c.frame_to_crop_xy(np.asarray(lm, np.float32)) if lm is not None else np.full((5, 2), np.nan))
        arrays[f"landmarks/{name}"] = np.asarray(lms, np.float32).reshape(-1, 5, 2)
    freq = clip.face_crops("freq_square1p5")
    arrays["crop_frames/freq_square1p5"] = np.array([f.index for f, _ in freq], dtype=np.int64)
    for i, (_, c) in enumerate(freq):  # variable size: one array per crop (npz holds no ragged arrays)
        arrays[f"freq_crops/{i:04d}"] = c.image
        lm = c.box.landmarks
        arrays[f"freq_landmarks/{i:04d}"] = (
            c.frame_to_crop_xy(np.asarray(lm, np.float32)) if lm is not None else np.full((5, 2), np.nan, np.float32)
        ).astype(np.float32)
    if clip.face_tracks:
        arrays["azimuthal_spectra"] = clip.azimuthal_spectra()
    mel = clip.log_mel_3res()
    if mel is not None:
        arrays["log_mel_3res"] = mel
    atomic_save_npz(out, arrays)
    return CachedVideo(path, digest, out)
