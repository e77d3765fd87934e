"""Generate the bad-input corpus (issue 8), run every kind, print the kind → outcome table.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/corpus_table.py            # Markdown table on stdout
    OMP_NUM_THREADS=1 .venv/bin/python scripts/corpus_table.py --write    # also rewrite docs/HARDENING.md

The corpus (generators, expected outcomes, checks) lives in
``tests/hardening/corpus.py`` and is shared with ``tests/hardening/test_corpus.py``;
this script only formats the outcomes. Files are generated in a temporary folder
that is deleted afterwards. Exit status 1 when a kind does not behave as expected.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from hardening.corpus import FAST_DETECTORS, KINDS, SAMPLE_FRAMES, run_kind  # noqa: E402

INTRO = """# Hardening: the bad-input corpus

Issue 8. Every kind of awkward or broken evidence below is generated on the fly
(PyAV, from the small committed test media and faces; nothing large is
committed) by `tests/hardening/corpus.py` and run through `probe`,
`VideoReader(...).sample(Uniform({frames}))`, `load_audio(path, 16000)` and
`analyze()` with {detectors}. Each kind must give its expected result or the
named typed `EvidenceError` (message naming the file and the problem), the
evidence bytes (SHA-256) must be unchanged and nothing may appear next to the
evidence. `tests/hardening/test_corpus.py` asserts all of it;
`tests/hardening/test_corpus_batch.py` checks that a `forensic-analyze` batch
over good and bad files keeps going (exit status 2, each bad file named) and
that a case keeps its saved results; `tests/hardening/test_corpus_gui.py` opens
bad files in a row in the window.

Regenerate this page with
`OMP_NUM_THREADS=1 .venv/bin/python scripts/corpus_table.py --write`.
Paths in messages are shown relative to the kind's folder (`…`).

"""


def table(rows: list[tuple[str, str, str]]) -> str:
    """Markdown table of ``(kind, what is generated, outcome)`` rows."""
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| kind | what is generated | outcome |", "|---|---|---|"]
    lines += [f"| `{k}` | {esc(w)} | {esc(o)} |" for k, w, o in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the corpus; print (and with ``--write`` save) the table. Returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite docs/HARDENING.md")
    args = ap.parse_args(argv)
    rows, failures = [], 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="corpus_") as tmp:
        for kind in KINDS:
            try:
                outcome = run_kind(kind, Path(tmp))
            except AssertionError as exc:
                failures += 1
                outcome = f"**UNEXPECTED**: {exc}"
            rows.append((kind.name, kind.what, outcome))
            print(f"{kind.name}: {outcome}", file=sys.stderr)
    doc = INTRO.format(frames=SAMPLE_FRAMES, detectors=" + ".join(f"`{d}`" for d in FAST_DETECTORS)) + table(rows)
    doc += f"\n{len(rows)} kinds, {len(rows) - failures} as expected ({time.perf_counter() - t0:.0f} s).\n"
    print(doc)
    if args.write:
        from engine.io import atomic_write_bytes

        atomic_write_bytes(REPO / "docs" / "HARDENING.md", doc.encode("utf-8"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
