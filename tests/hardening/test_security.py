"""Security (issue 8): no unpickling anywhere, weights only through the SHA-256 check, atomic writes,
a raising detector marked failed while the others complete.

* The source scan (AST, so docstrings that *mention* pickles do not count) covers every
  ``.py`` of ``engine/``, ``trainer/``, ``forensic_gui/``, ``bench/`` and ``scripts/``.
* Wrong-SHA-256 refusal of ``engine.weights.load_weights`` itself is tested in
  ``tests/engine/test_weights.py::test_tampered_weights_refused``; here the same refusal is
  checked end to end: a registered detector whose weights were tampered with is marked
  failed in the analysis result, with the file named, while the other detector completes.
* Atomic writes: case save, PDF report, preprocessing caches, result JSON + npz. A
  disk-full error in the middle of the write leaves the previous file intact and nothing
  else in the folder; a process killed mid-write leaves the previous file under the final
  name (only a hidden temp file remains).
"""

from __future__ import annotations

import ast
import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from conftest import DATA, REPO

SCANNED = ("engine", "trainer", "forensic_gui", "bench", "scripts")
SKIP_PARTS = {".venv", "__pycache__", "build", "dist", ".git", "node_modules"}

# --------------------------------------------------------------------------- (a) no unpickling
#: Modules whose import alone is a finding: every one of them deserialises arbitrary objects.
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "shelve", "marshal", "joblib"}
#: Weight loaders allowed only inside engine/weights.py (the SHA-256-checked path).
SAFETENSORS_LOADERS = {"load_file", "safe_open", "load"}
YAML_SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader"}


