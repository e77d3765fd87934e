"""Court-ready PDF report of one or more saved analyses (reportlab + matplotlib).

:func:`build_report` turns :class:`engine.results.ResultView` objects (and,
optionally, the analyst's :class:`engine.case.Case`) into an A4 PDF an analyst
can sign. Sections, in order (titles are fixed strings):

* cover: title, case, analyst, UTC date, tool and engine version, number of
  evidence files, a summary of verdicts, and a red box when any evidence file
  no longer has the SHA-256 it was analysed with;
* ``Evidence``: per file its identity (SHA-256, size), container and stream
  facts, device tags, and the integrity table (hash at intake, after analysis,
  now);
* ``Methods``: per detector what it does (its module docstring), the paper,
  the training data of its weights (model card), frame sampling, aggregation
  rule and threshold;
* ``Results``: per evidence the verdict per task, the per-detector score
  table, the score timeline, the audio spectrogram, the most suspicious frames
  with the explanation map over the face, the spectrum of the most suspicious
  frame (spectrum detectors), and the files that could not be analysed;
* ``Camera-model identification`` (only when a camera-task detector ran): per
  evidence the top-5 classes of the audio and image models and of both fusion
  rules (:meth:`engine.results.ResultView.camera_summary`), whether the rules
  agree, the fallback when a modality is missing, the camera model cards'
  limitations verbatim, the audio Grad-CAM over the spectrogram (mapped by
  :meth:`engine.results.LogMelMap.on_linear_grid`, the GUI's mapping) and the
  image Grad-CAM of one frame;
* ``Bookmarks and notes``: the analyst's bookmarks and notes from the case;
* ``Limitations``: a general caveat and each model card's limitations verbatim;
* ``Reproducibility``: the command to re-run, package versions, weight hashes,
  engine version, device, analysis times and the case audit log.

Every page carries a header (report title, case id) and a footer (generation
time in UTC, "page x of y"). Figures are drawn with matplotlib's Agg canvas on
:class:`matplotlib.figure.Figure` objects (no pyplot state, no change of the
process-wide backend) at their printed size, so 8 pt text prints at 8 pt.
The PDF is built in memory and written atomically; it is never written into
the folder of an evidence file, and evidence is only opened for reading.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import inspect
import io
import os
import platform
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence
from xml.sax.saxutils import escape as _xml_escape

import numpy as np

from . import __version__
from .io import atomic_write_bytes

__all__ = ["ALL_SECTIONS", "SECTION_TITLES", "INTEGRITY_WARNING", "ReportOptions", "build_report", "verify_results",
           "verdict_lines", "format_timestamp"]

#: Sections :func:`build_report` can write, in report order (the cover is always written).
ALL_SECTIONS = ("cover", "evidence", "methods", "results", "camera", "bookmarks", "limitations", "reproducibility")

#: Printed title of each section (the cover has none). The camera section is printed only when some
#: result has a camera-task detector.
SECTION_TITLES = {
    "evidence": "Evidence",
    "methods": "Methods",
    "results": "Results",
    "camera": "Camera-model identification",
    "bookmarks": "Bookmarks and notes",
    "limitations": "Limitations",
    "reproducibility": "Reproducibility",
}

#: Headline of the red cover box shown when any evidence file fails its integrity check.
INTEGRITY_WARNING = "EVIDENCE INTEGRITY PROBLEM"

_GENERAL_LIMITATIONS = (
    "The scores in this report are evidence for the analyst's judgement, not decisions. A score above a "
    "detector's threshold means the detector found the patterns it was trained to find; it does not prove "
    "manipulation, and a score below the threshold does not prove authenticity. Detectors only see the frames "
    "that were sampled and only the faces that were found in them. The bundled weights are demo weights trained "
    "by this project on self-blended faces made from a small set of real videos (no FaceForensics++, Celeb-DF or "
    "other manipulated video was available); they have not been validated on real deepfake datasets, and their "
    "error rates on casework material are unknown. Recompression, resizing, low resolution, heavy compression, "
    "non-human or animated content lower the reliability of every detector. Heatmaps show where a model's "
    "decision was most sensitive; they are not a localisation of a manipulation."
)

_STATUS_LABELS = {"ok": "Ok", "to_check": "To check", "warning": "Warning"}

# Page geometry (points). A4 = 595.3 x 841.9 pt.
_MM = 72.0 / 25.4
_MARGIN_X = 18 * _MM
_MARGIN_TOP = 22 * _MM
_MARGIN_BOTTOM = 18 * _MM


# ============================================================================ options
@dataclass
class ReportOptions:
    """What goes into the report.

    Attributes:
        sections: sections to include, any of :data:`ALL_SECTIONS` (the cover is always written).
        top_k: number of most suspicious frames shown per detector with map explanations (>= 0).
        frames: evidence SHA-256 -> frame indices (presentation order) to show instead of the top-k
            for that evidence; None = top-k everywhere.
        heatmap_view: explanation view to draw (e.g. ``"relevancy"``, ``"Grad-CAM"``); None or a
            view a detector lacks = that detector's first view.
        title: report title (cover and page header).
    """

    sections: tuple[str, ...] = ALL_SECTIONS
    top_k: int = 4
    frames: dict[str, list[int]] | None = None
    heatmap_view: str | None = None
    title: str = "Forensic video analysis report"


# ============================================================================ small helpers
def format_timestamp(t: float | None) -> str:
    """Seconds -> ``HH:MM:SS.mmm`` (``"—"`` for None); negative times get a leading minus."""
    if t is None or not np.isfinite(t):
        return "—"
    sign = "-" if t < 0 else ""
    ms = int(round(abs(float(t)) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{sign}{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _esc(value: Any) -> str:
    """Text for a reportlab Paragraph (XML-escaped; None -> em dash)."""
    if value is None or value == "":
        return "—"
    return _xml_escape(str(value))


def _fmt_score(x: float | None) -> str:
    return "—" if x is None else f"{float(x):.3f}"


def _fmt_num(x: Any, fmt: str = "{:.3f}", unit: str = "") -> str:
    if x is None:
        return "—"
    try:
        return fmt.format(float(x)) + unit
    except (TypeError, ValueError):
        return str(x)


def _utc_label(iso: str | None) -> str:
    """ISO-8601 -> ``YYYY-MM-DD HH:MM:SS UTC`` (unchanged when it does not parse)."""
    if not iso:
        return "—"
    try:
        t = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _strip_rst(text: str) -> str:
    """Plain text from a docstring paragraph (drops ``code``, :role:`x`, **bold** markup)."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    text = text.replace("``", "").replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


def _evidence_name(view) -> str:
    ev = view.doc.get("evidence", {})
    return Path(ev.get("path") or "?").name


def _failure_row(item: Any) -> tuple[str, str]:
    """``(path, reason)`` from a tuple or a ``forensic-analyze`` ``failed`` entry (dict)."""
    if isinstance(item, dict):
        return str(item.get("path", "?")), str(item.get("message") or item.get("error") or item.get("reason") or "")
    path, reason = item
    return str(path), str(reason)


# ============================================================================ integrity
def verify_results(results: Sequence[Any]) -> list[dict[str, Any]]:
    """Re-hash every evidence file and compare it with the hashes recorded in its result.

    Args:
        results: :class:`engine.results.ResultView` objects (``doc["evidence"]["path"]``,
            ``doc["evidence"]["sha256"]`` and ``doc["sha256_at_end"]`` are read).

    Returns:
        One dict per result, in order: ``name``, ``path``, ``expected`` (SHA-256 at intake),
        ``at_end`` (SHA-256 after the analysis, or None), ``now`` (SHA-256 now, or None when the
        file cannot be read), ``status`` (``"OK"``, ``"MISMATCH"``, ``"MISSING"`` or
        ``"UNREADABLE"``), ``ok`` (bool) and ``message``. A file is hashed once per call even
        when several results name it. Nothing is raised for missing or unreadable files.
    """
    from .media import sha256_file
    from .media.errors import EvidenceError, EvidenceNotFound

    cache: dict[str, tuple[str | None, str, str]] = {}
    out = []
    for view in results:
        ev = view.doc.get("evidence", {})
        path = str(ev.get("path") or "")
        expected = str(ev.get("sha256") or "")
        at_end = view.doc.get("sha256_at_end")
        if path not in cache:
            try:
                cache[path] = (sha256_file(path), "", "")
            except EvidenceNotFound:
                cache[path] = (None, "MISSING", f"{path}: file not found")
            except (EvidenceError, OSError) as exc:
                cache[path] = (None, "UNREADABLE", str(exc))
        now, status, message = cache[path]
        if now is not None:
            if now != expected:
                status, message = "MISMATCH", f"SHA-256 now {now} differs from the hash at intake {expected}"
            elif at_end and at_end != expected:
                status, message = "MISMATCH", f"SHA-256 after the analysis {at_end} differed from the hash at intake"
            else:
                status, message = "OK", "unchanged since intake"
        out.append({"name": Path(path).name, "path": path, "expected": expected, "at_end": at_end, "now": now,
                    "status": status, "ok": status == "OK", "message": message})
    return out


def _check_destination(out_path: Path, results: Sequence[Any], failures: Iterable[Any]) -> None:
    """Raise ValueError when ``out_path`` lies in the folder of an evidence file."""
    target_dir = out_path.resolve().parent
    evidence_paths = [str(v.doc.get("evidence", {}).get("path") or "") for v in results]
    evidence_paths += [_failure_row(f)[0] for f in failures]
    for p in evidence_paths:
        if not p:
            continue
        ev = Path(p).expanduser()
        if ev.resolve() == out_path.resolve() or ev.resolve().parent == target_dir:
            raise ValueError(
                f"refusing to write the report {out_path} into the folder of evidence file {p}: "
                "evidence folders are read-only; choose another output folder"
            )


# ============================================================================ fonts and styles
_FONTS: dict[str, str] | None = None


