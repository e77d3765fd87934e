"""The bad-input corpus (issue 8): every kind of awkward evidence, generated on the fly.

Nothing large is committed: each :class:`Kind` writes its file into a fresh
folder with PyAV (the system ``ffmpeg`` is never needed) from the small
committed test media, and states its **expected outcome**: either a result
with properties that must hold (``check``) or a typed
:class:`engine.media.EvidenceError` subclass whose message names the file and
contains a problem phrase.

:func:`run_kind` runs a kind through the engine entry points (``probe``,
``VideoReader``, ``load_audio``, ``analyze`` with a fast real detector set),
asserts the expected outcome, asserts the evidence bytes (SHA-256) are
unchanged and that nothing new appeared in the evidence folder, and returns a
one-line summary. ``tests/hardening/test_corpus.py`` and
``scripts/corpus_table.py`` (which writes ``docs/HARDENING.md``) both use
:data:`KINDS` and :func:`run_kind`, so there is one definition of the corpus.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np

TESTS = Path(__file__).resolve().parents[1]
for _p in (TESTS.parent, TESTS):  # engine (repo root) and media_factory, also when run as a script
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from media_factory import make_audio_only, make_unsupported_codec, make_video  # noqa: E402

from engine.media import (  # noqa: E402
    CorruptMedia,
    EmptyEvidence,
    EvidenceError,
    EvidenceNotFound,
    NotMediaError,
    NoVideoStream,
    Uniform,
    UnsupportedCodec,
    VideoReader,
    load_audio,
    probe,
)

FACE_IMAGE = TESTS / "data" / "images" / "single_face.jpg"
GROUP_IMAGE = TESTS / "data" / "faces" / "t1.jpg"

#: Detectors run by ``analyze`` on every kind: bundled, real, and cheap on tiny clips.
FAST_DETECTORS = ("deepfake.freq", "deepfake.effvit")
#: Frames sampled per analysis (Uniform); small to keep the corpus fast on a 2-core CPU.
SAMPLE_FRAMES = 8
ENTRY_POINTS = ("probe", "reader", "audio", "analyze")


# ============================================================================ helpers
def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def face_patch(which: int = 0) -> np.ndarray:
    """uint8 (h, w, 3) RGB head-and-shoulders patch of a real face (committed, licensed images).

    ``which`` 0: ``single_face.jpg`` (face ~180 px wide in a 330 px patch);
    1, 2: two other people from ``t1.jpg``.
    """
    if which == 0:
        return _rgb(FACE_IMAGE)[90:490, 110:455]
    # boxes found by MTCNN in t1.jpg, padded by about half a face
    boxes = {1: (20, 840, 250, 1080), 2: (225, 10, 440, 210)}
    y1, x1, y2, x2 = boxes[which]
    return _rgb(GROUP_IMAGE)[y1:y2, x1:x2]


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Paste ``patch`` with its top-left corner at (x, y), clipped to the canvas."""
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + pw, w), min(y + ph, h)
    if x2 > x1 and y2 > y1:
        canvas[y1:y2, x1:x2] = patch[y1 - y : y2 - y, x1 - x : x2 - x]


def _background(h: int, w: int, i: int) -> np.ndarray:
    bg = np.empty((h, w, 3), np.uint8)
    bg[...] = (90, 110, 100)
    bg[:, :, 0] = (np.linspace(60, 140, w)[None, :] + i) % 256
    return bg


def _scene(patches: list[tuple[np.ndarray, Callable[[int], tuple[int, int]]]]) -> Callable[[int, int, int], np.ndarray]:
    """A ``frame_fn`` for :func:`make_video`: each patch drawn where ``position(i)`` says."""

    def frame(i: int, h: int, w: int) -> np.ndarray:
        img = _background(h, w, i)
        for patch, pos in patches:
            x, y = pos(i)
            _paste(img, patch, x, y)
        return img

    return frame


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """Top-level ISO-BMFF boxes of ``data[start:end]`` as ``(type, offset, size)`` (bytes)."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = end - pos
        if size < 8:
            break
        out.append((kind.decode("latin-1"), pos, size))
        pos += size
    return out


def packet_spans(path: Path, kind: str) -> list[tuple[int, int]]:
    """``(byte offset, size)`` of every packet of the first ``kind`` ("video"/"audio") stream."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        return [(p.pos, p.size) for p in c.demux(stream) if p.size and p.pos is not None and p.pos >= 0]


