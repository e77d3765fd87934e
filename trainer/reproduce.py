"""``forensic-train reproduce <table>``: prepare → fit → evaluate → table for each seed result table.

One registry entry (:data:`TABLES`) per published table of spec/seeds.md:

==================  ===========================  =========================================================
table               seed, spec section           what runs
==================  ===========================  =========================================================
``vision-table2``   seed 1 §1.9 (Tables II-V)    camera.audio + camera.image, Native, 5 folds, late fusion
``vision-table3``   seed 1 §1.9                  same, WhatsApp (WA) content
``vision-table4``   seed 1 §1.9                  same, YouTube (YT) content
``vision-table5``   seed 1 §1.9                  all three contents: accuracies + F-test/McNemar counts
``ffpp-methods``    seed 2 §2.6                  deepfake.effvit on FF++ c23, per-method table
``celebdf``         seed 3 §3.7                  deepfake.triplet + deepfake.cnn on Celeb-DF v2 test list
``freq-cross-test`` seed 4 §4.3                  deepfake.freq SVM and NN, every train set × test set
``tmc-auc``         seed 5 §5.8                  deepfake.av on the TMC test split (ROC AUC)
==================  ===========================  =========================================================

Nothing here trains, scores or tabulates on its own: every step calls the code
the other sub-commands call (one training loop per detector, one evaluator):

* **prepare**: the engine's preprocessing cache, :func:`trainer.fit.prepare`
  (faces), :func:`trainer.camera_fit.prepare_vision` (camera inputs), or, for
  the image-folder datasets of seed 4, :func:`engine.features.azimuthal_spectrum`
  of every image (what ``deepfake.freq`` computes at analysis time), stored as npz.
* **fit**: :func:`trainer.fit.run_fit` (``forensic-train fit --config``; the run
  config is written next to the run from the table's YAML in ``configs/reproduce/``
  with the dataset's train/val videos filled in), :func:`trainer.camera_fit.fit_camera`
  (``forensic-train fit camera.*``) or :func:`trainer.freq_fit.fit_freq`.
* **evaluate**: :func:`trainer.evaluate.run_evaluate`, :func:`trainer.evaluate.run_cross_test`,
  :func:`trainer.camera_fit.evaluate_camera`.
* **table**: :func:`trainer.vision_tables.write_tables` for seed 1, and for every
  table ``comparison.{csv,md,json}`` with our number and the seed's published
  number side by side (column ``paper``; empty where the seed published none).

Every step writes under ``--out`` and is skipped when its output exists, so an
interrupted reproduction continues where it stopped (``deepfake.effvit`` runs
also resume mid-run from ``<run>/resume/``); ``--until STEP`` stops after a step
(all prepare steps run before the first fit). The table files are rewritten
each time (seconds). Output tree::

    OUT/cache/...                 preprocessing caches (shared by tables)
    OUT/prepare/<key>.json|npz    prepare markers / spectra
    OUT/runs/<run>/               one run folder per detector x dataset (x content x fold)
    OUT/eval/<table>/...          evaluation outputs
    OUT/tables/<table>/           comparison.{csv,md,json} (+ tables.md/.tex etc. for seed 1)

Deepfake detectors of ``ffpp-methods`` and ``celebdf`` train as the seeds did, on the
dataset's own **labelled** real and fake training videos (``data.source: folders``,
:mod:`trainer.labelled`: ``deepfake.effvit`` on FF++ real + manipulated videos of the
train split, held-out = its val split, seed 2 §2.3; ``deepfake.triplet`` and
``deepfake.cnn`` on Celeb-DF real + Celeb-synthesis videos outside the official test
list, 10 % of the people held out, seed 3 §3.1/§3.5). ``deepfake.av`` on TMC still
trains on the real videos of the train split and fakes the fitter makes from them
(self-blended faces, shifted / swapped audio): the seed trained on the TMC fakes, so
that comparison is with a different training signal (said in ``comparison.md``).
``deepfake.freq`` on seed 4's image folders trains on the folders' real and fake
images, as the seed did.

Scale (spec: DDP, multi-node, mixed precision): ``devices``, ``num_nodes``,
``strategy`` and ``precision`` go into the ``train:`` section of the configs
whose fitter accepts them: ``devices``, ``num_nodes`` and ``strategy`` only for
the fitters that run DDP (``deepfake.effvit``, ``camera.*``); the others train
in one process and say so; ``precision`` for every Lightning fitter. With ``strategy=ddp``
Lightning re-runs this command in every extra process; those processes run the
DDP-capable fits only (same order) and leave prepare, evaluate and tables to rank 0.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import importlib
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import yaml

from engine.io import atomic_save_npz, atomic_write_bytes, atomic_write_json, load_npz

__all__ = ["CONFIG_DIR", "TABLES", "TableSpec", "ReproduceOptions", "load_table_configs", "parse_override",
           "apply_overrides", "list_tables", "reproduce", "write_comparison", "main_reproduce"]

#: Folder of the per detector × dataset YAML configs.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "reproduce"

#: Detector id -> ``"module:TrainConfig"`` whose dataclass fields say which ``train:`` keys the fitter accepts.
TRAIN_CONFIG_CLASSES = {
    "deepfake.effvit": "trainer.effvit_fit:EffViTTrainConfig",
    "deepfake.cnn": "trainer.cnn_fit:CNNTrainConfig",
    "deepfake.cnn_lstm": "trainer.cnn_lstm_fit:CNNLSTMTrainConfig",
    "deepfake.c3d": "trainer.c3d_fit:C3DTrainConfig",
    "deepfake.triplet": "trainer.triplet_fit:TripletTrainConfig",
    "deepfake.av": "trainer.av_fit:AVTrainConfig",
    "camera.audio": "trainer.camera_fit:CameraTrainConfig",
    "camera.image": "trainer.camera_fit:CameraTrainConfig",
}
#: Fitters that run under Lightning DDP (several processes); the others train in one process.
DDP_DETECTORS = ("deepfake.effvit", "camera.audio", "camera.image")
SCALE_KEYS = ("accelerator", "devices", "num_nodes", "strategy", "precision")


@dataclass(frozen=True)
class TableSpec:
    """One reproducible seed table.

    Attributes:
        name: CLI name (``ffpp-methods``). title: one line. source: seed and spec section.
        kind: ``"deepfake"`` (video datasets, :func:`trainer.evaluate.run_evaluate`),
            ``"freq_cross"`` (seed 4 image folders, cross-test matrix) or ``"vision"`` (seed 1).
        dataset: adapter name of :data:`trainer.datasets.ADAPTERS` (``vision`` for seed 1).
        data_dir: folder under ``--data-root`` (spec §7 layout); ``table.data_dir`` overrides.
        configs: YAML files in :data:`CONFIG_DIR`, one per detector × dataset.
        settings: table-level settings (``contents``, ``folds``, ``datasets``, ``split``,
            ``metric``, ``frames``); ``--override table.<key>=...`` changes them.
        tiny: table-level settings applied by ``--tiny``.
        paper: the seed's published numbers (see :func:`_paper_rows`).
        layout: the expected data layout, for ``--list`` and the docs.
    """

    name: str
    title: str
    source: str
    kind: str
    dataset: str
    data_dir: str
    configs: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, Any] = field(default_factory=dict)
    layout: str = ""


# ============================================================================ published numbers (spec/seeds.md)
_FFPP_PAPER = {  # seed 2 §2.6, checkpoint 89, FF++ c23 validation_set, threshold 0.55
    "All": {"n": 601, "accuracy": 0.9401, "f1": 0.9632, "roc_auc": 0.9829, "tn": 94, "fp": 6, "fn": 30, "tp": 471},
    "Deepfakes": {"n": 200, "accuracy": 0.93, "f1": 0.9293, "roc_auc": 0.9793, "tn": 94, "fp": 6, "fn": 8, "tp": 92},
    "Face2Face": {"n": 200, "accuracy": 0.96, "f1": 0.9608, "roc_auc": 0.9920, "tn": 94, "fp": 6, "fn": 2, "tp": 98},
    "FaceShifter": {"n": 200, "accuracy": 0.96, "f1": 0.9608, "roc_auc": 0.9874, "tn": 94, "fp": 6, "fn": 2,
                    "tp": 98},
    "FaceSwap": {"n": 200, "accuracy": 0.965, "f1": 0.9659, "roc_auc": 0.9954, "tn": 94, "fp": 6, "fn": 1, "tp": 99},
    "NeuralTextures": {"n": 201, "accuracy": 0.8856, "f1": 0.8796, "roc_auc": 0.9604, "tn": 94, "fp": 6, "fn": 17,
                       "tp": 84},
}
_FREQ_SETS = ("c0", "c23", "HQ", "X-Ray")
_FREQ_SVM = [[0.92, 0.64, 0.45, 0.52], [0.88, 0.84, 0.48, 0.49], [0.49, 0.49, 1.00, 0.49], [0.49, 0.49, 0.44, 0.78]]
_FREQ_NN = [[0.90, 0.72, 0.44, 0.58], [0.86, 0.83, 0.43, 0.54], [0.50, 0.49, 1.00, 0.51], [0.56, 0.56, None, 0.75]]
_FREQ_PAPER = {"svm": {a: dict(zip(_FREQ_SETS, row)) for a, row in zip(_FREQ_SETS, _FREQ_SVM)},
               "mlp": {a: dict(zip(_FREQ_SETS, row)) for a, row in zip(_FREQ_SETS, _FREQ_NN)}}

_VISION_CONFIGS = ("camera_audio.vision.yaml", "camera_image.vision.yaml")
_VISION_LAYOUT = ("VISION/<Dxx_Brand_Model>/videos/<category>/<Dxx>_V_<category>_<motion>_<NNNN>.<ext> "
                  "(or the VISION/dataset/... download layout; or a dataset.json device tree), spec §1.1/§7")
_VISION_TINY = {"folds": [0], "frames": 2}


def _vision(n: int, contents: list[str], what: str) -> TableSpec:
    return TableSpec(
        f"vision-table{n}", f"Camera-model identification, audio / video / product / sum late fusion: {what}",
        "seed 1 (XAIDevIDFusion) §1.8-§1.9, paper Tables II-V", "vision", "vision", "VISION", _VISION_CONFIGS,
        {"contents": contents, "folds": [0, 1, 2, 3, 4], "frames": 8}, _VISION_TINY,
        {"note": "seed 1 published no numbers in its repository and the Asilomar 2024 paper text was not "
                 "retrievable (spec §8); the paper column is empty"}, _VISION_LAYOUT)


TABLES: dict[str, TableSpec] = {t.name: t for t in [
    _vision(2, ["Native"], "Native videos, 5 folds (mean ± std)"),
    _vision(3, ["WA"], "WhatsApp videos, 5 folds"),
    _vision(4, ["YT"], "YouTube videos, 5 folds"),
    _vision(5, ["Native", "WA", "YT"], "all contents, accuracies and significance tests (F-test, McNemar)"),
    TableSpec(
        "ffpp-methods", "Per-method detection on FaceForensics++ c23 (EfficientNet-B0 + ViT)",
        "seed 2 (Explainable Attention Based Deepfake Detector) §2.6", "deepfake", "ffpp", "FF++",
        ("effvit.ffpp.yaml",), {"split": "test", "frames": 32, "per_method": True}, {"frames": 4},
        {"effvit.ffpp": _FFPP_PAPER,
         "note": "seed 2 checkpoint 89 on FF++ c23 videos 000-099 (its validation_set), decision threshold 0.55 "
                 "(ours: the threshold column); per method = that method's fakes + all originals"},
        "FF++/original_sequences/youtube/c23/videos/000.mp4 ... and "
        "FF++/manipulated_sequences/<Deepfakes|Face2Face|FaceSwap|NeuralTextures|FaceShifter>/c23/videos/"
        "<target>_<source>.mp4 (spec §7); split 720/140/140 by sorted id groups (trainer.datasets.faceforensics)"),
    TableSpec(
        "celebdf", "Celeb-DF v2 official test list (triplet network; XceptionNet-style CNN)",
        "seed 3 (Detecting Deepfakes with Metric Learning) §3.7", "deepfake", "celebdf", "Celeb-DF-v2",
        ("triplet.celebdf.yaml", "cnn.celebdf.yaml"), {"split": "test", "frames": 32, "val_fraction": 0.1},
        {"frames": 4},
        {"triplet.celebdf": {"All": {"roc_auc": 0.992}},
         "cnn.celebdf": {"All": {"accuracy": 0.96}},
         "note": "AUC 99.2 % is the paper abstract's triplet-network figure; 96 % the README's XceptionNet "
                 "accuracy (98 % with max voting over 7 bagged models)"},
        "Celeb-DF-v2/{Celeb-real,Celeb-synthesis,YouTube-real}/*.mp4 + List_of_testing_videos.txt (spec §7)"),
    TableSpec(
        "freq-cross-test", "Frequency features, cross-testing accuracy (rows = train set, columns = test set)",
        "seed 4 (Frequency Solver) §4.3", "freq_cross", "image_folder", "freq",
        ("freq_svm.yaml", "freq_nn.yaml"), {"datasets": list(_FREQ_SETS), "metric": "accuracy", "frames": 32},
        {}, {**_FREQ_PAPER, "note": "SVM | NN accuracies of the report (REPORT/latex_new/naacl2021.tex); "
                                    "'?' in the report for NN X-Ray -> HQ"},
        "freq/<c0|c23|HQ|X-Ray>/{train,test}/{real,fake}/*.jpg|png face crops (spec §4.4, §7)"),
    TableSpec(
        "tmc-auc", "Trusted Media Challenge test ROC AUC (TimeSformer + SyncNet latency)",
        "seed 5 (Multimodal Model for Deepfake Detection) §5.8", "deepfake", "tmc", "TMC",
        ("av.tmc.yaml",), {"split": "test", "frames": 32}, {"frames": 16},
        {"av.tmc": {"All": {"roc_auc": 0.9663}},
         "note": "ROC AUC on the organisers' 1,500-video test set (README); the released TMC set has no such split"},
        "TMC/train_dev_test.csv (filename,filepath,label,split[,weight]) + the raw videos "
        "<filepath>/<filename> (spec §5.4, §7)"),
]}


# ============================================================================ configs and overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.max_epochs=2"`` -> ``(["train", "max_epochs"], 2)``; the value is parsed as YAML.

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r}: expected KEY=VALUE (dotted key, YAML value)")
    return key.strip().split("."), yaml.safe_load(value)


def _set(doc: dict, path: Sequence[str], value: Any) -> None:
    for k in path[:-1]:
        doc = doc.setdefault(k, {})
    doc[path[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def apply_overrides(doc: dict, overrides: Sequence[tuple[list[str], Any]]) -> dict:
    """Copy of ``doc`` with each ``(dotted path, value)`` set (created when missing)."""
    out = copy.deepcopy(doc)
    for path, value in overrides:
        _set(out, path, value)
    return out


def load_table_configs(spec: TableSpec, tiny: bool = False, overrides: Sequence[str] = (),
                       scale: Optional[dict[str, Any]] = None) -> tuple[dict[str, Any], dict[str, dict]]:
    """The table's settings and its run configs, with ``--tiny``, ``--override`` and scale flags applied.

    Order: YAML, then its ``tiny:`` section (``--tiny``), then ``--override`` (``table.<key>`` goes to the
    table settings, any other key to every config), then the scale keys (``devices``, ``num_nodes``,
    ``strategy``, ``precision``, ``accelerator``) into ``train:`` of configs whose fitter accepts them
    (``devices`` / ``num_nodes`` / ``strategy`` only for :data:`DDP_DETECTORS`).

    Returns:
        ``(settings, {config stem: config dict})``.

    Raises:
        FileNotFoundError: a config file is missing. ValueError: a malformed override.
    """
    settings = _merge(spec.settings, spec.tiny) if tiny else copy.deepcopy(spec.settings)
    parsed = [parse_override(o) for o in overrides]
    table_ov = [(p[1:], v) for p, v in parsed if p[0] == "table" and len(p) > 1]
    run_ov = [(p, v) for p, v in parsed if p[0] != "table"]
    settings = apply_overrides(settings, table_ov)
    configs = {}
    for name in spec.configs:
        path = CONFIG_DIR / name
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        tiny_doc = doc.pop("tiny", {}) or {}
        if tiny:
            doc = _merge(doc, tiny_doc)
        doc = apply_overrides(doc, run_ov)
        for key, value in (scale or {}).items():
            if value is None:
                continue
            if key in ("devices", "num_nodes", "strategy") and doc.get("detector") not in DDP_DETECTORS:
                print(f"[reproduce] {name}: {doc.get('detector')} trains in one process; --{key} ignored for it",
                      file=sys.stderr)
            elif key in _train_fields(doc.get("detector", "")):
                doc.setdefault("train", {})[key] = value
            else:
                print(f"[reproduce] {name}: {doc.get('detector')} has no '{key}' setting; --{key} ignored for it",
                      file=sys.stderr)
        configs[Path(name).stem] = doc
    return settings, configs


def _train_fields(detector: str) -> set[str]:
    ref = TRAIN_CONFIG_CLASSES.get(detector)
    if ref is None:
        return set()
    module, cls = ref.split(":")
    return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}


# ============================================================================ options and step runner
@dataclass
class ReproduceOptions:
    """What ``forensic-train reproduce`` was asked (see :func:`main_reproduce`).

    Attributes:
        data_root: folder holding the datasets (``TableSpec.data_dir`` below it). out: output folder.
        device: ``cpu``, ``cuda`` or ``auto`` (preprocessing, evaluation; ``accelerator`` of the fits).
        tiny: apply the ``tiny:`` sections. overrides: ``KEY=VALUE`` texts (see :func:`parse_override`).
        scale: ``{devices, num_nodes, strategy, precision, accelerator}`` given on the command line.
        argv: the command line after ``forensic-train`` (recorded in cards and tables).
        until: last step to run (one of :data:`STEP_ORDER`).
    """

    data_root: Path
    out: Path
    device: str = "auto"
    tiny: bool = False
    overrides: tuple[str, ...] = ()
    scale: dict[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    until: str = "table"


STEP_ORDER = ("prepare", "fit", "evaluate", "table")


class _Stop(Exception):
    """Raised by a step after ``--until``: the run ends there (outputs so far are kept)."""


def _rank() -> int:
    """0 in the process that runs every step; 1 in extra DDP processes (Lightning's children, torchrun ranks > 0).

    Lightning's launcher gives its children ``LOCAL_RANK`` (and ``NODE_RANK`` on other machines); torchrun
    and SLURM set ``RANK`` / ``SLURM_PROCID``.
    """
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(int(os.environ[var]) != 0)
    return int(int(os.environ.get("LOCAL_RANK", 0)) != 0 or int(os.environ.get("NODE_RANK", 0)) != 0)


class _Steps:
    """Runs named steps in order, skipping those whose output exists; prints progress; records a log."""

    def __init__(self, table: str, out: Path, until: str = "table"):
        self.table, self.out, self.log = table, out, []
        self.rank = _rank()
        self.until = STEP_ORDER.index(until)

    def run(self, kind: str, name: str, done: Path, fn: Callable[[], Any], ddp_capable: bool = False) -> Any:
        if STEP_ORDER.index(kind) > self.until:
            self._say(f"stopping before {kind} {name} (--until {STEP_ORDER[self.until]})")
            raise _Stop
        if self.rank != 0 and not (kind == "fit" and ddp_capable):
            return None
        if done.exists():
            self._say(f"{kind:8s} {name}: done ({done.relative_to(self.out)}), skipped")
            self.log.append({"step": kind, "name": name, "status": "skipped", "output": str(done)})
            return None
        self._say(f"{kind:8s} {name} ...")
        t0 = time.time()
        result = fn()
        dt = round(time.time() - t0, 1)
        self._say(f"{kind:8s} {name}: finished in {dt} s")
        self.log.append({"step": kind, "name": name, "status": "ran", "seconds": dt, "output": str(done)})
        return result

    def _say(self, text: str) -> None:
        if self.rank == 0:
            print(f"[reproduce {self.table}] {text}", file=sys.stderr, flush=True)


def _device_of(opts: ReproduceOptions) -> str:
    """Device for preprocessing / evaluation: ``cuda`` when asked or available (auto), else ``cpu``."""
    if opts.device not in ("auto", None):
        return opts.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _data_dir(spec: TableSpec, settings: dict, opts: ReproduceOptions) -> Path:
    root = Path(settings.get("data_dir") or Path(opts.data_root) / spec.data_dir)
    if not root.exists():
        raise FileNotFoundError(f"{spec.name}: dataset folder {root} does not exist (expected layout: {spec.layout})")
    return root


def _command(opts: ReproduceOptions) -> list[str]:
    return ["reproduce", *opts.argv] if opts.argv else ["reproduce"]


# ============================================================================ deepfake video tables
def _deepfake_splits(spec: TableSpec, root: Path, settings: dict) -> dict[str, list]:
    """Train / val real videos (``data.source: sbi``) and the evaluated split's items of a video dataset.

    The adapter's defaults list the dataset; without a val split (e.g. Celeb-DF) ``table.val_fraction`` of
    the training people are held out by :func:`trainer.labelled.hold_out_groups` (seed 0), the rule the
    labelled source uses too.
    """
    from trainer.datasets import REAL, load_dataset
    from trainer.labelled import hold_out_groups

    items = load_dataset(spec.dataset, root)
    train = [it for it in items if it.split == "train" and it.label == REAL]
    val = [it for it in items if it.split == "val" and it.label == REAL]
    if not val and train:  # e.g. Celeb-DF: no official val split; hold out whole groups of the train reals
        train, val = hold_out_groups(train, float(settings.get("val_fraction", 0.1)), seed=0)
    test = [it for it in items if it.split == settings.get("split", "test")]
    for name, part in (("train (real)", train), ("val (real)", val), (settings.get("split", "test"), test)):
        if not part:
            raise ValueError(f"{spec.name}: {root} has no {name} videos")
    return {"train": train, "val": val, "test": test}


def _frames_of(cfg: dict) -> int:
    """Frames per training video of a run config (``data.frames_per_video``, default 20 as ``trainer.fit``)."""
    return int(cfg.get("data", {}).get("frames_per_video", 20))


def _folder_videos(cfg: dict, root: Path) -> list[Path]:
    """Videos a ``data.source: folders`` config trains and validates on (:func:`trainer.labelled.folder_items`)."""
    from trainer.datasets import VideoItem
    from trainer.labelled import folder_items

    train, val = folder_items({**cfg.get("data", {}), "root": str(root)}, int(cfg.get("seed", 0)))
    return [it.path for it in train + val if isinstance(it, VideoItem)]


def _run_config(cfg: dict, stem: str, train: list, val: list, cache_dir: Path, run_dir: Path,
                source: Path) -> Path:
    """Write the ``forensic-train fit --config`` YAML of one run (videos as escaped literal paths)."""
    doc = copy.deepcopy(cfg)
    data = doc.setdefault("data", {})
    data["cache_dir"] = str(cache_dir)
    data["frames_per_video"] = _frames_of(cfg)  # the count the prepare step cached
    if doc.get("detector") in ("deepfake.av", "syncnet") and not data.get("av_cache_dir"):
        data["av_cache_dir"] = str(cache_dir.parent / "av")
    if data.get("source") == "folders":
        # labelled real and fake videos of the dataset itself (deepfake.effvit / cnn / triplet, trainer.labelled):
        # the fitter lists data.root with data.dataset's adapter and makes its own train / held-out split
        data["root"] = str(source)
    else:
        data["train_videos"] = [glob.escape(str(it.path)) for it in train]
        data["val_videos"] = [glob.escape(str(it.path)) for it in val]
    card = doc.setdefault("card", {})
    card["training_data"] = (card.get("training_data", "") + f" Made by forensic-train reproduce from {source} "
                             f"(config configs/reproduce/{stem}.yaml).").strip()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "reproduce_config.yaml"
    atomic_write_bytes(path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path


def _reproduce_deepfake(spec: TableSpec, settings: dict, configs: dict[str, dict], opts: ReproduceOptions,
                        steps: _Steps) -> list[dict]:
    from trainer.evaluate import DatasetSpec, run_evaluate
    from trainer.fit import prepare, run_fit

    root = _data_dir(spec, settings, opts)
    device = _device_of(opts)
    split = _deepfake_splits(spec, root, settings)
    cache_dir = opts.out / "cache" / "faces"
    rows: list[dict] = []
    reals = [it.path for it in split["train"] + split["val"]]
    for frames in sorted({_frames_of(cfg) for cfg in configs.values()}):
        # the real videos for self-blending configs, the labelled real + fake training / held-out videos for
        # data.source: folders configs (cached here once, so DDP ranks and later runs only read them)
        users = [cfg for cfg in configs.values() if _frames_of(cfg) == frames]
        videos = reals if any(c.get("data", {}).get("source") != "folders" for c in users) else []
        for cfg in users:
            if cfg.get("data", {}).get("source") == "folders":
                videos = videos + _folder_videos(cfg, root)
        videos = list(dict.fromkeys(videos))
        labelled = any(c.get("data", {}).get("source") == "folders" for c in users)
        marker = opts.out / "prepare" / f"{spec.dataset}.{'labelled_' if labelled else ''}faces.f{frames}.json"

        def _prepare(frames=frames, marker=marker, videos=videos):
            caches = prepare(videos, cache_dir, frames, device)
            atomic_write_json(marker, {"videos": [str(p) for p in videos], "caches": [str(c) for c in caches]})

        what = "labelled real + fake" if labelled else "real"
        steps.run("prepare", f"{spec.dataset} faces ({len(videos)} {what} videos, {frames} frames)", marker, _prepare)
    for stem, cfg in configs.items():
        run_dir = opts.out / "runs" / stem
        det = cfg["detector"]

        def _fit(cfg=cfg, stem=stem, run_dir=run_dir, det=det):
            path = _run_config(cfg, stem, split["train"], split["val"], cache_dir, run_dir, root)
            resume = det != "deepfake.freq" and (run_dir / "resume" / "state.json").exists()
            run_fit(path, run_dir, device, ["fit", "--config", str(path), "--out", str(run_dir), "--device",
                                            device, *(["--resume"] if resume else [])], resume=resume)

        steps.run("fit", f"{stem} ({det})", run_dir / "summary.json", _fit, ddp_capable=det in DDP_DETECTORS)
        eval_dir = opts.out / "eval" / spec.name / stem
        ds = DatasetSpec(spec.dataset, root, settings.get("split", "test"))
        steps.run("evaluate", f"{stem} on {ds.name}:{ds.split}", eval_dir / "metrics.json",
                  lambda run_dir=run_dir, eval_dir=eval_dir, ds=ds:
                  run_evaluate(run_dir, ds, eval_dir, int(settings.get("frames", 32)), device))
        if steps.rank == 0:
            rows += _deepfake_rows(spec, stem, eval_dir, settings)
    return rows


def _deepfake_rows(spec: TableSpec, stem: str, eval_dir: Path, settings: dict) -> list[dict]:
    """Comparison rows of one evaluated model: ``All`` and, with ``per_method``, each method + all reals."""
    from trainer.metrics import per_group_metrics

    doc = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    parts = {"All": doc["metrics"]}
    if settings.get("per_method"):
        res = [r for r in json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
               if r.get("score") is not None]
        if res:
            groups = per_group_metrics([r["label"] for r in res], [r["score"] for r in res],
                                       [r["group"] for r in res], doc["threshold"], include_all_reals=True)
            parts.update({g: m for g, m in groups.items() if m.get("n_fake")})
    paper = spec.paper.get(stem, {})
    rows = []
    for part, m in parts.items():
        for metric in ("n", "accuracy", "f1", "roc_auc", "eer", "tn", "fp", "fn", "tp"):
            if metric not in m:
                continue
            rows.append({"model": stem, "test_set": part if part == "All" else f"{part} + Original",
                         "threshold": doc["threshold"], "metric": metric, "ours": m[metric],
                         "paper": paper.get(part, {}).get(metric)})
    return rows


# ============================================================================ seed 4 cross-test
def _spectra(root: Path, split: str, num_files: Optional[int]) -> dict[str, np.ndarray]:
    """Azimuthal spectra of the images of one split (first ``num_files`` per class in sorted order)."""
    import cv2

    from engine.features import azimuthal_spectrum
    from trainer.datasets import load_dataset

    items = [it for it in load_dataset("image_folder", root) if it.split == split]
    X, y, paths = [], [], []
    for label in (0, 1):
        chosen = [it for it in items if it.label == label][: num_files or None]
        for it in chosen:
            bgr = cv2.imread(str(it.path), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            try:
                X.append(azimuthal_spectrum(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            except ValueError:  # too small for a spectrum
                continue
            y.append(label)
            paths.append(str(it.path))
    if len(set(y)) < 2:
        raise ValueError(f"{root}/{split}: need real and fake images with a usable spectrum")
    return {"X": np.asarray(X, np.float64), "y": np.asarray(y, np.int64), "paths": np.asarray(paths, dtype=str)}


def _reproduce_freq_cross(spec: TableSpec, settings: dict, configs: dict[str, dict], opts: ReproduceOptions,
                          steps: _Steps) -> list[dict]:
    from trainer.evaluate import DatasetSpec, run_cross_test
    from trainer.freq_fit import fit_freq

    base = _data_dir(spec, settings, opts)
    names = list(settings["datasets"])
    missing = [n for n in names if not (base / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"{spec.name}: {', '.join(str(base / n) for n in missing)} missing (layout: "
                                f"{spec.layout}); choose others with --override 'table.datasets=[c0,c23]'")
    device = _device_of(opts)
    model_dirs: list[Path] = []

    def _npz(cfg: dict, ds: str) -> Path:
        return opts.out / "prepare" / "freq" / f"{ds}.train.n{cfg.get('data', {}).get('num_files') or 'all'}.npz"

    for cfg in configs.values():
        for ds in names:
            steps.run("prepare", f"spectra {ds}/train", _npz(cfg, ds),
                      lambda ds=ds, npz=_npz(cfg, ds), num_files=cfg.get("data", {}).get("num_files"):
                      atomic_save_npz(npz, _spectra(base / ds, "train", num_files)))
    for cfg_stem, cfg in configs.items():
        variant = cfg.get("train", {}).get("variant", "svm")
        for ds in names:
            npz = _npz(cfg, ds)
            run_dir = opts.out / "runs" / f"{cfg_stem}.{ds}"
            model_dirs.append(run_dir)

            def _fit(ds=ds, npz=npz, run_dir=run_dir, cfg=cfg, variant=variant):
                a = load_npz(npz)
                train = cfg.get("train", {})
                kwargs = {k: train[k] for k in ("lr", "weight_decay", "batch_size", "max_epochs", "patience")
                          if k in train}
                card = cfg.get("card", {})
                cmd = shlex.join(["forensic-train", *_command(opts)])
                res = fit_freq(a["X"], a["y"], variant, run_dir, int(cfg.get("seed", 0)),
                               training_data=f"{card.get('training_data', '')} {base / ds}/train: "
                                             f"{int((a['y'] == 0).sum())} real and {int((a['y'] == 1).sum())} fake "
                                             "face images (seed 4 §4.4).".strip(),
                               limitations=card.get("limitations", []), command=cmd, **kwargs)
                atomic_write_json(run_dir / "summary.json", {"detector": "deepfake.freq", "variant": variant,
                                                             "train_set": ds, "train_images": int(len(a["y"])),
                                                             "history": res.history, "command": cmd})

            steps.run("fit", f"{cfg_stem} on {ds}", run_dir / "summary.json", _fit)
    metric = settings.get("metric", "accuracy")
    eval_dir = opts.out / "eval" / spec.name
    specs = [DatasetSpec("image_folder", base / ds, "test") for ds in names]
    steps.run("evaluate", f"cross-test {len(model_dirs)} models x {len(specs)} test sets ({metric})",
              eval_dir / "matrix.json",
              lambda: run_cross_test(model_dirs, specs, eval_dir, metric, int(settings.get("frames", 32)), device))
    if steps.rank != 0:
        return []
    doc = json.loads((eval_dir / "matrix.json").read_text(encoding="utf-8"))
    rows = []
    for i, model in enumerate(doc["models"]):
        cfg_stem, train_set = Path(model).name.split(".", 1)
        variant = configs[cfg_stem].get("train", {}).get("variant", "svm")
        for j, test_set in enumerate(names):
            value = doc["matrix"][i][j]
            rows.append({"model": f"{variant} (train {train_set})", "train_set": train_set, "test_set": test_set,
                         "metric": metric, "ours": None if value is None or value != value else value,
                         "paper": spec.paper.get(variant, {}).get(train_set, {}).get(test_set)
                         if metric == "accuracy" else None})
    return rows


# ============================================================================ seed 1 (VISION)
def _reproduce_vision(spec: TableSpec, settings: dict, configs: dict[str, dict], opts: ReproduceOptions,
                      steps: _Steps) -> list[dict]:
    from trainer.camera_fit import CameraTrainConfig, evaluate_camera, fit_camera, prepare_vision
    from trainer.vision_tables import MODELS, collect_runs, evaluate_pair, write_tables

    root = _data_dir(spec, settings, opts)
    device = _device_of(opts)
    frames = int(settings.get("frames", 8))
    cache_dir = opts.out / "cache" / "camera"
    contents, folds = list(settings["contents"]), [int(k) for k in settings["folds"]]
    for content in contents:
        marker = opts.out / "prepare" / f"vision.{content}.f{frames}.json"
        steps.run("prepare", f"vision {content} ({frames} frames)", marker,
                  lambda content=content, marker=marker:
                  _prepare_vision_marker(prepare_vision, root, content, cache_dir, frames, marker))
    for content in contents:
        for fold in folds:
            for stem, cfg in configs.items():
                det = cfg["detector"]
                run_dir = opts.out / "runs" / "vision" / content / f"fold{fold}" / det

                def _fit(cfg=cfg, det=det, run_dir=run_dir, content=content, fold=fold):
                    train = dict(cfg.get("train", {}))
                    if opts.device not in ("auto", None) and "accelerator" not in train:
                        train["accelerator"] = "gpu" if opts.device.startswith("cuda") else opts.device
                    if "milestones" in train:
                        train["milestones"] = tuple(train["milestones"])
                    tcfg = CameraTrainConfig(seed=int(cfg.get("seed", 0)), **train)
                    run_dir.mkdir(parents=True, exist_ok=True)
                    command = shlex.join(["forensic-train", *_command(opts)])
                    atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(
                        {**cfg, "root": str(root), "content": content, "fold": fold,
                         "train": dataclasses.asdict(tcfg), "command": command}, sort_keys=False).encode())
                    summary = fit_camera(det, root, content, fold, run_dir, tcfg, cache_dir=cache_dir, frames=frames,
                                         card_info=cfg.get("card"), command=command)
                    if summary:
                        from engine.weights import update_card

                        update_card(run_dir, training=json.loads(json.dumps(summary, default=str)))

                steps.run("fit", f"{det} {content} fold {fold}", run_dir / "summary.json", _fit,
                          ddp_capable=det in DDP_DETECTORS)
                eval_dir = opts.out / "eval" / "vision" / content / f"fold{fold}" / det
                steps.run("evaluate", f"{det} {content} fold {fold}", eval_dir / "proba.json",
                          lambda run_dir=run_dir, eval_dir=eval_dir, content=content, fold=fold:
                          evaluate_camera(run_dir, root, content, fold, eval_dir, frames=frames, cache_dir=cache_dir,
                                          device=device))
    if steps.rank != 0:
        return []
    results = []
    for content in contents:
        results += [evaluate_pair(r) for r in collect_runs(opts.out / "eval" / "vision" / content)
                    if r.fold in folds]
    write_tables(results, opts.out / "tables" / spec.name)
    rows = []
    for content in contents:
        rs = [r for r in results if r.content == content]
        for m in MODELS:
            accs = [r.accuracy[m] for r in rs]
            rows.append({"content": content, "folds": len(rs), "model": m, "metric": "accuracy (mean over folds)",
                         "ours": float(np.mean(accs)), "std": float(np.std(accs)), "paper": None})
    return rows


def _prepare_vision_marker(prepare_vision, root, content, cache_dir, frames, marker: Path) -> None:
    caches, failed = prepare_vision(root, content, cache_dir, frames=frames)
    atomic_write_json(marker, {"videos": [{"stem": c.stem, "label": c.label, "class": c.class_name,
                                           "cache": c.cache.name} for c in caches], "failed": failed})


# ============================================================================ table writer
def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def write_comparison(out_dir: Path, spec: TableSpec, rows: Sequence[dict], extra: dict[str, Any]) -> str:
    """Write ``comparison.csv``, ``comparison.md`` and ``comparison.json`` (ours beside the seed's numbers).

    Args:
        out_dir: the table folder. spec: the table. rows: dicts sharing their keys, each with ``metric``,
            ``ours`` (float or None) and ``paper`` (the seed's number, or None where it published none).
        extra: run facts for the JSON (settings, steps, configs).

    Returns:
        The Markdown text.

    Raises:
        ValueError: no rows.
    """
    import csv
    import io

    if not rows:
        raise ValueError(f"{spec.name}: nothing to tabulate")
    keys = [k for k in rows[0] if k not in ("metric", "ours", "paper")]
    header = [*keys, "metric", "ours", "paper"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if r.get(k) is None else (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in header])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "comparison.csv", buf.getvalue().encode())
    lines = [f"# {spec.title}", "", f"Source: {spec.source}. Written by `forensic-train reproduce {spec.name}`.", ""]
    if spec.kind == "deepfake":
        lines += [_training_note(extra.get("configs") or {}), ""]
    if spec.paper.get("note"):
        lines += [f"Paper column: {spec.paper['note']}.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k in header) + " |" for r in rows]
    md = "\n".join(lines) + "\n"
    atomic_write_bytes(out_dir / "comparison.md", md.encode())
    atomic_write_json(out_dir / "comparison.json", {"table": spec.name, "title": spec.title, "source": spec.source,
                                                    "columns": header, "rows": list(rows), **extra})
    return md


def _training_note(configs: dict[str, dict]) -> str:
    """What each model of a deepfake table was trained on, for ``comparison.md``."""
    labelled = sorted(s for s, c in configs.items() if c.get("data", {}).get("source") == "folders")
    made = sorted(s for s in configs if s not in labelled)
    parts = []
    if labelled:
        parts.append(f"{', '.join(labelled)}: trained as the seed did, on the dataset's own labelled real and fake "
                     "training videos (data.source: folders, trainer.labelled; held-out people never trained on).")
    if made:
        parts.append(f"{', '.join(made)}: trained on the dataset's real training videos and fakes made from them "
                     "(self-blended faces, trainer.sbi; deepfake.av also shifts / swaps audio); the seed trained on "
                     "the dataset's own fakes, so the training signal differs.")
    return " ".join(parts + ["Test videos: the dataset's split, scored through engine.pipeline.analyze."])


# ============================================================================ entry points
_RUNNERS = {"deepfake": _reproduce_deepfake, "freq_cross": _reproduce_freq_cross, "vision": _reproduce_vision}


def reproduce(table: str, opts: ReproduceOptions) -> dict[str, Any]:
    """Run one table end to end (each step skipped when its output exists).

    Args:
        table: a key of :data:`TABLES`.
        opts: data root, output folder, device, ``--tiny``, overrides, scale flags.

    Returns:
        ``{"table", "out", "rows", "steps"}``; ``rows`` are the comparison rows (empty on ranks > 0).

    Raises:
        KeyError: unknown table. FileNotFoundError: the dataset folder is missing.
        DatasetLayoutError / ValueError: the dataset does not have the expected layout or splits.
    """
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    spec = TABLES[table]
    opts.out = Path(opts.out)
    settings, configs = load_table_configs(spec, opts.tiny, opts.overrides, opts.scale)
    steps = _Steps(table, opts.out, opts.until)
    t0 = time.time()
    try:
        rows = _RUNNERS[spec.kind](spec, settings, configs, opts, steps)
    except _Stop:
        return {"table": table, "out": str(opts.out), "rows": [], "steps": steps.log}
    if steps.rank != 0:
        return {"table": table, "out": str(opts.out), "rows": [], "steps": steps.log}
    out_dir = opts.out / "tables" / table
    md = write_comparison(out_dir, spec, rows, {
        "settings": settings, "configs": configs, "tiny": opts.tiny, "overrides": list(opts.overrides),
        "scale": opts.scale, "data_root": str(opts.data_root), "steps": steps.log,
        "command": shlex.join(["forensic-train", *_command(opts)]), "wall_time_s": round(time.time() - t0, 1)})
    print(md, end="")
    return {"table": table, "out": str(out_dir), "rows": rows, "steps": steps.log}


def list_tables() -> str:
    """Text of ``forensic-train reproduce --list``: each table, its source, dataset, configs and command."""
    out = []
    for t in TABLES.values():
        out += [f"{t.name}: {t.title}", f"    source:  {t.source}",
                f"    dataset: {t.dataset} at DATA_ROOT/{t.data_dir}: {t.layout}",
                f"    configs: {', '.join('configs/reproduce/' + c for c in t.configs)}",
                f"    command: forensic-train reproduce {t.name} --data-root DATA_ROOT --out OUT", ""]
    return "\n".join(out)


def build_parser():
    """Parser of ``forensic-train reproduce``."""
    import argparse

    p = argparse.ArgumentParser(prog="forensic-train reproduce",
                                description="prepare -> fit -> evaluate -> table for one seed result table "
                                            "(docs/REPRODUCE.md); every step is skipped when its output exists")
    p.add_argument("table", nargs="?", choices=list(TABLES), help="the table to reproduce")
    p.add_argument("--list", action="store_true", help="print the tables, their datasets and commands")
    p.add_argument("--data-root", type=Path, help="folder holding the datasets (spec §7 layouts, see --list)")
    p.add_argument("--out", type=Path, help="output folder (caches, runs, evaluations, tables)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (preprocessing, evaluation, accelerator)")
    p.add_argument("--devices", help="Lightning devices per node (e.g. 8)")
    p.add_argument("--num-nodes", type=int, help="Lightning num_nodes (multi-node DDP)")
    p.add_argument("--strategy", help="Lightning strategy (e.g. ddp)")
    p.add_argument("--precision", help="Lightning precision (e.g. 16-mixed, bf16-mixed)")
    p.add_argument("--until", choices=STEP_ORDER, default="table",
                   help="stop after this step (e.g. prepare on one machine before a multi-node fit)")
    p.add_argument("--tiny", action="store_true", help="apply the configs' tiny: sections (CPU smoke run)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config key (train.max_epochs=2) or table setting (table.folds=[0]); repeatable")
    return p


def main_reproduce(argv: Optional[Sequence[str]] = None) -> int:
    """``forensic-train reproduce <table> --data-root DIR --out DIR [...]`` and ``--list``.

    Returns:
        0 on success, 2 on a usage error (message on stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    args = p.parse_args(argv)
    if args.list:
        print(list_tables(), end="")
        return 0
    if not args.table or args.data_root is None or args.out is None:
        p.error("reproduce needs TABLE, --data-root and --out (or --list)")
    devices = args.devices
    if devices is not None and str(devices).isdigit():
        devices = int(devices)
    scale = {"devices": devices, "num_nodes": args.num_nodes, "strategy": args.strategy, "precision": args.precision}
    if args.device not in ("auto", None):
        scale["accelerator"] = "gpu" if args.device.startswith("cuda") else args.device
    opts = ReproduceOptions(args.data_root, args.out, args.device, args.tiny, tuple(args.override),
                            {k: v for k, v in scale.items() if v is not None}, tuple(argv), args.until)
    reproduce(args.table, opts)
    return 0