def _fonts() -> dict[str, str]:
    """Register DejaVu (matplotlib's bundled TTFs, full Unicode) once; Helvetica/Courier otherwise."""
    global _FONTS
    if _FONTS is not None:
        return _FONTS
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    fonts = {"sans": "Helvetica", "bold": "Helvetica-Bold", "italic": "Helvetica-Oblique", "mono": "Courier"}
    try:
        import matplotlib

        ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        files = {"FWSans": "DejaVuSans.ttf", "FWSans-Bold": "DejaVuSans-Bold.ttf",
                 "FWSans-Oblique": "DejaVuSans-Oblique.ttf", "FWSans-BoldOblique": "DejaVuSans-BoldOblique.ttf",
                 "FWMono": "DejaVuSansMono.ttf"}
        for name, fname in files.items():
            pdfmetrics.registerFont(TTFont(name, str(ttf / fname)))
        for bold, italic, name in ((0, 0, "FWSans"), (1, 0, "FWSans-Bold"), (0, 1, "FWSans-Oblique"),
                                   (1, 1, "FWSans-BoldOblique")):
            addMapping("FWSans", bold, italic, name)
        for bold in (0, 1):
            for italic in (0, 1):
                addMapping("FWMono", bold, italic, "FWMono")
        fonts = {"sans": "FWSans", "bold": "FWSans-Bold", "italic": "FWSans-Oblique", "mono": "FWMono"}
    except Exception:  # fonts missing or unreadable: the built-in PDF fonts still work (Latin-1 only)
        pass
    _FONTS = fonts
    return fonts


class _Styles:
    """Paragraph styles of the report (sizes in points)."""

    def __init__(self):
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        f = _fonts()
        self.fonts = f
        base = ParagraphStyle("body", fontName=f["sans"], fontSize=9, leading=12, spaceAfter=4)
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=8, leading=10, spaceAfter=2)
        self.caption = ParagraphStyle("caption", parent=base, fontSize=8, leading=10, alignment=1, spaceAfter=0)
        self.cell = ParagraphStyle("cell", parent=base, fontSize=8, leading=10, spaceAfter=0)
        self.cell_bold = ParagraphStyle("cellb", parent=self.cell, fontName=f["bold"])
        self.head_cell = ParagraphStyle("headcell", parent=self.cell, fontName=f["bold"], textColor=colors.white)
        self.mono = ParagraphStyle("mono", parent=self.cell, fontName=f["mono"], fontSize=7.5, leading=9.5)
        self.code = ParagraphStyle("code", parent=base, fontName=f["mono"], fontSize=8, leading=10.5,
                                   backColor=colors.HexColor("#F2F2F2"), borderPadding=4, spaceBefore=2,
                                   spaceAfter=8)
        self.title = ParagraphStyle("title", parent=base, fontName=f["bold"], fontSize=22, leading=28,
                                    spaceAfter=14)
        self.h1 = ParagraphStyle("h1", parent=base, fontName=f["bold"], fontSize=16, leading=20, spaceBefore=6,
                                 spaceAfter=8, textColor=colors.HexColor("#1F3A5F"), keepWithNext=1)
        self.h2 = ParagraphStyle("h2", parent=base, fontName=f["bold"], fontSize=12, leading=15, spaceBefore=10,
                                 spaceAfter=5, textColor=colors.HexColor("#1F3A5F"), keepWithNext=1)
        self.h3 = ParagraphStyle("h3", parent=base, fontName=f["bold"], fontSize=10, leading=13, spaceBefore=8,
                                 spaceAfter=3, keepWithNext=1)
        self.bullet = ParagraphStyle("bullet", parent=base, leftIndent=12, bulletIndent=2)
        self.warn = ParagraphStyle("warn", parent=base, fontName=f["bold"], fontSize=11, leading=14,
                                   textColor=colors.white)
        self.warn_body = ParagraphStyle("warnb", parent=base, fontSize=8.5, leading=11, textColor=colors.white)


def _p(text: str, style) -> Any:
    from reportlab.platypus import Paragraph

    return Paragraph(text, style)


def _hex(digest: str | None, style, per_line: int = 32) -> Any:
    """A SHA-256 (or any long hex) in monospace, broken into lines of ``per_line`` characters."""
    if not digest:
        return _p("—", style)
    s = str(digest)
    return _p("<br/>".join(_xml_escape(s[i:i + per_line]) for i in range(0, len(s), per_line)), style)


def _heading(text: str, style, level: int, key: str | None = None) -> Any:
    """A heading paragraph that also becomes a PDF outline (bookmark) entry."""
    para = _p(_esc(text), style)
    para._outline = (text, level, key or f"h{id(para)}")  # read by _Doc.afterFlowable
    return para


def _table(rows: list[list[Any]], widths_mm: Sequence[float], styles: _Styles, header: bool = True,
           zebra: bool = True, extra: Sequence[tuple] = ()) -> Any:
    """A table of Paragraph cells fitting ``sum(widths_mm)`` millimetres, header row optional."""
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    cells = []
    for r, row in enumerate(rows):
        out = []
        for c in row:
            if isinstance(c, str):
                c = _p(c, styles.head_cell if (header and r == 0) else styles.cell)
            out.append(c)
        cells.append(out)
    t = Table(cells, colWidths=[w * _MM for w in widths_mm], repeatRows=1 if header else 0, hAlign="LEFT")
    cmds = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#B0B7C3")),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        cmds.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1F3A5F")))
    if zebra:
        for r in range(1 if header else 0, len(cells)):
            if (r - (1 if header else 0)) % 2 == 1:
                cmds.append(("BACKGROUND", (0, r), (-1, r), colors.HexColor("#F3F5F8")))
    cmds.extend(extra)
    t.setStyle(TableStyle(cmds))
    t.spaceAfter = 6
    return t


def _kv_table(pairs: list[tuple[str, Any]], styles: _Styles, key_mm: float = 38, total_mm: float = 174) -> Any:
    """Two-column key/value table; values may be strings (escaped here) or flowables."""
    rows = []
    for k, v in pairs:
        rows.append([_p(_esc(k), styles.cell_bold), v if not isinstance(v, str) else _p(_esc(v), styles.cell)])
    return _table(rows, [key_mm, total_mm - key_mm], styles, header=False)


# ============================================================================ page template
def _canvas_class(title: str, case_label: str, generated: str, fonts: dict[str, str]):
    """A reportlab Canvas that defers each page until the end so the footer can say "page x of y"."""
    from reportlab.lib import colors
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 (reportlab API)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                Canvas.showPage(self)
            Canvas.save(self)

        def _decorate(self, total: int) -> None:
            w, h = self._pagesize
            self.saveState()
            self.setFillColor(colors.HexColor("#555555"))
            self.setStrokeColor(colors.HexColor("#B0B7C3"))
            self.setLineWidth(0.5)
            self.setFont(fonts["sans"], 8)
            self.drawString(_MARGIN_X, h - 12 * _MM, title)
            self.drawRightString(w - _MARGIN_X, h - 12 * _MM, case_label)
            self.line(_MARGIN_X, h - 13.5 * _MM, w - _MARGIN_X, h - 13.5 * _MM)
            self.line(_MARGIN_X, 12.5 * _MM, w - _MARGIN_X, 12.5 * _MM)
            self.drawString(_MARGIN_X, 8.5 * _MM, f"Generated {generated}")
            self.drawRightString(w - _MARGIN_X, 8.5 * _MM, f"page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


def _doc_template(buf: io.BytesIO, title: str, author: str, subject: str):
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate

    class _Doc(SimpleDocTemplate):
        def afterFlowable(self, flowable):  # noqa: N802 (reportlab API)
            outline = getattr(flowable, "_outline", None)
            if outline:
                text, level, key = outline
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(text, key, level=level, closed=level > 0)

    return _Doc(buf, pagesize=A4, leftMargin=_MARGIN_X, rightMargin=_MARGIN_X, topMargin=_MARGIN_TOP,
                bottomMargin=_MARGIN_BOTTOM, title=title, author=author, subject=subject,
                creator=f"Forensic Workbench engine {__version__} (engine.report)")


# ============================================================================ figures
_FIG_RC = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "font.family": "DejaVu Sans", "axes.linewidth": 0.6,
}


