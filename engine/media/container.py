"""Opening evidence with PyAV, mapping every failure to a typed ``EvidenceError``.

This is the only module that calls ``av.open`` on evidence; probe, the video
reader and the audio loader all go through :func:`open_container`, so a bad
file gets the same clear message wherever it is first touched. Evidence is
always opened read-only.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import av

from .errors import (
    CorruptMedia,
    EmptyEvidence,
    EvidenceError,
    EvidenceNotFound,
    EvidenceReadError,
    NotMediaError,
    UnsupportedCodec,
)

HASH_CHUNK_BYTES = 1 << 20

# Leading bytes of the containers evidence arrives in. A file that starts like a
# container but that FFmpeg cannot open is "truncated or corrupt"; anything else
# is "not a media file".
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"wide"), (4, b"free"), (4, b"skip"),
    (0, b"RIFF"), (0, b"\x1aE\xdf\xa3"), (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"),
    (0, b"FLV"), (0, b"OggS"), (0, b"fLaC"), (0, b"ID3"), (0, b"0&\xb2u\x8ef\xcf\x11"),
    (0, b".RMF"), (0, b"\xff\xf1"), (0, b"\xff\xf9"), (0, b"\xff\xfb"), (0, b"\xff\xf3"),
)


#: Largest frame the engine decodes, in pixels (8192×4608: 8K UHD and DCI 8K with headroom).
#: A decoded RGB frame of this size is 113 MB; 32 sampled frames are held at once.
MAX_FRAME_PIXELS = 8192 * 4608
#: Longest frame side the engine decodes, in pixels.
MAX_FRAME_SIDE = 16384
#: Options of every ``av.open`` on evidence: decoders refuse frames over :data:`MAX_FRAME_PIXELS`.
DECODER_OPTIONS = {"max_pixels": str(MAX_FRAME_PIXELS)}


def check_frame_size(path: str | Path, width: int, height: int) -> None:
    """Refuse a video stream whose declared frame size is implausibly large, before decoding it.

    A forged or corrupt header (H.264 SPS, ``stsd``) can declare e.g. 16000×16000
    pixels for a few-kB file; decoding it would allocate gigabytes per frame.

    Args:
        path: the evidence file (named in the error).
        width, height: declared frame size in pixels (0 when unknown: accepted).

    Raises:
        CorruptMedia: ``width × height`` exceeds :data:`MAX_FRAME_PIXELS` or a side
            exceeds :data:`MAX_FRAME_SIDE`.
    """
    if width * height > MAX_FRAME_PIXELS or max(width, height) > MAX_FRAME_SIDE:
        raise CorruptMedia(
            Path(path),
            f"truncated or corrupt: declared frame size {width}x{height} is implausible "
            f"(limit {MAX_FRAME_PIXELS // 10**6} Mpixels, {MAX_FRAME_SIDE} px a side); not decoded",
        )


def sha256_file(path: str | Path, check: Callable[[], None] | None = None) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (bounded memory).

    Args:
        path: the file; opened read-only.
        check: called before each chunk; whatever it raises ends the hash (the
            analysis pipeline passes its cancel check, so hashing gigabytes of
            evidence or a cold weight file stops within one chunk of a Cancel).

    Returns:
        Lower-case hex digest (64 characters).

    Raises:
        EvidenceNotFound: the path does not exist.
        EvidenceReadError: the file cannot be read.
        Exception: whatever ``check`` raises (e.g. ``engine.pipeline.AnalysisCancelled``).
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while True:
                if check is not None:
                    check()
                chunk = fh.read(HASH_CHUNK_BYTES)
                if not chunk:
                    break
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise EvidenceNotFound(path, "file not found") from exc
    except OSError as exc:
        raise EvidenceReadError(path, f"cannot read file ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def looks_like_media(path: Path) -> bool:
    """Whether the file's first bytes match a known audio/video container signature.

    MPEG-TS (0x47 every 188 bytes) and AVCHD/M2TS (4-byte timecode + 0x47 every
    192 bytes) are recognised by their sync bytes.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError:
        return False
    if any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES):
        return True
    for start, step in ((0, 188), (4, 192)):
        syncs = head[start::step]
        if len(syncs) >= 3 and all(b == 0x47 for b in syncs[:5]):
            return True
    return False


def check_file(path: str | Path) -> Path:
    """Check that ``path`` is an existing, non-empty, readable regular file.

    Raises:
        EvidenceNotFound, NotMediaError (a directory), EmptyEvidence, EvidenceReadError.
    """
    path = Path(path)
    if not path.exists():
        raise EvidenceNotFound(path, "file not found")
    if path.is_dir():
        raise NotMediaError(path, "is a directory, not a media file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EvidenceReadError(path, f"cannot stat file ({exc.strerror or exc})") from exc
    if size == 0:
        raise EmptyEvidence(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise EvidenceReadError(path, "permission denied (file is not readable)")
    return path


def classify_av_error(path: Path, exc: Exception, during: str) -> EvidenceError:
    """Map a PyAV/FFmpeg exception to the typed evidence error it means.

    Args:
        path: the evidence file.
        exc: the exception PyAV raised.
        during: what was being done, e.g. ``"opening"`` or ``"decoding video"``.
    """
    if isinstance(exc, EvidenceError):
        return exc
    message = getattr(exc, "strerror", None) or str(exc)
    if isinstance(exc, av.error.DecoderNotFoundError):
        return UnsupportedCodec(path, f"no decoder for this codec while {during} ({message})")
    if isinstance(exc, av.error.PatchWelcomeError):
        return UnsupportedCodec(path, f"codec feature not supported by FFmpeg while {during} ({message})")
    if isinstance(exc, PermissionError) and not os.access(path, os.R_OK):
        return EvidenceReadError(path, f"permission denied while {during}")
    # FFmpeg's demuxers also return EPERM ("operation not permitted", PyAV: PermissionError) for
    # damaged index tables of a readable file: that is corruption, not a permission problem.
    if isinstance(exc, FileNotFoundError):
        return EvidenceNotFound(path, "file not found")
    if during == "opening" and not looks_like_media(path):
        return NotMediaError(path, f"not a recognised audio/video file ({message})")
    return CorruptMedia(path, f"truncated or corrupt: {message} (while {during})")


@contextmanager
def open_container(path: str | Path) -> Iterator["av.container.InputContainer"]:
    """Open evidence read-only with PyAV; close it on exit.

    Args:
        path: evidence file.

    Yields:
        An ``av.container.InputContainer``.

    Raises:
        EvidenceNotFound, EmptyEvidence, NotMediaError, CorruptMedia,
        UnsupportedCodec, EvidenceReadError: with the file and the problem named.
    """
    path = check_file(path)
    try:
        # max_pixels: FFmpeg's stream probing decodes a frame; refuse absurd sizes before allocating
        container = av.open(str(path), mode="r", metadata_errors="replace", options=dict(DECODER_OPTIONS))
    except Exception as exc:  # PyAV raises many FFmpegError subclasses
        raise classify_av_error(path, exc, "opening") from exc
    try:
        yield container
    finally:
        container.close()
