"""Frame-accurate access: frame_at(t) and sampling give exactly the sequentially decoded pixels."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import REAL_VIDEOS, which_or_skip
from engine.media import EveryKth, FirstN, Indices, TimeRange, Uniform, VideoReader, probe


def _times_to_check(pts: np.ndarray) -> list[float]:
    n = len(pts)
    idx = sorted({0, 1, n // 7, n // 3, n // 2, (2 * n) // 3, n - 2, n - 1} - {-1})
    times = [float(pts[i]) for i in idx if 0 <= i < n]
    # between two frames: the frame on screen is the earlier one
    if n > 3:
        times.append(float(pts[n // 2] + 0.4 * (pts[n // 2 + 1] - pts[n // 2])))
    return times


def _check_frame_accuracy(path) -> int:
    ev = probe(path)
    reader = VideoReader(path, index=ev.frame_index, rotation=ev.primary_video.rotation)
    seq = list(reader)
    assert [f.index for f in seq] == list(range(len(reader)))
    assert np.allclose([f.pts for f in seq], reader.pts_seconds)
    checked = 0
    # jump backwards and forwards in a scrambled order so both seek and continue paths run
    times = _times_to_check(reader.pts_seconds)
    rng = np.random.default_rng(0)
    for t in rng.permutation(times):
        f = reader.frame_at(float(t))
        expected = int(np.searchsorted(reader.pts_seconds, t + 1e-9, side="right") - 1)
        assert f.index == expected
        assert f.pts == pytest.approx(seq[expected].pts)
        assert np.array_equal(f.rgb, seq[expected].rgb), f"{path.name}: pixels differ at t={t}"
        checked += 1
    return checked


@pytest.mark.parametrize("path", REAL_VIDEOS, ids=lambda p: p.name)
def test_frame_at_equals_sequential_decode(path):
    assert _check_frame_accuracy(path) >= 5


def test_frame_at_on_vfr(vfr_video):
    from media_factory import pattern

    reader = VideoReader(vfr_video)
    assert reader.pts_seconds[:5] == pytest.approx([0.0, 0.02, 0.08, 0.1, 0.133])
    _check_frame_accuracy(vfr_video)
    # the frame on screen at 0.25 s is the one shown from 0.133 s (frame 4)
    f = reader.frame_at(0.25)
    assert f.index == 4
    # and it is the 4th encoded picture (grey level of the blue channel encodes the number)
    assert abs(int(np.median(f.rgb[60:, 80:, 2])) - int(pattern(4, 120, 160)[60, 80, 2])) < 12


def test_sampling_policies_on_vfr(vfr_video):
    reader = VideoReader(vfr_video)
    uni = reader.sample(Uniform(8))
    assert len(uni) == 8 and uni[0].index == 0 and uni[-1].index == len(reader) - 1
    assert all(b.index > a.index for a, b in zip(uni, uni[1:]))
    assert [f.index for f in reader.sample(EveryKth(2))] == list(range(0, 30, 2))
    assert [f.index for f in reader.sample(FirstN(5))] == [0, 1, 2, 3, 4]
    rng = reader.sample(TimeRange(0.5, 1.0))
    assert [round(f.pts, 3) for f in rng] == [0.5, 0.51, 0.52, 0.7, 0.76, 0.8, 0.9, 0.905]
    assert len(reader.sample(TimeRange(0.0, 2.1, max_frames=4))) == 4
    assert [f.index for f in reader.sample(Indices((29, 3, 3, 99)))] == [3, 29]
    assert len(reader.sample(Uniform(500))) == 30  # fewer frames than asked: all of them


def test_uniform_default_is_32_and_spans_duration():
    from conftest import SAMPLES

    reader = VideoReader(SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4")
    frames = reader.sample()
    assert len(frames) == 32
    assert frames[0].pts == 0.0 and frames[-1].index == len(reader) - 1
    gaps = np.diff([f.pts for f in frames])
    assert gaps.max() - gaps.min() <= 0.041  # one frame at 25 fps


def test_sample_cancel_stops_early():
    from conftest import SAMPLES

    reader = VideoReader(SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4")
    seen = []
    out = list(reader.iter_sample(Uniform(32), cancel=lambda: len(seen) >= 3 or seen.append(1) is not None and False))
    assert len(out) == 3


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_matches_ffmpeg_autorotate(rotated_videos, rotation):
    """Our display orientation equals what the ffmpeg CLI shows (it autorotates)."""
    exe = which_or_skip("ffmpeg")
    path = rotated_videos[rotation]
    f = VideoReader(path).frame(0)
    h, w = (160, 120) if rotation in (90, 270) else (120, 160)
    assert f.rgb.shape == (h, w, 3)
    raw = subprocess.run(
        [exe, "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    # same orientation: the red marker lands in the same corner (allow codec/scaler differences)
    assert np.abs(ref.astype(int) - f.rgb.astype(int)).mean() < 4.0


def test_frame_index_out_of_range():
    from conftest import DATA

    reader = VideoReader(DATA / "carphone_pristine.mp4")
    with pytest.raises(IndexError, match="carphone_pristine.mp4"):
        reader.frame(len(reader))