def _new_figure(width_mm: float, height_mm: float):
    """A matplotlib Figure at its printed size, with its own Agg canvas (no pyplot, no backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _figure_image(fig, width_mm: float, height_mm: float, dpi: int = 200) -> Any:
    """Render ``fig`` to PNG in memory and wrap it as a reportlab Image of the given printed size."""
    from reportlab.platypus import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    return Image(buf, width=width_mm * _MM, height=height_mm * _MM)


def _rc():
    import matplotlib

    return matplotlib.rc_context(_FIG_RC)


_DET_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _timeline_figure(view) -> Any | None:
    """Per-detector frame scores over time (x = s), thresholds dashed; None when nothing was scored."""
    series = [(d, view.scores(d)) for d in view.detector_ids]
    series = [(d, s) for d, s in series if len(s.score)]
    if not series:
        return None
    w, h = 174, 62
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_subplot(111)
        for k, (det, s) in enumerate(series):
            c = _DET_COLOURS[k % len(_DET_COLOURS)]
            ax.plot(s.pts, s.score, "-o", color=c, lw=1.2, ms=3, label=det)
            if s.threshold is not None:
                ax.axhline(float(s.threshold), color=c, ls="--", lw=0.9)
        ax.set_ylim(-0.02, 1.02)
        dur = view.doc.get("evidence", {}).get("duration_s")
        xmax = max(float(dur or 0), max(float(s.pts.max()) for _, s in series))
        ax.set_xlim(0, xmax if xmax > 0 else 1)
        ax.set_xlabel("time (s)")
        tasks = {str(view.detector(d).get("task")) for d, _ in series}
        ax.set_ylabel("frame score (P(fake))" if tasks <= {"deepfake"} else
                      "frame score" if "deepfake" not in tasks else "frame score (P(fake) / P(class))")
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout(pad=0.4)
        return _figure_image(fig, w, h)


def _plot_figure(plot: dict[str, Any], colour: str) -> Any:
    """One ``DetectorResult.plots`` entry as a figure (x/y labels from the plot, marker dashed red)."""
    w, h = 150, 52
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_subplot(111)
        x = np.asarray(plot["x"], dtype=np.float64)
        styles = [(colour, "-"), ("#333333", "--"), ("#7f7f7f", ":")]
        for k, (label, y) in enumerate(plot["series"].items()):
            c, ls = styles[k % len(styles)]
            ax.plot(x, np.asarray(y, dtype=np.float64), color=c, ls=ls, lw=1.3, marker="o", ms=2.5, label=label)
        if plot.get("marker_x") is not None:
            ax.axvline(float(plot["marker_x"]), color="#C62828", ls="--", lw=1.0,
                       label=f"measured {float(plot['marker_x']):g}")
        ax.set_xlabel(plot.get("x_label", ""))
        ax.set_ylabel(plot.get("y_label", ""))
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(frameon=False, loc="best")
        fig.tight_layout(pad=0.4)
        return _figure_image(fig, w, h)


def _references_figure(entry: dict[str, Any], thumbs: dict[str, np.ndarray]) -> Any | None:
    """Nearest reference faces of each class (two rows: real, self-blended fake) with their distances."""
    rows = [(cls, entry.get(cls) or []) for cls in ("real", "fake")]
    n = max(len(r) for _, r in rows)
    if n == 0:
        return None
    w, h = 22.0 * n + 24, 50
    with _rc():
        fig = _new_figure(w, h)
        for r, (cls, refs) in enumerate(rows):
            for c, (ref_id, dist) in enumerate(refs):
                ax = fig.add_subplot(2, n, r * n + c + 1)
                img = thumbs.get(str(ref_id))
                if img is not None:
                    ax.imshow(np.asarray(img, dtype=np.uint8))
                ax.set_title(f"{float(dist):.2f}", fontsize=6, pad=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel("real" if cls == "real" else "fake", fontsize=7)
        fig.tight_layout(pad=0.3)
        return _figure_image(fig, w, h)


def _spectrogram_figure(view) -> Any | None:
    """The display spectrogram (x = s, y = Hz, colour = dB); None when the file has no audio."""
    spec = view.spectrogram()
    if spec is None:
        return None
    db, times, freqs = spec
    if db.size == 0 or len(times) == 0:
        return None
    w, h = 174, 55
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_subplot(111)
        finite = db[np.isfinite(db)]
        vmin = float(np.percentile(finite, 2)) if finite.size else None
        im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin,
                       extent=[float(times[0]), float(times[-1]), float(freqs[0]), float(freqs[-1])])
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
        cb = fig.colorbar(im, ax=ax, pad=0.01, fraction=0.04)
        cb.set_label("level (dB)")
        fig.tight_layout(pad=0.4)
        return _figure_image(fig, w, h)


def _spectrum_figure(curves: dict[str, np.ndarray], frame_index: int, score: float) -> Any:
    """A frame's azimuthal spectrum against the class means (x = frequency bin, low -> high)."""
    w, h = 120, 58
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_subplot(111)
        styles = {"class_mean/real": ("#2ca02c", "--"), "class_mean/fake": ("#d62728", "--")}
        for key, y in curves.items():
            if key == "frame":
                continue
            c, ls = styles.get(key, ("#7f7f7f", ":"))
            ax.plot(np.arange(len(y)), y, color=c, ls=ls, lw=1.0, label=key.replace("class_mean/", "mean of class "))
        if "frame" in curves:
            ax.plot(np.arange(len(curves["frame"])), curves["frame"], color="#1f77b4", lw=1.3,
                    label=f"frame {frame_index} (score {score:.3f})")
        ax.set_xlabel("spatial frequency bin (low → high)")
        ax.set_ylabel("normalised log power")
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(frameon=False)
        fig.tight_layout(pad=0.4)
        return _figure_image(fig, w, h)


def _face_window(box: Sequence[float] | None, frame_hw: tuple[int, int],
                 heat: np.ndarray | None) -> tuple[int, int, int, int]:
    """Square window ``(x0, y0, x1, y1)`` in frame pixels around the face (1.7 x the box), inside the frame."""
    H, W = frame_hw
    if box is None and heat is not None and np.isfinite(heat).any():
        ys, xs = np.nonzero(np.isfinite(heat))
        box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    if box is None:
        return 0, 0, W, H
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = min(max(x2 - x1, y2 - y1) * 1.7, W, H)
    x0 = int(round(min(max(cx - side / 2, 0), W - side)))
    y0 = int(round(min(max(cy - side / 2, 0), H - side)))
    s = int(round(side))
    return x0, y0, min(x0 + s, W), min(y0 + s, H)


def _face_panel(rgb: np.ndarray, heat: np.ndarray | None, box: Sequence[float] | None, size_mm: float) -> Any:
    """The face region of a frame with the heatmap (jet, alpha 0.45, NaN transparent) and the face box."""
    import matplotlib
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = _face_window(box, rgb.shape[:2], heat)
    with _rc():
        fig = _new_figure(size_mm, size_mm)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.imshow(rgb[y0:y1, x0:x1], extent=[x0, x1, y1, y0], interpolation="bilinear")
        if heat is not None and heat.ndim == 2 and heat.shape == rgb.shape[:2]:
            cmap = matplotlib.colormaps["jet"].with_extremes(bad=(0, 0, 0, 0))
            ax.imshow(np.ma.masked_invalid(heat[y0:y1, x0:x1]), cmap=cmap, alpha=0.45, vmin=0.0, vmax=1.0,
                      extent=[x0, x1, y1, y0], interpolation="bilinear")
        if box is not None:
            bx1, by1, bx2, by2 = (float(v) for v in box)
            ax.add_patch(Rectangle((bx1, by1), bx2 - bx1, by2 - by1, fill=False, ec="white", lw=1.2))
            ax.add_patch(Rectangle((bx1, by1), bx2 - bx1, by2 - by1, fill=False, ec="black", lw=0.4, ls="--"))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.axis("off")
        return _figure_image(fig, size_mm, size_mm, dpi=220)


def _colour_legend(view_name: str) -> Any:
    """A small horizontal colour bar for the overlay (0 = low, 1 = high)."""
    import matplotlib
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize

    w, h = 70, 13
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_axes([0.05, 0.62, 0.9, 0.3])
        cb = ColorbarBase(ax, cmap=matplotlib.colormaps["jet"], norm=Normalize(0, 1), orientation="horizontal")
        cb.set_ticks([0, 0.5, 1])
        cb.ax.tick_params(labelsize=7, length=2, pad=1)
        cb.set_label(f"{view_name}: low → high (overlay at 45 % opacity)", fontsize=7, labelpad=1)
        return _figure_image(fig, w, h)


def _camera_table(rankings: Sequence[Any], styles: _Styles) -> Any:
    """Top-5 classes per column (modality or fusion rule): rank rows x ranking columns, 174 mm wide.

    A column without a prediction shows its status and reason across its rows.
    """
    head = ["Rank"] + [f"{_esc(r.title)}" for r in rankings]
    rows = [head]
    extra = []
    for i in range(5):
        row = [str(i + 1)]
        for c, r in enumerate(rankings, 1):
            if r.ok:
                if i < len(r.top):
                    name, p = r.top[i]
                    p_text = "&lt;0.001" if 0 < p < 0.0005 else f"{p:.3f}"
                    row.append(f"<b>{_esc(name)}</b> {p_text}" if i == 0 else f"{_esc(name)} {p_text}")
                else:
                    row.append("")
            else:
                row.append(f"<i>{_esc(r.status)}</i>: {_esc(r.message)}" if i == 0 else "")
                if i == 0:
                    extra.append(("SPAN", (c, 1), (c, 5)))
        rows.append(row)
    width = (174 - 12) / max(len(rankings), 1)
    return _table(rows, [12] + [width] * len(rankings), styles, extra=extra)


def _logmel_gradcam_figure(view, cam) -> tuple[Any, float]:
    """The log-mel Grad-CAM over the display spectrogram (x = s, y = Hz); returns ``(image, top Hz drawn)``.

    The map is put on the spectrogram's axes by :meth:`engine.results.LogMelMap.on_linear_grid`
    (the GUI pane uses the same call), coloured jet with opacity ``0.75 * value``.
    """
    import matplotlib
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize

    spec = view.spectrogram()
    w, h = 174, 62
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_axes([0.1, 0.17, 0.77, 0.74])
        f_max = None
        t_end = cam.duration_s
        if spec is not None and spec[0].size:
            db, times, freqs = spec
            hop = float(times[1] - times[0]) if len(times) > 1 else 0.01
            t0 = float(times[0]) - hop / 2
            finite = db[np.isfinite(db)]
            vmin = float(np.percentile(finite, 2)) if finite.size else None
            ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, interpolation="nearest",
                      extent=[t0, t0 + hop * db.shape[1], 0.0, float(freqs[-1])])
            f_max = float(freqs[-1])
            t_end = max(t_end, t0 + hop * db.shape[1])
        else:
            ax.set_facecolor("#202020")
        grid = cam.on_linear_grid(f_max_hz=f_max)
        top = f_max if f_max is not None else float(cam.row_high_hz[-1])
        if grid is not None:
            rgba = matplotlib.colormaps["jet"](grid.image)
            rgba[..., 3] = 0.75 * grid.image
            ax.imshow(rgba, origin="lower", aspect="auto", extent=list(grid.extent), interpolation="nearest")
            top = grid.extent[3]
        dur = float(view.doc.get("evidence", {}).get("duration_s") or 0.0)
        ax.set_xlim(0.0, max(dur, t_end))
        ax.set_ylim(0.0, f_max if f_max is not None else top)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
        ax.set_title(cam.caption, fontsize=8, loc="left")
        cax = fig.add_axes([0.89, 0.17, 0.018, 0.74])
        cb = ColorbarBase(cax, cmap=matplotlib.colormaps["jet"], norm=Normalize(0, 1))
        cb.set_ticks([0, 0.5, 1])
        cb.ax.tick_params(labelsize=7, length=2, pad=1)
        cb.set_label("Grad-CAM (low → high)", fontsize=7)
        return _figure_image(fig, w, h), top


