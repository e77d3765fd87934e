"""Evidence media: probe + SHA-256, frame-accurate PTS-indexed video, audio decode.

Everything decodes through PyAV (FFmpeg bundled in the wheel); no system
ffmpeg is needed. Evidence is only ever opened read-only.
"""

from .audio import AudioTrack, load_audio
from .container import sha256_file
from .errors import (
    CorruptMedia,
    EmptyEvidence,
    EvidenceError,
    EvidenceModified,
    EvidenceNotFound,
    EvidenceReadError,
    NotMediaError,
    NoVideoStream,
    UnsupportedCodec,
)
from .frame import Frame
from .index import FrameIndex, build_frame_index
from .probe import AudioStreamInfo, DeviceInfo, Evidence, VideoStreamInfo, probe
from .video import (
    DEFAULT_SAMPLE_FRAMES,
    EveryKth,
    FirstN,
    Indices,
    SamplingPolicy,
    TimeRange,
    Uniform,
    VideoReader,
)

__all__ = [
    "AudioStreamInfo", "AudioTrack", "CorruptMedia", "DEFAULT_SAMPLE_FRAMES", "DeviceInfo",
    "EmptyEvidence", "EveryKth", "Evidence", "EvidenceError", "EvidenceModified",
    "EvidenceNotFound", "EvidenceReadError", "FirstN", "Frame", "FrameIndex", "Indices",
    "NoVideoStream", "NotMediaError", "SamplingPolicy", "TimeRange", "Uniform",
    "UnsupportedCodec", "VideoReader", "VideoStreamInfo", "build_frame_index", "load_audio",
    "probe", "sha256_file",
]
