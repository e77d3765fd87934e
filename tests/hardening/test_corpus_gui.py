"""Issue 8 hardening in the GUI: bad corpus files opened in a row each show a message naming the
file, the window stays usable, and a good file opened afterwards still plays (pytest-qt, offscreen)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from hardening.corpus import KINDS_BY_NAME  # noqa: E402

BAD = ("text_renamed_mp4", "truncated_50pct", "absurd_dims_16000")


def test_bad_files_in_a_row_then_a_good_one(qtbot, window, tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in BAD:
        sub = evidence / name
        sub.mkdir()
        path = KINDS_BY_NAME[name].make(sub).absolute()
        window.add_evidence(path)
        qtbot.waitUntil(lambda: window.entries[path].error is not None, timeout=30000)
        entry = window.entries[path]
        assert path.name in entry.error and KINDS_BY_NAME[name].phrase in entry.error
        assert path.name in window.status_label.text()
        assert entry.item.text().startswith("⚠")
    assert window.isVisible() and window.list.count() == len(BAD)
    good_dir = evidence / "good"
    good_dir.mkdir()
    good = KINDS_BY_NAME["video_only"].make(good_dir).absolute()
    window.add_evidence(good)
    qtbot.waitUntil(lambda: window.entries[good].evidence is not None, timeout=30000)
    window.list.setCurrentItem(window.entries[good].item)
    qtbot.waitUntil(lambda: window.playback.current is not None and window.current is not None
                    and window.current.path == good, timeout=30000)
    window.playback.seek_index(5)
    qtbot.waitUntil(lambda: window.playback.current.index == 5, timeout=10000)
    for name in BAD:  # selecting a bad file again shows its problem; nothing crashes
        entry = next(e for p, e in window.entries.items() if p.parent.name == name)
        window.list.setCurrentItem(entry.item)
        assert entry.path.name in window.video.placeholder


def test_evidence_opened_through_a_symlink_is_probed_and_named(qtbot, window, tmp_path):
    """The list entry is keyed by the path as opened; the probe reports the target it read."""
    target_dir, link_dir = tmp_path / "target", tmp_path / "links"
    target_dir.mkdir()
    link_dir.mkdir()
    target = KINDS_BY_NAME["video_only"].make(target_dir).absolute()
    link = link_dir / "link_to_evidence.mp4"
    link.symlink_to(target)
    window.add_evidence(link)
    qtbot.waitUntil(lambda: window.entries[link.absolute()].evidence is not None, timeout=30000)
    entry = window.entries[link.absolute()]
    assert entry.error is None and "(hashing" not in entry.item.text()
    assert entry.evidence.path == str(target.resolve())
    assert any("symbolic link" in w for w in entry.evidence.warnings)
