"""Issue 8 hardening: the bad-input corpus (``tests/hardening/corpus.py``), kind by kind.

Each kind is generated into a fresh folder, run through ``probe``,
``VideoReader``, ``load_audio`` and ``analyze`` (``deepfake.freq`` +
``deepfake.effvit``), and must give its expected result or its typed
``EvidenceError`` naming the file; the evidence bytes stay unchanged and
nothing appears next to the evidence. ``scripts/corpus_table.py`` prints the
same runs as the table in ``docs/HARDENING.md``.
"""

from __future__ import annotations

import pytest

from hardening.corpus import KINDS, run_kind


def test_corpus_has_at_least_30_kinds():
    assert len(KINDS) >= 30


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_kind(kind, tmp_path_factory):
    summary = run_kind(kind, tmp_path_factory.mktemp("corpus"))
    assert summary
