"""``forensic-analyze``: the analysis pipeline without a screen.

Examples::

    forensic-analyze resources/samples/*.mp4 --json out/analysis.json
    forensic-analyze evidence/ --json out/batch.json --frames 64 --device cuda
    forensic-analyze evidence/ --json out/batch.json --case out/case.json --report out/report.pdf

Writes one JSON document (schema in ``engine.pipeline``) holding every
analysis and every file that could not be analysed with the reason, plus an
``.npz`` sidecar per analysis for arrays (features, heatmaps). A file that
cannot be analysed (unusable evidence, or an unexpected engine error on that
file) is listed under ``failed`` with its path and the reason, and the batch
goes on with the next file. Exit status: 0 when every file was analysed, 2 when
some failed (or bad arguments), 130 when cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .io import atomic_write_json, load_npz
from .media import EvidenceError, Uniform
from .media.probe import utc_now_iso
from .pipeline import AnalysisCancelled, ClipConfig, analyze, available_detectors

MEDIA_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg",
                  ".3gp", ".3g2", ".flv", ".wmv", ".asf"}


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given, plus media files (by extension) found recursively in given folders."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in MEDIA_SUFFIXES)
        else:
            out.append(p)
    return out


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``forensic-analyze``."""
    p = argparse.ArgumentParser(prog="forensic-analyze", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="evidence files or folders (searched recursively)")
    p.add_argument("--json", required=True, type=Path, help="output JSON (an .npz sidecar per file is written beside it)")
    p.add_argument("--case", type=Path, help="case file to record evidence, runs and failures in (created if missing)")
    p.add_argument("--case-name", default=None, help="name of a new case (default: the case file's stem)")
    p.add_argument("--analyst", default=None, help="analyst of a new case (default: $USER)")
    p.add_argument("--report", type=Path, help="write a PDF report of every analysis (and the failed files)")
    p.add_argument("--detectors", default="all",
                   help="comma-separated detector ids, 'all' (default: every detector whose weights are installed) or 'none'")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 …")
    p.add_argument("--frames", type=int, default=32, help="frames sampled uniformly over the duration (default 32)")
    p.add_argument("--face-backend", default="auto", choices=["auto", "mtcnn", "retinaface"])
    p.add_argument("--fusion", default="mean", choices=["mean", "max", "weighted"],
                   help="rule of the combined deepfake verdict (late fusion; default mean)")
    p.add_argument("--fusion-weights", default="",
                   help="weighted rule: detector weights, e.g. deepfake.effvit=2,deepfake.freq=0.5 (others 1)")
    p.add_argument("--fusion-threshold", type=float, default=0.5, help="combined P(fake) above which it says fake")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--version", action="version", version=f"forensic-workbench {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forensic-analyze`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    unavailable: dict[str, str] = {}
    if args.detectors == "all":
        detectors, unavailable = available_detectors()
        for det_id, reason in unavailable.items():
            print(f"forensic-analyze: {det_id} not run: {reason}", file=sys.stderr)
    elif args.detectors == "none":
        detectors = []
    else:
        detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    files = expand_inputs(args.inputs)
    if not files:
        print("forensic-analyze: no media files found in the given inputs", file=sys.stderr)
        return 2
    evidence_dirs = {f.absolute().parent for f in files}
    for out in (args.json, args.case, args.report):
        if out is not None and out.absolute().parent in evidence_dirs:
            print(f"forensic-analyze: refusing to write {out} next to evidence; choose another folder",
                  file=sys.stderr)
            return 2
    case = None
    if args.case is not None:
        case = _open_case(args, argv if argv is not None else sys.argv[1:])
        if case is None:
            return 2
    from .fusion import FusionRule, parse_weights

    try:
        fusion = FusionRule(args.fusion, args.fusion_threshold, parse_weights(args.fusion_weights))
    except ValueError as exc:
        print(f"forensic-analyze: {exc}", file=sys.stderr)
        return 2
    config = ClipConfig(sampling=Uniform(args.frames), face_backend=args.face_backend)
    out_json: Path = args.json
    out_json.parent.mkdir(parents=True, exist_ok=True)
    analyses, failed = [], []
    started = utc_now_iso()
    bar = tqdm(total=len(files), unit="file", disable=args.quiet, dynamic_ncols=True)
    try:
        for n, path in enumerate(files):
            bar.set_description(path.name[:40])
            done = n

            def progress(stage: str, fraction: float, done=done) -> None:
                bar.n = round(done + fraction, 3)
                bar.set_postfix_str(stage, refresh=True)

            try:
                result = analyze(path, detectors, device=args.device, progress=progress, config=config,
                                 fusion=fusion)
            except EvidenceError as exc:
                failed.append({"path": str(path), "error": exc.kind, "message": str(exc)})
                tqdm.write(f"skipped {exc}", file=sys.stderr)
                if case is not None:
                    case.add_failed_run(path, None, detectors, str(exc))
                continue
            except (KeyboardInterrupt, AnalysisCancelled):
                raise
            except Exception as exc:  # an engine bug on one file must not end the batch or lose the others
                logging.getLogger(__name__).exception("analysis of %s failed", path)
                message = f"{path}: analysis error ({type(exc).__name__}: {exc})"
                failed.append({"path": str(path), "error": "analysis error", "message": message})
                tqdm.write(f"skipped {message}", file=sys.stderr)
                if case is not None:
                    case.add_failed_run(path, None, detectors, message)
                continue
            sidecar = result.save_arrays(out_json.with_name(f"{out_json.stem}.{n:03d}.{path.stem}.npz"))
            analyses.append(result.to_dict(sidecar))
            if case is not None:
                case.add_evidence(analyses[-1]["evidence"])  # analyze already probed and hashed it
                case.add_run(analyses[-1], out_json.absolute())
            bar.n = n + 1
            bar.refresh()
    except (KeyboardInterrupt, AnalysisCancelled):
        bar.close()
        print("forensic-analyze: cancelled; nothing more written", file=sys.stderr)
        return 130
    bar.close()
    atomic_write_json(
        out_json,
        {
            "schema_version": 1,
            "tool": {"name": "forensic-analyze", "engine_version": __version__},
            "command": ["forensic-analyze", *(argv if argv is not None else sys.argv[1:])],
            "started": started,
            "finished": utc_now_iso(),
            "detectors_requested": detectors,
            "detectors_unavailable": unavailable,
            "analyses": analyses,
            "failed": failed,
        },
    )
    print(f"wrote {out_json} ({len(analyses)} analysed, {len(failed)} failed)")
    if case is not None:
        case.save()
        print(f"case {case.case_id} saved to {case.path}")
    if args.report is not None:
        from .report import build_report
        from .results import ResultView

        views = [ResultView(doc, load_npz(out_json.parent / doc["arrays_file"]) if doc.get("arrays_file") else {},
                            out_json) for doc in analyses]
        command = " ".join(["forensic-analyze", *(argv if argv is not None else sys.argv[1:])])
        build_report(args.report, views, case=case, failures=[(f["path"], f["message"]) for f in failed],
                     command=command)
        if case is not None:
            case.log("report_written", path=str(args.report.absolute()), evidence=[v.sha256 for v in views])
            case.save()
        print(f"wrote report {args.report}")
    for f in failed:
        print(f"  failed: {f['message']}", file=sys.stderr)
    return 0 if not failed else 2


def _open_case(args: argparse.Namespace, argv: list[str]):
    """Load ``args.case`` (re-hashing its evidence) or create it; None after printing why it failed."""
    import getpass

    from .case import Case, CaseError

    try:
        if args.case.exists():
            case = Case.load(args.case)
            for c in case.integrity_problems:
                print(f"forensic-analyze: EVIDENCE INTEGRITY: {c.path}: {c.status}: {c.message}", file=sys.stderr)
        else:
            case = Case.new(args.case_name or args.case.stem, args.analyst or getpass.getuser())
            case.path = args.case
    except CaseError as exc:
        print(f"forensic-analyze: {exc}", file=sys.stderr)
        return None
    case.log("batch_started", command=["forensic-analyze", *argv], inputs=[str(i) for i in args.inputs])
    return case


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