def _frame_overlay_figure(rgb: np.ndarray, heat: np.ndarray | None, box: Sequence[float] | None,
                          max_w_mm: float, max_h_mm: float) -> Any:
    """A whole frame with a heatmap (jet, 45 %, NaN transparent) and a box, aspect ratio kept."""
    import matplotlib
    from matplotlib.patches import Rectangle

    H, W = rgb.shape[:2]
    scale = min(max_w_mm / W, max_h_mm / H)
    w, h = W * scale, H * scale
    with _rc():
        fig = _new_figure(w, h)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.imshow(rgb, extent=[0, W, H, 0], interpolation="bilinear")
        if heat is not None and heat.shape == (H, W):
            cmap = matplotlib.colormaps["jet"].with_extremes(bad=(0, 0, 0, 0))
            ax.imshow(np.ma.masked_invalid(heat), cmap=cmap, alpha=0.45, vmin=0.0, vmax=1.0, extent=[0, W, H, 0],
                      interpolation="bilinear")
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1.2))
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.axis("off")
        return _figure_image(fig, w, h, dpi=200)


# ============================================================================ detector facts
def _detector_description(det_id: str) -> str:
    """First paragraph of the detector module's docstring, plain text (or a note when not installed)."""
    from . import pipeline

    try:
        pipeline._load_detector_modules()
    except Exception:  # a broken detector module must not stop the report
        pass
    factory = pipeline._REGISTRY.get(det_id)
    module = inspect.getmodule(factory) if factory is not None else None
    doc = inspect.cleandoc(module.__doc__) if module is not None and module.__doc__ else ""
    if not doc:
        return f"{det_id} is not installed in this engine: no description available."
    return _strip_rst(doc.split("\n\n")[0])


def _model_cards(det_id: str, results: Sequence[Any]) -> list[Any]:
    """Installed model cards of the weights a detector used (:class:`engine.results.CardInfo` list).

    One card for a detector with weights of its own; for one that combines other models
    (camera.fusion: ``camera.audio`` + ``camera.image``, read from the results'
    ``weights_used``) one card per combined model. ``used_sha256`` is left None: the
    weights check compares every result's hashes itself.
    """
    from .results import installed_cards

    ids: list[str] = []
    for v in results:
        if det_id in v.detector_ids:
            ids += [w for w in v.weights_used(det_id) if w not in ids]
    return installed_cards({w: None for w in ids or [det_id]})


def _param_text(value: Any, limit: int = 160) -> str:
    """A detector parameter for the Methods table, long lists and dicts summarised (full values: the result JSON)."""
    text = str(value)
    if len(text) <= limit:
        return text
    if isinstance(value, (list, tuple)):
        return f"({len(value)} values; see the result JSON)"
    if isinstance(value, dict):
        return f"{{{', '.join(str(k) for k in value)}}} (see the result JSON)"
    return text[:limit] + "…"


def _detector_ids(results: Sequence[Any]) -> list[str]:
    seen: list[str] = []
    for v in results:
        for d in v.detector_ids:
            if d not in seen:
                seen.append(d)
    return seen


def _n_detectors(n: int) -> str:
    return f"{n} detector" if n == 1 else f"{n} detectors"


def _is_flagged(v: dict[str, Any]) -> bool:
    if v.get("label") is not None:
        return str(v["label"]).lower() == "fake"
    return v.get("threshold") is not None and float(v["score"]) > float(v["threshold"])


def verdict_lines(view) -> list[tuple[str, str]]:
    """Plain-text verdict per task of one result: ``[(task, text), ...]``.

    Deepfake: "manipulation suspected by N of M detectors (ids)" or "no manipulation found by
    M detectors"; other tasks: "detector: label (score 0.xxx)". Detectors that produced no score
    are listed as "not scored".
    """
    by_task: dict[str, list[dict[str, Any]]] = {}
    for v in view.verdicts():
        by_task.setdefault(v.get("task") or "unknown", []).append(v)
    lines = []
    for task, vs in by_task.items():
        ok = [v for v in vs if v.get("status") == "ok" and v.get("score") is not None]
        if task == "deepfake":
            flagged = [v for v in ok if _is_flagged(v)]
            if not ok:
                text = "no detector produced a score"
            elif flagged:
                text = (f"manipulation suspected by {len(flagged)} of {_n_detectors(len(ok))} "
                        f"({', '.join(v['detector_id'] for v in flagged)})")
            else:
                text = f"no manipulation found by {_n_detectors(len(ok))}"
            comb = view.combined() if hasattr(view, "combined") else None
            if comb and comb.get("score") is not None and len(ok) > 1:
                text = (f"combined P(fake) {float(comb['score']):.3f}: {comb['label']} "
                        f"({comb['description']}); {text}")
        else:
            text = "; ".join(f"{v['detector_id']}: {v.get('label')} (score {float(v['score']):.3f})" for v in ok)
            text = text or "no detector produced a score"
        skipped = [v for v in vs if not (v.get("status") == "ok" and v.get("score") is not None)]
        if skipped:
            text += "; not scored: " + ", ".join(f"{v['detector_id']} ({v.get('message') or v.get('status')})"
                                                 for v in skipped)
        lines.append((task, text))
    return lines


