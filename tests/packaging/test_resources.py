"""The one resource lookup (``engine.weights.resources_dir``) and the frozen launcher's dispatch (fast, no bundle)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import engine.weights as w

REPO = Path(__file__).resolve().parents[2]


def test_resources_dir_source_checkout():
    assert w.resources_dir() == REPO / "resources"
    assert w.BUNDLED_MODELS_DIR == REPO / "resources" / "models"
    assert (w.resources_dir() / "samples").is_dir()


def test_resources_dir_frozen_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert w.resources_dir() == tmp_path / "resources"


def _launcher():
    spec = importlib.util.spec_from_file_location("fw_launcher", REPO / "packaging" / "launcher.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_launcher_dispatch(monkeypatch):
    launcher = _launcher()
    calls = []
    monkeypatch.setattr(launcher, "_run_module_main", lambda module, argv, prog: calls.append((module, argv, prog)) or 0)
    for argv in (["/opt/fw/forensic-analyze", "a.mp4", "--json", "o.json"],
                 ["/opt/fw/forensic-workbench", "analyze", "a.mp4", "--json", "o.json"],
                 ["/opt/fw/forensic-workbench", "-m", "engine.report", "x.json"],
                 ["/opt/fw/forensic-workbench", "a.mp4"],
                 ["/opt/fw/forensic-gui", "--quit-after", "10"]):
        monkeypatch.setattr(sys, "argv", argv)
        assert launcher.main() == 0
    assert calls == [("engine.cli", ["a.mp4", "--json", "o.json"], "forensic-analyze"),
                     ("engine.cli", ["a.mp4", "--json", "o.json"], "forensic-analyze"),
                     ("engine.report", ["x.json"], "engine.report"),
                     ("forensic_gui.app", ["a.mp4"], "forensic-gui"),
                     ("forensic_gui.app", ["--quit-after", "10"], "forensic-gui")]


def test_gui_quit_after_flag_is_removed_from_argv():
    from forensic_gui.app import _pop_quit_after

    assert _pop_quit_after(["forensic-gui", "a.mp4", "--quit-after", "250"]) == (["forensic-gui", "a.mp4"], 250)
    assert _pop_quit_after(["forensic-gui", "--quit-after=0"]) == (["forensic-gui"], 0)
    assert _pop_quit_after(["forensic-gui"]) == (["forensic-gui"], None)
