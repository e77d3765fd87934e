"""SyncNet self-supervised training (spec §5.2): AV cache, segments, tiny fit through ``forensic-train fit``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA
from engine.features.avsync import load_syncnet, shift_audio
from trainer.av_cache import cache_av, load_av
from trainer.cli import main
from trainer.syncnet_fit import (
    SegmentStream,
    SyncNetTrainConfig,
    audio_dynamics_db,
    load_av_clips,
    infonce_logits,
    infonce_targets,
    segment_logits,
    segment_offset_logits,
    shifted_offset_eval,
)

GRID = DATA / "bbaf2n.mpg"  # GRID sentence: 3 s, 25 fps, speech
HELD = DATA / "retalking_face5.mp4"


@pytest.fixture(scope="module")
def av_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("av")
    cache_av(GRID, d)
    cache_av(HELD, d)
    return d


def test_cache_av_arrays_aligned(av_dir):
    path = cache_av(GRID, av_dir)  # second call: cached, not recomputed
    d = load_av(path)
    assert path.name.startswith("bbaf2n.") and path.name.endswith(".av.v1.npz")
    n = d["dense_crops"].shape[0]
    assert d["dense_crops"].dtype == np.uint8 and d["dense_crops"].shape[1:] == (224, 224, 3)
    assert 70 <= n <= 76 and d["dense_pts"].shape == (n,) and d["dense_pts"].dtype == np.float64
    assert bool(d["has_face"]) and bool(d["has_audio"])
    assert d["audio_16k"].dtype == np.float32 and abs(d["audio_16k"].size - n / 25 * 16000) <= 16
    assert abs(d["audio_22k"].size - n / 25 * 22050) <= 23
    assert np.all(np.diff(d["dense_pts"]) >= 0)


def test_shift_audio_and_dynamics():
    w = np.arange(10, dtype=np.float32) + 1
    assert np.array_equal(shift_audio(w, 3 / 16000), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    assert np.array_equal(shift_audio(w, -3 / 16000), [4, 5, 6, 7, 8, 9, 10, 0, 0, 0])
    assert audio_dynamics_db(np.zeros(16000, np.float32)) == (pytest.approx(-180.0), pytest.approx(0.0))


def test_segments_and_logits(av_dir):
    cfg = SyncNetTrainConfig(lip_size=64, emb_dim=8, segment_windows=6, neg_range=2, augment=True)
    clips, skipped = load_av_clips(sorted(av_dir.glob("*.npz")), 64, min_windows=10)
    assert {c.name for c in clips} == {"bbaf2n.mpg", "retalking_face5.mp4"}, skipped
    lips, aud = next(iter(SegmentStream(clips, cfg, seed=0)))
    assert lips.shape == (3, 10, 64, 64) and lips.dtype == torch.float32 and 0 <= lips.min() and lips.max() <= 255
    assert aud.shape == (10, 1, 13, 20)
    from engine.models.syncnet import SyncNet, SyncNetConfig

    model = SyncNet(SyncNetConfig(8, 64))
    logits = segment_logits(model, lips[None], aud[None])
    assert logits.shape == (1, 6, 10) and (logits <= 0).all()
    z = segment_logits(model, lips[None], aud[None], zero_candidate=True, standardize=True, scale=2.0)
    assert z.shape == (1, 6, 11)
    torch.testing.assert_close(z[..., :10].mean(-1), torch.zeros(1, 6), atol=1e-4, rtol=0)  # z over audio candidates
    seg = segment_offset_logits(model, torch.stack([lips, lips]), torch.stack([aud, aud]), neg_range=2)
    assert seg.shape == (2, 6)  # offsets -2..2 + the zero-vector candidate
    torch.testing.assert_close(seg[:, :5].mean(-1), torch.zeros(2), atol=1e-4, rtol=0)

    nce = infonce_logits(SyncNet(SyncNetConfig(8, 64, normalize=True)), torch.stack([lips, lips]),
                         torch.stack([aud, aud]), scale=10.0)
    assert nce.shape == (2, 6, 20) and (nce <= 1e-5).all() and (nce >= -20.0 - 1e-4).all()  # -5‖a-b‖², unit vectors


def test_infonce_targets_point_at_the_in_sync_audio_window():
    t = infonce_targets(b=2, L=3, n_audio=7, neg_range=2)
    assert t.tolist() == [2, 3, 4, 9, 10, 11]  # segment b, window i -> b*(L+2R) + i + R


def test_shifted_offset_eval_perfect_embeddings():
    rng = np.random.default_rng(0)
    aud = rng.standard_normal((80, 4)).astype(np.float32)
    pairs = shifted_offset_eval(aud.copy(), aud, chunk=40, max_shift=6)
    assert all(off == -s for s, off in pairs) and len(pairs) == 13 * 3


def test_fit_syncnet_tiny(tmp_path, av_dir):
    cfg = {
        "detector": "syncnet", "seed": 0,
        "data": {"cache_dir": str(tmp_path / "faces"), "frames_per_video": 2, "av_cache_dir": str(av_dir),
                 "train_videos": [str(GRID)], "av_extra_train_videos": [], "val_videos": [str(HELD)]},
        "train": {"lip_size": 64, "emb_dim": 16, "segment_windows": 6, "neg_range": 2, "segments_per_batch": 2,
                  "steps_per_epoch": 2, "max_epochs": 1, "val_chunk_frames": 30, "val_max_frames": 40,
                  "eval_shifts": [-3, 0, 3], "eval_max_frames": 40,
                  "width": 0.25, "normalize": True, "loss": "infonce", "logit_scale": 10.0},
        "card": {"training_data": "tiny test run", "limitations": ["test weights"]},
    }
    path = tmp_path / "syncnet.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    n_before = len(list(av_dir.glob("*.npz")))
    assert main(["fit", "--config", str(path), "--out", str(out), "--device", "cpu"]) == 0
    model, card = load_syncnet(out)
    assert card.detector_id == "syncnet" and card.architecture == "syncnet"
    assert card.config == {"emb_dim": 16, "lip_size": 64, "region": "mouth", "width": 0.25, "normalize": True} and card.command.startswith("forensic-train fit")
    assert "bbaf2n.mpg" in card.training_data and card.limitations == ["test weights"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 1 and summary["val_videos"] == 1 and summary["steps"] == 2
    assert summary["heldout"]["n_shifted_clips"] == 3 and 0.0 <= summary["heldout"]["offset_acc_pm1"] <= 1.0
    assert (out / "logs" / "metrics.csv").exists() and (out / "val_results.csv").exists()
    rows = json.loads((out / "val_results.json").read_text())
    assert [r["expected_offset"] for r in rows] == [3, 0, -3] and all(-15 <= r["offset"] <= 15 for r in rows)
    assert card.training["wall_time_s"] == summary["wall_time_s"]
    for sub in ("best", "last"):  # interim best and final state: loadable model folders too
        assert load_syncnet(out / sub)[1].config == card.config
    assert len(list(av_dir.glob("*.npz"))) == n_before  # the AV caches were reused, not rebuilt
