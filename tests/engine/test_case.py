"""engine.case: round trip, hash-chained audit log, evidence tamper detection, crash-safe saving."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import SAMPLES
from engine.case import Case, CaseError
from engine.media import probe

SAMPLE = SAMPLES / "WDA_AlexandriaOcasioCortez_000.mp4"


def _case_with_evidence(tmp_path):
    copy = tmp_path / "evidence" / SAMPLE.name
    copy.parent.mkdir()
    shutil.copyfile(SAMPLE, copy)
    case = Case.new("Test case", "A. Analyst", case_id="CASE-TEST")
    item = case.add_evidence(probe(copy))
    return case, item, copy


def test_round_trip_keeps_everything(tmp_path):
    case, item, _ = _case_with_evidence(tmp_path)
    case.add_bookmark(item.sha256, 1.24, 31, "warning", "lips out of sync")
    case.add_note("mouth region looks smoothed", item.sha256)
    path = case.save(tmp_path / "case.json")
    loaded = Case.load(path)
    assert loaded.case_id == "CASE-TEST" and loaded.analyst == "A. Analyst"
    assert loaded.evidence == case.evidence and loaded.bookmarks == case.bookmarks and loaded.notes == case.notes
    assert loaded.bookmarks[0].status_label == "Warning"
    assert loaded.audit_ok and [c.status for c in loaded.integrity] == ["ok"]
    actions = [a.action for a in loaded.audit]
    assert actions[:5] == ["case_created", "evidence_added", "bookmark_added", "note_added", "case_saved"]
    assert actions[-2:] == ["case_opened", "evidence_verified"]
    assert loaded.check_audit_chain() is None
    with pytest.raises(ValueError, match="status"):
        loaded.add_bookmark(item.sha256, 0.0, 0, "maybe")


def test_tampered_evidence_is_flagged_in_integrity_and_audit(tmp_path):
    case, item, copy = _case_with_evidence(tmp_path)
    path = case.save(tmp_path / "case.json")
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte of the copy
    copy.write_bytes(bytes(data))
    loaded = Case.load(path)
    [check] = loaded.integrity_problems
    assert check.status == "mismatch" and check.expected == item.sha256 and check.actual != item.sha256
    mismatch = [a for a in loaded.audit if a.action == "EVIDENCE_MISMATCH"]
    assert len(mismatch) == 1 and mismatch[0].details["expected"] == item.sha256
    copy.unlink()
    assert [c.status for c in Case.load(path).integrity] == ["missing"]


def test_edited_audit_entry_breaks_the_chain(tmp_path):
    case, _, _ = _case_with_evidence(tmp_path)
    path = case.save(tmp_path / "case.json")
    doc = json.loads(path.read_text())
    doc["audit"][1]["details"]["sha256"] = "0" * 64  # rewrite history
    path.write_text(json.dumps(doc))
    loaded = Case.load(path, verify=False)
    assert not loaded.audit_ok and loaded.check_audit_chain() == 1
    assert loaded.audit[-1].action == "AUDIT_CHAIN_BROKEN"


@pytest.mark.parametrize("content,match", [("{oops", "cannot read"), ('{"a": 1}', "not a case"),
                                           ('{"case_id": 1, "audit": [], "schema_version": 99}', "schema")])
def test_bad_case_files_raise_case_error(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(CaseError, match=match):
        Case.load(p)


def test_sigkill_while_saving_never_leaves_a_torn_file(tmp_path):
    """A process saving the case in a loop is killed (SIGKILL) at random moments; the file always loads."""
    target = tmp_path / "case.json"
    script = textwrap.dedent(f"""
        import sys
        from engine.case import Case
        case = Case.new("crash test", "tester", case_id="CASE-CRASH")
        for i in range(200):
            case.add_note("x" * 2000)  # a growing document: each save writes more bytes
        case.save({str(target)!r})
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            case.add_note(f"note {{i}}" + "y" * 5000)
            case.save()
    """)
    rng = __import__("random").Random(0)
    sizes = set()
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                cwd=str(SAMPLES.parent.parent))
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        case = Case.load(target, verify=False)  # valid JSON, a valid case, chain intact
        assert case.case_id == "CASE-CRASH" and case.audit_ok
        sizes.add(target.stat().st_size)
    assert len(sizes) > 1  # the kills landed at different points of the save loop
