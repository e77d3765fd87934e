"""``probe``: what an evidence file is, with its SHA-256, before anything else touches it.

The fields mirror what ``ffprobe`` reports (container, duration, per-stream
codec, resolution, frame rates, rotation, audio sample rate and channels) plus
what a forensic report needs (SHA-256 and byte size, creation time, device and
encoder tags, integrity warnings).
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import av

from .container import (
    check_file, check_frame_size, classify_av_error, looks_like_media, open_container, sha256_file,
)
from .errors import CorruptMedia, EvidenceModified, NoVideoStream
from .index import FrameIndex, build_frame_index

log = logging.getLogger(__name__)

#: Tag keys (lower-case, container or stream level) that identify the recording
#: device or the software that last wrote the file.
DEVICE_TAG_KEYS = (
    "make", "model", "software", "encoder", "handler_name", "com.apple.quicktime.make",
    "com.apple.quicktime.model", "com.apple.quicktime.software", "com.apple.quicktime.creationdate",
    "com.apple.quicktime.location.iso6709", "com.android.manufacturer", "com.android.model",
    "com.android.version", "com.android.capture.fps", "location", "location-eng", "firmware",
    "major_brand", "compatible_brands", "creation_time",
)

_CONTAINER_EXTENSIONS = {
    "mov,mp4,m4a,3gp,3g2,mj2": {".mp4", ".mov", ".m4v", ".3gp", ".3g2", ".m4a", ".mj2", ".qt"},
    "avi": {".avi"},
    "matroska,webm": {".mkv", ".webm", ".mka"},
    "mpegts": {".ts", ".mts", ".m2ts", ".m2t"},
    "mpeg": {".mpg", ".mpeg", ".vob", ".mod"},
    "flv": {".flv"},
    "asf": {".wmv", ".asf", ".wma"},
}


def _fps(rate: Fraction | None) -> float | None:
    return float(rate) if rate else None


def _seconds(ts: int | None, time_base: Fraction | None) -> float | None:
    if ts is None or time_base is None:
        return None
    return float(ts * time_base)


@dataclass(frozen=True)
class VideoStreamInfo:
    """One video stream.

    Attributes:
        index: stream index in the container (ffprobe's ``index``).
        codec, codec_long, profile, pix_fmt: decoder name, long name, profile, pixel format.
        width, height: coded size in pixels (before rotation).
        display_width, display_height: size in pixels after the display rotation.
        rotation: display rotation in degrees counter-clockwise (ffprobe's
            display-matrix ``rotation``), normalised to 0, 90, 180 or 270.
        avg_fps: average frame rate (ffprobe ``avg_frame_rate``), frames/s.
        real_fps: real base frame rate (ffprobe ``r_frame_rate``) as the bundled FFmpeg
            reports it, frames/s.
        measured_fps: 1 / median interval between frame timestamps, frames/s.
        frame_count_declared: frame count stored in the container, or None.
        frame_count: frames actually indexed in the file.
        duration_s: stream duration in seconds, or None.
        start_time_s: stream start time in seconds (absolute stream clock).
        bit_rate: bits/s, or None.
        vfr: frame intervals vary (variable frame rate).
        index_method: ``"demux"`` or ``"decode"`` (see :mod:`engine.media.index`).
    """

    index: int
    codec: str
    codec_long: str
    profile: str | None
    pix_fmt: str | None
    width: int
    height: int
    display_width: int
    display_height: int
    rotation: int
    avg_fps: float | None
    real_fps: float | None
    measured_fps: float | None
    frame_count_declared: int | None
    frame_count: int
    duration_s: float | None
    start_time_s: float | None
    bit_rate: int | None
    vfr: bool
    index_method: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream: codec, sample rate (Hz), channels, layout, duration (s), bits/s."""

    index: int
    codec: str
    codec_long: str
    sample_rate: int
    channels: int
    layout: str | None
    duration_s: float | None
    start_time_s: float | None
    bit_rate: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceInfo:
    """Device and software identification gathered from container and stream tags."""

    make: str | None = None
    model: str | None = None
    software: str | None = None
    encoder: str | None = None
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line for tables: ``"Apple iPhone 6 (iOS 12.3)"`` or ``"encoder Lavf58"``."""
        parts = [p for p in (self.make, self.model) if p]
        if self.software:
            parts.append(f"({self.software})")
        if not parts and self.encoder:
            parts.append(f"encoder {self.encoder}")
        return " ".join(parts) or "no device tags"


@dataclass(frozen=True)
class Evidence:
    """Everything ``probe`` learned about one evidence file.

    Attributes:
        path: absolute path.
        sha256: SHA-256 of the file bytes at probe time (hex).
        size_bytes: file size in bytes.
        container, container_long: FFmpeg demuxer name and long name.
        duration_s: container duration in seconds (ffprobe ``format.duration``), or None.
        bit_rate: container bits/s, or None.
        creation_time: ISO-8601 creation time from the tags, or None.
        tags: container-level tags, keys lower-cased.
        device: make/model/software/encoder/location from all tags.
        video, audio: per-stream information.
        warnings: integrity notes (truncation, extension mismatch, irregular timestamps).
        frame_index: the primary video stream's :class:`FrameIndex` (not serialised),
            handed to ``VideoReader`` so the file is not demuxed twice.
    """

    path: str
    sha256: str
    size_bytes: int
    container: str
    container_long: str
    duration_s: float | None
    bit_rate: int | None
    creation_time: str | None
    tags: dict[str, str]
    device: DeviceInfo
    video: tuple[VideoStreamInfo, ...]
    audio: tuple[AudioStreamInfo, ...]
    warnings: tuple[str, ...] = ()
    frame_index: FrameIndex | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """File name without folders."""
        return Path(self.path).name

    @property
    def primary_video(self) -> VideoStreamInfo:
        """The first video stream.

        Raises:
            NoVideoStream: the file has none.
        """
        if not self.video:
            raise NoVideoStream(self.path, "the file contains no video stream")
        return self.video[0]

    @property
    def has_audio(self) -> bool:
        """Whether the file has at least one audio stream."""
        return bool(self.audio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the frame index is left out)."""
        d = asdict(self)
        d.pop("frame_index", None)
        d["device"]["summary"] = self.device.summary
        return d

    def verify_unchanged(self) -> None:
        """Re-hash the file and compare with the intake SHA-256.

        Raises:
            EvidenceModified: the bytes changed since probe.
            EvidenceNotFound / EvidenceReadError: the file is gone or unreadable.
        """
        now = sha256_file(self.path)
        if now != self.sha256:
            raise EvidenceModified(
                self.path, f"SHA-256 changed since intake (was {self.sha256}, now {now})"
            )


def _lower_tags(metadata: dict[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (metadata or {}).items()}


def _device_info(all_tags: dict[str, str]) -> DeviceInfo:
    def first(*keys: str) -> str | None:
        for key in keys:
            if all_tags.get(key):
                return all_tags[key].strip()
        return None

    picked = {k: v for k, v in all_tags.items() if k in DEVICE_TAG_KEYS or k.startswith(("com.apple.", "com.android."))}
    return DeviceInfo(
        make=first("com.apple.quicktime.make", "com.android.manufacturer", "make"),
        model=first("com.apple.quicktime.model", "com.android.model", "model"),
        software=first("com.apple.quicktime.software", "com.android.version", "software", "firmware"),
        encoder=first("encoder"),
        location=first("com.apple.quicktime.location.iso6709", "location", "location-eng"),
        tags=picked,
    )


def _creation_time(tags: dict[str, str], stream_tags: list[dict[str, str]]) -> str | None:
    for t in [tags, *stream_tags]:
        for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
            if t.get(key):
                return t[key]
    return None


def _first_frame_rotation(path: Path, container, stream) -> int:
    """Display rotation (degrees CCW) from the first decoded frame's display matrix."""
    try:
        for frame in container.decode(stream):
            rot = frame.rotation
            # a degenerate display matrix (zero scale) gives NaN, which PyAV returns as INT_MIN
            return int(round(rot)) % 360 if -360 <= rot <= 360 else 0
    except av.FFmpegError as exc:
        raise classify_av_error(path, exc, "decoding the first video frame") from exc
    raise CorruptMedia(path, "truncated or corrupt: the video stream has no decodable frame")


def _normalise_rotation(deg: int) -> int:
    return int(90 * round(deg / 90)) % 360


def probe(path: str | Path, *, require_video: bool = False, strict: bool = False,
          check: Callable[[], None] | None = None) -> Evidence:
    """Identify an evidence file and hash it (SHA-256), read-only.

    Args:
        path: evidence file.
        require_video: raise :class:`NoVideoStream` for audio-only files.
        strict: raise :class:`CorruptMedia` when the file is only partly readable
            (truncated) instead of returning it with a warning.
        check: called between the hash's 1 MiB chunks (see :func:`sha256_file`); what it
            raises, e.g. a cancel, ends the probe.

    Returns:
        :class:`Evidence`.

    Raises:
        EvidenceNotFound, EmptyEvidence, NotMediaError, CorruptMedia,
        UnsupportedCodec, NoVideoStream, EvidenceReadError: each naming the file.
    """
    given = check_file(path)
    path = given.resolve()
    size = path.stat().st_size
    digest = sha256_file(path, check=check)
    warnings: list[str] = []
    if given.is_symlink():  # the report names the file actually read, and how it was reached
        warnings.append(f"opened through a symbolic link: {given.absolute()} -> {path}")
    video: list[VideoStreamInfo] = []
    audio: list[AudioStreamInfo] = []
    with open_container(path) as container:
        fmt = container.format
        tags = _lower_tags(container.metadata)
        stream_tags: list[dict[str, str]] = []
        if not container.streams.video and not container.streams.audio:
            if not container.streams and looks_like_media(path):
                raise CorruptMedia(path, "truncated or corrupt: no audio or video stream could be read "
                                         "(zero duration, or the container index is missing)")
            raise NoVideoStream(path, "the file contains neither a video nor an audio stream")
        for s in container.streams.audio:
            ctx = s.codec_context
            st = _lower_tags(s.metadata)
            stream_tags.append(st)
            if ctx is None:
                warnings.append(f"audio stream {s.index}: no decoder for its codec")
                continue
            audio.append(
                AudioStreamInfo(
                    index=s.index,
                    codec=ctx.name,
                    codec_long=ctx.codec.long_name,
                    sample_rate=int(ctx.sample_rate or 0),
                    channels=int(ctx.channels or 0),
                    layout=getattr(ctx.layout, "name", None),
                    duration_s=_seconds(s.duration, s.time_base),
                    start_time_s=_seconds(s.start_time, s.time_base),
                    bit_rate=int(ctx.bit_rate) if ctx.bit_rate else None,
                    tags=st,
                )
            )
        video_streams = list(container.streams.video)
        rotations: list[int] = []
        for s in video_streams:
            st = _lower_tags(s.metadata)
            stream_tags.append(st)
            if s.codec_context is None:
                raise classify_av_error(
                    path, av.error.DecoderNotFoundError(0, "decoder not found"), f"opening video stream {s.index}"
                )
            check_frame_size(path, int(s.codec_context.width or 0), int(s.codec_context.height or 0))
        for s in video_streams[:1]:
            rotations.append(_first_frame_rotation(path, container, s))
    if not video_streams:
        if require_video:
            raise NoVideoStream(path, "the file contains no video stream (audio only)")
        warnings.append("no video stream: only audio detectors can run")
    index: FrameIndex | None = None
    if video_streams:
        index = build_frame_index(path, 0)
        if not index.complete:
            warnings.append("truncated or corrupt video: " + "; ".join(index.problems))
        with open_container(path) as container:
            for pos, s in enumerate(container.streams.video):
                ctx = s.codec_context
                rot = _normalise_rotation(rotations[0]) if pos == 0 else 0
                w, h = int(ctx.width), int(ctx.height)
                dw, dh = (h, w) if rot in (90, 270) else (w, h)
                declared = int(s.frames) if s.frames else None
                n_indexed = len(index) if pos == 0 else (declared or 0)
                if pos == 0 and declared and n_indexed < declared * 0.98 - 1:
                    warnings.append(
                        f"truncated video: {n_indexed} of {declared} declared frames are present"
                    )
                video.append(
                    VideoStreamInfo(
                        index=s.index,
                        codec=ctx.name,
                        codec_long=ctx.codec.long_name,
                        profile=s.profile,
                        pix_fmt=ctx.pix_fmt,
                        width=w,
                        height=h,
                        display_width=dw,
                        display_height=dh,
                        rotation=rot,
                        avg_fps=_fps(s.average_rate),
                        real_fps=_fps(s.base_rate),
                        measured_fps=index.measured_fps if pos == 0 else None,
                        frame_count_declared=declared,
                        frame_count=n_indexed,
                        duration_s=_seconds(s.duration, s.time_base),
                        start_time_s=_seconds(s.start_time, s.time_base),
                        bit_rate=int(ctx.bit_rate) if ctx.bit_rate else None,
                        vfr=index.is_vfr if pos == 0 else False,
                        index_method=index.method if pos == 0 else "none",
                        tags=_lower_tags(s.metadata),
                    )
                )
            duration = container.duration / av.time_base if container.duration else None
            bit_rate = int(container.bit_rate) if container.bit_rate else None
            fmt_name, fmt_long = fmt.name, fmt.long_name
    else:
        with open_container(path) as container:
            duration = container.duration / av.time_base if container.duration else None
            bit_rate = int(container.bit_rate) if container.bit_rate else None
            fmt_name, fmt_long = container.format.name, container.format.long_name
    ext = path.suffix.lower()
    expected = _CONTAINER_EXTENSIONS.get(fmt_name)
    if expected is not None and ext not in expected:
        warnings.append(f"extension {ext or '(none)'} does not match the container format ({fmt_name})")
    if strict and any(w.startswith("truncated") for w in warnings):
        raise CorruptMedia(path, "; ".join(w for w in warnings if w.startswith("truncated")))
    all_tags = dict(tags)
    for st in stream_tags:
        for k, v in st.items():
            all_tags.setdefault(k, v)
    return Evidence(
        path=str(path),
        sha256=digest,
        size_bytes=size,
        container=fmt_name,
        container_long=fmt_long,
        duration_s=duration,
        bit_rate=bit_rate,
        creation_time=_creation_time(tags, stream_tags),
        tags=tags,
        device=_device_info(all_tags),
        video=tuple(video),
        audio=tuple(audio),
        warnings=tuple(warnings),
        frame_index=index,
    )


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with seconds (for provenance records)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
