"""``forensic-train``: build training caches from evidence-style videos with the engine's own preprocessing.

Sub-commands:

``cache VIDEO|DIR ... --out DIR``
    For each video: sample frames, detect and track faces, crop the main face
    with every seed crop policy, compute the 3-resolution log-mel and the
    azimuthal spectra, and write ``<out>/<stem>.<sha256[:12]>.npz`` plus an
    ``index.json`` (source path, SHA-256, shapes). These are exactly the tensors
    ``engine.pipeline.MediaClip`` gives detectors at analysis time; videos
    already cached are skipped (see :mod:`trainer.cache`).

``fit --config CONFIG.yaml --out RUN_DIR``
    Train one detector (see :mod:`trainer.fit` for the config and the run folder).

``evaluate --model DIR --dataset NAME:ROOT[:SPLIT] --out DIR``
    Metrics (accuracy, F1, AUC, EER, confusion, per-method), ROC PNG, per-video results.

``cross-test --models DIR... --datasets NAME:ROOT[:SPLIT]... --out DIR``
    Every model × every test set matrix (seed 4 §4.2), as Markdown/CSV/JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from engine.cli import expand_inputs
from engine.io import atomic_write_json
from engine.media import EvidenceError

from .cache import cache_video


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forensic-train`` console script."""
    parser = argparse.ArgumentParser(prog="forensic-train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="train one detector from a YAML config into a run folder")
    f.add_argument("--config", required=True, type=Path)
    f.add_argument("--out", required=True, type=Path)
    f.add_argument("--device", default="auto")
    f.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last finished epoch (OUT/resume/, safetensors + JSON)")
    e = sub.add_parser("evaluate", help="score one model on a labelled dataset split (metrics, ROC, per-video results)")
    e.add_argument("--model", required=True, type=Path, help="model folder (card.json + model.safetensors)")
    e.add_argument("--dataset", required=True, help="NAME:ROOT[:SPLIT], NAME one of trainer.datasets.ADAPTERS")
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--frames", type=int, default=32)
    e.add_argument("--device", default="cpu")
    x = sub.add_parser("cross-test", help="every model x every test set matrix (seed 4 §4.2)")
    x.add_argument("--models", required=True, nargs="+", type=Path)
    x.add_argument("--datasets", required=True, nargs="+", help="NAME:ROOT[:SPLIT] ...")
    x.add_argument("--metric", default="accuracy", choices=["accuracy", "roc_auc", "f1", "eer"])
    x.add_argument("--out", required=True, type=Path)
    x.add_argument("--frames", type=int, default=32)
    x.add_argument("--device", default="cpu")
    c = sub.add_parser("cache", aliases=["prepare"], help="write the engine's preprocessing of videos to npz")
    c.add_argument("inputs", nargs="+")
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--frames", type=int, default=32)
    c.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.command == "fit":
        from .fit import run_fit

        run_fit(args.config, args.out, args.device, argv, resume=args.resume)
        return 0
    if args.command == "evaluate":
        from .evaluate import DatasetSpec, run_evaluate

        result = run_evaluate(args.model, DatasetSpec.parse(args.dataset), args.out, args.frames, args.device)
        print(json.dumps(result["metrics"], indent=2))
        return 0
    if args.command == "cross-test":
        from .evaluate import DatasetSpec, run_cross_test

        run_cross_test(args.models, [DatasetSpec.parse(d) for d in args.datasets], args.out, args.metric,
                       args.frames, args.device)
        return 0
    if args.command in ("cache", "prepare"):
        entries, failed = [], []
        for path in tqdm(expand_inputs(args.inputs), unit="video"):
            try:
                cached = cache_video(path, args.out, args.frames, args.device)
                arrays = cached.load()
                entries.append({"source": str(path), "sha256": cached.sha256, "cache": cached.cache.name,
                                "arrays": {k: list(v.shape) for k, v in arrays.items()}})
            except EvidenceError as exc:
                failed.append({"path": str(path), "message": str(exc)})
                tqdm.write(f"skipped {exc}", file=sys.stderr)
        atomic_write_json(args.out / "index.json", {"videos": entries, "failed": failed})
        print(f"wrote {len(entries)} caches to {args.out} ({len(failed)} failed)")
        return 0 if not failed else 2
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
