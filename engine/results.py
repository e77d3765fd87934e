"""Reading a saved analysis: one Qt-free view over ``<name>.json`` + ``<name>.npz``.

The GUI panes and the report need the same questions answered about an
:class:`engine.pipeline.AnalysisResult` written to disk: which frames were
sampled, where the faces are at time *t*, each detector's score timeline, the
explanation map of the sampled frame nearest to *t* placed on the frame, the
most suspicious frames. :class:`ResultView` answers them from the JSON and its
npz sidecar (loaded without pickle) so that no view code re-derives geometry or
aggregation.

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

__all__ = ["ResultView", "FaceAt", "HeatmapAt", "ScoreSeries", "ResultFormatError"]


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
