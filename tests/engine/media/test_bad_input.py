"""Bad input raises its typed EvidenceError with a message naming the file and the problem."""

from __future__ import annotations

import shutil

import pytest

from conftest import DATA, SAMPLES
from engine.media import (
    CorruptMedia,
    EmptyEvidence,
    EvidenceError,
    EvidenceModified,
    EvidenceNotFound,
    NotMediaError,
    NoVideoStream,
    UnsupportedCodec,
    VideoReader,
    load_audio,
    probe,
)


@pytest.fixture(scope="module")
def moov_at_end(gen_dir):
    from media_factory import make_video

    return make_video(gen_dir / "camera_style.mp4", n_frames=40, audio_seconds=1.5)


@pytest.fixture(scope="module")
def faststart(gen_dir):
    from media_factory import make_video

    return make_video(gen_dir / "web_style.mp4", n_frames=60, faststart=True)


def _cases(tmp, moov_at_end, faststart):
    from media_factory import make_audio_only, make_unsupported_codec

    data = moov_at_end.read_bytes()
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "notes.mp4").write_text("Interview notes, not a video.\n" * 40)
    (tmp / "header_only.mp4").write_bytes(data[:48])
    (tmp / "truncated_half.mp4").write_bytes(data[: len(data) // 2])
    (tmp / "truncated_90pct.mp4").write_bytes(data[: int(len(data) * 0.9)])
    (tmp / "random.mp4").write_bytes(bytes(range(256)) * 64)
    (tmp / "a_folder.mp4").mkdir()
    fs = faststart.read_bytes()
    (tmp / "faststart_truncated.mp4").write_bytes(fs[: int(len(fs) * 0.4)])
    return {
        "not found": (tmp / "missing.mp4", EvidenceNotFound, "file not found"),
        "zero bytes": (tmp / "empty.mp4", EmptyEvidence, "empty"),
        "text renamed .mp4": (tmp / "notes.mp4", NotMediaError, "not a recognised"),
        "random bytes": (tmp / "random.mp4", NotMediaError, "not a recognised"),
        "directory": (tmp / "a_folder.mp4", NotMediaError, "directory"),
        "header only": (tmp / "header_only.mp4", CorruptMedia, "truncated or corrupt"),
        "truncated at 50%": (tmp / "truncated_half.mp4", CorruptMedia, "truncated or corrupt"),
        "truncated at 90%": (tmp / "truncated_90pct.mp4", CorruptMedia, "truncated or corrupt"),
        "unsupported codec": (make_unsupported_codec(tmp / "odd_fourcc.avi"), UnsupportedCodec, "no decoder"),
        "audio only": (make_audio_only(tmp / "voice.m4a"), NoVideoStream, "no video stream"),
        "faststart truncated (strict)": (tmp / "faststart_truncated.mp4", CorruptMedia, "truncated"),
    }


def test_bad_inputs_raise_typed_errors(tmp_path, moov_at_end, faststart):
    cases = _cases(tmp_path, moov_at_end, faststart)
    assert len(cases) >= 10
    for kind, (path, err, words) in cases.items():
        with pytest.raises(err) as info:
            probe(path, require_video=True, strict=True)
        msg = str(info.value)
        assert isinstance(info.value, EvidenceError), kind
        assert str(path) in msg, f"{kind}: message does not name the file: {msg}"
        assert words in msg, f"{kind}: message does not say the problem: {msg}"


def test_reader_and_audio_raise_the_same_types(tmp_path, moov_at_end, faststart):
    cases = _cases(tmp_path, moov_at_end, faststart)
    for kind in ("not found", "zero bytes", "text renamed .mp4", "truncated at 50%", "audio only"):
        path, err, _ = cases[kind]
        with pytest.raises(err):
            VideoReader(path)
    for kind in ("not found", "zero bytes", "text renamed .mp4", "truncated at 50%"):
        path, err, _ = cases[kind]
        with pytest.raises(err):
            load_audio(path, 16000)


def test_truncated_faststart_is_partly_readable(tmp_path, faststart):
    """A file cut short but with its index up front: analysable, with a loud warning."""
    fs = faststart.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(fs[: int(len(fs) * 0.4)])
    ev = probe(path)
    assert any(w.startswith("truncated") for w in ev.warnings)
    reader = VideoReader(path, index=ev.frame_index)
    frames = reader.sample()
    assert 0 < len(frames) <= ev.primary_video.frame_count


def test_wrong_extension_warns(tmp_path):
    path = tmp_path / "clip.avi"
    shutil.copy(DATA / "carphone_pristine.mp4", path)
    ev = probe(path)
    assert any("does not match the container" in w for w in ev.warnings)


def test_unicode_and_spaces_in_path(tmp_path):
    folder = tmp_path / "Fall 2026 — évidence 证据"
    folder.mkdir()
    path = folder / "clip ü 1.mp4"
    shutil.copy(SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4", path)
    ev = probe(path)
    assert ev.path == str(path.resolve())
    assert len(VideoReader(path).sample()) == 32
    assert load_audio(path, 16000).has_audio


def test_modified_evidence_detected(tmp_path):
    path = tmp_path / "copy.mp4"
    shutil.copy(DATA / "carphone_pristine.mp4", path)
    ev = probe(path)
    with open(path, "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(EvidenceModified, match="SHA-256 changed"):
        ev.verify_unchanged()


def test_4k_short_clip(gen_dir):
    from media_factory import make_video

    path = make_video(gen_dir / "uhd.mp4", n_frames=3, size=(3840, 2160), options={"preset": "ultrafast"})
    ev = probe(path)
    assert (ev.primary_video.width, ev.primary_video.height) == (3840, 2160)
    f = VideoReader(path).frame_at(0.04)
    assert f.rgb.shape == (2160, 3840, 3) and f.index == 1
