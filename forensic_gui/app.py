"""``forensic-gui``: the analyst's workbench (DESIGN.md "GUI layout").

Evidence list (left); the frame-accurate video view with face boxes and the
heatmap overlay (centre) above a transport bar; synced panes under it
(spectrogram, face crops, score timeline); the detector panel and the
camera-model panel (right); a status bar with progress and Cancel. Every pane is a dock: move, float, resize or hide
it; the layout is remembered.

Threads: hashing/probing runs on the global ``QThreadPool``; frame decoding on
each video's :class:`forensic_gui.player.FrameServer` thread; analysis on the
:class:`forensic_gui.analysis.AnalysisQueue` ``QThread``. The UI thread only
paints. Nothing here computes a model, a crop or a heatmap: that is ``engine``.

Keys: Space play/pause · ←/→ one frame · Shift+←/→ one second · Home/End ·
N/P next/previous most suspicious frame · Ctrl+O open · Ctrl+R analyse · Esc cancel.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSettings, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.case import Case
from engine.cli import expand_inputs
from engine.faces import FaceBox, crop_face
from engine.media import EvidenceError, Evidence, probe
from engine.results import ResultView

from .analysis import AnalysisJob, AnalysisQueue, ResultStore, user_data_dir
from .camera_panel import CameraPanel
from .case_panel import BookmarksPanel, ExportDialog
from .detector_panel import DetectorPanel
from .panes import DETECTOR_COLOURS, FaceStrip, ScoreTimeline, SpectrogramPane
from .player import FrameServer, Playback, format_time
from .video_view import VideoView, colormap_lut, heatmap_to_rgba

__all__ = ["MainWindow", "main"]

FACE_CROP_POLICY = "effvit_square224"
TRACK_COLOURS = [QColor("#00E5FF"), QColor("#FFEA00"), QColor("#FF4081"), QColor("#76FF03")]


# ============================================================================ intake
class _ProbeSignals(QObject):
    # path as opened (a symlink stays the link), Evidence (path = the file read),
    # (stored analysis ResultView | None, stored preparation ResultView | None)
    done = Signal(str, object, object)
    failed = Signal(str, str)  # path, message


class _TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)


class CallTask(QRunnable):
    """Run ``fn()`` on the thread pool; ``signals.done(result)`` or ``signals.failed(message)``."""

    _running: set["CallTask"] = set()  # strong references until the result is delivered

    def __init__(self, fn, what: str):
        super().__init__()
        self.fn, self.what = fn, what
        self.signals = _TaskSignals()
        # keep the task (and its signals object) alive until the slots have received the outcome
        CallTask._running.add(self)

    def start(self, pool: QThreadPool) -> None:
        """Connect the release hook after the caller's slots, then queue the task on ``pool``."""
        self.signals.done.connect(self._release)
        self.signals.failed.connect(self._release)
        pool.start(self)

    def _release(self, *_args) -> None:
        # deferred: dropping the last reference now would delete the signals object before the
        # other queued slots (lambdas have no receiver QObject of their own) have run
        QTimer.singleShot(0, lambda: CallTask._running.discard(self))

    def run(self) -> None:  # noqa: D102 - QRunnable API
        try:
            self.signals.done.emit(self.fn())
        except Exception as exc:  # shown to the analyst, naming what failed
            self.signals.failed.emit(f"{self.what}: {type(exc).__name__}: {exc}" if str(exc) else self.what)


class ProbeTask(QRunnable):
    """Hash (SHA-256) and probe one file off the GUI thread, and load its stored results.

    The stored results (JSON plus an npz of heatmaps and spectrogram, megabytes for a
    full analysis) are read here too, so opening analysed evidence does not hold the
    UI thread.

    Args:
        path: the evidence file (read-only).
        store: the result store looked up by the file's SHA-256 (None: none).
    """

    def __init__(self, path: Path, store: ResultStore | None = None):
        super().__init__()
        self.path = path
        self.store = store
        self.signals = _ProbeSignals()

    def run(self) -> None:  # noqa: D102 - QRunnable API
        try:
            ev = probe(self.path)
            stored = (None, None) if self.store is None else (
                self.store.load(ev.sha256), self.store.load(ev.sha256, "prepare"))
            self.signals.done.emit(str(self.path), ev, stored)
        except EvidenceError as exc:
            self.signals.failed.emit(str(self.path), str(exc))
        except Exception as exc:  # never let a worker exception vanish: name the file and the problem
            self.signals.failed.emit(str(self.path), f"{self.path}: cannot open: {type(exc).__name__}: {exc}")


@dataclass
class EvidenceEntry:
    """What the window knows about one opened file."""

    path: Path
    item: QListWidgetItem
    evidence: Evidence | None = None
    error: str | None = None
    result: ResultView | None = None  # full analysis
    prepared: ResultView | None = None  # faces + spectrogram only

    @property
    def view(self) -> ResultView | None:
        return self.result or self.prepared


