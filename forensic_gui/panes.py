"""Synced panes under the video: spectrogram, face-crop strip and per-detector score timeline.

Each time pane draws a vertical playhead at the displayed frame's PTS and emits
``seekRequested(seconds)`` when the analyst clicks it or drags its playhead.
Data comes from :class:`engine.results.ResultView`; face crops are cut by
:func:`engine.faces.crop_face` (the detectors' own crop policy), never here.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from .player import frame_to_qimage

__all__ = ["TimePane", "SpectrogramPane", "ScoreTimeline", "FaceStrip", "DETECTOR_COLOURS"]

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

#: Colours of detectors in the timeline, boxes and legends (colour-blind-safe Okabe–Ito).
DETECTOR_COLOURS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999",
                    "#FF6F61", "#A6D854", "#B39DDB", "#80CBC4"]


class TimePane(pg.PlotWidget):
    """A plot whose x axis is evidence time in seconds, with a draggable playhead.

    Signals:
        seekRequested(float): seconds the analyst clicked or dragged the playhead to.
    """

    seekRequested = Signal(float)

    def __init__(self, y_label: str, parent: QWidget | None = None):
        super().__init__(parent=parent, background="#202020")
        self.setMinimumHeight(125)
        self.plotItem.setLabel("bottom", "time", units="s")
        self.plotItem.setLabel("left", y_label)
        self.plotItem.setMouseEnabled(x=True, y=False)
        self.plotItem.hideButtons()
        self.playhead = pg.InfiniteLine(pos=0.0, angle=90, movable=True, pen=pg.mkPen("#FFFFFF", width=2),
                                        hoverPen=pg.mkPen("#FFD700", width=3))
        self.playhead.setZValue(100)
        self.playhead.sigDragged.connect(lambda line: self.seekRequested.emit(float(line.value())))
        self.addItem(self.playhead, ignoreBounds=True)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.duration_s = 0.0

    def set_duration(self, duration_s: float) -> None:
        """Show ``[0, duration_s]`` on the x axis."""
        self.duration_s = max(float(duration_s), 1e-3)
        self.plotItem.setLimits(xMin=0.0, xMax=self.duration_s)
        self.plotItem.setXRange(0.0, self.duration_s, padding=0)

    def set_time(self, t: float) -> None:
        """Move the playhead to ``t`` seconds (does not emit ``seekRequested``)."""
        self.playhead.blockSignals(True)
        self.playhead.setValue(float(t))
        self.playhead.blockSignals(False)

    def time_at_widget_x(self, x: float) -> float:
        """Evidence time (s) under widget x coordinate ``x``."""
        scene = self.mapToScene(int(round(x)), self.height() // 2)
        return float(self.plotItem.vb.mapSceneToView(scene).x())

    def widget_x_of_time(self, t: float) -> int:
        """Widget x coordinate (pixels) where time ``t`` is drawn."""
        scene = self.plotItem.vb.mapViewToScene(pg.Point(t, 0.0))
        return int(round(self.mapFromScene(scene).x()))

    def _clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        pos = ev.scenePos()
        if self.plotItem.vb.sceneBoundingRect().contains(pos):
            t = float(self.plotItem.vb.mapSceneToView(pos).x())
            self.seekRequested.emit(min(max(t, 0.0), self.duration_s))


class SpectrogramPane(TimePane):
    """dB spectrogram of the evidence audio (``ResultView.spectrogram``) with the playhead.

    An explanation map over the audio (camera.audio's log-mel Grad-CAM, already mapped onto
    linear Hz by :meth:`engine.results.LogMelMap.on_linear_grid`) can be laid over it with
    :meth:`set_gradcam`: jet colours whose opacity grows with the map value, and a caption
    naming the map in the top-left corner.
    """

    #: Opacity of the Grad-CAM overlay where the map is 1 (it fades to transparent at 0).
    GRADCAM_OPACITY = 0.75

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Hz", parent)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("magma"))
        self.addItem(self.image)
        self.gradcam_item = pg.ImageItem()
        self.gradcam_item.setZValue(10)  # above the spectrogram, below the playhead
        self.gradcam_item.hide()
        self.addItem(self.gradcam_item)
        self.gradcam_caption = pg.LabelItem("", justify="left")
        self.gradcam_caption.setParentItem(self.plotItem.vb)
        self.gradcam_caption.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(4, 2))
        self.gradcam_caption.setZValue(20)
        self.gradcam_caption.hide()
        self.message = pg.TextItem("", color="#DDDDDD", anchor=(0.5, 0.5))
        self.addItem(self.message, ignoreBounds=True)
        self.has_data = False
        self.f_max_hz = 0.0  # top of the frequency axis (Nyquist of the display spectrogram)
        self._lut = None

    def set_spectrogram(self, spec: tuple[np.ndarray, np.ndarray, np.ndarray] | None, duration_s: float,
                        note: str = "") -> None:
        """``(db (F, T), times_s (T,), freqs_hz (F,))`` or None with a note (e.g. "no audio stream").

        Any Grad-CAM overlay is removed (it belongs to the previous spectrogram).
        """
        self.set_duration(duration_s)
        self.set_gradcam(None)
        if spec is None:
            self.image.clear()
            self.has_data = False
            self.f_max_hz = 0.0
            self.message.setText(note or "no spectrogram")
            self.message.setPos(self.duration_s / 2, 0.5)
            self.plotItem.setYRange(0, 1)
            return
        db, times, freqs = spec
        self.message.setText("")
        hop = float(times[1] - times[0]) if len(times) > 1 else 0.01
        self.image.setImage(db, levels=(float(np.nanmin(db)), float(np.nanmax(db))))
        self.image.setRect(QRectF(float(times[0]) - hop / 2, 0.0, hop * db.shape[1], float(freqs[-1])))
        self.f_max_hz = float(freqs[-1])
        self.plotItem.setYRange(0, self.f_max_hz, padding=0)
        self.has_data = True

    def set_gradcam(self, image: np.ndarray | None, extent: tuple[float, float, float, float] | None = None,
                    caption: str = "") -> None:
        """Overlay a map on the spectrogram, or remove it (``image`` None).

        Args:
            image: ``float (R, C)`` in [0, 1] on a regular grid, row 0 the lowest frequency
                (:attr:`engine.results.LinearGrid.image`).
            extent: ``(t0_s, t1_s, f0_hz, f1_hz)`` the grid covers (:attr:`LinearGrid.extent`).
            caption: legend text, e.g. ``"Grad-CAM (camera.audio, predicted class X)"``.
        """
        if image is None or extent is None:
            self.gradcam_item.clear()
            self.gradcam_item.hide()
            self.gradcam_caption.setText("")
            self.gradcam_caption.hide()
            return
        if self._lut is None:
            from .video_view import colormap_lut

            self._lut = colormap_lut("jet")
        v = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float32)), 0.0, 1.0)
        rgba = np.empty(v.shape + (4,), np.uint8)
        rgba[..., :3] = self._lut[(v * 255).astype(np.uint8)]
        rgba[..., 3] = (v * 255 * self.GRADCAM_OPACITY).astype(np.uint8)
        t0, t1, f0, f1 = (float(x) for x in extent)
        self.gradcam_item.setImage(rgba, levels=None, autoLevels=False)
        self.gradcam_item.setRect(QRectF(t0, f0, t1 - t0, f1 - f0))
        self.gradcam_item.show()
        self.gradcam_caption.setText(
            f"<span style='background-color:rgba(0,0,0,170); color:#EEEEEE'>&nbsp;{html.escape(caption)} · "
            f"blue low → red high, transparent ≈ 0 · {f0:.0f}–{f1:.0f} Hz&nbsp;</span>", size="8pt")
        self.gradcam_caption.show()

    @property
    def gradcam_shown(self) -> bool:
        """True while a Grad-CAM overlay is drawn."""
        return self.gradcam_item.isVisible() and self.gradcam_item.image is not None

    def gradcam_rect(self) -> QRectF | None:
        """Where the overlay lies in plot coordinates (x = s, y = Hz), or None when hidden."""
        if not self.gradcam_shown:
            return None
        return self.gradcam_item.mapRectToParent(self.gradcam_item.boundingRect())


class ScoreTimeline(TimePane):
    """Per-detector frame scores over time, the selected detector's threshold, and the playhead."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("score", parent)
        self.plotItem.setYRange(0.0, 1.0, padding=0.02)
        self.legend = self.plotItem.addLegend(offset=(-8, 2), labelTextColor="#DDDDDD", colCount=4,
                                              brush=pg.mkBrush(0, 0, 0, 160))
        self.threshold = pg.InfiniteLine(angle=0, movable=False,
                                         pen=pg.mkPen("#FF5555", width=1, style=Qt.PenStyle.DashLine))
        self.threshold.hide()
        self.addItem(self.threshold, ignoreBounds=True)
        self.threshold_label = pg.TextItem("", color="#FF8888", anchor=(0.0, 1.0))
        self.addItem(self.threshold_label, ignoreBounds=True)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.overlays: dict[str, pg.PlotDataItem] = {}
        self.message = pg.TextItem("not analysed yet", color="#DDDDDD", anchor=(0.5, 0.5))
        self.addItem(self.message, ignoreBounds=True)

    def set_series(self, series: dict[str, tuple[np.ndarray, np.ndarray]], colours: dict[str, str],
                   duration_s: float) -> None:
        """``{detector_id: (pts_s (N,), score (N,))}``; empty shows "not analysed yet"."""
        self.set_duration(duration_s)
        for c in self.curves.values():
            self.removeItem(c)
        self.legend.clear()
        self.curves = {}
        for det, (t, s) in series.items():
            col = colours.get(det, "#FFFFFF")
            item = self.plot(t, s, pen=pg.mkPen(col, width=2), symbol="o", symbolSize=6, symbolBrush=col,
                             symbolPen=None, name=det)
            self.curves[det] = item
        self.message.setText("" if series else "not analysed yet")
        self.message.setPos(self.duration_s / 2, 0.5)

    def set_overlays(self, curves: dict[str, tuple[np.ndarray, np.ndarray]], colour: str) -> None:
        """Explanation curves of the selected detector over time (``kind="timeline"`` plots).

        Args:
            curves: legend name -> ``(pts_s (N,), values (N,))``; values outside [0, 1] are
                scaled by their maximum and the name says "(scaled)".
            colour: the detector's colour (drawn dashed, thinner than the score curves).
        """
        for c in self.overlays.values():
            self.removeItem(c)
            self.legend.removeItem(c)
        self.overlays = {}
        styles = [Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine]
        for k, (name, (t, y)) in enumerate(curves.items()):
            y = np.asarray(y, dtype=np.float64)
            if y.size and (np.nanmax(y) > 1.0 or np.nanmin(y) < 0.0):
                top = np.nanmax(np.abs(y)) or 1.0
                y, name = np.abs(y) / top, f"{name} (scaled)"
            item = self.plot(np.asarray(t, dtype=np.float64), y, name=name,
                             pen=pg.mkPen(colour, width=1.5, style=styles[k % len(styles)]))
            self.overlays[name] = item

    def set_threshold(self, value: float | None) -> None:
        """Draw the decision threshold of the selected detector (None hides it)."""
        if value is None:
            self.threshold.hide()
            self.threshold_label.setText("")
        else:
            self.threshold.setValue(float(value))
            self.threshold.show()
            self.threshold_label.setText(f"threshold {value:.2f}")
            self.threshold_label.setPos(0.0, float(value))


