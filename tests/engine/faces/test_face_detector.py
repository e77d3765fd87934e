"""MTCNN on real faces (vs. independent Haar reference boxes), on a group photo and on face-free
frames; batching; weight-loading safety; the RetinaFace fallback."""

from __future__ import annotations

import importlib.machinery
import json
import logging
import os
import socket
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.faces import (
    FaceBox,
    FaceDetector,
    MTCNNDetector,
    RetinaFaceDetector,
    RetinaFaceUnavailable,
    build_tracks,
    create_face_detector,
    retinaface_status,
    retinaface_weights_path,
)
from engine.media import Indices, VideoReader

ROOT = Path(__file__).resolve().parents[3]
FACE_DATA = ROOT / "tests" / "data" / "faces"
MEDIA = ROOT / "tests" / "data" / "media"

REFERENCE = json.loads((FACE_DATA / "reference_boxes.json").read_text())
REF_VIDEOS = sorted(REFERENCE["videos"])

#: bikes.mp4 is listed as "no faces" in shared/data/media/README.md, but it shows
#: cyclists' faces in frames ~32-40 and ~104-136. These Uniform(32) samples were
#: checked by eye to contain no face (empty street, cars, legs only, bicycles).
BIKES_FACE_FREE = (0, 8, 16, 24, 48, 56, 64, 72, 144, 152, 160, 168, 176, 184, 193, 201, 209, 217, 225, 233, 241, 249)
#: ... and these show a man's face in close-up (checked by eye).
BIKES_WITH_FACE = (32, 40)


# --------------------------------------------------------------------------- real faces
@pytest.mark.parametrize("video", REF_VIDEOS)
def test_mtcnn_matches_reference_boxes(mtcnn, uniform_frames, video):
    ref = REFERENCE["videos"][video]
    frames = uniform_frames(ref["path"])
    assert len(frames) == 32
    boxes = mtcnn.detect_batch([f.rgb for f in frames])

    assert all(len(b) >= 1 for b in boxes), "MTCNN missed the face in some sampled frame"
    for f, bs in zip(frames, boxes):
        assert [b.score for b in bs] == sorted((b.score for b in bs), reverse=True)
        for b in bs:
            assert 0 <= b.x1 < b.x2 <= f.width and 0 <= b.y1 < b.y2 <= f.height
            assert b.landmarks is not None and b.landmarks.shape == (5, 2)

    tracks = build_tracks([(f.index, f.pts, b) for f, b in zip(frames, boxes)])
    main = tracks[0]
    assert len(main) == len(frames), "the main face track should cover every sampled frame"
    ious = []
    for f in frames:
        entry = ref["frames"][f"{f.pts:.6f}"]
        assert entry["index"] == f.index
        ious.append(main.entry_at(f.index).box.iou(FaceBox(*entry["box"])))
    print(f"{video}: min IoU vs Haar reference {min(ious):.3f}, mean {np.mean(ious):.3f}")
    assert min(ious) >= 0.5


def test_group_photo_finds_at_least_five_faces(mtcnn):
    img = cv2.cvtColor(cv2.imread(str(FACE_DATA / "t1.jpg")), cv2.COLOR_BGR2RGB)
    (faces,) = mtcnn.detect_batch([img])
    assert len(faces) >= 5
    for f in faces:  # 1280x886 photo, downscaled to 960 wide for detection, boxes back in full res
        assert 60 < f.width < 200
        lm = f.landmarks
        assert np.all((lm[:, 0] > f.x1 - 5) & (lm[:, 0] < f.x2 + 5) & (lm[:, 1] > f.y1 - 5) & (lm[:, 1] < f.y2 + 5))
    for i, a in enumerate(faces):  # distinct people, not duplicates
        for b in faces[i + 1 :]:
            assert a.iou(b) < 0.1


def test_face_free_frames_give_no_boxes(mtcnn):
    frames = VideoReader(MEDIA / "bikes.mp4").sample(Indices(BIKES_FACE_FREE + BIKES_WITH_FACE))
    boxes = dict(zip((f.index for f in frames), mtcnn.detect_batch([f.rgb for f in frames])))
    assert {i: b for i, b in boxes.items() if i in BIKES_FACE_FREE and b} == {}
    assert all(len(boxes[i]) == 1 for i in BIKES_WITH_FACE)