# ============================================================================ sections
class _Builder:
    """Collects the flowables of one report."""

    def __init__(self, results, case, failures, options: ReportOptions, command, integrity, generated: str):
        self.results = list(results)
        self.case = case
        self.failures = [_failure_row(f) for f in failures]
        self.options = options
        self.command = command
        self.integrity = integrity
        self.generated = generated
        self.s = _Styles()
        self.story: list[Any] = []
        self.cards: dict[str, list[Any]] = {d: _model_cards(d, self.results) for d in _detector_ids(self.results)}

    # ------------------------------------------------------------------ helpers
    def add(self, *flowables: Any) -> None:
        self.story.extend(flowables)

    def para(self, text: str, style=None) -> None:
        self.add(_p(text, style or self.s.body))

    def section(self, key: str) -> None:
        from reportlab.platypus import CondPageBreak

        self.add(CondPageBreak(60 * _MM), _heading(SECTION_TITLES[key], self.s.h1, 0, key))

    def _case_attr(self, name: str, default: Any = None) -> Any:
        return getattr(self.case, name, default) if self.case is not None else default

    def _name_for_sha(self, sha: str | None) -> str:
        if not sha:
            return "case-wide"
        for v in self.results:
            if v.doc.get("evidence", {}).get("sha256") == sha:
                return _evidence_name(v)
        finder = getattr(self.case, "evidence_by_sha", None)
        item = finder(sha) if callable(finder) else None
        if item is not None:
            return Path(getattr(item, "path", "") or sha).name
        return f"SHA-256 {sha[:16]}…"

    # ------------------------------------------------------------------ cover
    def cover(self) -> None:
        from reportlab.lib import colors
        from reportlab.platypus import PageBreak, Spacer, Table, TableStyle

        s = self.s
        self.add(Spacer(1, 18 * _MM), _p(_esc(self.options.title), s.title))
        tools = {f"{v.doc.get('tool', {}).get('name', '?')} (engine {v.doc.get('tool', {}).get('engine_version', '?')})"
                 for v in self.results}
        case_id = self._case_attr("case_id")
        pairs = [
            ("Case", f"{self._case_attr('name') or '—'} (id {case_id})" if case_id else "no case"),
            ("Analyst", self._case_attr("analyst") or "—"),
            ("Case created", _utc_label(self._case_attr("created")) if self.case is not None else "—"),
            ("Report date", self.generated),
            ("Analysis tool", ", ".join(sorted(tools)) or "—"),
            ("Report generator", f"Forensic Workbench engine {__version__} (engine.report)"),
            ("Evidence files", f"{len(self.results)} analysed"
             + (f", {len(self.failures)} could not be analysed" if self.failures else "")),
        ]
        self.add(_kv_table(pairs, s, key_mm=40))
        problems = [r for r in self.integrity if not r["ok"]]
        if problems:
            lines = "<br/>".join(f"{_esc(r['name'])}: {r['status']} — {_esc(r['message'])}" for r in problems)
            box = Table([[_p(f"⚠ {INTEGRITY_WARNING}", s.warn)],
                         [_p("The following evidence files no longer match the SHA-256 recorded when they were "
                             "analysed. Results below may not describe the files as they are now; establish "
                             "the chain of custody before relying on this report.<br/>" + lines, s.warn_body)]],
                        colWidths=[174 * _MM])
            box.setStyle(TableStyle([
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#C62828")),
                ("BOX", (0, 0), (-1, -1), 2, colors.HexColor("#7F0000")),
                ("LEFTPADDING", (0, 0), (-1, -1), 8), ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]))
            self.add(Spacer(1, 8 * _MM), box)
        elif self.integrity:
            n = len(self.integrity)
            what = "the evidence file re-hashed" if n == 1 else f"all {n} evidence files re-hashed"
            agree = "matches" if n == 1 else "match"
            self.add(Spacer(1, 4 * _MM),
                     _p(f"Evidence integrity: {what} when this report was generated {agree} the SHA-256 recorded "
                        "at intake (details in the Evidence section).", s.body))
        if self.results:
            self.add(Spacer(1, 6 * _MM), _p("Summary of findings", s.h3))
            rows = [["Evidence", "Verdict"]]
            for n, v in enumerate(self.results, 1):
                verdicts = "<br/>".join(f"<b>{_esc(t.capitalize())}:</b> {_esc(txt)}" for t, txt in verdict_lines(v))
                rows.append([_p(f"R{n}. {_esc(_evidence_name(v))}", s.cell), _p(verdicts or "no detector run", s.cell)])
            self.add(_table(rows, [64, 110], s))
        self.add(Spacer(1, 6 * _MM),
                 _p("Scores are evidence for the analyst's judgement, not decisions; read the Limitations "
                    "section and each model card before relying on them.", s.small))
        sig = _table([["Analyst signature", "", "Date", ""]], [36, 80, 16, 42], s, header=False, zebra=False,
                     extra=[("TOPPADDING", (0, 0), (-1, -1), 14)])
        self.add(Spacer(1, 14 * _MM), sig, PageBreak())

    # ------------------------------------------------------------------ evidence
    def evidence(self) -> None:
        s = self.s
        self.section("evidence")
        for n, v in enumerate(self.results, 1):
            ev = v.doc.get("evidence", {})
            self.add(_heading(f"E{n}. {_evidence_name(v)}", s.h2, 1))
            self.add(_kv_table(self._evidence_pairs(ev), s))
        if not self.results:
            self.para("No evidence was analysed.")
        self.add(_heading("Evidence integrity", s.h2, 1, "integrity"))
        self.para("Each evidence file was re-hashed (SHA-256) when this report was generated and compared with the "
                  "hash taken at intake, before the analysis. The hash taken again after the analysis is shown "
                  "where it was recorded.", s.small)
        rows = [["File", "Expected (intake)", "After analysis", "Now", "Status"]]
        for n, r in enumerate(self.integrity, 1):
            status = r["status"]
            colour = "#1B7F3A" if r["ok"] else "#C62828"
            rows.append([_p(f"E{n}. {_esc(r['name'])}", s.cell), _hex(r["expected"], s.mono, 16), _hex(r["at_end"], s.mono, 16),
                         _hex(r["now"], s.mono, 16), _p(f"<font color='{colour}'><b>{status}</b></font>", s.cell)])
        self.add(_table(rows, [38, 33, 33, 33, 37], s))

    def _evidence_pairs(self, ev: dict[str, Any]) -> list[tuple[str, Any]]:
        s = self.s
        pairs: list[tuple[str, Any]] = [
            ("File name", Path(ev.get("path") or "?").name),
            ("Path", _p(_esc(ev.get("path")), s.mono)),
            ("Size", f"{int(ev['size_bytes']):,} bytes" if ev.get("size_bytes") is not None else "—"),
            ("SHA-256 (intake)", _hex(ev.get("sha256"), s.mono, 64)),
            ("Container", f"{ev.get('container') or '—'} ({ev.get('container_long') or '—'})"),
            ("Duration", f"{format_timestamp(ev.get('duration_s'))} "
                         f"({_fmt_num(ev.get('duration_s'), '{:.3f}', ' s')})"),
            ("Bit rate", _fmt_num(ev.get("bit_rate"), "{:,.0f}", " bit/s")),
            ("Creation time (tags)", ev.get("creation_time") or "—"),
        ]
        videos = ev.get("video") or []
        if not videos:
            pairs.append(("Video", "no video stream"))
        for k, vs in enumerate(videos):
            tag = "Video" if len(videos) == 1 else f"Video #{k}"
            fps = [f"average {_fmt_num(vs.get('avg_fps'), '{:.3f}')}",
                   f"base {_fmt_num(vs.get('real_fps'), '{:.3f}')}",
                   f"measured {_fmt_num(vs.get('measured_fps'), '{:.3f}')} frames/s"]
            if vs.get("vfr"):
                fps.append("variable frame rate")
            pairs += [
                (f"{tag} codec", f"{vs.get('codec')} ({vs.get('codec_long')}), profile {vs.get('profile') or '—'}, "
                                 f"pixel format {vs.get('pix_fmt') or '—'}"),
                (f"{tag} resolution", f"{vs.get('width')}×{vs.get('height')} px coded; "
                                      f"{vs.get('display_width')}×{vs.get('display_height')} px displayed"),
                (f"{tag} frame rate", ", ".join(fps)),
                (f"{tag} frames", f"{vs.get('frame_count')} indexed"
                                  + (f" ({vs.get('frame_count_declared')} declared)"
                                     if vs.get("frame_count_declared") is not None else "")),
                (f"{tag} duration", f"{format_timestamp(vs.get('duration_s'))}"),
                (f"{tag} rotation", f"{vs.get('rotation', 0)}° (display matrix, counter-clockwise)"),
            ]
        audios = ev.get("audio") or []
        if not audios:
            pairs.append(("Audio", "no audio stream"))
        for k, a in enumerate(audios):
            tag = "Audio" if len(audios) == 1 else f"Audio #{k}"
            channels = f"{a.get('channels')} channel{'' if a.get('channels') == 1 else 's'}"
            pairs.append((tag, f"{a.get('codec')} ({a.get('codec_long')}), {a.get('sample_rate')} Hz, "
                               f"{channels} ({a.get('layout') or '—'}), "
                               f"duration {format_timestamp(a.get('duration_s'))}, "
                               f"{_fmt_num(a.get('bit_rate'), '{:,.0f}', ' bit/s')}"))
        dev = ev.get("device") or {}
        pairs.append(("Device", dev.get("summary") or "no device tags"))
        if dev.get("encoder"):
            pairs.append(("Encoder", dev["encoder"]))
        if dev.get("location"):
            pairs.append(("Location tag", dev["location"]))
        tags = dev.get("tags") or {}
        if tags:
            pairs.append(("Device / encoder tags",
                          _p("<br/>".join(f"{_esc(k)} = {_esc(v)}" for k, v in sorted(tags.items())), s.cell)))
        warnings = ev.get("warnings") or []
        if warnings:
            pairs.append(("Probe warnings", _p("<br/>".join(_esc(w) for w in warnings), s.cell)))
        return pairs

    # ------------------------------------------------------------------ methods
    def methods(self) -> None:
        s = self.s
        self.section("methods")
        det_ids = _detector_ids(self.results)
        if not det_ids:
            self.para("No detector was run.")
        self.para("All detectors read one shared, frame-accurate decode of each evidence file (PTS-indexed, "
                  "display rotation applied) and one shared face detection; scores are P(fake) for deepfake "
                  "detectors and the top-class probability for camera-model detectors.", s.small)
        for det in det_ids:
            cards = self.cards[det]
            rows = [v.detector(det) for v in self.results if det in v.detector_ids]
            self.add(_heading(det, s.h2, 1))
            pairs: list[tuple[str, Any]] = [("What it does", _detector_description(det))]
            pairs.append(("Task", ", ".join(sorted({str(r.get("task")) for r in rows}))))
            combined = not (len(cards) == 1 and cards[0].weights_id == det)
            if combined:
                pairs.append(("Weights", f"none of its own: combines the outputs of "
                                         f"{', '.join(c.weights_id for c in cards)} (their model cards below)"))
            for info in cards:
                card, tag = info.card, (f" ({info.weights_id})" if combined else "")
                used = sorted({h for v in self.results if det in v.detector_ids
                               for w, h in v.weights_used(det).items() if w == info.weights_id and h})
                if card is None:
                    pairs.append((f"Model card{tag}", f"not available: {info.reason}"))
                    continue
                pairs.append((f"Paper{tag}", card.paper or "—"))
                pairs.append((f"Model card{tag}" if combined else "Weights", _p(
                    f"model card {_esc(card.card_id)}, architecture {_esc(card.architecture)}, "
                    f"initialisation {_esc(card.init)}", s.cell)))
                pairs.append((f"Training data{tag}", card.training_data or "—"))
                if card.metrics:
                    metrics = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in card.metrics.items())
                    pairs.append((f"Held-out metrics{tag}", f"{metrics} — measured on {card.evaluation or '—'}"))
                differing = [h for h in used if h != card.sha256]
                if differing:
                    pairs.append((f"Weights check{tag}", _p(
                        "<font color='#C62828'><b>The installed model card's SHA-256 differs from the weights used "
                        "for the analysis</b></font>: card " + _esc(card.sha256) + "; analysis "
                        + _esc(", ".join(differing)) + ". Training data and limitations shown here describe the "
                        "installed weights, not necessarily those that produced the scores.", s.cell)))
                elif used:
                    pairs.append((f"Weights check{tag}", "the installed model card's SHA-256 equals the weights used"))
            pairs.append(("Frame sampling", self._sampling_text()))
            aggs = sorted({str(r.get("aggregation")) for r in rows if r.get("aggregation")})
            pairs.append(("Aggregation", "; ".join(aggs) or "—"))
            thr = sorted({r.get("threshold") for r in rows if r.get("threshold") is not None})
            pairs.append(("Threshold", ", ".join(f"{t:g}" for t in thr) + " (decision: score above threshold)"
                          if thr else "—"))
            params = rows[0].get("parameters") if rows else None
            if params:
                pairs.append(("Parameters", _p(_esc("; ".join(f"{k} = {_param_text(v)}" for k, v in params.items())),
                                               s.cell)))
            self.add(_kv_table(pairs, s, key_mm=32))
        combined = [c for c in (v.combined() for v in self.results) if c]
        if combined:
            self.add(_heading("Combined deepfake verdict", s.h2, 1))
            rules = sorted({c["description"] for c in combined})
            self.para("Late fusion of every deepfake detector that produced a video score: "
                      + "; ".join(_esc(r) for r in rules) + ". Each detector's own decision is reported next to it. "
                      "The scores of different detectors are not calibrated against each other, so the combined "
                      "score is a summary for the analyst, not a probability of manipulation.", s.body)

    def _sampling_text(self) -> str:
        parts = []
        for v in self.results:
            samp = v.doc.get("sampling", {})
            args = ", ".join(f"{k}={val}" for k, val in samp.items() if k not in ("policy", "frames"))
            parts.append(f"{_evidence_name(v)}: {samp.get('policy', '?')}({args}), "
                         f"{len(samp.get('frames', []))} frames decoded")
        return "; ".join(parts) or "—"

    # ------------------------------------------------------------------ results
    def results_section(self) -> None:
        from reportlab.platypus import PageBreak

        s = self.s
        self.section("results")
        if not self.results:
            self.para("No evidence was analysed.")
        for n, v in enumerate(self.results, 1):
            if n > 1:
                self.add(PageBreak())
            self._one_result(n, v)
        if self.failures:
            self.add(_heading("Files not analysed", s.h2, 1, "failures"))
            rows = [["File", "Reason"]]
            for path, reason in self.failures:
                rows.append([_p(_esc(path), s.mono), _p(_esc(reason), s.cell)])
            self.add(_table(rows, [74, 100], s))

    def _one_result(self, n: int, v) -> None:
        from reportlab.platypus import KeepTogether

        s = self.s
        ev = v.doc.get("evidence", {})
        self.add(_heading(f"R{n}. {_evidence_name(v)}", s.h2, 1))
        self.para(f"SHA-256 {_esc(ev.get('sha256'))}; analysed {_esc(_utc_label(v.doc.get('started')))} on "
                  f"{_esc(v.doc.get('device'))}.", s.small)
        status = self.integrity[n - 1] if n - 1 < len(self.integrity) else None  # same order as results
        if status is not None and not status["ok"]:
            self.para(f"<font color='#C62828'><b>Evidence integrity: {status['status']}</b></font> — "
                      f"{_esc(status['message'])}.")
        self.add(_p("Verdict", s.h3))
        for task, text in verdict_lines(v):
            self.para(f"<b>{_esc(task.capitalize())}:</b> {_esc(text)}")
        rows = [["Detector", "Status", "Video score", "Threshold", "Decision", "Frames scored", "Message"]]
        for d in v.verdicts():
            det = v.detector(d["detector_id"])
            rows.append([_esc(d["detector_id"]), _esc(d.get("status")), _fmt_score(d.get("score")),
                         "—" if d.get("threshold") is None else f"{float(d['threshold']):g}",
                         _esc(d.get("label")) if d.get("status") == "ok" else "—",
                         str(len(det.get("frame_scores", []))), _esc(d.get("message"))])
        self.add(_table(rows, [32, 14, 18, 18, 16, 16, 60], s))
        warnings = v.doc.get("warnings") or []
        if warnings:
            self.para("<b>Analysis warnings:</b> " + "; ".join(_esc(w) for w in warnings), s.small)

        fig = _timeline_figure(v)
        if fig is not None:
            self.add(KeepTogether([_p("Score timeline", s.h3), fig,
                                   _p("Frame scores of each detector at the sampled frames; dashed lines: the "
                                      "detector's decision threshold.", s.caption)]))
        spec = _spectrogram_figure(v)
        self.add(KeepTogether([_p("Audio spectrogram", s.h3)] + (
            [spec, _p("Display spectrogram of the first audio stream (time in s, frequency in Hz).", s.caption)]
            if spec is not None else [_p("No audio spectrogram: the file has no usable audio.", s.body)])))
        self._frames(v)
        self._spectra(v)
        self._explanation_plots(v)
        if v.camera_summary() is not None:
            where = ("the section Camera-model identification" if "camera" in self.options.sections else
                     "the section Camera-model identification (not included in this report)")
            self.para(f"Camera-model probabilities, their fusion, explanations and caveats: see {where}.", s.small)

    def _frames(self, v) -> None:
        """Most suspicious (or chosen) frames per detector with a map explanation, face crop + overlay."""
        from reportlab.platypus import KeepTogether, Table, TableStyle

        s = self.s
        # camera-model maps are shown in the camera section (whole frame, not a face window)
        dets = [d for d in v.detector_ids if v.explanation_views(d) and v.detector(d).get("frame_scores")
                and v.detector(d).get("task") != "camera"]
        if not dets:
            return
        ev = v.doc.get("evidence", {})
        sha = ev.get("sha256", "")
        chosen = (self.options.frames or {}).get(sha)
        path = Path(ev.get("path") or "")
        reader, problem = None, ""
        if not path.is_file():
            problem = f"The evidence file is not available at {path}: frames cannot be shown."
        else:
            try:
                from .media import VideoReader

                reader = VideoReader(path)
            except Exception as exc:  # EvidenceError and anything FFmpeg raises
                problem = f"The evidence file cannot be decoded ({exc}): frames cannot be shown."
        try:
            for det in dets:
                views = v.explanation_views(det)
                view_name = self.options.heatmap_view if self.options.heatmap_view in views else views[0]
                if chosen is not None:
                    title = f"Selected frames — {det}"
                    targets = [(int(i), None, None) for i in chosen]
                else:
                    title = f"Most suspicious frames — {det}"
                    targets = v.most_suspicious(det, self.options.top_k)
                if not targets:
                    continue
                head = [_p(_esc(title), s.h3)]
                if problem:
                    self.add(KeepTogether(head + [_p(_esc(problem), s.body)]))
                    continue
                panels, captions = [], []
                for frame_index, _pts, _score in targets:
                    img, cap = self._frame_panel(reader, v, det, view_name, frame_index)
                    panels.append(img)
                    captions.append(cap)
                cols = 4
                rows = []
                for i in range(0, len(panels), cols):
                    rows.append(panels[i:i + cols] + [""] * (cols - len(panels[i:i + cols])))
                    rows.append(captions[i:i + cols] + [""] * (cols - len(captions[i:i + cols])))
                grid = Table(rows, colWidths=[43.5 * _MM] * cols, hAlign="LEFT")
                grid.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                          ("LEFTPADDING", (0, 0), (-1, -1), 1), ("RIGHTPADDING", (0, 0), (-1, -1), 1),
                                          ("TOPPADDING", (0, 0), (-1, -1), 1),
                                          ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
                note = _p(f"Face region of each frame with the {_esc(view_name)} map of {_esc(det)} (jet colour map, "
                          "45 % opacity; no colour outside the region the detector looked at) and the face box "
                          "(white). Scores are the detector's P(fake) on that frame.", s.small)
                self.add(KeepTogether(head + [grid, note, _colour_legend(view_name)]))
        finally:
            if reader is not None:
                reader.close()

    def _frame_panel(self, reader, v, det: str, view_name: str, frame_index: int) -> tuple[Any, Any]:
        s = self.s
        try:
            frame = reader.frame(int(frame_index))
        except Exception as exc:  # out of range, or the frame no longer decodes
            return _p(f"frame {frame_index} cannot be decoded", s.caption), _p(_esc(exc), s.caption)
        hm = v.heatmap_at(det, view_name, frame.pts, frame.rgb.shape[:2])
        box = hm.box if hm is not None else None
        if box is None:
            faces = v.faces_at(frame.pts)
            box = faces[0].box if faces else None
        img = _face_panel(frame.rgb, hm.heatmap if hm is not None else None, box, 42.0)
        cap = f"frame {frame.index} · {format_timestamp(frame.pts)}"
        if hm is not None:
            cap += f"<br/>score {hm.score:.3f}"
            if hm.frame_index != frame.index:
                cap += f" (map and score of sampled frame {hm.frame_index})"
        else:
            cap += "<br/>no map for this frame"
        return img, _p(cap, s.caption)

    def _spectra(self, v) -> None:
        from reportlab.platypus import KeepTogether

        s = self.s
        for det in v.detector_ids:
            top = v.most_suspicious(det, 1)
            if not top:
                continue
            frame_index, pts, score = top[0]
            curves = v.spectrum_curves(det, pts)
            if "frame" not in curves:
                continue
            fig = _spectrum_figure(curves, frame_index, score)
            self.add(KeepTogether([
                _p(f"Face spectrum — {_esc(det)}", s.h3), fig,
                _p(f"Azimuthally averaged FFT spectrum of the face crop of the most suspicious frame "
                   f"({frame_index}, {format_timestamp(pts)}) against the mean spectrum of each training class.",
                   s.caption)]))

    def _explanation_plots(self, v) -> None:
        """Each detector's explanation plots (A/V offset curve, temporal saliency …), its A/V sync
        figures and the nearest reference faces of its most suspicious frame."""
        from reportlab.platypus import KeepTogether

        s = self.s
        for k, det in enumerate(v.detector_ids):
            d = v.detector(det)
            if d.get("status") != "ok":
                continue
            colour = _DET_COLOURS[k % len(_DET_COLOURS)]
            for name, plot in v.plots(det).items():
                where = "over time (s)" if plot.get("kind") == "timeline" else ""
                cap = f"{_esc(plot.get('note') or '')}"
                title = name[:1].upper() + name[1:]
                self.add(KeepTogether([_p(f"{_esc(title)} — {_esc(det)} {where}".strip(), s.h3),
                                       _plot_figure(plot, colour), _p(cap, s.caption)]))
            details = v.details(det)
            sync = details.get("av_sync")
            if sync:
                if sync.get("has_audio", True) and sync.get("offset_frames") is not None:
                    text = (f"A/V offset measured by SyncNet: {int(sync['offset_frames']):+d} video frames "
                            f"({float(sync.get('offset_ms', 40 * sync['offset_frames'])):+.0f} ms), confidence "
                            f"{float(sync.get('confidence', float('nan'))):.2f}.")
                else:
                    text = "No audio: the A/V offset could not be measured (latency features are zeros, as in the seed)."
                self.para(f"<b>{_esc(det)}:</b> {_esc(text)}", s.small)
            refs = details.get("nearest_references") or {}
            if refs.get("frames"):
                top = v.most_suspicious(det, 1)
                target = top[0][0] if top else refs["frames"][0]["frame_index"]
                entry = min(refs["frames"], key=lambda f: abs(int(f["frame_index"]) - int(target)))
                ids = {str(r[0]) for cls in ("real", "fake") for r in entry.get(cls) or []}
                thumbs = {i: v.arrays[f"{det}/refs/{i}"] for i in ids if f"{det}/refs/{i}" in v.arrays}
                fig = _references_figure(entry, thumbs)
                if fig is not None:
                    self.add(KeepTogether([
                        _p(f"Nearest reference faces — {_esc(det)}", s.h3), fig,
                        _p(f"The {refs.get('k', len(entry.get('real') or []))} training faces of each class whose "
                           f"embeddings lie nearest to the face of frame {int(entry['frame_index'])} "
                           f"({format_timestamp(float(entry['pts']))}); numbers are squared L2 distances in the "
                           "triplet network's 64-d space. Top row: real faces; bottom row: self-blended fakes.",
                           s.caption)]))

    # ------------------------------------------------------------------ camera model
    def camera_section(self) -> None:
        """Camera-model identification per evidence; nothing at all when no result has a camera detector."""
        from reportlab.platypus import CondPageBreak

        s = self.s
        todo = [(n, v, v.camera_summary(5)) for n, v in enumerate(self.results, 1)]
        todo = [(n, v, cs) for n, v, cs in todo if cs is not None and cs.rankings]
        if not todo:
            return
        self.section("camera")
        self.para("The audio model (camera.audio) classifies the 3-resolution log-mel of the audio track, the image "
                  "model (camera.image) 256×256 centre crops of the sampled frames (its video probability is the "
                  "mean of the frames' probabilities); camera.fusion combines both by the product rule "
                  "(renormalised product, its decision) and the sum rule (mean). Probabilities are over the "
                  "classes the models were trained on: a camera model outside them is still assigned to one of "
                  "them. They are evidence for the analyst's judgement, not an identification.", s.small)
        for k, (n, v, cs) in enumerate(todo):
            if k:
                self.add(CondPageBreak(120 * _MM))
            self.add(_heading(f"C{n}. {_evidence_name(v)}", s.h2, 1))
            self._camera_one(v, cs)

    def _camera_one(self, v, cs) -> None:
        from reportlab.platypus import KeepTogether

        s = self.s
        for i in range(0, len(cs.rankings), 4):
            self.add(_camera_table(cs.rankings[i:i + 4], s))
        prod, summ = cs.ranking("product"), cs.ranking("sum")
        if prod is not None and prod.ok and summ is not None and summ.ok:
            agree = ("<font color='#1B7F3A'><b>the two rules agree</b></font>" if cs.rules_agree else
                     "<font color='#C62828'><b>the two rules disagree</b></font>")
            self.para(f"<b>Fused decision:</b> product rule {_esc(prod.label)} (p {_fmt_score(prod.score)}), sum rule "
                      f"{_esc(summ.label)} (p {_fmt_score(summ.score)}); {agree}.")
        elif prod is not None:
            self.para(f"<b>Fused decision:</b> none — {_esc(prod.message or prod.status)}.")
        if cs.fusion_message:
            self.para(f"<font color='#B26A00'><b>Fallback:</b></font> {_esc(cs.fusion_message)}.")
        if cs.gradcam_targets:
            self.para("Grad-CAM explains the predicted class of each model: " + "; ".join(
                f"{_esc(d)} → {_esc(c)}" for d, c in cs.gradcam_targets.items()) + ".", s.small)
        self._camera_limitations(cs)
        cam = v.logmel_gradcam()
        if cam is not None:
            fig, f_top = _logmel_gradcam_figure(v, cam)
            self.add(KeepTogether([_p("Audio Grad-CAM over the spectrogram", s.h3), fig, _p(
                f"{_esc(cam.caption)}: jet colours whose opacity grows with the map value (transparent at 0), over "
                f"the display spectrogram (magma, dB). The {len(cam.row_center_hz)} mel bands "
                f"({cam.row_low_hz[0]:.0f}–{cam.row_high_hz[-1]:.0f} Hz) are placed at their centre frequencies, "
                f"the {cam.heatmap.shape[1]} columns over the {cam.duration_s:.3f} s of audio "
                f"({cam.column_s * 1000:.2f} ms each, from the first audio sample); drawn up to {f_top:.0f} Hz, "
                "where the spectrogram ends.", s.caption)]))
        self._camera_frame(v)

    def _camera_limitations(self, cs) -> None:
        """The camera cards' limitations verbatim, each text once with the cards stating it."""
        from reportlab.platypus import Paragraph

        from .results import card_limitations, installed_cards

        s = self.s
        said, problems = card_limitations(installed_cards(cs.weights))
        self.add(_p("Model card limitations (verbatim)", s.h3))
        for text, ids in said:
            self.add(Paragraph(f"{_esc(text)} <i>({_esc(', '.join(ids))})</i>", s.bullet, bulletText="•"))
        for note in problems:
            self.para(f"<font color='#C62828'>{_esc(note)}.</font>", s.small)

    def _camera_frame(self, v) -> None:
        """Grad-CAM of camera.image on the frame where the video's top class is most probable."""
        from reportlab.platypus import KeepTogether

        s = self.s
        det = "camera.image"
        if det not in v.detector_ids or not v.detector(det).get("frame_scores") or not v.explanation_views(det):
            return
        view_name = v.explanation_views(det)[0]
        frame_index, pts, score = v.most_suspicious(det, 1)[0]
        head = _p(f"Image Grad-CAM — {_esc(det)}", s.h3)
        path = Path(v.doc.get("evidence", {}).get("path") or "")
        try:
            from .media import VideoReader

            reader = VideoReader(path)
        except Exception as exc:  # missing or undecodable evidence: say so, keep the report
            self.add(KeepTogether([head, _p(f"The evidence file cannot be read ({_esc(exc)}): the frame cannot be "
                                            "shown.", s.body)]))
            return
        try:
            frame = reader.frame(int(frame_index))
        except Exception as exc:
            self.add(KeepTogether([head, _p(f"Frame {frame_index} cannot be decoded ({_esc(exc)}).", s.body)]))
            return
        finally:
            reader.close()
        hm = v.heatmap_at(det, view_name, frame.pts, frame.rgb.shape[:2])
        target = (v.detector(det).get("parameters") or {}).get("gradcam_target") or v.detector(det).get("label")
        img = _frame_overlay_figure(frame.rgb, hm.heatmap if hm is not None else None,
                                    hm.box if hm is not None else None, 120.0, 80.0)
        cap = (f"Frame {frame.index} ({format_timestamp(frame.pts)}), the sampled frame where {_esc(target)} is most "
               f"probable (p {score:.3f} on this frame). {_esc(view_name)} of {_esc(det)} for class {_esc(target)} "
               "on the 256×256 centre crop the model classified (white box), jet colours at 45 % opacity.")
        self.add(KeepTogether([head, img, _p(cap, s.caption), _colour_legend(view_name)]))

    # ------------------------------------------------------------------ bookmarks and notes
    def bookmarks(self) -> None:
        s = self.s
        self.section("bookmarks")
        if self.case is None:
            self.para("No case file was given: there are no bookmarks or analyst notes.")
            return
        marks = list(self._case_attr("bookmarks", []) or [])
        self.add(_heading("Bookmarks", s.h2, 1))
        if marks:
            rows = [["Evidence", "Time", "Frame", "Status", "Comment", "Created"]]
            for b in sorted(marks, key=lambda b: (str(getattr(b, "evidence_sha256", "")),
                                                  float(getattr(b, "time_s", 0) or 0))):
                st = str(getattr(b, "status", ""))
                label = _STATUS_LABELS.get(st, st)
                colour = {"ok": "#1B7F3A", "to_check": "#B26A00", "warning": "#C62828"}.get(st, "#000000")
                rows.append([_esc(self._name_for_sha(getattr(b, "evidence_sha256", None))),
                             format_timestamp(getattr(b, "time_s", None)), str(getattr(b, "frame_index", "—")),
                             f"<font color='{colour}'><b>{_esc(label)}</b></font>",
                             _esc(getattr(b, "comment", "")), _esc(_utc_label(getattr(b, "created", None)))])
            self.add(_table(rows, [36, 22, 13, 17, 54, 32], s))
        else:
            self.para("No bookmarks.")
        notes = list(self._case_attr("notes", []) or [])
        self.add(_heading("Analyst notes", s.h2, 1))
        if notes:
            rows = [["Created", "Evidence", "Note"]]
            for nt in notes:
                text = _esc(getattr(nt, "text", "")).replace("\n", "<br/>")
                rows.append([_esc(_utc_label(getattr(nt, "created", None))),
                             _esc(self._name_for_sha(getattr(nt, "evidence_sha256", None))), text])
            self.add(_table(rows, [32, 40, 102], s))
        else:
            self.para("No notes.")

    # ------------------------------------------------------------------ limitations
    def limitations(self) -> None:
        s = self.s
        self.section("limitations")
        self.para(_esc(_GENERAL_LIMITATIONS))
        for det in _detector_ids(self.results):
            self.add(_heading(det, s.h2, 1))
            cards = self.cards[det]
            if not (len(cards) == 1 and cards[0].weights_id == det):
                self.para(f"{_esc(det)} has no weights of its own; the limitations of the models it combines "
                          f"({_esc(', '.join(c.weights_id for c in cards))}) apply:", s.small)
            for info in cards:
                self._card_limitations(info)

    def _card_limitations(self, info) -> None:
        """"Verbatim from the model card X:" and its limitations as bullets (or why there is no card)."""
        card = info.card
        if card is None:
            self.para(f"No model card available for {_esc(info.weights_id)} ({_esc(info.reason)}).")
            return
        self.para(f"Verbatim from the model card {_esc(card.card_id)}:", self.s.small)
        for item in card.limitations or ["(the model card lists no limitations)"]:
            self.add(self._bullet(item))

    def _bullet(self, text: str) -> Any:
        from reportlab.platypus import Paragraph

        return Paragraph(_esc(text), self.s.bullet, bulletText="•")

    # ------------------------------------------------------------------ reproducibility
    def reproducibility(self) -> None:
        s = self.s
        self.section("reproducibility")
        self.add(_p("Command to re-run the analysis", s.h3))
        for cmd in self._commands():
            self.add(_p(_esc(cmd), s.code))
        self.add(_p("Software", s.h3))
        versions = _package_versions()
        cells = [[f"<b>{_esc(k)}</b>", _esc(val)] for k, val in versions]
        half = (len(cells) + 1) // 2
        rows = [["Package", "Version", "Package", "Version"]]
        for i in range(half):
            right = cells[half + i] if half + i < len(cells) else ["", ""]
            rows.append(cells[i] + right)
        self.add(_table(rows, [52, 35, 52, 35], s))
        self.para("Versions of the environment that generated this report; the analysis environment of each "
                  "result is listed below.", s.small)
        self.add(_p("Weights", s.h3))
        rows = [["Detector", "Model card", "Weights SHA-256 used"]]
        for det in _detector_ids(self.results):
            used = sorted({str(v.detector(det).get("weights_sha256") or "—") for v in self.results
                           if det in v.detector_ids})
            ids = sorted({str(v.detector(det).get("model_card_id") or "—") for v in self.results
                          if det in v.detector_ids})
            rows.append([_esc(det), _esc(", ".join(ids)), _p("<br/>".join(
                "<br/>".join(_xml_escape(h[i:i + 32]) for i in range(0, len(h), 32)) for h in used), s.mono)])
        self.add(_table(rows, [40, 56, 78], s))
        self.add(_p("Analyses", s.h3))
        rows = [["Evidence", "Engine", "Device", "Started", "Finished", "Environment"]]
        for v in self.results:
            env = v.doc.get("environment", {}) or {}
            tool = v.doc.get("tool", {}) or {}
            rows.append([_esc(_evidence_name(v)), _esc(f"{tool.get('name', '?')} {tool.get('engine_version', '?')}"),
                         _esc(v.doc.get("device")), _esc(_utc_label(v.doc.get("started"))),
                         _esc(_utc_label(v.doc.get("finished"))),
                         _esc(f"Python {env.get('python', '?')}, {env.get('platform', '?')}")])
        self.add(_table(rows, [34, 32, 15, 24, 24, 45], s))
        self.para(f"Report generated {_esc(self.generated)} by engine.report (Forensic Workbench engine "
                  f"{__version__}).", s.small)
        audit = list(self._case_attr("audit", []) or [])
        if audit:
            self.add(_heading("Case audit log", s.h2, 1, "audit"))
            check = self._case_attr("check_audit_chain")
            audit_ok = self._case_attr("audit_ok")
            try:
                broken = check() if callable(check) else (None if audit_ok else -1)
            except Exception:  # a damaged log must not stop the report
                broken = -1
            if not callable(check) and audit_ok is None:
                self.para("Hash chain of the audit log: not verified (the case offers no check).", s.small)
            elif broken is None:
                self.para(f"Hash chain of the audit log ({len(audit)} entries): verified when this report was "
                          "generated.", s.small)
            else:
                where = f" at entry {broken}" if broken >= 0 else ""
                self.para(f"Hash chain of the audit log: <font color='#C62828'><b>BROKEN</b></font>{where} — "
                          "entries were edited or removed after they were written.", s.small)
            rows = [["Time", "Action", "Details"]]
            for a in audit:
                details = getattr(a, "details", {}) or {}
                text = ("\n".join(f"{k} = {v}" for k, v in details.items()) if isinstance(details, dict)
                        else str(details))
                rows.append([_esc(_utc_label(getattr(a, "timestamp", None))), _esc(getattr(a, "action", "")),
                             _p(_esc(text).replace("\n", "<br/>"), s.mono)])
            self.add(_table(rows, [32, 32, 110], s))

    def _commands(self) -> list[str]:
        if self.command:
            if isinstance(self.command, (list, tuple)):
                return [shlex.join(str(c) for c in self.command)]
            return [str(self.command)]
        groups: dict[tuple, list[str]] = {}
        for v in self.results:
            dets = ",".join(v.detector_ids) or "none"
            frames = len(v.doc.get("sampling", {}).get("frames", []))
            device = str(v.doc.get("device") or "auto")
            groups.setdefault((dets, frames, device), []).append(str(v.doc.get("evidence", {}).get("path") or "?"))
        out = []
        for (dets, frames, device), paths in groups.items():
            out.append(shlex.join(["forensic-analyze", *paths, "--json", "analysis.json", "--detectors", dets,
                                   "--frames", str(frames), "--device", device]))
        return out or ["(no analysis to re-run)"]


