"""Smoke test of the frozen app (PyInstaller one-folder bundle, ``packaging/``).

Skipped unless the bundle exists: ``$FW_FROZEN_APP`` or ``packaging/dist/forensic-workbench/``.
Build it and run this test with::

    make -C packaging app      # ~20-40 min on 2 CPU cores
    make -C packaging smoke    # = FW_FROZEN_APP=packaging/dist/forensic-workbench pytest tests/packaging -m slow -v -s

The bundle is run with an empty user data folder and without ``$FORENSIC_MODELS_DIR``, so the weights
it uses are the ones inside the bundle; the evidence analysed is the bundle's own copy of the samples.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = Path(os.environ.get("FW_FROZEN_APP") or REPO / "packaging" / "dist" / "forensic-workbench")
EXE = APP / "forensic-workbench"
BUNDLED_SAMPLES = APP / "_internal" / "resources" / "samples"
EXPECTED_DETECTORS = {"camera.audio", "camera.image", "camera.fusion", "deepfake.av", "deepfake.c3d", "deepfake.cnn",
                      "deepfake.cnn_lstm", "deepfake.effvit", "deepfake.freq", "deepfake.triplet"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not EXE.is_file(), reason=f"no frozen app at {APP} (build: make -C packaging app; "
                                                    "or set FW_FROZEN_APP)"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORENSIC_MODELS_DIR", "PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "xdg-data"),
               XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               FORENSIC_WORKBENCH_DATA=str(tmp_path / "fw-data"))
    return env


def _run(cmd: list[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=timeout)
    print(f"\n$ {' '.join(cmd)}\n-> exit {proc.returncode} in {time.monotonic() - t0:.1f} s")
    print("stdout:", proc.stdout[-3000:])
    print("stderr:", proc.stderr[-3000:])
    return proc


def test_bundle_layout():
    assert sorted(p.name for p in (APP / "_internal" / "resources" / "models").iterdir()) == sorted(
        p.name for p in (REPO / "resources" / "models").iterdir())
    for alias in ("forensic-gui", "forensic-analyze", "forensic-report"):
        assert (APP / alias).resolve() == EXE.resolve()
    assert list(BUNDLED_SAMPLES.glob("*.mp4")) and list(BUNDLED_SAMPLES.glob("*.mov"))
    assert list((APP / "_internal" / "facenet_pytorch" / "data").glob("*net.pt"))
    # MTCNN opens facenet_pytorch/models/../data/pnet.pt: the models folder must exist on disk
    assert (APP / "_internal" / "facenet_pytorch" / "models" / "mtcnn.py").is_file()


def test_version_and_report_module(tmp_path):
    proc = _run([str(EXE), "--version"], tmp_path, 300)
    assert proc.returncode == 0 and "forensic-workbench" in proc.stdout
    # the GUI writes reports with `sys.executable -m engine.report ...`; sys.executable is the launcher
    proc = _run([str(EXE), "-m", "engine.report", "--help"], tmp_path, 300)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower()


def test_frozen_analyze_samples(tmp_path):
    out = tmp_path / "out" / "analysis.json"
    pdf = tmp_path / "out" / "report.pdf"
    cmd = [str(APP / "forensic-analyze"), str(BUNDLED_SAMPLES), "--json", str(out), "--report", str(pdf),
           "--device", "cpu", "--quiet"]
    proc = _run(cmd, tmp_path, 3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert not doc["failed"] and doc["detectors_unavailable"] == {}
    assert set(doc["detectors_requested"]) == EXPECTED_DETECTORS
    assert len(doc["analyses"]) == 2
    for a in doc["analyses"]:
        src = Path(a["evidence"]["path"])
        assert a["evidence"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert a["evidence_unchanged"]
        statuses = {d["detector_id"]: d["status"] for d in a["detectors"]}
        print(src.name, a["evidence"]["sha256"][:16], statuses)
        assert set(statuses) == EXPECTED_DETECTORS
        assert "error" not in statuses.values() and "failed" not in statuses.values()
        assert any(s == "ok" for s in statuses.values())
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_frozen_gui_starts_offscreen(tmp_path):
    proc = _run([str(APP / "forensic-gui"), "--quit-after", "3000"], tmp_path, 600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "window shown=True" in proc.stdout


def test_frozen_gui_close_during_analysis(tmp_path):
    """Closing 3 s after opening a file (its preparation or analysis still running) exits 0: the window
    waits for the worker thread (AnalysisQueue.shutdown) instead of destroying it while it runs."""
    proc = _run([str(APP / "forensic-gui"), str(BUNDLED_SAMPLES / "apple_iphone6_with-gps.mov"),
                 "--quit-after", "3000"], tmp_path, 600)
    assert "window shown=True" in proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
