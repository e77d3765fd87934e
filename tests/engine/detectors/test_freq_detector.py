"""deepfake.freq: load verified weights, score face crops of a real clip, curves in the sidecar."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import DATA
from engine.faces import crop_face
from engine.faces.types import FaceBox
from engine.media import Uniform
from engine.pipeline import ClipConfig, MediaClip, analyze, create_detector, load_result_arrays
from engine.weights import WeightsIntegrityError

from engine.detectors.freq import FreqDetector  # isort: skip  (registers "deepfake.freq")

VIDEO = DATA / "retalking_face5.mp4"


def _clouds(n, seed, sep=0.3):
    rng = np.random.default_rng(seed)
    base = np.linspace(1.0, 0.35, 300)
    real = base + rng.normal(0.0, 0.05, (n, 300))
    fake = base + sep * np.linspace(0.0, 1.0, 300) + rng.normal(0.0, 0.05, (n, 300))
    return np.vstack([real, fake]), np.r_[np.zeros(n), np.ones(n)].astype(np.int64)


def _fit(out_dir, variant, **kw):
    from trainer.freq_fit import fit_freq

    x, y = _clouds(40, seed=0)
    fit_freq(x, y, variant, out_dir, seed=0, training_data="synthetic spectra (tests)", evaluation="none",
             limitations=["test weights"], device="cpu", **kw)
    return out_dir


@pytest.fixture(scope="module")
def svm_dir(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("freq_models") / "deepfake.freq", "svm")


@pytest.fixture(scope="module")
def analysed(svm_dir, tmp_path_factory):
    det = FreqDetector(model_dir=svm_dir)
    result = analyze(VIDEO, [det], device="cpu", config=ClipConfig(sampling=Uniform(4)))
    json_path = result.save(tmp_path_factory.mktemp("freq_result") / "retalking.json")
    return det, result, json_path


def test_detector_on_real_clip(analysed):
    det, result, _ = analysed
    (res,) = result.detectors
    assert res.status == "ok", res.message
    assert res.detector_id == "deepfake.freq" and res.task == "deepfake"
    assert res.model_card_id == det.card.card_id and res.weights_sha256 == det.card.sha256
    assert res.parameters["variant"] == "svm" and res.parameters["crop_policy"] == "freq_square1p5"

    spectra = result.arrays["azimuthal_spectra"]  # the shared feature the detector reused
    track = result.faces["tracks"][0]
    assert len(res.frame_scores) == len(track["entries"]) == spectra.shape[0] == 4
    expected = det.classifier.predict_proba(spectra)
    for fs, entry, p in zip(res.frame_scores, track["entries"], expected):
        assert fs.frame_index == entry["frame_index"] and fs.pts == pytest.approx(entry["pts"], abs=1e-6)
        assert fs.score == pytest.approx(p, abs=1e-12) and 0.0 <= fs.score <= 1.0
        assert fs.track_id == 0 and fs.heatmap_key is None
        assert fs.box == pytest.approx(entry["smoothed_box"], abs=0.01)
    assert res.score == pytest.approx(float(np.mean(expected)))
    assert res.label == ("fake" if res.score > 0.5 else "real") and res.threshold == 0.5
    assert res.class_probs["fake"] == pytest.approx(res.score) and "mean" in res.aggregation

    # explanation: 1-D float32 curves, not 2-D maps
    keys = {f"spectrum/f{fs.frame_index}" for fs in res.frame_scores} | {"class_mean/real", "class_mean/fake"}
    assert set(res.heatmaps) == keys
    assert all(v.dtype == np.float32 and v.shape == (300,) for v in res.heatmaps.values())
    np.testing.assert_array_equal(res.heatmaps[f"spectrum/f{res.frame_scores[0].frame_index}"],
                                  spectra[0].astype(np.float32))
    x, y = _clouds(40, seed=0)
    np.testing.assert_allclose(res.heatmaps["class_mean/fake"], x[y == 1].mean(0), rtol=1e-6)


def test_curves_saved_in_sidecar(analysed):
    _, result, json_path = analysed
    arrays = load_result_arrays(json_path)
    assert arrays["deepfake.freq/class_mean/real"].shape == (300,)
    first = result.detectors[0].frame_scores[0].frame_index
    assert arrays[f"deepfake.freq/spectrum/f{first}"].dtype == np.float32


def test_tampered_weights_refused(svm_dir, tmp_path):
    bad = tmp_path / "deepfake.freq"
    shutil.copytree(svm_dir, bad)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-3] ^= 0x01
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="does not match"):
        FreqDetector(model_dir=bad)


def test_registry_and_variant_check(svm_dir):
    det = create_detector("deepfake.freq", device="cpu", model_dir=svm_dir)
    assert isinstance(det, FreqDetector) and det.classifier.variant == "svm"
    with pytest.raises(ValueError, match="'mlp' was requested"):
        FreqDetector(model_dir=svm_dir, variant="mlp")


class _StubClip:
    """The parts of MediaClip the detector reads, built from synthetic frames (no decoding)."""

    def __init__(self, crops, tracks):
        self.has_video = True
        self.face_tracks = tracks
        self._crops = crops

    def face_crops(self, policy, track=0, cache=True):
        assert policy == "freq_square1p5"
        assert not cache  # native-resolution crops are not kept in the clip's cache
        return self._crops

    def azimuthal_spectra(self, track=0):
        from engine.features import azimuthal_spectra

        return azimuthal_spectra([c.image for _, c in self._crops])

    def check_cancel(self):
        pass

    def cached(self, key, compute, keep=True):
        return compute()


def test_mlp_variant_skips_tiny_crops(tmp_path):
    """MLP weights via the card; a crop below 28 px is skipped with a note, the others scored."""
    from types import SimpleNamespace

    from engine.media import Frame

    det = FreqDetector(model_dir=_fit(tmp_path / "mlp", "mlp", max_epochs=3, lr=1e-3))
    assert det.classifier.variant == "mlp" and det.card.architecture == "deepfake_freq_mlp"
    rng = np.random.default_rng(0)
    frame_rgb = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = [FaceBox(40, 30, 100, 90), FaceBox(50, 40, 60, 50), FaceBox(42, 32, 102, 92)]
    crops = [(Frame(i * 5, i * 0.2, frame_rgb), crop_face(frame_rgb, b, "freq_square1p5")) for i, b in enumerate(boxes)]
    res = det.analyze(_StubClip(crops, [SimpleNamespace(track_id=0)]))
    assert res.status == "ok" and [fs.frame_index for fs in res.frame_scores] == [0, 10]
    assert res.parameters["n_crops_skipped"] == 1 and "frame 5" in res.message
    assert res.frame_scores[1].box == [42.0, 32.0, 102.0, 92.0]
    assert set(res.heatmaps) == {"spectrum/f0", "spectrum/f10", "class_mean/real", "class_mean/fake"}


def test_no_face_track_is_skipped(svm_dir):
    res = FreqDetector(model_dir=svm_dir).analyze(_StubClip([], []))
    assert res.status == "skipped" and "no face track" in res.message and res.score is None
    assert res.frame_scores == [] and res.heatmaps == {}


def test_audio_only_clip_is_skipped(svm_dir, gen_dir):
    from media_factory import make_audio_only

    clip = MediaClip(make_audio_only(gen_dir / "freq_tone.m4a", seconds=1.0), ClipConfig(device="cpu"))
    res = FreqDetector(model_dir=svm_dir).analyze(clip)
    assert res.status == "skipped" and res.message == "no video stream"


def test_runs_from_its_cached_spectra_after_the_frames_are_released(monkeypatch):
    """cache_frame_inputs keeps spectra and placements, not the native-resolution pixels; after
    ``release_frame_pixels`` the detector decodes nothing and scores as before."""
    from engine.media import video

    det = FreqDetector()
    fresh = det.analyze(MediaClip(VIDEO, ClipConfig(sampling=Uniform(6), device="cpu")))
    clip = MediaClip(VIDEO, ClipConfig(sampling=Uniform(6), device="cpu"))
    FreqDetector.cache_frame_inputs(clip)
    pairs, spectra, notes = FreqDetector.crop_spectra(clip)
    assert len(pairs) == len(spectra) == 6 and not notes
    assert all(not f.has_pixels and c.image.base is not None and c.image.base.nbytes == 1 for f, c in pairs)
    clip.release_frame_pixels()
    decodes = []
    original = video.VideoReader.sample
    monkeypatch.setattr(video.VideoReader, "sample", lambda self, *a, **k: decodes.append(1) or original(self, *a, **k))
    again = det.analyze(clip)
    assert decodes == []
    assert again.score == fresh.score
    assert [(s.frame_index, s.box, s.crop) for s in again.frame_scores] == \
        [(s.frame_index, s.box, s.crop) for s in fresh.frame_scores]
