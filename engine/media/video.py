"""Frame-accurate, PTS-indexed video decoding with sampling policies.

``VideoReader`` decodes with PyAV (FFmpeg bundled in the wheel). Frames are
addressed by presentation order index and by PTS in seconds, so variable frame
rate files are handled exactly. Sampling reads only what is needed: it decodes
sequentially through dense runs of targets and seeks to a keyframe only when a
keyframe lies between the current position and the next target (DESIGN.md,
"Performance notes").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np

from .container import DECODER_OPTIONS, check_frame_size, classify_av_error, open_container
from .errors import NoVideoStream
from .frame import Frame
from .index import FrameIndex, build_frame_index

log = logging.getLogger(__name__)

#: Default number of uniformly sampled frames (the field's standard, DESIGN.md).
DEFAULT_SAMPLE_FRAMES = 32


# --------------------------------------------------------------------------- policies
@dataclass(frozen=True)
class Uniform:
    """``n`` frames spread uniformly over the duration (by time, so VFR-safe).

    Target times are ``linspace(first_pts, last_pts, n)``; each takes the frame
    on screen at that time. Videos with fewer than ``n`` frames give all frames.
    """

    n: int = DEFAULT_SAMPLE_FRAMES

    def indices(self, index: FrameIndex) -> list[int]:
        """Frame indices selected from ``index``."""
        if self.n <= 0:
            raise ValueError(f"Uniform.n must be positive, got {self.n}")
        secs = index.seconds
        if self.n >= len(secs):
            return list(range(len(secs)))
        targets = np.linspace(secs[0], secs[-1], self.n)
        return sorted({index.index_at(float(t)) for t in targets})


@dataclass(frozen=True)
class EveryKth:
    """Every ``k``-th frame starting at frame ``start`` (seed 1 §1.6 uses k=2, start=0)."""

    k: int
    start: int = 0

    def indices(self, index: FrameIndex) -> list[int]:
        """Frame indices selected from ``index``."""
        if self.k <= 0:
            raise ValueError(f"EveryKth.k must be positive, got {self.k}")
        return list(range(max(self.start, 0), len(index), self.k))


@dataclass(frozen=True)
class FirstN:
    """The first ``n`` frames (seeds 3.2–3.5 read the first 25 frames)."""

    n: int

    def indices(self, index: FrameIndex) -> list[int]:
        """Frame indices selected from ``index``."""
        return list(range(min(max(self.n, 0), len(index))))


@dataclass(frozen=True)
class TimeRange:
    """Frames with ``start_s <= pts < end_s`` (seconds); at most ``max_frames``, uniformly thinned."""

    start_s: float
    end_s: float
    max_frames: int | None = None

    def indices(self, index: FrameIndex) -> list[int]:
        """Frame indices selected from ``index``."""
        secs = index.seconds
        sel = np.flatnonzero((secs >= self.start_s) & (secs < self.end_s))
        if self.max_frames is not None and len(sel) > self.max_frames:
            pick = np.linspace(0, len(sel) - 1, self.max_frames).round().astype(int)
            sel = sel[np.unique(pick)]
        return [int(i) for i in sel]


@dataclass(frozen=True)
class Indices:
    """Explicit frame indices (out-of-range ones are dropped)."""

    frames: tuple[int, ...]

    def indices(self, index: FrameIndex) -> list[int]:
        """Frame indices selected from ``index``."""
        return sorted({int(i) for i in self.frames if 0 <= int(i) < len(index)})


SamplingPolicy = Uniform | EveryKth | FirstN | TimeRange | Indices


# --------------------------------------------------------------------------- reader
def _apply_rotation(rgb: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return rgb if k == 0 else np.ascontiguousarray(np.rot90(rgb, k=k))


class VideoReader:
    """Frame-accurate reader of the first video stream of an evidence file.

    Args:
        path: evidence file (opened read-only).
        index: a :class:`FrameIndex` already built by :func:`engine.media.probe`
            (``Evidence.frame_index``), to avoid demuxing twice; built here if None.
        rotation: display rotation (degrees CCW) to apply; read from the first
            frame's display matrix if None.
        threads: let FFmpeg decode with frame/slice threads (``thread_type="AUTO"``).
            Off by default: on the 2-core reference machine frame threading made
            both sampled access (3.0 s → 5.2 s for 32 of 600 1080p frames) and
            sequential decode (4.6 s → 6.5 s) slower; ``bench/decode.py`` measures it.

    Raises:
        NoVideoStream: the file has no video stream.
        EvidenceError subclasses: the file cannot be opened or decoded.

    Example:
        >>> reader = VideoReader("clip.mp4")
        >>> for index, pts, rgb in reader: ...            # every frame, in order
        >>> frame = reader.frame_at(1.25)                  # frame on screen at 1.25 s
        >>> frames = reader.sample(Uniform(32))            # 32 frames over the duration
    """

    def __init__(
        self,
        path: str | Path,
        index: FrameIndex | None = None,
        rotation: int | None = None,
        threads: bool = False,
    ):
        self.path = Path(path)
        self._threads = threads
        self._container = None
        self._stream = None
        self._decoder: Iterator | None = None
        self._cursor = -1  # index of the last frame returned by the decoder, -1 = none yet
        with open_container(self.path) as container:
            if not container.streams.video:
                raise NoVideoStream(self.path, "the file contains no video stream")
            ctx = container.streams.video[0].codec_context
            if ctx is not None:
                check_frame_size(self.path, int(ctx.width or 0), int(ctx.height or 0))
            if rotation is None:
                rotation = 0
                try:
                    for frame in container.decode(container.streams.video[0]):
                        if -360 <= frame.rotation <= 360:  # else a degenerate display matrix (NaN → INT_MIN)
                            rotation = int(90 * round(frame.rotation / 90)) % 360
                        break
                except av.FFmpegError as exc:
                    raise classify_av_error(self.path, exc, "decoding the first video frame") from exc
        self.rotation = rotation
        self.index = index if index is not None else build_frame_index(self.path, 0)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.index)

    @property
    def pts_seconds(self) -> np.ndarray:
        """``float64 (N,)`` PTS of every frame in seconds from the first frame."""
        return self.index.seconds

    @property
    def origin_s(self) -> float:
        """Absolute stream time (seconds) of the first frame: ``Frame.pts == 0``."""
        return float(self.index.origin * self.index.time_base)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame plus one frame interval, seconds."""
        secs = self.index.seconds
        step = float(np.median(np.diff(secs))) if len(secs) > 1 else 0.0
        return float(secs[-1] + step)

    def close(self) -> None:
        """Release the decoder (the reader can be used again; it reopens lazily)."""
        if self._container is not None:
            self._container.close()
        self._container = self._stream = self._decoder = None
        self._cursor = -1

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ decoding core
    def _open(self) -> None:
        if self._container is None:
            try:
                self._container = av.open(str(self.path), mode="r", metadata_errors="replace",
                                          options=dict(DECODER_OPTIONS))
            except Exception as exc:
                raise classify_av_error(self.path, exc, "opening") from exc
            self._stream = self._container.streams.video[0]
            if self._threads:
                self._stream.thread_type = "AUTO"
            self._decoder = None
            self._cursor = -1

    def _restart_at(self, key_index: int) -> None:
        """Position the decoder so that the next frames start at keyframe ``key_index``.

        Keyframe 0 reopens the file (decoding from the very first packet is exact
        whatever the demuxer's seek precision); later keyframes seek backward to
        the keyframe's PTS.
        """
        if key_index <= 0:
            self.close()
            self._open()
        else:
            self._open()
            try:
                self._container.seek(
                    int(self.index.pts[key_index]), backward=True, any_frame=False, stream=self._stream
                )
            except av.FFmpegError:
                # the demuxer refuses this seek (damaged sample index: EPERM, EINVAL): decode from the start
                self.close()
                self._open()
                key_index = 0
        self._decoder = self._container.decode(self._stream)
        self._cursor = key_index - 1

    def _next_decoded(self) -> tuple[int, "av.VideoFrame"] | None:
        if self._decoder is None:
            self._open()
            self._decoder = self._container.decode(self._stream)
        try:
            frame = next(self._decoder)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise classify_av_error(self.path, exc, "decoding video") from exc
        if frame.pts is None or self.index.output_order:
            pos = self._cursor + 1
        else:
            pos = self.index.position_of(frame.pts)
        self._cursor = pos
        return pos, frame

    def _to_frame(self, pos: int, frame: "av.VideoFrame") -> Frame:
        rgb = _apply_rotation(frame.to_ndarray(format="rgb24"), self.rotation)
        return Frame(pos, float(self.index.seconds[pos]), rgb)

    def _decode_until(self, target: int) -> Frame:
        """Decode forward from the current position to frame ``target`` exactly."""
        while True:
            got = self._next_decoded()
            if got is None:
                break
            pos, frame = got
            if pos == target:
                return self._to_frame(pos, frame)
            if pos > target:
                break
        raise LookupError(target)

    def _read(self, target: int) -> Frame:
        """Frame ``target``: continue sequentially or seek, retrying from earlier keyframes."""
        # output-order indexes (see FrameIndex.output_order) can only count frames from the start
        key = 0 if self.index.output_order else self.index.keyframe_at_or_before(target)
        if self._decoder is None or not (key <= self._cursor + 1 and self._cursor < target):
            self._restart_at(key)
        try:
            return self._decode_until(target)
        except LookupError:
            pass
        # The seek landed after the target (inexact demuxer index): walk back keyframe by keyframe.
        keys = np.flatnonzero(self.index.keyframe[:key])
        for k in [*reversed(keys.tolist()), 0]:
            self._restart_at(int(k))
            try:
                return self._decode_until(target)
            except LookupError:
                continue
        raise classify_av_error(
            self.path, RuntimeError(f"frame {target} could not be decoded"), "decoding video"
        )

    # ------------------------------------------------------------------ public access
    def __iter__(self) -> Iterator[Frame]:
        """Every frame in presentation order, decoded sequentially from the start.

        Uses its own demuxer, so it can run alongside :meth:`frame_at` calls.

        Yields:
            :class:`Frame` ``(index, pts_seconds, rgb uint8 (H,W,3))``.

        Raises:
            CorruptMedia: decoding fails mid-stream.
        """
        last = -1
        with open_container(self.path) as container:
            stream = container.streams.video[0]
            if self._threads:
                stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    if frame.pts is None or self.index.output_order:
                        pos = last + 1
                    else:
                        pos = self.index.position_of(frame.pts)
                    if pos <= last:
                        continue
                    last = pos
                    yield self._to_frame(pos, frame)
            except av.FFmpegError as exc:
                raise classify_av_error(self.path, exc, "decoding video") from exc

    def frame_at(self, t: float) -> Frame:
        """The frame on screen at time ``t`` (seconds from the first frame).

        Seeks to the preceding keyframe and decodes forward to that exact frame, so
        the pixels equal those of a sequential decode.

        Raises:
            CorruptMedia: the frame cannot be decoded.
        """
        return self._read(self.index.index_at(t))

    def frame(self, i: int) -> Frame:
        """Frame number ``i`` (0-based, presentation order).

        Raises:
            IndexError: ``i`` is out of range.
        """
        if not 0 <= i < len(self.index):
            raise IndexError(f"{self.path}: frame {i} out of range (0..{len(self.index) - 1})")
        return self._read(i)

    def iter_sample(
        self,
        policy: SamplingPolicy = Uniform(),
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[Frame]:
        """Stream the frames a sampling policy selects, in order, decoding only what is needed.

        Args:
            policy: :class:`Uniform`, :class:`EveryKth`, :class:`FirstN`,
                :class:`TimeRange` or :class:`Indices`.
            cancel: polled between frames; when it returns True iteration stops.
        """
        for i in policy.indices(self.index):
            if cancel is not None and cancel():
                return
            yield self._read(i)

    def sample(self, policy: SamplingPolicy = Uniform(), cancel: Callable[[], bool] | None = None) -> list[Frame]:
        """The frames a sampling policy selects, as a list (see :meth:`iter_sample`)."""
        return list(self.iter_sample(policy, cancel))

    def frames(self, indices: Sequence[int]) -> list[Frame]:
        """Frames at explicit indices, in increasing order."""
        return self.sample(Indices(tuple(indices)))
