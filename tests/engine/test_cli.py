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
