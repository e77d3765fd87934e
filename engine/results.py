"""Reading a saved analysis: one Qt-free view over ``<name>.json`` + ``<name>.npz``.

The GUI panes and the report need the same questions answered about an
:class:`engine.pipeline.AnalysisResult` written to disk: which frames were
sampled, where the faces are at time *t*, each detector's score timeline, the
explanation map of the sampled frame nearest to *t* placed on the frame, the
most suspicious frames, the camera-model rankings (:meth:`ResultView.camera_summary`)
and where the audio Grad-CAM lies over the spectrogram
(:meth:`ResultView.logmel_gradcam`, :meth:`LogMelMap.on_linear_grid`). :class:`ResultView`
answers them from the JSON and its npz sidecar (loaded without pickle) so that no
view code re-derives geometry or aggregation.

Times are seconds from the first video frame (``Frame.pts``); frame indices are
positions in presentation order (``VideoReader``); boxes are
``[x1, y1, x2, y2]`` in displayed-frame pixels.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .faces.crops import place_heatmap
from .io import load_npz

__all__ = ["ResultView", "FaceAt", "HeatmapAt", "ScoreSeries", "ResultFormatError", "CameraRanking", "CameraSummary",
           "CardInfo", "LinearGrid", "LogMelMap", "card_limitations", "installed_cards"]

#: Task of the camera-model identification detectors.
CAMERA_TASK = "camera"
#: The seed-1 detectors (engine.detectors.camera) and the columns they fill in :class:`CameraSummary`.
CAMERA_AUDIO, CAMERA_IMAGE, CAMERA_FUSION = "camera.audio", "camera.image", "camera.fusion"


class ResultFormatError(ValueError):
    """A result file is unreadable or not an analysis result (message names the file)."""


@dataclass(frozen=True)
class FaceAt:
    """A face box of one track on the sampled frame nearest to the asked time.

    Attributes:
        track_id: face track id. box: ``[x1, y1, x2, y2]`` frame pixels (smoothed).
        frame_index, pts: the sampled frame the box comes from (index, seconds).
    """

    track_id: int
    box: list[float]
    frame_index: int
    pts: float


@dataclass(frozen=True)
class HeatmapAt:
    """An explanation map placed on the frame.

    Attributes:
        heatmap: ``float32 (H, W)`` in [0, 1], NaN outside the face crop.
        frame_index, pts: the sampled frame the map was computed on.
        score: the detector's frame score there. box: the face box (frame px).
        view: explanation name (e.g. ``"relevancy"``).
    """

    heatmap: np.ndarray
    frame_index: int
    pts: float
    score: float
    box: list[float] | None
    view: str


@dataclass(frozen=True)
class ScoreSeries:
    """One detector's per-frame scores.

    Attributes:
        pts: ``float64 (N,)`` seconds. frame_index: ``int64 (N,)``. score: ``float64 (N,)``.
        threshold: decision threshold or None. video_score: aggregated score or None.
    """

    pts: np.ndarray
    frame_index: np.ndarray
    score: np.ndarray
    threshold: float | None
    video_score: float | None


@dataclass(frozen=True)
class CameraRanking:
    """One column of the camera-model summary: a modality or a fusion rule.

    Attributes:
        key: ``"audio"``, ``"image"``, ``"product"``, ``"sum"``, or the detector id of
            any other camera-task detector.
        title: printed heading, e.g. ``"Audio (camera.audio)"``, ``"Fusion: product rule"``.
        detector_id: the detector whose result fills the column.
        status: the detector's status (``"ok"``, ``"skipped"``, ``"failed"``) or ``"not run"``.
        label: top class, or None without a prediction.
        score: its probability in [0, 1], or None.
        top: ``[(class, probability), ...]`` by decreasing probability (ties: class order),
            at most ``k`` entries; empty without a prediction.
        message: why there is no prediction, or the detector's note; ``""`` otherwise.
    """

    key: str
    title: str
    detector_id: str
    status: str
    label: str | None
    score: float | None
    top: list[tuple[str, float]]
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the column holds a prediction."""
        return bool(self.top)


