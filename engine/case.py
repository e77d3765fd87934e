"""Case files: evidence, analysis runs, bookmarks, notes and an append-only, hash-chained audit log.

A case is one versioned JSON document (``schema_version``), written atomically
(temp file + rename, :func:`engine.io.atomic_write_json`), so a crash or a kill
while saving leaves either the old or the new file on disk, never a torn one.

Forensic rules it enforces:

* **Evidence integrity.** Each evidence item keeps the SHA-256 and size taken at
  intake. :meth:`Case.verify_evidence` re-hashes every file (on case open and
  before a report); a mismatch or a missing file is recorded in
  :attr:`Case.integrity`, logged in the audit log as ``EVIDENCE_MISMATCH`` /
  ``EVIDENCE_MISSING`` and never silently ignored.
* **Append-only audit log.** Every action is an :class:`AuditEntry` with a UTC
  timestamp and the SHA-256 of the previous entry (a hash chain, as in
  tamper-evident logs): editing or deleting an old entry breaks the chain, and
  :meth:`Case.load` reports it (``audit_ok`` False and a ``AUDIT_CHAIN_BROKEN``
  entry) instead of refusing the case.

Times are ISO-8601 UTC strings; bookmark times are seconds from the first video
frame (``Frame.pts``) with the frame index in presentation order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .io import atomic_write_json
from .media.probe import utc_now_iso

__all__ = [
    "CASE_SCHEMA_VERSION", "BOOKMARK_STATUSES", "Case", "CaseError", "EvidenceItem", "AnalysisRun", "Bookmark",
    "Note", "AuditEntry", "IntegrityCheck",
]

#: Version of the case JSON layout written by :meth:`Case.save`.
CASE_SCHEMA_VERSION = 1
#: Bookmark statuses: stored value -> label shown to the analyst.
BOOKMARK_STATUSES = {"ok": "Ok", "to_check": "To check", "warning": "Warning"}


class CaseError(ValueError):
    """A case file cannot be read or is not a case (the message names the file and the problem)."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


@dataclass
class EvidenceItem:
    """One evidence file of the case, as taken in.

    Attributes:
        path: absolute path at intake. sha256: SHA-256 at intake (hex).
        size_bytes: size at intake. added: ISO UTC time.
        probe: summary of :meth:`engine.media.Evidence.to_dict` (container, streams, device, warnings).
    """

    path: str
    sha256: str
    size_bytes: int
    added: str
    probe: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class AnalysisRun:
    """One analysis of one evidence file.

    Attributes:
        run_id: unique id. evidence_sha256: the evidence analysed.
        detectors: detector ids asked for. weights: detector id -> weights SHA-256 used.
        parameters: sampling and per-detector parameters. engine_version, device: provenance.
        started, finished: ISO UTC. result_path: the result JSON (``AnalysisResult.save``).
        status: ``"ok"``, ``"failed"`` or ``"cancelled"``; message: why, when not ok.
    """

    run_id: str
    evidence_sha256: str
    detectors: list[str]
    weights: dict[str, str | None] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    engine_version: str = __version__
    device: str = ""
    started: str = ""
    finished: str = ""
    result_path: str | None = None
    status: str = "ok"
    message: str = ""


@dataclass
class Bookmark:
    """A frame the analyst marked.

    Attributes:
        bookmark_id: unique id. evidence_sha256: which evidence.
        time_s: seconds from the first frame. frame_index: presentation-order index.
        status: one of :data:`BOOKMARK_STATUSES` (``"ok"``, ``"to_check"``, ``"warning"``).
        comment: free text. created: ISO UTC.
    """

    bookmark_id: str
    evidence_sha256: str
    time_s: float
    frame_index: int
    status: str
    comment: str
    created: str

    @property
    def status_label(self) -> str:
        return BOOKMARK_STATUSES.get(self.status, self.status)


@dataclass
class Note:
    """An analyst note (case-wide when ``evidence_sha256`` is None)."""

    created: str
    text: str
    evidence_sha256: str | None = None


@dataclass
class AuditEntry:
    """One audit-log line; ``sha256`` covers every other field, including ``prev_sha256``."""

    seq: int
    timestamp: str
    action: str
    details: dict[str, Any]
    prev_sha256: str
    sha256: str = ""

    def compute_sha256(self) -> str:
        body = {k: v for k, v in dataclasses.asdict(self).items() if k != "sha256"}
        return hashlib.sha256(_canonical(body)).hexdigest()