# ============================================================================ window
class MainWindow(QMainWindow):
    """The workbench main window.

    Args:
        store: where results are cached (default: the user data folder).
        settings_path: INI file for layout and recent files (default: in the user data folder).
        prepare: on open, compute faces and the spectrogram in the background.
    """

    def __init__(self, store: ResultStore | None = None, settings_path: Path | None = None, prepare: bool = True):
        super().__init__()
        from engine.pipeline import available_detectors, registered_detectors

        self.setWindowTitle("Forensic Workbench")
        self.resize(1440, 900)
        self.setAcceptDrops(True)
        self.store = store or ResultStore()
        self.settings = QSettings(str(settings_path or user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)
        self.prepare_on_open = prepare
        self.pool = QThreadPool.globalInstance()
        self.entries: dict[Path, EvidenceEntry] = {}
        self.current: EvidenceEntry | None = None
        self.server: FrameServer | None = None
        self.playback = Playback(self)
        self.playback.frameShown.connect(self._frame_shown)
        self.playback.stateChanged.connect(self._play_state)
        self.colours = {d: DETECTOR_COLOURS[i % len(DETECTOR_COLOURS)] for i, d in enumerate(registered_detectors())}
        self._lut = colormap_lut("jet")
        self._overlay_cache: tuple | None = None
        self._suspicious_rank = -1
        import getpass

        self.case = Case.new("Untitled case", getpass.getuser())
        self.case_dirty = False
        self.integrity_problems: list[str] = []
        self._refresh_gen, self.refreshed = 0, True  # see _refresh_result
        self._overlay_deferred = False  # see _refresh_result
        self.queue = AnalysisQueue(self.store, self)
        self.queue.progress.connect(self._progress)
        self.queue.finished.connect(self._analysis_done)
        self.queue.failed.connect(self._analysis_failed)
        self.queue.cancelled.connect(self._analysis_cancelled)
        self.queue.busyChanged.connect(self._busy)

        available, unavailable = available_detectors()
        self._build_central()
        self._build_docks(available, unavailable)
        self._build_status()
        self._build_menus()
        self._build_shortcuts()
        self._audio = _AudioSync(self)
        self._update_title()
        self.restoreGeometry(self.settings.value("geometry", b""))
        self.restoreState(self.settings.value("state", b""))

    # ------------------------------------------------------------------ construction
    def _build_central(self) -> None:
        self.video = VideoView()
        bar = QHBoxLayout()
        st = self.style()

        def button(icon, tip, slot):
            b = QToolButton()
            b.setIcon(st.standardIcon(icon))
            b.setToolTip(tip)
            b.clicked.connect(slot)
            bar.addWidget(b)
            return b

        SP = QStyle.StandardPixmap
        button(SP.SP_MediaSkipBackward, "First frame (Home)", lambda: self.playback.seek_index(0))
        button(SP.SP_MediaSeekBackward, "Back one second (Shift+←)", lambda: self.playback.step_seconds(-1.0))
        button(SP.SP_ArrowLeft, "Previous frame (←)", lambda: self.playback.step(-1))
        self.play_button = button(SP.SP_MediaPlay, "Play / pause (Space)", self.playback.toggle)
        button(SP.SP_ArrowRight, "Next frame (→)", lambda: self.playback.step(1))
        button(SP.SP_MediaSeekForward, "Forward one second (Shift+→)", lambda: self.playback.step_seconds(1.0))
        button(SP.SP_MediaSkipForward, "Last frame (End)", self._seek_end)
        bar.addSpacing(12)
        prev_s = QPushButton("◀ Suspicious")
        prev_s.setToolTip("Previous most suspicious frame of the selected detector (P)")
        prev_s.clicked.connect(lambda: self.jump_suspicious(-1))
        next_s = QPushButton("Suspicious ▶")
        next_s.setToolTip("Next most suspicious frame of the selected detector (N)")
        next_s.clicked.connect(lambda: self.jump_suspicious(+1))
        bar.addWidget(prev_s)
        bar.addWidget(next_s)
        bar.addStretch(1)
        self.time_label = QLabel("--:--:--.---  frame – / –")
        self.time_label.setStyleSheet("font-family: monospace; font-size: 13px")
        bar.addWidget(self.time_label)
        central = QWidget()
        v = QVBoxLayout(central)
        v.setContentsMargins(4, 4, 4, 4)
        self.integrity_banner = QLabel()
        self.integrity_banner.setWordWrap(True)
        self.integrity_banner.setStyleSheet("background: #B00020; color: white; font-weight: bold; padding: 6px")
        self.integrity_banner.hide()
        v.addWidget(self.integrity_banner)
        v.addWidget(self.video, 1)
        v.addLayout(bar)
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)  # saveState/restoreState key
        d.setWidget(widget)
        self.addDockWidget(area, d)
        return d

    def _build_docks(self, available: list[str], unavailable: dict[str, str]) -> None:
        DA = Qt.DockWidgetArea
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._select_item)
        self.info = QTableWidget(0, 2)
        self.info.setHorizontalHeaderLabels(["Property", "Value"])
        self.info.horizontalHeader().setStretchLastSection(True)
        self.info.verticalHeader().hide()
        self.info.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(2, 2, 2, 2)
        lv.addWidget(self.list, 2)
        lv.addWidget(self.info, 3)
        self.evidence_dock = self._dock("Evidence", "dock_evidence", left, DA.LeftDockWidgetArea)
        self.panel = DetectorPanel(available, unavailable)
        self.panel.analyseRequested.connect(self.analyse_current)
        self.panel.overlayChanged.connect(self._refresh_overlay)
        self.panel.detectorSelected.connect(self._detector_selected)
        self.detector_dock = self._dock("Detectors", "dock_detectors", self.panel, DA.RightDockWidgetArea)
        self.camera_panel = CameraPanel()
        self.camera_panel.gradcamToggled.connect(lambda _on: self._refresh_gradcam())
        self.camera_dock = self._dock("Camera model", "dock_camera", self.camera_panel, DA.RightDockWidgetArea)
        # a tab beside the detector panel: the right column has no height to spare for both
        self.tabifyDockWidget(self.detector_dock, self.camera_dock)
        self.detector_dock.raise_()
        self.spectrogram = SpectrogramPane()
        self.faces = FaceStrip()
        self.timeline = ScoreTimeline()
        for pane in (self.spectrogram, self.timeline):
            pane.seekRequested.connect(self.playback.seek_time)
        self.spec_dock = self._dock("Spectrogram", "dock_spectrogram", self.spectrogram, DA.BottomDockWidgetArea)
        self.faces_dock = self._dock("Face crops", "dock_faces", self.faces, DA.BottomDockWidgetArea)
        self.scores_dock = self._dock("Score timeline", "dock_scores", self.timeline, DA.BottomDockWidgetArea)
        self.timeline.setXLink(self.spectrogram)  # one time axis for both panes
        self.bookmarks = BookmarksPanel()
        self.bookmarks.addRequested.connect(self.add_bookmark)
        self.bookmarks.jumpRequested.connect(lambda i: (self.playback.pause(), self.playback.seek_index(i)))
        self.bookmarks.changed.connect(self._case_changed)
        self.bookmarks_dock = self._dock("Bookmarks and notes", "dock_bookmarks", self.bookmarks,
                                         DA.LeftDockWidgetArea)
        # the two time panes stacked (aligned time axes), the face crops beside them
        self.splitDockWidget(self.spec_dock, self.faces_dock, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.spec_dock, self.scores_dock, Qt.Orientation.Vertical)
        self._default_layout_pending = True

    def _build_status(self) -> None:
        self.status_label = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMinimumWidth(420)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running analysis (Esc)")
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.cancel_button.hide()
        sb = self.statusBar()
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addAction(QAction("&New case…", self, shortcut=QKeySequence.StandardKey.New, triggered=self.new_case_dialog))
        f.addAction(QAction("Open &case…", self, shortcut="Ctrl+Shift+O", triggered=self.open_case_dialog))
        f.addAction(QAction("&Save case", self, shortcut=QKeySequence.StandardKey.Save, triggered=self.save_case))
        f.addAction(QAction("Save case &as…", self, shortcut="Ctrl+Shift+S", triggered=self.save_case_as))
        f.addSeparator()
        f.addAction(QAction("&Open evidence…", self, shortcut=QKeySequence.StandardKey.Open, triggered=self.open_dialog))
        f.addAction(QAction("Open &folder…", self, triggered=self.open_folder_dialog))
        self.recent_menu = f.addMenu("Open &recent")
        self._fill_recent()
        f.addSeparator()
        f.addAction(QAction("&Export report (PDF)…", self, shortcut="Ctrl+E", triggered=self.export_report_dialog))
        f.addAction(QAction("Export results (JSON + PNG)…", self, triggered=self.export_dialog))
        f.addSeparator()
        f.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))
        a = mb.addMenu("&Analysis")
        a.addAction(QAction("&Analyse selected evidence", self, shortcut="Ctrl+R",
                            triggered=lambda: self.analyse_current(self.panel.checked(), self.panel.device.currentText(),
                                                                   self.panel.frames.value())))
        a.addAction(QAction("&Cancel", self, shortcut="Esc", triggered=self.cancel_analysis))
        v = mb.addMenu("&View")
        for d in (self.evidence_dock, self.bookmarks_dock, self.detector_dock, self.camera_dock, self.spec_dock,
                  self.faces_dock, self.scores_dock):
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        v.addAction(QAction("&Reset layout", self, triggered=self.default_layout))
        h = mb.addMenu("&Help")
        h.addAction(QAction("&Keyboard shortcuts", self, triggered=lambda: QMessageBox.information(
            self, "Keyboard shortcuts", __doc__.split("Keys: ", 1)[1].replace(" · ", "\n"))))

    def _build_shortcuts(self) -> None:
        keys = {
            "Space": self.playback.toggle,
            "Left": lambda: self.playback.step(-1),
            "Right": lambda: self.playback.step(1),
            "Shift+Left": lambda: self.playback.step_seconds(-1.0),
            "Shift+Right": lambda: self.playback.step_seconds(1.0),
            "Home": lambda: self.playback.seek_index(0),
            "End": self._seek_end,
            "N": lambda: self.jump_suspicious(+1),
            "P": lambda: self.jump_suspicious(-1),
            "B": lambda: self.add_bookmark(self.bookmarks.status.currentData(), self.bookmarks.comment.text().strip()),
        }
        self._shortcuts = []
        for key, slot in keys.items():
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(slot)
            self._shortcuts.append(sc)

    # ------------------------------------------------------------------ evidence intake
    def open_dialog(self) -> None:
        """Ask for evidence files and add them."""
        files, _ = QFileDialog.getOpenFileNames(self, "Open evidence", self.settings.value("last_dir", ""))
        for f in files:
            self.add_evidence(Path(f))

    def open_folder_dialog(self) -> None:
        """Ask for a folder and add every media file in it (recursively)."""
        d = QFileDialog.getExistingDirectory(self, "Open evidence folder", self.settings.value("last_dir", ""))
        if d:
            for p in expand_inputs([d]):
                self.add_evidence(p)

    def dragEnterEvent(self, event) -> None:  # noqa: D102 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: D102 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        for p in expand_inputs(paths):
            self.add_evidence(p)
        event.acceptProposedAction()

    def add_evidence(self, path: Path) -> None:
        """Hash and probe ``path`` off the UI thread; the list shows its state at once."""
        path = Path(path).absolute()
        if path in self.entries:
            self.list.setCurrentItem(self.entries[path].item)
            return
        item = QListWidgetItem(f"{path.name}  (hashing…)")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        self.list.addItem(item)
        self.entries[path] = EvidenceEntry(path, item)
        self.settings.setValue("last_dir", str(path.parent))
        task = ProbeTask(path, self.store)
        task.signals.done.connect(self._probed)
        task.signals.failed.connect(self._probe_failed)
        self.pool.start(task)

    def _probed(self, opened: str, ev: Evidence, stored: tuple[ResultView | None, ResultView | None]) -> None:
        # keyed by the path as opened: through a symlink ev.path is the resolved target
        entry = self.entries.get(Path(opened).absolute())
        if entry is None:
            return
        entry.evidence = ev
        entry.item.setText(ev.name)
        entry.item.setToolTip(f"{ev.path}\nSHA-256 {ev.sha256}")
        known = [e for e in self.case.evidence if e.path == str(entry.path)]
        if known and all(e.sha256 != ev.sha256 for e in known):
            self._flag_integrity(str(entry.path), f"SHA-256 changed since intake: was {known[0].sha256}, "
                                                  f"now {ev.sha256}")
        else:
            self.case.add_evidence(ev)
            self._case_changed()
        self._remember_recent(entry.path)
        entry.result = stored[0] or self._case_result(entry.path)
        entry.prepared = stored[1]
        if entry.result is not None:
            entry.item.setText(f"{ev.name}  ✓ analysed")
        elif entry.prepared is None and self.prepare_on_open and ev.video:
            self.queue.submit(AnalysisJob(entry.path, ev.sha256, [], "cpu", kind="prepare"))
        if self.list.currentItem() is None or self.list.currentItem() is entry.item:
            self.list.setCurrentItem(entry.item)
            self._select_item(entry.item)
        self.show_message(f"{ev.name}: SHA-256 {ev.sha256}")

    def _probe_failed(self, path: str, message: str) -> None:
        entry = self.entries.get(Path(path).absolute())
        self.case.log("evidence_rejected", path=path, message=message)
        if entry is not None:
            entry.error = message
            entry.item.setText(f"⚠ {entry.path.name}  (cannot open)")
            entry.item.setForeground(QColor("#FF6B6B"))
            entry.item.setToolTip(message)
        self.show_message(message, error=True)

    def _remember_recent(self, path: Path) -> None:
        recent = [p for p in (self.settings.value("recent", []) or []) if p != str(path)]
        self.settings.setValue("recent", [str(path), *recent][:10])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.value("recent", []) or []
        if isinstance(recent, str):
            recent = [recent]
        for p in recent:
            self.recent_menu.addAction(QAction(p, self, triggered=lambda _=False, p=p: self.add_evidence(Path(p))))
        self.recent_menu.setEnabled(bool(recent))

    # ------------------------------------------------------------------ selection
    def _select_item(self, item: QListWidgetItem | None, _prev=None) -> None:
        if item is None:
            return
        entry = self.entries.get(Path(item.data(Qt.ItemDataRole.UserRole)))
        if entry is None or entry is self.current and self.server is not None:
            return
        self.current = entry
        self._open_video(entry)
        self._show_info(entry)
        self._refresh_result()
        self.bookmarks.set_context(self.case, entry.evidence.sha256 if entry.evidence else None)

    def _open_video(self, entry: EvidenceEntry) -> None:
        self.playback.set_server(None)
        if self.server is not None:
            self.server.close()
            self.server = None
        self._audio.set_source(None)
        ev = entry.evidence
        if ev is None:
            self.video.set_frame(None)
            self.video.placeholder = entry.error or f"{entry.path.name}: hashing and probing…"
            self.video.update()
            return
        if not ev.video:
            self.video.set_frame(None)
            self.video.placeholder = f"{ev.name}: no video stream (audio only)"
            self.video.update()
            return
        try:
            self.server = FrameServer(entry.path, index=ev.frame_index, rotation=ev.primary_video.rotation)
        except EvidenceError as exc:
            entry.error = str(exc)
            self.video.set_frame(None)
            self.video.placeholder = str(exc)
            self.show_message(str(exc), error=True)
            return
        self.server.failed.connect(lambda msg: self.show_message(msg, error=True))
        self.playback.set_server(self.server)
        if ev.audio:
            self._audio.set_source(entry.path)

    def _show_info(self, entry: EvidenceEntry) -> None:
        ev = entry.evidence
        rows = [("File", str(entry.path))]
        if entry.error:
            rows.append(("Problem", entry.error))
        if ev is not None:
            rows += [("SHA-256", ev.sha256), ("Size (bytes)", f"{ev.size_bytes:,}"), ("Container", ev.container),
                     ("Duration", format_time(ev.duration_s or 0)), ("Device", ev.device.summary),
                     ("Created", ev.creation_time or "—")]
            for v in ev.video:
                rows.append(("Video", f"{v.codec} {v.display_width}×{v.display_height}, {v.avg_fps or 0:.3f} fps, "
                                      f"{v.frame_count} frames, rotation {v.rotation}°"))
            for a in ev.audio:
                rows.append(("Audio", f"{a.codec} {a.sample_rate} Hz, {a.channels} ch"))
            if not ev.audio:
                rows.append(("Audio", "none"))
            rows += [("Warning", w) for w in ev.warnings]
        self.info.setRowCount(len(rows))
        for r, (k, v) in enumerate(rows):
            self.info.setItem(r, 0, QTableWidgetItem(k))
            it = QTableWidgetItem(v)
            it.setToolTip(v)
            self.info.setItem(r, 1, it)
        self.info.resizeColumnToContents(0)

    def _refresh_result(self) -> None:
        """Re-fill the panes from the current entry's result (full, else prepared).

        A result arriving during playback must never block the UI thread for long
        (issue 4: no gap over 100 ms), and the first fill of a pane costs most (plots
        are laid out when first shown). So the work is split into short steps, each in
        its own event-loop turn, with the window repainted in between: spectrogram;
        score timeline; detector table and verdict; camera panel and log-mel Grad-CAM;
        the selected detector's curves; the displayed frame's boxes and crops; its
        heatmap overlay, spectrum and reference faces. A newer refresh supersedes the
        steps of an older one; :attr:`refreshed` turns True after the last step.
        """
        self._refresh_gen += 1
        gen = self._refresh_gen
        entry = self.current
        view = entry.view if entry else None
        result = entry.result if entry else None
        duration = self.server.duration_s if self.server is not None else (
            entry.evidence.duration_s or 0.0 if entry and entry.evidence else 0.0)
        if view is None:
            note = "computing faces and spectrogram…" if entry and entry.evidence and self.prepare_on_open else ""
            self.spectrogram.set_spectrogram(None, duration, note or "no spectrogram")
        else:
            audio = view.doc.get("audio", {})
            self.spectrogram.set_spectrogram(view.spectrogram(), duration,
                                             audio.get("missing_reason") or "no audio stream")
        self._overlay_cache = None
        self._suspicious_rank = -1

        def timeline():
            series = {}
            for det in result.detector_ids if result is not None else ():
                s = result.scores(det)
                if len(s.score):
                    series[det] = (s.pts, s.score)
            self.timeline.set_series(series, self.colours, duration)

        def panel():
            self._overlay_deferred = True  # the panel's overlayChanged: drawn by the last step
            try:
                self.panel.set_result(result, self.colours)
            finally:
                self._overlay_deferred = False

        def camera():
            self.camera_panel.set_result(result)
            self._refresh_gradcam()

        def frame():
            if self.playback.current is not None:
                self._overlay_deferred = True
                try:
                    self._frame_shown(self.playback.current)
                finally:
                    self._overlay_deferred = False

        steps = (timeline, panel, camera, lambda: self._detector_selected(self.panel.selected or ""),
                 frame, self._refresh_overlay)

        def run(k: int) -> None:
            if gen != self._refresh_gen:
                return
            steps[k]()
            if k + 1 < len(steps):
                QTimer.singleShot(0, lambda: run(k + 1))
            else:
                self.refreshed = True

        self.refreshed = False
        QTimer.singleShot(0, lambda: run(0))

    def _refresh_gradcam(self) -> None:
        """Lay camera.audio's log-mel Grad-CAM over the spectrogram pane when toggled on (else remove it).

        The map's rows and columns are put on the pane's axes by
        :meth:`engine.results.LogMelMap.on_linear_grid` (mel bands -> Hz up to the pane's
        Nyquist, columns -> seconds within the pane's duration); nothing is mapped here.
        """
        res = self.current.result if self.current else None
        cam = res.logmel_gradcam() if res is not None else None
        grid = None
        if cam is not None and self.camera_panel.gradcam_on.isChecked() and self.spectrogram.has_data:
            grid = cam.on_linear_grid(f_max_hz=self.spectrogram.f_max_hz, t_max_s=self.spectrogram.duration_s)
        if grid is None:
            self.spectrogram.set_gradcam(None)
        else:
            self.spectrogram.set_gradcam(grid.image, grid.extent, cam.caption)

    def _detector_selected(self, det: str) -> None:
        res = self.current.result if self.current else None
        thr = None
        if res is not None and det in res.detector_ids:
            thr = res.scores(det).threshold
        self.timeline.set_threshold(thr)
        self._suspicious_rank = -1
        timeline, lines = {}, {}
        if res is not None and det in res.detector_ids:
            # one curve per series (named by the series when a plot has several)
            for name, p in res.plots(det, "timeline").items():
                for label, y in p["series"].items():
                    timeline[label if len(p["series"]) > 1 else name] = (p["x"], y)
            lines = res.plots(det, "line")
        self.timeline.set_overlays(timeline, self.colours.get(det, "#FFFFFF"))
        self.panel.show_plots(lines, self.colours.get(det, "#FFFFFF"))

    # ------------------------------------------------------------------ per-frame display
    def _frame_shown(self, frame) -> None:
        self.video.set_frame(frame.rgb)
        n = len(self.server) if self.server is not None else 0
        self.time_label.setText(f"{format_time(frame.pts)}  frame {frame.index} / {max(n - 1, 0)}")
        self.spectrogram.set_time(frame.pts)
        self.timeline.set_time(frame.pts)
        view = self.current.view if self.current else None
        boxes, crops = [], []
        if view is not None:
            for face in view.faces_at(frame.pts):
                colour = TRACK_COLOURS[face.track_id % len(TRACK_COLOURS)]
                boxes.append((f"track {face.track_id}", face.box, colour))
                try:
                    crop = crop_face(frame.rgb, FaceBox(*face.box), FACE_CROP_POLICY).image
                except ValueError:
                    continue
                crops.append((f"track {face.track_id} · box of frame {face.frame_index}", crop, colour.name()))
        self.video.set_boxes(boxes)
        note = "" if view is not None else "faces appear once the evidence is prepared or analysed"
        self.faces.set_faces(crops, note)
        self._refresh_overlay()

    def _refresh_overlay(self) -> None:
        if self._overlay_deferred:
            return
        frame = self.playback.current
        res = self.current.result if self.current else None
        sel = self.panel.overlay_selection
        if frame is None or res is None or sel is None:
            self.video.set_overlay(None)
            self._update_spectrum(frame, res)
            self._update_references(frame, res)
            return
        det, view_name = sel
        near = min(res.detector(det).get("frame_scores", []), key=lambda s: abs(s["pts"] - frame.pts), default=None)
        key = (id(res), det, view_name, near["frame_index"] if near else None, frame.rgb.shape[:2],
               self.panel.opacity_value)
        if self._overlay_cache is None or self._overlay_cache[0] != key:
            hm = res.heatmap_at(det, view_name, frame.pts, frame.rgb.shape[:2])
            if hm is None:
                self._overlay_cache = (key, None, "")
            else:
                rgba = heatmap_to_rgba(hm.heatmap, self._lut, self.panel.opacity_value)
                note = (f"{det} · frame {hm.frame_index} ({format_time(hm.pts)})"
                        f"{'' if hm.frame_index == frame.index else ' nearest sampled'} · score {hm.score:.2f}")
                self._overlay_cache = (key, rgba, note)
        _, rgba, note = self._overlay_cache
        self.video.set_overlay(rgba, note, (view_name, self._lut) if rgba is not None else None)
        self._update_spectrum(frame, res)
        self._update_references(frame, res)

    def _update_references(self, frame, res: ResultView | None) -> None:
        """Nearest reference faces of each class (``details["nearest_references"]``) at the scored frame
        nearest to the displayed one; redrawn only when that frame changes."""
        key, entry, det = None, None, None
        if frame is not None and res is not None:
            for d in res.detector_ids:
                refs = res.details(d).get("nearest_references") or {}
                if refs.get("frames"):
                    entry = min(refs["frames"], key=lambda f: abs(float(f["pts"]) - frame.pts))
                    key, det = (id(res), d, entry["frame_index"]), d
                    break
        if key == getattr(self, "_references_key", "unset"):
            return
        self._references_key = key
        if entry is None:
            self.panel.references.set_references("", {})
            return
        thumbs = {cls: [(res.arrays.get(f"{det}/refs/{ref_id}"), float(dist)) for ref_id, dist in entry.get(cls, [])]
                  for cls in ("real", "fake")}
        self.panel.references.set_references(
            f"{det}: nearest reference faces of each class to the face of frame {entry['frame_index']} "
            f"({format_time(float(entry['pts']))})", thumbs)

    def _update_spectrum(self, frame, res: ResultView | None) -> None:
        """Spectrum plot of the scored frame nearest to the displayed one; redrawn only when that changes."""
        key = None
        if frame is not None and res is not None:
            for det in res.spectrum_detectors:
                if res.detector(det).get("frame_scores"):
                    near = min(res.detector(det)["frame_scores"], key=lambda s: abs(s["pts"] - frame.pts))
                    key = (id(res), det, near["frame_index"])
                    break
        if key == getattr(self, "_spectrum_key", "unset"):
            return
        self._spectrum_key = key
        curves, title = {}, ""
        if key is not None:
            curves = res.spectrum_curves(key[1], frame.pts)
            title = f"{key[1]}: face spectrum vs class means"
        self.panel.show_spectrum(curves, self.colours, title)

    # ------------------------------------------------------------------ transport helpers
    def _seek_end(self) -> None:
        if self.server is not None:
            self.playback.seek_index(len(self.server) - 1)

    def _play_state(self, playing: bool) -> None:
        SP = QStyle.StandardPixmap
        self.play_button.setIcon(self.style().standardIcon(SP.SP_MediaPause if playing else SP.SP_MediaPlay))
        self._audio.sync(playing, self.playback.time_s)

    def jump_suspicious(self, direction: int) -> None:
        """Go to the next (+1) / previous (-1) frame in decreasing-score order of the selected detector."""
        res = self.current.result if self.current else None
        det = self.panel.selected
        if res is None or det not in (res.detector_ids if res else []):
            self.show_message("No scores yet: analyse the evidence first.")
            return
        ranked = res.most_suspicious(det)
        if not ranked:
            self.show_message(f"{det} scored no frame.")
            return
        self._suspicious_rank = min(max(self._suspicious_rank + direction, 0), len(ranked) - 1)
        idx, pts, score = ranked[self._suspicious_rank]
        self.playback.pause()
        self.playback.seek_index(idx)
        self.show_message(f"{det}: suspicious frame #{self._suspicious_rank + 1} of {len(ranked)}: "
                          f"frame {idx} at {format_time(pts)}, score {score:.3f}")

    # ------------------------------------------------------------------ analysis
    def analyse_current(self, detectors: list[str], device: str = "auto", frames: int = 32) -> None:
        """Queue a full analysis of the selected evidence with ``detectors`` on ``device``, ``frames`` sampled."""
        entry = self.current
        if entry is None or entry.evidence is None:
            self.show_message("Select an evidence file that opened without error first.", error=True)
            return
        if not detectors:
            self.show_message("Check at least one detector.", error=True)
            return
        self.queue.submit(AnalysisJob(entry.path, entry.evidence.sha256, list(detectors), device, frames=frames))
        entry.item.setText(f"{entry.path.name}  (queued)")

    def cancel_analysis(self) -> None:
        """Cancel the running and queued analyses."""
        if self.queue.busy:
            self.show_message("Cancelling…")
        self.queue.cancel()

    def _busy(self, busy: bool) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.panel.analyse_button.setEnabled(True)
        if not busy:
            self.progress.setValue(0)

    def _progress(self, job: AnalysisJob, stage: str, fraction: float) -> None:
        # progress lives in the bar, so an error message in the status label stays readable
        what = "Preparing" if job.kind == "prepare" else "Analysing"
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{what} {job.path.name}: {stage} {fraction * 100:.0f}%")
        self.progress.setToolTip(self.progress.format())
        entry = self.entries.get(job.path)
        if entry is not None and job.kind == "analysis":
            entry.item.setText(f"{job.path.name}  ({fraction * 100:.0f}%)")

    def _analysis_done(self, job: AnalysisJob, view: ResultView) -> None:
        entry = self.entries.get(job.path)
        if entry is None:
            return
        if job.kind == "prepare":
            entry.prepared = view
        else:
            entry.result = view
            self.case.add_run(view.doc, view.path)
            self._case_changed()
            entry.item.setText(f"{job.path.name}  ✓ analysed")
            if job.detectors and all(d.startswith("camera.") for d in job.detectors) and entry is self.current:
                self.camera_dock.raise_()  # a camera-model-only analysis: show its panel
            warn = [] if view.doc.get("evidence_unchanged", True) else ["EVIDENCE CHANGED DURING ANALYSIS"]
            self.show_message(f"{job.path.name}: analysis finished in {view.doc.get('duration_s', 0):.1f} s. "
                              + " ".join(warn), error=bool(warn))
        if entry is self.current:
            self._refresh_result()

    def _analysis_failed(self, job: AnalysisJob, message: str) -> None:
        if job.kind == "analysis":
            self.case.add_failed_run(job.path, job.sha256, job.detectors, message)
            self._case_changed()
        entry = self.entries.get(job.path)
        if entry is not None:
            entry.item.setText(f"⚠ {job.path.name}  (analysis failed)")
            entry.item.setToolTip(message)
        self.show_message(message, error=True)

    def _analysis_cancelled(self, job: AnalysisJob) -> None:
        entry = self.entries.get(job.path)
        if entry is not None:
            entry.item.setText(f"{job.path.name}" + ("  ✓ analysed" if entry.result else ""))
        self.show_message(f"{job.path.name}: {'preparation' if job.kind == 'prepare' else 'analysis'} cancelled")

    # ------------------------------------------------------------------ case
    def _update_title(self) -> None:
        c = self.case
        where = f" — {c.path}" if c.path else " (not saved)"
        self.setWindowTitle(f"Forensic Workbench — {c.name} [{c.case_id}]{'*' if self.case_dirty else ''}{where}")

    def _case_changed(self) -> None:
        self.case_dirty = True
        self._update_title()

    def add_bookmark(self, status: str = "to_check", comment: str = "") -> None:
        """Bookmark the displayed frame of the current evidence in the case."""
        frame = self.playback.current
        if frame is None or self.current is None or self.current.evidence is None:
            self.show_message("Open evidence and show a frame before bookmarking.", error=True)
            return
        b = self.case.add_bookmark(self.current.evidence.sha256, frame.pts, frame.index, status, comment)
        self.bookmarks.refresh()
        self._case_changed()
        self.show_message(f"Bookmarked frame {b.frame_index} at {format_time(b.time_s)} ({b.status_label})")

    def new_case_dialog(self) -> None:
        """Start a new case (asks name and analyst)."""
        from PySide6.QtWidgets import QInputDialog

        name, ok = QInputDialog.getText(self, "New case", "Case name:")
        if not ok:
            return
        analyst, ok = QInputDialog.getText(self, "New case", "Analyst:", text=self.case.analyst)
        if ok:
            self.set_case(Case.new(name or "Untitled case", analyst or self.case.analyst))

    def set_case(self, case: Case) -> None:
        """Replace the open case and its evidence list; flags integrity problems loudly."""
        self.playback.set_server(None)
        if self.server is not None:
            self.server.close()
            self.server = None
        self.entries.clear()
        self.list.clear()
        self.current = None
        self.case, self.case_dirty = case, False
        self.integrity_problems = []
        self.integrity_banner.hide()
        for c in case.integrity_problems:
            self._flag_integrity(c.path, c.message or c.status)
        if not case.audit_ok:
            self._flag_integrity(str(case.path), "the case's audit log was altered (hash chain broken)")
        for item in case.evidence:
            self.add_evidence(Path(item.path))
        self.bookmarks.set_context(case, None)
        self._update_title()

    def _case_result(self, path: Path) -> ResultView | None:
        """The newest result the case recorded for ``path`` (also when the file changed since)."""
        for item in reversed(self.case.evidence):
            if item.path == str(path):
                run = self.case.latest_run(item.sha256)
                if run is not None and run.result_path:
                    try:
                        return ResultView.load(run.result_path)
                    except ValueError:
                        return None
        return None

    def _flag_integrity(self, path: str, message: str) -> None:
        entry = self.entries.get(Path(path).absolute())
        if entry is not None:
            entry.item.setForeground(QColor("#FF6B6B"))
            entry.item.setText(f"⚠ {entry.path.name}  (MODIFIED since intake)")
        if any(p.startswith(f"{path}: ") for p in self.integrity_problems):
            return
        self.integrity_problems.append(f"{path}: {message}")
        self.integrity_banner.setText("EVIDENCE INTEGRITY PROBLEM — " + " | ".join(self.integrity_problems))
        self.integrity_banner.show()
        self.show_message(f"EVIDENCE INTEGRITY: {path}: {message}", error=True)

    def open_case_dialog(self) -> None:
        """Ask for a case file and open it (re-hashing its evidence off the UI thread)."""
        p, _ = QFileDialog.getOpenFileName(self, "Open case", self.settings.value("case_dir", ""), "Case (*.json)")
        if p:
            self.open_case(Path(p))

    def open_case(self, path: Path) -> None:
        """Load ``path`` on the thread pool (the evidence is re-hashed), then show it."""
        self.show_message(f"Opening case {path.name}: re-hashing its evidence…")
        task = CallTask(lambda: Case.load(path), f"{path}: cannot open case")
        task.signals.done.connect(self.set_case)
        task.signals.failed.connect(lambda msg: self.show_message(msg, error=True))
        self.settings.setValue("case_dir", str(Path(path).parent))
        task.start(self.pool)

    def save_case(self) -> bool:
        """Save the case where it was loaded or last saved (asks when it has no file yet)."""
        if self.case.path is None:
            return self.save_case_as()
        return self._write_case(self.case.path)

    def save_case_as(self) -> bool:
        p, _ = QFileDialog.getSaveFileName(self, "Save case", self.settings.value("case_dir", ""), "Case (*.json)")
        return self._write_case(Path(p)) if p else False

    def _write_case(self, path: Path) -> bool:
        if any(Path(e.path).parent == Path(path).absolute().parent for e in self.case.evidence):
            self.show_message(f"{path}: refusing to write the case next to evidence; choose another folder",
                              error=True)
            return False
        try:
            self.case.save(path)
        except OSError as exc:
            self.show_message(f"{path}: cannot save case: {exc}", error=True)
            return False
        self.case_dirty = False
        self._update_title()
        self.show_message(f"Case saved to {path}")
        return True

    # ------------------------------------------------------------------ report
    def export_report_dialog(self) -> None:
        """Choose sections and frames, then write the PDF report of every analysed evidence."""
        from engine.report import ALL_SECTIONS

        if not any(e.result for e in self.entries.values()):
            self.show_message("Nothing to report: analyse the evidence first.", error=True)
            return
        default = Path(self.settings.value("export_dir", str(Path.home()))) / f"{self.case.case_id}-report.pdf"
        dlg = ExportDialog(ALL_SECTIONS, default, bool(self.case.bookmarks), self)
        if dlg.exec() != ExportDialog.DialogCode.Accepted:
            return
        self.settings.setValue("export_dir", str(Path(dlg.path.text()).parent))
        self.export_report(Path(dlg.path.text()), dlg.sections, dlg.top_k.value(), dlg.use_bookmarks.isChecked(),
                           dlg.open_after.isChecked())

    reportWritten = Signal(object)
    reportFailed = Signal(str)

    def export_report(self, path: Path, sections=None, top_k: int = 4, bookmarked_frames: bool = False,
                      open_after: bool = False) -> None:
        """Write the PDF report; ``reportWritten(path)`` or ``reportFailed(message)`` follows.

        The case's evidence is re-hashed first on the thread pool (logged in the
        audit log; a mismatch is flagged here and printed in the report). The PDF
        itself is built by ``forensic-report`` (:func:`engine.report.main`) in a
        separate process from the saved results and a snapshot of the case, so
        report rendering (reportlab, matplotlib, frame decoding) never shares
        this process's threads and the window stays responsive.
        """
        from engine.report import ALL_SECTIONS

        path = Path(path).absolute()
        views = [e.result for e in self.entries.values() if e.result is not None and e.result.path is not None]
        if not views:
            self.reportFailed.emit("nothing to report: no analysed evidence")
            return
        case = self.case

        def hashed(checks):
            case.record_integrity(checks)
            for c in case.integrity_problems:
                self._flag_integrity(c.path, c.message or c.status)
            self._run_report_process(path, views, tuple(sections or ALL_SECTIONS), top_k, bookmarked_frames,
                                     open_after)

        task = CallTask(case.check_evidence, "re-hashing the case's evidence failed")
        task.signals.done.connect(hashed)
        task.signals.failed.connect(lambda msg: (self.show_message(msg, error=True), self.reportFailed.emit(msg)))
        self.show_message(f"Re-hashing evidence before the report {path.name}…")
        task.start(self.pool)

    def _run_report_process(self, path: Path, views, sections, top_k, bookmarked_frames, open_after) -> None:
        from PySide6.QtCore import QProcess

        from engine.io import atomic_write_json

        work = user_data_dir() / "report-jobs"
        snapshot = work / f"{self.case.case_id}.case.json"
        atomic_write_json(snapshot, self.case.to_dict())
        args = ["-m", "engine.report", *[str(v.path) for v in views], "--out", str(path), "--case", str(snapshot),
                "--sections", ",".join(sections), "--top-k", str(top_k)]
        if bookmarked_frames:
            frames: dict[str, list[int]] = {}
            for b in self.case.bookmarks:
                frames.setdefault(b.evidence_sha256, []).append(b.frame_index)
            atomic_write_json(work / f"{self.case.case_id}.frames.json", frames)
            args += ["--frames-json", str(work / f"{self.case.case_id}.frames.json")]
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.setWorkingDirectory(str(Path(__file__).resolve().parent.parent))
        self._report_proc = proc

        def finished(code, _status):
            out = bytes(proc.readAll()).decode("utf-8", "replace").strip()
            self._busy(self.queue.busy)
            if code == 0 and path.exists():
                self.case.log("report_written", path=str(path), sections=list(sections),
                              evidence=[v.sha256 for v in views])
                self._case_changed()
                self.show_message(f"Report written to {path}")
                if open_after:
                    from PySide6.QtCore import QUrl
                    from PySide6.QtGui import QDesktopServices

                    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
                self.reportWritten.emit(path)
            else:
                msg = f"{path}: report not written: {out.splitlines()[-1] if out else f'exit code {code}'}"
                self.case.log("report_failed", path=str(path), message=msg)
                self.show_message(msg, error=True)
                self.reportFailed.emit(msg)

        proc.finished.connect(finished)
        self.progress.setRange(0, 0)  # busy indicator while the report process runs
        self.progress.setFormat(f"Writing report {path.name}…")
        self.progress.show()
        self.show_message(f"Writing report {path.name}…")
        proc.start(sys.executable, args)

    # ------------------------------------------------------------------ export
    def export_dialog(self) -> None:
        """Ask for a folder and export the current evidence's results there."""
        if self.current is None or self.current.result is None:
            self.show_message("Nothing to export: analyse the evidence first.", error=True)
            return
        d = QFileDialog.getExistingDirectory(self, "Export results to folder", self.settings.value("export_dir", ""))
        if d:
            self.settings.setValue("export_dir", d)
            self.export_to(Path(d))

    def export_to(self, folder: Path) -> list[Path]:
        """Write the JSON result (+ npz arrays) and a PNG snapshot of the window into ``folder``.

        The PDF report arrives with ``engine.report``; until then this is the export.

        Returns:
            Written paths. Raises ValueError: nothing analysed; OSError: cannot write.
        """
        from engine.io import atomic_write_bytes

        entry = self.current
        if entry is None or entry.result is None or entry.result.path is None:
            raise ValueError("no analysis result to export")
        folder = Path(folder)
        if entry.path.parent.resolve() == folder.resolve():
            raise ValueError(f"{folder}: refusing to write next to the evidence; choose another folder")
        stem = f"{entry.path.stem}.{entry.result.sha256[:12]}"
        src = entry.result.path
        out = [atomic_write_bytes(folder / f"{stem}.analysis.json",
                                  src.read_bytes().replace(src.with_suffix(".npz").name.encode(),
                                                           f"{stem}.analysis.npz".encode()))]
        if src.with_suffix(".npz").exists():
            out.append(atomic_write_bytes(folder / f"{stem}.analysis.npz", src.with_suffix(".npz").read_bytes()))
        from PySide6.QtCore import QBuffer, QIODevice

        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.grab().save(buf, "PNG")
        out.append(atomic_write_bytes(folder / f"{stem}.view.png", bytes(buf.data())))
        self.show_message(f"Exported {', '.join(p.name for p in out)} to {folder}")
        return out

    # ------------------------------------------------------------------ misc
    def default_layout(self) -> None:
        """Dock sizes of a fresh install (also View ▸ Reset layout)."""
        for d in (self.evidence_dock, self.bookmarks_dock, self.detector_dock, self.camera_dock, self.spec_dock,
                  self.faces_dock, self.scores_dock):
            d.show()
            d.setFloating(False)
        if self.camera_dock not in self.tabifiedDockWidgets(self.detector_dock):
            self.tabifyDockWidget(self.detector_dock, self.camera_dock)
        self.resizeDocks([self.evidence_dock, self.detector_dock], [300, 390], Qt.Orientation.Horizontal)
        self.resizeDocks([self.spec_dock, self.faces_dock], [900, 250], Qt.Orientation.Horizontal)
        self.resizeDocks([self.spec_dock, self.scores_dock], [190, 200], Qt.Orientation.Vertical)

    def showEvent(self, event) -> None:  # noqa: D102 - Qt API
        super().showEvent(event)
        if self._default_layout_pending:
            self._default_layout_pending = False
            if not self.settings.value("state"):
                QTimer.singleShot(0, self.default_layout)
            QTimer.singleShot(0, self.panel.warm_up_plots)  # see DetectorPanel.warm_up_plots

    def show_message(self, text: str, error: bool = False) -> None:
        """Non-modal message in the status bar (errors in red; the app stays usable)."""
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #FF6B6B" if error else "")
        self.status_label.setToolTip(text)

    def closeEvent(self, event) -> None:  # noqa: D102 - Qt API
        if self.case_dirty and self.case.path is not None:
            self._write_case(self.case.path)  # never lose case work that has a file
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.sync()
        self.playback.set_server(None)
        if self.server is not None:
            self.server.close()
        if self.queue.busy:
            self.statusBar().showMessage("Stopping the running analysis…")
            QApplication.processEvents()
        self.queue.shutdown()  # waits for the worker: a running QThread must not be destroyed
        super().closeEvent(event)