# --------------------------------------------------------------------------- batching
def test_mixed_sizes_are_grouped_and_rescaled(mtcnn, uniform_frames):
    frames = uniform_frames("resources/samples/WDA_AlexandriaOcasioCortez_000.mp4")
    a, b = frames[0].rgb, frames[16].rgb  # 512x512
    big = cv2.resize(a, (1200, 1200), interpolation=cv2.INTER_CUBIC)  # > max_side: detected at 960x960
    small = cv2.resize(b, (256, 256), interpolation=cv2.INTER_AREA)
    out = mtcnn.detect_batch([a, big, b, small])
    assert [len(o) for o in out] == [1, 1, 1, 1]
    # the big frame is detected on its 960 px version and the box scaled back by 1200/960
    (on960,) = mtcnn.detect_batch([cv2.resize(big, (960, 960), interpolation=cv2.INTER_AREA)])
    back = out[1][0]
    assert back.scaled(960 / 1200).iou(on960[0]) > 0.999
    assert np.allclose(back.landmarks * (960 / 1200), on960[0].landmarks, atol=0.01)
    assert back.iou(FaceBox(*[v * 1200 / 512 for v in out[0][0].xyxy])) > 0.75
    # batched results equal one-by-one results, in input order
    for img, got in zip((a, b, small), (out[0], out[2], out[3])):
        (alone,) = mtcnn.detect_batch([img])
        assert alone[0].iou(got[0]) > 0.999


