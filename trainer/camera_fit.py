"""Camera-model identification training and evaluation (seed 1, spec/seeds.md §1.6–§1.9).

``forensic-train prepare vision ROOT --content C --out CACHE``
    For every usable video of a VISION(-like) tree (:mod:`trainer.datasets.vision`):
    the engine's 3-resolution log-mel (:meth:`engine.pipeline.MediaClip.log_mel_3res`)
    and the 256×256 full-resolution centre crops (:func:`engine.models.camera.center_crop_256`)
    of ``frames`` uniformly sampled frames, as one npz per video (keyed by SHA-256,
    resumable). These are the tensors the ``camera.*`` detectors compute at
    analysis time: the preprocessing exists once, in ``engine``.

``forensic-train fit camera.audio|camera.image --root ROOT --content C --fold K --out RUN``
    Seed 1 §1.8: CrossEntropy, Adam(lr 1e-4), MultiStepLR([30, 80], 0.1) stepped per
    epoch, 100 epochs, no early stopping, **best epoch by validation accuracy**
    (video level). Batch 8 (audio) / 32 (image). Train / val / test come from the
    fold CSVs (the seed's exact lists for VISION, the tree's own for simulated sets).
    The run folder gets ``model.safetensors`` + ``card.json`` (class names in the
    card, so 25-class VISION weights drop in), ``logs/metrics.csv``, ``summary.json``
    and the test fold's ``proba.json``.

``forensic-train evaluate --model DIR --dataset vision:ROOT --content C --fold K --out DIR``
    Per-video probabilities of one test fold as ``proba.json`` (the format
    :mod:`trainer.vision_tables` reads; never pickle) and the accuracy.

Frame → video (§1.9): the image model's video probability is the **mean of each
frame's own softmax vector** (the seed's evaluation reused the first frame's vector
for all frames of a video in a batch, a [quirk] we do not reproduce). Audio: one
log-mel per video.

Documented departures: no ImageNet weights for MobileNetV3-Large / ResNet50 are
reachable offline, so both train from random initialisation, and BatchNorm running
statistics are re-estimated on ``bn_recalibrate_batches`` training batches before
each validation (MobileNetV3's BN momentum 0.01 is too slow for short runs from
scratch: eval outputs collapse to one class otherwise); ``frames`` crops
per video are cached (the seed used every second frame of every video);
``max_time`` may cap a run's wall clock (recorded in the summary).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from engine.io import atomic_save_npz, atomic_write_json, load_npz

MODALITIES = {"camera.audio": "audio", "camera.image": "image"}
"""Detector id -> modality name used in ``proba.json``."""

ARCHITECTURES = {"camera.audio": "camera_audio", "camera.image": "camera_image"}
"""Detector id -> ``engine.models`` architecture."""

CAMERA_CACHE_VERSION = 1


# ============================================================================ cache
@dataclass(frozen=True)
class CameraCache:
    """One prepared video: its npz and labels.

    Attributes:
        stem: video stem (VISION name, e.g. ``D01_V_indoor_move_0001``).
        label: class index; class_name: merged class name; cache: npz path.
    """

    stem: str
    label: int
    class_name: str
    cache: Path

    def load(self) -> dict[str, np.ndarray]:
        """``log_mel_3res`` float32 (3, 128, 1500) (absent without audio), ``crops`` uint8 (F, 256, 256, 3),
        ``frame_index`` int64 (F,), ``pts`` float64 (F,) seconds."""
        return load_npz(self.cache)


def prepare_camera_video(path: str | Path, out_dir: str | Path, frames: int = 8, device: str = "cpu") -> Path:
    """Cache the camera detectors' inputs of one video (skipped when already cached).

    Args:
        path: the video. out_dir: cache folder. frames: frames sampled uniformly
            over the duration (``engine.media.Uniform``). device: unused for now
            (no face detection here); kept for symmetry with ``trainer.cache``.

    Returns:
        ``<out_dir>/<stem>.<sha256[:12]>.f<frames>.cam<version>.npz`` (the frame count is part of the
        key, so a cache made with another ``frames`` is never silently reused).

    Raises:
        EvidenceError: the video cannot be read.
    """
    from engine.media import Uniform, sha256_file
    from engine.models.camera import center_crop_256
    from engine.pipeline import ClipConfig, MediaClip

    path = Path(path)
    digest = sha256_file(path)
    stem = path.name.split(".")[0]
    out = Path(out_dir) / f"{stem}.{digest[:12]}.f{int(frames)}.cam{CAMERA_CACHE_VERSION}.npz"
    if out.exists():
        return out
    clip = MediaClip(path, ClipConfig(sampling=Uniform(frames), device=device))
    fr = clip.frames
    arrays: dict[str, np.ndarray] = {
        "frame_index": np.array([f.index for f in fr], np.int64),
        "pts": np.array([f.pts for f in fr], np.float64),
        "crops": np.stack([center_crop_256(f.rgb) for f in fr]) if fr else np.zeros((0, 256, 256, 3), np.uint8),
    }
    mel = clip.log_mel_3res()
    if mel is not None:
        arrays["log_mel_3res"] = mel.astype(np.float32)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_save_npz(out, arrays)
    return out


def prepare_vision(root: str | Path, content: str | None, out_dir: str | Path, frames: int = 8,
                   progress: bool = True) -> tuple[list[CameraCache], list[dict[str, str]]]:
    """Cache every usable video of a VISION(-like) tree (``forensic-train prepare vision``).

    Returns:
        (caches in listing order, failures ``{"path", "message"}``); failures are
        skipped with a message, never fatal.

    Raises:
        DatasetLayoutError: ``root`` is not a VISION-like tree.
    """
    from tqdm import tqdm

    from engine.media import EvidenceError
    from trainer.datasets.vision import vision

    videos = vision(Path(root), content=content)
    caches, failed = [], []
    for v in tqdm(videos, unit="video", desc="prepare vision", disable=not progress):
        try:
            caches.append(CameraCache(v.stem, v.label, v.class_name, prepare_camera_video(v.path, out_dir, frames)))
        except EvidenceError as exc:
            failed.append({"path": str(v.path), "message": str(exc)})
            tqdm.write(f"skipped {exc}")
    return caches, failed


# ============================================================================ datasets
class AudioSet(torch.utils.data.Dataset):
    """One log-mel per video: ``(float32 (3, 128, 1500), int label)``; videos without audio are dropped."""

    def __init__(self, caches: Sequence[CameraCache]):
        self.items: list[tuple[str, np.ndarray, int]] = []
        for c in caches:
            a = c.load()
            if "log_mel_3res" in a:
                self.items.append((c.stem, a["log_mel_3res"].astype(np.float32), c.label))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        stem, mel, y = self.items[i]
        return torch.from_numpy(mel), y, i


class FrameSet(torch.utils.data.Dataset):
    """Every cached centre crop: ``(float32 (3, 256, 256) in 0–255, int label, video number)``."""

    def __init__(self, caches: Sequence[CameraCache]):
        self.stems: list[str] = []
        crops, labels, owner = [], [], []
        for c in caches:
            a = c.load()
            if len(a["crops"]):
                crops.append(a["crops"])
                labels += [c.label] * len(a["crops"])
                owner += [len(self.stems)] * len(a["crops"])
                self.stems.append(c.stem)
        self.crops = np.concatenate(crops) if crops else np.zeros((0, 256, 256, 3), np.uint8)
        self.labels = np.asarray(labels, np.int64)
        self.owner = np.asarray(owner, np.int64)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int):
        x = torch.from_numpy(np.ascontiguousarray(self.crops[i])).permute(2, 0, 1).float()
        return x, int(self.labels[i]), int(self.owner[i])


def _video_probs(probs: np.ndarray, owner: np.ndarray, n_videos: int) -> np.ndarray:
    """Mean of each frame's own softmax vector per video (§1.9, not the first-frame quirk): ``(V, C)``."""
    out = np.zeros((n_videos, probs.shape[1]), np.float64)
    np.add.at(out, owner, probs)
    counts = np.bincount(owner, minlength=n_videos)[:, None]
    return out / np.maximum(counts, 1)


