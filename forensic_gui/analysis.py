"""Analysis off the UI thread, and the per-evidence result store.

:class:`AnalysisWorker` is a ``QObject`` moved to a ``QThread``; it runs
:func:`engine.pipeline.analyze` and reports through signals. Cancel sets a
``threading.Event`` that ``analyze`` polls between frames, batches and model
layers, so a running job stops within about a second. :class:`AnalysisQueue`
(UI thread) feeds it one job at a time.

:class:`ResultStore` keeps every finished analysis as ``<sha256>.json`` + ``.npz``
in the user data folder (``platformdirs``; ``FORENSIC_WORKBENCH_DATA``
overrides it), so reopening evidence that was analysed before is instant. A
"prepare" job (faces and spectrogram, no detectors) is stored separately so
that the panes fill as soon as a file is opened.
"""

from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.media import EvidenceError
from engine.results import ResultFormatError, ResultView

__all__ = ["AnalysisJob", "AnalysisWorker", "AnalysisQueue", "ResultStore", "user_data_dir"]


def user_data_dir() -> Path:
    """The app's data folder: ``$FORENSIC_WORKBENCH_DATA`` or platformdirs' user data dir."""
    env = os.environ.get("FORENSIC_WORKBENCH_DATA")
    if env:
        return Path(env)
    from platformdirs import user_data_dir as pd_user_data_dir

    return Path(pd_user_data_dir("forensic-workbench", appauthor=False))


