"""Camera-model identification dock: top-5 classes per modality and per fusion rule, and the cards' caveats.

Shows :meth:`engine.results.ResultView.camera_summary` (camera.audio,
camera.image, and camera.fusion's product and sum rules, each labelled), the
fusion's fallback message when a modality is missing, and the model cards'
limitations verbatim right under the probabilities (the bundled camera weights
are demo weights; the analyst must see that next to the result, not only in a
tooltip). The toggle asks the window to lay camera.audio's log-mel Grad-CAM over
the spectrogram pane. Nothing is computed here.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.results import CameraRanking, CameraSummary, ResultView

__all__ = ["CameraPanel", "TopKBox", "format_probability"]

TOP_K = 5
_STATUS_COLOUR = {"ok": "#DDDDDD", "skipped": "#FFB347", "failed": "#FF6B6B", "not run": "#AAAAAA"}


def format_probability(p: float) -> str:
    """``0.623`` style (3 decimals); ``"<0.001"`` for positive values that would print as 0."""
    return "<0.001" if 0 < p < 0.0005 else f"{p:.3f}"


class TopKBox(QGroupBox):
    """One column: a title and up to :data:`TOP_K` classes with probability bars, or why there is none.

    Attributes:
        shown: the ``[(class, probability), ...]`` on display, best first.
        ranking: the :class:`engine.results.CameraRanking` shown, or None.
    """

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.shown: list[tuple[str, float]] = []
        self.ranking: CameraRanking | None = None
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(self.status, 0, 0, 1, 2)
        self.names: list[QLabel] = []
        self.bars: list[QProgressBar] = []
        for i in range(TOP_K):
            name = QLabel()
            name.setMinimumWidth(60)
            name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setMaximumHeight(16)
            bar.setMinimumWidth(70)
            bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(name, i + 1, 0)
            grid.addWidget(bar, i + 1, 1)
            self.names.append(name)
            self.bars.append(bar)
        grid.setColumnStretch(1, 1)

    def set_ranking(self, r: CameraRanking) -> None:
        """Show one column (its title, its top classes, or its status and message)."""
        self.ranking = r
        self.setTitle(r.title)
        self.shown = list(r.top[:TOP_K])
        if r.ok:
            self.status.setText(f"top: {r.label} ({format_probability(r.score or 0.0)})")
            self.status.setStyleSheet("")
        else:
            self.status.setText(f"{r.status}: {r.message}" if r.message else r.status)
            self.status.setStyleSheet(f"color: {_STATUS_COLOUR.get(r.status, '#DDDDDD')}")
        self.status.setToolTip(r.message)
        for i, (name, bar) in enumerate(zip(self.names, self.bars)):
            visible = i < len(self.shown)
            name.setVisible(visible)
            bar.setVisible(visible)
            if visible:
                cls, p = self.shown[i]
                name.setText(f"{i + 1}. {cls}")
                name.setToolTip(f"{cls}: p = {p:.6g}")
                bar.setValue(int(round(min(max(p, 0.0), 1.0) * 1000)))
                bar.setFormat(format_probability(p))
                bar.setToolTip(f"{cls}: p = {p:.6g}")


class CameraPanel(QWidget):
    """Camera-model result of the selected evidence (see the module docstring).

    Signals:
        gradcamToggled(bool): the analyst switched the spectrogram's audio Grad-CAM overlay.
    """

    gradcamToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view: ResultView | None = None
        self.summary: CameraSummary | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        inner = QWidget()
        scroll.setWidget(inner)
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(4, 4, 4, 4)

        self.empty = QLabel("No camera-model result. Check camera.audio, camera.image and camera.fusion, "
                            "then press Analyse.")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #AAAAAA")
        lay.addWidget(self.empty)
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.headline)
        self.fallback = QLabel()
        self.fallback.setWordWrap(True)
        self.fallback.setTextFormat(Qt.TextFormat.PlainText)
        self.fallback.setStyleSheet("color: #FFB347; font-weight: bold")
        lay.addWidget(self.fallback)
        self.grid = QGridLayout()
        self.grid.setSpacing(4)
        lay.addLayout(self.grid)
        self.columns: dict[str, TopKBox] = {}
        for i, key in enumerate(("audio", "image", "product", "sum")):
            box = TopKBox(key)
            self.columns[key] = box
            self.grid.addWidget(box, i // 2, i % 2)
        self.limitations = QLabel()
        self.limitations.setWordWrap(True)
        self.limitations.setTextFormat(Qt.TextFormat.RichText)
        self.limitations.setStyleSheet("border: 1px solid #FFB347; padding: 4px")
        self.limitations.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        lay.addWidget(self.limitations)
        self.gradcam_on = QCheckBox("Show audio Grad-CAM on the spectrogram")
        self.gradcam_on.setToolTip("Lay camera.audio's Grad-CAM (log-mel bands mapped to Hz, columns to seconds) "
                                   "over the spectrogram pane")
        self.gradcam_on.toggled.connect(self.gradcamToggled)
        lay.addWidget(self.gradcam_on)
        self.hint = QLabel("Frame Grad-CAM of camera.image: choose camera.image under Explanation overlay.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #AAAAAA")
        lay.addWidget(self.hint)
        lay.addStretch(1)
        self.set_result(None)

    # ------------------------------------------------------------------ content
    def set_result(self, view: ResultView | None) -> None:
        """Show the camera summary of ``view`` (None or no camera result: the empty note)."""
        self.view = view
        self.summary = view.camera_summary(TOP_K) if view is not None else None
        has = self.summary is not None and bool(self.summary.rankings)
        self.empty.setVisible(not has)
        for w in (self.headline, self.limitations, self.hint):
            w.setVisible(has)
        self._set_columns(self.summary.rankings if has else [])
        if not has:
            self.fallback.hide()
            self.headline.setText("")
            self.limitations.setText("")
        else:
            self.headline.setText(self._headline(self.summary))
            self.fallback.setText(self.summary.fusion_message)
            self.fallback.setVisible(bool(self.summary.fusion_message))
            self.limitations.setText(self._limitations_html(self.summary))
        gradcam = view.logmel_gradcam() if view is not None else None
        self.gradcam_on.setEnabled(gradcam is not None)
        self.gradcam_on.setVisible(has)
        self.gradcam_on.setText("Show audio Grad-CAM on the spectrogram"
                                + (f" (class {gradcam.target})" if gradcam is not None and gradcam.target else ""))
        if gradcam is None:
            self.gradcam_on.setToolTip("No audio Grad-CAM in this result (camera.audio not run, skipped, "
                                       "or run without explanations)")

    def _set_columns(self, rankings: list[CameraRanking]) -> None:
        keys = [r.key for r in rankings]
        for key in list(self.columns):
            if key not in keys and key not in ("audio", "image", "product", "sum"):
                box = self.columns.pop(key)
                self.grid.removeWidget(box)
                box.deleteLater()
        for r in rankings:
            if r.key not in self.columns:
                box = TopKBox(r.title)
                n = len(self.columns)
                self.columns[r.key] = box
                self.grid.addWidget(box, n // 2, n % 2)
            self.columns[r.key].set_ranking(r)
        for key, box in self.columns.items():
            box.setVisible(key in keys)

    @staticmethod
    def _headline(s: CameraSummary) -> str:
        prod, summ = s.ranking("product"), s.ranking("sum")
        if prod is None or not prod.ok:
            oks = [r for r in s.rankings if r.ok]
            text = "; ".join(f"<b>{html.escape(r.title)}:</b> {html.escape(str(r.label))} "
                             f"({format_probability(r.score or 0.0)})" for r in oks)
            return text or "<b>No camera-model prediction</b>"
        agree = ("<span style='color:#7CD67C'>the rules agree</span>" if s.rules_agree
                 else "<span style='color:#FF6B6B'><b>the rules disagree</b></span>")
        return (f"<b>Fused camera model</b> — product rule: <b>{html.escape(str(prod.label))}</b> "
                f"({format_probability(prod.score or 0.0)}), sum rule: <b>{html.escape(str(summ.label))}</b> "
                f"({format_probability(summ.score or 0.0)}); {agree}.")

    @staticmethod
    def _limitations_html(s: CameraSummary) -> str:
        """The camera cards' limitations verbatim, each once, with the cards that state it."""
        from engine.results import card_limitations, installed_cards

        said, problems = card_limitations(installed_cards(s.weights))
        items = "".join(f"<li>{html.escape(t)} <i>({html.escape(', '.join(ids))})</i></li>" for t, ids in said)
        extra = "".join(f"<li><span style='color:#FF6B6B'>{html.escape(n)}</span></li>" for n in problems)
        return (f"<b>Model card limitations</b> (verbatim; fusion uses both cards):"
                f"<ul style='margin-left:-20px'>{items}{extra}</ul>")
