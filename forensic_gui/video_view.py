"""The central video view: the displayed frame, face boxes and a heatmap overlay with its legend.

Holds no geometry of its own: face boxes come from
:meth:`engine.results.ResultView.faces_at` and heatmaps, already placed on the
frame, from :meth:`engine.results.ResultView.heatmap_at`. This widget only
colours the map (matplotlib colormap), scales everything to the widget with
the frame's aspect ratio and paints it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from .player import frame_to_qimage

__all__ = ["VideoView", "colormap_lut", "heatmap_to_rgba"]


def colormap_lut(name: str = "jet") -> np.ndarray:
    """``uint8 (256, 3)`` RGB lookup table of a matplotlib colormap."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def heatmap_to_rgba(heatmap: np.ndarray, lut: np.ndarray, opacity: float) -> np.ndarray:
    """``float (H, W)`` in [0, 1] with NaN -> ``uint8 (H, W, 4)`` RGBA (NaN fully transparent)."""
    hm = np.asarray(heatmap, dtype=np.float32)
    valid = np.isfinite(hm)
    idx = (np.clip(np.nan_to_num(hm, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    rgba = np.empty(hm.shape + (4,), np.uint8)
    rgba[..., :3] = lut[idx]
    rgba[..., 3] = np.where(valid, int(round(255 * min(max(opacity, 0.0), 1.0))), 0)
    return rgba


class VideoView(QWidget):
    """Paints the current frame with face boxes, the heatmap overlay and a colour legend."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._frame_hw = (0, 0)
        self._boxes: list[tuple[str, list[float], QColor]] = []
        self._overlay: QImage | None = None
        self._overlay_note = ""
        self._legend: tuple[str, np.ndarray] | None = None
        self.placeholder = "Open evidence (File ▸ Open, or drop files here)"

    def sizeHint(self) -> QSize:  # noqa: D102 - Qt API
        return QSize(800, 450)

    # ------------------------------------------------------------------ content
    def set_frame(self, rgb: np.ndarray | None) -> None:
        """Show ``uint8 (H, W, 3)`` RGB (None clears the view)."""
        self._image = None if rgb is None else frame_to_qimage(rgb)
        self._frame_hw = (0, 0) if rgb is None else rgb.shape[:2]
        self.update()

    def set_boxes(self, boxes: list[tuple[str, list[float], QColor]]) -> None:
        """Face boxes ``(label, [x1, y1, x2, y2] frame px, colour)``."""
        self._boxes = list(boxes)
        self.update()

    def set_overlay(self, rgba: np.ndarray | None, note: str = "", legend: tuple[str, np.ndarray] | None = None) -> None:
        """Heatmap overlay ``uint8 (H, W, 4)`` in frame pixels (None removes it).

        Args:
            note: shown under the legend, e.g. which sampled frame the map is from.
            legend: ``(title, lut uint8 (256, 3))`` for the colour bar.
        """
        if rgba is None:
            self._overlay = None
        else:
            rgba = np.ascontiguousarray(rgba)
            h, w, _ = rgba.shape
            self._overlay = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self._overlay_note, self._legend = note, legend
        self.update()

    @property
    def has_overlay(self) -> bool:
        return self._overlay is not None

    # ------------------------------------------------------------------ geometry
    def frame_rect(self) -> QRectF:
        """Where the frame is drawn in widget pixels (aspect ratio kept, centred)."""
        h, w = self._frame_hw
        if not h or not w:
            return QRectF()
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, _event) -> None:  # noqa: D102 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 24))
        if self._image is None:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        r = self.frame_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(r, self._image)
        if self._overlay is not None:
            p.drawImage(r, self._overlay)
        s = r.width() / self._frame_hw[1]
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        p.setFont(font)
        for label, (x1, y1, x2, y2), colour in self._boxes:
            p.setPen(QPen(colour, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            box = QRectF(r.x() + x1 * s, r.y() + y1 * s, (x2 - x1) * s, (y2 - y1) * s)
            p.drawRect(box)
            tw = p.fontMetrics().horizontalAdvance(label) + 8
            tag = QRectF(box.x(), max(r.y(), box.y() - 18), tw, 18)
            p.fillRect(tag, QColor(0, 0, 0, 170))
            p.setPen(colour)
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)
        if self._legend is not None:
            self._paint_legend(p, r)

    def _paint_legend(self, p: QPainter, r: QRectF) -> None:
        """Colour bar in the top-right corner of the frame, the map's source as a caption at its bottom."""
        title, lut = self._legend
        fm = p.fontMetrics()
        bar_w, bar_h, pad = 14, min(120.0, r.height() * 0.35), 6
        text_w = max(fm.horizontalAdvance(t) for t in (title, "1.0 high", "0.0 low"))
        box = QRectF(r.right() - text_w - bar_w - 3 * pad, r.y() + pad,
                     max(text_w, bar_w + pad + fm.horizontalAdvance("1.0 high")) + 2 * pad,
                     bar_h + fm.height() + 3 * pad)
        box.moveRight(r.right() - pad)
        p.fillRect(box, QColor(0, 0, 0, 170))
        p.setPen(QColor(235, 235, 235))
        p.drawText(QPointF(box.x() + pad, box.y() + pad + fm.ascent()), title)
        bar = QRectF(box.x() + pad, box.y() + 2 * pad + fm.height(), bar_w, bar_h)
        grad = QLinearGradient(bar.topLeft(), bar.bottomLeft())
        for k in range(0, 256, 16):
            c = lut[255 - k]
            grad.setColorAt(k / 255, QColor(int(c[0]), int(c[1]), int(c[2])))
        c = lut[0]
        grad.setColorAt(1.0, QColor(int(c[0]), int(c[1]), int(c[2])))
        p.fillRect(bar, grad)
        p.drawText(QPointF(bar.right() + pad, bar.top() + fm.ascent()), "1.0 high")
        p.drawText(QPointF(bar.right() + pad, bar.bottom()), "0.0 low")
        if self._overlay_note:
            cap = QRectF(r.x(), r.bottom() - fm.height() - 2 * pad, r.width(), fm.height() + 2 * pad)
            p.fillRect(cap, QColor(0, 0, 0, 170))
            p.drawText(cap, Qt.AlignmentFlag.AlignCenter, self._overlay_note)