@dataclass(frozen=True)
class CameraSummary:
    """Camera-model identification of one evidence file, as shown by the GUI panel and the report.

    Attributes:
        rankings: :class:`CameraRanking` columns: ``audio``, ``image``, ``product``, ``sum``
            (whenever any of camera.audio/image/fusion ran; ``status="not run"`` for the
            others), then every other camera-task detector with class probabilities.
        rules_agree: product and sum rules name the same class (None: camera.fusion did not fuse).
        fallback: the only modality the fusion used (``"audio"``/``"image"``), or None.
        fusion_message: camera.fusion's message (names the missing modality and why), or ``""``.
        weights: weights id -> SHA-256 used, of every camera detector (:meth:`ResultView.weights_used`).
        gradcam_targets: detector id -> class its Grad-CAM explains (``parameters["gradcam_target"]``).
    """

    rankings: list[CameraRanking]
    rules_agree: bool | None
    fallback: str | None
    fusion_message: str
    weights: dict[str, str | None]
    gradcam_targets: dict[str, str]

    def ranking(self, key: str) -> CameraRanking | None:
        """The column named ``key`` (``"audio"``, ``"image"``, ``"product"``, ``"sum"``, ...) or None."""
        return next((r for r in self.rankings if r.key == key), None)


@dataclass(frozen=True)
class LinearGrid:
    """A map resampled onto a regular time x linear-frequency grid.

    Attributes:
        image: ``float32 (R, C)`` in [0, 1]; row 0 is the lowest frequency, column 0 the earliest time.
        extent: ``(t0_s, t1_s, f0_hz, f1_hz)``: row ``r`` covers
            ``[f0 + r * df, f0 + (r + 1) * df)`` Hz with ``df = (f1 - f0) / R``, column ``c`` covers
            ``[t0 + c * dt, t0 + (c + 1) * dt)`` s with ``dt = (t1 - t0) / C`` (matplotlib
            ``imshow(origin="lower", extent=(t0, t1, f0, f1))``, a Qt rect ``(t0, f0, t1 - t0, f1 - f0)``).
    """

    image: np.ndarray
    extent: tuple[float, float, float, float]


@dataclass(frozen=True)
class LogMelMap:
    """An explanation map over the §1.4 log-mel of the audio, with its axes.

    Attributes:
        heatmap: ``float32 (R, C)`` in [0, 1] (R = 128 mel bands, C = 1500 columns); row 0 is the
            lowest band.
        row_low_hz, row_center_hz, row_high_hz: ``float64 (R,)`` edges and peak of each HTK mel
            band (Hz, increasing).
        duration_s: seconds of audio the C columns are stretched over; column ``j`` covers
            ``[j, j + 1) * duration_s / C`` s from the first decoded audio sample (the origin of
            the display spectrogram's ``times_s``).
        detector_id: the detector that computed it (``"camera.audio"``).
        view: explanation name (``"Grad-CAM"``).
        target: the class explained (the predicted class), or None when not recorded.
    """

    heatmap: np.ndarray
    row_low_hz: np.ndarray
    row_center_hz: np.ndarray
    row_high_hz: np.ndarray
    duration_s: float
    detector_id: str
    view: str
    target: str | None

    @property
    def column_s(self) -> float:
        """Seconds per column (``duration_s / C``)."""
        return self.duration_s / self.heatmap.shape[1]

    @property
    def caption(self) -> str:
        """Legend text: ``"Grad-CAM (camera.audio, predicted class X)"``."""
        return f"{self.view} ({self.detector_id}, predicted class {self.target or '?'})"

    def row_at_hz(self, f_hz: float | np.ndarray) -> np.ndarray:
        """Fractional mel row of frequencies (Hz): ``i`` at ``row_center_hz[i]``, linear in Hz between centres.

        Below the first centre (down to ``row_low_hz[0]``) the value is 0, above the last one
        (up to ``row_high_hz[-1]``) it is ``R - 1``; outside the mel range it is NaN.

        Returns:
            ``float64`` array shaped like ``f_hz``.
        """
        f = np.asarray(f_hz, dtype=np.float64)
        rows = np.interp(f, self.row_center_hz, np.arange(len(self.row_center_hz), dtype=np.float64))
        return np.where((f >= self.row_low_hz[0]) & (f <= self.row_high_hz[-1]), rows, np.nan)

    def column_at_s(self, t_s: float | np.ndarray) -> np.ndarray:
        """Column index (int64) holding time ``t_s`` (seconds from the first audio sample); -1 outside the audio."""
        t = np.asarray(t_s, dtype=np.float64)
        c = np.floor(t / self.column_s).astype(np.int64)
        return np.where((t >= 0) & (c < self.heatmap.shape[1]), c, -1)

    def on_linear_grid(self, f_max_hz: float | None = None, t_max_s: float | None = None,
                       n_rows: int = 512) -> LinearGrid | None:
        """The map on a linear-Hz grid over ``[row_low_hz[0], min(f_max_hz, row_high_hz[-1])]``.

        The one mapping of the log-mel map onto a spectrogram's axes (GUI pane and report):
        each output row takes the value at its centre frequency, linearly interpolated between
        the two mel bands whose centres surround it (:meth:`row_at_hz`); columns stay the log-mel
        columns, spanning ``[0, duration_s]`` seconds.

        Args:
            f_max_hz: highest frequency of the target axis (e.g. the display spectrogram's
                Nyquist, 8000 Hz); the map is drawn only where both overlap. None = the mel range.
            t_max_s: drop the columns starting at or after this time (the pane's duration);
                None keeps all.
            n_rows: output rows (frequency resolution ``(f1 - f0) / n_rows`` Hz).

        Returns:
            :class:`LinearGrid`, or None when the ranges do not overlap.
        """
        f0 = float(self.row_low_hz[0])
        f1 = float(self.row_high_hz[-1]) if f_max_hz is None else min(float(f_max_hz), float(self.row_high_hz[-1]))
        n_cols = self.heatmap.shape[1]
        if t_max_s is not None:
            n_cols = min(n_cols, int(np.ceil(float(t_max_s) / self.column_s - 1e-9)))
        if f1 <= f0 or n_cols <= 0 or n_rows <= 0:
            return None
        centres = f0 + (np.arange(n_rows) + 0.5) * (f1 - f0) / n_rows
        rows = self.row_at_hz(centres)
        lo = np.clip(np.floor(rows).astype(np.int64), 0, self.heatmap.shape[0] - 1)
        hi = np.minimum(lo + 1, self.heatmap.shape[0] - 1)
        a = (rows - lo)[:, None].astype(np.float32)
        hm = self.heatmap[:, :n_cols]
        image = (1.0 - a) * hm[lo] + a * hm[hi]
        return LinearGrid(np.clip(image, 0.0, 1.0).astype(np.float32),
                          (0.0, n_cols * self.column_s, f0, f1))


