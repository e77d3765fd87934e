"""forensic-train reproduce: prepare -> fit -> evaluate -> table end to end on tiny generated datasets (CPU).

Tables run end to end here: ``freq-cross-test`` (two tiny seed-4 image folders), ``vision-table2`` (a tiny
simulated-device VISION tree), ``ffpp-methods`` (a tiny FF++ tree of bundled test videos; deepfake.effvit on
the labelled real + manipulated videos, a small model via --override) and ``celebdf``. The DDP path is tested in
test_fit.py / test_camera_fit.py (2 CPU processes, gloo).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import DATA
from trainer.cli import main
from trainer.reproduce import TABLES, TRAIN_CONFIG_CLASSES, load_table_configs, parse_override


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_list_prints_every_table(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("vision-table2", "vision-table3", "vision-table4", "vision-table5", "ffpp-methods", "celebdf",
                 "freq-cross-test", "tmc-auc"):
        assert f"forensic-train reproduce {name} --data-root DATA_ROOT --out OUT" in out
    assert "configs/reproduce/effvit.ffpp.yaml" in out


@pytest.mark.parametrize("tiny", [False, True])
def test_every_config_builds_its_fitters_train_config(tiny):
    """Each YAML's train: section (paper scale and --tiny, with the scale flags) is accepted by its fitter."""
    import dataclasses
    import importlib

    scale = {"devices": 8, "num_nodes": 2, "strategy": "ddp", "precision": "16-mixed"}
    for spec in TABLES.values():
        _, configs = load_table_configs(spec, tiny=tiny, scale=scale)
        for stem, cfg in configs.items():
            det, train = cfg["detector"], dict(cfg.get("train", {}))
            if det == "deepfake.freq":
                assert train["variant"] in ("svm", "mlp")
                continue
            module, cls = TRAIN_CONFIG_CLASSES[det].split(":")
            klass = getattr(importlib.import_module(module), cls)
            for key in ("milestones", "shift_range_s"):
                if key in train:
                    train[key] = tuple(train[key])
            built = klass.from_dict(train) if hasattr(klass, "from_dict") else klass(**train)
            fields = {f.name for f in dataclasses.fields(klass)}
            if det in ("deepfake.effvit", "camera.audio", "camera.image"):  # DDP-capable fitters get the scale flags
                assert (built.devices, built.num_nodes, built.strategy, built.precision) == (8, 2, "ddp", "16-mixed")
            else:
                assert "strategy" not in train and train.get("devices", 1) == 1, stem
                if "precision" in fields:
                    assert built.precision == "16-mixed"


def test_override_parsing():
    assert parse_override("train.max_epochs=2") == (["train", "max_epochs"], 2)
    assert parse_override("table.datasets=[c0, c23]") == (["table", "datasets"], ["c0", "c23"])
    with pytest.raises(ValueError):
        parse_override("train.max_epochs")


def test_freq_cross_test_end_to_end(tmp_path, image_dataset, capsys):
    data = tmp_path / "data"
    image_dataset(data / "freq" / "c0", {"train": ["retalking_face5.mp4"], "test": ["single_face.mp4"]}, 1, 6)
    image_dataset(data / "freq" / "c23", {"train": ["liveportrait_d18.mp4"], "test": ["single_face.mp4"]}, 2, 6)
    out = tmp_path / "out"
    argv = ["reproduce", "freq-cross-test", "--data-root", str(data), "--out", str(out), "--device", "cpu",
            "--tiny", "--override", "table.datasets=[c0, c23]"]
    assert main([*argv, "--until", "prepare"]) == 0  # prepare only: spectra, no run, no table
    assert sorted(p.name for p in (out / "prepare" / "freq").iterdir()) == ["c0.train.n50.npz", "c23.train.n50.npz"]
    assert not (out / "runs").exists() and not (out / "tables").exists()
    assert main(argv) == 0
    table = out / "tables" / "freq-cross-test"
    rows = _rows(table / "comparison.csv")
    assert list(rows[0]) == ["model", "train_set", "test_set", "metric", "ours", "paper"]
    assert len(rows) == 2 * 2 * 2  # {svm, mlp} x 2 train sets x 2 test sets
    by = {(r["model"], r["test_set"]): r for r in rows}
    assert float(by[("svm (train c0)", "c0")]["paper"]) == 0.92 and float(by[("mlp (train c23)", "c0")]["paper"]) == 0.86
    assert all(0.0 <= float(r["ours"]) <= 1.0 for r in rows)
    md = (table / "comparison.md").read_text()
    assert "| model | train_set | test_set | metric | ours | paper |" in md and "seed 4" in md
    doc = json.loads((table / "comparison.json").read_text())
    assert doc["tiny"] and doc["settings"]["datasets"] == ["c0", "c23"]
    assert (out / "eval" / "freq-cross-test" / "matrix.md").exists()
    assert (out / "runs" / "freq_svm.c0" / "card.json").exists() and (out / "runs" / "freq_nn.c23" / "card.json").exists()
    capsys.readouterr()

    # resumable: a second run skips prepare, fit and evaluate
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("skipped") == 2 * 2 + 2 * 2 + 1 and "finished in" not in err


