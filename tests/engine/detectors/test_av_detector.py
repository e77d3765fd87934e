"""deepfake.av detector: clip score, 16 face frames with space-time relevancy on the faces, A/V offset curve."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from conftest import DATA
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip, analyze
from engine.weights import ModelCard, save_weights

TINY = dict(img_size=32, patch_size=16, embed_dims=16, depth=1, num_heads=2)


def _card(detector_id: str, arch: str, config: dict) -> ModelCard:
    return ModelCard(detector_id=detector_id, architecture=arch, config=config, classes=["real", "fake"],
                     training_data="untrained (test)", metrics={}, evaluation="none", limitations=["test weights"],
                     sha256="")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from engine.models.syncnet import SyncNet, SyncNetConfig
    from engine.models.timesformer import AVTimeSformer, AVTimeSformerConfig

    root = tmp_path_factory.mktemp("av_weights")
    torch.manual_seed(0)
    cfg = AVTimeSformerConfig(**TINY)
    save_weights(AVTimeSformer(cfg).state_dict(), _card("deepfake.av", "av_timesformer", asdict(cfg)),
                 root / "deepfake.av")
    scfg = SyncNetConfig(lip_size=112)
    save_weights(SyncNet(scfg).state_dict(), _card("syncnet", "syncnet", asdict(scfg)), root / "syncnet")
    return root


@pytest.fixture(scope="module")
def detector(weights):
    from engine.detectors.av import AVDetector

    return AVDetector(device="cpu", model_dir=weights / "deepfake.av", syncnet_dir=weights / "syncnet")


def test_face_frame_indices():
    from engine.detectors.av import face_frame_indices

    assert face_frame_indices(400).tolist() == list(range(0, 400, 25))
    assert face_frame_indices(60).tolist() == [3 * i for i in range(16)]
    assert face_frame_indices(60, phase=2).tolist() == [3 * i + 2 for i in range(16)]
    assert face_frame_indices(8).tolist() == [i // 2 for i in range(16)]  # shorter than 16 frames
    with pytest.raises(ValueError):
        face_frame_indices(60, phase=3)


def test_av_detector_on_a_real_talking_face(detector):
    clip = MediaClip(DATA / "single_face.mp4", ClipConfig(sampling=Uniform(4), device="cpu"))
    r = detector.analyze(clip)
    assert r.status == "ok", r.message
    assert r.detector_id == "deepfake.av" and r.threshold == 0.5 and 0.0 <= r.score <= 1.0
    assert r.label == ("fake" if r.score > 0.5 else "real")
    assert r.class_probs["fake"] == pytest.approx(r.score)
    dense = clip.dense_face_crops()
    n = len(dense.crops)
    assert n == pytest.approx(2.4 * 25, abs=2)  # 25 fps over the whole 2.4 s clip
    assert len(r.frame_scores) == 16 and all(s.score == r.score for s in r.frame_scores)
    idx = [i * (n // 16) for i in range(16)]
    assert [s.frame_index for s in r.frame_scores] == [int(dense.frame_index[i]) for i in idx]
    assert [s.pts for s in r.frame_scores] == pytest.approx([float(dense.pts[i]) for i in idx])
    assert [s.crop for s in r.frame_scores] == [dense.placements[i] for i in idx]
    assert r.explanations == {"space-time relevancy": "f{frame}"}
    for s in r.frame_scores:
        h = r.heatmaps[s.heatmap_key]
        assert h.shape == (224, 224) and h.dtype == np.float16
        assert 0.0 <= float(h.min()) and float(h.max()) <= 1.0
    share = r.details["relevance_share"]
    assert share["face_frames"] + share["mel_frames"] == pytest.approx(1.0, abs=1e-3)

    # A/V offset: curve over -15..15, the minimum at the marked offset
    sync = r.details["av_sync"]
    assert sync["has_audio"] and sync["offset_ms"] == 40 * sync["offset_frames"]
    plot = r.plots["A/V offset"]
    assert plot["kind"] == "line" and plot["x"] == list(range(-15, 16))
    curve = plot["series"]["mean distance"]
    assert len(curve) == 31 and plot["marker_x"] == sync["offset_frames"]
    assert plot["x"][int(np.argmin(curve))] == sync["offset_frames"]


def test_relevancy_lands_on_the_face(detector):
    from engine.faces import place_heatmap

    clip = MediaClip(DATA / "single_face.mp4", ClipConfig(sampling=Uniform(4), device="cpu"))
    r = detector.analyze(clip)
    track = clip.face_tracks[0]
    s = r.frame_scores[5]
    frame_hw = clip.frames[0].rgb.shape[:2]
    on_frame = place_heatmap(np.ones((224, 224), np.float32), s.crop["region"], s.crop["content"],
                             s.crop["size_hw"], frame_hw)
    ys, xs = np.nonzero(np.isfinite(on_frame))
    box = track.nearest_entry(s.frame_index).smoothed
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    assert xs.min() <= cx <= xs.max() and ys.min() <= cy <= ys.max()
    placed = place_heatmap(r.heatmaps[s.heatmap_key].astype(np.float32), s.crop["region"], s.crop["content"],
                           s.crop["size_hw"], frame_hw)
    assert np.isfinite(placed).sum() > 0 and np.nanmax(placed) <= 1.0


def test_av_detector_without_audio(detector, gen_dir):
    from media_factory import make_video

    path = make_video(gen_dir / "av_silent.mp4", n_frames=40, size=(160, 120))
    result = analyze(path, [detector], device="cpu", config=ClipConfig(sampling=Uniform(4)), compute_features=())
    r = result.detectors[0]
    assert r.status == "ok", r.message
    assert r.details["av_sync"]["has_audio"] is False and r.details["av_sync"]["offset_frames"] is None
    assert "no audio" in r.details["audio"] and "A/V offset" not in r.plots
    assert 0.0 <= r.score <= 1.0 and len(r.frame_scores) == 16


def test_av_inputs_without_audio_are_black_and_zero():
    from engine.detectors.av import av_inputs

    crops = np.random.default_rng(0).integers(0, 255, (40, 224, 224, 3), dtype=np.uint8)
    inp = av_inputs(crops, None, None, None)
    assert inp.faces.shape == (16, 224, 224, 3) and not inp.mel.any() and not inp.latency.any()
    assert inp.sync is None and inp.sync_error == "no audio"


def test_warns_when_syncnet_differs_from_training(weights, tmp_path):
    import shutil

    from engine.detectors.av import AVDetector
    from engine.weights import update_card

    model_dir = tmp_path / "deepfake.av"
    shutil.copytree(weights / "deepfake.av", model_dir)
    update_card(model_dir, training={"syncnet_card": "syncnet@000000000000"})
    det = AVDetector(device="cpu", model_dir=model_dir, syncnet_dir=weights / "syncnet", explain=False)
    r = det.analyze(MediaClip(DATA / "single_face.mp4", ClipConfig(sampling=Uniform(4), device="cpu")))
    assert "syncnet@000000000000" in r.details["syncnet_mismatch"] and not r.heatmaps and not r.explanations
