"""Build the sample PDF report and render its pages as PNG for the docs.

Analyses ``resources/samples/WDA_AlexandriaOcasioCortez_000.mp4`` with every
bundled detector (deepfake and camera model) on the CPU (``--frames`` uniformly sampled frames, default
32), keeps the result in ``out/report-sample/result.json`` (+ ``.npz``), builds
``out/report-sample/report.pdf`` with a small demonstration case (one bookmark
on the most suspicious frame, one note), then renders every page with
``pdftoppm -r 80 -png`` into ``docs/report-sample/page-N.png``.

Usage: ``python scripts/report_sample.py [--frames 32] [--reuse]``
(``--reuse`` skips the analysis when a result with the same frame count is
already in ``out/report-sample``; the analysis takes a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SAMPLE = REPO / "resources" / "samples" / "WDA_AlexandriaOcasioCortez_000.mp4"


def _detectors() -> list[str]:
    """Every detector whose weights are installed: deepfake detectors first, then camera-model ones."""
    from engine.pipeline import available_detectors

    ok, _missing = available_detectors()
    return sorted(ok, key=lambda d: (not d.startswith("deepfake."), d))


def _analyse(out_json: Path, frames: int, reuse: bool):
    from engine.media import Uniform
    from engine.pipeline import ClipConfig, analyze
    from engine.results import ResultView

    if reuse and out_json.is_file():
        doc = json.loads(out_json.read_text(encoding="utf-8"))
        if len(doc.get("sampling", {}).get("frames", [])) == frames and \
                [d["detector_id"] for d in doc.get("detectors", [])] == _detectors():
            print(f"reusing {out_json}")
            return ResultView.load(out_json)
    t0 = time.perf_counter()
    last = [""]

    def progress(stage: str, fraction: float) -> None:
        if stage != last[0]:
            print(f"  {fraction:5.0%} {stage}", flush=True)
            last[0] = stage

    result = analyze(SAMPLE, _detectors(), device="cpu", progress=progress,
                     config=ClipConfig(sampling=Uniform(frames)))
    result.save(out_json)
    print(f"analysed {SAMPLE.name} in {time.perf_counter() - t0:.0f} s -> {out_json}")
    return ResultView.load(out_json)


def _demo_case(view):
    """A case with one bookmark on the most suspicious effvit frame and one note (None if unavailable)."""
    try:
        from engine.case import Case
        from engine.media import probe
    except ImportError:
        return None
    case = Case.new("Sample evidence review", "Demo analyst", case_id="DEMO-0001")
    item = case.add_evidence(probe(SAMPLE))
    top = view.most_suspicious("deepfake.effvit", 1) or view.most_suspicious("deepfake.freq", 1)
    if top:
        frame_index, pts, score = top[0]
        case.add_bookmark(item.sha256, pts, frame_index, "to_check",
                          f"most suspicious frame of the detectors (score {score:.3f}); check the mouth region")
    case.add_note("Demonstration case made by scripts/report_sample.py; no casework conclusion is drawn.",
                  item.sha256)
    return case


def _render(pdf: Path, out_dir: Path) -> list[Path]:
    """``pdftoppm -r 80 -png`` every page into ``out_dir/page-N.png`` (old pages removed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("page-*.png"):
        old.unlink()
    pages = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(Path(tmp) / "p")], check=True)
        for png in sorted(Path(tmp).glob("p-*.png"), key=lambda p: int(p.stem.split("-")[-1])):
            target = out_dir / f"page-{int(png.stem.split('-')[-1])}.png"
            shutil.move(str(png), target)
            pages.append(target)
    return pages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=32, help="frames sampled uniformly (default 32)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "report-sample", help="result + PDF folder")
    ap.add_argument("--pages", type=Path, default=REPO / "docs" / "report-sample", help="page PNG folder")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing result with the same frame count")
    args = ap.parse_args()

    from engine.report import build_report

    args.out.mkdir(parents=True, exist_ok=True)
    view = _analyse(args.out / "result.json", args.frames, args.reuse)
    t0 = time.perf_counter()
    pdf = build_report(args.out / "report.pdf", [view], case=_demo_case(view))
    print(f"wrote {pdf} in {time.perf_counter() - t0:.1f} s")
    if shutil.which("pdftoppm") is None:
        print("pdftoppm not found (apt-get install poppler-utils): pages not rendered", file=sys.stderr)
        return
    for page in _render(pdf, args.pages):
        print(f"  {page.relative_to(REPO) if page.is_relative_to(REPO) else page}")


if __name__ == "__main__":
    main()
