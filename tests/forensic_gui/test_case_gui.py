"""Case workflow in the window: bookmarks, save/open, tamper flagged in GUI state, report and audit log."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from conftest import SAMPLES  # noqa: E402
from forensic_gui.analysis import ResultStore  # noqa: E402
from forensic_gui.app import MainWindow  # noqa: E402

SAMPLE = SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4"


def _window(qtbot, tmp_path, name="w"):
    win = MainWindow(store=ResultStore(tmp_path / "results"), settings_path=tmp_path / f"{name}.ini", prepare=False)
    qtbot.addWidget(win)
    win.show()
    return win


def _evidence_copy(tmp_path):
    copy = tmp_path / "evidence" / SAMPLE.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(SAMPLE, copy)
    return copy


def test_bookmarks_are_saved_in_the_case_and_jump_back(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FORENSIC_WORKBENCH_DATA", str(tmp_path / "data"))
    copy = _evidence_copy(tmp_path)
    win = _window(qtbot, tmp_path)
    win.add_evidence(copy)
    qtbot.waitUntil(lambda: win.playback.current is not None, timeout=30000)
    win.playback.seek_index(42)
    qtbot.waitUntil(lambda: win.playback.current.index == 42, timeout=10000)
    win.bookmarks.status.setCurrentIndex(2)  # Warning
    win.bookmarks.comment.setText("teeth blur")
    qtbot.keyClick(win, Qt.Key.Key_B)
    [b] = win.case.bookmarks
    assert (b.frame_index, b.status, b.comment) == (42, "warning", "teeth blur")
    assert win.bookmarks.table.rowCount() == 1 and win.bookmarks.table.item(0, 2).text() == "Warning"
    win.bookmarks.note.setText("compare with the original upload")
    win.bookmarks.note.returnPressed.emit()
    assert win._write_case(tmp_path / "cases" / "case.json")
    assert not win._write_case(copy.parent / "case.json")  # never next to evidence
    win.close()

    again = _window(qtbot, tmp_path, "again")
    again.open_case(tmp_path / "cases" / "case.json")
    qtbot.waitUntil(lambda: again.case.path is not None and again.playback.current is not None, timeout=30000)
    assert not again.integrity_problems and again.integrity_banner.isHidden()
    assert again.bookmarks.table.rowCount() == 1 and "compare with" in again.bookmarks.notes_view.toPlainText()
    again.bookmarks.table.cellDoubleClicked.emit(0, 0)
    qtbot.waitUntil(lambda: again.playback.current.index == 42, timeout=10000)
    actions = [a.action for a in again.case.audit]
    assert "bookmark_added" in actions and "note_added" in actions and actions[-1] == "evidence_verified"
    again.close()


def test_tampered_evidence_is_flagged_in_gui_report_and_audit(qtbot, tmp_path, monkeypatch):
    pypdf = pytest.importorskip("pypdf")
    monkeypatch.setenv("FORENSIC_WORKBENCH_DATA", str(tmp_path / "data"))
    copy = _evidence_copy(tmp_path)
    win = _window(qtbot, tmp_path)
    win.add_evidence(copy)
    qtbot.waitUntil(lambda: win.current is not None and win.current.evidence is not None, timeout=30000)
    win.analyse_current(["deepfake.freq"], "cpu", 4)
    qtbot.waitUntil(lambda: win.current.result is not None, timeout=300000)
    case_path = tmp_path / "cases" / "case.json"
    assert win._write_case(case_path)
    win.close()

    data = bytearray(copy.read_bytes())
    data[len(data) // 3] ^= 0x01  # one byte changed
    copy.write_bytes(bytes(data))

    again = _window(qtbot, tmp_path, "again")
    again.open_case(case_path)
    qtbot.waitUntil(lambda: bool(again.integrity_problems), timeout=30000)
    assert not again.integrity_banner.isHidden() and copy.name in again.integrity_banner.text()
    assert any(a.action == "EVIDENCE_MISMATCH" for a in again.case.audit)
    # the case's recorded result is shown and reportable; the report flags the mismatch
    qtbot.waitUntil(lambda: again.entries[copy.absolute()].result is not None, timeout=10000)
    written, failed = [], []
    again.reportWritten.connect(written.append)
    again.reportFailed.connect(failed.append)
    again.export_report(tmp_path / "reports" / "report.pdf")
    qtbot.waitUntil(lambda: bool(written or failed), timeout=300000)
    assert not failed, failed[0]
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(str(written[0])).pages)
    assert "MISMATCH" in text
    assert [a.action for a in again.case.audit].count("EVIDENCE_MISMATCH") >= 2  # on open and before the report
    assert again.case.audit[-1].action == "report_written"
    again.close()