@pytest.mark.slow
def test_vision_table2_end_to_end(tmp_path):
    from trainer.simdevice import DEMO_DEVICES, build_simulated_vision

    data = tmp_path / "data"
    report = build_simulated_vision([DATA / "single_face.mp4", DATA / "retalking_face5.mp4"], data / "VISION",
                                    devices=DEMO_DEVICES[:2], clip_s=0.8, clips_per_source=3, n_folds=3, seed=0)
    assert not report.get("skipped"), report
    out = tmp_path / "out"
    assert main(["reproduce", "vision-table2", "--data-root", str(data), "--out", str(out), "--device", "cpu",
                 "--tiny"]) == 0
    table = out / "tables" / "vision-table2"
    rows = _rows(table / "comparison.csv")
    assert [r["model"] for r in rows] == ["audio", "image", "product", "sum"]
    assert all(r["content"] == "Native" and r["folds"] == "1" and r["paper"] == "" for r in rows)
    assert all(0.0 <= float(r["ours"]) <= 1.0 for r in rows)
    for name in ("tables.md", "tables.tex", "accuracy.csv", "significance.csv", "comparison.md", "comparison.json"):
        assert (table / name).exists(), name
    assert "spec §8" in (table / "comparison.md").read_text()
    for det in ("camera.audio", "camera.image"):
        assert (out / "runs" / "vision" / "Native" / "fold0" / det / "model.safetensors").exists()
        assert (out / "eval" / "vision" / "Native" / "fold0" / det / "proba.json").exists()


def test_ffpp_methods_end_to_end_trains_effvit_on_labelled_fakes(tmp_path):
    """FF++ layout -> labelled real + manipulated face caches -> run_fit (deepfake.effvit, data.source: folders as
    seed 2 §2.3, a small model via --override) -> run_evaluate on videos -> per-method table (each method scored
    with all originals, spec §2.6) with the seed's numbers."""
    data = tmp_path / "data"
    videos = ["retalking_face5.mp4", "liveportrait_d18.mp4", "single_face.mp4"]
    orig = data / "FF++" / "original_sequences" / "youtube" / "c23" / "videos"
    orig.mkdir(parents=True)
    for i in range(6):  # ids 000-003 -> train, the pair 004/005 -> val (the adapter's 72/14/14 group split)
        shutil.copy(DATA / videos[i % 3], orig / f"{i:03d}.mp4")
    for method, name, src in (("Deepfakes", "000_001.mp4", videos[1]),  # the training fake (group 000_001)
                              ("Deepfakes", "004_005.mp4", videos[2]), ("Face2Face", "005_004.mp4", videos[0])):
        d = data / "FF++" / "manipulated_sequences" / method / "c23" / "videos"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / src, d / name)
    out = tmp_path / "out"
    assert main(["reproduce", "ffpp-methods", "--data-root", str(data), "--out", str(out), "--device", "cpu", "--tiny",
                 "--override", "data.frames_per_video=2", "--override", "table.frames=2",
                 "--override", "train.model={trainable_blocks_from: 16, depth: 1}",
                 "--override", "train.limit_train_batches=1", "--override", "table.split=val"]) == 0
    rows = _rows(out / "tables" / "ffpp-methods" / "comparison.csv")
    assert list(rows[0]) == ["model", "test_set", "threshold", "metric", "ours", "paper"]
    acc = {r["test_set"]: r for r in rows if r["metric"] == "accuracy"}
    assert set(acc) == {"All", "Deepfakes + Original", "Face2Face + Original"}
    assert float(acc["All"]["paper"]) == 0.9401 and float(acc["Face2Face + Original"]["paper"]) == 0.96
    n = {r["test_set"]: int(r["ours"]) for r in rows if r["metric"] == "n"}
    assert n == {"All": 4, "Deepfakes + Original": 3, "Face2Face + Original": 3}
    assert "effvit.ffpp: trained as the seed did" in (out / "tables" / "ffpp-methods" / "comparison.md").read_text()
    # prepare cached the labelled real AND fake videos the fitter reads (train + val split, 9 videos)
    marker = json.loads((out / "prepare" / "ffpp.labelled_faces.f2.json").read_text())
    assert len(marker["videos"]) == 9 and any("000_001" in v for v in marker["videos"])
    run = out / "runs" / "effvit.ffpp"
    cfg = yaml.safe_load((run / "reproduce_config.yaml").read_text())
    assert cfg["data"]["source"] == "folders" and cfg["data"]["dataset"] == "ffpp" and "train_videos" not in cfg["data"]
    card = json.loads((run / "card.json").read_text())
    assert card["detector_id"] == "deepfake.effvit" and set(card["metrics"]) == {"val_auc"}
    assert "labelled held-out real/fake faces of ffpp" in card["evaluation"]
    assert "ffpp at " in card["training_data"] and "train 3 real / 1 fake groups" in card["training_data"]
    split = json.loads((run / "labelled_split.json").read_text())
    assert split["train"] == {"real": ["000_001", "002", "003"], "fake": ["000_001"]}  # groups = FF++ id pairs
    assert split["val"] == {"real": ["004_005"], "fake": ["004_005"]}


