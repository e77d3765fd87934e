"""FaceBox value semantics and geometry helpers; engine.faces stays Qt-free."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.faces import FaceBox


def test_geometry_helpers():
    b = FaceBox(10, 20, 50, 100, 0.8)
    assert (b.width, b.height, b.area, b.center, b.xyxy) == (40, 80, 3200, (30, 60), (10, 20, 50, 100))
    assert b.iou(b) == 1.0
    assert b.iou(FaceBox(50, 20, 90, 100)) == 0.0  # touching edges
    assert b.iou(FaceBox(30, 20, 70, 100)) == pytest.approx(1600 / 4800)
    assert FaceBox(0, 0, 0, 0).iou(FaceBox(0, 0, 0, 0)) == 0.0
    s = FaceBox(10, 20, 50, 100, 0.8, np.ones((5, 2))).scaled(2.0, 0.5)
    assert s.xyxy == (20, 10, 100, 50) and np.all(s.landmarks == [2.0, 0.5])
    assert FaceBox(-5, -5, 700, 30).clipped(640, 360).xyxy == (0, 0, 640, 30)
    assert FaceBox.from_center_size(30, 60, 40, 80, 0.8) == b


def test_validation_and_value_semantics():
    for bad in [(0, 0, -1, 1), (0, 0, 1, -1), (0, 0, 1, 1, 1.5), (0, float("nan"), 1, 1)]:
        with pytest.raises(ValueError):
            FaceBox(*bad)
    with pytest.raises(ValueError):
        FaceBox(0, 0, 1, 1, 0.5, np.zeros((4, 2)))
    lm = np.arange(10, dtype=np.float64).reshape(5, 2)
    a, b = FaceBox(0, 0, 1, 1, 0.5, lm), FaceBox(0, 0, 1, 1, 0.5, lm.copy())
    assert a == b and hash(a) == hash(b) and a != FaceBox(0, 0, 1, 1, 0.5)
    assert a.landmarks.dtype == np.float32 and not a.landmarks.flags.writeable
    lm[0, 0] = 99  # the box kept its own copy
    assert a.landmarks[0, 0] == 0


def test_engine_faces_never_imports_qt():
    code = "import sys, engine.faces; assert not any(m.startswith(('PySide6', 'PyQt')) for m in sys.modules)"
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)
