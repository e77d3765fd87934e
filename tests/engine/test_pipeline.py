"""analyze(): one decode, one face pass, features, detectors isolated, JSON + npz, cancel."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from conftest import DATA, SAMPLES
from engine.io import load_npz
from engine.media import Uniform
from engine.pipeline import (
    AnalysisCancelled,
    ClipConfig,
    DetectorResult,
    FrameScore,
    MediaClip,
    analyze,
    load_result_arrays,
)

SAMPLE = SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4"


class MeanBrightness:
    """A tiny, real detector for tests: P(fake) = mean face-crop brightness (not a forensic method)."""

    id: ClassVar[str] = "test.brightness"
    task: ClassVar[str] = "deepfake"

    def analyze(self, clip: MediaClip, progress=None) -> DetectorResult:
        crops = clip.face_crops("effvit_square224")
        scores = [FrameScore(f.index, f.pts, float(c.image.mean() / 255), 0, None, f"f{f.index}") for f, c in crops]
        heat = {f"f{f.index}": (c.image.mean(axis=2) / 255).astype(np.float16) for f, c in crops}
        return DetectorResult(self.id, self.task, score=float(np.mean([s.score for s in scores])), frame_scores=scores,
                              heatmaps=heat, aggregation="mean of frame scores")


class Broken:
    id: ClassVar[str] = "test.broken"
    task: ClassVar[str] = "deepfake"

    def analyze(self, clip, progress=None):
        raise RuntimeError("model exploded")


@pytest.fixture(scope="module")
def sample_result():
    stages = []
    result = analyze(SAMPLE, [MeanBrightness(), Broken()], device="cpu",
                     progress=lambda s, f: stages.append((s, f)))
    return result, stages


def test_analyze_shared_stages(sample_result):
    result, stages = sample_result
    assert result.evidence["sha256"] == result.sha256_at_end
    assert len(result.sampling["frames"]) == 32
    assert result.faces["backend"] == "mtcnn"
    assert len(result.faces["tracks"]) >= 1 and len(result.faces["tracks"][0]["entries"]) == 32
    assert result.features["log_mel_3res"]["shape"] == [3, 128, 1500]
    assert result.features["azimuthal_spectra"]["shape"] == [32, 300]
    assert result.audio["has_audio"]
    fr = [f for _, f in stages]
    assert fr == sorted(fr) and fr[0] == 0.0 and fr[-1] == 1.0


def test_detector_failure_is_isolated(sample_result):
    result, _ = sample_result
    ok, broken = result.detectors
    assert ok.status == "ok" and len(ok.frame_scores) == 32 and 0 < ok.score < 1
    assert broken.status == "failed" and "model exploded" in broken.message


def test_json_and_sidecar(sample_result, tmp_path):
    result, _ = sample_result
    path = result.save(tmp_path / "res.json")
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and doc["evidence_unchanged"] is True
    assert doc["arrays_file"] == "res.npz"
    arrays = load_result_arrays(path)
    assert arrays["log_mel_3res"].shape == (3, 128, 1500)
    assert arrays["test.brightness/f0"].dtype == np.float16
    assert set(doc["arrays"]) == set(arrays)
    assert doc["detectors"][0]["heatmaps"]["f0"] == [224, 224]


def test_clip_decodes_and_detects_once(monkeypatch):
    from engine.media import video

    calls = {"sample": 0}
    original = video.VideoReader.sample

    def counting(self, *a, **k):
        calls["sample"] += 1
        return original(self, *a, **k)

    monkeypatch.setattr(video.VideoReader, "sample", counting)
    clip = MediaClip(DATA / "retalking_face5.mp4", ClipConfig(sampling=Uniform(8), device="cpu"))
    det_calls = []
    real = clip.face_detector.detect_batch
    clip.face_detector.detect_batch = lambda imgs: det_calls.append(len(imgs)) or real(imgs)
    for _ in range(2):
        clip.face_crops("effvit_square224")
        clip.face_crops("mtcnn_margin40_160")
        clip.azimuthal_spectra()
    assert calls["sample"] == 1
    assert sum(det_calls) == 8


def test_no_audio_no_face_still_writes_result(tmp_path):
    result = analyze(DATA / "bikes.mp4", device="cpu", config=ClipConfig(sampling=Uniform(6)))
    assert not result.audio["has_audio"] and "no audio stream" in result.audio["missing_reason"]
    assert result.features["log_mel_3res"] is None
    assert result.faces["tracks"] == [] and len(result.faces["frames_without_face"]) == 6
    assert any("no face" in w for w in result.warnings)
    result.save(tmp_path / "bikes.json")


def test_audio_only_evidence(gen_dir):
    from media_factory import make_audio_only

    result = analyze(make_audio_only(gen_dir / "tone_only.m4a", seconds=3.0), device="cpu")
    assert result.sampling["frames"] == [] and result.audio["has_audio"]
    assert result.features["log_mel_3res"]["shape"] == [3, 128, 1500]


def test_cancel_raises_and_saves_nothing(tmp_path):
    polls = []
    with pytest.raises(AnalysisCancelled):
        analyze(SAMPLE, device="cpu", cancel=lambda: polls.append(1) or len(polls) > 3)
    assert not list(tmp_path.iterdir())


def test_cancel_during_a_detectors_weight_hash_stops_it(monkeypatch):
    import engine.weights

    hashed = []
    real = engine.weights.sha256_file

    def spy(path, check=None):
        hashed.append((path.name, check is not None))
        return real(path, check=check)

    monkeypatch.setattr(engine.weights, "sha256_file", spy)
    running = []
    with pytest.raises(AnalysisCancelled):
        analyze(SAMPLE, ["deepfake.freq"], device="cpu", config=ClipConfig(sampling=Uniform(4)),
                compute_features=(), progress=lambda stage, f: running.append("Running" in stage),
                cancel=lambda: any(running))
    assert hashed == [("model.safetensors", True)]  # the Cancel reached the hash of the weights


def test_npz_never_pickles(tmp_path):
    from engine.io import atomic_save_npz

    with pytest.raises(TypeError, match="object"):
        atomic_save_npz(tmp_path / "x.npz", {"bad": np.array([{"a": 1}], dtype=object)})
    atomic_save_npz(tmp_path / "y.npz", {"ok": np.arange(3)})
    assert load_npz(tmp_path / "y.npz")["ok"].tolist() == [0, 1, 2]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    from engine.io import atomic_write_json

    target = tmp_path / "case.json"
    atomic_write_json(target, {"v": 1})
    from engine.io import _UMASK

    assert target.stat().st_mode & 0o777 == 0o666 & ~_UMASK  # not mkstemp's 0600
    with pytest.raises(TypeError):
        atomic_write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["case.json"]  # no temp file left behind


def test_cancellable_stops_inside_forward_and_backward_passes():
    """MediaClip.cancellable: a cancel request ends a forward or a backward pass at the next layer."""
    import torch

    from engine.pipeline import AnalysisCancelled, MediaClip

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(inplace=True), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 1))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    flag = {"stop": False}
    clip = MediaClip("never-opened.mp4", cancel=lambda: flag["stop"])
    with clip.cancellable(model):  # not cancelled: results are unchanged
        y = model(x)
    torch.testing.assert_close(y, model(x))
    flag["stop"] = True
    with pytest.raises(AnalysisCancelled), clip.cancellable(model):
        model(x)
    flag["stop"] = False
    with clip.cancellable(model):
        out = model(x).sum()
        flag["stop"] = True  # requested after the forward pass: the backward pass stops
        with pytest.raises(AnalysisCancelled):
            out.backward()
    flag["stop"] = False
    model(x).sum().backward()  # hooks are gone after the block
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_uncached_face_crops_are_not_kept(tmp_path):
    """face_crops(cache=False) computes the crops without storing them; a cached entry is still reused."""
    from engine.faces import FaceBox, build_tracks
    from engine.media import Frame
    from engine.pipeline import ClipConfig, MediaClip

    clip = MediaClip(tmp_path / "unused.mp4", ClipConfig(device="cpu"))
    rgb = np.zeros((120, 160, 3), np.uint8)
    clip._frames = [Frame(0, 0.0, rgb), Frame(5, 0.2, rgb)]
    clip._detections = [[FaceBox(40, 30, 100, 90, 0.99)], [FaceBox(42, 32, 102, 92, 0.99)]]
    clip._tracks = build_tracks([(f.index, f.pts, d) for f, d in zip(clip._frames, clip._detections)])
    uncached = clip.face_crops("freq_square1p5", cache=False)
    assert len(uncached) == 2 and ("crops", "freq_square1p5", 0) not in clip._cache
    cached = clip.face_crops("freq_square1p5")
    assert ("crops", "freq_square1p5", 0) in clip._cache
    assert clip.face_crops("freq_square1p5", cache=False) is cached
    clip.forget(("crops", "freq_square1p5", 0))
    clip.forget(("never", "there"))
    assert ("crops", "freq_square1p5", 0) not in clip._cache


def test_release_frame_pixels_keeps_crops_and_decodes_the_same_frames_again(monkeypatch):
    """After the release the cached crops and frame identities stay, the pixels are gone, and a
    later reader of ``clip.frames`` gets the same frames decoded again (not kept)."""
    from engine.media import video

    clip = MediaClip(DATA / "retalking_face5.mp4", ClipConfig(sampling=Uniform(6), device="cpu"))
    before = [(f.index, f.pts, f.rgb.copy()) for f in clip.frames]
    crops = clip.face_crops("effvit_square224")
    images = [c.image.copy() for _, c in crops]
    released = clip.release_frame_pixels()
    assert released == sum(rgb.nbytes for *_, rgb in before) > 0
    assert clip.pixels_released and clip.release_frame_pixels() == 0

    after = clip.face_crops("effvit_square224")  # cached: no decode
    assert [(f.index, f.pts) for f, _ in after] == [(f.index, f.pts) for f, _ in crops]
    assert all(not f.has_pixels and f.rgb.shape == crops[0][0].rgb.shape for f, _ in after)
    assert all(np.array_equal(a, c.image) for a, (_, c) in zip(images, after))

    decodes = {"n": 0}
    original = video.VideoReader.sample
    monkeypatch.setattr(video.VideoReader, "sample", lambda self, *a, **k: decodes.__setitem__("n", decodes["n"] + 1)
                        or original(self, *a, **k))
    again = clip.frames
    assert [(f.index, f.pts) for f in again] == [(i, p) for i, p, _ in before]
    assert all(f.has_pixels and np.array_equal(f.rgb, rgb) for f, (*_, rgb) in zip(again, before))
    assert clip._frames is None and decodes["n"] == 1  # handed out, not kept
    # a crop policy nobody cut before still works (from the decoded-again frames)
    uncut = clip.face_crops("mtcnn_margin40_160")
    assert len(uncut) == len(crops) and decodes["n"] == 2


def test_frame_without_pixels_is_a_free_read_only_placeholder():
    from engine.media import Frame

    f = Frame(7, 0.28, np.full((1080, 1920, 3), 9, np.uint8))
    g = f.without_pixels()
    assert (g.index, g.pts, g.height, g.width) == (7, 0.28, 1080, 1920)
    assert f.has_pixels and not g.has_pixels
    assert not g.rgb.flags.writeable and g.rgb.base is not None and g.rgb.base.nbytes == 1


class CropsFromHook(MeanBrightness):
    """MeanBrightness with the pipeline's hook: its crops are cut before the frames are released."""

    id: ClassVar[str] = "test.brightness_hook"
    seen: ClassVar[dict] = {}

    @staticmethod
    def cache_frame_inputs(clip: MediaClip) -> None:
        clip.face_crops("effvit_square224")

    def analyze(self, clip: MediaClip, progress=None) -> DetectorResult:
        crops = clip.face_crops("effvit_square224")
        CropsFromHook.seen.update(released=clip.pixels_released, n=len(crops),
                                  pixels=any(f.has_pixels for f, _ in crops))
        return super().analyze(clip, progress)


def test_analyze_releases_the_frames_after_the_detectors_cut_their_crops():
    """analyze(): every detector's ``cache_frame_inputs`` runs, then the full frames are dropped;
    a detector without the hook still gets its crops (decoded again) and the same scores."""
    hooked = analyze(SAMPLE, [CropsFromHook()], device="cpu", config=ClipConfig(sampling=Uniform(6)))
    assert CropsFromHook.seen == {"released": True, "n": 6, "pixels": False}
    plain = analyze(SAMPLE, [MeanBrightness()], device="cpu", config=ClipConfig(sampling=Uniform(6)))
    assert hooked.detectors[0].score == pytest.approx(plain.detectors[0].score, abs=0)
    assert [s.score for s in hooked.detectors[0].frame_scores] == [s.score for s in plain.detectors[0].frame_scores]