def test_celebdf_end_to_end_trains_the_cnn_on_labelled_fakes(tmp_path):
    """Celeb-DF layout -> deepfake.cnn and deepfake.triplet fitted on the dataset's own real AND Celeb-synthesis
    training videos (data.source: folders, spec §3.1 / §3.5; never on the official test list) -> official
    test list -> table with the seed's numbers."""
    data = tmp_path / "data" / "Celeb-DF-v2"
    vids = ["retalking_face5.mp4", "liveportrait_d18.mp4", "single_face.mp4"]
    tree = {"Celeb-real/id0_0000.mp4": 0, "Celeb-real/id1_0000.mp4": 1, "Celeb-real/id2_0000.mp4": 2,
            "Celeb-real/id3_0000.mp4": 0, "YouTube-real/00000.mp4": 1,
            "Celeb-synthesis/id0_id1_0000.mp4": 2, "Celeb-synthesis/id1_id0_0000.mp4": 0,
            "Celeb-synthesis/id2_id0_0000.mp4": 1, "Celeb-synthesis/id3_id1_0000.mp4": 2}
    for rel, k in tree.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / vids[k], data / rel)
    (data / "List_of_testing_videos.txt").write_text("1 Celeb-real/id2_0000.mp4\n0 Celeb-synthesis/id2_id0_0000.mp4\n")
    out = tmp_path / "out"
    assert main(["reproduce", "celebdf", "--data-root", str(data.parent), "--out", str(out), "--device", "cpu",
                 "--tiny"]) == 0
    cfg = yaml.safe_load((out / "runs" / "cnn.celebdf" / "reproduce_config.yaml").read_text())
    assert cfg["data"]["source"] == "folders" and cfg["data"]["root"] == str(data) and "train_videos" not in cfg["data"]
    card = json.loads((out / "runs" / "cnn.celebdf" / "card.json").read_text())
    trained_on = json.dumps(card["training"])
    assert "id2_0000" not in trained_on and "id2_id0_0000" not in trained_on  # the test list is never trained on
    # the triplet network too trains on the labelled real + Celeb-synthesis faces (seed 3 §3.5), people held out whole
    tcard = json.loads((out / "runs" / "triplet.celebdf" / "card.json").read_text())
    assert "labelled held-out real/fake faces of celebdf" in tcard["evaluation"]
    assert "TNN fake class = the labelled fake faces" in tcard["training_data"]
    for stem in ("triplet.celebdf", "cnn.celebdf"):
        split = json.loads((out / "runs" / stem / "labelled_split.json").read_text())
        train_people = set(split["train"]["real"]) | set(split["train"]["fake"])
        val_people = set(split["val"]["real"]) | set(split["val"]["fake"])
        assert split["val"]["real"] and split["val"]["fake"] and not train_people & val_people, stem
        assert "id2" not in train_people | val_people  # id2's only videos are on the official test list
    assert "trained as the seed did" in (out / "tables" / "celebdf" / "comparison.md").read_text()
    rows = _rows(out / "tables" / "celebdf" / "comparison.csv")
    assert {r["model"] for r in rows} == {"triplet.celebdf", "cnn.celebdf"}
    assert any(r["model"] == "cnn.celebdf" and r["metric"] == "accuracy" and float(r["paper"]) == 0.96 for r in rows)
