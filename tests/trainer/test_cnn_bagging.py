"""deepfake.cnn bagging (spec §3.1): balanced chunk split, the folder (real/fake) source, and a tiny
``forensic-train fit`` with ``bagging: 3`` whose K members + card load into the voting detector."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA
from trainer.cnn_fit import balanced_chunks, seed_chunk_count
from trainer.labelled import folder_items


# ----------------------------------------------------------------------------------------- chunk split
def _imbalanced(n_real_groups=7, n_fake_groups=2, frames=3):
    """Majority real (label 0) groups of ``frames`` samples each, minority fake (label 1)."""
    labels = np.repeat([0] * n_real_groups + [1] * n_fake_groups, frames)
    groups = np.repeat(np.arange(n_real_groups + n_fake_groups), frames)
    return labels, groups


def test_chunks_balanced_disjoint_and_cover():
    labels, groups = _imbalanced(7, 2, 3)  # seed rule: 7 // 2 = 3 chunks, one majority group left over
    assert seed_chunk_count(labels, groups) == 3
    chunks = balanced_chunks(labels, 3, seed=0, groups=groups)
    assert len(chunks) == 3
    fake_idx = set(np.flatnonzero(labels == 1).tolist())
    seen_real_groups: list[int] = []
    for c in chunks:
        assert c.dtype == np.int64 and np.all(np.diff(c) > 0)  # sorted, no duplicates
        assert fake_idx <= set(c.tolist())  # every minority sample in every chunk
        real_groups = set(groups[c][labels[c] == 0].tolist())
        assert len(real_groups) == 2 == len(set(groups[c][labels[c] == 1].tolist()))  # balanced in groups
        for g in real_groups:  # a chunk holds whole videos
            assert set(np.flatnonzero(groups == g).tolist()) <= set(c.tolist())
        seen_real_groups += sorted(real_groups)
    assert len(seen_real_groups) == len(set(seen_real_groups)) == 6  # disjoint majority shares; 1 of 7 unused
    # exact multiple: every majority group is used exactly once
    labels, groups = _imbalanced(6, 2, 2)
    chunks = balanced_chunks(labels, 3, seed=5, groups=groups)
    union = np.unique(np.concatenate(chunks))
    assert np.array_equal(union, np.arange(len(labels)))


def test_chunks_deterministic_and_seeded():
    labels, groups = _imbalanced(9, 3, 2)
    a = balanced_chunks(labels, 3, seed=1, groups=groups)
    b = balanced_chunks(labels, 3, seed=1, groups=groups)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    others = [balanced_chunks(labels, 3, seed=s, groups=groups) for s in range(2, 8)]
    assert any(not all(np.array_equal(x, y) for x, y in zip(a, o)) for o in others)
    # string group ids (video names) and per-sample groups (None) work; minority may be label 0
    names = np.array([f"v{g:02d}" for g in groups])
    assert all(np.array_equal(x, y) for x, y in zip(a, balanced_chunks(labels, 3, seed=1, groups=names)))
    flipped = balanced_chunks(1 - labels, 2, seed=0)
    assert all((1 - labels)[c].sum() == len(c) // 2 for c in flipped)


def test_chunks_k1_identity_and_bad_k():
    labels, groups = _imbalanced(7, 2, 3)
    (only,) = balanced_chunks(labels, 1, seed=0, groups=groups)
    assert np.array_equal(only, np.arange(len(labels)))
    (one_class,) = balanced_chunks(np.zeros(5, int), 1)  # K = 1 needs no second class
    assert len(one_class) == 5
    for bad in (0, -1, 1.5, "3", True, None):
        with pytest.raises(ValueError):
            balanced_chunks(labels, bad, groups=groups)
    with pytest.raises(ValueError, match="K <= 3"):
        balanced_chunks(labels, 4, groups=groups)  # 7 // 2 = 3 balanced chunks at most
    with pytest.raises(ValueError, match="two classes"):
        balanced_chunks(np.zeros(6, int), 2)
    with pytest.raises(ValueError, match="one label"):
        balanced_chunks(np.array([0, 1, 0, 0]), 2, groups=np.array([0, 0, 1, 2]))
    with pytest.raises(ValueError):
        balanced_chunks(np.array([0, 0, 1, 1]), 2)  # balanced data: one chunk (spec §3.1 loop runs once)
    with pytest.raises(ValueError, match="shape"):
        balanced_chunks(labels, 2, groups=groups[:-1])


# ----------------------------------------------------------------------------------------- folder source
def _touch(root, *paths):
    """Empty files (the adapters only list files, like ``tests/trainer/datasets/conftest.py``'s ``touch``)."""
    for rel in paths:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def test_folder_items_holds_out_whole_groups(tmp_path):
    """Held-out = whole groups (trainer.labelled.hold_out_groups over all classes), each class on both sides."""
    root = _touch(tmp_path, *[f"train/real/r{g}_{f:04d}.png" for g in range(5) for f in range(2)],
                 *[f"train/fake/f{g}_{f:04d}.png" for g in range(2) for f in range(2)],
                 "test/real/t_0000.png", "test/fake/u_0000.png")
    train, val = folder_items({"root": str(root), "dataset": "image_folder", "val_fraction": 0.2}, seed=0)
    assert {it.group for it in val} & {it.group for it in train} == set()  # no group (person) on both sides
    assert {it.label for it in val} == {0, 1} == {it.label for it in train}
    assert len({it.group for it in val if it.label == 0}) == 1 and len({it.group for it in val if it.label == 1}) == 1
    assert len(train) == 2 * 4 + 2 * 1 and all(it.split == "train" for it in train)  # test items not used
    again = folder_items({"root": str(root), "dataset": "image_folder", "val_fraction": 0.2}, seed=0)
    assert [it.path for it in again[1]] == [it.path for it in val]
    with pytest.raises(ValueError, match="data.root"):
        folder_items({"dataset": "image_folder"}, seed=0)
    with pytest.raises(ValueError, match="data.dataset"):
        folder_items({"root": str(root), "dataset": "no_such_dataset"}, seed=0)


def test_fit_refuses_bagging_on_sbi_and_caches_with_folders(tmp_path):
    from trainer.cnn_fit import fit_cnn

    kw = dict(train_caches=[], val_caches=[], seed=0, out_dir=tmp_path, card_info={})
    with pytest.raises(ValueError, match="balanced chunks are a single chunk"):
        fit_cnn(train={"bagging": 2}, config={"data": {}}, **kw)
    with pytest.raises(ValueError, match="bagging"):
        fit_cnn(train={"bagging": 0}, config={"data": {}}, **kw)
    with pytest.raises(ValueError, match="data.source"):
        fit_cnn(train={}, config={"data": {"source": "csv"}}, **kw)
    with pytest.raises(ValueError, match="leave data.train_videos"):
        fit_cnn(train={}, config={"data": {"source": "folders", "root": str(tmp_path)}},
                **{**kw, "train_caches": [tmp_path / "x.npz"]})


def _image_tree(root, n_real=6, n_fake=2, per_group=2):
    """``root/{train,val}/{real,fake}/<group>_<frame>.png``: noise faces, fakes brighter (learnable)."""
    import cv2

    rng = np.random.default_rng(0)
    spec = {"train": {"real": n_real, "fake": n_fake}, "val": {"real": 1, "fake": 1}}
    for split, classes in spec.items():
        for cls, n in classes.items():
            d = root / split / cls
            d.mkdir(parents=True)
            for g in range(n):
                for f in range(per_group):
                    img = rng.integers(0, 120, (48, 40, 3), dtype=np.uint8) + (100 if cls == "fake" else 0)
                    cv2.imwrite(str(d / f"{cls}{g}_{f:04d}.png"), img)
    return root


def test_fit_bagging_3_on_imbalanced_folder_then_detector_votes(tmp_path):
    from engine.detectors.cnn import CNNDetector
    from engine.media import Uniform
    from engine.pipeline import ClipConfig, MediaClip
    from engine.weights import load_weights
    from trainer.cli import main

    torch.set_num_threads(1)
    root = _image_tree(tmp_path / "faces")
    cfg = {
        "detector": "deepfake.cnn", "seed": 0,
        "data": {"source": "folders", "dataset": "image_folder", "root": str(root),
                 "train_videos": [], "val_videos": []},
        "train": {"bagging": 3, "batch_size": 4, "max_epochs": 1, "limit_train_batches": 1,
                  "accelerator": "cpu", "model": {"backbone": "efficientnet_lite0", "init": "random"}},
        "card": {"training_data": "tiny bagging test", "limitations": ["test weights"], "quirks": ["q"]},
    }
    (tmp_path / "bag.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["fit", "--config", str(tmp_path / "bag.yaml"), "--out", str(out), "--device", "cpu"]) == 0

    state, card = load_weights(out)
    assert {k.split(".", 1)[0] for k in state} == {"bag0", "bag1", "bag2"}  # one file, one sha256
    bag = card.training["bagging"]
    # 6 real / 2 fake videos -> 3 chunks of 2 real + 2 fake videos (2 frames each)
    assert bag["members"] == 3 and bag["seed_chunk_count"] == 3 and bag["chunk_sizes"] == [8, 8, 8]
    assert bag["unused_train_faces"] == 0
    assert [m["member"] for m in bag["member_results"]] == [0, 1, 2]
    for m in bag["member_results"]:
        assert m["chunk_real_groups"] == 2 == m["chunk_fake_groups"] and m["epochs_validated"] == 1
        assert m["heldout"]["video"]["n"] == 2 and m["heldout"]["frame"]["n"] == 4
        assert (out / f"bag{m['member']}" / "logs" / "metrics.csv").exists()
    assert card.metrics["bagging_members"] == 3 and 0.0 <= card.metrics["heldout_video_vote_accuracy"] <= 1.0
    assert bag["ensemble"]["heldout_video"]["roc_auc"] == card.metrics["heldout_video_auc"]
    assert "tiny bagging test" in card.training_data and "bagging K=3" in card.training_data
    assert "Train videos (0)" not in card.training_data and card.quirks == ["q"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_real_groups"] == 6 and summary["train_fake_groups"] == 2 and summary["val_faces"] == 4
    rows = json.loads((out / "val_results.json").read_text())
    assert sorted(r["label"] for r in rows) == [0, 1] and all(r["members"] == 3 for r in rows)
    assert all(0 <= r["fake_votes"] <= 3 for r in rows) and (out / "roc.png").exists()

    det = CNNDetector(device="cpu", model_dir=out, batch_size=2)
    assert det.n_members == 3
    # the voting detector reproduces the held-out ensemble scores of the trainer on the same images
    import cv2

    imgs = [cv2.cvtColor(cv2.imread(str(root / "val" / "fake" / f"fake0_{f:04d}.png")), cv2.COLOR_BGR2RGB)
            for f in range(2)]
    (fake_row,) = [r for r in rows if r["label"] == 1]
    assert fake_row["video"] == "fake/fake0"
    assert float(det.score_crops(imgs).mean()) == pytest.approx(fake_row["score"], abs=1e-5)
    r = det.analyze(MediaClip(DATA / "retalking_face5.mp4", ClipConfig(sampling=Uniform(2), device="cpu")))
    assert r.status == "ok", r.message
    v = r.details["bagging"]
    assert v["members"] == 3 and len(v["member_video_scores"]) == 3
    assert v["vote"].endswith(f"members: {r.label}") and v["vote"].startswith(("2 of 3", "3 of 3"))
    assert r.label == ("fake" if v["fake_votes"] >= 2 else "real") and not v["tie"]
    assert r.score == pytest.approx(np.mean(v["member_video_scores"]), abs=1e-5)
    assert r.parameters["bagging_members"] == 3 and len(r.heatmaps) == 2


def test_fit_folders_k1_writes_plain_single_model(tmp_path):
    """``bagging: 1`` on a folder source: the whole (imbalanced) training set, plain keys, no vote."""
    from engine.detectors.cnn import CNNDetector
    from engine.weights import load_weights
    from trainer.cnn_fit import fit_cnn

    torch.set_num_threads(1)
    root = _image_tree(tmp_path / "faces", n_real=3, n_fake=1, per_group=1)
    train = {"batch_size": 4, "max_epochs": 1, "limit_train_batches": 1, "accelerator": "cpu",
             "model": {"backbone": "efficientnet_lite0"}}
    summary = fit_cnn(train_caches=[], val_caches=[], train=train, seed=0, out_dir=tmp_path / "run",
                      card_info={"limitations": ["t"]},
                      config={"data": {"source": "folders", "dataset": "image_folder", "root": str(root)}})
    state, card = load_weights(tmp_path / "run")
    assert not any(k.startswith("bag") for k in state) and "bagging" not in summary
    assert summary["train_faces"] == 4 and summary["train_fake_faces"] == 1 and summary["epochs_validated"] == 1
    assert card.training["train_real_groups"] == 3 and "bagging_members" not in card.metrics
    assert (tmp_path / "run" / "logs" / "metrics.csv").exists()
    assert CNNDetector(model_dir=tmp_path / "run").n_members == 1


def test_labelled_faces_of_a_video_folder(tmp_path, video_folder):
    """Video items are cropped through the engine's preprocessing cache (trainer.cache), labelled per video."""
    from trainer.labelled import labelled_faces

    root = video_folder(tmp_path / "videos", {"real": ["retalking_face5.mp4", "liveportrait_d18.mp4"],
                                              "fake": ["single_face.mp4"]})
    train, val = folder_items({"root": str(root)}, seed=0)  # video_folder, one pool = train
    assert len(val) == 1 and val[0].label == 0 and {it.label for it in train} == {0, 1}
    faces = labelled_faces(train, tmp_path / "cache", frames=2, device="cpu")
    assert faces.crops.shape[1:] == (160, 160, 3) and faces.crops.dtype == np.uint8
    assert faces.counts() == {"real_groups": 1, "fake_groups": 1, "real_faces": 2, "fake_faces": 2}
    (real_train,) = [it for it in train if it.label == 0]
    assert sorted(faces.names) == ["fake/single_face", f"real/{real_train.group}"]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # resumable engine cache
