"""Seed 1 camera-model pipeline end to end on a tiny simulated-device tree (issue 6 must-show).

simulate-devices -> prepare vision -> fit camera.audio / camera.image (1 epoch) -> evaluate
-> tables vision, all through the ``forensic-train`` CLI on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.cli import main as train_main

DATA = Path(__file__).resolve().parents[1] / "data" / "media"


@pytest.fixture(scope="module")
def sim_tree(tmp_path_factory) -> Path:
    from trainer.simdevice import DEMO_DEVICES, build_simulated_vision

    root = tmp_path_factory.mktemp("simvision")
    sources = [DATA / "single_face.mp4", DATA / "retalking_face5.mp4"]
    report = build_simulated_vision(sources, root, devices=DEMO_DEVICES[:2], clip_s=0.8, clips_per_source=3,
                                    n_folds=3, seed=0)
    assert not report.get("skipped"), report
    return root


def test_prepare_fit_evaluate_tables(sim_tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert train_main(["prepare", "vision", str(sim_tree), "--content", "Native", "--out", str(cache),
                       "--frames", "2"]) == 0
    index = json.loads((cache / "index.json").read_text())
    assert len(index["videos"]) == 12 and not index["failed"]
    runs = tmp_path / "runs"
    for det in ("camera.audio", "camera.image"):
        out = runs / det / "fold0"
        assert train_main(["fit", det, "--root", str(sim_tree), "--content", "Native", "--fold", "0",
                           "--out", str(out), "--cache", str(cache), "--frames", "2", "--epochs", "1",
                           "--device", "cpu"]) == 0
        card = json.loads((out / "card.json").read_text())
        assert card["classes"] == ["D01", "D02"] and card["detector_id"] == det
        assert card["command"].startswith(f"forensic-train fit {det}")
        summary = json.loads((out / "summary.json").read_text())
        assert summary["test_videos"] == 4 and summary["epochs_run"] == 1
        proba = json.loads((out / "proba.json").read_text())
        assert len(proba["videos"]) == 4
        for v in proba["videos"].values():
            assert np.isclose(sum(v["proba"]), 1.0, atol=1e-5)
        # evaluate re-scores the same test fold from the exported weights: same probabilities
        ev = tmp_path / "eval" / det
        assert train_main(["evaluate", "--model", str(out), "--dataset", f"vision:{sim_tree}", "--content", "Native",
                           "--fold", "0", "--out", str(ev), "--cache", str(cache), "--frames", "2"]) == 0
        again = json.loads((ev / "proba.json").read_text())
        for stem, v in proba["videos"].items():
            assert np.allclose(again["videos"][stem]["proba"], v["proba"], atol=1e-4)
    tables = tmp_path / "tables"
    assert train_main(["tables", "vision", "--runs", str(runs), "--out", str(tables)]) == 0
    md = (tables / "tables.md").read_text()
    assert "Native" in md and "product" in md.lower() and "sum" in md.lower()
    assert (tables / "tables.tex").exists() and (tables / "significance.csv").exists()


def test_fit_needs_root_content_fold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--root"):
        train_main(["fit", "camera.audio", "--out", str(tmp_path / "r")])


def test_video_probability_is_mean_of_own_frames() -> None:
    """§1.9: each frame's own softmax, averaged per video (not the seed's first-frame quirk)."""
    from trainer.camera_fit import _video_probs

    p = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8]])
    owner = np.array([0, 0, 1, 1])
    assert np.allclose(_video_probs(p, owner, 2), [[0.5, 0.5], [0.35, 0.65]])


def test_ddp_two_cpu_processes(sim_tree: Path, tmp_path: Path) -> None:
    """The DDP path (Lightning ``strategy=ddp``, gloo backend) with 2 CPU processes: rank 0 alone writes the
    weights, and the validation accuracy is computed from the whole validation set (gathered over ranks)."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    assert train_main(["prepare", "vision", str(sim_tree), "--content", "Native", "--out", str(cache),
                       "--frames", "2"]) == 0
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "trainer.cli", "fit", "camera.audio", "--root", str(sim_tree), "--content", "Native",
         "--fold", "0", "--out", str(out), "--cache", str(cache), "--frames", "2", "--epochs", "2",
         "--device", "cpu", "--devices", "2", "--strategy", "ddp"],
        capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr and "All distributed processes registered" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and len(summary["val_per_epoch"]) == 2
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["train_config"]["strategy"] == "ddp"
