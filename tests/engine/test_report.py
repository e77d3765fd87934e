"""engine.report: the PDF report's content, integrity warnings, failures and where it may be written."""

from __future__ import annotations

import re
import shutil
from types import SimpleNamespace

import pytest

from conftest import DATA, SAMPLES
from engine.report import (
    ALL_SECTIONS,
    INTEGRITY_WARNING,
    SECTION_TITLES,
    ReportOptions,
    build_report,
    format_timestamp,
    verify_results,
)
from engine.results import ResultView

pypdf = pytest.importorskip("pypdf")

SAMPLE = SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4"


def _pages_text(pdf_path) -> list[str]:
    return [page.extract_text() or "" for page in pypdf.PdfReader(str(pdf_path)).pages]


def _analyse(path, detectors, n_frames, out_json):
    from engine.media import Uniform
    from engine.pipeline import ClipConfig, analyze

    result = analyze(path, detectors, device="cpu", config=ClipConfig(sampling=Uniform(n_frames)))
    result.save(out_json)
    return ResultView.load(out_json)


def _case(sha256: str) -> SimpleNamespace:
    """A stand-in with the attributes of engine.case.Case that the report reads."""
    created = "2026-01-02T03:04:05+00:00"
    return SimpleNamespace(
        case_id="CASE-0042", name="Test case", analyst="A. Analyst", created=created,
        bookmarks=[SimpleNamespace(evidence_sha256=sha256, time_s=1.24, frame_index=31, status="to_check",
                                   comment="lips look smeared", created=created),
                   SimpleNamespace(evidence_sha256=sha256, time_s=3.5, frame_index=87, status="warning",
                                   comment="box jumps", created=created)],
        notes=[SimpleNamespace(created=created, text="mouth region looks smoothed", evidence_sha256=None)],
        audit=[SimpleNamespace(timestamp=created, action="case_created", details={"name": "Test case"})],
    )


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """Both bundled detectors on the sample, 6 frames: ``ResultView`` of the saved result."""
    out = tmp_path_factory.mktemp("report_results")
    return _analyse(SAMPLE, ["deepfake.freq", "deepfake.effvit"], 6, out / "r.json")


def test_format_timestamp():
    assert format_timestamp(0.0) == "00:00:00.000"
    assert format_timestamp(3723.0456) == "01:02:03.046"
    assert format_timestamp(None) == "—"


def test_options_are_validated(tmp_path):
    view = ResultView({"evidence": {"path": str(tmp_path / "gone.mp4"), "sha256": "0" * 64}, "detectors": []})
    with pytest.raises(ValueError, match="unknown report sections"):
        build_report(tmp_path / "out" / "r.pdf", [view], options=ReportOptions(sections=("cover", "appendix")))
    with pytest.raises(ValueError, match="top_k"):
        build_report(tmp_path / "out" / "r.pdf", [view], options=ReportOptions(top_k=-1))


def test_synthetic_result_with_missing_evidence_and_camera_probs(tmp_path):
    """No decodable evidence, no arrays: the report still builds, says MISSING and lists class probabilities."""
    probs = {f"cam{i}": p for i, p in enumerate([0.05, 0.6, 0.1, 0.15, 0.02, 0.08])}
    doc = {
        "tool": {"name": "forensic-workbench", "engine_version": "0.1.0"},
        "evidence": {"path": str(tmp_path / "evidence" / "gone.mp4"), "sha256": "ab" * 32, "size_bytes": 10,
                     "video": [], "audio": []},
        "sha256_at_end": "ab" * 32, "device": "cpu", "sampling": {"policy": "Uniform", "n": 2, "frames": []},
        "detectors": [{"detector_id": "camera.test", "task": "camera", "status": "ok", "score": 0.6,
                       "label": "cam1", "class_probs": probs, "threshold": None, "frame_scores": []}],
    }
    out = build_report(tmp_path / "reports" / "r.pdf", [ResultView(doc, {})],
                       options=ReportOptions(sections=("cover", "evidence", "results", "camera")))
    pages = _pages_text(out)
    text = "\n".join(pages)
    assert "MISSING" in text and INTEGRITY_WARNING in pages[0]
    assert "camera.test: cam1 (score 0.600)" in text
    assert SECTION_TITLES["camera"] in [line.strip() for line in text.splitlines()]
    top5 = [m for m in re.findall(r"cam\d", text.split("C1. gone.mp4")[1])][:5]
    assert top5 == ["cam1", "cam3", "cam2", "cam5", "cam0"]
    assert "Methods" not in [line.strip() for line in text.splitlines()]
    assert [r["status"] for r in verify_results([ResultView(doc, {})])] == ["MISSING"]


