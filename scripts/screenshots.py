"""Make the README screenshots of the workbench: a real sample before and after analysis.

Opens ``resources/samples/<sample>`` in the main window (offscreen), grabs the
window once faces and spectrogram are prepared (``before_analysis.png``), runs
the given detectors, jumps to the most suspicious frame of the first detector
with a heatmap (key N) and grabs again with the overlay
(``after_analysis.png``), then brings the camera-model dock to the front with the
audio Grad-CAM laid over the spectrogram (``camera_model.png``, when camera
detectors ran). Results are kept in ``--data`` so a second run reuses them
instead of re-analysing.

Usage: ``QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--out docs/screenshots]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", default="WDA_AlexandriaOcasioCortez_000.mp4")
    ap.add_argument("--detectors", default="all", help="comma-separated ids, or all (every installed detector)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--data", type=Path, default=REPO / "out" / "screenshot_data")
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args()
    os.environ["FORENSIC_WORKBENCH_DATA"] = str(args.data)

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from forensic_gui.analysis import ResultStore
    from forensic_gui.app import MainWindow

    app = QApplication.instance() or QApplication([])
    w, h = (int(v) for v in args.size.split("x"))
    win = MainWindow(store=ResultStore(args.data / "results"), settings_path=args.data / "screenshots.ini")
    win.resize(w, h)
    win.show()

    def wait(cond, timeout=1800):
        t = time.perf_counter()
        while not cond():
            app.processEvents()
            time.sleep(0.01)
            if time.perf_counter() - t > timeout:
                raise TimeoutError("screenshot step timed out")
        for _ in range(20):
            app.processEvents()

    args.out.mkdir(parents=True, exist_ok=True)
    sample = REPO / "resources" / "samples" / args.sample
    win.add_evidence(sample)
    wait(lambda: win.current is not None and win.playback.current is not None)
    wait(lambda: win.current.view is not None)
    if win.current.prepared is None:  # a stored full result was found: prepare faces + spectrogram too
        from forensic_gui.analysis import AnalysisJob

        win.queue.submit(AnalysisJob(win.current.path, win.current.evidence.sha256, [], "cpu", kind="prepare"))
        wait(lambda: win.current.prepared is not None and not win.queue.busy)
    result = win.current.result
    win.current.result = None  # show the "before analysis" state even if a stored result exists
    win._refresh_result()
    wait(lambda: win.refreshed)
    win.playback.seek_index(60)
    wait(lambda: win.playback.current.index == 60)
    win.grab().save(str(args.out / "before_analysis.png"))
    if args.detectors == "all":
        from engine.pipeline import available_detectors

        detectors = sorted(available_detectors()[0], key=lambda d: (d != "deepfake.effvit", d))
    else:
        detectors = args.detectors.split(",")
    if result is None:
        win.analyse_current(detectors, "cpu")
        wait(lambda: win.current.result is not None and not win.queue.busy and win.refreshed)
    else:
        win.current.result = result
        win._refresh_result()
        wait(lambda: win.refreshed)
    det = win.panel.overlay_det.currentText()
    if det:
        win.panel.selected = det
    from PySide6.QtTest import QTest

    QTest.keyClick(win, Qt.Key.Key_N)
    target = win.current.result.most_suspicious(win.panel.selected)[0][0] if win.panel.selected else None
    wait(lambda: win.playback.current is not None and win.video.has_overlay
         and (target is None or win.playback.current.index == target), 60)
    win.grab().save(str(args.out / "after_analysis.png"))
    print(f"wrote {args.out / 'before_analysis.png'} and {args.out / 'after_analysis.png'}")
    if win.current.result.camera_summary() is not None:
        win.camera_dock.raise_()
        win.camera_panel.gradcam_on.setChecked(True)
        wait(lambda: True)
        win.grab().save(str(args.out / "camera_model.png"))
        print(f"wrote {args.out / 'camera_model.png'}")
    ids = win.current.result.detector_ids
    if "deepfake.av" in ids:  # the A/V offset curve, the triplet reference faces and the combined verdict
        win.detector_dock.raise_()
        win.panel.table.selectRow(ids.index("deepfake.av"))
        win.panel.overlay_det.setCurrentText("deepfake.av")
        wait(lambda: True)
        win.grab().save(str(args.out / "deepfake_av.png"))
        print(f"wrote {args.out / 'deepfake_av.png'}")
    win.close()


if __name__ == "__main__":
    main()
