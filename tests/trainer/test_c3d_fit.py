"""forensic-train fit for deepfake.c3d: a tiny CPU run through the CLI writes a loadable model
and its held-out metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import DATA
from engine.weights import load_weights
from trainer.cli import main

TRAIN = [str(DATA / "retalking_face5.mp4"), str(DATA / "liveportrait_d18.mp4")]
VAL = [str(DATA / "single_face.mp4")]


def test_clip_windows_and_consistent_blend():
    from trainer.c3d_fit import blend_clip, clip_windows

    w = clip_windows(64, 16, step=2)
    assert len(w) == 64 - 30 and w[0].tolist() == list(range(0, 32, 2)) and w[-1][-1] == 63
    (short,) = clip_windows(10, 16, step=2)
    assert short.tolist() == [0, 2, 4, 6, 8] + [9] * 11
    chunks = clip_windows(20, 16, overlapping=False)
    assert [len(c) for c in chunks] == [16, 16] and chunks[1].tolist() == [16, 17, 18, 19] + [19] * 12
    with pytest.raises(ValueError):
        clip_windows(20, 16, step=2, overlapping=False)

    # one blend per clip: the same frame twice in a clip is blended identically
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
    lm = np.array([[60, 70], [100, 70], [80, 90], [65, 112], [95, 112]], np.float32)
    out = blend_clip(np.stack([frame, frame]), np.stack([lm, lm]), [1, 2, 3])
    assert out.dtype == np.uint8 and np.array_equal(out[0], out[1]) and not np.array_equal(out[0], frame)
    other = blend_clip(frame[None], lm[None], [1, 2, 4])
    assert not np.array_equal(other[0], out[0])


@pytest.mark.slow
def test_fit_c3d_tiny_through_the_cli(tmp_path):
    cfg = {
        "detector": "deepfake.c3d",
        "seed": 0,
        "data": {"cache_dir": str(tmp_path / "cache"), "frames_per_video": 4, "train_videos": TRAIN,
                 "val_videos": VAL},
        "train": {"batch_size": 2, "max_epochs": 2, "limit_train_batches": 2, "accelerator": "cpu",
                  "model": {"clip_len": 16, "width": 0.0625}},
        "card": {"training_data": "tiny test run", "limitations": ["test weights"], "quirks": ["q"]},
    }
    path = tmp_path / "c3d.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["fit", "--config", str(path), "--out", str(out), "--device", "cpu"]) == 0

    state, card = load_weights(out)
    assert card.detector_id == "deepfake.c3d" and card.architecture == "c3d" and card.classes == ["real", "fake"]
    assert card.command.startswith("forensic-train fit --config") and card.quirks == ["q"]
    assert "retalking_face5.mp4" in card.training_data and "single_face.mp4" in card.training_data
    assert {"val_video_auc", "val_video_accuracy", "val_video_eer", "val_clip_auc"} <= set(card.metrics)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 2 and summary["val_videos"] == 1 and summary["epochs_validated"] == 2
    assert summary["train_windows"] == 2  # 4 cached frames: one padded window per video
    video = summary["heldout_video_metrics"]
    assert (video["n_real"], video["n_fake"]) == (1, 1) and 0.0 <= video["accuracy"] <= 1.0
    assert summary["heldout_clip_metrics"]["n"] == 4  # 2 phases x 1 clip, real + self-blended
    assert card.training["wall_time_s"] == summary["wall_time_s"]
    for name in ("logs/metrics.csv", "roc.png", "val_results.csv", "val_results.json", "config.yaml"):
        assert (out / name).exists(), name
    rows = json.loads((out / "val_results.json").read_text())
    assert sorted(r["label"] for r in rows) == [0, 1] and all(0.0 <= r["score"] <= 1.0 for r in rows)

    # the exported weights are what the detector loads
    from engine.detectors.c3d import C3DDetector

    det = C3DDetector(device="cpu", model_dir=out, explain=False)
    s = det.score_crops([np.zeros((160, 160, 3), np.uint8)] * 3)
    assert s.shape == (3,) and np.all((0 <= s) & (s <= 1))
    assert sum(v.numel() for v in state.values()) == summary["parameters"]
