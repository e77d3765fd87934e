"""Simulated camera devices (trainer.simdevice): chains, rendering, the VISION-like tree."""

from __future__ import annotations

import csv
import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from scipy import signal

from conftest import DATA
from engine.media import EvidenceError, NoVideoStream, VideoReader, load_audio
from media_factory import make_audio_only, make_video
from trainer.simdevice import (
    DEMO_DEVICES,
    SimDevice,
    build_simulated_vision,
    decode_segment,
    demosaic,
    expand_sources,
    main_simulate,
    mic_sos,
    plan_segments,
    render_clip,
    render_decoded,
    sensor_patterns,
    simulate_frame,
)
from trainer.simdevice import _mosaic  # noqa: PLC2701 - checked against OpenCV's Bayer codes

REAL = DATA / "single_face.mp4"  # real selfie clip, 2.4 s, 640x360, MP3 audio


def small(device: SimDevice, w: int = 320, h: int = 240) -> SimDevice:
    """A demo device at a small output size (its patterns are generated at that size)."""
    return dataclasses.replace(device, width=w, height=h)


def by_codec(codec: str) -> SimDevice:
    return next(d for d in DEMO_DEVICES if d.audio_codec == codec)


@pytest.fixture(scope="module")
def smooth_source(tmp_path_factory) -> Path:
    """2 s, 320x240 25 fps, near-lossless H.264: smooth slowly moving fields + broadband stereo AAC (48 kHz)."""
    path = tmp_path_factory.mktemp("simsrc") / "smooth.mp4"
    rng = np.random.default_rng(7)
    h, w, fps, sr, secs = 240, 320, 25, 48000, 2.0
    base = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (w + 64, h), interpolation=cv2.INTER_CUBIC)
    n = int(secs * sr)
    b, a = signal.butter(1, 2000, fs=sr)
    audio = signal.lfilter(b, a, rng.standard_normal((2, n))) * 0.1
    audio *= 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 3 * np.arange(n) / sr))  # syllable-like envelope
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "8", "preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        st = out.add_stream("aac", rate=sr)
        st.layout = "stereo"
        for i in range(int(secs * fps)):
            img = np.clip(40 + 170 * base[:, 2 * i : 2 * i + w], 0, 255).astype(np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        wave = audio.astype(np.float32)
        for s in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, s : s + 1024]), format="fltp", layout="stereo")
            af.sample_rate, af.pts, af.time_base = sr, s, Fraction(1, sr)
            for p in st.encode(af):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


# --------------------------------------------------------------------------- devices
def test_demo_devices_differ_clearly():
    devs = DEMO_DEVICES
    assert len(devs) >= 8
    assert len({d.device_id for d in devs}) == len(devs) and len({d.name for d in devs}) == len(devs)
    assert len({d.prnu_seed for d in devs}) == len(devs) and len({d.noise_seed for d in devs}) == len(devs)
    assert {d.audio_codec for d in devs} == {"aac", "mp3", "opus", "pcm"}
    assert len({d.audio_rate for d in devs}) >= 4 and len({d.cfa for d in devs}) == 4
    assert len({(d.width, d.height) for d in devs}) >= 4 and len({d.crf for d in devs}) >= 5
    assert len({d.mic_peaks for d in devs}) == len(devs)
    assert all(640 <= d.width <= 1280 and 360 <= d.height <= 720 for d in devs)
    json.dumps([dataclasses.asdict(d) for d in devs])  # JSON-serialisable as written into dataset.json


def test_invalid_device_is_refused():
    with pytest.raises(ValueError, match="PCM audio needs the 'mov' container"):
        dataclasses.replace(by_codec("pcm"), container="mp4")
    with pytest.raises(ValueError, match="Opus"):
        dataclasses.replace(by_codec("opus"), audio_rate=44100)
    with pytest.raises(ValueError, match="mic_lowpass_hz"):
        dataclasses.replace(DEMO_DEVICES[0], audio_rate=16000)  # 16 kHz low-pass above Nyquist
    with pytest.raises(ValueError, match="even"):
        dataclasses.replace(DEMO_DEVICES[0], width=641)