@torch.no_grad()
def predict_videos(model: torch.nn.Module, ds: torch.utils.data.Dataset, batch_size: int,
                   device: str = "cpu") -> np.ndarray:
    """Video-level class probabilities ``float64 (V, C)`` of a :class:`AudioSet` / :class:`FrameSet`."""
    model.eval()
    probs, owners = [], []
    for x, _, o in torch.utils.data.DataLoader(ds, batch_size=batch_size):
        probs.append(torch.softmax(model(x.to(device)).float(), dim=1).cpu().numpy())
        owners.append(o.numpy())
    if not probs:
        return np.zeros((0, 0))
    p, o = np.concatenate(probs), np.concatenate(owners)
    n = len(ds.items) if isinstance(ds, AudioSet) else len(ds.stems)
    return _video_probs(p, o, n)


def _video_labels(ds) -> np.ndarray:
    if isinstance(ds, AudioSet):
        return np.array([y for _, _, y in ds.items], np.int64)
    first = {int(o): int(y) for o, y in zip(ds.owner[::-1], ds.labels[::-1])}
    return np.array([first[i] for i in range(len(ds.stems))], np.int64)


def _video_stems(ds) -> list[str]:
    return [s for s, _, _ in ds.items] if isinstance(ds, AudioSet) else list(ds.stems)


