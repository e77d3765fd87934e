"""``forensic-train``: build training caches from evidence-style videos with the engine's own preprocessing.

Sub-commands:

``cache VIDEO|DIR ... --out DIR``
    For each video: sample frames, detect and track faces, crop the main face
    with every seed crop policy, compute the 3-resolution log-mel and the
    azimuthal spectra, and write ``<out>/<video stem>.npz`` plus an
    ``index.json`` (source path, SHA-256, shapes). These are exactly the tensors
    ``engine.pipeline.MediaClip`` gives detectors at analysis time.

Model fitting, evaluation and the benchmark tables build on this cache
(issues 3, 6, 7).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.cli import expand_inputs
from engine.faces import CROP_POLICIES
from engine.io import atomic_save_npz, atomic_write_json
from engine.media import EvidenceError, Uniform
from engine.pipeline import ClipConfig, MediaClip


def cache_video(path: Path, out_dir: Path, frames: int = 32, device: str = "auto") -> dict:
    """Write the engine's preprocessing of one video to ``<out_dir>/<stem>.npz``.

    Arrays: ``frame_index`` int64 (T,), ``pts`` float64 (T,) seconds, per crop
    policy ``crops/<policy>`` uint8 (M, S, S, 3) RGB (main face track; not
    written for the variable-size ``freq_square1p5``), ``crop_frames/<policy>``
    int64 (M,), ``log_mel_3res`` float32 (3, 128, 1500) when the file has audio,
    ``azimuthal_spectra`` float64 (M, 300).

    Returns:
        The index entry (path, sha256, shapes).

    Raises:
        EvidenceError: the video cannot be read.
    """
    clip = MediaClip(path, ClipConfig(sampling=Uniform(frames), device=device))
    arrays: dict[str, np.ndarray] = {
        "frame_index": np.array([f.index for f in clip.frames], dtype=np.int64),
        "pts": np.array([f.pts for f in clip.frames], dtype=np.float64),
    }
    for name in CROP_POLICIES:
        crops = clip.face_crops(name)
        arrays[f"crop_frames/{name}"] = np.array([f.index for f, _ in crops], dtype=np.int64)
        if crops and len({c.image.shape for _, c in crops}) == 1:
            arrays[f"crops/{name}"] = np.stack([c.image for _, c in crops])
    mel = clip.log_mel_3res()
    if mel is not None:
        arrays["log_mel_3res"] = mel
    if clip.face_tracks:
        arrays["azimuthal_spectra"] = clip.azimuthal_spectra()
    out = out_dir / f"{path.stem}.npz"
    atomic_save_npz(out, arrays)
    return {
        "source": str(path),
        "sha256": clip.evidence.sha256,
        "cache": out.name,
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forensic-train`` console script."""
    parser = argparse.ArgumentParser(prog="forensic-train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="write the engine's preprocessing of videos to npz")
    c.add_argument("inputs", nargs="+")
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--frames", type=int, default=32)
    c.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.command == "cache":
        entries, failed = [], []
        for path in tqdm(expand_inputs(args.inputs), unit="video"):
            try:
                entries.append(cache_video(path, args.out, args.frames, args.device))
            except EvidenceError as exc:
                failed.append({"path": str(path), "message": str(exc)})
                tqdm.write(f"skipped {exc}", file=sys.stderr)
        atomic_write_json(args.out / "index.json", {"videos": entries, "failed": failed})
        print(f"wrote {len(entries)} caches to {args.out} ({len(failed)} failed)")
        return 0 if not failed else 2
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