def _package_versions() -> list[tuple[str, str]]:
    """``[(name, version)]``: Python, the engine, core libraries, then every declared dependency installed."""
    out = [("Python", platform.python_version())]
    names = ["forensic-workbench", "torch", "torchvision", "av", "numpy", "reportlab", "matplotlib"]
    try:
        for req in _md.requires("forensic-workbench") or []:
            if "extra ==" in req:
                continue
            name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip()
            if name and name not in names:
                names.append(name)
    except _md.PackageNotFoundError:
        pass
    for name in names:
        try:
            out.append((name, _md.version(name)))
        except _md.PackageNotFoundError:
            if name == "forensic-workbench":
                out.append((name, f"{__version__} (source checkout)"))
    return out


# ============================================================================ entry point
def build_report(
    out_path: str | os.PathLike,
    results: Sequence[Any],
    case: Any = None,
    failures: Iterable[Any] = (),
    options: ReportOptions = ReportOptions(),
    command: str | Sequence[str] | None = None,
) -> Path:
    """Write the PDF report of saved analyses.

    Args:
        out_path: the PDF to write (written atomically: built in memory, then a same-folder
            temp file renamed over it).
        results: :class:`engine.results.ResultView` per analysed evidence file, in report order.
        case: an :class:`engine.case.Case` (case id, name, analyst, bookmarks, notes, audit log)
            or None; read through attributes only.
        failures: files that could not be analysed: ``(path, reason)`` pairs or
            ``forensic-analyze`` ``failed`` entries (dicts with ``path`` and ``message``).
        options: sections, top-k frames, explicit frames, heatmap view, title (:class:`ReportOptions`).
        command: the exact command line to re-run the analysis (string or argv list); None = a
            ``forensic-analyze`` command rebuilt from the results (detectors, frame count, device).

    Returns:
        The path written.

    Raises:
        ValueError: ``out_path`` lies in the folder of an evidence file (evidence folders are
            read-only), an unknown section is asked for, or ``options.top_k`` is negative.
        OSError: the destination cannot be written (nothing is left half-written).

    Every evidence file is re-hashed first (:func:`verify_results`); problems are reported in the
    document (cover box, integrity table), never raised.
    """
    out_path = Path(out_path).expanduser()
    results = list(results)
    failures = list(failures)
    unknown = [sct for sct in options.sections if sct not in ALL_SECTIONS]
    if unknown:
        raise ValueError(f"unknown report sections {unknown}; known: {', '.join(ALL_SECTIONS)}")
    if options.top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {options.top_k}")
    _check_destination(out_path, results, failures)

    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    integrity = verify_results(results)
    b = _Builder(results, case, failures, options, command, integrity, generated)
    b.cover()
    wanted = set(options.sections)
    for key, fn in (("evidence", b.evidence), ("methods", b.methods), ("results", b.results_section),
                    ("camera", b.camera_section), ("bookmarks", b.bookmarks), ("limitations", b.limitations),
                    ("reproducibility", b.reproducibility)):
        if key in wanted:
            fn()

    case_id = getattr(case, "case_id", None) if case is not None else None
    case_label = f"Case {case_id}" if case_id else "no case"
    buf = io.BytesIO()
    doc = _doc_template(buf, options.title, str(getattr(case, "analyst", "") or ""), case_label)
    doc.build(b.story, canvasmaker=_canvas_class(options.title, case_label, generated, b.s.fonts))
    return atomic_write_bytes(out_path, buf.getvalue())


