"""Case widgets: the bookmarks-and-notes dock and the report export dialog.

They edit an :class:`engine.case.Case` only through its methods (so every
change lands in the case's audit log) and never compute anything themselves.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.case import BOOKMARK_STATUSES, Case

from .player import format_time

__all__ = ["BookmarksPanel", "ExportDialog"]

STATUS_COLOURS = {"ok": "#7CD67C", "to_check": "#FFD166", "warning": "#FF6B6B"}


class BookmarksPanel(QWidget):
    """Bookmarks of the current evidence (add at the current frame, jump, remove) and analyst notes.

    Signals:
        addRequested(str status, str comment): add a bookmark at the displayed frame.
        jumpRequested(int frame_index).
        changed(): the case was edited (bookmark removed, note added).
    """

    addRequested = Signal(str, str)
    jumpRequested = Signal(int)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.case: Case | None = None
        self.sha256: str | None = None
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.status = QComboBox()
        for key, label in BOOKMARK_STATUSES.items():
            self.status.addItem(label, key)
        self.status.setCurrentIndex(1)
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment on this frame")
        self.comment.returnPressed.connect(self._add)
        add = QPushButton("Bookmark frame")
        add.setToolTip("Bookmark the displayed frame with this status and comment (B)")
        add.clicked.connect(self._add)
        row.addWidget(self.status)
        row.addWidget(self.comment, 1)
        row.addWidget(add)
        lay.addLayout(row)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Time", "Frame", "Status", "Comment"])
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.jumpRequested.emit(self._rows[r].frame_index))
        self.table.setToolTip("Double-click a bookmark to show its frame")
        lay.addWidget(self.table, 1)
        rm = QPushButton("Remove selected")
        rm.clicked.connect(self._remove)
        lay.addWidget(rm, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(QLabel("Analyst notes (this evidence)"))
        self.notes_view = QPlainTextEdit()
        self.notes_view.setReadOnly(True)
        self.notes_view.setMaximumHeight(90)
        lay.addWidget(self.notes_view)
        nrow = QHBoxLayout()
        self.note = QLineEdit()
        self.note.setPlaceholderText("add a note and press Enter")
        self.note.returnPressed.connect(self._add_note)
        nrow.addWidget(self.note, 1)
        lay.addLayout(nrow)
        self._rows = []

    def set_context(self, case: Case | None, sha256: str | None) -> None:
        """Show the bookmarks and notes of evidence ``sha256`` in ``case``."""
        self.case, self.sha256 = case, sha256
        self.refresh()

    def refresh(self) -> None:
        case, sha = self.case, self.sha256
        self._rows = sorted((b for b in (case.bookmarks if case else []) if b.evidence_sha256 == sha),
                            key=lambda b: b.time_s)
        self.table.setRowCount(len(self._rows))
        for r, b in enumerate(self._rows):
            cells = [format_time(b.time_s), str(b.frame_index), b.status_label, b.comment]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 2:
                    item.setForeground(QColor(STATUS_COLOURS.get(b.status, "#FFFFFF")))
                self.table.setItem(r, c, item)
        notes = [n for n in (case.notes if case else []) if n.evidence_sha256 in (sha, None)]
        self.notes_view.setPlainText("\n".join(f"[{n.created}] {n.text}" for n in notes))

    def _add(self) -> None:
        self.addRequested.emit(self.status.currentData(), self.comment.text().strip())
        self.comment.clear()

    def _remove(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        if self.case is None or not rows:
            return
        for r in rows:
            self.case.remove_bookmark(self._rows[r].bookmark_id)
        self.refresh()
        self.changed.emit()

    def _add_note(self) -> None:
        text = self.note.text().strip()
        if self.case is None or not text:
            return
        self.case.add_note(text, self.sha256)
        self.note.clear()
        self.refresh()
        self.changed.emit()


class ExportDialog(QDialog):
    """Choose report sections, frames and the output file."""

    def __init__(self, sections: tuple[str, ...], default_path: Path, has_bookmarks: bool,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export report")
        lay = QFormLayout(self)
        from engine.report import SECTION_TITLES

        self.boxes = {}
        for s in sections:
            cb = QCheckBox(SECTION_TITLES.get(s, s.capitalize()))
            cb.setChecked(True)
            cb.setEnabled(s != "cover")
            self.boxes[s] = cb
            lay.addRow(cb)
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 16)
        self.top_k.setValue(4)
        self.top_k.setToolTip("Most suspicious frames per detector, with face crop and heatmap")
        lay.addRow("Suspicious frames per detector", self.top_k)
        self.use_bookmarks = QCheckBox("Show the bookmarked frames instead")
        self.use_bookmarks.setEnabled(has_bookmarks)
        lay.addRow(self.use_bookmarks)
        self.open_after = QCheckBox("Open the report when it is written")
        self.open_after.setChecked(True)
        lay.addRow(self.open_after)
        prow = QHBoxLayout()
        self.path = QLineEdit(str(default_path))
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        prow.addWidget(self.path, 1)
        prow.addWidget(browse)
        lay.addRow("PDF file", prow)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addRow(buttons)

    def _browse(self) -> None:
        p, _ = QFileDialog.getSaveFileName(self, "Report file", self.path.text(), "PDF (*.pdf)")
        if p:
            self.path.setText(p)

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(s for s, cb in self.boxes.items() if cb.isChecked())
