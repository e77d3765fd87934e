"""Right-hand panel: run analysis, verdicts, per-detector scores, explanation controls, model cards.

Every number shown comes from the stored :class:`engine.results.ResultView`;
model cards are read with :func:`engine.weights.load_card`, and their
limitations are shown verbatim, as the cards require.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.fusion import FUSION_RULES, FusionRule, parse_weights
from engine.results import CardInfo, ResultView, installed_cards

__all__ = ["DetectorPanel", "ReferenceStrip", "card_html", "combined_html", "weights_ids"]


def combined_html(comb: dict | None) -> str:
    """One rich-text line for the combined deepfake verdict (late fusion), or "" when there is none."""
    if not comb or comb.get("score") is None:
        return ""
    fake = comb["label"] == "fake"
    colour = "#FF6B6B" if fake else "#7CD67C"
    return (f"<b>Combined deepfake verdict:</b> <span style='color:{colour}'><b>{html.escape(comb['label'])}</b></span>"
            f" — P(fake) {float(comb['score']):.3f} ({html.escape(comb['description'])}; "
            f"{comb['scored']} detectors, {len(comb['flagged'])} flagged on their own)")


class ReferenceStrip(QWidget):
    """Thumbnails of the nearest reference faces of each class (``deepfake.triplet``'s explanation)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.rows: dict[str, QHBoxLayout] = {}
        for cls in ("real", "fake"):
            row = QHBoxLayout()
            row.setSpacing(2)
            lab = QLabel("real refs" if cls == "real" else "fake refs")
            lab.setMinimumWidth(56)
            row.addWidget(lab)
            lay.addLayout(row)
            self.rows[cls] = row
        self.labels: list[QLabel] = []
        self.hide()

    def set_references(self, title: str, refs: dict[str, list[tuple[np.ndarray | None, float]]]) -> None:
        """Show ``{"real": [(thumb uint8 (h,w,3) or None, distance)], "fake": [...]}``; empty hides."""
        from PySide6.QtGui import QImage, QPixmap

        for lab in self.labels:
            lab.setParent(None)
        self.labels = []
        if not refs or not any(refs.values()):
            self.hide()
            return
        self.title.setText(title)
        for cls, items in refs.items():
            for thumb, dist in items:
                lab = QLabel()
                lab.setToolTip(f"{cls} reference, squared L2 distance {dist:.3f}")
                if thumb is not None:
                    t = np.ascontiguousarray(thumb[..., :3].astype(np.uint8))
                    img = QImage(t.data, t.shape[1], t.shape[0], 3 * t.shape[1], QImage.Format.Format_RGB888).copy()
                    lab.setPixmap(QPixmap.fromImage(img).scaled(40, 40))
                else:
                    lab.setText(f"{dist:.2f}")
                self.rows[cls].addWidget(lab)
                self.labels.append(lab)
        self.show()


def weights_ids(detector_id: str) -> tuple[str, ...]:
    """Model folders a detector loads: its ``requires_weights`` (camera.fusion: audio + image), else itself."""
    from engine.pipeline import _REGISTRY, _load_detector_modules

    try:
        _load_detector_modules()
    except Exception:  # a broken detector module: fall back to the detector's own folder
        pass
    return tuple(getattr(_REGISTRY.get(detector_id), "requires_weights", None) or (detector_id,))


def _one_card_html(info: CardInfo) -> str:
    e = html.escape
    card = info.card
    if card is None:
        return f"<b>{e(info.weights_id)}</b>: {e(info.reason)}"
    metrics = ", ".join(f"{k} = {v:.3f}" if isinstance(v, float) else f"{k} = {v}" for k, v in card.metrics.items())
    lim = "".join(f"<li>{e(x)}</li>" for x in card.limitations) or "<li>none stated</li>"
    stale = ""
    if info.stale:
        stale = (f"<span style='color:#FF6B6B'><b>The stored result was made with other weights "
                 f"({e(info.used_sha256[:12])}); this card describes the installed ones.</b></span><br>")
    return (
        f"{stale}<b>{e(card.card_id)}</b> ({e(card.architecture)})<br>"
        f"<b>Paper:</b> {e(card.paper)}<br>"
        f"<b>Training data:</b> {e(card.training_data[:600])}{'…' if len(card.training_data) > 600 else ''}<br>"
        f"<b>Initialisation:</b> {e(card.init)}<br>"
        f"<b>Metrics</b> ({e(card.evaluation)}): {e(metrics) or '—'}<br>"
        f"<b>Limitations:</b><ul>{lim}</ul>"
        f"<b>Weights SHA-256:</b> <tt>{e(card.sha256)}</tt>"
    )


def card_html(detector_id: str, cards: list[CardInfo] | None = None) -> str:
    """HTML summary of the model card(s) of ``detector_id`` (or why there is none).

    Args:
        detector_id: e.g. ``"deepfake.effvit"``; a detector without weights of its own
            (camera.fusion) shows the cards of the models it combines.
        cards: cards already checked against a result (:meth:`ResultView.model_cards`);
            None = the installed cards of :func:`weights_ids`.
    """
    if cards is None:
        cards = installed_cards({w: None for w in weights_ids(detector_id)})
    if len(cards) == 1 and cards[0].weights_id == detector_id:
        return _one_card_html(cards[0])
    head = (f"<b>{html.escape(detector_id)}</b> has no weights of its own; it combines "
            f"{', '.join(html.escape(c.weights_id) for c in cards)}:<br>")
    return head + "<hr>".join(_one_card_html(c) for c in cards)


class DetectorPanel(QWidget):
    """Detector choice + Analyse, verdicts, scores, explanation controls and the model card.

    Signals:
        analyseRequested(list, str, int): detector ids, device and frames to sample.
        overlayChanged(): explanation detector/view, visibility or opacity changed.
        detectorSelected(str): the detector whose threshold/card/explanation is shown.
    """

    analyseRequested = Signal(list, str, int)
    overlayChanged = Signal()
    detectorSelected = Signal(str)

    def __init__(self, available: list[str], unavailable: dict[str, str], parent: QWidget | None = None):
        super().__init__(parent)
        self.view: ResultView | None = None
        lay = QVBoxLayout(self)

        run = QGroupBox("Analysis")
        rl = QVBoxLayout(run)
        self.detector_list = QListWidget()
        self.detector_list.setMaximumHeight(90)
        for det in available:
            it = QListWidgetItem(det)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked)
            self.detector_list.addItem(it)
        for det, why in unavailable.items():
            it = QListWidgetItem(f"{det} (no weights)")
            it.setFlags(Qt.ItemFlag.NoItemFlags)
            it.setToolTip(why)
            self.detector_list.addItem(it)
        rl.addWidget(self.detector_list)
        row = QHBoxLayout()
        self.device = QComboBox()
        self.device.addItems(self._devices())
        self.device.setToolTip("auto: CUDA when a GPU is present, else CPU")
        self.analyse_button = QPushButton("Analyse")
        self.analyse_button.setToolTip("Run the checked detectors on the selected evidence (Ctrl+R)")
        self.frames = QSpinBox()
        self.frames.setRange(4, 1000)
        self.frames.setValue(32)
        self.frames.setToolTip("Frames sampled uniformly over the duration (the seeds use 20-32)")
        self.analyse_button.clicked.connect(
            lambda: self.analyseRequested.emit(self.checked(), self.device.currentText(), self.frames.value()))
        row.addWidget(QLabel("Device"))
        row.addWidget(self.device, 1)
        row.addWidget(QLabel("Frames"))
        row.addWidget(self.frames)
        row.addWidget(self.analyse_button)
        rl.addLayout(row)
        lay.addWidget(run)

        res = QGroupBox("Results")
        vl = QVBoxLayout(res)
        self.verdict = QLabel("Not analysed")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        vl.addWidget(self.verdict)
        fuse = QHBoxLayout()
        fuse.addWidget(QLabel("Combine deepfake scores by"))
        self.fusion_rule = QComboBox()
        self.fusion_rule.addItems(list(FUSION_RULES))
        self.fusion_rule.setToolTip("\n".join(f"{k}: {v}" for k, v in FUSION_RULES.items()))
        self.fusion_weights = QLineEdit()
        self.fusion_weights.setPlaceholderText("deepfake.effvit=2,deepfake.freq=0.5")
        self.fusion_weights.setToolTip("weighted rule: detector weights (others 1)")
        self.fusion_weights.setVisible(False)
        self.fusion_rule.currentTextChanged.connect(self._fusion_changed)
        self.fusion_weights.editingFinished.connect(self._fusion_changed)
        fuse.addWidget(self.fusion_rule)
        fuse.addWidget(self.fusion_weights, 1)
        vl.addLayout(fuse)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Detector", "Score", "Decision", "Status"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            self.table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setMaximumHeight(150)
        self.table.setMinimumHeight(90)
        self.table.itemSelectionChanged.connect(self._row_selected)
        vl.addWidget(self.table)
        lay.addWidget(res)

        ex = QGroupBox("Explanation overlay")
        fl = QFormLayout(ex)
        self.overlay_on = QCheckBox("Show heatmap on the frame")
        self.overlay_on.setChecked(True)
        self.overlay_det = QComboBox()
        self.overlay_view = QComboBox()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.overlay_on.toggled.connect(self.overlayChanged)
        self.overlay_det.currentTextChanged.connect(self._overlay_detector_changed)
        self.overlay_view.currentTextChanged.connect(self.overlayChanged)
        self.opacity.valueChanged.connect(self.overlayChanged)
        fl.addRow(self.overlay_on)
        fl.addRow("Detector", self.overlay_det)
        fl.addRow("View", self.overlay_view)
        fl.addRow("Opacity", self.opacity)
        lay.addWidget(ex)

        self.spectrum = pg.PlotWidget(background="#202020")
        self.spectrum.setMinimumHeight(120)
        self.spectrum.setMaximumHeight(150)
        self.spectrum.plotItem.setLabel("bottom", "spatial frequency bin")
        self.spectrum.plotItem.setLabel("left", "power")
        self.spectrum.plotItem.addLegend(offset=(6, 4), labelTextColor="#DDDDDD")
        self.spectrum.setToolTip("Azimuthal spectrum of the face at the nearest scored frame vs. the class means")
        self.spectrum.hide()
        self._spectrum_items: dict[str, pg.PlotDataItem] = {}
        self._spectrum_title = ""
        lay.addWidget(self.spectrum)

        self.explain_plot = pg.PlotWidget(background="#202020")
        self.explain_plot.setMinimumHeight(120)
        self.explain_plot.setMaximumHeight(150)
        self.explain_plot.plotItem.addLegend(offset=(6, 4), labelTextColor="#DDDDDD")
        # values as they are (a distance of 0.75 must not read "750" with a clipped "(m)" SI prefix),
        # with room for 4-5 character tick labels such as "0.750"
        for axis in ("left", "bottom"):
            self.explain_plot.getAxis(axis).enableAutoSIPrefix(False)
        self.explain_plot.getAxis("left").setWidth(52)
        self.explain_plot.hide()
        lay.addWidget(self.explain_plot)
        self.references = ReferenceStrip()
        lay.addWidget(self.references)

        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        self.card.setMinimumHeight(80)
        # the card takes the panel's spare height: a scroll bar that came and went with the plots
        # above would change its width and re-wrap the whole card in one long UI turn
        self.card.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        lay.addWidget(QLabel("Model card"))
        lay.addWidget(self.card, 1)
        self.selected: str | None = available[0] if available else None
        if self.selected:
            self.card.setHtml(card_html(self.selected))

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _devices() -> list[str]:
        out = ["auto", "cpu"]
        try:
            import torch

            if torch.cuda.is_available():
                out.append("cuda")
        except ImportError:  # pragma: no cover
            pass
        return out

    def checked(self) -> list[str]:
        """Detector ids whose box is checked."""
        out = []
        for i in range(self.detector_list.count()):
            it = self.detector_list.item(i)
            if it.flags() & Qt.ItemFlag.ItemIsUserCheckable and it.checkState() == Qt.CheckState.Checked:
                out.append(it.text())
        return out

    def set_checked(self, detectors: list[str]) -> None:
        """Check exactly ``detectors``."""
        for i in range(self.detector_list.count()):
            it = self.detector_list.item(i)
            if it.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                it.setCheckState(Qt.CheckState.Checked if it.text() in detectors else Qt.CheckState.Unchecked)

    @property
    def overlay_selection(self) -> tuple[str, str] | None:
        """``(detector_id, view)`` to overlay, or None when hidden or nothing to show."""
        if not self.overlay_on.isChecked() or not self.overlay_det.currentText() or not self.overlay_view.currentText():
            return None
        return self.overlay_det.currentText(), self.overlay_view.currentText()

    @property
    def opacity_value(self) -> float:
        return self.opacity.value() / 100.0

    # ------------------------------------------------------------------ results
    def set_result(self, view: ResultView | None, colours: dict[str, str]) -> None:
        """Show a stored result (None: "Not analysed")."""
        self.view = view
        self.table.setRowCount(0)
        self.overlay_det.blockSignals(True)
        self.overlay_det.clear()
        self.overlay_det.blockSignals(False)
        if view is None or not view.detector_ids:
            self.verdict.setText("Not analysed. Check detectors and press <b>Analyse</b>.")
            self._overlay_detector_changed("")
            return
        rows = view.verdicts()
        self.table.setRowCount(len(rows))
        for r, v in enumerate(rows):
            score = "—" if v["score"] is None else f"{v['score']:.3f}"
            thr = "" if v["threshold"] is None else f" (thr {v['threshold']:.2f})"
            status = v["status"]
            stale = [c for c in view.model_cards(v["detector_id"]) if c.stale]
            if stale:
                status += " (older weights: re-run)"
                v = {**v, "message": (v["message"] or "") + "".join(
                    f" The stored result was made with {c.weights_id} weights {c.used_sha256[:12]}; the installed "
                    f"weights are {c.card.sha256[:12]}." for c in stale)}
            cells = [v["detector_id"], score, (v["label"] or "—") + thr, status]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setForeground(QColor(colours.get(v["detector_id"], "#FFFFFF")))
                if v["message"] or v["status"] != "ok":
                    item.setToolTip(v["message"] or v["status"])
                self.table.setItem(r, c, item)
        self.verdict.setText(self._verdict_text(rows, self.combined()))
        # frame overlays only: maps over the audio (camera.audio's log-mel) go on the spectrogram pane
        with_maps = [d for d in view.detector_ids if view.explanation_views(d) and view.detector(d).get("frame_scores")]
        self.overlay_det.blockSignals(True)
        self.overlay_det.addItems(with_maps)
        self.overlay_det.blockSignals(False)
        self._overlay_detector_changed(self.overlay_det.currentText())
        if self.selected in view.detector_ids:
            self.table.selectRow(view.detector_ids.index(self.selected))
        elif rows:
            self.table.selectRow(0)

    def fusion(self) -> FusionRule:
        """The fusion rule chosen in the panel (weights that do not parse are ignored, with a tooltip)."""
        rule = self.fusion_rule.currentText() or "mean"
        weights = {}
        if rule == "weighted":
            try:
                weights = parse_weights(self.fusion_weights.text())
                self.fusion_weights.setStyleSheet("")
            except ValueError as exc:
                self.fusion_weights.setStyleSheet("color: #FF6B6B")
                self.fusion_weights.setToolTip(str(exc))
        return FusionRule(rule, weights=weights)

    def combined(self) -> dict | None:
        """The combined deepfake verdict of the shown result under the chosen rule (None without one)."""
        if self.view is None:
            return None
        stored = (self.view.doc.get("combined") or {}).get("rule")
        rule = self.fusion()
        return self.view.combined(None if stored == rule.to_dict() else rule)

    def _fusion_changed(self, *_args) -> None:
        self.fusion_weights.setVisible(self.fusion_rule.currentText() == "weighted")
        if self.view is not None and self.view.detector_ids:
            self.verdict.setText(self._verdict_text(self.view.verdicts(), self.combined()))

    @staticmethod
    def _verdict_text(rows: list[dict], combined: dict | None = None) -> str:
        by_task: dict[str, list[dict]] = {}
        for v in rows:
            by_task.setdefault(v["task"] or "unknown", []).append(v)
        parts = []
        for task, vs in by_task.items():
            ok = [v for v in vs if v["status"] == "ok" and v["score"] is not None]
            if task == "deepfake":
                flagged = [v for v in ok if v["label"] == "fake"]
                if not ok:
                    text = "no detector produced a score"
                elif flagged:
                    text = (f"<span style='color:#FF6B6B'><b>manipulation suspected</b></span> by "
                            f"{len(flagged)} of {len(ok)} detectors ({', '.join(v['detector_id'] for v in flagged)})")
                else:
                    text = f"<span style='color:#7CD67C'><b>no manipulation found</b></span> by {len(ok)} detectors"
            else:
                text = "; ".join(f"{v['detector_id']}: {v['label']} ({v['score']:.2f})" for v in ok) or "no score"
            skipped = [v for v in vs if v["status"] != "ok"]
            if skipped:
                text += "<br><i>not scored: " + ", ".join(
                    f"{v['detector_id']} ({html.escape(v['message'] or v['status'])})" for v in skipped) + "</i>"
            parts.append(f"<b>{html.escape(task.capitalize())}:</b> {text}")
        if combined_html(combined):
            parts.insert(0, combined_html(combined))
        return "<br>".join(parts) + ("<br><small>Scores are evidence for an analyst's judgement, "
                                     "not a decision; read each model card's limitations.</small>")

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or self.view is None:
            return
        det = self.view.detector_ids[rows[0].row()]
        if det != self.selected or not self.card.toPlainText():
            self.card.setHtml(card_html(det, self.view.model_cards(det)))
        self.selected = det
        self.detectorSelected.emit(det)

    def _overlay_detector_changed(self, det: str) -> None:
        self.overlay_view.blockSignals(True)
        self.overlay_view.clear()
        if det and self.view is not None:
            self.overlay_view.addItems(self.view.explanation_views(det))
        self.overlay_view.blockSignals(False)
        self.overlayChanged.emit()

    def show_spectrum(self, curves: dict[str, np.ndarray], colours: dict[str, str], title: str) -> None:
        """Plot a spectrum detector's curves at the current time (hidden when empty).

        Args:
            curves: ``{"frame" | "class_mean/<class>": power (300,) float}``, one azimuthal
                spectrum per curve (spec 4.2), x = spatial frequency bin.
            title: the plot's title (set only when it changes).

        Redrawn whenever the scored frame nearest to the displayed one changes during
        playback, so the curve items are kept and only their data replaced.
        """
        if not curves:
            self.spectrum.hide()
            return
        pi = self.spectrum.plotItem
        if list(curves) != list(self._spectrum_items):
            for item in self._spectrum_items.values():
                pi.removeItem(item)
            pi.legend.clear()
            styles = {"frame": pg.mkPen("#FFFFFF", width=2), "class_mean/real": pg.mkPen("#7CD67C", width=1.5),
                      "class_mean/fake": pg.mkPen("#FF6B6B", width=1.5)}
            self._spectrum_items = {
                name: pi.plot(pen=styles.get(name, pg.mkPen("#AAAAAA")),
                              name="this face" if name == "frame" else name.split("/", 1)[-1] + " mean")
                for name in curves}
        for name, y in curves.items():
            self._spectrum_items[name].setData(np.arange(len(y)), np.asarray(y, dtype=np.float64))
        if title != self._spectrum_title:
            pi.setTitle(title, color="#DDDDDD", size="9pt")
            self._spectrum_title = title
        self.spectrum.show()

    def warm_up_plots(self) -> None:
        """Lay out and paint the (hidden) spectrum and explanation plots once, then hide them again.

        pyqtgraph lays a plot out and builds its axis and legend pictures the first time it
        is shown, which costs a long event-loop turn; paid here, when the window opens,
        rather than when the first result arrives during playback (issue 4: the UI thread
        never stalls over 100 ms). Call with the panel visible; does nothing while either plot
        already shows a result.
        """
        if self.spectrum.isVisible() or self.explain_plot.isVisible():
            return
        x = np.arange(300, dtype=np.float64)
        self.show_spectrum({"frame": np.exp(-x / 80.0), "class_mean/real": np.exp(-x / 90.0),
                            "class_mean/fake": np.exp(-x / 70.0)}, {}, "warm-up")
        self.show_plots({"warm-up": {"x": x[:41] - 20, "series": {"a": np.cos(x[:41] / 8.0)}, "marker_x": 0.0,
                                     "x_label": "offset", "y_label": "distance"}}, "#FFFFFF")
        if self.layout() is not None:
            self.layout().activate()
        for plot in (self.spectrum, self.explain_plot):
            plot.viewport().repaint()
        self.show_spectrum({}, {}, "")
        self.show_plots({}, "#FFFFFF")

    def show_plots(self, plots: dict[str, dict], colour: str) -> None:
        """Draw a detector's ``kind="line"`` explanation plots (e.g. the A/V offset curve); empty hides."""
        if not plots:
            self.explain_plot.hide()
            return
        pi = self.explain_plot.plotItem
        pi.clear()
        pi.legend.clear()
        name, first = next(iter(plots.items()))
        pi.setTitle(" · ".join(plots), color="#DDDDDD", size="9pt")
        pi.setLabel("bottom", first.get("x_label", ""))
        pi.setLabel("left", first.get("y_label", ""))
        pens = [pg.mkPen(colour, width=2), pg.mkPen("#FFFFFF", width=1.5), pg.mkPen("#AAAAAA", width=1.5)]
        k = 0
        for plot in plots.values():
            x = np.asarray(plot["x"], dtype=np.float64)
            for label, y in plot["series"].items():
                pi.plot(x, np.asarray(y, dtype=np.float64), pen=pens[k % len(pens)], name=label)
                k += 1
            if plot.get("marker_x") is not None:
                pi.addItem(pg.InfiniteLine(pos=float(plot["marker_x"]), angle=90,
                                           pen=pg.mkPen("#FF5555", style=Qt.PenStyle.DashLine)))
        self.explain_plot.setToolTip("\n".join(p.get("note", "") for p in plots.values() if p.get("note")))
        self.explain_plot.show()