def test_sensor_patterns_are_deterministic_per_seed_and_size():
    d = small(DEMO_DEVICES[0])
    k, dark = sensor_patterns(d)
    assert k.shape == dark.shape == (240, 320) and k.dtype == np.float32
    sensor_patterns.cache_clear()
    k2, dark2 = sensor_patterns(d)
    assert np.array_equal(k, k2) and np.array_equal(dark, dark2)
    assert abs(float(k.std()) - d.prnu_strength) < 0.1 * d.prnu_strength
    other = sensor_patterns(dataclasses.replace(d, prnu_seed=d.prnu_seed + 1))[0]
    assert abs(np.corrcoef(k.ravel(), other.ravel())[0, 1]) < 0.02
    assert sensor_patterns(small(DEMO_DEVICES[0], 640, 480))[0].shape == (480, 640)


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("method", ["bilinear", "edge_aware"])
def test_cfa_layouts_match_opencv_demosaicing(cfa, method):
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((64, 64, 3)) * 60000).astype(np.float32), (0, 0), 3).astype(np.uint16)
    out = demosaic(_mosaic(img, cfa), cfa, method).astype(float)
    err = np.abs(out - img)[4:-4, 4:-4].mean()
    assert err < 0.01 * img.mean()  # a wrong layout swaps channels: error ~ 20% of the mean


def test_mic_response_has_the_device_resonance():
    d = next(d for d in DEMO_DEVICES if any(g >= 5 for _, g, _ in d.mic_peaks))
    f0, gain, _ = max(d.mic_peaks, key=lambda p: p[1])
    w, h = signal.sosfreqz(mic_sos(d), worN=[f0, 1000.0 if abs(f0 - 1000) > 500 else 3000.0], fs=d.audio_rate)
    db = 20 * np.log10(np.abs(h))
    assert db[0] - db[1] > gain - 2.5


# --------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("codec", ["aac", "mp3", "opus", "pcm"])
def test_render_clip_decodes_with_device_format(tmp_path, codec):
    dev = small(by_codec(codec))
    out = render_clip(REAL, dev, tmp_path / f"clip{dev.suffix}", start_s=0.5, duration_s=1.0, seed=3)
    assert out.is_file() and out.suffix == dev.suffix
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    with VideoReader(out) as reader:
        frames = list(reader)
    assert len(frames) == round(1.0 * dev.frame_rate)
    assert frames[0].rgb.shape == (dev.height, dev.width, 3)
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert a.sample_rate == dev.audio_rate and a.channels == dev.audio_channels
    track = load_audio(out, dev.audio_rate, mono=False)
    assert track.has_audio and abs(track.duration_s - 1.0) < 0.08
    rms_db = 20 * np.log10(float(np.sqrt(np.mean(track.waveform ** 2))))
    assert dev.noise_floor_dbfs + 15 < rms_db < -3  # speech well above the device noise floor, not clipped


def test_render_clip_3gp_container(tmp_path):
    dev = small(next(d for d in DEMO_DEVICES if d.container == "3gp"))
    out = render_clip(REAL, dev, tmp_path / "clip.3gp", 0.0, 0.5, seed=0)
    with av.open(str(out)) as c:
        assert "3gp" in c.format.name and c.streams.audio[0].codec_context.name == "aac"