@dataclass(frozen=True)
class CardInfo:
    """The installed model card of one weights id, checked against the weights a result used.

    Attributes:
        weights_id: model folder name (``"camera.audio"``).
        card: the :class:`engine.weights.ModelCard`, or None when none is installed / readable.
        reason: why ``card`` is None (``""`` otherwise).
        used_sha256: SHA-256 of the weights the result was computed with, or None when unknown.
    """

    weights_id: str
    card: Any
    reason: str = ""
    used_sha256: str | None = None

    @property
    def stale(self) -> bool:
        """The installed card describes other weights than those the result used."""
        return self.card is not None and self.used_sha256 is not None and self.card.sha256 != self.used_sha256


def installed_cards(weights_used: dict[str, str | None]) -> list[CardInfo]:
    """Look up the installed card of each weights id (:func:`engine.weights.find_model_dir`).

    Args:
        weights_used: weights id -> SHA-256 the result used (None: unknown), e.g.
            :meth:`ResultView.weights_used`.

    Returns:
        One :class:`CardInfo` per id, in order; a missing or unreadable card gives
        ``card=None`` with the reason (never raises).
    """
    from .weights import WeightsError, find_model_dir, load_card

    out = []
    for wid, sha in weights_used.items():
        try:
            out.append(CardInfo(wid, load_card(find_model_dir(wid)), "", sha))
        except WeightsError as exc:
            out.append(CardInfo(wid, None, str(exc), sha))
    return out