@pytest.mark.slow
def test_report_contains_the_required_facts(analysed, tmp_path):
    case = _case(analysed.sha256)
    out = build_report(tmp_path / "report.pdf", [analysed], case=case)
    assert out == tmp_path / "report.pdf" and out.stat().st_size > 10_000
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"
    pages = _pages_text(out)
    text = "\n".join(pages)
    squeezed = re.sub(r"\s+", "", text)
    lines = [line.strip() for line in text.splitlines()]

    assert analysed.sha256 in squeezed  # full 64 hex, possibly wrapped
    for v in analysed.verdicts():
        assert v["status"] == "ok", v
        assert v["detector_id"] in text
        assert f"{v['score']:.3f}" in text
        assert v["label"] in text
    assert re.search(r"(manipulation suspected by \d+ of 2 detectors|no manipulation found by 2 detectors)", text)
    for key in ALL_SECTIONS[1:]:
        if key == "camera":  # no camera-model detector ran: the section is left out
            assert SECTION_TITLES[key] not in lines
            continue
        assert SECTION_TITLES[key] in lines, f"section title {SECTION_TITLES[key]!r} missing"
    n = len(pages)
    assert "page 1 of " + str(n) in pages[0] and f"page {n} of {n}" in pages[-1]
    assert all(f"of {n}" in p for p in pages)
    # header with the case id, bookmarks with their status label, notes, limitations verbatim
    assert all("CASE-0042" in p for p in pages)
    assert "To check" in text and "Warning" in text and "lips look smeared" in text
    assert "mouth region looks smoothed" in text
    from engine.weights import find_model_dir, load_card

    first_limitation = load_card(find_model_dir("deepfake.freq")).limitations[0]
    assert re.sub(r"\s+", "", first_limitation) in squeezed
    # top-k frames of the map detector, captioned with their time
    top = analysed.most_suspicious("deepfake.effvit", 1)[0]
    assert f"frame {top[0]}" in text and format_timestamp(top[1]) in text
    assert "forensic-analyze" in text and "Files not analysed" not in text


