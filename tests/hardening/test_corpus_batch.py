"""Issue 8 hardening: a batch over good and bad corpus files keeps going; a case keeps what it saved.

Uses the corpus generators of ``tests/hardening/corpus.py``; ``forensic-analyze``
is called in-process (``engine.cli.main``).
"""

from __future__ import annotations

import json

import pytest

from engine.case import Case
from engine.cli import main
from hardening.corpus import KINDS_BY_NAME, folder_state

GOOD = ("video_only", "vfr")
BAD = ("text_renamed_mp4", "zero_bytes", "truncated_50pct", "absurd_dims_16000", "zero_duration")


def _make(names, folder):
    paths = {}
    for name in names:
        sub = folder / name
        sub.mkdir()
        paths[name] = KINDS_BY_NAME[name].make(sub)
    return paths


def _args(inputs, out, *extra):
    return [*map(str, inputs), "--json", str(out / "batch.json"), "--detectors", "deepfake.freq", "--frames", "4",
            "--device", "cpu", "--quiet", *extra]


def test_batch_keeps_going_and_names_each_bad_file(tmp_path, capsys):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    paths = _make(GOOD + BAD, evidence)
    before = folder_state(evidence)
    out = tmp_path / "out"
    code = main(_args([evidence], out, "--case", str(out / "case.json")))
    assert code == 2  # documented: 2 when some files failed
    doc = json.loads((out / "batch.json").read_text())
    analysed = {a["evidence"]["path"] for a in doc["analyses"]}
    assert analysed == {str(paths[n].resolve()) for n in GOOD}
    for a in doc["analyses"]:
        assert a["evidence_unchanged"]
        assert a["arrays_file"] is None or (out / a["arrays_file"]).exists()
    assert any(a["arrays_file"] for a in doc["analyses"])  # the VFR clip has audio features
    failed = {f["path"]: f for f in doc["failed"]}
    assert set(failed) == {str(paths[n]) for n in BAD}
    for name in BAD:
        f = failed[str(paths[name])]
        kind = KINDS_BY_NAME[name]
        assert f["error"] == kind.error.kind and str(paths[name]) in f["message"] and kind.phrase in f["message"]
    err = capsys.readouterr().err
    assert all(f"failed: {paths[n]}" in err for n in BAD)
    case = Case.load(out / "case.json")
    assert len([r for r in case.runs if r.status == "ok"]) == 2
    assert len([r for r in case.runs if r.status == "failed"]) == len(BAD)
    assert folder_state(evidence) == before  # nothing written next to evidence, bytes unchanged


def test_unexpected_engine_error_on_one_file_does_not_end_the_batch(tmp_path, monkeypatch):
    import engine.cli as cli

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    paths = _make(("video_only", "one_frame"), evidence)
    real = cli.analyze

    def flaky(path, *a, **k):
        if path.name == paths["video_only"].name:
            raise RuntimeError("simulated engine bug")
        return real(path, *a, **k)

    monkeypatch.setattr(cli, "analyze", flaky)
    out = tmp_path / "out"
    assert main(_args([evidence], out)) == 2
    doc = json.loads((out / "batch.json").read_text())
    assert [a["evidence"]["path"] for a in doc["analyses"]] == [str(paths["one_frame"].resolve())]
    assert doc["failed"][0]["error"] == "analysis error" and "simulated engine bug" in doc["failed"][0]["message"]
    assert str(paths["video_only"]) in doc["failed"][0]["message"]


def test_case_keeps_saved_results_when_a_bad_file_is_analysed(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    paths = _make(("video_only", "truncated_10pct", "text_renamed_mp4"), evidence)
    out = tmp_path / "out"
    case_path = out / "case.json"
    assert main(_args([paths["video_only"]], out, "--case", str(case_path))) == 0
    first = Case.load(case_path)
    saved_runs = [(r.run_id, r.evidence_sha256, r.status) for r in first.runs]
    saved_evidence = [(e.path, e.sha256) for e in first.evidence]
    assert saved_runs and saved_evidence
    out2 = tmp_path / "out2"
    code = main(_args([paths["truncated_10pct"], paths["text_renamed_mp4"]], out2, "--case", str(case_path)))
    assert code == 2
    case = Case.load(case_path)
    assert case.audit_ok
    assert [(r.run_id, r.evidence_sha256, r.status) for r in case.runs][: len(saved_runs)] == saved_runs
    assert [(e.path, e.sha256) for e in case.evidence] == saved_evidence  # bad files are not taken in
    failed = [r for r in case.runs if r.status == "failed"]
    assert len(failed) == 2 and any("truncated or corrupt" in r.message for r in failed)
    assert not case.integrity_problems
    assert (out / "batch.json").exists()  # the first batch's result file is untouched
    assert json.loads((out / "batch.json").read_text())["analyses"][0]["evidence_unchanged"]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