def card_limitations(cards: list[CardInfo]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The limitations of several cards, each text once, and the problems with the cards.

    Args:
        cards: e.g. ``installed_cards(summary.weights)`` for the camera models.

    Returns:
        ``(limitations, problems)``: ``[(verbatim text, [card ids stating it]), ...]`` in card
        order, and plain-text problems (no card installed; card describing other weights than
        those the result used).
    """
    said: dict[str, list[str]] = {}
    problems = []
    for info in cards:
        if info.card is None:
            problems.append(f"no installed model card for {info.weights_id} ({info.reason})")
            continue
        if info.stale:
            problems.append(f"{info.weights_id}: the analysis used weights {info.used_sha256[:12]}, the installed "
                            f"card {info.card.card_id} describes other weights: re-run")
        for text in info.card.limitations or ["(the model card lists no limitations)"]:
            said.setdefault(text, []).append(info.card.card_id)
    return list(said.items()), problems


def _top_k(class_probs: dict[str, float] | None, k: int) -> list[tuple[str, float]]:
    items = list((class_probs or {}).items())
    order = sorted(range(len(items)), key=lambda i: (-float(items[i][1]), i))
    return [(str(items[i][0]), float(items[i][1])) for i in order[:k]]


class ResultView:
    """Read-only view of a saved analysis result.

    Args:
        doc: the result JSON as a dict (``AnalysisResult.to_dict``).
        arrays: the sidecar arrays (``AnalysisResult.all_arrays``); may be empty.
        path: where the JSON came from (for messages), or None.
    """

    def __init__(self, doc: dict[str, Any], arrays: dict[str, np.ndarray] | None = None, path: Path | None = None):
        if not isinstance(doc, dict) or "evidence" not in doc or "detectors" not in doc:
            raise ResultFormatError(f"{path or 'result'}: not an analysis result (no 'evidence'/'detectors')")
        self.doc, self.arrays, self.path = doc, arrays or {}, path
        self._frames = sorted((int(f["index"]), float(f["pts"])) for f in doc.get("sampling", {}).get("frames", []))
        self._frame_pts = [p for _, p in self._frames]
        self._detectors = {d["detector_id"]: d for d in doc["detectors"]}
        #: detectors that saved per-frame spectra (``<id>/spectrum/f<idx>``), found once, not per frame
        self.spectrum_detectors = [d for d in self._detectors
                                   if any(k.startswith(f"{d}/spectrum/") for k in self.arrays)]

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, json_path: str | Path) -> "ResultView":
        """Load ``<name>.json`` and its npz sidecar (``allow_pickle=False``).

        Raises:
            ResultFormatError: unreadable JSON, not a result, or a damaged sidecar.
        """
        json_path = Path(json_path)
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultFormatError(f"{json_path}: cannot read result JSON ({exc})") from exc
        arrays: dict[str, np.ndarray] = {}
        if isinstance(doc, dict) and doc.get("arrays_file"):
            try:
                arrays = load_npz(json_path.parent / doc["arrays_file"])
            except Exception as exc:  # zipfile / ValueError / OSError: a damaged sidecar
                raise ResultFormatError(f"{json_path}: cannot read arrays {doc['arrays_file']} ({exc})") from exc
        return cls(doc, arrays, json_path)

    @classmethod
    def from_result(cls, result) -> "ResultView":
        """View of an in-memory :class:`engine.pipeline.AnalysisResult`."""
        return cls(json.loads(json.dumps(result.to_dict(), default=str)), result.all_arrays())

    # ------------------------------------------------------------------ basics
    @property
    def sha256(self) -> str:
        """SHA-256 of the evidence at intake."""
        return self.doc["evidence"].get("sha256", "")

    @property
    def sampled_frames(self) -> list[tuple[int, float]]:
        """``[(frame_index, pts_s), ...]`` of the sampled frames in time order."""
        return list(self._frames)

    @property
    def detector_ids(self) -> list[str]:
        """Detectors in run order."""
        return list(self._detectors)

    def detector(self, detector_id: str) -> dict[str, Any]:
        """The detector's JSON entry. Raises KeyError: not in this result."""
        return self._detectors[detector_id]

    def nearest_sample(self, t: float) -> tuple[int, float] | None:
        """The sampled ``(frame_index, pts)`` nearest to ``t`` seconds, or None if none."""
        if not self._frames:
            return None
        i = bisect.bisect_left(self._frame_pts, t)
        cands = [j for j in (i - 1, i) if 0 <= j < len(self._frames)]
        return self._frames[min(cands, key=lambda j: abs(self._frame_pts[j] - t))]

    # ------------------------------------------------------------------ faces
    def faces_at(self, t: float, max_gap_s: float | None = None) -> list[FaceAt]:
        """Face boxes of every track on the sampled frame nearest to ``t`` (s).

        Args:
            t: time in seconds.
            max_gap_s: ignore tracks whose nearest entry is further than this from
                ``t``; default: half the median spacing of the sampled frames plus 50 %.
        """
        if max_gap_s is None:
            gaps = np.diff(self._frame_pts) if len(self._frame_pts) > 1 else np.array([1.0])
            max_gap_s = 0.75 * float(np.median(gaps)) + 1e-6
        out = []
        for tr in self.doc.get("faces", {}).get("tracks", []):
            entries = tr.get("entries", [])
            if not entries:
                continue
            e = min(entries, key=lambda e: abs(float(e["pts"]) - t))
            if abs(float(e["pts"]) - t) <= max_gap_s:
                out.append(FaceAt(int(tr["track_id"]), list(e.get("smoothed_box") or e["box"]),
                                  int(e["frame_index"]), float(e["pts"])))
        return out

    # ------------------------------------------------------------------ scores
    def scores(self, detector_id: str) -> ScoreSeries:
        """Per-frame scores of one detector in time order (empty arrays if it produced none)."""
        d = self._detectors[detector_id]
        fs = sorted(d.get("frame_scores", []), key=lambda s: s["pts"])
        return ScoreSeries(
            pts=np.array([s["pts"] for s in fs], dtype=np.float64),
            frame_index=np.array([s["frame_index"] for s in fs], dtype=np.int64),
            score=np.array([s["score"] for s in fs], dtype=np.float64),
            threshold=d.get("threshold"), video_score=d.get("score"),
        )

    def most_suspicious(self, detector_id: str, k: int | None = None) -> list[tuple[int, float, float]]:
        """``[(frame_index, pts, score), ...]`` by decreasing score (ties: earlier first)."""
        s = self.scores(detector_id)
        order = sorted(range(len(s.score)), key=lambda i: (-s.score[i], s.pts[i]))
        out = [(int(s.frame_index[i]), float(s.pts[i]), float(s.score[i])) for i in order]
        return out if k is None else out[:k]

    # ------------------------------------------------------------------ explanations
    def explanation_views(self, detector_id: str) -> list[str]:
        """Names of the map explanations of a detector (e.g. ``["relevancy", "Grad-CAM"]``)."""
        return list(self._detectors[detector_id].get("explanations", {}))

    def crop_heatmap(self, detector_id: str, view: str, frame_index: int) -> np.ndarray | None:
        """The raw crop-space map ``float32 (h, w)`` of one sampled frame, or None."""
        tmpl = self._detectors[detector_id].get("explanations", {}).get(view)
        if tmpl is None:
            return None
        a = self.arrays.get(f"{detector_id}/{tmpl.format(frame=frame_index)}")
        return None if a is None else np.asarray(a, dtype=np.float32)

    def heatmap_at(self, detector_id: str, view: str, t: float, frame_hw: tuple[int, int]) -> HeatmapAt | None:
        """The explanation map of the scored frame nearest to ``t`` s, placed on the frame.

        Between sampled frames the nearest sampled frame's map is returned; its
        ``frame_index``/``pts`` say which frame it came from.

        Args:
            detector_id, view: which detector and explanation (``explanation_views``).
            t: time in seconds. frame_hw: ``(H, W)`` of the displayed frame in pixels.

        Returns:
            :class:`HeatmapAt` or None (no scored frame, no map, no crop placement).
        """
        d = self._detectors.get(detector_id)
        if d is None or not d.get("frame_scores"):
            return None
        fs = min(d["frame_scores"], key=lambda s: abs(float(s["pts"]) - t))
        crop = fs.get("crop")
        hm = self.crop_heatmap(detector_id, view, int(fs["frame_index"]))
        if hm is None or not crop:
            return None
        placed = place_heatmap(hm, crop["region"], crop["content"], crop["size_hw"], frame_hw)
        return HeatmapAt(placed, int(fs["frame_index"]), float(fs["pts"]), float(fs["score"]), fs.get("box"), view)

    def spectrum_curves(self, detector_id: str, t: float) -> dict[str, np.ndarray]:
        """Curves explaining a spectrum detector at the scored frame nearest ``t``.

        Returns:
            ``{"frame": float32 (K,), "class_mean/<name>": float32 (K,), ...}``;
            empty when the detector saved no spectra.
        """
        d = self._detectors.get(detector_id)
        if d is None or not d.get("frame_scores"):
            return {}
        fs = min(d["frame_scores"], key=lambda s: abs(float(s["pts"]) - t))
        out = {}
        frame = self.arrays.get(f"{detector_id}/spectrum/f{fs['frame_index']}")
        if frame is not None:
            out["frame"] = np.asarray(frame, dtype=np.float32)
        prefix = f"{detector_id}/class_mean/"
        for k, v in self.arrays.items():
            if k.startswith(prefix):
                out[k[len(detector_id) + 1:]] = np.asarray(v, dtype=np.float32)
        return out

    # ------------------------------------------------------------------ audio
    def spectrogram(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(db float32 (F, T), times_s (T,), freqs_hz (F,))`` of the display spectrogram, or None."""
        db = self.arrays.get("display_spectrogram/db")
        if db is None:
            return None
        return (np.asarray(db, dtype=np.float32), np.asarray(self.arrays["display_spectrogram/times_s"]),
                np.asarray(self.arrays["display_spectrogram/freqs_hz"]))

    # ------------------------------------------------------------------ verdicts
    def verdicts(self) -> list[dict[str, Any]]:
        """One row per detector: id, task, status, label, score, threshold, message, card id."""
        return [
            {k: d.get(k) for k in ("detector_id", "task", "status", "label", "score", "threshold", "message",
                                   "model_card_id", "weights_sha256", "aggregation")}
            for d in self.doc["detectors"]
        ]

    def combined(self, rule: Any | None = None) -> dict[str, Any] | None:
        """The combined deepfake verdict (:func:`engine.fusion.combined_verdict`).

        Args:
            rule: a :class:`engine.fusion.FusionRule` to re-fuse with (the analyst changed
                the rule); None gives the verdict stored with the result, or the default
                rule's for results saved before fusion existed.

        Returns:
            The verdict dict, or None when the result has no deepfake detector.
        """
        from .fusion import FusionRule, combined_verdict

        dets = self.doc.get("detectors", [])
        if not any(d.get("task") == "deepfake" for d in dets):
            return None
        if rule is None and self.doc.get("combined"):
            return self.doc["combined"]
        return combined_verdict(dets, rule if rule is not None else FusionRule())

    def plots(self, detector_id: str, kind: str | None = None) -> dict[str, dict[str, Any]]:
        """A detector's explanation plots (``DetectorResult.plots``), optionally only one ``kind``.

        Raises:
            KeyError: the detector is not in this result.
        """
        plots = self._detectors[detector_id].get("plots") or {}
        return {k: p for k, p in plots.items() if kind is None or p.get("kind") == kind}

    def details(self, detector_id: str) -> dict[str, Any]:
        """A detector's extra explanation data (``DetectorResult.details``); ``{}`` when none.

        Raises:
            KeyError: the detector is not in this result.
        """
        return self._detectors[detector_id].get("details") or {}

    # ------------------------------------------------------------------ weights
    def weights_used(self, detector_id: str) -> dict[str, str | None]:
        """Weights id -> SHA-256 the detector's result was computed with.

        A detector with weights of its own gives ``{detector_id: weights_sha256}``; one that
        combines other models' weights (camera.fusion: ``weights_sha256`` None and
        ``parameters["weights"]`` a dict) gives that dict, e.g.
        ``{"camera.audio": sha, "camera.image": sha}``.

        Raises:
            KeyError: the detector is not in this result.
        """
        d = self._detectors[detector_id]
        combined = (d.get("parameters") or {}).get("weights")
        if not d.get("weights_sha256") and isinstance(combined, dict) and combined:
            return {str(k): (str(v) if v else None) for k, v in combined.items()}
        return {detector_id: d.get("weights_sha256")}

    def model_cards(self, detector_id: str) -> list[CardInfo]:
        """Installed cards of the weights the detector used (two for camera.fusion), see :func:`installed_cards`.

        Raises:
            KeyError: the detector is not in this result.
        """
        return installed_cards(self.weights_used(detector_id))

    # ------------------------------------------------------------------ camera model
    def camera_summary(self, k: int = 5) -> CameraSummary | None:
        """Top-``k`` camera-model classes per modality and per fusion rule, or None without camera results.

        Columns: ``audio`` (camera.audio ``class_probs``), ``image`` (camera.image),
        ``product`` / ``sum`` (camera.fusion ``parameters["product_rule"]`` /
        ``["sum_rule"]``), present whenever any of the three ran, then every other
        detector of task ``"camera"`` with ``class_probs``.

        Args:
            k: classes per column (>= 1).

        Raises:
            ValueError: ``k < 1``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        cams = {d: e for d, e in self._detectors.items() if e.get("task") == CAMERA_TASK}
        if not cams:
            return None
        rankings: list[CameraRanking] = []

        def column(key: str, title: str, det: str, rule: str | None = None) -> CameraRanking:
            e = cams.get(det)
            if e is None:
                return CameraRanking(key, title, det, "not run", None, None, [], f"{det} was not run")
            status, message = str(e.get("status") or "?"), str(e.get("message") or "")
            if rule is None:
                top = _top_k(e.get("class_probs"), k) if status == "ok" else []
                label, score = e.get("label"), e.get("score")
            else:
                r = ((e.get("parameters") or {}).get(rule) or {}) if status == "ok" else {}
                top = _top_k(r.get("class_probs"), k)
                label, score = r.get("label"), r.get("score")
            if not top:
                label = score = None
                message = message or f"{det}: no prediction ({status})"
            return CameraRanking(key, title, det, status, label, None if score is None else float(score), top,
                                 message)

        seed = (CAMERA_AUDIO, CAMERA_IMAGE, CAMERA_FUSION)
        if any(d in cams for d in seed):
            rankings += [column("audio", f"Audio ({CAMERA_AUDIO})", CAMERA_AUDIO),
                         column("image", f"Image ({CAMERA_IMAGE})", CAMERA_IMAGE),
                         column("product", "Fusion: product rule", CAMERA_FUSION, "product_rule"),
                         column("sum", "Fusion: sum rule", CAMERA_FUSION, "sum_rule")]
        for det, e in cams.items():
            if det not in seed and e.get("class_probs"):
                rankings.append(column(det, det, det))
        fusion = cams.get(CAMERA_FUSION) or {}
        fp = fusion.get("parameters") or {}
        fused = fusion.get("status") == "ok" and "rules_agree" in fp
        weights: dict[str, str | None] = {}
        targets = {}
        for det, e in cams.items():
            weights.update(self.weights_used(det))
            tgt = (e.get("parameters") or {}).get("gradcam_target")
            if tgt is not None:
                targets[det] = str(tgt)
        return CameraSummary(rankings, bool(fp["rules_agree"]) if fused else None,
                             fp.get("fallback") if fused else None,
                             str(fusion.get("message") or "") if fusion else "", weights, targets)

    def logmel_gradcam(self, detector_id: str = CAMERA_AUDIO) -> LogMelMap | None:
        """The detector's explanation map over the log-mel, with its axes, or None.

        Reads the array named by the detector's first explanation whose key has no
        ``{frame}`` (``explanations = {"Grad-CAM": "logmel_gradcam"}``) and the axes in
        ``parameters["logmel_gradcam_axes"]`` (:func:`engine.detectors.camera.logmel_axes`).

        Returns:
            :class:`LogMelMap` (``heatmap`` ``float32 (128, 1500)`` in [0, 1]) or None when the
            detector did not run, was skipped, or saved no such map.
        """
        d = self._detectors.get(detector_id)
        if d is None:
            return None
        params = d.get("parameters") or {}
        axes = params.get("logmel_gradcam_axes")
        for view, key in (d.get("explanations") or {}).items():
            if "{" in key or not axes:
                continue
            a = self.arrays.get(f"{detector_id}/{key}")
            if a is None or a.ndim != 2:
                continue
            low, centre, high = (np.asarray(axes[n], dtype=np.float64)
                                 for n in ("row_low_hz", "row_center_hz", "row_high_hz"))
            if not (len(low) == len(centre) == len(high) == a.shape[0]):
                raise ResultFormatError(f"{self.path or 'result'}: {detector_id}/{key} has {a.shape[0]} rows but "
                                        f"its axes describe {len(centre)}")
            return LogMelMap(np.clip(np.nan_to_num(np.asarray(a, dtype=np.float32)), 0.0, 1.0), low, centre, high,
                             float(axes["duration_s"]), detector_id, view, params.get("gradcam_target"))
        return None
