"""Decode benchmark: sequential decode vs 32-frame uniform sampling of a 1080p clip, and peak RSS.

Generates a 1080p H.264 clip (default 20 s at 30 fps, keyframe every 2 s, like
phone footage) in a temp folder, then measures in the same run:

* sequential decode of every frame to RGB (frames/s);
* ``VideoReader.sample(Uniform(32))`` (our planner: sequential through dense
  runs, seek only across keyframe gaps) — time and sampled frames/s;
* the naive baseline: decode from the start up to each sampled frame (what a
  reader without keyframe seeking does), and one fresh seek per frame;
* peak RSS of this process (VmHWM, :func:`bench.memory.peak_rss_bytes`).

Usage: ``python bench/decode.py [--seconds 20] [--fps 30] [--size 1920x1080]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.media import Uniform, VideoReader, probe  # noqa: E402


def make_clip(path: Path, seconds: int, fps: int, w: int, h: int) -> Path:
    """Encode a moving-texture 1080p clip with PyAV (libx264, GOP = 2 s)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h + 64, w + 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(2 * fps), "crf": "23"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * fps):
            dx, dy = (i * 3) % 64, (i * 2) % 64
            img = np.ascontiguousarray(base[dy : dy + h, dx : dx + w])
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (:func:`bench.memory.peak_rss_bytes`)."""
    from bench.memory import peak_rss_bytes

    return peak_rss_bytes() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=32)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        clip = make_clip(Path(tmp) / "bench.mp4", args.seconds, args.fps, w, h)
        print(f"generated {args.size} {args.seconds}s@{args.fps} clip in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        ev = probe(clip)
        t_probe = time.perf_counter() - t
        reader = VideoReader(clip, index=ev.frame_index)
        n = len(reader)
        print(f"probe + SHA-256 + packet index: {t_probe * 1000:.0f} ms ({n} frames, "
              f"{int(reader.index.keyframe.sum())} keyframes)")

        t = time.perf_counter()
        count = sum(1 for _ in reader)
        t_seq = time.perf_counter() - t
        print(f"sequential decode → RGB: {count} frames in {t_seq:.2f}s = {count / t_seq:.0f} frames/s")

        t = time.perf_counter()
        frames = VideoReader(clip, index=ev.frame_index).sample(Uniform(args.frames))
        t_sample = time.perf_counter() - t
        print(f"Uniform({args.frames}) sample (planned seeks): {t_sample:.2f}s "
              f"= {len(frames) / t_sample:.1f} sampled frames/s")

        targets = [f.index for f in frames]
        t = time.perf_counter()
        for i in targets:  # naive: reopen and decode from the start to each target
            with av.open(str(clip)) as c:
                for k, _ in enumerate(c.decode(video=0)):
                    if k == i:
                        break
        t_naive = time.perf_counter() - t
        t = time.perf_counter()
        with av.open(str(clip)) as c:  # one seek per target, then decode to it
            st = c.streams.video[0]
            for i in targets:
                pts = int(reader.index.pts[i])
                c.seek(pts, stream=st, backward=True)
                for f in c.decode(st):
                    if f.pts >= pts:
                        f.to_ndarray(format="rgb24")
                        break
        t_seek = time.perf_counter() - t
        print(f"baseline decode-from-start per frame: {t_naive:.2f}s  → sampling speed-up {t_naive / t_sample:.1f}x")
        print(f"baseline one seek per frame:          {t_seek:.2f}s  → sampling speed-up {t_seek / t_sample:.1f}x")
        print(f"sampling vs full sequential decode:   {t_seq / t_sample:.1f}x faster")
        print(f"peak RSS: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
