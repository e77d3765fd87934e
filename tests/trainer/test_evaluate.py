"""evaluate / cross-test on two small image-folder datasets built from real faces (spec §4.2–4.4)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import DATA
from engine.features import azimuthal_spectrum
from trainer.cli import main
from trainer.freq_fit import fit_freq


def _train_on(root, out):
    X, y = [], []
    for label, cls in ((0, "real"), (1, "fake")):
        for p in sorted((root / "train" / cls).glob("*.png")):
            X.append(azimuthal_spectrum(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)))
            y.append(label)
    fit_freq(np.array(X), np.array(y), "svm", out, 0, training_data="test")
    return out


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory, image_dataset):
    tmp = tmp_path_factory.mktemp("xtest")
    a, b = tmp / "setA", tmp / "setB"
    image_dataset(a, {"train": ["retalking_face5.mp4"], "test": ["single_face.mp4"]}, 1, 8)
    image_dataset(b, {"train": ["liveportrait_d18.mp4"], "test": ["bbaf2n.mpg"]}, 2, 8)
    return tmp, a, b, _train_on(a, tmp / "model_A"), _train_on(b, tmp / "model_B")


def test_cross_test_prints_matrix(two_datasets, capsys):
    tmp, a, b, ma, mb = two_datasets
    out = tmp / "cross"
    assert main(["cross-test", "--models", str(ma), str(mb), "--datasets", f"image_folder:{a}",
                 f"image_folder:{b}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| model \\ test (accuracy) | setA/test | setB/test |" in printed
    doc = json.loads((out / "matrix.json").read_text())
    m = np.array(doc["matrix"])
    assert m.shape == (2, 2) and np.isfinite(m).all() and ((m >= 0) & (m <= 1)).all()
    assert (out / "matrix.md").read_text().count("\n") == 4


def test_evaluate_writes_metrics_and_roc(two_datasets):
    tmp, a, _, ma, _ = two_datasets
    out = tmp / "eval"
    assert main(["evaluate", "--model", str(ma), "--dataset", f"image_folder:{a}", "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["metrics"]["n"] == 16 and doc["metrics"]["n_unscored"] == 0
    assert (out / "roc.png").exists() and (out / "results.csv").exists()


def test_evaluate_video_folder(two_datasets, tmp_path):
    import shutil

    _, _, _, ma, _ = two_datasets
    for cls, video in (("real", "retalking_face5.mp4"), ("fake", "single_face.mp4")):
        (tmp_path / "vids" / cls).mkdir(parents=True)
        shutil.copy(DATA / video, tmp_path / "vids" / cls / video)
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(ma), "--dataset", f"video_folder:{tmp_path / 'vids'}",
                 "--frames", "4", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 2 and all(r["status"] == "ok" and r["n_frames"] == 4 for r in rows)