def corrupt_packets(src: Path, dst: Path, kind: str, which: slice, seed: int = 8) -> Path:
    """Copy ``src`` to ``dst`` with the payload of the selected ``kind`` packets overwritten by noise.

    The first 4 bytes of each packet (the NAL length prefix for H.264) are kept,
    so the demuxer still walks the file and only the decoder sees garbage.
    """
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    for pos, size in packet_spans(src, kind)[which]:
        lo, hi = pos + min(4, size - 1), pos + size
        data[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


# ------------------------------------------------------------------ H.264 SPS rewriting
class _Bits:
    def __init__(self, data: bytes):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        v = int(self.bits[self.pos : self.pos + n] or "0", 2)
        self.pos += n
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        self.pos += 1
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _ue_bits(v: int) -> str:
    b = f"{v + 1:b}"
    return "0" * (len(b) - 1) + b


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def sps_with_size(sps: bytes, width: int, height: int) -> bytes:
    """An H.264 SPS NAL (with header byte) rewritten to declare ``width`` × ``height`` pixels.

    Handles baseline/main and high profiles without scaling matrices, frame
    coding only; cropping is switched off (sizes must be multiples of 16).
    """
    r = _Bits(_unescape(sps))
    out = [r.bits[: 8 + 24]]  # NAL header, profile, constraints, level
    r.pos = 32
    profile = int(out[0][8:16], 2)
    start = r.pos
    r.ue()  # seq_parameter_set_id
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        if r.ue() == 3:  # chroma_format_idc
            r.u(1)
        r.ue(), r.ue(), r.u(1)
        if r.u(1):
            raise ValueError("SPS with scaling matrices not handled")
    r.ue()  # log2_max_frame_num_minus4
    poc = r.ue()
    if poc == 0:
        r.ue()
    elif poc == 1:
        r.u(1), r.se(), r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue(), r.u(1)  # max_num_ref_frames, gaps
    out.append(r.bits[start : r.pos])
    r.ue(), r.ue()  # pic_width_in_mbs_minus1, pic_height_in_map_units_minus1
    out.append(_ue_bits(width // 16 - 1) + _ue_bits(height // 16 - 1))
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        raise ValueError("field-coded SPS not handled")
    out.append("1" + r.bits[r.pos : r.pos + 1])  # frame_mbs_only, direct_8x8_inference
    r.pos += 1
    if r.u(1):  # frame_cropping_flag: drop the crop window
        r.ue(), r.ue(), r.ue(), r.ue()
    out.append("0")
    # the rest (VUI, then rbsp stop bit + alignment) is copied; strip old trailing zero bits
    rest = r.bits[r.pos :].rstrip("0")
    bits = "".join(out) + rest
    bits += "0" * (-len(bits) % 8)
    return _escape(bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)))


_CONTAINERS = {"moov": 0, "trak": 0, "mdia": 0, "minf": 0, "stbl": 0, "stsd": 8, "avc1": 78}


def _rewrite_boxes(data: bytes, start: int, end: int, patch: Callable[[str, bytes], bytes]) -> bytes:
    out = bytearray()
    for kind, off, size in mp4_boxes(data, start, end):
        if kind in _CONTAINERS:
            skip = _CONTAINERS[kind]
            body = data[off + 8 : off + 8 + skip] + _rewrite_boxes(data, off + 8 + skip, off + size, patch)
        else:
            body = patch(kind, data[off + 8 : off + size])
        if kind == "avc1":
            body = patch("avc1", body)
        out += struct.pack(">I4s", 8 + len(body), kind.encode("latin-1")) + body
    return bytes(out)


def declare_size(src: Path, dst: Path, width: int, height: int) -> Path:
    """Copy an H.264 MP4 (moov after mdat) claiming ``width`` × ``height`` in SPS, stsd and tkhd.

    Only the header changes; the coded pictures stay as they were, so a decoder
    that believes the SPS allocates ``width × height`` frames.
    """
    data = src.read_bytes()

    def patch(kind: str, body: bytes) -> bytes:
        if kind == "avcC":
            n_sps = body[5] & 0x1F
            assert n_sps == 1, "one SPS expected"
            length = struct.unpack(">H", body[6:8])[0]
            sps = sps_with_size(body[8 : 8 + length], width, height)
            return body[:6] + struct.pack(">H", len(sps)) + sps + body[8 + length :]
        if kind == "avc1":  # VisualSampleEntry: width/height at bytes 24..27 of the body
            return body[:24] + struct.pack(">HH", width, height) + body[28:]
        if kind == "tkhd":  # last 8 bytes: width, height in 16.16 fixed point
            return body[:-8] + struct.pack(">II", (width % 65536) << 16, (height % 65536) << 16)
        return body

    boxes = mp4_boxes(data)
    assert [k for k, _, _ in boxes].index("moov") > [k for k, _, _ in boxes].index("mdat"), "moov must follow mdat"
    out = bytearray()
    for kind, off, size in boxes:
        out += _rewrite_boxes(data, off, off + size, patch) if kind == "moov" else data[off : off + size]
    dst.write_bytes(bytes(out))
    return dst


# ============================================================================ outcome
@dataclass
class Outcome:
    """What each entry point gave for one kind: a value or the exception it raised.

    Attributes:
        path: the evidence path handed to the engine.
        values: entry point → return value (``probe`` → Evidence, ``reader`` →
            list[Frame] (Uniform(SAMPLE_FRAMES)), ``audio`` → AudioTrack,
            ``analyze`` → ``AnalysisResult.to_dict()``).
        errors: entry point → the exception raised.
    """

    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def result(self) -> dict[str, Any]:
        """The analysis result document (``AnalysisResult.to_dict()``)."""
        return self.values["analyze"]

    def detector(self, det_id: str) -> dict[str, Any]:
        """The result entry of one detector in the analysis."""
        return next(d for d in self.result["detectors"] if d["detector_id"] == det_id)


@dataclass(frozen=True)
class Kind:
    """One kind of bad input and its expected outcome.

    Attributes:
        name: short id (test id and table row).
        what: what is generated, for the table.
        make: ``make(folder) -> path`` writes the evidence into an empty ``folder``.
        error: the typed error the entry points in ``fails`` must raise (None: all succeed).
        phrase: words the error message must contain (besides the path).
        fails: entry points expected to raise ``error``; the others must succeed
            unless named in ``also``.
        also: entry point → another typed error it must raise (with the path named).
        check: ``check(outcome) -> summary`` asserts what must hold on success and
            returns a short description of the result for the table.
        during: ``during(path) -> progress`` makes an ``analyze`` progress callback
            (used to modify the evidence while it is being analysed).
        mutates: the kind modifies its evidence on purpose (skip the bytes-unchanged check).
        readonly_folder: chmod the evidence folder 0o555 during the run.
    """

    name: str
    what: str
    make: Callable[[Path], Path]
    error: type[EvidenceError] | None = None
    phrase: str = ""
    fails: tuple[str, ...] = ENTRY_POINTS
    also: dict[str, type[EvidenceError]] = field(default_factory=dict)
    check: Callable[[Outcome], str] | None = None
    during: Callable[[Path], Callable[[str, float], None]] | None = None
    mutates: bool = False
    readonly_folder: bool = False


# ============================================================================ generators
def _camera_clip(path: Path, **kw: Any) -> Path:
    """160×120 H.264 + AAC, 40 frames at 25 fps (1.6 s), moov at the end like a camera writes it."""
    return make_video(path, **{"n_frames": 40, "audio_seconds": 1.6, **kw})


def _web_clip(path: Path) -> Path:
    """160×120 H.264 + AAC, 50 frames (2 s), moov at the front (``faststart``)."""
    return make_video(path, n_frames=50, audio_seconds=2.0, faststart=True)


def _truncated(fraction: float, faststart: bool = False) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        src = (_web_clip if faststart else _camera_clip)(folder.parent / f"src_{folder.name}.mp4")
        data = src.read_bytes()
        src.unlink()
        out = folder / f"cut_{int(fraction * 100)}pct.mp4"
        out.write_bytes(data[: int(len(data) * fraction)])
        return out

    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def _header_only(folder: Path) -> Path:
    src = _web_clip(folder.parent / f"src_{folder.name}.mp4")
    data = src.read_bytes()
    src.unlink()
    mdat = next(off for kind, off, _ in mp4_boxes(data) if kind == "mdat")
    out = folder / "header_only.mp4"
    out.write_bytes(data[: mdat + 8])  # ftyp + moov + an mdat header, no media bytes
    return out


def _wrong_extension(folder: Path) -> Path:
    src = _camera_clip(folder / "really_an_mp4.mp4")  # the muxer follows the name: write .mp4, then rename
    return src.rename(folder / "really_an_mp4.avi")


def _zero_duration(folder: Path) -> Path:
    """An MP4 with a video stream declared but not a single frame written."""
    path = folder / "zero_duration.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        out.start_encoding()  # header and trailer written, no packet
    return path


def _faces(patches: list[tuple[int, float, Callable[[int], tuple[int, int]]]], size=(320, 240)):
    """``frame_fn`` of a scene with real faces: (face id, scale, position(i)) per face."""
    items = []
    for which, scale, pos in patches:
        p = face_patch(which)
        items.append((_resize(p, max(1, int(p.shape[1] * scale)), max(1, int(p.shape[0] * scale))), pos))
    return _scene(items)


def _several_faces(folder: Path) -> Path:
    fn = _faces([(0, 0.4, lambda i: (10, 40)), (1, 0.6, lambda i: (170, 20)), (2, 0.55, lambda i: (200, 130))])
    return make_video(folder / "three_people.mp4", n_frames=16, size=(320, 240), frame_fn=fn)


def _no_face(folder: Path) -> Path:
    return make_video(folder / "no_face.mp4", n_frames=16, size=(320, 240), audio_seconds=0.64)


def _tiny_face(folder: Path) -> Path:
    fn = _faces([(0, 0.06, lambda i: (150, 110))])  # face about 11 px wide in 320×240
    return make_video(folder / "tiny_face.mp4", n_frames=16, size=(320, 240), frame_fn=fn)


def _face_leaving(folder: Path) -> Path:
    # 24 frames: the face sits still for 8 frames, then slides out through the right edge
    fn = _faces([(0, 0.4, lambda i: (100 + max(0, i - 8) * 16, 40))])
    return make_video(folder / "face_leaving.mp4", n_frames=24, size=(320, 240), frame_fn=fn)


def _one_frame(folder: Path) -> Path:
    return make_video(folder / "one_frame.mp4", n_frames=1)


VFR_PTS_MS = (0, 20, 80, 100, 133, 300, 320, 340, 500, 510, 520, 700, 760, 800, 900, 905, 1000, 1100, 1150, 1200)


def _vfr(folder: Path) -> Path:
    return make_video(folder / "vfr.mp4", n_frames=len(VFR_PTS_MS), pts_ms=VFR_PTS_MS, audio_seconds=1.2)


def _rotated(deg: int) -> Callable[[Path], Path]:
    return lambda folder: make_video(folder / f"rot{deg}.mp4", n_frames=10, size=(160, 96), rotation=deg)


def _odd_size(folder: Path) -> Path:
    return make_video(folder / "odd_161x97.mp4", n_frames=10, size=(161, 97), pix_fmt="yuv444p")


def _tiny_size(folder: Path) -> Path:
    return make_video(folder / "tiny_16x16.mp4", n_frames=10, size=(16, 16))


def _uhd(folder: Path) -> Path:
    return make_video(folder / "uhd_4k.mp4", n_frames=2, size=(3840, 2160), options={"preset": "ultrafast"})


def _ten_bit(folder: Path) -> Path:
    return make_video(folder / "ten_bit.mp4", n_frames=10, pix_fmt="yuv420p10le")


def _yuv444(folder: Path) -> Path:
    return make_video(folder / "yuv444.mp4", n_frames=10, pix_fmt="yuv444p")


def _declared(width: int, height: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        src = make_video(folder.parent / f"src_{folder.name}.mp4", n_frames=5, options={"profile": "baseline"})
        out = declare_size(src, folder / f"declares_{width}x{height}.mp4", width, height)
        src.unlink()
        return out

    return make


def _corrupt_audio(folder: Path) -> Path:
    src = _camera_clip(folder.parent / f"src_{folder.name}.mp4")
    out = corrupt_packets(src, folder / "bad_audio_packets.mp4", "audio", slice(5, None, 3))
    src.unlink()
    return out


def _corrupt_video(folder: Path) -> Path:
    src = _camera_clip(folder.parent / f"src_{folder.name}.mp4", options={"g": "10"})
    out = corrupt_packets(src, folder / "bad_video_packets.mp4", "video", slice(15, 22))
    src.unlink()
    return out


def _unicode_path(folder: Path) -> Path:
    sub = folder / "Fall 2026 — évidence 证据"
    sub.mkdir()
    return _camera_clip(sub / "clip ü 1 .mp4")


def _readonly(folder: Path) -> Path:
    return _camera_clip(folder / "locked.mp4")


def _symlink(folder: Path) -> Path:
    real = folder / "real"
    real.mkdir()
    target = _camera_clip(real / "original.mp4")
    link = folder / "link to original.mp4"
    link.symlink_to(target)
    return link


def _modified(folder: Path) -> Path:
    return _camera_clip(folder / "changing.mp4")


def _append_when_detectors_run(path: Path) -> Callable[[str, float], None]:
    """A progress callback that appends bytes to the evidence once the detectors start."""
    done = []

    def progress(stage: str, fraction: float) -> None:
        if stage.startswith("Running") and not done:
            with open(path, "ab") as fh:
                fh.write(b"\0" * 16)
            done.append(stage)

    return progress


def _video_only(folder: Path) -> Path:
    return make_video(folder / "silent.mp4", n_frames=20)


def _audio_only(folder: Path) -> Path:
    return make_audio_only(folder / "voice.m4a", seconds=1.5)


def _mkv(folder: Path) -> Path:
    return make_video(folder / "clip.mkv", n_frames=20, codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"})


# ============================================================================ running
_DETECTORS: dict[str, Any] = {}


def fast_detectors() -> list[Any]:
    """Instances of :data:`FAST_DETECTORS` on CPU, created (weights loaded) once per process."""
    from engine.pipeline import create_detector

    for det_id in FAST_DETECTORS:
        if det_id not in _DETECTORS:
            # explanations off: the corpus tests input handling, and relevancy maps cost seconds a crop
            kwargs = {"explain": False} if det_id == "deepfake.effvit" else {}
            _DETECTORS[det_id] = create_detector(det_id, device="cpu", **kwargs)
    return [_DETECTORS[d] for d in FAST_DETECTORS]


def folder_state(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under ``folder`` (symlinks by their target text)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_entry_points(kind: Kind, path: Path) -> Outcome:
    """Call ``probe``, ``VideoReader(...).sample``, ``load_audio`` and ``analyze`` on ``path``.

    Any exception is recorded in :attr:`Outcome.errors` (none escapes), so the
    caller can compare it with the kind's expectation.
    """
    from engine.pipeline import ClipConfig, analyze

    out = Outcome(path)
    calls: dict[str, Callable[[], Any]] = {
        "probe": lambda: probe(path),
        "reader": lambda: VideoReader(path).sample(Uniform(SAMPLE_FRAMES)),
        "audio": lambda: load_audio(path, 16000),
        "analyze": lambda: analyze(
            path, fast_detectors(), device="cpu",
            config=ClipConfig(sampling=Uniform(SAMPLE_FRAMES), face_backend="mtcnn"),
            progress=kind.during(path) if kind.during else None,
        ).to_dict(),
    }
    for name, call in calls.items():
        try:
            out.values[name] = call()
        except Exception as exc:  # recorded, judged by check_outcome
            out.errors[name] = exc
    return out


def check_outcome(kind: Kind, out: Outcome) -> str:
    """Assert that ``out`` is what ``kind`` expects; return the one-line summary for the table.

    Raises:
        AssertionError: naming the kind and what differs.
    """
    expected_fail = set(kind.fails) if kind.error is not None else set()
    for name in ENTRY_POINTS:
        exc = out.errors.get(name)
        if name in expected_fail:
            assert exc is not None, f"{kind.name}: {name} should raise {kind.error.__name__}, it returned"
            assert type(exc) is kind.error, (
                f"{kind.name}: {name} raised {type(exc).__name__}: {exc} (expected {kind.error.__name__})")
            msg = str(exc)
            assert str(out.path) in msg or str(out.path.resolve()) in msg, f"{kind.name}: {name}: path not named: {msg}"
            assert kind.phrase in msg, f"{kind.name}: {name}: {kind.phrase!r} not in {msg!r}"
        elif name in kind.also:
            assert type(exc) is kind.also[name], f"{kind.name}: {name} gave {exc!r}, expected {kind.also[name].__name__}"
            assert str(out.path) in str(exc), f"{kind.name}: {name}: path not named: {exc}"
        else:
            assert exc is None, f"{kind.name}: {name} raised {type(exc).__name__}: {exc}"
    parts = []
    if kind.error is not None:
        exc = out.errors[kind.fails[0]]
        shown = str(exc).replace(str(out.path.parent), "…")
        parts.append(f"`{type(exc).__name__}` from {', '.join(kind.fails)}: “{shown}”")
    for name, err in kind.also.items():
        parts.append(f"{name}: `{err.__name__}`")
    if "analyze" in out.values:
        for d in out.result["detectors"]:
            assert d["status"] != "failed", f"{kind.name}: {d['detector_id']} failed: {d['message']}"
    if kind.check is not None:
        parts.append(kind.check(out))
    return "; ".join(p for p in parts if p)


def run_kind(kind: Kind, workdir: Path) -> str:
    """Generate ``kind`` under ``workdir``, run every entry point, assert the expected outcome.

    Also asserts the evidence bytes are unchanged (unless the kind modifies them
    on purpose) and that nothing new appeared in the evidence folder.

    Returns:
        The one-line outcome summary (table cell).

    Raises:
        AssertionError: the engine did not behave as the kind expects.
    """
    folder = workdir / kind.name
    folder.mkdir(parents=True)
    path = kind.make(folder)
    before = folder_state(folder)
    evidence_dir = path.parent
    if kind.readonly_folder:
        mode = evidence_dir.stat().st_mode
        evidence_dir.chmod(0o555)
    try:
        out = run_entry_points(kind, path)
    finally:
        if kind.readonly_folder:
            evidence_dir.chmod(stat.S_IMODE(mode))
    summary = check_outcome(kind, out)
    after = folder_state(folder)
    assert sorted(after) == sorted(before), f"{kind.name}: files appeared/vanished next to evidence: " \
        f"{sorted(set(after) ^ set(before))}"
    if not kind.mutates:
        assert after == before, f"{kind.name}: evidence bytes changed"
    return summary


# ============================================================================ checks
def _frames_check(shape: tuple[int, int], pix_fmt: str | None = None) -> Callable[[Outcome], str]:
    """Every sampled frame comes out ``uint8 (h, w, 3)`` in display orientation."""

    def check(out: Outcome) -> str:
        v = out.values["probe"].primary_video
        frames = out.values["reader"]
        assert frames and all(f.rgb.shape == (*shape, 3) and f.rgb.dtype == np.uint8 for f in frames), \
            [f.rgb.shape for f in frames]
        assert (v.display_height, v.display_width) == shape
        if pix_fmt:
            assert v.pix_fmt == pix_fmt, v.pix_fmt
        assert len(out.result["sampling"]["frames"]) == len(frames)
        extra = f", rotation {v.rotation}°" if v.rotation else ""
        return (f"result: {len(frames)} frames {shape[1]}×{shape[0]} uint8 RGB{extra}"
                + (f", source {v.pix_fmt}" if pix_fmt else ""))

    return check


def _faces_skipped(out: Outcome) -> str:
    r = out.result
    assert not r["faces"]["tracks"]
    assert any("no face found" in w for w in r["warnings"]), r["warnings"]
    for det in FAST_DETECTORS:
        d = out.detector(det)
        assert d["status"] == "skipped" and "no face track" in d["message"], d
    return "result: no face track; face detectors `skipped` (“no face track in the sampled frames”)"


def _analysis_summary(out: Outcome) -> str:
    return ", ".join(f"{d['detector_id']} {d['status']}" for d in out.result["detectors"])


def _check_header_only(out: Outcome) -> str:
    assert not out.values["audio"].has_audio and "no decodable samples" in out.values["audio"].missing_reason
    return "load_audio: no audio (“no decodable samples”)"


def _check_no_audio_decodable(out: Outcome) -> str:
    assert not out.values["audio"].has_audio
    return "load_audio: `AudioTrack.missing`"


def _check_truncated_readable(out: Outcome) -> str:
    ev = out.values["probe"]
    v = ev.primary_video
    assert v.frame_count < v.frame_count_declared
    assert any(w.startswith("truncated video") for w in ev.warnings), ev.warnings
    assert any(w.startswith("truncated video") for w in out.result["warnings"])
    assert all(f.index < v.frame_count for f in out.values["reader"])
    try:
        probe(out.path, strict=True)
        raise AssertionError("strict probe accepted a truncated file")
    except CorruptMedia:
        pass
    return (f"result with warning “truncated video: {v.frame_count} of {v.frame_count_declared} declared frames "
            f"are present”; `probe(strict=True)` raises `CorruptMedia`")


def _check_wrong_extension(out: Outcome) -> str:
    w = [w for w in out.values["probe"].warnings if "does not match" in w]
    assert w and w[0] in out.result["warnings"]
    assert len(out.values["reader"]) == SAMPLE_FRAMES
    return f"result ({len(out.values['reader'])} frames) with warning “{w[0]}”"


def _check_avi_bframes(out: Outcome) -> str:
    frames = out.values["reader"]
    # the factory paints frame i's blue channel (i * 29) mod 256: content must match the index
    for f in frames:
        assert abs(int(f.rgb[60:70, 60:70, 2].mean()) - (f.index * 29) % 256) <= 4, (f.index, f.rgb[60:70, 60:70, 2].mean())
    assert out.values["probe"].frame_index.output_order
    return f"result: {len(frames)} frames, each the right picture (frames numbered in decoder output order)"


def _check_video_only(out: Outcome) -> str:
    a = out.values["audio"]
    assert not a.has_audio and "no audio stream" in a.missing_reason
    assert out.result["audio"]["has_audio"] is False
    return "result: video analysed; audio `missing` (“no audio stream”)"


def _check_audio_only(out: Outcome) -> str:
    try:
        probe(out.path, require_video=True)
        raise AssertionError("probe(require_video=True) accepted an audio-only file")
    except NoVideoStream as exc:
        assert str(out.path) in str(exc)
    assert out.values["audio"].has_audio and out.values["audio"].duration_s > 1.0
    assert out.result["sampling"]["frames"] == [] and out.result["audio"]["has_audio"]
    assert all(d["status"] == "skipped" for d in out.result["detectors"])
    return ("result: audio decoded, face detectors `skipped`; `probe(require_video=True)` raises `NoVideoStream`")


def _check_one_frame(out: Outcome) -> str:
    assert len(out.values["reader"]) == 1 and out.values["probe"].primary_video.frame_count == 1
    assert len(out.result["sampling"]["frames"]) == 1
    return "result: exactly 1 frame sampled and analysed"


def _check_vfr(out: Outcome) -> str:
    v = out.values["probe"].primary_video
    frames = out.values["reader"]
    pts = [f.pts for f in frames]
    assert v.vfr and v.frame_count == len(VFR_PTS_MS)
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert all(abs(f.pts - VFR_PTS_MS[f.index] / 1000) < 1e-3 for f in frames)
    return f"result: VFR detected, {len(frames)} frames with strictly increasing, exact PTS"


def _check_corrupt_audio(out: Outcome) -> str:
    a = out.values["audio"]
    assert a.has_audio and a.problems and "could not be decoded" in a.problems[0]
    assert out.result["audio"]["problems"] == list(a.problems)
    assert len(out.values["reader"]) == SAMPLE_FRAMES
    return f"result: video intact, audio decoded around the damage (“{a.problems[0]}”)"


def _check_corrupt_video(out: Outcome) -> str:
    ev = out.values["probe"]
    v = ev.primary_video
    assert v.frame_count < v.frame_count_declared
    assert any(w.startswith("truncated or corrupt video") for w in out.result["warnings"])
    return (f"result on the {v.frame_count} frames before the damage, with warning “truncated or corrupt video: "
            f"… decoding stopped after {v.frame_count} frames …”")


def _check_path_named(out: Outcome) -> str:
    assert out.result["evidence"]["path"] == str(out.path.resolve())
    assert len(out.values["reader"]) == SAMPLE_FRAMES
    return f"result; the report names “{out.path.name}” exactly ({_analysis_summary(out)})"


def _check_readonly(out: Outcome) -> str:
    assert out.result["evidence_unchanged"]
    return "result; nothing written in the 0o555 folder, bytes unchanged"


def _check_symlink(out: Outcome) -> str:
    r = out.result
    target = out.path.resolve()
    assert r["evidence"]["path"] == str(target) and r["evidence_unchanged"]
    assert any(str(out.path) in w and str(target) in w for w in r["warnings"]), r["warnings"]
    return "result for the target file; warning “opened through a symbolic link: <link> -> <target>”"


def _check_modified(out: Outcome) -> str:
    r = out.result
    assert r["evidence_unchanged"] is False and r["sha256_at_end"] != r["evidence"]["sha256"]
    assert any(w.startswith("EVIDENCE CHANGED DURING ANALYSIS") for w in r["warnings"])
    return "result flagged: `evidence_unchanged: false`, warning “EVIDENCE CHANGED DURING ANALYSIS: SHA-256 was …”"


def _check_several_faces(out: Outcome) -> str:
    r = out.result
    assert len(r["faces"]["tracks"]) >= 2, len(r["faces"]["tracks"])
    for det in FAST_DETECTORS:
        assert out.detector(det)["status"] == "ok"
    return f"result: {len(r['faces']['tracks'])} face tracks; {_analysis_summary(out)}"


def _check_tiny_face(out: Outcome) -> str:
    freq = out.detector("deepfake.freq")
    assert freq["status"] in ("ok", "skipped")
    if freq["status"] == "skipped":
        assert "large enough" in freq["message"] or "no face track" in freq["message"], freq["message"]
    return (f"result: {len(out.result['faces']['tracks'])} face tracks; {_analysis_summary(out)}"
            + (" (“no face crop large enough for the spectrum”)" if "large enough" in freq["message"] else ""))


def _check_face_leaving(out: Outcome) -> str:
    r = out.result
    frames = [f["index"] for f in r["sampling"]["frames"]]
    with_face = {e["frame_index"] for t in r["faces"]["tracks"] for e in t["entries"]}
    assert frames[0] in with_face and frames[-1] in r["faces"]["frames_without_face"]
    for det in FAST_DETECTORS:
        assert out.detector(det)["status"] == "ok"
    return (f"result: face found until it leaves, frames {r['faces']['frames_without_face']} without face; "
            f"{_analysis_summary(out)}")


def _check_tiny_frame(out: Outcome) -> str:
    _faces_skipped(out)
    return "result: 8 frames 16×16; no face possible, face detectors `skipped`"


def _then(*checks: Callable[[Outcome], str]) -> Callable[[Outcome], str]:
    return lambda out: "; ".join(c(out) for c in checks)


# ============================================================================ the corpus
_NOT_MEDIA = "not a recognised audio/video file"
_TRUNC = "truncated or corrupt"
_ERR_NO_AUDIO = ("probe", "reader", "analyze")

KINDS: tuple[Kind, ...] = (
    # ------------------------------------------------------------ unusable files: typed errors
    Kind("missing_file", "a path that does not exist", lambda d: d / "gone.mp4", EvidenceNotFound, "file not found"),
    Kind("zero_bytes", "0-byte `.mp4`", _bytes("empty.mp4", b""), EmptyEvidence, "file is empty (0 bytes)"),
    Kind("text_renamed_mp4", "a text file renamed `.mp4`", _bytes("notes.mp4", b"Interview notes, not a video.\n" * 40),
         NotMediaError, _NOT_MEDIA),
    Kind("random_bytes", "16 kB of non-media bytes named `.mp4`", _bytes("random.mp4", bytes(range(256)) * 64),
         NotMediaError, _NOT_MEDIA),
    Kind("directory_named_mp4", "a folder called `clip.mp4`", lambda d: (d / "clip.mp4").mkdir() or d / "clip.mp4",
         NotMediaError, "is a directory"),
    Kind("header_only", "MP4 cut right after the `mdat` header (ftyp + moov, no media bytes)", _header_only,
         CorruptMedia, _TRUNC, fails=_ERR_NO_AUDIO, check=_check_header_only),
    Kind("truncated_10pct", "camera-style MP4 (moov at end) cut at 10 %", _truncated(0.1), CorruptMedia, _TRUNC),
    Kind("truncated_50pct", "camera-style MP4 (moov at end) cut at 50 %", _truncated(0.5), CorruptMedia, _TRUNC),
    Kind("truncated_90pct", "camera-style MP4 (moov at end) cut at 90 %", _truncated(0.9), CorruptMedia, _TRUNC),
    Kind("zero_duration", "MP4 written with no frame at all (moov without a track)", _zero_duration, CorruptMedia,
         "no audio or video stream could be read", fails=("probe", "analyze"), also={"reader": NoVideoStream},
         check=_check_no_audio_decodable),
    Kind("unsupported_codec", "AVI whose video FOURCC names no known codec", lambda d: make_unsupported_codec(d / "odd.avi"),
         UnsupportedCodec, "no decoder", fails=_ERR_NO_AUDIO, check=_check_no_audio_decodable),
    Kind("absurd_dims_60000", "H.264 MP4 whose SPS/stsd/tkhd declare 60000×60000 (3 kB file)",
         _declared(60000, 60000), CorruptMedia, _TRUNC, fails=_ERR_NO_AUDIO, check=_check_no_audio_decodable),
    Kind("absurd_dims_16000", "H.264 MP4 whose SPS/stsd/tkhd declare 16000×16000 (FFmpeg would decode it)",
         _declared(16000, 16000), CorruptMedia, "declared frame size 16000x16000 is implausible",
         fails=_ERR_NO_AUDIO, check=_check_no_audio_decodable),
    # ------------------------------------------------------------ partly readable: result with a warning
    Kind("truncated_40pct_faststart", "web-style MP4 (moov first) cut at 40 %", _truncated(0.4, True),
         check=_check_truncated_readable),
    Kind("truncated_90pct_faststart", "web-style MP4 (moov first) cut at 90 %", _truncated(0.9, True),
         check=_check_truncated_readable),
    Kind("corrupt_video_packets", "H.264 packets 15–21 of 40 overwritten with noise (GOP 10)", _corrupt_video,
         check=_check_corrupt_video),
    Kind("corrupt_audio_packets", "every 3rd AAC packet from the 6th on overwritten with noise", _corrupt_audio,
         check=_check_corrupt_audio),
    Kind("wrong_extension", "an MP4 named `.avi`", _wrong_extension, check=_check_wrong_extension),
    # ------------------------------------------------------------ awkward but valid: correct result
    Kind("h264_bframes_in_avi", "H.264 with B-frames in an AVI (no PTS in the container)",
         lambda d: make_video(d / "bframes.avi", n_frames=40), check=_check_avi_bframes),
    Kind("audio_only", "AAC-only `.m4a`", _audio_only, error=None, also={"reader": NoVideoStream}, check=_check_audio_only),
    Kind("video_only", "H.264 MP4 without an audio stream", _video_only, check=_check_video_only),
    Kind("one_frame", "H.264 MP4 holding a single frame", _one_frame, check=_check_one_frame),
    Kind("vfr", "variable frame rate H.264 (intervals 5–200 ms) + AAC", _vfr, check=_check_vfr),
    Kind("rotation_90", "160×96 H.264 with display rotation 90°", _rotated(90), check=_frames_check((160, 96))),
    Kind("rotation_180", "160×96 H.264 with display rotation 180°", _rotated(180), check=_frames_check((96, 160))),
    Kind("rotation_270", "160×96 H.264 with display rotation 270°", _rotated(270), check=_frames_check((160, 96))),
    Kind("odd_size", "161×97 H.264 (odd width and height, yuv444p)", _odd_size, check=_frames_check((97, 161))),
    Kind("tiny_frame", "16×16 H.264 (smaller than MTCNN's minimum face)", _tiny_size,
         check=_then(_frames_check((16, 16)), _faces_skipped)),
    Kind("uhd_4k", "3840×2160 H.264, 2 frames", _uhd, check=_frames_check((2160, 3840))),
    Kind("ten_bit", "H.264 High 10, yuv420p10le", _ten_bit, check=_frames_check((120, 160), "yuv420p10le")),
    Kind("yuv444", "H.264 High 4:4:4, yuv444p", _yuv444, check=_frames_check((120, 160), "yuv444p")),
    Kind("vp9_mkv", "VP9 in Matroska", _mkv, check=_frames_check((120, 160))),
    Kind("unicode_spaces_path", "MP4 in `Fall 2026 — évidence 证据/clip ü 1 .mp4`", _unicode_path,
         check=_check_path_named),
    Kind("read_only_folder", "MP4 in a folder chmod 0o555", _readonly, readonly_folder=True,
         check=_then(_check_readonly, _check_path_named)),
    Kind("symlink", "a symlink `link to original.mp4` → `real/original.mp4`", _symlink, check=_check_symlink),
    Kind("modified_during_analysis", "16 bytes appended to the MP4 while the detectors run", _modified,
         during=_append_when_detectors_run, mutates=True, check=_check_modified),
    # ------------------------------------------------------------ faces (real faces from tests/data)
    Kind("no_face", "320×240 synthetic pattern, no face", _no_face, check=_faces_skipped),
    Kind("several_faces", "three real faces pasted into a 320×240 scene", _several_faces, check=_check_several_faces),
    Kind("tiny_face", "one real face about 11 px wide in 320×240", _tiny_face, check=_check_tiny_face),
    Kind("face_leaving_frame", "a real face sliding out through the right edge", _face_leaving,
         check=_check_face_leaving),
)

KINDS_BY_NAME = {k.name: k for k in KINDS}
assert len(KINDS_BY_NAME) == len(KINDS), "duplicate kind names"
