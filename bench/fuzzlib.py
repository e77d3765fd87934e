"""Mutation fuzzing of the evidence readers: ``probe``, ``VideoReader`` and ``load_audio``.

Shared by the bounded test (``tests/hardening/test_fuzz.py``, driven by
hypothesis) and the long run (``bench/fuzz.py``, driven by ``random.Random``):
there is one mutation generator and one set of mutators, here.

* A *recipe* is a JSON-able list of mutation ops (bit flips, byte runs
  overwritten, "interesting" integers written into box/chunk headers,
  truncation, chunk duplication and deletion). :func:`draw_recipe` builds one
  from any integer source (``draw_int(lo, hi)``), so hypothesis can shrink it
  and the bench can replay it; :func:`apply_recipe` turns real seed bytes plus a
  recipe into the mutated file, deterministically. A crasher is therefore
  recreated from ``(seed file name, recipe)``: no binary needs committing.
* :class:`Runner` runs each target in a separate worker process with a
  wall-clock timeout (a hang is killed and reported), an address-space limit
  and a peak-RSS check (a gigabyte allocation is reported, not survived).

The contract checked: every target returns a result or raises an
``engine.media.EvidenceError``; any other exception, a hang, a crash of the
process or a memory blow-up is a bug.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bench.memory import peak_rss_bytes

REPO = Path(__file__).resolve().parent.parent

#: Real media the mutations start from (read only; bytes are copied before mutating).
SEED_DIRS = (REPO / "tests" / "data" / "media", REPO / "resources" / "samples")
MEDIA_SUFFIXES = {".mp4", ".mov", ".mpg", ".avi", ".mts", ".flac", ".wav", ".mkv"}

TARGETS = ("probe", "video", "audio")

#: Values that break length/count/offset fields.
INTERESTING = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)

#: Structure markers whose neighbourhood (size fields, counts) is worth mutating:
#: ISO-BMFF boxes, RIFF/AVI chunks, MPEG-PS/ES start codes, FLAC blocks, H.264 NAL starts.
MARKERS = (
    b"ftyp", b"moov", b"mvhd", b"trak", b"tkhd", b"edts", b"elst", b"mdia", b"mdhd", b"hdlr",
    b"minf", b"stbl", b"stsd", b"stts", b"ctts", b"stss", b"stsc", b"stsz", b"stco", b"co64",
    b"avcC", b"hvcC", b"esds", b"mdat", b"udta", b"meta",
    b"RIFF", b"LIST", b"avih", b"strh", b"strf", b"movi", b"idx1", b"indx",
    b"\x00\x00\x01\xba", b"\x00\x00\x01\xbb", b"\x00\x00\x01\xb3", b"\x00\x00\x01\xb5",
    b"\x00\x00\x01\x00", b"\x00\x00\x01\xe0", b"\x00\x00\x01\xc0", b"\x00\x00\x00\x01",
    b"fLaC", b"\x47\x40\x00", b"\x47\x41",
    # audio frame headers: MPEG audio, ADTS (AAC), AC-3
    b"\xff\xfd", b"\xff\xfc", b"\xff\xfb", b"\xff\xf1", b"\xff\xf9", b"\x0b\x77",
)

#: Recipes are replayed from these tables by index: only ever append to OPS, MARKERS, INTERESTING.
OPS = ("flip", "overwrite", "fill", "int", "marker", "truncate", "duplicate", "delete", "marker_flip")

MAX_RUN = 4096


def seed_files() -> list[Path]:
    """The real media files mutations start from, sorted by name."""
    out = []
    for d in SEED_DIRS:
        out += [p for p in d.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES]
    return sorted(out, key=lambda p: p.name)


def seed_by_name(name: str) -> Path:
    for p in seed_files():
        if p.name == name:
            return p
    raise KeyError(name)


# --------------------------------------------------------------------------- generation
DrawInt = Callable[[int, int], int]


def _draw_offset(draw_int: DrawInt) -> int:
    """An offset biased to the header (first 4 KiB) and trailer (last 4 KiB, where a
    ``moov`` often sits); negative = from the end; resolved modulo the length."""
    region = draw_int(0, 2)
    if region == 0:
        return draw_int(0, 4095)
    if region == 1:
        return -draw_int(1, 4096)
    return draw_int(0, 2**31 - 1)


def _draw_delta(draw_int: DrawInt) -> int:
    """Offset from a marker: its header (-4 = an ISO-BMFF box size) or further into the box
    (e.g. the ``tkhd`` display matrix at +40, ``stsd`` sample-entry fields)."""
    return draw_int(-4, 24) if draw_int(0, 1) == 0 else draw_int(25, 127)


def draw_op(draw_int: DrawInt) -> list:
    """One mutation op as a JSON-able list ``[kind, *params]``."""
    kind = OPS[draw_int(0, len(OPS) - 1)]
    if kind == "flip":
        return [kind, _draw_offset(draw_int), draw_int(0, 7)]
    if kind == "overwrite":  # random bytes
        n = draw_int(1, 64)
        return [kind, _draw_offset(draw_int), [draw_int(0, 255) for _ in range(n)]]
    if kind == "fill":  # a run of one value
        value = (0x00, 0xFF, draw_int(0, 255))[draw_int(0, 2)]
        return [kind, _draw_offset(draw_int), draw_int(1, MAX_RUN), value]
    if kind == "int":  # an interesting integer, big or little endian
        return [kind, _draw_offset(draw_int), draw_int(0, len(INTERESTING) - 1),
                (1, 2, 4, 8)[draw_int(0, 3)], draw_int(0, 1)]
    if kind == "marker":  # an interesting integer at a structure marker (-4 = box size field)
        return [kind, draw_int(0, len(MARKERS) - 1), draw_int(0, 63), _draw_delta(draw_int),
                draw_int(0, len(INTERESTING) - 1), (1, 2, 4, 8)[draw_int(0, 3)]]
    if kind == "marker_flip":  # one bit flipped near a structure marker (frame headers, box fields)
        return [kind, draw_int(0, len(MARKERS) - 1), draw_int(0, 63), _draw_delta(draw_int), draw_int(0, 7)]
    if kind == "truncate":  # keep a fraction (per mille) of the file
        return [kind, draw_int(0, 999)]
    if kind == "duplicate":
        return [kind, _draw_offset(draw_int), draw_int(1, MAX_RUN), _draw_offset(draw_int)]
    return ["delete", _draw_offset(draw_int), draw_int(1, MAX_RUN)]


def draw_recipe(draw_int: DrawInt, max_ops: int = 4) -> list[list]:
    """1..``max_ops`` mutation ops."""
    return [draw_op(draw_int) for _ in range(draw_int(1, max_ops))]


# --------------------------------------------------------------------------- application
def _pos(off: int, n: int) -> int:
    return off % n if n else 0


def _int_bytes(value: int, width: int, little: bool) -> bytes:
    return (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little" if little else "big")


def _put(buf: bytearray, pos: int, data: bytes) -> None:
    end = min(len(buf), pos + len(data))
    buf[pos:end] = data[: end - pos]


def _marker_pos(data: bytearray, marker: bytes, occurrence: int, delta: int) -> int | None:
    """Byte position ``delta`` after the end of the ``occurrence``-th (modulo the count) ``marker``
    (before its start when ``delta`` < 0), or None when the marker is absent / out of range."""
    hits, start = [], 0
    while len(hits) <= occurrence:
        i = data.find(marker, start)
        if i < 0:
            break
        hits.append(i)
        start = i + 1
    if not hits:
        return None
    pos = hits[occurrence % len(hits)] + delta + (len(marker) if delta >= 0 else 0)
    return pos if 0 <= pos < len(data) else None


def apply_op(data: bytearray, op: Sequence) -> bytearray:
    """Apply one op to ``data`` (in place where possible) and return the buffer."""
    kind, *a = op
    n = len(data)
    if n == 0:
        return data
    if kind == "flip":
        data[_pos(a[0], n)] ^= 1 << a[1]
    elif kind == "overwrite":
        _put(data, _pos(a[0], n), bytes(a[1]))
    elif kind == "fill":
        _put(data, _pos(a[0], n), bytes([a[2]]) * a[1])
    elif kind == "int":
        _put(data, _pos(a[0], n), _int_bytes(INTERESTING[a[1]], a[2], bool(a[3])))
    elif kind in ("marker", "marker_flip"):
        pos = _marker_pos(data, MARKERS[a[0]], a[1], a[2])
        if pos is not None and kind == "marker":
            _put(data, pos, _int_bytes(INTERESTING[a[3]], a[4], False))
        elif pos is not None:
            data[pos] ^= 1 << a[3]
    elif kind == "truncate":
        del data[max(1, n * a[0] // 1000):]
    elif kind == "duplicate":
        s = _pos(a[0], n)
        chunk = bytes(data[s : s + a[1]])
        d = _pos(a[2], n)
        data[d:d] = chunk
    elif kind == "delete":
        s = _pos(a[0], n)
        if n - min(a[1], n - s) > 0:
            del data[s : s + a[1]]
    else:
        raise ValueError(f"unknown mutation op {kind!r}")
    return data


def apply_recipe(seed: bytes, recipe: Sequence[Sequence]) -> bytes:
    """The mutated file: ``seed`` bytes with every op of ``recipe`` applied in order."""
    buf = bytearray(seed)
    for op in recipe:
        buf = apply_op(buf, op)
    return bytes(buf)


# --------------------------------------------------------------------------- running
@dataclass
class Outcome:
    """What one target did with one input.

    ``kind``: ``"ok"``, ``"evidence_error"`` (both fine), ``"crash"`` (another
    exception), ``"memory"`` (peak RSS above the limit or MemoryError),
    ``"hang"`` (killed at the timeout) or ``"died"`` (the worker process
    exited, e.g. a segfault).
    """

    target: str
    kind: str
    error: str = ""  # exception class name
    message: str = ""
    traceback: str = ""
    seconds: float = 0.0
    rss_mb: float = 0.0

    @property
    def fine(self) -> bool:
        return self.kind in ("ok", "evidence_error")

    @property
    def label(self) -> str:
        """Short outcome class for statistics: ``ok``, ``CorruptMedia``, ``crash:ValueError``…"""
        if self.kind == "ok":
            return "ok"
        if self.kind == "evidence_error":
            return self.error
        return f"{self.kind}:{self.error}" if self.error else self.kind


#: Peak resident memory (MiB) of a worker above which a call counts as a memory blow-up.
RSS_LIMIT_MB = 1536
#: Address-space limit of a worker (bytes): a runaway allocation fails instead of swapping.
AS_LIMIT = 6 << 30


class Runner:
    """Runs targets on files in a persistent worker process, one call at a time, with a timeout.

    The worker is restarted after a hang, a death or a memory blow-up, so one bad input
    never poisons the next.
    """

    def __init__(self, timeout_s: float = 30.0, video_frames: int = 4, audio_sr: int = 16000):
        self.timeout_s = timeout_s
        self.video_frames = video_frames
        self.audio_sr = audio_sr
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def _start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import bench.fuzzlib as f; f._worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=str(REPO), env=env, bufsize=0,
        )
        line = self._readline(60.0)
        if line is None or json.loads(line).get("ready") is not True:
            self.close()
            raise RuntimeError("fuzz worker did not start")

    def _readline(self, timeout: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None  # worker died
            buf += chunk
        return buf

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, path: Path, target: str) -> Outcome:
        """Run ``target`` (one of :data:`TARGETS`) on ``path`` in the worker."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        req = {"path": str(path), "target": target, "frames": self.video_frames, "sr": self.audio_sr}
        t0 = time.monotonic()
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        line = self._readline(self.timeout_s)
        dt = time.monotonic() - t0
        if line is None:
            rc = self.proc.poll()
            self.close()
            self.restarts += 1
            if rc is None:
                return Outcome(target, "hang", message=f"no answer after {self.timeout_s:.0f} s", seconds=dt)
            return Outcome(target, "died", error=f"rc{rc}", message=f"worker exited with {rc}", seconds=dt)
        out = Outcome(**json.loads(line))
        out.seconds = dt
        if out.kind == "memory":
            self.close()  # peak RSS is per process: start afresh
            self.restarts += 1
        return out


