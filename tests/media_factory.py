"""Generate small test videos with PyAV (no system ffmpeg needed).

Each frame carries its own number as a grey level in an 8×8 block grid plus an
asymmetric corner marker, so tests can check both "which frame" and
"which way up".
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np


def pattern(i: int, h: int, w: int) -> np.ndarray:
    """uint8 (h, w, 3) RGB frame number ``i``: gradient + a red top-left marker."""
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (x * 0.5 + i * 7) % 256
    img[..., 1] = (y * 0.5 + i * 13) % 256
    img[..., 2] = (i * 29) % 256
    img[: max(h // 6, 2), : max(w // 4, 2)] = (255, 0, 0)  # top-left marker (asymmetric)
    return img


def make_video(
    path: Path,
    n_frames: int = 30,
    size: tuple[int, int] = (160, 120),
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    pts_ms: Sequence[int] | None = None,
    audio_seconds: float | None = None,
    audio_rate: int = 16000,
    faststart: bool = False,
    options: dict | None = None,
    frame_fn: Callable[[int, int, int], np.ndarray] | None = None,
) -> Path:
    """Encode a test clip.

    Args:
        size: (width, height) in pixels.
        rotation: display rotation written into the container (degrees CCW).
        pts_ms: explicit presentation times in ms for a variable-frame-rate file.
        audio_seconds: add an AAC track with a 440 Hz tone of this length.
        faststart: put the moov atom at the front (mp4/mov only).
        frame_fn: ``frame_fn(i, h, w)`` → uint8 (h, w, 3) RGB frame ``i``; default :func:`pattern`.
    """
    w, h = size
    path = Path(path)
    container_opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=container_opts) as out:
        vs = out.add_stream(codec, rate=fps, options=options or {})
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if pts_ms is not None:
            vs.time_base = Fraction(1, 1000)
            vs.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            vs.set_display_rotation(rotation)
        astream = None
        if audio_seconds:
            astream = out.add_stream("aac", rate=audio_rate)
            astream.layout = "mono"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray((frame_fn or pattern)(i, h, w), format="rgb24")
            if pts_ms is not None:
                frame.pts = int(pts_ms[i])
                frame.time_base = Fraction(1, 1000)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            n = int(audio_seconds * audio_rate)
            t = np.arange(n) / audio_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            step = 1024
            for start in range(0, n, step):
                chunk = tone[start : start + step][None, :]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                af.sample_rate = audio_rate
                af.pts = start
                af.time_base = Fraction(1, audio_rate)
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def make_audio_only(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    """An .m4a file with a 440 Hz AAC tone and no video stream."""
    with av.open(str(path), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=rate)
        a.layout = "mono"
        n = int(seconds * rate)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[start : start + 1024][None]), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode():
            out.mux(p)
    return path


def make_unsupported_codec(path: Path) -> Path:
    """An AVI whose video FOURCC names no codec FFmpeg knows (demuxable, not decodable)."""
    src = path.with_suffix(".src.avi")
    make_video(src, n_frames=5, codec="mpeg4", options={})
    data = src.read_bytes()
    # The AVI muxer writes the mpeg4 FOURCC ("FMP4") in strh and strf; replace both.
    assert b"FMP4" in data
    path.write_bytes(data.replace(b"FMP4", b"ZQZQ"))
    src.unlink()
    return path
