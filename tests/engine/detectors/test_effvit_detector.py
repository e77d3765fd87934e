"""deepfake.effvit detector: per-crop scores, mean aggregation, relevancy + Grad-CAM maps in crop coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip, analyze
from engine.weights import ModelCard, WeightsIntegrityError, save_weights


@pytest.fixture(scope="module")
def effvit_dir(tmp_path_factory):
    from dataclasses import asdict

    from engine.models import EffViT, EffViTConfig

    torch.manual_seed(0)
    cfg = EffViTConfig()
    model = EffViT(cfg)
    out = tmp_path_factory.mktemp("effvit") / "deepfake.effvit"
    save_weights(model.state_dict(), ModelCard(
        detector_id="deepfake.effvit", architecture="effvit", config=asdict(cfg), classes=["real", "fake"],
        training_data="untrained (test)", metrics={}, evaluation="none", limitations=["test weights"], sha256=""), out)
    return out


def test_effvit_detector_on_real_faces(effvit_dir):
    from engine.detectors.effvit import EffViTDetector

    det = EffViTDetector(device="cpu", model_dir=effvit_dir, batch_size=2)
    result = analyze(DATA / "retalking_face5.mp4", [det], device="cpu", config=ClipConfig(sampling=Uniform(3)))
    r = result.detectors[0]
    assert r.status == "ok", r.message
    assert len(r.frame_scores) == 3 and all(0.0 <= s.score <= 1.0 for s in r.frame_scores)
    assert r.score == pytest.approx(np.mean([s.score for s in r.frame_scores]))
    assert r.threshold == 0.55 and r.label in {"real", "fake"}
    for s in r.frame_scores:
        rel, cam = r.heatmaps[s.heatmap_key], r.heatmaps[f"gradcam/{s.heatmap_key}"]
        assert rel.shape == cam.shape == (224, 224) and rel.dtype == np.float16
        assert 0.0 <= float(rel.min()) and float(rel.max()) <= 1.0 and float(rel.max()) > 0.0
        # the seed's token-grid picture is kept as a second relevancy view
        assert r.heatmaps[f"tokens/{s.heatmap_key}"].shape == (224, 224)
    assert list(r.explanations) == ["relevancy", "relevancy (seed token grid)", "Grad-CAM"]


def test_effvit_heatmap_maps_onto_the_face(effvit_dir):
    clip = MediaClip(DATA / "retalking_face5.mp4", ClipConfig(sampling=Uniform(2), device="cpu"))
    frame, crop = clip.face_crops("effvit_square224")[0]
    on_frame = crop.heatmap_to_frame(np.ones((224, 224), np.float32), frame.rgb.shape[:2])
    ys, xs = np.nonzero(np.isfinite(on_frame))
    b = crop.box
    # the covered region contains the face box centre
    assert xs.min() <= (b.x1 + b.x2) / 2 <= xs.max() and ys.min() <= (b.y1 + b.y2) / 2 <= ys.max()


def test_effvit_tampered_weights_refused(effvit_dir, tmp_path):
    import shutil

    from engine.detectors.effvit import EffViTDetector

    bad = tmp_path / "deepfake.effvit"
    shutil.copytree(effvit_dir, bad)
    w = bad / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x01
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError):
        EffViTDetector(model_dir=bad)