def test_render_is_deterministic_given_seed(tmp_path, smooth_source):
    dev = small(DEMO_DEVICES[1])
    seg = decode_segment(smooth_source, 0.2, 1.0)
    p1, a1, f1 = render_decoded(seg, dev, tmp_path / "a.mp4", seed=5, keep_raw=True)
    p2, a2, f2 = render_decoded(seg, dev, tmp_path / "b.mp4", seed=5, keep_raw=True)
    _, a3, f3 = render_decoded(seg, dev, tmp_path / "c.mp4", seed=6, keep_raw=True)
    assert np.array_equal(a1, a2) and all(np.array_equal(x, y) for x, y in zip(f1, f2))
    assert p1.read_bytes() == p2.read_bytes()  # fixed x264 threads, no wall-clock metadata
    assert not np.array_equal(a1, a3) and not np.array_equal(f1[0], f3[0])  # the seed drives the noise
    w1, w2 = load_audio(p1, dev.audio_rate).waveform, load_audio(p2, dev.audio_rate).waveform
    assert np.array_equal(w1, w2)
    assert np.array_equal(VideoReader(p1).frame(3).rgb, VideoReader(p2).frame(3).rgb)


def _log_spectrum(path: Path) -> np.ndarray:
    wave = load_audio(path, 16000).waveform
    _, pxx = signal.welch(wave, fs=16000, nperseg=512)
    return 10 * np.log10(pxx[4:200] + 1e-12)  # 125 Hz .. 6.2 kHz, inside every device's band


def test_devices_give_different_audio_spectra(tmp_path, smooth_source):
    a, b = small(DEMO_DEVICES[1]), small(DEMO_DEVICES[5])  # different mics, noise floors, AGCs, codecs
    seg = decode_segment(smooth_source, 0.0, 1.5)
    sa1 = _log_spectrum(render_decoded(seg, a, tmp_path / f"a1{a.suffix}", seed=1))
    sa2 = _log_spectrum(render_decoded(seg, a, tmp_path / f"a2{a.suffix}", seed=2))
    sb = _log_spectrum(render_decoded(seg, b, tmp_path / f"b{b.suffix}", seed=1))

    def dist(x, y):  # level-independent: compare spectral shapes
        d = (x - x.mean()) - (y - y.mean())
        return float(np.sqrt(np.mean(d ** 2)))

    assert dist(sa1, sb) > 2.0  # dB
    assert dist(sa1, sb) > 4 * dist(sa1, sa2)


def _prnu_correlation(frames: list[np.ndarray], k: np.ndarray) -> float:
    """Normalised correlation of the maximum-likelihood PRNU estimate of ``frames`` with ``k``."""
    num = den = 0.0
    for f in frames:
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32)
        w = g - cv2.GaussianBlur(g, (0, 0), 1.5)
        num, den = num + w * g, den + g * g
    est = num / (den + 1e-6)
    a, b = est - est.mean(), k - k.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_prnu_residual_matches_own_pattern(tmp_path, smooth_source):
    a = small(DEMO_DEVICES[5])
    b = small(DEMO_DEVICES[7])
    seg = decode_segment(smooth_source, 0.0, 1.0)
    out, _, raw = render_decoded(seg, a, tmp_path / f"a{a.suffix}", seed=0, keep_raw=True)
    ka, kb = sensor_patterns(a)[0], sensor_patterns(b)[0]
    null = 4 / np.sqrt(ka.size)  # 4 sigma of the correlation of unrelated patterns
    own, other = _prnu_correlation(raw, ka), _prnu_correlation(raw, kb)
    assert own > 5 * null and abs(other) < null and own > other + 5 * null
    with VideoReader(out) as reader:  # the fingerprint survives the device's own H.264 coding
        decoded = [f.rgb for f in reader]
    own_d, other_d = _prnu_correlation(decoded, ka), _prnu_correlation(decoded, kb)
    assert own_d > null and own_d > other_d + null
    # no temporal noise, no PRNU: the frame is the plain ISP of the source
    flat = dataclasses.replace(a, prnu_strength=0.0, dark_fpn=0.0, dark_column_fpn=0.0)
    assert abs(_prnu_correlation([simulate_frame(seg.frames[0], flat, None)], ka)) < null


