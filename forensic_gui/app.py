"""``forensic-gui``: evidence intake window (open files, hash + probe on a worker thread, preview).

The full workbench (synced panes, detectors, heatmaps) is built on this window
in issue 4; this module already keeps to the rules it needs: engine work runs
off the GUI thread, errors are shown non-modally and name the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QImage, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.media import EvidenceError, VideoReader, probe


class _ProbeSignals(QObject):
    done = Signal(object, object)  # Evidence, first Frame or None
    failed = Signal(str, str)  # path, message


class ProbeTask(QRunnable):
    """Hash + probe one file and decode its middle frame, off the GUI thread."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.signals = _ProbeSignals()

    def run(self) -> None:  # noqa: D102 - QRunnable API
        try:
            ev = probe(self.path)
            frame = None
            if ev.video:
                reader = VideoReader(self.path, index=ev.frame_index, rotation=ev.primary_video.rotation)
                frame = reader.frame_at(reader.duration_s / 2)
            self.signals.done.emit(ev, frame)
        except EvidenceError as exc:
            self.signals.failed.emit(str(self.path), str(exc))


class MainWindow(QMainWindow):
    """Evidence list (left), middle-frame preview and probe table (right)."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Forensic Workbench")
        self.resize(1100, 650)
        self.pool = QThreadPool.globalInstance()
        self.evidence: dict[str, object] = {}
        self.frames: dict[str, object] = {}
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._show)
        self.preview = QLabel("Open evidence (File ▸ Open) to begin")
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setMinimumSize(480, 300)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Property", "Value"])
        self.table.horizontalHeader().setStretchLastSection(True)
        right = QWidget()
        lay = QVBoxLayout(right)
        lay.addWidget(self.preview, 3)
        lay.addWidget(self.table, 2)
        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([280, 820])
        central = QWidget()
        QHBoxLayout(central).addWidget(split)
        self.setCentralWidget(central)
        act = QAction("&Open evidence…", self, shortcut="Ctrl+O", triggered=self.open_dialog)
        self.menuBar().addMenu("&File").addAction(act)
        self.statusBar().showMessage("Ready")

    def open_dialog(self) -> None:
        """Ask for files and add them."""
        files, _ = QFileDialog.getOpenFileNames(self, "Open evidence")
        for f in files:
            self.add_evidence(Path(f))

    def add_evidence(self, path: Path) -> None:
        """Queue ``path`` for hashing and probing; the list shows it when done."""
        self.statusBar().showMessage(f"Hashing and probing {path.name}…")
        task = ProbeTask(path)
        task.signals.done.connect(self._probed)
        task.signals.failed.connect(self._failed)
        self.pool.start(task)

    def _probed(self, ev, frame) -> None:
        self.evidence[ev.path], self.frames[ev.path] = ev, frame
        item = QListWidgetItem(ev.name)
        item.setData(Qt.UserRole, ev.path)
        item.setToolTip(f"SHA-256 {ev.sha256}")
        self.list.addItem(item)
        self.list.setCurrentItem(item)
        self.statusBar().showMessage(f"{ev.name}: SHA-256 {ev.sha256[:16]}…", 8000)

    def _failed(self, path: str, message: str) -> None:
        self.statusBar().showMessage(message, 15000)  # non-modal; other evidence stays usable

    def _show(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        ev = self.evidence[item.data(Qt.UserRole)]
        frame = self.frames[ev.path]
        if frame is not None:
            h, w, _ = frame.rgb.shape
            img = QImage(frame.rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()
            self.preview.setPixmap(QPixmap.fromImage(img).scaled(self.preview.size(), Qt.KeepAspectRatio))
        rows = [("File", ev.path), ("SHA-256", ev.sha256), ("Size (bytes)", f"{ev.size_bytes:,}"),
                ("Container", ev.container), ("Duration (s)", f"{ev.duration_s or 0:.3f}"),
                ("Device", ev.device.summary), ("Created", ev.creation_time or "—")]
        for v in ev.video:
            rows += [("Video", f"{v.codec} {v.display_width}×{v.display_height}, {v.avg_fps or 0:.3f} fps, "
                               f"{v.frame_count} frames, rotation {v.rotation}°")]
        for a in ev.audio:
            rows += [("Audio", f"{a.codec} {a.sample_rate} Hz, {a.channels} ch")]
        rows += [("Warning", w) for w in ev.warnings]
        self.table.setRowCount(len(rows))
        for r, (k, v) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(k))
            self.table.setItem(r, 1, QTableWidgetItem(v))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forensic-gui`` console script: ``forensic-gui [FILE ...]``."""
    argv = sys.argv if argv is None else argv
    app = QApplication.instance() or QApplication(argv)
    win = MainWindow()
    for arg in argv[1:]:
        win.add_evidence(Path(arg))
    win.show()
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