@dataclass
class IntegrityCheck:
    """Result of re-hashing one evidence file.

    Attributes:
        path, expected: intake path and SHA-256. actual: SHA-256 now (None if unreadable).
        status: ``"ok"``, ``"mismatch"`` or ``"missing"``. checked: ISO UTC. message: details.
    """

    path: str
    expected: str
    actual: str | None
    status: str
    checked: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Case:
    """A forensic case. Build with :meth:`new` or :meth:`load`; every mutator logs to :attr:`audit`.

    Attributes:
        case_id, name, analyst, created: identity. evidence, runs, bookmarks, notes, audit: contents.
        path: where it was loaded from / last saved (not stored in the file).
        integrity: the last :meth:`verify_evidence` checks (not stored; re-done on open).
        audit_ok: False when the loaded audit chain did not verify.
    """

    case_id: str
    name: str
    analyst: str
    created: str
    evidence: list[EvidenceItem] = field(default_factory=list)
    runs: list[AnalysisRun] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    schema_version: int = CASE_SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)
    integrity: list[IntegrityCheck] = field(default_factory=list, compare=False)
    audit_ok: bool = field(default=True, compare=False)

    # ------------------------------------------------------------------ create / load / save
    @classmethod
    def new(cls, name: str, analyst: str, case_id: str | None = None) -> "Case":
        """A new empty case; its audit log starts with ``case_created``."""
        case = cls(case_id=case_id or f"CASE-{uuid.uuid4().hex[:8].upper()}", name=name, analyst=analyst,
                   created=utc_now_iso())
        case.log("case_created", name=name, analyst=analyst, engine_version=__version__)
        return case

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (without ``path``, ``integrity``, ``audit_ok``)."""
        return {
            "schema_version": self.schema_version, "case_id": self.case_id, "name": self.name,
            "analyst": self.analyst, "created": self.created,
            "evidence": [dataclasses.asdict(e) for e in self.evidence],
            "runs": [dataclasses.asdict(r) for r in self.runs],
            "bookmarks": [dataclasses.asdict(b) for b in self.bookmarks],
            "notes": [dataclasses.asdict(n) for n in self.notes],
            "audit": [dataclasses.asdict(a) for a in self.audit],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Path | None = None) -> "Case":
        """Build from a parsed document.

        Raises:
            CaseError: not a case, unknown schema version, or malformed entries.
        """
        where = str(path) if path else "case"
        if not isinstance(d, dict) or "case_id" not in d or "audit" not in d:
            raise CaseError(f"{where}: not a case file (no case_id/audit)")
        if d.get("schema_version") != CASE_SCHEMA_VERSION:
            raise CaseError(f"{where}: unsupported case schema version {d.get('schema_version')!r}")
        try:
            case = cls(
                case_id=d["case_id"], name=d["name"], analyst=d["analyst"], created=d["created"],
                evidence=[EvidenceItem(**e) for e in d.get("evidence", [])],
                runs=[AnalysisRun(**r) for r in d.get("runs", [])],
                bookmarks=[Bookmark(**b) for b in d.get("bookmarks", [])],
                notes=[Note(**n) for n in d.get("notes", [])],
                audit=[AuditEntry(**a) for a in d["audit"]],
                path=path,
            )
        except (KeyError, TypeError) as exc:
            raise CaseError(f"{where}: malformed case file ({type(exc).__name__}: {exc})") from exc
        return case

    @classmethod
    def load(cls, path: str | Path, verify: bool = True, progress: Callable[[float], None] | None = None) -> "Case":
        """Open a case file, check its audit chain and (``verify``) re-hash its evidence.

        Both checks are logged (``case_opened``, ``AUDIT_CHAIN_BROKEN``,
        ``evidence_verified`` / ``EVIDENCE_MISMATCH`` / ``EVIDENCE_MISSING``); the
        case is not saved here.

        Raises:
            CaseError: unreadable file, invalid JSON, or not a case.
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CaseError(f"{path}: cannot read case file ({exc})") from exc
        case = cls.from_dict(doc, path)
        broken = case.check_audit_chain()
        case.audit_ok = broken is None
        case.log("case_opened", path=str(path))
        if broken is not None:
            case.log("AUDIT_CHAIN_BROKEN", first_bad_seq=broken,
                     message="an audit entry was edited, removed or reordered since it was written")
        if verify:
            case.verify_evidence(progress)
        return case

    def save(self, path: str | Path | None = None) -> Path:
        """Write the case atomically to ``path`` (default: where it came from) and log ``case_saved`` first.

        Raises:
            ValueError: no path given and none known. OSError: cannot write.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no path to save the case to")
        self.log("case_saved", path=str(target))
        atomic_write_json(target, self.to_dict())
        self.path = target
        return target

    # ------------------------------------------------------------------ audit
    def log(self, action: str, **details: Any) -> AuditEntry:
        """Append an audit entry (UTC timestamp, hash-chained to the previous one)."""
        prev = self.audit[-1].sha256 if self.audit else "0" * 64
        entry = AuditEntry(seq=len(self.audit), timestamp=utc_now_iso(), action=action,
                           details=json.loads(_canonical(details)), prev_sha256=prev)
        entry.sha256 = entry.compute_sha256()
        self.audit.append(entry)
        return entry

    def check_audit_chain(self) -> int | None:
        """Sequence number of the first entry that breaks the hash chain, or None if intact."""
        prev = "0" * 64
        for i, e in enumerate(self.audit):
            if e.seq != i or e.prev_sha256 != prev or e.compute_sha256() != e.sha256:
                return i
            prev = e.sha256
        return None

    # ------------------------------------------------------------------ evidence
    def add_evidence(self, evidence) -> EvidenceItem:
        """Take in evidence; returns the existing item if the same file and hash are known.

        Args:
            evidence: an :class:`engine.media.Evidence` (probe result) or its
                ``to_dict()`` (e.g. ``AnalysisResult.evidence``, so a batch need not probe twice).
        """
        d = evidence if isinstance(evidence, dict) else evidence.to_dict()
        path = str(Path(d["path"]).absolute())
        for item in self.evidence:
            if item.sha256 == d["sha256"] and item.path == path:
                return item
        summary = {k: d.get(k) for k in ("container", "duration_s", "bit_rate", "video", "audio", "device",
                                          "creation_time", "warnings") if k in d}
        summary = json.loads(_canonical(summary))  # plain JSON types (tuples -> lists), as after a reload
        item = EvidenceItem(path=path, sha256=d["sha256"], size_bytes=int(d["size_bytes"]), added=utc_now_iso(),
                            probe=summary)
        self.evidence.append(item)
        self.log("evidence_added", path=item.path, sha256=item.sha256, size_bytes=item.size_bytes)
        return item

    def evidence_by_sha(self, sha256: str) -> EvidenceItem | None:
        return next((e for e in self.evidence if e.sha256 == sha256), None)

    def verify_evidence(self, progress: Callable[[float], None] | None = None) -> list[IntegrityCheck]:
        """Re-hash every evidence file; store the checks in :attr:`integrity` and log each.

        Equivalent to ``record_integrity(check_evidence(progress))``.

        Returns:
            One :class:`IntegrityCheck` per evidence item (``status`` ok / mismatch / missing).
        """
        return self.record_integrity(self.check_evidence(progress))

    def check_evidence(self, progress: Callable[[float], None] | None = None) -> list[IntegrityCheck]:
        """Re-hash every evidence file without touching the case (safe on a worker thread).

        Returns:
            One :class:`IntegrityCheck` per evidence item, in :attr:`evidence` order.
        """
        from .media import EvidenceError, sha256_file

        checks = []
        items = list(self.evidence)
        for i, item in enumerate(items):
            try:
                now = sha256_file(item.path)
            except EvidenceError as exc:
                checks.append(IntegrityCheck(item.path, item.sha256, None, "missing", utc_now_iso(), str(exc)))
            else:
                ok = now == item.sha256
                msg = "" if ok else f"SHA-256 changed since intake: was {item.sha256}, now {now}"
                checks.append(IntegrityCheck(item.path, item.sha256, now, "ok" if ok else "mismatch",
                                             utc_now_iso(), msg))
            if progress:
                progress((i + 1) / len(items))
        return checks

    def record_integrity(self, checks: list[IntegrityCheck]) -> list[IntegrityCheck]:
        """Keep ``checks`` as :attr:`integrity` and log each (``evidence_verified`` / ``EVIDENCE_*``)."""
        for c in checks:
            if c.status == "missing":
                self.log("EVIDENCE_MISSING", path=c.path, expected=c.expected, message=c.message)
            else:
                self.log("evidence_verified" if c.ok else "EVIDENCE_MISMATCH", path=c.path, expected=c.expected,
                         actual=c.actual)
        self.integrity = list(checks)
        return self.integrity

    @property
    def integrity_problems(self) -> list[IntegrityCheck]:
        """Checks of the last verification that are not ok."""
        return [c for c in self.integrity if not c.ok]

    # ------------------------------------------------------------------ runs, bookmarks, notes
    def add_run(self, result: dict[str, Any], result_path: str | Path | None, status: str = "ok",
                message: str = "") -> AnalysisRun:
        """Record an analysis from its result document (``AnalysisResult.to_dict()`` / the saved JSON)."""
        dets = result.get("detectors", [])
        run = AnalysisRun(
            run_id=uuid.uuid4().hex[:12], evidence_sha256=result["evidence"]["sha256"],
            detectors=[d["detector_id"] for d in dets],
            weights={d["detector_id"]: d.get("weights_sha256") for d in dets},
            parameters={"sampling": {k: v for k, v in result.get("sampling", {}).items() if k != "frames"},
                        "frames": len(result.get("sampling", {}).get("frames", [])),
                        "detectors": {d["detector_id"]: d.get("parameters", {}) for d in dets}},
            engine_version=result.get("tool", {}).get("engine_version", __version__),
            device=result.get("device", ""), started=result.get("started", ""), finished=result.get("finished", ""),
            result_path=str(result_path) if result_path else None, status=status, message=message,
        )
        self.runs.append(run)
        self.log("analysis_run", run_id=run.run_id, evidence_sha256=run.evidence_sha256, detectors=run.detectors,
                 weights=run.weights, status=status, message=message, result_path=run.result_path)
        return run

    def add_failed_run(self, path: str | Path, sha256: str | None, detectors: list[str], message: str,
                       status: str = "failed") -> AnalysisRun:
        """Record an analysis that failed or was cancelled (no result document)."""
        run = AnalysisRun(run_id=uuid.uuid4().hex[:12], evidence_sha256=sha256 or "", detectors=list(detectors),
                          started=utc_now_iso(), finished=utc_now_iso(), status=status, message=message)
        self.runs.append(run)
        self.log("analysis_" + status, path=str(path), evidence_sha256=sha256, detectors=list(detectors),
                 message=message)
        return run

    def latest_run(self, sha256: str) -> AnalysisRun | None:
        """The newest successful run of an evidence file."""
        return next((r for r in reversed(self.runs) if r.evidence_sha256 == sha256 and r.status == "ok"), None)

    def add_bookmark(self, evidence_sha256: str, time_s: float, frame_index: int, status: str = "to_check",
                     comment: str = "") -> Bookmark:
        """Bookmark a frame. Raises ValueError: unknown status."""
        if status not in BOOKMARK_STATUSES:
            raise ValueError(f"bookmark status must be one of {sorted(BOOKMARK_STATUSES)}, got {status!r}")
        b = Bookmark(uuid.uuid4().hex[:10], evidence_sha256, round(float(time_s), 6), int(frame_index), status,
                     comment, utc_now_iso())
        self.bookmarks.append(b)
        self.log("bookmark_added", **dataclasses.asdict(b))
        return b

    def remove_bookmark(self, bookmark_id: str) -> None:
        """Remove a bookmark (the audit log keeps its record). Raises KeyError: unknown id."""
        b = next((b for b in self.bookmarks if b.bookmark_id == bookmark_id), None)
        if b is None:
            raise KeyError(bookmark_id)
        self.bookmarks.remove(b)
        self.log("bookmark_removed", **dataclasses.asdict(b))

    def add_note(self, text: str, evidence_sha256: str | None = None) -> Note:
        """Add an analyst note."""
        n = Note(utc_now_iso(), text, evidence_sha256)
        self.notes.append(n)
        self.log("note_added", text=text, evidence_sha256=evidence_sha256)
        return n
