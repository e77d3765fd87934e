"""engine/ never imports Qt (DESIGN.md layers)."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_importing_engine_does_not_load_qt():
    code = (
        "import sys, engine, engine.media, engine.faces, engine.features, engine.pipeline, engine.weights, "
        "engine.cli, engine.io\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'pyqtgraph'}]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_no_qt_in_engine_sources():
    for path in Path(REPO / "engine").rglob("*.py"):
        text = path.read_text()
        assert "PySide6" not in text and "QtCore" not in text and "QtWidgets" not in text, path


# The scan for unpickling (pickle, torch.load without weights_only=True, joblib, np.load allow_pickle, ...)
# lives in tests/hardening/test_security.py.
