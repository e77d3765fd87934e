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

Camera-model identification (seed 1, :mod:`trainer.camera_fit`)::

    forensic-train simulate-devices --sources GLOB... --out SIMROOT     # demo data (trainer.simdevice)
    forensic-train prepare vision ROOT --content Native --out CACHE     # log-mel + centre crops per video
    forensic-train fit camera.audio --root ROOT --content Native --fold 0 --out RUN [--config YAML]
    forensic-train evaluate --model RUN --dataset vision:ROOT --content Native --fold 0 --out DIR
    forensic-train tables vision --runs RUNS --out DIR                  # Tables II-III + significance

Seed result tables end to end (:mod:`trainer.reproduce`, docs/REPRODUCE.md)::

    forensic-train reproduce --list
    forensic-train reproduce TABLE --data-root DIR --out DIR [--device cuda] [--devices N] [--num-nodes N]
                             [--strategy ddp] [--precision 16-mixed] [--tiny] [--override KEY=VALUE ...]
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tables"]:
        from .vision_tables import main_tables

        return main_tables(argv[1:])
    if argv[:1] == ["simulate-devices"]:
        from .simdevice import main_simulate

        return main_simulate(argv[1:])
    if argv[:1] == ["reproduce"]:
        from .reproduce import main_reproduce

        return main_reproduce(argv[1:])
    parser = argparse.ArgumentParser(prog="forensic-train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tables", help="tables vision --runs DIR --out DIR: seed 1 Tables II-III + significance")
    sub.add_parser("simulate-devices", help="render real footage through simulated acquisition chains")
    sub.add_parser("reproduce", help="TABLE --data-root DIR --out DIR: prepare -> fit -> evaluate -> table for a "
                                     "seed result table (--list shows them)")
    f = sub.add_parser("fit", help="train one detector (YAML config, or camera.audio|camera.image with flags)")
    f.add_argument("detector", nargs="?", help="camera.audio or camera.image (deepfake detectors: --config)")
    f.add_argument("--config", type=Path)
    f.add_argument("--out", required=True, type=Path)
    f.add_argument("--device", default="auto")
    f.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last finished epoch (OUT/resume/, safetensors + JSON)")
    f.add_argument("--root", type=Path, help="camera: VISION(-like) tree")
    f.add_argument("--content", choices=["Native", "WA", "YT"], help="camera: visual content")
    f.add_argument("--fold", type=int, help="camera: fold 0-4")
    f.add_argument("--cache", type=Path, help="camera: prepared npz folder")
    f.add_argument("--frames", type=int, help="camera: frames cached per video (default 8)")
    f.add_argument("--epochs", type=int, help="camera: max epochs (seed: 100)")
    f.add_argument("--max-time", help="camera: wall-clock cap DD:HH:MM:SS")
    f.add_argument("--batch-size", type=int, help="camera: default 8 audio / 32 image (seed)")
    f.add_argument("--devices", help="Lightning devices (e.g. 2, or auto)")
    f.add_argument("--strategy", help="Lightning strategy (e.g. ddp)")
    f.add_argument("--limit-train-batches", type=float,
                   help="camera: share (<= 1) or number of training batches per epoch (a random subset each epoch)")
    e = sub.add_parser("evaluate", help="score one model on a labelled dataset split (metrics, ROC, per-video results)")
    e.add_argument("--model", required=True, type=Path, help="model folder (card.json + model.safetensors)")
    e.add_argument("--dataset", required=True, help="NAME:ROOT[:SPLIT], NAME one of trainer.datasets.ADAPTERS")
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--frames", type=int, help="frames sampled per video (default 32; camera models 8)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--content", choices=["Native", "WA", "YT"], help="vision datasets: visual content")
    e.add_argument("--fold", type=int, default=0, help="vision datasets: test fold")
    e.add_argument("--cache", type=Path, help="vision datasets: prepared npz folder")
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
    c.add_argument("--frames", type=int, help="frames sampled per video (default 32; prepare vision 8)")
    c.add_argument("--device", default="auto")
    c.add_argument("--content", choices=["Native", "WA", "YT"], help="prepare vision: one content (default all)")
    args = parser.parse_args(argv)
    if args.command == "fit" and args.detector:
        from .camera_fit import fit_from_cli

        fit_from_cli(args, argv)
        return 0
    if args.command == "fit":
        if args.config is None:
            parser.error("fit needs --config (deepfake detectors) or a camera detector name")
        from .fit import run_fit

        run_fit(args.config, args.out, args.device, argv, resume=args.resume)
        return 0
    if args.command == "evaluate" and args.dataset.startswith("vision:"):
        from .camera_fit import evaluate_camera

        if args.content is None:
            parser.error("evaluate on vision needs --content")
        m = evaluate_camera(args.model, args.dataset.split(":", 1)[1], args.content, args.fold, args.out,
                            frames=args.frames or 8, cache_dir=args.cache, device=args.device)
        print(json.dumps(m, indent=2))
        return 0
    if args.command == "evaluate":
        from .evaluate import DatasetSpec, run_evaluate

        result = run_evaluate(args.model, DatasetSpec.parse(args.dataset), args.out, args.frames or 32, args.device)
        print(json.dumps(result["metrics"], indent=2))
        return 0
    if args.command == "cross-test":
        from .evaluate import DatasetSpec, run_cross_test

        run_cross_test(args.models, [DatasetSpec.parse(d) for d in args.datasets], args.out, args.metric,
                       args.frames, args.device)
        return 0
    if args.command in ("cache", "prepare") and args.inputs[0] == "vision":
        from .camera_fit import prepare_vision

        if len(args.inputs) != 2:
            parser.error("usage: prepare vision ROOT --out CACHE [--content C] [--frames N]")
        caches, failed = prepare_vision(args.inputs[1], args.content, args.out,
                                        frames=args.frames or 8)
        atomic_write_json(args.out / "index.json", {"videos": [{"stem": c.stem, "label": c.label, "class": c.class_name,
                                                                "cache": c.cache.name} for c in caches],
                                                    "failed": failed})
        print(f"wrote {len(caches)} caches to {args.out} ({len(failed)} failed)")
        return 0 if not failed else 2
    if args.command in ("cache", "prepare"):
        entries, failed = [], []
        for path in tqdm(expand_inputs(args.inputs), unit="video"):
            try:
                cached = cache_video(path, args.out, args.frames or 32, args.device)
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