# ============================================================================ training
@dataclass(frozen=True)
class CameraTrainConfig:
    """Hyper-parameters of one camera-model fit; defaults are seed 1 §1.8."""

    lr: float = 1e-4
    milestones: tuple[int, ...] = (30, 80)
    gamma: float = 0.1
    max_epochs: int = 100
    batch_size: int | None = None  # None: 8 (audio) / 32 (image), §1.8
    seed: int = 0
    max_time: str | None = None  # "DD:HH:MM:SS" wall-clock cap (Lightning stops gracefully)
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1  # machines of a multi-node DDP run (Lightning Trainer(num_nodes=...))
    limit_train_batches: float | int | None = None
    bn_recalibrate_batches: int = 8  # re-estimate BN running statistics before each validation (0: off)

    def batch_for(self, modality: str) -> int:
        return int(self.batch_size or (8 if modality == "audio" else 32))


def _system(model: torch.nn.Module, cfg: CameraTrainConfig):
    import lightning.pytorch as pl

    class CameraSystem(pl.LightningModule):
        """CrossEntropy + Adam + MultiStepLR (per epoch); logs train loss/acc and video-level val acc."""

        def __init__(self):
            super().__init__()
            self.model = model
            self.loss = torch.nn.CrossEntropyLoss()
            self._val: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

        def training_step(self, batch, _):
            x, y, _ = batch
            logits = self.model(x)
            loss = self.loss(logits, y)
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False)
            self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, _):
            x, y, o = batch
            logits = self.model(x)
            self.log("val_loss", self.loss(logits, y), on_epoch=True, sync_dist=True)
            self._val.append((torch.softmax(logits.float(), 1).cpu().numpy(), y.cpu().numpy(), o.cpu().numpy()))

        def on_validation_epoch_start(self):
            # Training from random init for a few epochs: torchvision's MobileNetV3 BN momentum is 0.01, so
            # its running statistics lag far behind the weights and eval() outputs collapse to one class.
            # Re-estimate them exactly on a few training batches (the effvit trainer does the same).
            if self.trainer.sanity_checking or not cfg.bn_recalibrate_batches:
                return
            from engine.models import recalibrate_batchnorm

            from .distributed import average_batchnorm_stats

            batches = []
            for i, (x, _, _) in enumerate(self.trainer.train_dataloader):
                if i >= cfg.bn_recalibrate_batches:
                    break
                batches.append(x.to(self.device))
            recalibrate_batchnorm(self.model, batches)
            average_batchnorm_stats(self.model)

        def on_validation_epoch_end(self):
            if not self._val:
                return
            from .distributed import gather_cat

            # DDP: gather every rank's share so each rank aggregates whole videos identically
            p = gather_cat(self, torch.from_numpy(np.concatenate([v[0] for v in self._val]))).numpy()
            y = gather_cat(self, torch.from_numpy(np.concatenate([v[1] for v in self._val]))).numpy()
            o = gather_cat(self, torch.from_numpy(np.concatenate([v[2] for v in self._val]))).numpy()
            self._val.clear()
            n = int(o.max()) + 1
            pv = _video_probs(p, o, n)
            yv = np.zeros(n, np.int64)
            yv[o] = y
            self.log("val_acc", float((pv.argmax(1) == yv).mean()), prog_bar=True)

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    return CameraSystem()


