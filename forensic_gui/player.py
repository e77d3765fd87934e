"""Frame-accurate playback: a decode thread with a bounded frame cache, and a playback clock.

``QMediaPlayer`` cannot step single frames or report which frame is on screen, so
video goes through :class:`engine.media.VideoReader` (PTS index, exact seeks). A
:class:`FrameServer` owns one reader on its own thread: the UI asks for a frame
index, the thread decodes it (continuing sequentially when it can, seeking
otherwise) and then decodes ahead into a bounded LRU cache while playback runs.
Only the newest request matters: when the analyst scrubs, stale requests are
dropped instead of queued.

:class:`Playback` is the UI-thread clock: a ``QTimer`` maps elapsed wall time to
the frame whose PTS is on screen (frames are dropped, never slowed down, when
decoding is late) and keeps optional audio (QtMultimedia) in sync.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.media import EvidenceError, Frame, VideoReader

__all__ = ["FrameServer", "Playback", "format_time"]


def format_time(t: float) -> str:
    """Seconds -> ``HH:MM:SS.mmm``."""
    ms = int(round(max(t, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


class FrameServer(QObject):
    """Decodes frames of one video on a worker thread into a bounded cache.

    Signals:
        frameReady(object): a :class:`engine.media.Frame` that was requested.
        failed(str): decoding failed; the message names the file and the problem.

    Args:
        path: evidence file. index/rotation: from ``Evidence`` (avoids re-indexing).
        cache_bytes: upper bound of the frame cache in bytes (default 384 MiB).
        ahead: frames decoded past the requested one while playing.
    """

    frameReady = Signal(object)
    failed = Signal(str)

    def __init__(self, path: Path, index=None, rotation: int | None = None,
                 cache_bytes: int = 384 << 20, ahead: int = 12, parent: QObject | None = None):
        super().__init__(parent)
        self.path = Path(path)
        self._reader = VideoReader(self.path, index=index, rotation=rotation)
        self.pts = self._reader.pts_seconds
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._cache_bytes, self._bytes = cache_bytes, 0
        self.ahead = ahead
        self.playing = False
        self._want: int | None = None
        self._anchor = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name=f"decode:{self.path.name}", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def duration_s(self) -> float:
        """Time of the last frame in seconds (0 for a single frame)."""
        return float(self.pts[-1]) if len(self.pts) else 0.0

    def index_at(self, t: float) -> int:
        """Index of the frame on screen at ``t`` seconds (clamped to the video)."""
        i = bisect.bisect_right(self.pts, t + 1e-9) - 1
        return int(min(max(i, 0), len(self.pts) - 1))

    def cached(self, i: int) -> Frame | None:
        """Frame ``i`` if already decoded (no decoding on the calling thread)."""
        with self._cond:
            f = self._cache.get(i)
            if f is not None:
                self._cache.move_to_end(i)
            return f

    def request(self, i: int) -> Frame | None:
        """Ask for frame ``i``; returns it at once if cached, else ``frameReady`` follows.

        ``i`` also becomes the anchor of decode-ahead while :attr:`playing`.
        """
        f = self.cached(i)
        with self._cond:
            self._want = None if f is not None else i
            self._anchor = i
            self._cond.notify()
        return f

    def close(self) -> None:
        """Stop the thread and close the reader (waits at most one frame decode)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5)
        self._reader.close()

    # ------------------------------------------------------------------ worker thread
    def _put(self, f: Frame) -> None:
        with self._cond:
            if f.index in self._cache:
                return
            self._cache[f.index] = f
            self._bytes += f.rgb.nbytes
            while self._bytes > self._cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._bytes -= old.rgb.nbytes

    def _next_missing(self) -> int | None:
        """With the lock held: first frame after the anchor, within ``ahead``, not yet decoded."""
        if not self.playing:
            return None
        for k in range(self._anchor + 1, min(self._anchor + 1 + self.ahead, len(self.pts))):
            if k not in self._cache:
                return k
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                nxt = None
                while not self._stop and self._want is None and (nxt := self._next_missing()) is None:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                if self._want is not None:
                    target, emit, self._want = self._want, True, None
                else:
                    target, emit = nxt, False
            try:
                f = self._reader.frame(target)
            except (EvidenceError, IndexError) as exc:
                self.playing = False
                self.failed.emit(str(exc))
                continue
            self._put(f)
            if emit:
                self.frameReady.emit(f)


