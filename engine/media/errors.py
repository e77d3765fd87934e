"""Typed errors for unusable evidence.

Every error names the file and the problem in its message, so the GUI, the CLI
and the report can show it verbatim: ``"/cases/x.mp4: truncated or corrupt
(moov atom not found)"``.
"""

from __future__ import annotations

from pathlib import Path


class EvidenceError(Exception):
    """Base class: the evidence file at ``path`` cannot be used as asked.

    Attributes:
        path: the evidence file.
        problem: a short human-readable statement of what is wrong.
    """

    kind = "unusable evidence"

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class EvidenceNotFound(EvidenceError):
    """The path does not exist."""

    kind = "not found"


class EmptyEvidence(EvidenceError):
    """The file has zero bytes."""

    kind = "empty file"


class NotMediaError(EvidenceError):
    """The file is not an audio/video container (text, image, directory, …)."""

    kind = "not a media file"


class NoVideoStream(EvidenceError):
    """The container holds no video stream (audio only, data only)."""

    kind = "no video stream"


class CorruptMedia(EvidenceError):
    """The container or its streams are truncated or corrupt."""

    kind = "truncated or corrupt"


class UnsupportedCodec(EvidenceError):
    """A stream's codec has no decoder in the bundled FFmpeg."""

    kind = "unsupported codec"


class EvidenceReadError(EvidenceError):
    """The file exists but cannot be read (permissions, I/O error)."""

    kind = "unreadable"


class EvidenceModified(EvidenceError):
    """The file's SHA-256 no longer equals the hash taken at intake."""

    kind = "modified since intake"