class _AudioSync:
    """Plays the evidence audio with QtMultimedia in sync with the frame clock, when a device exists."""

    def __init__(self, win: MainWindow):
        self.win = win
        self.player = None
        self.reason = ""
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

            if not QMediaDevices.audioOutputs():
                self.reason = "no audio output device: playback is silent"
            else:
                self.player = QMediaPlayer(win)
                self.output = QAudioOutput(win)
                self.player.setAudioOutput(self.output)
                self.player.setVideoOutput(None)
        except ImportError as exc:  # QtMultimedia libraries missing (e.g. no libpulse)
            self.reason = f"audio playback unavailable ({exc}): playback is silent"
        self._timer = QTimer(win)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._resync)

    def set_source(self, path: Path | None) -> None:
        if self.player is None:
            return
        from PySide6.QtCore import QUrl

        self.player.stop()
        self.player.setSource(QUrl.fromLocalFile(str(path)) if path else QUrl())

    def sync(self, playing: bool, t: float) -> None:
        if self.player is None:
            if playing and self.reason:
                self.win.show_message(self.reason)
            return
        if playing:
            self.player.setPosition(int(t * 1000))
            self.player.play()
            self._timer.start()
        else:
            self.player.pause()
            self._timer.stop()

    def _resync(self) -> None:
        if self.player is not None and abs(self.player.position() / 1000 - self.win.playback.time_s) > 0.15:
            self.player.setPosition(int(self.win.playback.time_s * 1000))


