"""build_tracks on synthetic detections: linking, gaps, ranking, smoothing, determinism."""

from __future__ import annotations

import random

import numpy as np
import pytest

from engine.faces import FaceBox, build_tracks, track_faces


def _scene(jitter: float = 3.0, gap_at: int = 5, steps: int = 20, seed: int = 0):
    """Face A: 100 px, moving right 6 px/step, jittered. Face B: 40 px, moving down, missing at ``gap_at``."""
    rng = np.random.default_rng(seed)
    dets = []
    for t in range(steps):
        ja, jb = rng.normal(0, jitter, 2), rng.normal(0, jitter, 2)
        a = FaceBox.from_center_size(150 + 6 * t + ja[0], 200 + ja[1], 100, 100, score=0.99)
        b = FaceBox.from_center_size(500 + jb[0], 100 + 4 * t + jb[1], 40, 40, score=0.9)
        boxes = [a] if t == gap_at else [b, a]
        dets.append((3 * t, 0.12 * t, boxes))  # every 3rd video frame was sampled
    return dets


def _geometry(tracks):
    return [(t.track_id, [(e.frame_index, e.box.xyxy, e.smoothed.xyxy) for e in t.entries]) for t in tracks]


def test_two_faces_with_a_gap_give_two_ordered_tracks():
    tracks = build_tracks(_scene())
    assert len(tracks) == 2
    main, other = tracks
    assert (main.track_id, other.track_id) == (0, 1)
    assert len(main) == 20 and len(other) == 19
    assert all(abs(e.box.width - 100) < 1e-6 for e in main.entries)  # A is the main face
    assert other.entry_at(15) is None and other.entry_at(18) is not None  # the gap (step 5 = frame 15)
    assert other.nearest_entry(15).frame_index == 12  # earlier neighbour on a tie
    assert main.rank_score > other.rank_score
    assert main.entries[3].pts == pytest.approx(0.36)


def test_gap_longer_than_max_gap_splits_the_track():
    tracks = build_tracks(_scene(), max_gap=0)
    assert sorted(len(t) for t in tracks) == [5, 14, 20]
    assert len(tracks[0]) == 20


def test_smoothing_reduces_jitter():
    (main, _) = build_tracks(_scene(jitter=4.0), smooth_window=3)
    raw = np.array([e.box.center for e in main.entries])
    smooth = np.array([e.smoothed.center for e in main.entries])
    # jitter = deviation from the true straight-line motion
    truth = np.stack([150 + 6 * np.arange(20), np.full(20, 200.0)], axis=1)
    assert np.abs(smooth - truth).std() < 0.75 * np.abs(raw - truth).std()
    # second differences (frame-to-frame shake) drop even more
    assert np.abs(np.diff(smooth, 2, axis=0)).mean() < 0.5 * np.abs(np.diff(raw, 2, axis=0)).mean()
    # size is smoothed too and stays the constant 100 px it was
    assert all(abs(e.smoothed.width - 100) < 1e-6 for e in main.entries)
    # window 1 = no smoothing
    (flat, _) = build_tracks(_scene(jitter=4.0), smooth_window=1)
    assert all(np.allclose(e.box.xyxy, e.smoothed.xyxy) for e in flat.entries)


def test_tracks_are_deterministic_under_input_order():
    dets = _scene()
    ref = _geometry(build_tracks(dets))
    rnd = random.Random(1)
    for _ in range(3):
        shuffled = [(i, p, rnd.sample(list(b), len(b))) for i, p, b in dets]
        rnd.shuffle(shuffled)
        assert _geometry(build_tracks(shuffled)) == ref


def test_ranking_is_area_times_score_times_length():
    dets = []
    for t in range(10):
        boxes = [FaceBox.from_center_size(100, 100, 30, 30, score=0.95)]  # small, always there
        if t < 2:
            boxes.append(FaceBox.from_center_size(400, 300, 80, 80, score=0.99))  # big, 2 frames
        dets.append((t, t / 25, boxes))
    first, second = build_tracks(dets)
    # big & short: 80*80 * 0.99 * 2 = 12672 beats small & long: 30*30 * 0.95 * 10 = 8550
    assert first.mean_area == pytest.approx(6400) and len(first) == 2
    assert first.rank_score == pytest.approx(6400 * 0.99 * 2)
    assert second.mean_area == pytest.approx(900) and len(second) == 10
    assert second.rank_score == pytest.approx(900 * 0.95 * 10)
    # five more frames for the small face tip the balance: 900 * 0.95 * 15 = 12825 > 12672
    more = dets + [(t, t / 25, [FaceBox.from_center_size(100, 100, 30, 30, score=0.95)]) for t in range(10, 15)]
    assert build_tracks(more)[0].mean_area == pytest.approx(900)


def test_edge_cases():
    assert build_tracks([]) == []
    assert build_tracks([(0, 0.0, []), (1, 0.04, [])]) == []
    with pytest.raises(ValueError):
        build_tracks([(0, 0.0, []), (0, 0.0, [])])
    with pytest.raises(ValueError):
        build_tracks([], smooth_window=0)
    one = build_tracks([(7, 0.28, [FaceBox(0, 0, 10, 10, 0.9)])], min_length=1)
    assert len(one) == 1 and one[0].frame_indices == [7]
    assert build_tracks([(7, 0.28, [FaceBox(0, 0, 10, 10, 0.9)])], min_length=2) == []


def test_track_faces_uses_the_detector_once():
    class FakeFrame:
        def __init__(self, index):
            self.index, self.pts, self.rgb = index, index / 25, np.zeros((4, 4, 3), np.uint8)

    class FakeDetector:
        name = "fake"
        calls = 0

        def detect_batch(self, images):
            FakeDetector.calls += 1
            return [[FaceBox(0, 0, 2, 2, 0.9)] for _ in images]

    tracks = track_faces([FakeFrame(i) for i in range(5)], FakeDetector())
    assert FakeDetector.calls == 1 and len(tracks) == 1 and tracks[0].frame_indices == [0, 1, 2, 3, 4]