@pytest.mark.slow
def test_tampered_evidence_is_flagged(tmp_path):
    evidence = tmp_path / "evidence" / SAMPLE.name
    evidence.parent.mkdir()
    shutil.copyfile(SAMPLE, evidence)
    view = _analyse(evidence, ["deepfake.freq"], 4, tmp_path / "results" / "r.json")
    assert verify_results([view])[0]["ok"] is True

    data = bytearray(evidence.read_bytes())
    data[len(data) // 2] ^= 0xFF
    evidence.write_bytes(bytes(data))

    [check] = verify_results([view])
    assert check["ok"] is False and check["status"] == "MISMATCH" and check["now"] != view.sha256
    out = build_report(tmp_path / "reports" / "report.pdf", [view])
    pages = _pages_text(out)
    assert INTEGRITY_WARNING in pages[0]
    assert "MISMATCH" in "\n".join(pages)

    evidence.unlink()
    assert verify_results([view])[0]["status"] == "MISSING"
    build_report(tmp_path / "reports" / "report.pdf", [view])  # still builds without the file


@pytest.mark.slow
def test_failures_are_listed_and_evidence_folders_refused(analysed, tmp_path):
    failures = [("/cases/evidence/broken.mp4", "truncated or corrupt: no decodable frame")]
    out = build_report(tmp_path / "r.pdf", [analysed], failures=failures,
                       options=ReportOptions(sections=("cover", "results"), top_k=1))
    text = "\n".join(_pages_text(out))
    squeezed = re.sub(r"\s+", "", text)
    assert "Files not analysed" in text
    assert "/cases/evidence/broken.mp4" in squeezed and "truncated or corrupt: no decodable frame" in text

    for target in (SAMPLES / "report.pdf", SAMPLE.parent / "sub" / ".." / "r.pdf"):
        with pytest.raises(ValueError, match="evidence"):
            build_report(target, [analysed])
        assert not target.exists()
    with pytest.raises(ValueError, match="evidence"):  # next to a file that failed analysis
        build_report(tmp_path / "bad" / "r.pdf", [analysed], failures=[(tmp_path / "bad" / "x.mp4", "empty")])


@pytest.fixture(scope="module")
def camera_analysed(tmp_path_factory):
    """camera.audio/image/fusion (tiny random weights) on a 2.4 s clip with audio, 3 frames; the models folder."""
    from camera_weights import make_camera_models
    from engine.detectors.camera import CameraAudioDetector, CameraFusionDetector, CameraImageDetector
    from engine.media import Uniform
    from engine.pipeline import ClipConfig, analyze

    models = make_camera_models(tmp_path_factory.mktemp("camera_models"))
    dets = [CameraAudioDetector(model_dir=models / "camera.audio"),
            CameraImageDetector(model_dir=models / "camera.image", batch_size=4),
            CameraFusionDetector(model_dir=models)]
    clip = DATA / "single_face.mp4"
    result = analyze(clip, dets, device="cpu", config=ClipConfig(sampling=Uniform(3)),
                     compute_features=("display_spectrogram",))
    out = tmp_path_factory.mktemp("camera_results") / "r.json"
    result.save(out)
    return ResultView.load(out), models


def test_camera_section(camera_analysed, tmp_path, monkeypatch):
    from camera_weights import DEMO_LIMITATION

    view, models = camera_analysed
    monkeypatch.setenv("FORENSIC_MODELS_DIR", str(models))
    out = build_report(tmp_path / "r.pdf", [view], options=ReportOptions(
        sections=("cover", "methods", "results", "camera", "limitations")))
    pages = _pages_text(out)
    text = "\n".join(pages)
    lines = [line.strip() for line in text.splitlines()]
    squeezed = re.sub(r"\s+", "", text)
    assert SECTION_TITLES["camera"] in lines
    camera = text.split("C1. single_face.mp4")[1]
    for title in ("Audio (camera.audio)", "Image (camera.image)", "Fusion: product rule", "Fusion: sum rule"):
        assert title in camera
    summary = view.camera_summary()
    for key in ("audio", "image", "product", "sum"):  # each column's top class and probability is printed
        r = summary.ranking(key)
        assert len(r.top) == 5 and f"{r.top[0][0]} {r.top[0][1]:.3f}" in camera
    agree = "the two rules agree" if summary.rules_agree else "the two rules disagree"
    assert agree in re.sub(r"\s+", " ", camera)
    assert re.sub(r"\s+", "", DEMO_LIMITATION) in re.sub(r"\s+", "", camera)
    label = view.detector("camera.audio")["label"]
    assert f"Grad-CAM (camera.audio, predicted class {label})" in re.sub(r"\s+", " ", camera)
    assert "Audio Grad-CAM over the spectrogram" in camera and "Image Grad-CAM — camera.image" in camera
    # camera.fusion has no card of its own: both unimodal cards are used, never "no card"
    assert "No model card available" not in text and "not available: no weights for 'camera.fusion'" not in text
    fusion_limits = text.split("camera.fusion has no weights of its own")[1]
    assert "camera.audio@" in fusion_limits and "camera.image@" in fusion_limits
    assert re.sub(r"\s+", "", DEMO_LIMITATION) in re.sub(r"\s+", "", fusion_limits)
    assert "(seetheresultJSON)" in squeezed  # long parameters (Grad-CAM axes, frame probabilities) summarised
    assert "row_center_hz=[" not in squeezed
    # the camera maps are not repeated as "most suspicious frames" with the face-crop caption
    assert "Most suspicious frames — camera.image" not in text


def test_combined_verdict_plots_sync_and_references_in_report(tmp_path):
    """Issue 7: the combined verdict (rule named), line/timeline plots, the A/V offset and reference faces."""
    import numpy as np

    from engine.fusion import combined_verdict
    from engine.pipeline import make_plot

    frames = [{"frame_index": i, "pts": i / 25, "score": 0.3 + 0.1 * i, "track_id": 0, "box": None,
               "heatmap_key": None, "crop": None} for i in range(3)]
    dets = [
        {"detector_id": "deepfake.av", "task": "deepfake", "status": "ok", "score": 0.8, "label": "fake",
         "threshold": 0.5, "frame_scores": frames,
         "plots": {"A/V offset": make_plot(list(range(-15, 16)), {"mean distance": [10.0] * 15 + [7.0] + [10.0] * 15},
                                           "audio offset (video frames, 40 ms)", "mean SyncNet distance",
                                           marker_x=0, note="minimum at the measured offset")},
         "details": {"av_sync": {"offset_frames": -5, "offset_ms": -200.0, "confidence": 3.25, "has_audio": True}}},
        {"detector_id": "deepfake.triplet", "task": "deepfake", "status": "ok", "score": 0.2, "label": "real",
         "threshold": 0.5, "frame_scores": frames,
         "plots": {"temporal saliency": make_plot([0.0, 0.04, 0.08], {"saliency": [0.1, 1.0, 0.4]}, "time (s)",
                                                  "saliency", kind="timeline")},
         "details": {"nearest_references": {"k": 2, "frames": [
             {"frame_index": 2, "pts": 0.08, "real": [[3, 0.5], [7, 0.75]], "fake": [[11, 1.5], [12, 2.0]]}]}}},
    ]
    doc = {"tool": {"name": "forensic-workbench", "engine_version": "0.1.0"},
           "evidence": {"path": str(tmp_path / "evidence" / "gone.mp4"), "sha256": "cd" * 32, "size_bytes": 10,
                        "video": [], "audio": []},
           "sha256_at_end": "cd" * 32, "device": "cpu", "sampling": {"policy": "Uniform", "n": 3, "frames": []},
           "detectors": dets, "combined": combined_verdict(dets)}
    thumbs = {f"deepfake.triplet/refs/{i}": np.full((48, 48, 3), 20 * k, np.uint8) for k, i in enumerate((3, 7, 11, 12))}
    out = build_report(tmp_path / "reports" / "r.pdf", [ResultView(doc, thumbs)],
                       options=ReportOptions(sections=("cover", "methods", "results")))
    text = "\n".join(_pages_text(out))
    flat = " ".join(text.split())
    assert "combined P(fake) 0.500: real (mean of the detectors' video P(fake), threshold 0.5)" in flat
    assert "Combined deepfake verdict" in text and "not calibrated against each other" in flat
    assert "A/V offset — deepfake.av" in flat and "minimum at the measured offset" in flat
    assert "-5 video frames (-200 ms), confidence 3.25" in flat
    assert "Temporal saliency — deepfake.triplet over time (s)" in flat
    assert "Nearest reference faces — deepfake.triplet" in flat and "face of frame 2" in flat
