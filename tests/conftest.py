"""Shared fixtures: real sample paths, generated edge-case media, evidence guard."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))  # media_factory

DATA = TESTS / "data" / "media"
SAMPLES = REPO / "resources" / "samples"

#: Real (not generated) video files bundled with the repo: test media + sample evidence.
REAL_VIDEOS = sorted(
    [p for p in DATA.iterdir() if p.suffix.lower() not in {".flac", ".wav", ".md"}]
    + [p for p in SAMPLES.iterdir() if p.suffix.lower() in {".mp4", ".mov"}]
)


def _hash_tree() -> dict[str, str]:
    out = {}
    for root in (DATA, SAMPLES):
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session", autouse=True)
def evidence_unchanged():
    """Evidence is read-only: every bundled media file is byte-identical after the whole run."""
    before = _hash_tree()
    yield
    after = _hash_tree()
    changed = [p for p in before if after.get(p) != before[p]]
    added = sorted(set(after) - set(before))
    assert not changed, f"evidence files modified by the tests: {changed}"
    assert not added, f"files written next to evidence by the tests: {added}"


@pytest.fixture(scope="session")
def real_videos() -> list[Path]:
    return REAL_VIDEOS


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated_media")


@pytest.fixture(scope="session")
def vfr_video(gen_dir) -> Path:
    """Variable frame rate H.264 MP4 (intervals 5–200 ms) with an AAC track."""
    from media_factory import make_video

    pts = [0, 20, 80, 100, 133, 300, 320, 340, 500, 510, 520, 700, 760, 800, 900, 905, 1000, 1100, 1150, 1200,
           1240, 1400, 1405, 1410, 1600, 1633, 1666, 1700, 1900, 2000]
    return make_video(gen_dir / "vfr.mp4", n_frames=len(pts), pts_ms=pts, audio_seconds=2.0)


@pytest.fixture(scope="session")
def rotated_videos(gen_dir) -> dict[int, Path]:
    """160×120 H.264 clips with display rotation 90, 180, 270 (degrees CCW)."""
    from media_factory import make_video

    return {r: make_video(gen_dir / f"rot{r}.mp4", n_frames=12, rotation=r) for r in (90, 180, 270)}


def which_or_skip(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it with apt-get)")
    return path


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """The workbench main window, shown offscreen, with its results, settings and user data under ``tmp_path``."""
    from forensic_gui.analysis import ResultStore
    from forensic_gui.app import MainWindow

    monkeypatch.setenv("FORENSIC_WORKBENCH_DATA", str(tmp_path / "data"))
    win = MainWindow(store=ResultStore(tmp_path / "results"), settings_path=tmp_path / "settings.ini")
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