class ResultStore:
    """Analysis results keyed by evidence SHA-256 (``<sha>.json``; ``<sha>.prepare.json``)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else user_data_dir() / "results"

    def path(self, sha256: str, kind: str = "analysis") -> Path:
        """Where a result of ``kind`` (``"analysis"`` or ``"prepare"``) for this hash is stored."""
        return self.root / (f"{sha256}.json" if kind == "analysis" else f"{sha256}.{kind}.json")

    def load(self, sha256: str, kind: str = "analysis") -> ResultView | None:
        """The stored result or None; a damaged file is ignored (and reported by the caller)."""
        p = self.path(sha256, kind)
        if not p.exists():
            return None
        try:
            view = ResultView.load(p)
        except ResultFormatError:
            return None
        return view if view.sha256 == sha256 else None


@dataclass
class AnalysisJob:
    """One unit of work for the worker.

    Attributes:
        path: evidence file. sha256: its intake hash (the store key).
        detectors: detector ids (empty for a "prepare" job).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. kind: ``"analysis"`` or ``"prepare"``.
        frames: frames sampled uniformly over the duration (``engine.media.Uniform``).
    """

    path: Path
    sha256: str
    detectors: list[str] = field(default_factory=list)
    device: str = "auto"
    kind: str = "analysis"
    frames: int = 32


class AnalysisWorker(QObject):
    """Runs :class:`AnalysisJob` s on the thread it was moved to.

    Signals:
        progress(object job, str stage, float fraction): overall progress in [0, 1].
        finished(object job, object view): the stored :class:`ResultView`.
        failed(object job, str message): message names the file and the problem.
        cancelled(object job).
    """

    progress = Signal(object, str, float)
    finished = Signal(object, object)
    failed = Signal(object, str)
    cancelled = Signal(object)

    def __init__(self, store: ResultStore):
        super().__init__()
        self.store = store
        self.cancel_event = threading.Event()

    @Slot(object)
    def run(self, job: AnalysisJob) -> None:
        """Analyse ``job.path`` and store the result; always ends with exactly one signal."""
        from engine.media import Uniform
        from engine.pipeline import AnalysisCancelled, ClipConfig, analyze

        self.cancel_event.clear()
        features = ("display_spectrogram",) if job.kind == "prepare" else (
            "log_mel_3res", "azimuthal_spectra", "display_spectrogram")
        try:
            result = analyze(job.path, job.detectors, device=job.device, compute_features=features,
                             config=ClipConfig(sampling=Uniform(job.frames)),
                             progress=lambda stage, f: self.progress.emit(job, stage, float(f)),
                             cancel=self.cancel_event.is_set)
            if result.evidence.get("sha256") != job.sha256:
                raise EvidenceError(job.path, "the file changed since it was opened (SHA-256 differs)")
            out = self.store.path(job.sha256, job.kind)
            out.parent.mkdir(parents=True, exist_ok=True)
            result.save(out)
            self.finished.emit(job, ResultView.load(out))
        except AnalysisCancelled:
            self.cancelled.emit(job)
        except EvidenceError as exc:
            self.failed.emit(job, str(exc))
        except Exception as exc:  # the GUI must survive any engine failure; the message says what broke
            traceback.print_exc()
            self.failed.emit(job, f"{job.path}: analysis failed: {type(exc).__name__}: {exc}")


_TORCH_THREADS_SET = False


def limit_torch_threads() -> None:
    """Leave one core to the UI thread: torch intra-op threads = cores - 1 (at least 1).

    Called once, on the UI thread, before any worker runs: changing torch's thread
    count from a worker thread while another thread is inside a parallel region
    can deadlock the OpenMP pool (seen as a hang in MTCNN's interpolate).
    """
    global _TORCH_THREADS_SET
    if not _TORCH_THREADS_SET:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        _TORCH_THREADS_SET = True


class AnalysisQueue(QObject):
    """UI-thread front of one :class:`AnalysisWorker` on its own ``QThread``.

    Signals (re-emitted from the worker on the UI thread): same as the worker's,
    plus ``busyChanged(bool)``.
    """

    progress = Signal(object, str, float)
    finished = Signal(object, object)
    failed = Signal(object, str)
    cancelled = Signal(object)
    busyChanged = Signal(bool)
    _start = Signal(object)

    def __init__(self, store: ResultStore, parent: QObject | None = None):
        super().__init__(parent)
        limit_torch_threads()
        self.store = store
        self.thread = QThread()
        self.thread.setObjectName("analysis")
        self.worker = AnalysisWorker(store)
        self.worker.moveToThread(self.thread)
        self._start.connect(self.worker.run)
        self.worker.progress.connect(self.progress)
        self.worker.finished.connect(self._done_ok)
        self.worker.failed.connect(self._done_failed)
        self.worker.cancelled.connect(self._done_cancelled)
        self.thread.start()
        self.pending: list[AnalysisJob] = []
        self.current: AnalysisJob | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None

    def submit(self, job: AnalysisJob) -> None:
        """Queue a job (a queued job for the same file and kind is replaced)."""
        self.pending = [j for j in self.pending if not (j.path == job.path and j.kind == job.kind)]
        self.pending.append(job)
        self._next()

    def cancel(self, path: Path | None = None) -> None:
        """Cancel the running job (and queued ones for ``path``, or all queued when None)."""
        self.pending = [j for j in self.pending if path is not None and j.path != path]
        if self.current is not None and (path is None or self.current.path == path):
            self.worker.cancel_event.set()

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel everything and stop the thread; by default wait until it has stopped.

        A running ``QThread`` must never be destroyed (Qt aborts the whole process:
        "QThread: Destroyed while thread is still running"), so closing the window
        waits for the job to notice the cancel. That is within about a second inside
        the detectors (checked layer by layer) and up to several seconds inside a step
        that cannot be interrupted, such as decoding a long audio track.

        Args:
            timeout_ms: give up waiting after this many milliseconds (``None``: no limit).

        Returns:
            True when the thread has stopped.
        """
        self.cancel()
        self.thread.quit()
        return bool(self.thread.wait() if timeout_ms is None else self.thread.wait(int(timeout_ms)))

    def _next(self) -> None:
        if self.current is not None or not self.pending:
            return
        self.current = self.pending.pop(0)
        self.busyChanged.emit(True)
        self._start.emit(self.current)

    def _finish(self) -> None:
        self.current = None
        if not self.pending:
            self.busyChanged.emit(False)
        self._next()

    def _done_ok(self, job, view) -> None:
        self._finish()
        self.finished.emit(job, view)

    def _done_failed(self, job, message) -> None:
        self._finish()
        self.failed.emit(job, message)

    def _done_cancelled(self, job) -> None:
        self._finish()
        self.cancelled.emit(job)
