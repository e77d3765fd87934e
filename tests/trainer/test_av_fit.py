"""trainer.av_fit: SyncNet latency per audio variant, seed 5 augmentation and loss, tiny fit through the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA
from engine.weights import ModelCard, load_weights, save_weights
from trainer.av_fit import AVSampleDataset, AVClip, latency_variants, tmc_face_augment, weighted_ce
from trainer.cli import main

TRAIN = [str(DATA / "single_face.mp4"), str(DATA / "bbaf2n.mpg")]
VAL = [str(DATA / "retalking_face5.mp4"), str(DATA / "liveportrait_d18.mp4")]


@pytest.fixture(scope="module")
def syncnet_dir(tmp_path_factory):
    from engine.models.syncnet import SyncNet, SyncNetConfig

    torch.manual_seed(0)
    cfg = SyncNetConfig(lip_size=112)
    out = tmp_path_factory.mktemp("syncnet") / "syncnet"
    save_weights(SyncNet(cfg).state_dict(), ModelCard(
        detector_id="syncnet", architecture="syncnet", config=asdict(cfg), classes=[], training_data="untrained",
        metrics={}, evaluation="none", limitations=["test weights"], sha256=""), out)
    return out


@pytest.mark.parametrize("region", ["face", "mouth"])
def test_latency_variants_equal_sync_offsets(region):
    from engine.features.avsync import mfcc_16k, sync_offsets
    from engine.models.syncnet import MOUTH_REGIONS, SyncNet, SyncNetConfig

    assert region in MOUTH_REGIONS
    torch.manual_seed(0)
    model = SyncNet(SyncNetConfig(lip_size=112, region=region)).eval()
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (30, 112, 112, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(int(1.2 * 16000))).astype(np.float32)
    variants = {"real": audio, "shift": np.roll(audio, 3 * 640), "other": audio[::-1].copy()}
    cache: dict = {}
    fast = latency_variants(model, faces, variants, chunk=8, audio_cache=cache)
    n_unique = len(cache)
    for name, wave in variants.items():
        ref = sync_offsets(model, faces, mfcc_16k(wave))
        assert np.allclose(fast[name].mdist, ref.mdist, atol=1e-4), name
        assert fast[name].offset == ref.offset and fast[name].conf == pytest.approx(ref.conf, abs=1e-4)
        assert fast[name].dists.shape == ref.dists.shape
    # the rotated audio reused the original windows except near the seam
    assert n_unique < 3 * fast["real"].dists.shape[0]


def test_tmc_face_augment_keeps_shape_and_is_seeded():
    img = np.random.default_rng(1).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    a = tmc_face_augment(img, np.random.default_rng(5))
    b = tmc_face_augment(img, np.random.default_rng(5))
    assert a.shape == img.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    outs = [tmc_face_augment(img, np.random.default_rng(s)) for s in range(8)]
    assert any(not np.array_equal(o, img) for o in outs)


def test_weighted_cross_entropy_is_the_seeds():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    w = torch.tensor([3.0, 1.0, 1.0])
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert float(weighted_ce(logits, y, w)) == pytest.approx(float((w * ce).sum() / w.sum()))
    assert float(weighted_ce(logits, y, torch.ones(3))) == pytest.approx(float(ce.mean()))


def test_dataset_items_sbi_is_one_blend_per_clip():
    rng = np.random.default_rng(0)
    faces = np.repeat(rng.integers(60, 200, (1, 1, 32, 32, 3), dtype=np.uint8), 16, axis=1)  # 16 equal frames
    mel = np.zeros((16, 32, 32, 3), np.uint8)
    lat = np.zeros(33, np.float32)
    clip = AVClip("a.mp4", faces, (32 / 7, 0.0, 6 * 32 / 7, 5 * 32 / 7),
                  {"real": ("real", mel, lat, {}), "shift+": ("shift", mel, lat, {}),
                   "mismatch:b": ("mismatch", mel, lat, {})})
    ds = AVSampleDataset([clip], train=False, seed=0, img_size=32)
    kinds = [ds.describe(i)["kind"] for i in range(len(ds))]
    assert kinds == ["real", "sbi", "shift", "mismatch"]
    assert ds.real_weight == 3.0  # three fakes per real
    x_real, _, y_real, w_real, _ = ds[0]
    x_sbi, lat_sbi, y_sbi, w_sbi, kind = ds[1]
    assert x_real.shape == (3, 32, 32, 32) and (int(y_real), int(y_sbi)) == (0, 1) and kind == "sbi"
    assert float(w_real) == 3.0 and float(w_sbi) == 1.0 and lat_sbi.shape == (33,)
    face_frames = x_sbi[:, :16]
    assert not torch.equal(face_frames, x_real[:, :16])
    assert all(torch.equal(face_frames[:, 0], face_frames[:, t]) for t in range(16))  # same blend on every frame
    train = AVSampleDataset([clip], train=True, seed=0, img_size=32, repeats=3)
    assert len(train) == 12 and train.real_weight == 3.0  # 4 kinds x 3 draws per epoch
    assert not torch.equal(train[0][0], train[4][0])  # another draw of the same real clip (augmented)


@pytest.mark.slow
def test_fit_av_tiny_through_the_cli(tmp_path, syncnet_dir):
    cfg = {
        "detector": "deepfake.av", "seed": 100,
        "data": {"cache_dir": str(tmp_path / "faces"), "frames_per_video": 2, "av_cache_dir": str(tmp_path / "av"),
                 "train_videos": TRAIN, "val_videos": VAL},
        "train": {"optimizer": "adamw", "lr": 1e-3, "max_epochs": 2, "batch_size": 4, "phases": 2,
                  "mismatch_partners": 1, "syncnet_dir": str(syncnet_dir), "latency_norm": "train",
                  "model": {"img_size": 32, "patch_size": 16, "embed_dims": 16, "depth": 1, "num_heads": 2}},
        "card": {"training_data": "tiny test run", "limitations": ["test weights"], "quirks": ["test"]},
    }
    path = tmp_path / "av.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run_av"
    assert main(["fit", "--config", str(path), "--out", str(out), "--device", "cpu"]) == 0

    state, card = load_weights(out)
    assert card.detector_id == "deepfake.av" and card.architecture == "av_timesformer"
    assert card.command.startswith("forensic-train fit --config")
    from engine.models import create_model

    model = create_model(card.architecture, card.config)
    model.load_state_dict(state)
    # latency_norm "train": fixed z-score vectors measured on the training variants, stored in the card
    assert len(card.config["latency_mean"]) == len(card.config["latency_std"]) == 33
    assert torch.allclose(model.latency_mean, torch.tensor(card.config["latency_mean"], dtype=torch.float32))
    assert {"heldout_auc_all", "heldout_auc_sbi", "heldout_auc_shift", "heldout_auc_mismatch"} <= set(card.metrics)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 2 and summary["val_videos"] == 2 and summary["epochs_validated"] == 2
    assert summary["train_items_per_epoch"] == {"real": 2, "sbi": 2, "shift": 2, "mismatch": 2}
    assert summary["val_items"] == {"real": 2, "sbi": 2, "shift": 4, "mismatch": 2}
    assert card.training["heldout"]["all"]["n"] == 10
    rows = json.loads((out / "val_results.json").read_text())
    assert {r["group"] for r in rows} == {"real", "sbi", "shift", "mismatch"}
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert (out / "logs" / "metrics.csv").exists() and (out / "roc.png").stat().st_size > 1000
    variants = json.loads((out / "latency_variants.json").read_text())
    assert {v["kind"] for v in variants} == {"real", "shift", "mismatch"}
    assert all(0.4 <= abs(v["shift_s"]) <= 0.6 for v in variants if v["kind"] == "shift")
    assert len(list((tmp_path / "av" / "latency").glob("*.npz"))) == len(variants)  # latency stored once per variant
