"""deepfake.c3d detector: clips of the main face track, mean clip P(fake), Grad-CAM (3D) maps placed on the face."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DATA, REPO
from engine.faces import place_heatmap
from engine.media import Uniform
from engine.pipeline import ClipConfig, analyze
from engine.weights import ModelCard, WeightsIntegrityError, save_weights

BUNDLED = REPO / "resources" / "models" / "deepfake.c3d"


@pytest.fixture(scope="module")
def c3d_dir(tmp_path_factory) -> Path:
    from engine.models.c3d import C3D, C3DConfig

    torch.manual_seed(0)
    cfg = C3DConfig(clip_len=16, width=0.125)
    model = C3D(cfg)
    out = tmp_path_factory.mktemp("c3d") / "deepfake.c3d"
    save_weights(model.state_dict(), ModelCard(
        detector_id="deepfake.c3d", architecture="c3d", config=asdict(cfg), classes=["real", "fake"],
        training_data="untrained (test)", metrics={}, evaluation="none", limitations=["test weights"], sha256=""), out)
    return out


def test_clip_chunks_rule():
    from engine.detectors.c3d import clip_chunks

    assert clip_chunks(0, 16) == []
    (one,) = clip_chunks(5, 16)
    assert one.tolist() == [0, 1, 2, 3, 4] + [4] * 11  # short track: one clip, last frame repeated
    a, b = clip_chunks(20, 16)
    assert a.tolist() == list(range(16)) and b.tolist() == [16, 17, 18, 19] + [19] * 12
    assert [c.tolist() for c in clip_chunks(32, 16)] == [list(range(16)), list(range(16, 32))]


def _check_result(r, n_frames: int, clip_len: int = 16):
    assert r.status == "ok", r.message
    assert len(r.frame_scores) == n_frames and all(0.0 <= s.score <= 1.0 for s in r.frame_scores)
    clips = r.details["clip_scores"]
    assert len(clips) == -(-n_frames // clip_len)
    assert r.score == pytest.approx(np.mean(clips)) and r.threshold == 0.5
    assert r.label == ("fake" if r.score > 0.5 else "real")
    # every frame carries its clip's P(fake)
    for c, frames in enumerate(r.details["clip_frames"]):
        for s in r.frame_scores:
            if s.frame_index in frames:
                assert s.score == pytest.approx(clips[c], abs=1e-6)
    assert r.explanations == {"Grad-CAM (3D)": "f{frame}"}
    assert r.details["gradcam_class"] == r.label  # seed 3 §3.6: the predicted class is explained


def _check_heatmaps_on_face(r, frame_hw):
    """Every map is float16 (160, 160) in [0, 1], zero outside the model window; every clip has a non-zero
    map, and every non-zero map placed on the frame lies in the crop region and is centred inside the face box.
    (A frame can be all zero: Grad-CAM is the ReLU of the weighted activations, and the (T/8, 7, 7) volume
    has one temporal cell per 8 frames, which may hold no positive evidence for the explained class.)"""
    inside, nonzero = 0, set()
    for s in r.frame_scores:
        hm = r.heatmaps[s.heatmap_key]
        assert hm.shape == (160, 160) and hm.dtype == np.float16
        assert 0.0 <= float(hm.min()) and float(hm.max()) <= 1.0
        # zeros outside the 112x112 model window (crop cols ~28-133, rows ~10-150)
        assert float(hm[:, :26].max()) == 0.0 and float(hm[:, 135:].max()) == 0.0
        assert float(hm[:8].max()) == 0.0 and float(hm[152:].max()) == 0.0
        if float(hm.max()) == 0.0:
            continue
        nonzero.add(s.frame_index)
        pl = s.crop
        on_frame = place_heatmap(hm.astype(np.float32), pl["region"], pl["content"], pl["size_hw"], frame_hw)
        v = np.nan_to_num(on_frame)
        ys, xs = np.nonzero(v > 0)
        x1, y1, x2, y2 = s.box
        rx1, ry1, rx2, ry2 = pl["region"]
        # the map lies inside the crop region, which contains the face box
        assert xs.min() >= rx1 - 1 and xs.max() <= rx2 + 1 and ys.min() >= ry1 - 1 and ys.max() <= ry2 + 1
        cx, cy = (v.sum(0) * np.arange(v.shape[1])).sum() / v.sum(), (v.sum(1) * np.arange(v.shape[0])).sum() / v.sum()
        inside += int(x1 <= cx <= x2 and y1 <= cy <= y2)
    assert all(set(frames) & nonzero for frames in r.details["clip_frames"])  # each clip explains something
    assert inside == len(nonzero)  # every non-zero Grad-CAM (3D) map is centred inside its face box


def test_c3d_detector_on_real_faces(c3d_dir):
    from engine.detectors.c3d import C3DDetector

    det = C3DDetector(device="cpu", model_dir=c3d_dir, batch_size=2)
    result = analyze(DATA / "retalking_face5.mp4", [det], device="cpu", config=ClipConfig(sampling=Uniform(20)))
    r = result.detectors[0]
    _check_result(r, 20)
    assert r.details["clip_frames"][1][4:] == [r.details["clip_frames"][1][3]] * 12  # padded tail clip
    _check_heatmaps_on_face(r, _hw(DATA / "retalking_face5.mp4"))


def test_c3d_detector_without_explanation_and_score_crops(c3d_dir):
    from engine.detectors.c3d import C3DDetector

    det = C3DDetector(device="cpu", model_dir=c3d_dir, explain=False)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (160, 160, 3), dtype=np.uint8) for _ in range(18)]
    s = det.score_crops(crops)
    assert s.shape == (18,) and s.dtype == np.float32 and ((0 <= s) & (s <= 1)).all()
    assert np.all(s[:16] == s[0]) and np.all(s[16:] == s[16])  # two clips
    with pytest.raises(KeyError):
        C3DDetector(device="cpu", model_dir=c3d_dir, gradcam_layer="conv7")


def test_c3d_tampered_weights_refused(c3d_dir, tmp_path):
    import shutil

    from engine.detectors.c3d import C3DDetector

    bad = tmp_path / "deepfake.c3d"
    shutil.copytree(c3d_dir, bad)
    w = bad / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x01
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError):
        C3DDetector(model_dir=bad)


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLED / "model.safetensors").exists(), reason="bundled deepfake.c3d weights not present")
def test_bundled_c3d_weights_grad_cam_on_a_real_sample():
    """The shipped weights load, score a real video and place a Grad-CAM (3D) map inside the face box."""
    from engine.detectors.c3d import C3DDetector
    from engine.weights import load_card

    card = load_card(BUNDLED)
    assert card.architecture == "c3d" and card.classes == ["real", "fake"]
    assert {"val_video_auc", "val_clip_auc"} <= set(card.metrics)
    det = C3DDetector(device="cpu", model_dir=BUNDLED)
    # retalking_face5 is a held-out person of the bundled run
    result = analyze(DATA / "retalking_face5.mp4", [det], device="cpu", config=ClipConfig(sampling=Uniform(32)))
    r = result.detectors[0]
    _check_result(r, len(r.frame_scores))
    _check_heatmaps_on_face(r, _hw(DATA / "retalking_face5.mp4"))


def _hw(path):
    from engine.pipeline import MediaClip

    return MediaClip(path, ClipConfig(sampling=Uniform(1), device="cpu")).frames[0].rgb.shape[:2]
