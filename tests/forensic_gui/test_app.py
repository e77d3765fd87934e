"""The intake window probes evidence off the GUI thread and shows it; bad files are reported non-modally."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from conftest import SAMPLES  # noqa: E402
from forensic_gui.app import MainWindow  # noqa: E402


def test_open_sample_and_bad_file(qtbot, tmp_path):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.add_evidence(SAMPLES / "apple_iphone6_with-gps.mov")
    qtbot.waitUntil(lambda: win.list.count() == 1, timeout=20000)
    assert win.table.rowCount() > 5
    values = [win.table.item(r, 1).text() for r in range(win.table.rowCount())]
    assert any("Apple iPhone 6" in v for v in values)
    assert win.preview.pixmap() is not None and not win.preview.pixmap().isNull()
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"")
    win.add_evidence(bad)
    qtbot.waitUntil(lambda: "empty" in win.statusBar().currentMessage(), timeout=10000)
    assert win.list.count() == 1
