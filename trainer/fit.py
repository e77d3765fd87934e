"""``forensic-train fit --config CONFIG.yaml --out RUN_DIR``: one detector's training run.

A run folder holds everything needed to audit the bundled weights::

    RUN_DIR/config.yaml          the config as run (plus the command line)
    RUN_DIR/model.safetensors    exported inner model weights (what the GUI loads)
    RUN_DIR/card.json            model card (sha256, data, metrics, limitations, command)
    RUN_DIR/summary.json         counts, epochs, wall time, hardware, held-out metrics
    RUN_DIR/logs/metrics.csv     per-epoch metrics (Lightning CSVLogger) for neural models
    RUN_DIR/roc.png, RUN_DIR/val_results.{csv,json}   held-out evaluation (trainer.metrics)

Config (YAML)::

    detector: deepfake.effvit          # or deepfake.freq
    seed: 0
    data:
      cache_dir: cache/real_faces      # preprocessing cache (resumable, sha256-keyed)
      frames_per_video: 20             # equidistant frames per video (seed 2 §2.3 intent)
      train_videos: [glob, ...]        # real videos; one video = one person
      val_videos: [glob, ...]          # held-out people (never also in train)
      # or, for deepfake.effvit / cnn / triplet, the dataset's own labelled fakes (trainer.labelled):
      # source: folders, root: DIR, dataset: video_folder|image_folder|ffpp|celebdf, val_fraction: 0.1
    train: {...}                       # EffViTTrainConfig fields (effvit) / variant etc. (freq)
    card: {training_data: ..., limitations: [...], quirks: [...]}

Globs are resolved relative to the current directory.
"""

from __future__ import annotations

import glob
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from engine.io import atomic_write_bytes, atomic_write_json

from .cache import cache_video


#: Detector id -> ``"module:function"`` of its trainer. Each function is called with keyword arguments
#: ``train_caches, val_caches`` (``list[Path]`` of :mod:`trainer.cache` npz files, disjoint videos),
#: ``train`` (the YAML ``train:`` dict), ``seed``, ``out_dir``, ``card_info`` (YAML ``card:`` plus the
#: video lists), ``command`` (exact command line), ``resume`` and ``config`` (the whole YAML), writes
#: ``model.safetensors`` + ``card.json`` (+ any extra files) into ``out_dir`` and returns the summary dict.
FITTERS: dict[str, str] = {
    "deepfake.cnn": "trainer.cnn_fit:fit_cnn",
    "deepfake.cnn_lstm": "trainer.cnn_lstm_fit:fit_cnn_lstm",
    "deepfake.c3d": "trainer.c3d_fit:fit_c3d",
    "deepfake.triplet": "trainer.triplet_fit:fit_triplet",
    "deepfake.av": "trainer.av_fit:fit_av",
    "syncnet": "trainer.syncnet_fit:fit_syncnet",
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Parse a run config (YAML) and check its required keys.

    Raises:
        ValueError: a required key is missing or a video glob matches nothing.
    """
    cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for key in ("detector", "data"):
        if key not in cfg:
            raise ValueError(f"{path}: missing '{key}'")
    return cfg


def resolve_videos(patterns: list[str]) -> list[Path]:
    """Expand globs (sorted, de-duplicated).

    Raises:
        ValueError: a pattern matches no file.
    """
    out: list[Path] = []
    for pattern in patterns:
        hits = sorted(glob.glob(pattern, recursive=True))
        if not hits:
            raise ValueError(f"video pattern {pattern!r} matches no file")
        out += [Path(h) for h in hits]
    return list(dict.fromkeys(out))


def prepare(videos: list[Path], cache_dir: Path, frames: int, device: str = "auto") -> list[Path]:
    """Cache every video with the engine's preprocessing (skips ones already cached)."""
    from tqdm import tqdm

    return [cache_video(v, cache_dir, frames, device).cache for v in tqdm(videos, unit="video", desc="prepare")]


def _hardware() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import os

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def run_fit(config_path: str | Path, out_dir: str | Path, device: str = "auto", argv: list[str] | None = None,
            resume: bool = False) -> dict:
    """Run one training from its config; returns the summary also written to ``summary.json``.

    ``resume`` continues an interrupted run from ``out_dir/resume/`` (``trainer.resume``;
    detectors trained by gradient descent only).

    Raises:
        ValueError: bad config; KeyError: unknown detector.
    """
    cfg = load_config(config_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["forensic-train", *(argv if argv is not None else sys.argv[1:])])
    atomic_write_bytes(out_dir / "config.yaml", yaml.safe_dump({**cfg, "command": command}, sort_keys=False).encode())
    data = cfg["data"]
    train_videos = resolve_videos(data.get("train_videos", []))  # empty for a labelled folder source
    val_videos = resolve_videos(data.get("val_videos", []))
    overlap = {v.resolve() for v in train_videos} & {v.resolve() for v in val_videos}
    if overlap:
        raise ValueError(f"videos in both train and val: {sorted(map(str, overlap))}")
    cache_dir = Path(data.get("cache_dir", out_dir / "cache"))
    frames = int(data.get("frames_per_video", 20))
    train_caches = prepare(train_videos, cache_dir, frames, device)
    val_caches = prepare(val_videos, cache_dir, frames, device)
    card_info = dict(cfg.get("card", {}))
    card_info.setdefault("training_data", "")
    if train_videos or val_videos:  # a labelled source (data.source: folders) lists its own data in the card
        card_info["training_data"] += (
            f" Train videos ({len(train_videos)}): {', '.join(v.name for v in train_videos)}."
            f" Held-out videos ({len(val_videos)}): {', '.join(v.name for v in val_videos)}."
        )
    detector = cfg["detector"]
    train = dict(cfg.get("train", {}))
    seed = int(cfg.get("seed", 0))
    if detector == "deepfake.effvit":
        from .effvit_fit import EffViTTrainConfig, fit_effvit

        tcfg = EffViTTrainConfig(seed=seed, **train)
        summary = fit_effvit(train_caches, val_caches, tcfg, out_dir, card_info, command, resume=resume, data=data)
    elif detector == "deepfake.freq":
        if resume:
            raise ValueError("deepfake.freq trains in one pass (SVM / MLP on cached spectra); nothing to resume")
        from .freq_data import fit_freq_from_caches

        summary = fit_freq_from_caches(train_caches, val_caches, train, seed, out_dir, card_info, command)
    elif detector in FITTERS:
        import importlib

        module, func = FITTERS[detector].split(":")
        fit_fn = getattr(importlib.import_module(module), func)
        summary = fit_fn(train_caches=train_caches, val_caches=val_caches, train=train, seed=seed, out_dir=out_dir,
                         card_info=card_info, command=command, resume=resume, config=cfg)
    else:
        raise KeyError(f"no trainer for detector {detector!r}; known: deepfake.effvit, deepfake.freq, "
                       f"{', '.join(sorted(FITTERS))}")
    summary["command"] = command
    summary.setdefault("hardware", _hardware())
    atomic_write_json(out_dir / "summary.json", summary)
    from engine.weights import update_card

    update_card(out_dir, training=json.loads(json.dumps(summary, default=str)))
    print(json.dumps(summary, indent=2, default=str))
    return summary
