"""forensic-train reproduce: prepare -> fit -> evaluate -> table end to end on tiny generated datasets (CPU).

Tables run end to end here: ``freq-cross-test`` (two tiny seed-4 image folders), ``vision-table2`` (a tiny
simulated-device VISION tree) and ``ffpp-methods`` (a tiny FF++ tree of bundled test videos, with the
detector overridden to the fast ``deepfake.freq`` SVM). The DDP path is tested in test_fit.py /
test_camera_fit.py (2 CPU processes, gloo).
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


def test_ffpp_methods_end_to_end_with_fast_detector(tmp_path):
    """FF++ layout -> real-video face caches -> run_fit (deepfake.freq SVM via --override) -> run_evaluate on
    videos -> per-method table (each method scored with all originals, spec §2.6) with the seed's numbers."""
    data = tmp_path / "data"
    videos = ["retalking_face5.mp4", "liveportrait_d18.mp4", "single_face.mp4"]
    orig = data / "FF++" / "original_sequences" / "youtube" / "c23" / "videos"
    orig.mkdir(parents=True)
    for i in range(6):  # ids 000-003 -> train, the pair 004/005 -> val (the adapter's 72/14/14 group split)
        shutil.copy(DATA / videos[i % 3], orig / f"{i:03d}.mp4")
    for method, name, src in (("Deepfakes", "004_005.mp4", videos[2]), ("Face2Face", "005_004.mp4", videos[0])):
        d = data / "FF++" / "manipulated_sequences" / method / "c23" / "videos"
        d.mkdir(parents=True)
        shutil.copy(DATA / src, d / name)
    out = tmp_path / "out"
    assert main(["reproduce", "ffpp-methods", "--data-root", str(data), "--out", str(out), "--device", "cpu", "--tiny",
                 "--override", "detector=deepfake.freq", "--override", "train={variant: svm}",
                 "--override", "table.split=val"]) == 0
    rows = _rows(out / "tables" / "ffpp-methods" / "comparison.csv")
    assert list(rows[0]) == ["model", "test_set", "threshold", "metric", "ours", "paper"]
    acc = {r["test_set"]: r for r in rows if r["metric"] == "accuracy"}
    assert set(acc) == {"All", "Deepfakes + Original", "Face2Face + Original"}
    assert float(acc["All"]["paper"]) == 0.9401 and float(acc["Face2Face + Original"]["paper"]) == 0.96
    n = {r["test_set"]: int(r["ours"]) for r in rows if r["metric"] == "n"}
    assert n == {"All": 4, "Deepfakes + Original": 3, "Face2Face + Original": 3}
    run = out / "runs" / "effvit.ffpp"
    assert (run / "reproduce_config.yaml").exists() and (run / "model.safetensors").exists()
    card = json.loads((run / "card.json").read_text())
    assert card["detector_id"] == "deepfake.freq" and "000.mp4" in card["training_data"]


def test_celebdf_end_to_end_trains_the_cnn_on_labelled_fakes(tmp_path):
    """Celeb-DF layout -> deepfake.cnn fitted on the dataset's own real AND Celeb-synthesis training videos
    (data.source: folders, spec §3.1; never on the official test list) + the triplet network -> official
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
    rows = _rows(out / "tables" / "celebdf" / "comparison.csv")
    assert {r["model"] for r in rows} == {"triplet.celebdf", "cnn.celebdf"}
    assert any(r["model"] == "cnn.celebdf" and r["metric"] == "accuracy" and float(r["paper"]) == 0.96 for r in rows)
