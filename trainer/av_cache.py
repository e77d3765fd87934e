"""Audio-visual cache: dense 25 fps face crops + aligned audio of one video (npz), for SyncNet and ``deepfake.av``.

Like :mod:`trainer.cache`, every array comes from :class:`engine.pipeline.MediaClip`
(the object detectors read at analysis time) and the file name is keyed by the
video's SHA-256, so re-running skips videos already done and re-does changed ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.features.avsync import aligned_audio
from engine.io import atomic_save_npz, load_npz
from engine.media import sha256_file
from engine.pipeline import ClipConfig, MediaClip

#: Bump when the cache's content changes; older caches are rebuilt.
AV_CACHE_VERSION = 1
#: seed 5 §5.1: 25 fps, at most 16 s, ``tmc_shifted1p4_224`` crops.
AV_FPS = 25.0
AV_MAX_S = 16.0
AV_POLICY = "tmc_shifted1p4_224"


def av_cache_path(out_dir: Path, source: Path, sha256: str) -> Path:
    """``<out_dir>/<stem>.<first 12 hex of sha256>.av.v<AV_CACHE_VERSION>.npz``."""
    return Path(out_dir) / f"{Path(source).stem}.{sha256[:12]}.av.v{AV_CACHE_VERSION}.npz"


def cache_av(video: Path, out_dir: Path, device: str = "cpu", overwrite: bool = False) -> Path:
    """Write the dense face crops and aligned audio of one video to an npz (skipped if cached).

    Arrays (N = dense frames, ``min(16 s, duration) × 25 fps``):

    * ``dense_crops`` uint8 (N, 224, 224, 3) RGB, ``MediaClip.dense_face_crops()``
      (25 fps, ≤ 16 s, ``tmc_shifted1p4_224``; seed 5 §5.1);
    * ``dense_pts`` float64 (N,) seconds (presentation time of the source frame shown);
    * ``dense_frame_index`` int64 (N,); ``has_face`` bool (False: whole frames, no face track);
    * ``audio_16k`` float32 (n,) mono at 16 kHz (``clip.audio(16000)``) and ``audio_22k``
      float32 (n,) mono at 22,050 Hz (``clip.audio(22050)``, for mel images): sample 0 is
      at video time 0 (the stream start offset is removed) and the audio is cut at
      ``N / 25`` s, so MFCC column ``4k`` lines up with crop ``k``; empty without audio;
    * ``has_audio`` bool.

    Args:
        video: the video file. out_dir: cache folder. device: face-detector device.
        overwrite: re-do even if the cache exists.

    Returns:
        Path of the npz.

    Raises:
        EvidenceError: the video cannot be read. NoVideoStream: audio-only file.
    """
    video = Path(video)
    digest = sha256_file(video)
    out = av_cache_path(Path(out_dir), video, digest)
    if out.exists() and not overwrite:
        return out
    clip = MediaClip(video, ClipConfig(device=device))
    dense = clip.dense_face_crops(fps=AV_FPS, max_s=AV_MAX_S, policy=AV_POLICY)
    n = int(dense.crops.shape[0])
    a16 = aligned_audio(clip, 16000, n, AV_FPS)
    a22 = aligned_audio(clip, 22050, n, AV_FPS)
    has16 = a16.size > 0
    arrays = {
        "dense_crops": dense.crops,
        "dense_pts": dense.pts.astype(np.float64),
        "dense_frame_index": dense.frame_index.astype(np.int64),
        "has_face": np.array(bool(dense.has_face)),
        "audio_16k": a16,
        "audio_22k": a22,
        "has_audio": np.array(bool(has16 and a16.size > 0)),
        "sha256": np.array(digest),
        "source_name": np.array(video.name),
    }
    atomic_save_npz(out, arrays)
    return out


def load_av(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an AV cache (``allow_pickle=False``)."""
    return load_npz(path)