class FaceStrip(QWidget):
    """The face crops of the current frame, one per face track, captioned with their source."""

    thumb_px = 112

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(self.thumb_px + 36)
        self.row = QHBoxLayout()
        self.row.setContentsMargins(4, 4, 4, 4)
        self.row.setAlignment(Qt.AlignmentFlag.AlignLeft)
        inner = QWidget()
        inner.setLayout(self.row)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)
        self.empty = QLabel("no face tracks yet")
        self.empty.setStyleSheet("color: #AAAAAA")
        self.row.addWidget(self.empty)
        self.thumbs: list[QWidget] = []  # the visible thumbnails
        self._pool: list[tuple[QWidget, QLabel, QLabel]] = []

    def set_faces(self, crops: list[tuple[str, np.ndarray, str]], note: str = "") -> None:
        """``[(caption, crop uint8 (h, w, 3) RGB, colour), ...]``; empty shows ``note``.

        Thumbnail widgets are reused (this runs for every displayed frame during playback).
        """
        self.empty.setVisible(not crops)
        self.empty.setText(note or "no face in the current frame")
        while len(self._pool) < len(crops):
            w = QWidget()
            v = QVBoxLayout(w)
            v.setContentsMargins(2, 2, 2, 2)
            img, cap = QLabel(), QLabel()
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            v.addWidget(img)
            v.addWidget(cap)
            self.row.addWidget(w)
            self._pool.append((w, img, cap))
        for k, (w, img, cap) in enumerate(self._pool):
            if k >= len(crops):
                w.hide()
                continue
            caption, rgb, colour = crops[k]
            pix = QPixmap.fromImage(frame_to_qimage(rgb)).scaled(
                self.thumb_px, self.thumb_px, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
            img.setPixmap(pix)
            img.setFixedSize(pix.width() + 4, pix.height() + 4)
            style = f"border: 2px solid {QColor(colour).name()}"
            if img.styleSheet() != style:  # re-styling is costly; the colour rarely changes
                img.setStyleSheet(style)
            cap.setText(caption)
            w.show()
        self.thumbs = [w for w, _, _ in self._pool[: len(crops)]]
