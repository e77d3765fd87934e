"""Presentation-order frame index of a video stream, built without decoding.

DESIGN.md "Performance notes": seeking costs a decode from the preceding
keyframe, so the reader needs the keyframe positions up front. They come from
demuxing packets (cheap: no decoding). The packet index is verified against a
short sequential decode of the first frames; streams where packets and frames
do not correspond one to one (field-coded interlaced H.264 as in AVCHD .mts,
where two field packets make one frame) fall back to an index built by
decoding every frame, which is always correct but costs a full decode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .container import classify_av_error, open_container

log = logging.getLogger(__name__)

#: Number of leading frames decoded to verify a packet-derived index.
VERIFY_FRAMES = 48


@dataclass(frozen=True)
class FrameIndex:
    """PTS of every frame of one video stream, in presentation order.

    Attributes:
        pts: ``int64 (N,)`` presentation timestamps in stream ticks, strictly increasing.
        keyframe: ``bool (N,)``: the frame can be decoded without earlier frames.
        time_base: seconds per tick.
        method: ``"demux"`` (from packets, verified) or ``"decode"`` (from a full decode).
        complete: False when demuxing stopped early on a read error (truncated file).
        problems: human-readable notes on irregularities found while indexing.
        output_order: decoded frames carry no usable presentation timestamps (e.g.
            H.264 with B-frames in AVI, where each frame gets its packet's decode
            time): frame ``k`` is the ``k``-th frame the decoder outputs, and
            ``pts`` is the sorted set of those timestamps.
    """

    pts: np.ndarray
    keyframe: np.ndarray
    time_base: Fraction
    method: str
    complete: bool = True
    problems: tuple[str, ...] = field(default_factory=tuple)
    output_order: bool = False

    def __len__(self) -> int:
        return int(self.pts.shape[0])

    @property
    def origin(self) -> int:
        """PTS (ticks) of the first frame: the zero of every ``Frame.pts``."""
        return int(self.pts[0])

    @property
    def seconds(self) -> np.ndarray:
        """``float64 (N,)`` frame times in seconds relative to the first frame."""
        return (self.pts - self.origin).astype(np.float64) * float(self.time_base)

    def to_seconds(self, pts: int) -> float:
        """Stream ticks → seconds relative to the first frame."""
        return float((pts - self.origin) * self.time_base)

    def index_at(self, t: float) -> int:
        """Index of the frame on screen at time ``t`` (seconds): the last frame with pts ≤ t.

        Times before the first frame give 0, after the last frame the last index.
        A tolerance of a quarter of the smallest frame interval absorbs float
        rounding of times computed from another frame's pts.
        """
        secs = self.seconds
        tol = 1e-6 if len(secs) < 2 else 0.25 * float(np.min(np.diff(secs)))
        i = int(np.searchsorted(secs, t + tol, side="right")) - 1
        return min(max(i, 0), len(secs) - 1)

    def position_of(self, pts: int) -> int:
        """Index of the frame with exactly this pts, or the nearest one."""
        i = int(np.searchsorted(self.pts, pts))
        if i < len(self.pts) and self.pts[i] == pts:
            return i
        candidates = [j for j in (i - 1, i) if 0 <= j < len(self.pts)]
        return min(candidates, key=lambda j: abs(int(self.pts[j]) - pts))

    def keyframe_at_or_before(self, i: int) -> int:
        """Index of the last keyframe at or before frame ``i`` (0 if none is flagged)."""
        keys = np.flatnonzero(self.keyframe[: i + 1])
        return int(keys[-1]) if keys.size else 0

    @property
    def measured_fps(self) -> float | None:
        """1 / median frame interval (frames/s), or None for a single frame."""
        if len(self.pts) < 2:
            return None
        return 1.0 / float(np.median(np.diff(self.seconds)))

    @property
    def is_vfr(self) -> bool:
        """Variable frame rate: frame intervals differ by more than 10 % (outliers allowed)."""
        if len(self.pts) < 3:
            return False
        d = np.diff(self.seconds)
        lo, hi = np.percentile(d, [5, 95])
        return bool(hi > 1.1 * lo)


def _packet_index(container, stream) -> tuple[list[int], list[bool], bool, list[str]]:
    pts: list[int] = []
    keys: list[bool] = []
    problems: list[str] = []
    complete = True
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # flush packet
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                raise _NoTimestamps()
            pts.append(int(ts))
            keys.append(bool(packet.is_keyframe))
    except _NoTimestamps:
        raise
    except av.FFmpegError as exc:
        complete = False
        problems.append(f"demuxing stopped after {len(pts)} video packets: {exc}")
    return pts, keys, complete, problems


class _NoTimestamps(Exception):
    pass


def _decode_index(path: Path, stream_index: int) -> tuple[list[int], list[bool], bool, list[str], bool]:
    pts: list[int] = []
    keys: list[bool] = []
    problems: list[str] = []
    complete = True
    with open_container(path) as container:
        stream = container.streams.video[stream_index]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.base_rate or Fraction(25)
        tick = int(round(1 / (rate * stream.time_base))) if stream.time_base else 1
        try:
            for frame in container.decode(stream):
                ts = frame.pts
                if ts is None:
                    ts = (pts[-1] + tick) if pts else 0
                pts.append(int(ts))
                keys.append(bool(frame.key_frame))
        except av.FFmpegError as exc:
            complete = False
            problems.append(f"decoding stopped after {len(pts)} frames: {exc}")
    if any(b <= a for a, b in zip(pts, pts[1:])):
        # The decoder outputs frames in presentation order, so out-of-order timestamps are
        # decode times (AVI has no pts): number frames by output order instead.
        problems.append("decoded frame timestamps are not in presentation order; frames numbered in output order")
        srt = sorted(pts)
        if any(b <= a for a, b in zip(srt, srt[1:])):
            srt = [srt[0] + i * tick for i in range(len(srt))]
        return srt, keys, complete, problems, True
    return pts, keys, complete, problems, False


def _leading_decoded_pts(path: Path, stream_index: int, n: int) -> list[int | None]:
    out: list[int | None] = []
    with open_container(path) as container:
        stream = container.streams.video[stream_index]
        try:
            for frame in container.decode(stream):
                out.append(frame.pts)
                if len(out) >= n:
                    break
        except av.FFmpegError:
            pass
    return out


def build_frame_index(path: str | Path, stream_index: int = 0) -> FrameIndex:
    """Index the frames of video stream ``stream_index`` (position among video streams).

    Demuxes every packet (no decoding), then decodes the first
    :data:`VERIFY_FRAMES` frames to check that decoded frames carry exactly the
    leading packet timestamps in presentation order. If not (field-coded
    streams, missing timestamps, edit-list oddities), the index is built by
    decoding every frame instead.

    Raises:
        CorruptMedia: not a single frame could be indexed.
        EvidenceError subclasses from :func:`open_container`.
    """
    path = Path(path)
    method = "demux"
    output_order = False
    with open_container(path) as container:
        stream = container.streams.video[stream_index]
        time_base = stream.time_base or Fraction(1, 90000)
        try:
            pts, keys, complete, problems = _packet_index(container, stream)
        except _NoTimestamps:
            pts, keys, complete, problems = [], [], True, ["packets carry no timestamps"]
    if pts:
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        p = np.asarray(pts, dtype=np.int64)[order]
        k = np.asarray(keys, dtype=bool)[order]
        n_check = min(VERIFY_FRAMES, len(p))
        leading = _leading_decoded_pts(path, stream_index, n_check)
        ok = len(np.unique(p)) == len(p) and leading == [int(x) for x in p[: len(leading)]]
        ok = ok and (len(leading) == n_check or not complete)
    else:
        ok = False
    if not ok:
        if pts:
            problems.append("packet timestamps do not map one-to-one to frames; index built by decoding")
        method = "decode"
        pts, keys, complete2, problems2, output_order = _decode_index(path, stream_index)
        complete = complete and complete2
        problems += problems2
        if not pts:
            raise classify_av_error(path, RuntimeError("no decodable video frame"), "indexing video")
        p = np.asarray(pts, dtype=np.int64)
        order = np.argsort(p, kind="stable")
        p, k = p[order], np.asarray(keys, dtype=bool)[order]
        keep = np.concatenate([[True], np.diff(p) > 0])
        if not keep.all():
            problems.append(f"{int((~keep).sum())} frames with duplicate timestamps dropped from the index")
        p, k = p[keep], k[keep]
    if not k.any():
        k = k.copy()
        k[0] = True
    for msg in problems:
        log.info("%s: %s", path, msg)
    return FrameIndex(p, k, Fraction(time_base), method, complete, tuple(problems), output_order)