# --------------------------------------------------------------------------- errors
def test_source_without_audio_names_the_file(tmp_path):
    src = make_video(tmp_path / "silent_src.mp4", n_frames=30)
    with pytest.raises(ValueError, match="silent_src.mp4.*no audio"):
        render_clip(src, small(DEMO_DEVICES[0]), tmp_path / "out.mp4", 0.0, 0.5, seed=0)
    assert not (tmp_path / "out.mp4").exists()


def test_source_without_video_or_too_short_names_the_file(tmp_path):
    audio_only = make_audio_only(tmp_path / "voice.m4a")
    with pytest.raises(NoVideoStream, match="voice.m4a"):
        render_clip(audio_only, small(DEMO_DEVICES[0]), tmp_path / "out.mp4", 0.0, 0.5, seed=0)
    with pytest.raises(ValueError, match="single_face.mp4: shorter than requested"):
        render_clip(REAL, small(DEMO_DEVICES[0]), tmp_path / "out.mp4", 1.0, 3.0, seed=0)
    with pytest.raises(EvidenceError, match="nothing.mp4"):
        render_clip(tmp_path / "nothing.mp4", small(DEMO_DEVICES[0]), tmp_path / "out.mp4", 0.0, 0.5, seed=0)


# --------------------------------------------------------------------------- dataset tree
def test_plan_segments_are_non_overlapping_and_capped():
    assert plan_segments((0.0, 8.0), 4.0, None) == [0.0, 4.0]
    assert plan_segments((0.0, 2.98), 3.0, None) == [0.0]  # within END_TOLERANCE_S
    assert plan_segments((0.0, 2.5), 3.0, None) == []
    starts = plan_segments((1.0, 31.0), 3.0, 4)
    assert len(starts) == 4 and starts[0] == 1.0 and starts[-1] + 3.0 <= 31.0 + 1e-9
    assert all(b - a >= 3.0 for a, b in zip(starts, starts[1:]))


def _read_csv(path: Path) -> list[tuple[str, int]]:
    with path.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["dev_alphabetical_id", "dev_numerical_id"]
    return [(r[0], int(r[1])) for r in rows[1:]]


