"""forensic-analyze end to end on real media, with a bad file in the batch."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import DATA, REPO, SAMPLES
from engine.cli import main


def test_cli_batch_with_bad_file(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 50)
    out = tmp_path / "out" / "batch.json"
    code = main([str(DATA / "retalking_face5.mp4"), str(bad), "--json", str(out), "--frames", "6",
                 "--device", "cpu", "--quiet"])
    assert code == 2  # some failed
    doc = json.loads(out.read_text())
    assert len(doc["analyses"]) == 1 and len(doc["failed"]) == 1
    a = doc["analyses"][0]
    assert a["evidence"]["path"].endswith("retalking_face5.mp4")
    assert len(a["faces"]["tracks"][0]["entries"]) == 6
    assert (out.parent / a["arrays_file"]).exists()
    assert "not a recognised" in doc["failed"][0]["message"] and str(bad) in doc["failed"][0]["message"]


def test_console_script_runs_on_sample(tmp_path):
    cmd = [sys.executable, "-m", "engine.cli"]
    out = tmp_path / "s.json"
    proc = subprocess.run([*cmd, str(SAMPLES / "apple_iphone6_with-gps.mov"), "--json", str(out), "--frames", "4",
                           "--device", "cpu", "--quiet"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    ev = doc["analyses"][0]["evidence"]
    assert ev["device"]["summary"] == "Apple iPhone 6 (12.3)" and ev["video"][0]["rotation"] == 270
    assert doc["analyses"][0]["evidence_unchanged"]
    # 'all' = every registered detector whose weights are installed; the others are listed with the reason
    assert "deepfake.freq" in doc["detectors_requested"]
    assert all("no weights" in why for why in doc["detectors_unavailable"].values())
    freq = [d for d in doc["analyses"][0]["detectors"] if d["detector_id"] == "deepfake.freq"][0]
    assert freq["status"] == "ok" and 0.0 <= freq["score"] <= 1.0 and len(freq["frame_scores"]) >= 1


def test_batch_folder_with_case_and_report(tmp_path):
    """Two good files and one corrupt one in a folder: exit 2, the case and the report list the corrupt one."""
    import shutil

    pypdf = __import__("pytest").importorskip("pypdf")
    from engine.case import Case

    folder = tmp_path / "evidence"
    folder.mkdir()
    for name in ("retalking_face5.mp4", "single_face.mp4"):
        shutil.copyfile(DATA / name, folder / name)
    (folder / "broken.mp4").write_bytes((DATA / "single_face.mp4").read_bytes()[:2000])
    out = tmp_path / "out"
    args = [str(folder), "--json", str(out / "batch.json"), "--case", str(out / "case.json"), "--analyst", "T. Ester",
            "--report", str(out / "report.pdf"), "--detectors", "deepfake.freq", "--frames", "4", "--device", "cpu",
            "--quiet"]
    assert main(args) == 2
    doc = json.loads((out / "batch.json").read_text())
    assert len(doc["analyses"]) == 2 and [f["path"] for f in doc["failed"]] == [str(folder / "broken.mp4")]
    case = Case.load(out / "case.json")
    assert case.analyst == "T. Ester" and len(case.evidence) == 2 and not case.integrity_problems
    assert sorted(r.status for r in case.runs) == ["failed", "ok", "ok"]
    assert [a.action for a in case.audit].count("report_written") == 1
    text = "".join(p.extract_text() for p in pypdf.PdfReader(str(out / "report.pdf")).pages)
    flat = "".join(text.split())
    assert "broken.mp4" in flat and "".join(doc["failed"][0]["message"].split())[-40:] in flat
    for a in doc["analyses"]:
        assert a["evidence"]["sha256"] in flat
    # outputs next to the evidence are refused
    assert main([str(folder / "single_face.mp4"), "--json", str(folder / "x.json"), "--detectors", "none",
                 "--quiet"]) == 2
    assert not (folder / "x.json").exists()
