"""Audio decoding through PyAV: one waveform, resampled, for every audio feature."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from .container import classify_av_error, open_container

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class AudioTrack:
    """A decoded audio track, or the statement that there is none.

    Unpacks like the ``(waveform, sr)`` tuple of ``librosa.load``:
    ``wave, sr = load_audio(path, 22050)``.

    Attributes:
        waveform: ``float32``; ``(N,)`` when mono, ``(C, N)`` otherwise; values in
            [-1, 1]. Empty when there is no audio.
        sr: sample rate in Hz.
        start_s: absolute stream time (seconds) of the first sample; subtract
            ``VideoReader.origin_s`` to place it on the video's time axis.
        source_sample_rate, source_channels, codec: of the decoded stream.
        missing_reason: why there is no audio (``None`` when there is).
        problems: packets that failed to decode and were skipped, etc.
    """

    waveform: np.ndarray
    sr: int
    start_s: float = 0.0
    source_sample_rate: int | None = None
    source_channels: int | None = None
    codec: str | None = None
    missing_reason: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_audio(self) -> bool:
        """True when a waveform with at least one sample was decoded."""
        return self.missing_reason is None and self.waveform.size > 0

    def __bool__(self) -> bool:
        return self.has_audio

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.waveform.shape[-1] / float(self.sr) if self.sr else 0.0

    def __iter__(self) -> Iterator:
        yield self.waveform
        yield self.sr

    @classmethod
    def missing(cls, sr: int, reason: str, mono: bool = True) -> "AudioTrack":
        """The "no audio" result: an empty waveform and the reason."""
        empty = np.zeros((0,) if mono else (1, 0), dtype=np.float32)
        return cls(empty, sr, missing_reason=reason)


def load_audio(path: str | Path, sr: int, mono: bool = True, stream_index: int = 0) -> AudioTrack:
    """Decode an audio stream and resample it with FFmpeg's resampler (libswresample).

    Args:
        path: evidence file (any container with audio, or a plain audio file).
        sr: target sample rate in Hz.
        mono: average the channels (as ``librosa.to_mono``); else keep ``(C, N)``.
        stream_index: position among the file's audio streams.

    Returns:
        :class:`AudioTrack`. A file without audio gives ``AudioTrack.missing``
        (``has_audio`` False, ``missing_reason`` set) rather than an exception.
        Packets that fail to decode are skipped and listed in ``problems``.

    Raises:
        EvidenceNotFound, EmptyEvidence, NotMediaError, CorruptMedia,
        UnsupportedCodec: the file itself is unusable.
    """
    path = Path(path)
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    with open_container(path) as container:
        streams = container.streams.audio
        if len(streams) <= stream_index:
            return AudioTrack.missing(sr, f"{path.name}: no audio stream", mono)
        stream = streams[stream_index]
        ctx = stream.codec_context
        if ctx is None:
            return AudioTrack.missing(sr, f"{path.name}: no decoder for the audio codec", mono)
        resampler = av.AudioResampler(format="flt", rate=sr)
        setup: tuple | None = None  # (sample format, layout, rate) the resampler was built for
        changes = 0
        chunks: list[np.ndarray] = []
        problems: list[str] = []
        bad = 0
        start_s: float | None = None

        def take(frames) -> None:
            # Packed output ("flt", one plane): PyAV finds the planes of a planar frame by walking
            # extended_data to a NULL pointer, which runs past the end (segfault) for > 8 channels.
            for out in frames:
                chunks.append(out.to_ndarray().reshape(-1, out.layout.nb_channels).T)

        def resample(frame) -> None:
            # A stream whose sample rate/layout/format changes mid-stream (spliced or damaged
            # MPEG audio, ADTS): PyAV's resampler refuses frames that differ from the first one
            # (ValueError), so flush it and start a new one for the new parameters.
            nonlocal resampler, setup, changes
            params = (frame.format.name, frame.layout.name, frame.layout.nb_channels, frame.sample_rate)
            if setup is not None and params != setup:
                take(resampler.resample(None))
                resampler = av.AudioResampler(format="flt", rate=sr)
                changes += 1
            setup = params
            take(resampler.resample(frame))

        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    bad += 1
                    continue
                for frame in decoded:
                    if start_s is None and frame.pts is not None and frame.time_base is not None:
                        start_s = float(frame.pts * frame.time_base)
                    resample(frame)
            take(resampler.resample(None))
        except av.FFmpegError as exc:
            if not chunks:
                raise classify_av_error(path, exc, "decoding audio") from exc
            problems.append(f"audio decoding stopped early: {exc}")
        if bad:
            problems.append(f"{bad} audio packets could not be decoded and were skipped")
        if changes:
            problems.append(f"the audio format (rate/channels) changed {changes} times mid-stream; each part resampled")
        if not chunks:
            return AudioTrack.missing(sr, f"{path.name}: the audio stream holds no decodable samples", mono)
        channels = max(c.shape[0] for c in chunks)
        chunks = [c if c.shape[0] == channels else np.broadcast_to(c.mean(0, keepdims=True), (channels, c.shape[1])) for c in chunks]
        wave = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
        if mono:
            wave = wave.mean(axis=0, dtype=np.float32)
        for msg in problems:
            log.warning("%s: %s", path, msg)
        return AudioTrack(
            np.ascontiguousarray(wave),
            sr,
            start_s=start_s or 0.0,
            source_sample_rate=int(ctx.sample_rate or 0) or None,
            source_channels=int(ctx.channels or 0) or None,
            codec=ctx.name,
            problems=tuple(problems),
        )