def _best_tracker():
    """Callback keeping the best state dict by validation accuracy (``>=``: later epochs win ties, like the
    seed's audio script) in memory, rank 0 only."""
    import lightning.pytorch as pl

    class Best(pl.Callback):
        def __init__(self):
            self.acc, self.epoch, self.state, self.history = -1.0, -1, None, []

        def on_validation_end(self, trainer, module):
            if trainer.sanity_checking or "val_acc" not in trainer.callback_metrics:
                return
            acc = float(trainer.callback_metrics["val_acc"])
            self.history.append({"epoch": int(trainer.current_epoch), "val_acc": acc,
                                 "val_loss": float(trainer.callback_metrics["val_loss"])})
            if acc >= self.acc and trainer.is_global_zero:
                self.acc, self.epoch = acc, int(trainer.current_epoch)
                self.state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

        def on_train_epoch_end(self, trainer, module):
            # runs after this epoch's validation: add the epoch's training figures to its history row
            m = trainer.callback_metrics
            if self.history and self.history[-1]["epoch"] == trainer.current_epoch and "train_loss_epoch" in m:
                self.history[-1]["train_loss"] = float(m["train_loss_epoch"])
                self.history[-1]["train_acc"] = float(m["train_acc_epoch"])

    return Best()


def fit_camera(detector_id: str, root: str | Path, content: str, fold: int, out_dir: str | Path,
               cfg: CameraTrainConfig = CameraTrainConfig(), cache_dir: str | Path | None = None,
               frames: int = 8, card_info: dict[str, Any] | None = None, command: str = "",
               splits_dir: str | Path | None = None) -> dict[str, Any]:
    """Train ``camera.audio`` or ``camera.image`` on one content × fold (seed 1 §1.8) and evaluate its test fold.

    Args:
        detector_id: ``"camera.audio"`` or ``"camera.image"``.
        root: VISION(-like) tree; content: ``Native`` / ``WA`` / ``YT``; fold: 0–4.
        out_dir: run folder. cache_dir: prepared npz folder (default ``out_dir/cache``).
        frames: frames cached per video (image model; the audio model uses the log-mel).
        card_info: ``training_data``, ``limitations``, ``quirks``, ``evaluation`` for the card.
        splits_dir: fold CSV folder (default: the tree's own or the shipped VISION lists).

    Returns:
        Summary (counts, epochs, best epoch, val/test accuracy, wall time) also in ``summary.json``.

    Raises:
        KeyError: unknown detector. DatasetLayoutError: bad tree or fold lists.
        ValueError: an empty split.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from engine.models import create_model
    from engine.weights import ModelCard, save_weights
    from trainer.datasets.vision import vision, vision_classes, vision_folds

    from .distributed import ddp_strategy

    if detector_id not in MODALITIES:
        raise KeyError(f"no camera trainer for {detector_id!r}; known: {', '.join(MODALITIES)}")
    modality = MODALITIES[detector_id]
    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out_dir / "cache"
    pl.seed_everything(cfg.seed, workers=True)
    classes = vision_classes(Path(root))
    videos = vision(Path(root), content=content)
    split = vision_folds(videos, content, fold, splits_dir=splits_dir)
    caches = {name: [CameraCache(v.stem, v.label, v.class_name, prepare_camera_video(v.path, cache_dir, frames))
                     for v in vids] for name, vids in split.items()}
    make = AudioSet if modality == "audio" else FrameSet
    sets = {name: make(c) for name, c in caches.items()}
    for name, ds in sets.items():
        if len(ds) == 0:
            raise ValueError(f"{root}: {content} fold {fold} has no usable {modality} samples in '{name}'")
    arch = ARCHITECTURES[detector_id]
    model = create_model(arch, {"classes": classes})
    bs = cfg.batch_for(modality)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = torch.utils.data.DataLoader(sets["train"], batch_size=bs, shuffle=True, generator=gen)
    val_loader = torch.utils.data.DataLoader(sets["val"], batch_size=bs)
    best = _best_tracker()
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs, max_time=cfg.max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        strategy=ddp_strategy(cfg.strategy, model), num_nodes=cfg.num_nodes, precision=cfg.precision,
        logger=CSVLogger(str(out_dir), name="logs", version=""),
        enable_checkpointing=False, callbacks=[best], limit_train_batches=cfg.limit_train_batches,
        num_sanity_val_steps=0, log_every_n_steps=1, enable_progress_bar=True,
    )
    trainer.fit(_system(model, cfg), train_loader, val_loader)
    if not trainer.is_global_zero:
        return {}
    if best.state is not None:
        model.load_state_dict(best.state)
    model.cpu()
    test = sets["test"]
    p_test = predict_videos(model, test, bs)
    y_test = _video_labels(test)
    test_acc = float((p_test.argmax(1) == y_test).mean())
    proba = write_proba(out_dir / "proba.json", classes, content, fold, modality, _video_stems(test), y_test, p_test)
    wall = time.time() - t0
    summary = {
        "detector": detector_id, "content": content, "fold": int(fold), "classes": classes,
        "train_videos": len(caches["train"]), "val_videos": len(caches["val"]), "test_videos": len(caches["test"]),
        "train_samples": len(sets["train"]), "frames_per_video": frames if modality == "image" else None,
        "epochs_run": len(best.history), "best_epoch": best.epoch, "val_acc_best": best.acc,
        "test_acc": test_acc, "val_per_epoch": best.history, "wall_time_s": round(wall, 1),
        "train_config": dataclasses.asdict(cfg), "proba": str(proba.name),
        "hardware": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU",
    }
    info = card_info or {}
    card = ModelCard(
        detector_id=detector_id, architecture=arch, config={"classes": classes}, classes=classes,
        training_data=info.get("training_data", f"{root} content {content} fold {fold} (train split)"),
        metrics={"test_acc": test_acc, "val_acc": best.acc},
        evaluation=info.get("evaluation", f"test split of {content} fold {fold} (videos not used in training), "
                                          "video-level accuracy"),
        limitations=list(info.get("limitations", [])), sha256="",
        init="random (no ImageNet weights reachable offline for this backbone)",
        paper="XAIDevIDFusion (Korgialas, Tsingalis, Kotropoulos, Asilomar 2024), seed 1 §1.7-§1.9",
        quirks=list(info.get("quirks", [])), command=command,
    )
    save_weights(model.state_dict(), card, out_dir)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def write_proba(path: Path, classes: list[str], content: str, fold: int, modality: str, stems: list[str],
                labels: np.ndarray, probs: np.ndarray) -> Path:
    """Write per-video probabilities in the :mod:`trainer.vision_tables` format (JSON, never pickle)."""
    doc = {"classes": list(classes), "content": content, "fold": int(fold), "modality": modality,
           "videos": {s: {"label": int(y), "proba": [float(v) for v in p]} for s, y, p in zip(stems, labels, probs)}}
    return atomic_write_json(path, doc)


def evaluate_camera(model_dir: str | Path, root: str | Path, content: str, fold: int, out_dir: str | Path,
                    frames: int = 8, cache_dir: str | Path | None = None, device: str = "cpu",
                    splits_dir: str | Path | None = None,
                    progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Per-video probabilities of one test fold for a trained camera model (``forensic-train evaluate``).

    Writes ``out_dir/proba.json`` and ``out_dir/metrics.json`` (accuracy, counts).

    Raises:
        WeightsError: missing/tampered weights. ValueError: the card is not a camera model,
        or its classes differ from the tree's.
    """
    from engine.models import create_model
    from engine.weights import load_weights
    from trainer.datasets.vision import vision, vision_classes, vision_folds

    state, card = load_weights(model_dir)
    det = {v: k for k, v in ARCHITECTURES.items()}.get(card.architecture)
    if det is None:
        raise ValueError(f"{model_dir}: architecture {card.architecture!r} is not a camera model")
    classes = vision_classes(Path(root))
    if list(card.classes) != list(classes):
        raise ValueError(f"{model_dir}: the model's classes {card.classes} differ from the dataset's {classes}")
    model = create_model(card.architecture, card.config)
    model.load_state_dict(state)
    model.to(device)
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir else out_dir / "cache"
    test = vision_folds(vision(Path(root), content=content), content, fold, splits_dir=splits_dir)["test"]
    caches = [CameraCache(v.stem, v.label, v.class_name, prepare_camera_video(v.path, cache_dir, frames)) for v in test]
    modality = MODALITIES[det]
    ds = AudioSet(caches) if modality == "audio" else FrameSet(caches)
    p = predict_videos(model, ds, 8, device)
    y = _video_labels(ds)
    acc = float((p.argmax(1) == y).mean()) if len(y) else float("nan")
    write_proba(out_dir / "proba.json", classes, content, fold, modality, _video_stems(ds), y, p)
    metrics = {"detector": det, "model": card.card_id, "content": content, "fold": int(fold),
               "videos": int(len(y)), "accuracy": acc}
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def load_proba(path: str | Path) -> dict[str, Any]:
    """Read a ``proba.json`` (see :func:`write_proba`)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def fit_from_cli(args: Any, argv: Sequence[str]) -> dict[str, Any]:
    """``forensic-train fit camera.audio|camera.image ...``: flags override the optional ``--config`` YAML.

    The YAML may hold ``root``, ``content``, ``fold``, ``cache_dir``, ``frames``, ``train`` (fields of
    :class:`CameraTrainConfig`) and ``card`` (``training_data``, ``limitations``, ``quirks``,
    ``evaluation``). The exact command line is recorded in the card.

    Raises:
        ValueError: a required setting (root, content, fold) is missing.
    """
    import shlex

    import yaml

    from engine.io import atomic_write_bytes

    cfg: dict[str, Any] = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) if args.config else {}
    root = args.root or cfg.get("root")
    content = args.content or cfg.get("content")
    fold = args.fold if args.fold is not None else cfg.get("fold")
    if root is None or content is None or fold is None:
        raise ValueError("camera fit needs --root, --content and --fold (or them in --config)")
    train = dict(cfg.get("train", {}))
    for key, val in (("max_epochs", args.epochs), ("max_time", args.max_time), ("batch_size", args.batch_size),
                     ("devices", args.devices), ("strategy", args.strategy),
                     ("limit_train_batches", getattr(args, "limit_train_batches", None))):
        if val is not None:
            if key == "limit_train_batches" and float(val) > 1:
                val = int(val)
            train[key] = int(val) if key == "devices" and str(val).isdigit() else val
    if args.device not in ("auto", None):
        train.setdefault("accelerator", "gpu" if args.device.startswith("cuda") else args.device)
    if "milestones" in train:
        train["milestones"] = tuple(train["milestones"])
    tcfg = CameraTrainConfig(seed=int(cfg.get("seed", 0)), **train)
    command = shlex.join(["forensic-train", *argv])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "config.yaml", yaml.safe_dump(
        {**cfg, "detector": args.detector, "root": str(root), "content": content, "fold": int(fold),
         "train": dataclasses.asdict(tcfg), "command": command}, sort_keys=False).encode())
    summary = fit_camera(args.detector, root, content, int(fold), out, tcfg,
                         cache_dir=args.cache or cfg.get("cache_dir"), frames=int(args.frames or cfg.get("frames", 8)),
                         card_info=cfg.get("card"), command=command)
    if summary:
        from engine.weights import update_card

        update_card(out, training=json.loads(json.dumps(summary, default=str)))
        print(json.dumps({k: v for k, v in summary.items() if k != "val_per_epoch"}, indent=2, default=str))
    return summary