def test_build_tree_dataset_json_and_recording_disjoint_folds(tmp_path, smooth_source):
    silent = make_video(tmp_path / "silent.mp4", n_frames=40)
    devices = [small(DEMO_DEVICES[i], 160, 120) for i in (0, 3, 4)]  # aac/mp4, opus/mp4, pcm/mov
    calls = []
    out = tmp_path / "sim"
    result = build_simulated_vision([REAL, smooth_source, silent], out, devices, clip_s=0.5, clips_per_source=3,
                                    n_folds=3, seed=1, progress=lambda d, t: calls.append((d, t)))
    n_rec = 6  # 3 segments of each source with audio
    assert result["recordings"] == n_rec and result["clips"] == n_rec * 3 and not result["failed_clips"]
    assert [s["source"] for s in result["skipped"]] == [str(silent.resolve())]
    assert "no audio" in result["skipped"][0]["reason"]
    assert calls[-1] == (n_rec * 3, n_rec * 3) and len(calls) == n_rec * 3

    meta = json.loads((out / "dataset.json").read_text())
    assert meta["name"] == "simulated-vision" and meta["splits_dir"] == "splits" and meta["excluded_devices"] == []
    assert meta["device_classes"] == {d.device_id: d.device_id for d in devices}
    assert [d["device_id"] for d in meta["devices"]] == [d.device_id for d in devices]
    assert meta["devices"][0]["width"] == 160 and meta["licence_note"]
    recs = meta["recordings"]
    assert [r["number"] for r in recs] == list(range(1, n_rec + 1))
    assert {Path(r["source"]).name for r in recs} == {"single_face.mp4", "smooth.mp4"}
    assert all(len(r["source_sha256"]) == 64 and r["duration_s"] == 0.5 for r in recs)

    videos = sorted(p for p in out.rglob("*") if p.suffix in {".mp4", ".mov", ".3gp"})
    assert len(videos) == n_rec * 3
    for p in videos:
        dev = next(d for d in devices if p.name.startswith(d.device_id))
        assert p.parent.parent.parent.name == dev.folder and p.suffix == dev.suffix
    first = next(p for p in videos if p.name.startswith("D05"))
    assert first.suffix == ".mov" and VideoReader(first).frame(0).rgb.shape == (120, 160, 3)

    classes = sorted(d.device_id for d in devices)
    stems = {p.stem for p in videos}
    tested: list[str] = []
    for k in range(3):
        split_rows = {s: _read_csv(out / "splits" / "Native" / f"{s}_fold{k}.csv") for s in ("train", "val", "test")}
        recs_of = {}
        for s, rows in split_rows.items():
            for stem, label in rows:
                assert stem in stems and classes[label] == stem[:3]
            recs_of[s] = {int(stem.rsplit("_", 1)[1]) for stem, _ in rows}
            # every recording of a split is there on every device
            assert len(rows) == 3 * len(recs_of[s])
        assert not (recs_of["train"] & recs_of["test"]) and not (recs_of["val"] & recs_of["test"])
        assert not (recs_of["train"] & recs_of["val"]) and len(recs_of["val"]) >= 1
        assert recs_of["train"] | recs_of["val"] | recs_of["test"] == set(range(1, n_rec + 1))
        tested += [stem for stem, _ in split_rows["test"]]
    assert sorted(tested) == sorted(stems)  # every video in exactly one test fold

    # the VISION adapter reads the tree and resolves every fold list
    from trainer.datasets.vision import vision, vision_classes, vision_folds

    listed = vision(out)
    assert len(listed) == n_rec * 3 and vision_classes(out) == classes
    fold0 = vision_folds(listed, "Native", 0)
    assert sum(len(v) for v in fold0.values()) == n_rec * 3

    # deterministic folds and resumable rendering
    fold0_before = _read_csv(out / "splits" / "Native" / "test_fold0.csv")
    mtime = first.stat().st_mtime_ns
    stale = out / devices[0].folder / "videos" / "indoor" / ".D01_V_indoor_still_0001.mp4.abc.part"
    stale.write_bytes(b"left by an interrupted run")
    again = build_simulated_vision([REAL, smooth_source], out, devices, clip_s=0.5, clips_per_source=3, n_folds=3,
                                   seed=1, resume=True)
    assert again["clips"] == n_rec * 3
    assert json.loads((out / "dataset.json").read_text())["recordings"] == recs
    assert _read_csv(out / "splits" / "Native" / "test_fold0.csv") == fold0_before
    assert first.stat().st_mtime_ns == mtime  # kept, not rendered again
    assert not stale.exists() and not list(out.rglob(".*"))


def test_build_refuses_too_few_recordings(tmp_path):
    with pytest.raises(ValueError, match="fewer than n_folds"):
        build_simulated_vision([REAL], tmp_path, [small(DEMO_DEVICES[0], 160, 120)], clip_s=1.0, n_folds=5)


def test_cli_renders_demo_devices(tmp_path, capsys):
    rc = main_simulate(["--sources", str(DATA / "single_*.mp4"), "--out", str(tmp_path / "cli"), "--clip-s", "0.2",
                        "--clips-per-source", "2", "--devices", "2", "--folds", "2"])
    assert rc == 0
    assert "4 clips (2 recordings x 2 devices)" in capsys.readouterr().out
    meta = json.loads((tmp_path / "cli" / "dataset.json").read_text())
    assert [d["device_id"] for d in meta["devices"]] == ["D01", "D02"]
    assert main_simulate(["--sources", str(tmp_path / "none*.mp4"), "--out", str(tmp_path / "x")]) == 2
    assert expand_sources([str(DATA)]) and all(p.suffix.lower() != ".flac" for p in expand_sources([str(DATA)]))
