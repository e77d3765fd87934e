"""forensic-train cache: the trainer stores exactly the engine's preprocessing."""

from __future__ import annotations

import json

import numpy as np

from conftest import DATA
from engine.io import load_npz
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip
from trainer.cli import main


def test_cache_equals_engine_preprocessing(tmp_path):
    video = DATA / "retalking_face5.mp4"
    assert main(["cache", str(video), "--out", str(tmp_path), "--frames", "4", "--device", "cpu"]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["videos"][0]["sha256"] and not index["failed"]
    arrays = load_npz(tmp_path / index["videos"][0]["cache"])
    clip = MediaClip(video, ClipConfig(sampling=Uniform(4), device="cpu"))
    expected = np.stack([c.image for _, c in clip.face_crops("effvit_square224")])
    assert np.array_equal(arrays["crops/effvit_square224"], expected)
    assert arrays["crops/effvit_square224"].shape == (4, 224, 224, 3)
    assert arrays["crops/mtcnn_margin40_160"].shape == (4, 160, 160, 3)
    assert np.array_equal(arrays["log_mel_3res"], clip.log_mel_3res())
    assert arrays["azimuthal_spectra"].shape == (4, 300)
    freq = [arrays[f"freq_crops/{i:04d}"] for i in range(4)]
    assert all(c.dtype == np.uint8 and c.shape[0] == c.shape[1] for c in freq)  # square, not resized
    from engine.features import azimuthal_spectrum

    assert np.allclose(azimuthal_spectrum(freq[0]), arrays["azimuthal_spectra"][0])
    lm = arrays["landmarks/effvit_square224"]
    assert lm.shape == (4, 5, 2) and np.isfinite(lm).all()
    assert ((lm >= 0) & (lm < 224)).all()  # the 5 points fall inside the 224 crop
    # second run is a no-op (resumable): the cache file is not rewritten
    mtime = (tmp_path / index["videos"][0]["cache"]).stat().st_mtime_ns
    assert main(["cache", str(video), "--out", str(tmp_path), "--frames", "4", "--device", "cpu"]) == 0
    assert (tmp_path / index["videos"][0]["cache"]).stat().st_mtime_ns == mtime