def test_small_batch_size_and_degenerate_inputs():
    det = MTCNNDetector(batch_size=1, max_side=None)
    assert isinstance(det, FaceDetector) and det.name == "mtcnn"
    assert det.detect_batch([]) == []
    assert det.detect_batch([np.zeros((8, 8, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)]) == [[], []]
    with pytest.raises(ValueError):
        det.detect_batch([np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError):
        det.detect_batch([np.zeros((32, 32, 3), np.float32)])
    with pytest.raises(ValueError):
        MTCNNDetector(thresholds=(0.9, 0.9))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mtcnn_on_cuda_matches_cpu(mtcnn, uniform_frames):
    frames = uniform_frames("tests/data/media/bbaf2n.mpg")
    imgs = [f.rgb for f in frames[:8]]
    gpu = MTCNNDetector(device="cuda").detect_batch(imgs)
    cpu = mtcnn.detect_batch(imgs)
    for g, c in zip(gpu, cpu):
        assert g[0].iou(c[0]) > 0.95


def test_cuda_request_without_cuda_raises():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="CUDA"):
        MTCNNDetector(device="cuda")


# --------------------------------------------------------------------------- weights safety
def test_facenet_weights_are_plain_state_dicts_loaded_weights_only(monkeypatch):
    import facenet_pytorch

    data = os.path.join(os.path.dirname(facenet_pytorch.__file__), "data")
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        sd = torch.load(os.path.join(data, name), weights_only=True)
        assert sd and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items())

    # facenet calls torch.load(path) with no weights_only argument; under torch >= 2.6 that
    # means weights_only=True unless TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD overrides it.
    assert tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 6)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    calls = []
    real_load = torch.load

    def spy(f, *args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        kwargs.setdefault("weights_only", None)
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    MTCNNDetector()
    assert calls == [None, None, None]  # torch's default (True) applies to all three files


# --------------------------------------------------------------------------- RetinaFace
@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*_a, **_k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def empty_deepface_home(tmp_path, monkeypatch):
    monkeypatch.delenv("FORENSIC_RETINAFACE_WEIGHTS", raising=False)
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    return tmp_path / ".deepface" / "weights" / "retinaface.h5"


def test_retinaface_without_weights_falls_back_to_mtcnn(empty_deepface_home, no_network, caplog):
    assert retinaface_weights_path() == empty_deepface_home
    ok, reason = retinaface_status()
    assert not ok and str(empty_deepface_home) in reason
    with caplog.at_level(logging.WARNING, logger="engine.faces.detector"):
        det = create_face_detector("retinaface")
    assert isinstance(det, MTCNNDetector)
    assert any(str(empty_deepface_home) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert not empty_deepface_home.exists()  # nothing was downloaded or created

    with pytest.raises(RetinaFaceUnavailable) as err:
        create_face_detector("retinaface", strict=True)
    assert err.value.weights_path == empty_deepface_home


def test_auto_backend_is_silent_mtcnn_without_retinaface(empty_deepface_home, no_network, caplog):
    with caplog.at_level(logging.INFO, logger="engine.faces.detector"):
        det = create_face_detector("auto")
    assert isinstance(det, MTCNNDetector)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
    with pytest.raises(ValueError):
        create_face_detector("dlib")


def test_explicit_weights_env_var_is_reported(tmp_path, monkeypatch, caplog):
    missing = tmp_path / "my" / "retinaface.h5"
    monkeypatch.setenv("FORENSIC_RETINAFACE_WEIGHTS", str(missing))
    assert retinaface_weights_path() == missing
    with caplog.at_level(logging.WARNING, logger="engine.faces.detector"):
        assert isinstance(create_face_detector("retinaface"), MTCNNDetector)
    assert str(missing) in caplog.text


def _install_fake_retinaface(monkeypatch, seen: dict) -> None:
    """A stand-in for serengil's package: its loader would download if our patches did not hold."""

    def module(name, is_package=False):
        m = types.ModuleType(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=is_package)
        if is_package:
            m.__path__ = []
        monkeypatch.setitem(sys.modules, name, m)
        return m

    module("retinaface", is_package=True)
    module("retinaface.model", is_package=True)
    rm = module("retinaface.model.retinaface_model")
    rf = module("retinaface.RetinaFace")

    class FakeKerasModel:
        def load_weights(self, path):
            seen["loaded"] = path

    def download(*_a, **_k):
        raise AssertionError("download attempted")

    rm.gdown = types.SimpleNamespace(download=download)

    def load_weights(model):  # the package's own loader: downloads when the file is missing
        rm.gdown.download("https://example.invalid/retinaface.h5", "/nonexistent")
        return model

    def build_model():
        return rm.load_weights(FakeKerasModel())

    rm.load_weights = load_weights
    rm.build_model = build_model
    rf.build_model = lambda: rm.build_model()

    def detect_faces(img, threshold=0.9, model=None, allow_upscaling=True):
        seen["bgr_first_pixel"] = tuple(int(v) for v in img[0, 0])
        return {
            "face_1": {"score": 0.97, "facial_area": [10, 20, 50, 70], "landmarks": {
                "right_eye": [20, 35], "left_eye": [40, 35], "nose": [30, 45],
                "mouth_right": [22, 58], "mouth_left": [38, 58]}},
            "face_2": {"score": 0.99, "facial_area": [60, 10, 200, 90], "landmarks": {}},
        }

    rf.detect_faces = detect_faces


def test_retinaface_with_weights_builds_offline_and_converts(tmp_path, monkeypatch, no_network):
    weights = tmp_path / "rf.h5"
    weights.write_bytes(b"not really weights")
    monkeypatch.setenv("FORENSIC_RETINAFACE_WEIGHTS", str(weights))
    seen: dict = {}
    _install_fake_retinaface(monkeypatch, seen)
    original_loader = sys.modules["retinaface.model.retinaface_model"].load_weights

    det = create_face_detector("retinaface", strict=True)
    assert isinstance(det, RetinaFaceDetector) and det.name == "retinaface"
    assert seen["loaded"] == str(weights)
    # the patch is undone after the build
    assert sys.modules["retinaface.model.retinaface_model"].load_weights is original_loader

    img = np.zeros((100, 120, 3), np.uint8)
    img[0, 0] = (255, 0, 0)  # red in RGB
    (faces,) = det.detect_batch([img])
    assert seen["bgr_first_pixel"] == (0, 0, 255)  # the package got BGR
    assert [f.score for f in faces] == pytest.approx([0.99, 0.97])
    assert faces[0].xyxy == (60.0, 10.0, 120.0, 90.0)  # clipped to the 120 px wide frame
    assert faces[0].landmarks is None and faces[1].landmarks.shape == (5, 2)
    assert isinstance(create_face_detector("auto"), RetinaFaceDetector)