# ============================================================================ command line
def main(argv: Sequence[str] | None = None) -> int:
    """``forensic-report``: build the PDF report from saved results (and a case file).

    Usage::

        forensic-report RESULT.json [RESULT.json ...] --out report.pdf [--case case.json]
                        [--sections evidence,methods,...] [--top-k 4] [--frames-json F] [--command STR]

    ``--frames-json`` holds ``{sha256: [frame_index, ...]}`` (frames to show instead
    of the top-k). The case file is opened read-only: its evidence is re-hashed
    (shown in the report) but nothing is written back. The GUI runs this in a
    separate process so a report never blocks or endangers the analyst's window.

    Returns:
        0 on success, 2 on unreadable input (the message names the file).
    """
    import argparse
    import json
    import sys

    from .case import Case, CaseError
    from .results import ResultFormatError, ResultView

    ap = argparse.ArgumentParser(prog="forensic-report", description="Build the PDF report of saved analyses.")
    ap.add_argument("results", nargs="+", type=Path, help="result JSON files (AnalysisResult.save)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--case", type=Path)
    ap.add_argument("--sections", default=",".join(ALL_SECTIONS))
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--frames-json", type=Path)
    ap.add_argument("--command", default=None, help="the command that re-runs the analysis (reproducibility)")
    args = ap.parse_args(argv)
    try:
        views = [ResultView.load(p) for p in args.results]
        # build_report re-hashes every analysed file itself; the case's own checks would hash them again
        case = Case.load(args.case, verify=False) if args.case else None
        frames = json.loads(args.frames_json.read_text()) if args.frames_json else None
        options = ReportOptions(sections=tuple(s for s in args.sections.split(",") if s), top_k=args.top_k,
                                frames=frames)
        out = build_report(args.out, views, case=case, options=options, command=args.command)
    except (ResultFormatError, CaseError, ValueError, OSError) as exc:
        print(f"forensic-report: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