class Playback(QObject):
    """UI-thread playback clock over a :class:`FrameServer`.

    Signals:
        frameShown(object): the :class:`Frame` to display now.
        stateChanged(bool): playing or paused.

    The position is a frame index. While playing, a timer maps wall-clock time
    since ``play()`` to the frame whose PTS is due; a late frame is skipped, not
    waited for. ``shown_count`` counts displayed frames (for the fps benchmark).
    """

    frameShown = Signal(object)
    stateChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.server: FrameServer | None = None
        self.position = 0
        self.current: Frame | None = None
        self.shown_count = 0
        self._timer = QTimer(self)
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)
        self._t0 = 0.0
        self._pts0 = 0.0
        self._pending: int | None = None

    # ------------------------------------------------------------------ source
    def set_server(self, server: FrameServer | None) -> None:
        """Show another video (or none); stops playback and shows its first frame."""
        self.pause()
        if self.server is not None:
            self.server.frameReady.disconnect(self._ready)
        self.server, self.current, self.position = server, None, 0
        if server is not None:
            server.frameReady.connect(self._ready)
            self.seek_index(0)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def time_s(self) -> float:
        """PTS of the position in seconds."""
        return float(self.server.pts[self.position]) if self.server is not None else 0.0

    # ------------------------------------------------------------------ transport
    def play(self) -> None:
        """Start from the current position (restart at the beginning if at the end)."""
        if self.server is None or self.playing:
            return
        if self.position >= len(self.server) - 1:
            self.seek_index(0)
        self._t0, self._pts0 = time.perf_counter(), self.time_s
        self.server.playing = True
        self._timer.start()
        self.stateChanged.emit(True)

    def pause(self) -> None:
        if self.server is not None:
            self.server.playing = False
        if self._timer.isActive():
            self._timer.stop()
            self.stateChanged.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def seek_index(self, i: int) -> None:
        """Show frame ``i`` (clamped); while playing, playback continues from there."""
        if self.server is None:
            return
        i = int(min(max(i, 0), len(self.server) - 1))
        self.position = i
        if self.playing:
            self._t0, self._pts0 = time.perf_counter(), float(self.server.pts[i])
        f = self.server.request(i)
        if f is not None:
            self._show(f)
        else:
            self._pending = i

    def seek_time(self, t: float) -> None:
        """Show the frame on screen at ``t`` seconds."""
        if self.server is not None:
            self.seek_index(self.server.index_at(t))

    def step(self, n: int) -> None:
        """Pause and move ``n`` frames (negative: back)."""
        self.pause()
        self.seek_index(self.position + n)

    def step_seconds(self, s: float) -> None:
        """Pause and move by ``s`` seconds."""
        self.pause()
        self.seek_time(self.time_s + s)

    # ------------------------------------------------------------------ internals
    def _tick(self) -> None:
        srv = self.server
        if srv is None:
            return
        due = srv.index_at(self._pts0 + time.perf_counter() - self._t0)
        if due >= len(srv) - 1 and (self.current is not None and self.current.index >= len(srv) - 1):
            self.pause()
            return
        if due == self.position and self.current is not None and self.current.index == due:
            return
        self.position = due
        f = srv.request(due)
        if f is not None:
            self._show(f)
        else:
            self._pending = due

    def _ready(self, f: Frame) -> None:
        if f.index == self.position or (self._pending is not None and f.index == self._pending and not self.playing):
            self._pending = None
            self._show(f)

    def _show(self, f: Frame) -> None:
        self.current = f
        self.shown_count += 1
        self.frameShown.emit(f)


def frame_to_qimage(rgb: np.ndarray):
    """``uint8 (H, W, 3)`` RGB -> ``QImage`` (copy, so the array can be freed)."""
    from PySide6.QtGui import QImage

    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