def _pop_quit_after(argv: list[str]) -> tuple[list[str], int | None]:
    """Remove ``--quit-after MS`` / ``--quit-after=MS`` from ``argv``; return (rest, MS or None)."""
    rest: list[str] = []
    ms: int | None = None
    it = iter(argv)
    for a in it:
        if a == "--quit-after":
            ms = int(next(it, "0"))
        elif a.startswith("--quit-after="):
            ms = int(a.split("=", 1)[1])
        else:
            rest.append(a)
    return rest, ms


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forensic-gui`` console script: ``forensic-gui [FILE_OR_FOLDER ...]``.

    ``--quit-after MS`` (smoke tests, e.g. of the frozen app with ``QT_QPA_PLATFORM=offscreen``):
    close the main window (as the user would) MS milliseconds after it is shown, printing one status line.
    """
    argv, quit_after_ms = _pop_quit_after(list(sys.argv if argv is None else argv))
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Forensic Workbench")
    win = MainWindow()
    for p in expand_inputs(argv[1:]):
        win.add_evidence(p)
    win.show()
    if quit_after_ms is not None:
        def _quit() -> None:
            print(f"forensic-gui: window shown={win.isVisible()} title={win.windowTitle()!r} "
                  f"platform={QApplication.platformName()}; quitting after {quit_after_ms} ms", flush=True)
            win.close()  # the normal exit path: closeEvent saves settings and shuts the analysis queue down

        QTimer.singleShot(max(0, quit_after_ms), _quit)
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