def _dotted(node: ast.AST) -> str:
    """``torch.jit.load`` for an Attribute chain, ``load`` for a Name, '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _is_const(node: ast.expr | None, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_deserialisation(source: str, filename: str = "<src>", weights_module: bool = False) -> list[str]:
    """Findings (``line: what``) of unpickling or unchecked weight loading in Python ``source``."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    imported_from: dict[str, str] = {}  # local name -> "module.name"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PICKLE_MODULES:
                    found.append(f"{node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in PICKLE_MODULES:
                found.append(f"{node.lineno}: from {node.module} import ...")
            for a in node.names:
                imported_from[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        full = imported_from.get(name.split(".")[0], "")
        if full:
            name = full + name[len(name.split(".")[0]):]
        last = name.rsplit(".", 1)[-1]
        where = f"{node.lineno}: {name}("
        if name in ("torch.load",) and not _is_const(_kw(node, "weights_only"), True):
            found.append(where + ") without weights_only=True")
        elif name in ("torch.jit.load", "jit.load", "torch.hub.load", "torch.package.PackageImporter"):
            found.append(where + ") loads pickled code")
        elif last == "load_state_dict_from_url" and not _is_const(_kw(node, "weights_only"), True):
            found.append(where + ") without weights_only=True")
        elif name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not None \
                and not _is_const(_kw(node, "allow_pickle"), False):
            found.append(where + ") with allow_pickle other than False")
        elif last in ("read_pickle", "load_from_checkpoint"):
            found.append(where + ") unpickles")
        elif _kw(node, "ckpt_path") is not None and not _is_const(_kw(node, "ckpt_path"), None):
            found.append(where + "ckpt_path=...) resumes from a pickled Lightning checkpoint")
        elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            found.append(where + ") can construct arbitrary objects")
        elif name == "yaml.load":
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _dotted(loader).rsplit(".", 1)[-1] not in YAML_SAFE_LOADERS:
                found.append(where + ") without a safe Loader")
        elif name.startswith("safetensors") and last in SAFETENSORS_LOADERS and not weights_module:
            found.append(where + ") bypasses engine.weights.load_weights (SHA-256 check)")
    return found


def _sources() -> list[Path]:
    out = []
    for folder in SCANNED:
        for p in sorted((REPO / folder).rglob("*.py")):
            if not SKIP_PARTS & set(p.relative_to(REPO).parts):
                out.append(p)
    return out


def test_no_unpickling_or_unchecked_weight_loading_in_sources():
    files = _sources()
    assert len(files) > 50 and any(p.name == "weights.py" for p in files)
    bad = {}
    for p in files:
        rel = p.relative_to(REPO).as_posix()
        # engine/weights.py is the SHA-256-checked loader; trainer/resume.py reloads the
        # trainer's own safetensors resume state (its sha256 is checked against state.json).
        allowed = rel in ("engine/weights.py", "trainer/resume.py")
        findings = unsafe_deserialisation(p.read_text(encoding="utf-8"), rel, weights_module=allowed)
        if findings:
            bad[rel] = findings
    assert not bad, f"unsafe deserialisation: {bad}"


@pytest.mark.parametrize("code", [
    "import pickle",
    "import cloudpickle as cp",
    "from dill import loads",
    "import joblib",
    "from joblib import load",
    "import shelve",
    "torch.load(p)",
    "torch.load(p, weights_only=False)",
    "torch.load(\n    p,\n    map_location='cpu',\n)",
    "from torch import load\nload(p)",
    "torch.jit.load(p)",
    "torch.hub.load('a', 'b')",
    "np.load(p, allow_pickle=True)",
    "numpy.load(p, allow_pickle=flag)",
    "pd.read_pickle(p)",
    "pandas.read_pickle(p)",
    "Model.load_from_checkpoint(p)",
    "trainer.fit(model, ckpt_path='last.ckpt')",
    "yaml.load(text)",
    "yaml.load(text, Loader=yaml.Loader)",
    "yaml.unsafe_load(text)",
    "from safetensors.torch import load_file\nload_file(p)",
    "safetensors.torch.load(blob)",
])
def test_scanner_flags_unsafe_code(code):
    assert unsafe_deserialisation(code), code


@pytest.mark.parametrize("code", [
    "torch.load(p, weights_only=True, map_location='cpu')",
    "np.load(p)",
    "np.load(p, allow_pickle=False)",
    "yaml.safe_load(text)",
    "yaml.load(text, Loader=yaml.SafeLoader)",
    "trainer.fit(model, ckpt_path=None)",
    "'''docs: never pickle.load or torch.load(p) here'''",
    "# import pickle",
    "from engine.weights import load_weights\nload_weights(d)",
])
def test_scanner_accepts_safe_code(code):
    assert not unsafe_deserialisation(code), code


def test_npz_loads_refuse_pickles(tmp_path):
    """``engine.io.load_npz`` (every npz read: results, caches) refuses an object array."""
    from engine.io import load_npz

    np.savez(tmp_path / "evil.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(tmp_path / "evil.npz")


# --------------------------------------------------------------------------- (c) atomic writes
#: Where a direct file write is expected: the atomic helpers themselves, and the simulated-device
#: encoder, which PyAV muxes into the temp path handed out by ``engine.io.atomic_path``.
DIRECT_WRITERS = {("engine/io.py", "open"), ("trainer/simdevice.py", "av.open")}
#: First arguments that name an in-memory buffer (``np.savez(buf, ...)``, ``fig.savefig(buf)``).
IN_MEMORY = {"buf", "bio", "stream"}


def direct_file_writes(source: str, filename: str = "<src>") -> list[tuple[str, str]]:
    """``(call name, "line: what")`` of every call in ``source`` that writes a file without engine.io."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = node.func.attr if isinstance(node.func, ast.Attribute) else name  # also for Path(p).write_text
        first = node.args[0] if node.args else None
        in_memory = isinstance(first, ast.Name) and first.id in IN_MEMORY
        if last == "open":
            at = 1 if name in ("open", "io.open", "os.fdopen", "av.open") else 0  # Path(p).open(mode)
            mode = node.args[at] if len(node.args) > at else _kw(node, "mode")
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                out.append((name, f"{node.lineno}: {name}(..., {mode.value!r})"))
        elif last in ("write_text", "write_bytes"):
            out.append((name, f"{node.lineno}: .{last}()"))
        elif name in ("np.save", "np.savez", "np.savez_compressed", "numpy.save", "torch.save", "json.dump",
                      "cv2.imwrite") and not in_memory:
            out.append((name, f"{node.lineno}: {name}()"))
        elif last in ("savefig", "to_csv", "to_parquet") and not in_memory:
            out.append((name, f"{node.lineno}: {name}()"))
    return out


def test_every_file_write_goes_through_the_atomic_helpers():
    """engine/, trainer/, forensic_gui/, scripts/ write files only via engine.io (temp file + rename)."""
    bad = {}
    for p in _sources():
        rel = p.relative_to(REPO).as_posix()
        if rel.startswith("bench/"):
            continue  # measurement tools writing their own reports / crashers to folders they are given
        found = [w for name, w in direct_file_writes(p.read_text(encoding="utf-8"), rel)
                 if (rel, name) not in DIRECT_WRITERS]
        if found:
            bad[rel] = found
    assert not bad, f"non-atomic file writes (use engine.io.atomic_write_*/atomic_path): {bad}"


@pytest.mark.parametrize("code", [
    "open(p, 'w')", "open(p, mode='ab')", "Path(p).write_text(t)", "p.write_bytes(b)", "np.save(p, a)",
    "np.savez_compressed(path, a=a)", "torch.save(sd, p)", "json.dump(d, fh)", "fig.savefig(p)",
    "df.to_csv(p)", "p.open('w')",
])
def test_write_scanner_flags_direct_writes(code):
    assert direct_file_writes(code), code


@pytest.mark.parametrize("code", ["open(p)", "open(p, 'rb')", "np.savez(buf, a=a)", "fig.savefig(buf, format='png')",
                                  "json.dumps(d)", "atomic_write_json(p, d)"])
def test_write_scanner_accepts_reads_and_buffers(code):
    assert not direct_file_writes(code), code


class _DiskFull:
    """Replaces ``open`` inside ``engine.io``: writes half the bytes, then fails like a full disk."""

    def __init__(self, real_open):
        self.real_open = real_open
        self.calls = 0

    def __call__(self, file, mode="r", *args, **kwargs):
        fh = self.real_open(file, mode, *args, **kwargs)
        if not any(c in mode for c in "wax+"):
            return fh
        self.calls += 1

        class Half:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def write(self, data):
                fh.write(data[: max(1, len(data) // 2)])
                fh.flush()
                raise OSError(errno.ENOSPC, "No space left on device (simulated)")

            def __getattr__(self, name):
                return getattr(fh, name)

        return Half()


def _assert_crash_keeps_old(folder: Path, target: Path, old: bytes, write, monkeypatch) -> None:
    import builtins

    import engine.io

    before = sorted(p.name for p in folder.iterdir())
    disk_full = _DiskFull(builtins.open)
    monkeypatch.setattr(engine.io, "open", disk_full, raising=False)
    with pytest.raises(OSError, match="No space left"):
        write()
    monkeypatch.undo()
    assert disk_full.calls >= 1, "the writer did not go through engine.io's atomic helpers"
    assert target.read_bytes() == old, f"{target.name}: previous file damaged by a failed write"
    assert sorted(p.name for p in folder.iterdir()) == before, "partial or temporary file left behind"


def test_case_save_is_atomic(tmp_path, monkeypatch):
    from engine.case import Case

    case = Case.new("fuzz", "analyst")
    path = case.save(tmp_path / "case.json")
    old = path.read_bytes()
    case.add_note("second version")
    _assert_crash_keeps_old(tmp_path, path, old, case.save, monkeypatch)
    assert Case.load(path, verify=False).case_id == case.case_id


def _result():
    from engine.pipeline import AnalysisResult, DetectorResult

    return AnalysisResult(
        evidence={"path": "/nonexistent/x.mp4", "sha256": "ab" * 32}, sampling={"frames": []}, faces={"tracks": []},
        audio={"has_audio": False}, features={}, detectors=[DetectorResult("test.x", "deepfake", score=0.5)],
        device="cpu", started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00", duration_s=1.0,
        arrays={"log_mel_3res": np.zeros((3, 4, 5), np.float32)},
    )


def test_result_json_and_sidecar_are_atomic(tmp_path, monkeypatch):
    res = _result()
    path = res.save(tmp_path / "r.json")
    old_json, old_npz = path.read_bytes(), path.with_suffix(".npz").read_bytes()
    res.arrays["log_mel_3res"] = np.ones((3, 4, 5), np.float32)
    _assert_crash_keeps_old(tmp_path, path, old_json, lambda: res.save(path), monkeypatch)
    assert path.with_suffix(".npz").read_bytes() == old_npz
    assert json.loads(path.read_text())["arrays_file"] == "r.npz"


def test_report_pdf_is_atomic(tmp_path, monkeypatch):
    from engine.report import ReportOptions, build_report
    from engine.results import ResultView

    doc = {"tool": {"name": "forensic-workbench", "engine_version": "0.1.0"},
           "evidence": {"path": str(tmp_path / "evidence" / "gone.mp4"), "sha256": "ab" * 32, "size_bytes": 10,
                        "video": [], "audio": []},
           "sha256_at_end": "ab" * 32, "device": "cpu", "sampling": {"policy": "Uniform", "n": 2, "frames": []},
           "detectors": []}
    out_dir = tmp_path / "reports"
    opts = ReportOptions(sections=("cover", "evidence"))
    path = build_report(out_dir / "r.pdf", [ResultView(doc, {})], options=opts)
    old = path.read_bytes()
    assert old.startswith(b"%PDF")
    _assert_crash_keeps_old(out_dir, path, old,
                            lambda: build_report(out_dir / "r.pdf", [ResultView(doc, {})], options=opts), monkeypatch)


class _FakeClip:
    """Stands in for MediaClip in the preprocessing cache: no faces, no audio, two frames."""

    def __init__(self, path, config=None, **kw):
        from engine.media import Frame

        self.frames = [Frame(0, 0.0, np.zeros((4, 4, 3), np.uint8)), Frame(5, 0.2, np.zeros((4, 4, 3), np.uint8))]
        self.face_tracks = []

    def face_crops(self, name):
        return []

    def log_mel_3res(self):
        return None


def test_preprocessing_cache_is_atomic(tmp_path, monkeypatch):
    import trainer.cache as tc

    video = tmp_path / "src" / "v.mp4"
    video.parent.mkdir()
    video.write_bytes(b"not decoded: MediaClip is faked")
    monkeypatch.setattr(tc, "MediaClip", _FakeClip)
    out_dir = tmp_path / "cache"
    cached = tc.cache_video(video, out_dir, frames=2)
    old = cached.cache.read_bytes()
    assert cached.load()["frame_index"].tolist() == [0, 5]
    _assert_crash_keeps_old(out_dir, cached.cache, old,
                            lambda: tc.cache_video(video, out_dir, frames=2, overwrite=True), monkeypatch)


def test_killed_mid_write_leaves_old_file_under_final_name(tmp_path):
    """A process killed between writing and renaming: the final name still holds the old file."""
    target = tmp_path / "case.json"
    code = (
        "import os, sys\n"
        "import engine.io as io\n"
        f"io.atomic_write_json({str(target)!r}, {{'v': 1}})\n"
        "real = io.os.fsync\n"
        "def die(fd):\n"
        "    os._exit(9)  # killed after the bytes were written, before the rename\n"
        "io.os.fsync = die\n"
        f"io.atomic_write_json({str(target)!r}, {{'v': 2, 'pad': 'x' * 100000}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    assert json.loads(target.read_text()) == {"v": 1}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "case.json"]
    assert all(n.startswith(".case.json.") for n in leftovers), leftovers  # hidden temp only


# --------------------------------------------------------------------------- (b)+(d) failing detectors
class _Constant:
    """A working detector (not a forensic method): constant score."""

    id: ClassVar[str] = "test.hardening.constant"
    task: ClassVar[str] = "deepfake"

    def __init__(self, device: str = "cpu"):
        pass

    def analyze(self, clip, progress=None):
        from engine.pipeline import DetectorResult

        return DetectorResult(self.id, self.task, score=0.25, aggregation="constant")


def test_tampered_weights_detector_is_failed_while_others_complete(tmp_path):
    """``register_detector`` + a detector whose weights fail the SHA-256 check, next to a working one."""
    import torch

    from engine.media import Uniform
    from engine.pipeline import ClipConfig, analyze, register_detector
    from engine.weights import ModelCard, load_weights, save_weights

    model_dir = tmp_path / "models" / "test.hardening.tampered"
    card = ModelCard(detector_id="test.hardening.tampered", architecture="linear", config={}, classes=["real", "fake"],
                     training_data="none", metrics={}, evaluation="none", limitations=["test only"], sha256="")
    save_weights(torch.nn.Linear(2, 1).state_dict(), card, model_dir)
    w = model_dir / "model.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 0x01
    w.write_bytes(bytes(blob))

    @register_detector("test.hardening.tampered")
    class Tampered:
        id: ClassVar[str] = "test.hardening.tampered"
        task: ClassVar[str] = "deepfake"

        def __init__(self, device: str = "cpu"):
            self.state, self.card = load_weights(model_dir)

        def analyze(self, clip, progress=None):  # pragma: no cover - never reached
            raise AssertionError("loaded tampered weights")

    register_detector(_Constant.id)(_Constant)
    result = analyze(DATA / "single_face.mp4", ["test.hardening.tampered", _Constant.id], device="cpu",
                     config=ClipConfig(sampling=Uniform(2)), compute_features=())
    bad, good = result.detectors
    assert bad.status == "failed" and "WeightsIntegrityError" in bad.message
    assert str(w) in bad.message and "SHA-256" in bad.message and "refusing to load" in bad.message
    assert good.status == "ok" and good.score == 0.25
    assert result.sha256_at_end == result.evidence["sha256"]
    doc = result.to_dict()
    assert [d["status"] for d in doc["detectors"]] == ["failed", "ok"]
