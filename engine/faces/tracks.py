"""Face tracks: link per-frame boxes into identities and smooth them over time.

Linking is by box overlap between consecutive *sampled* frames (Hungarian
assignment on 1 - IoU, :func:`scipy.optimize.linear_sum_assignment`), which is
enough for the sparse frame samples the workbench analyses (32 frames over a
clip) and for every-frame detection alike. Tracks are then ranked by
``mean box area x mean score x length`` so that track 0 is the main face, and
each track's box centre and size are smoothed with
:func:`scipy.ndimage.uniform_filter1d`, as seed 5 does (spec/seeds.md §5.1,
window 13 on every frame at 25 fps; the default window here is 3 because
sampled frames are far apart).

Everything is deterministic: the same detections always give the same tracks,
ids and boxes.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.optimize import linear_sum_assignment

from engine.faces.types import FaceBox

if TYPE_CHECKING:  # pragma: no cover
    from engine.faces.detector import FaceDetector
    from engine.media import Frame

__all__ = ["TrackEntry", "FaceTrack", "build_tracks", "track_faces"]


@dataclass(frozen=True)
class TrackEntry:
    """One frame of a face track.

    Attributes:
        frame_index: 0-based frame index in the video stream (``Frame.index``).
        pts: presentation time of the frame in seconds (``Frame.pts``).
        box: the raw detector box in frame pixels.
        smoothed: the temporally smoothed box in frame pixels (same score and
            the same detected landmarks as ``box``: smoothing moves the box,
            not the measured points); use this one for cropping.
    """

    frame_index: int
    pts: float
    box: FaceBox
    smoothed: FaceBox


@dataclass(frozen=True)
class FaceTrack:
    """One face followed over the sampled frames.

    Attributes:
        track_id: rank of the track, 0 = main face (largest, most confident,
            longest-lived; see :func:`build_tracks`).
        entries: per-frame entries sorted by ``frame_index``; frames where the
            face was not detected have no entry.
    """

    track_id: int
    entries: tuple[TrackEntry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def frame_indices(self) -> list[int]:
        """Frame indices at which this face was detected, ascending."""
        return [e.frame_index for e in self.entries]

    @property
    def mean_area(self) -> float:
        """Mean raw box area in square pixels."""
        return float(np.mean([e.box.area for e in self.entries]))

    @property
    def mean_score(self) -> float:
        """Mean raw detection score in ``[0, 1]``."""
        return float(np.mean([e.box.score for e in self.entries]))

    @property
    def rank_score(self) -> float:
        """``mean_area * mean_score * len(entries)``, the quantity tracks are ordered by."""
        return self.mean_area * self.mean_score * len(self.entries)

    def entry_at(self, frame_index: int) -> Optional[TrackEntry]:
        """The entry for exactly ``frame_index``, or ``None`` if the face was not detected there."""
        for e in self.entries:
            if e.frame_index == frame_index:
                return e
        return None

    def nearest_entry(self, frame_index: int) -> TrackEntry:
        """The entry closest in frame index to ``frame_index`` (earlier one on ties).

        Seed 5 gives every frame the box of the nearest frame with a detection;
        this is that rule for one track.
        """
        return min(self.entries, key=lambda e: (abs(e.frame_index - frame_index), e.frame_index))


@dataclass
class _Growing:
    order: int  # creation order, for deterministic tie-breaking
    items: list[tuple[int, int, float, FaceBox]]  # (step, frame_index, pts, box)


def build_tracks(
    detections: Sequence[tuple[int, float, Sequence[FaceBox]]],
    iou_threshold: float = 0.3,
    max_gap: int = 1,
    smooth_window: int = 3,
    min_length: int = 1,
) -> list[FaceTrack]:
    """Link per-frame face boxes into tracks, rank them and smooth them.

    Args:
        detections: one ``(frame_index, pts_seconds, boxes)`` tuple per
            analysed frame (a frame with no face has ``boxes == []``), as
            returned for ``Frame.index``, ``Frame.pts`` and
            ``FaceDetector.detect_batch``. Sorted by ``frame_index`` here;
            indices must be unique.
        iou_threshold: minimum IoU between a track's last raw box and a new box
            for the two to be linked.
        max_gap: how many consecutive analysed frames a track may miss and
            still be continued (0 = must be seen in every analysed frame).
            Counted in entries of ``detections``, not in video frames.
        smooth_window: ``uniform_filter1d`` window (in track entries) for box
            centre x, centre y, width and height; 1 disables smoothing. Seed 5
            used 13 with detection on every frame.
        min_length: tracks with fewer entries are dropped.

    Returns:
        Tracks ordered by ``mean area x mean score x length`` descending (ties:
        earlier first frame, then creation order); ``track_id`` equals the
        position in this list, so track 0 is the main face.

    Raises:
        ValueError: duplicate frame indices, ``iou_threshold`` outside ``[0, 1]``,
            negative ``max_gap`` or ``smooth_window < 1``.
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    if smooth_window < 1:
        raise ValueError(f"smooth_window must be >= 1, got {smooth_window}")

    frames = sorted(((int(i), float(p), list(b)) for i, p, b in detections), key=lambda t: t[0])
    idx = [f[0] for f in frames]
    if len(set(idx)) != len(idx):
        raise ValueError("detections contain duplicate frame indices")

    tracks: list[_Growing] = []
    for step, (frame_index, pts, boxes) in enumerate(frames):
        boxes = sorted(boxes, key=lambda b: (-b.score, b.y1, b.x1, b.y2, b.x2))
        active = [t for t in tracks if step - t.items[-1][0] <= max_gap + 1]
        used_boxes: set[int] = set()
        if active and boxes:
            iou = np.array([[t.items[-1][3].iou(b) for b in boxes] for t in active], dtype=np.float64)
            rows, cols = linear_sum_assignment(1.0 - iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= iou_threshold and iou[r, c] > 0.0:
                    active[r].items.append((step, frame_index, pts, boxes[c]))
                    used_boxes.add(int(c))
        for c, box in enumerate(boxes):
            if c not in used_boxes:
                tracks.append(_Growing(order=len(tracks), items=[(step, frame_index, pts, box)]))

    finished = [t for t in tracks if len(t.items) >= min_length]

    def rank(t: _Growing) -> tuple[float, int, int]:
        areas = np.mean([it[3].area for it in t.items])
        scores = np.mean([it[3].score for it in t.items])
        return (-float(areas * scores * len(t.items)), t.items[0][1], t.order)

    finished.sort(key=rank)
    return [
        FaceTrack(track_id=k, entries=_smooth_entries(t.items, smooth_window))
        for k, t in enumerate(finished)
    ]


def _smooth_entries(items: list[tuple[int, int, float, FaceBox]], window: int) -> tuple[TrackEntry, ...]:
    raw = [it[3] for it in items]
    geo = np.array([[*b.center, b.width, b.height] for b in raw], dtype=np.float64)  # (N, 4)
    if window > 1 and len(raw) > 1:
        geo = uniform_filter1d(geo, size=window, axis=0, mode="nearest")
    return tuple(
        TrackEntry(
            frame_index=fi,
            pts=pts,
            box=b,
            smoothed=dataclasses.replace(
                FaceBox.from_center_size(g[0], g[1], max(g[2], 0.0), max(g[3], 0.0), b.score),
                landmarks=b.landmarks,
            ),
        )
        for (_, fi, pts, b), g in zip(items, geo)
    )


def track_faces(
    frames: Sequence["Frame"],
    detector: "FaceDetector",
    iou_threshold: float = 0.3,
    max_gap: int = 1,
    smooth_window: int = 3,
    min_length: int = 1,
) -> list[FaceTrack]:
    """Detect faces in ``frames`` with ``detector`` (one batch) and build tracks.

    Args:
        frames: ``engine.media.Frame`` objects (``index``, ``pts`` seconds,
            ``rgb`` uint8 (H, W, 3)), e.g. ``VideoReader(path).sample(Uniform(32))``.
        detector: any :class:`~engine.faces.detector.FaceDetector`.
        iou_threshold, max_gap, smooth_window, min_length: see :func:`build_tracks`.

    Returns:
        The tracks of :func:`build_tracks`, main face first.
    """
    boxes = detector.detect_batch([f.rgb for f in frames])
    return build_tracks(
        [(f.index, f.pts, b) for f, b in zip(frames, boxes)],
        iou_threshold=iou_threshold,
        max_gap=max_gap,
        smooth_window=smooth_window,
        min_length=min_length,
    )