def run_target(path: Path, target: str, frames: int = 4, sr: int = 16000) -> None:
    """Exercise one target on ``path`` the way the application does (raises on failure)."""
    import numpy as np

    from engine.media import Uniform, VideoReader, load_audio, probe

    if target == "probe":
        ev = probe(path)
        json.dumps(ev.to_dict(), allow_nan=False, default=str)  # results files refuse NaN/inf
        if ev.frame_index is not None:
            assert len(ev.frame_index) >= 1
    elif target == "video":
        with VideoReader(path) as reader:
            n = len(reader)
            assert n >= 1
            got = reader.sample(Uniform(frames))
            got.append(reader.frame(n - 1))
            got.append(reader.frame_at(reader.duration_s / 2))
            for f in got:
                assert f.rgb.dtype == np.uint8 and f.rgb.ndim == 3 and f.rgb.shape[2] == 3, f.rgb.shape
    elif target == "audio":
        track = load_audio(path, sr)
        assert track.waveform.dtype == np.float32 and track.waveform.ndim == 1
    else:
        raise ValueError(f"unknown target {target!r}")


def _worker_main() -> None:
    """Worker loop: one JSON request per stdin line, one JSON :class:`Outcome` per stdout line."""
    import resource
    import traceback

    try:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    except (ValueError, OSError):
        pass
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the libraries print goes to stderr, not into the protocol
    import logging

    logging.disable(logging.CRITICAL)
    from engine.media import EvidenceError

    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        target = req["target"]
        res: dict = {"target": target, "kind": "ok"}
        try:
            run_target(Path(req["path"]), target, req["frames"], req["sr"])
        except EvidenceError as exc:
            res.update(kind="evidence_error", error=type(exc).__name__, message=str(exc)[:500])
            if Path(req["path"]).name not in str(exc):
                res.update(kind="crash", message="EvidenceError message does not name the file: " + str(exc)[:400])
        except MemoryError as exc:
            res.update(kind="memory", error="MemoryError", message=str(exc)[:500], traceback=traceback.format_exc())
        except BaseException as exc:  # noqa: BLE001 - the point is to catch everything
            res.update(kind="crash", error=type(exc).__name__, message=str(exc)[:500],
                       traceback=traceback.format_exc())
        rss = peak_rss_bytes() / 2**20  # own address space only (ru_maxrss inherits the parent's)
        res["rss_mb"] = rss
        if rss > RSS_LIMIT_MB and res["kind"] != "crash":
            res.update(kind="memory", error=res.get("error", ""),
                       message=f"peak RSS {rss:.0f} MiB > {RSS_LIMIT_MB} MiB; " + res.get("message", ""))
        reply.write(json.dumps(res) + "\n")


@dataclass
class Crasher:
    """A failing input: enough to recreate it (seed name + recipe) and the evidence of the failure."""

    seed: str
    recipe: list
    outcome: Outcome
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        o = self.outcome
        return (f"{o.target} on {self.seed} mutated by {json.dumps(self.recipe)}: {o.label} "
                f"({o.message})\n{o.traceback}")
