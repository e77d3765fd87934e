"""forensic-train fit: the same command that made the bundled weights, with tiny configs on CPU."""

from __future__ import annotations

import json

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
        "card": {"training_data": "tiny test run", "limitations": ["test weights"]},
    }
    path = tmp_path / f"{detector}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _check_run(out, detector):
    state, card = load_weights(out)
    assert card.detector_id == detector and card.command.startswith("forensic-train fit --config")
    assert "retalking_face5.mp4" in card.training_data and "single_face.mp4" in card.training_data
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 2 and summary["val_videos"] == 1
    assert (out / "config.yaml").exists()
    assert card.training["wall_time_s"] == summary["wall_time_s"] and card.training["hardware"]
    return summary, card


def test_fit_freq_svm_tiny(tmp_path):
    out = tmp_path / "run_freq"
    assert main(["fit", "--config", _config(tmp_path, "deepfake.freq", {"variant": "svm"}), "--out", str(out),
                 "--device", "cpu"]) == 0
    summary, card = _check_run(out, "deepfake.freq")
    assert summary["train_spectra"] == 16 and summary["val_spectra"] == 8
    assert (out / "roc.png").stat().st_size > 1000 and (out / "val_results.csv").exists()
    assert "roc_auc" in card.metrics


def test_fit_rejects_overlapping_people(tmp_path):
    cfg = _config(tmp_path, "deepfake.freq", {"variant": "svm"})
    doc = yaml.safe_load(open(cfg))
    doc["data"]["val_videos"] = TRAIN[:1]
    open(cfg, "w").write(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="both train and val"):
        main(["fit", "--config", cfg, "--out", str(tmp_path / "x"), "--device", "cpu"])


@pytest.mark.slow
def test_fit_effvit_tiny(tmp_path):
    pytest.importorskip("engine.models.effvit")
    out = tmp_path / "run_effvit"
    train = {"batch_size": 4, "max_epochs": 1, "limit_train_batches": 2, "accelerator": "cpu", "devices": 1,
             "bn_recalibrate_batches": 1, "optimizer": "adamw", "lr": 1e-4, "model": {"trainable_blocks_from": 0}}
    assert main(["fit", "--config", _config(tmp_path, "deepfake.effvit", train), "--out", str(out),
                 "--device", "cpu"]) == 0
    summary, card = _check_run(out, "deepfake.effvit")
    assert summary["epochs_validated"] == 1 and card.architecture == "effvit"
    assert (out / "logs" / "metrics.csv").exists()
    assert (out / "resume" / "state.json").exists() and (out / "resume" / "state.safetensors").exists()

    # resume: one more epoch from the saved state (adamw so optimiser tensors are saved too)
    doc = yaml.safe_load(open(tmp_path / "deepfake.effvit.yaml"))
    doc["train"]["max_epochs"] = 2
    cfg2 = tmp_path / "two_epochs.yaml"
    cfg2.write_text(yaml.safe_dump(doc))
    assert main(["fit", "--config", str(cfg2), "--out", str(out), "--device", "cpu", "--resume"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["resumed_from_epoch"] == 1
    assert [h["epoch"] for h in resumed["val_per_epoch"]] == [0, 1]
    assert resumed["wall_time_s"] > summary["wall_time_s"]
    with pytest.raises(ValueError, match="already done"):
        main(["fit", "--config", str(cfg2), "--out", str(out), "--device", "cpu", "--resume"])


def test_fit_freq_mlp_uses_config_hyperparameters(tmp_path):
    out = tmp_path / "run_mlp"
    train = {"variant": "mlp", "max_epochs": 3, "batch_size": 8, "lr": 1e-3}
    assert main(["fit", "--config", _config(tmp_path, "deepfake.freq", train), "--out", str(out),
                 "--device", "cpu"]) == 0
    _, card = _check_run(out, "deepfake.freq")
    fit = card.config["fit"]
    assert (fit["max_epochs"], fit["batch_size"], fit["lr"]) == (3, 8, 1e-3)


@pytest.mark.slow
def test_fit_effvit_mixed_precision_on_cpu(tmp_path):
    """bf16 autocast (Lightning ``precision: bf16-mixed``) runs end to end; on a GPU the same key gives 16-mixed."""
    out = tmp_path / "run_amp"
    train = {"batch_size": 2, "max_epochs": 1, "limit_train_batches": 1, "accelerator": "cpu", "devices": 1,
             "precision": "bf16-mixed", "bn_recalibrate_batches": 1, "optimizer": "adamw", "lr": 1e-4,
             "model": {"trainable_blocks_from": 0}}
    assert main(["fit", "--config", _config(tmp_path, "deepfake.effvit", train), "--out", str(out),
                 "--device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_validated"] == 1 and 0.0 <= summary["val_auc_best"] <= 1.0
    state, _ = load_weights(out)
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())  # exported weights stay float32


@pytest.mark.slow
def test_fit_effvit_ddp_two_cpu_processes(tmp_path):
    """deepfake.effvit under DDP (2 CPU processes, gloo): the unused ImageNet head of the spec model does not
    hang DDP (find_unused_parameters), BN statistics are averaged over ranks, val AUC is computed from the
    gathered outputs, and rank 0 alone writes the weights, card and resume state."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run_ddp"
    train = {"batch_size": 2, "max_epochs": 1, "limit_train_batches": 2, "accelerator": "cpu", "devices": 2,
             "strategy": "ddp", "bn_recalibrate_batches": 1, "optimizer": "adamw", "lr": 1e-4,
             "model": {"trainable_blocks_from": 0}}
    cfg = _config(tmp_path, "deepfake.effvit", train)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "trainer.cli", "fit", "--config", cfg, "--out", str(out),
                           "--device", "cpu"], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr
    summary, card = _check_run(out, "deepfake.effvit")
    assert summary["epochs_validated"] == 1 and (out / "resume" / "state.json").exists()
