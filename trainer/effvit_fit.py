"""Training ``deepfake.effvit`` (seed 2 §2.3) with Lightning, on self-blended or labelled fakes.

Data sources (YAML ``data.source``; only where the samples come from differs, the
training loop, augmentation, early stopping, resume and DDP are one code path):

* ``sbi`` (default): real face crops (``effvit_square224`` policy) from the
  preprocessing cache of real videos (``data.train_videos`` / ``val_videos``); each
  real crop gives one real sample and one self-blended pseudo-fake (``trainer.sbi``),
  so only real footage is needed (:class:`SBIFaceDataset`; ``pos_weight`` 1). Videos
  are split by person (one video = one person here): validation faces never come
  from a training video. Card metric ``val_auc_sbi``.
* ``folders``: the seed's data (seed 2 §2.3 trains on FF++ real + manipulated
  frames): labelled real and fake faces of ``data.root`` listed with the adapter
  ``data.dataset`` (``ffpp``, ``celebdf``, ``video_folder``, ``image_folder`` ...) by
  :mod:`trainer.labelled` (the source ``deepfake.cnn`` uses): the dataset's ``val``
  split is held out, else ``data.val_fraction`` of the training people
  (:func:`trainer.labelled.hold_out_groups`). Training crops keep their labels
  (:class:`LabelledEffViTDataset`), BCE ``pos_weight = n_real / n_fake`` of the training
  faces (the seed's), validation AUC on the labelled held-out faces (card metric
  ``val_auc``); ``labelled_split.json`` lists the groups of each part.

Departures from the seed, for training from random initialisation (no
ImageNet EfficientNet-B0 is reachable): the seed fine-tuned only blocks 13–15
of a *pretrained* backbone; freezing *random* blocks is meaningless, so the
bundled config sets ``model.trainable_blocks_from: 0`` (all blocks train). And
BatchNorm running statistics (momentum 0.01 as in the seed) are re-estimated
on ``bn_recalibrate_batches`` training batches before each validation.

Seed settings (defaults of :class:`EffViTTrainConfig`): SGD lr 0.01, weight decay
1e-7, no momentum; StepLR(15, 0.1); batch 16; BCEWithLogits with
``pos_weight = n_real / n_fake``; early stopping with patience 5 where the
counter grows when val loss does not improve on the *previous* epoch (the
seed's rule); frames sampled equidistantly (the intended behaviour, not the
listdir quirk). The exported weights are the inner ``nn.Module``'s state dict
as safetensors (never a Lightning checkpoint).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .labelled import LabelledCrops, data_source, labelled_split

POLICY = "effvit_square224"


@dataclass(frozen=True)
class EffViTTrainConfig:
    """Hyper-parameters of one ``deepfake.effvit`` fit (YAML ``train:``/``optim:`` sections)."""

    lr: float = 0.01
    weight_decay: float = 1e-7
    step_size: int = 15
    gamma: float = 0.1
    batch_size: int = 16
    max_epochs: int = 100
    patience: int = 5
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"  # "ddp" for several GPUs / processes (gloo on CPU); see trainer.distributed
    num_nodes: int = 1  # machines of a multi-node DDP run (Lightning Trainer(num_nodes=...))
    num_workers: int = 0
    limit_train_batches: float | int | None = None
    bn_recalibrate_batches: int = 8
    max_time: str | None = None  # "DD:HH:MM:SS" wall-clock budget of one invocation (Lightning stops gracefully)
    optimizer: str = "sgd"  # "sgd" (seed 2 §2.3) or "adamw" (documented departure for training from scratch)
    momentum: float = 0.0  # SGD only; the seed used none
    model: dict[str, Any] = field(default_factory=dict)


def load_faces(caches: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the ``effvit_square224`` crops of cached videos.

    Returns:
        ``(crops uint8 (N,224,224,3) RGB, landmarks float32 (N,5,2) crop px (NaN if absent),
        video int64 (N,) position of the source cache in ``caches``)``.
    """
    from engine.io import load_npz

    crops, lms, vids = [], [], []
    for v, path in enumerate(caches):
        a = load_npz(path)
        c = a[f"crops/{POLICY}"]
        crops.append(c)
        lms.append(a[f"landmarks/{POLICY}"])
        vids.append(np.full(len(c), v, np.int64))
    if not crops:
        raise ValueError("no cached videos given")
    return np.concatenate(crops), np.concatenate(lms), np.concatenate(vids)


class EffViTTensors:
    """Mixin: item ``i`` of a face dataset as ``deepfake.effvit`` tensors (one code path for every source).

    Needs ``image(i) -> (uint8 (224, 224, 3) RGB, label int 0 real / 1 fake)`` and the attributes
    ``train``, ``seed`` and ``epoch``. Training items are augmented with
    :func:`trainer.augment.effvit_train_augment` (seeded per ``(seed, epoch, i)``), then every item is
    preprocessed by the engine's :func:`engine.models.effvit.preprocess_crops` — the function the
    detector calls. Items are ``(float32 (3, 224, 224), float32 scalar label)`` (BCE target).
    """

    def __getitem__(self, i: int):
        from engine.models.effvit import preprocess_crops
        from trainer.augment import effvit_train_augment

        image, label = self.image(i)
        if self.train:
            image = effvit_train_augment(image, np.random.default_rng([self.seed, self.epoch, i, 1]))
        x = preprocess_crops(image[None])[0]
        return x, torch.tensor(float(label))


class SBIFaceDataset(EffViTTensors, torch.utils.data.Dataset):
    """Real crops and their self-blended fakes (``data.source: sbi``) as model tensors (:class:`EffViTTensors`).

    Item ``2i`` is real crop ``i`` (label 0) and ``2i+1`` its self-blended fake (label 1).

    Args:
        crops: uint8 (N,224,224,3) RGB. landmarks: float32 (N,5,2) or NaN.
        train: apply ``trainer.augment.effvit_train_augment`` and draw new
            blends every epoch; else fixed blends (seeded by index) for validation.
    """

    def __init__(self, crops: np.ndarray, landmarks: np.ndarray, train: bool, seed: int = 0):
        self.crops, self.landmarks, self.train, self.seed = crops, landmarks, train, seed
        self.epoch = 0

    def __len__(self) -> int:
        return 2 * len(self.crops)

    def sample(self, i: int) -> tuple[np.ndarray, int, np.ndarray]:
        """``(image uint8 (224,224,3), label, blend_mask float32 (224,224))`` before augmentation."""
        from trainer.sbi import real_sample, self_blend

        k, fake = divmod(i, 2)
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, i])
        lm = self.landmarks[k]
        lm = None if not np.isfinite(lm).all() else lm
        s = self_blend(self.crops[k], lm, rng=rng) if fake else real_sample(self.crops[k])
        return s.image, int(s.label), s.blend_mask

    def image(self, i: int) -> tuple[np.ndarray, int]:
        """``(uint8 (224, 224, 3) RGB, label)`` of item ``i`` before augmentation."""
        img, label, _ = self.sample(i)
        return img, label


class LabelledEffViTDataset(EffViTTensors, LabelledCrops, torch.utils.data.Dataset):
    """Labelled real / fake face crops (``data.source: folders``, seed 2 §2.3) as model tensors.

    Item ``i`` is crop ``i`` with its own label (:class:`trainer.labelled.LabelledCrops`: crops uint8
    (N, 224, 224, 3) RGB ``effvit_square224``, labels int (N,)); training items get the same augmentation
    as the SBI source (:class:`EffViTTensors`).
    """


def _system_class():
    import lightning.pytorch as pl

    class EffViTSystem(pl.LightningModule):
        """Lightning system around the plain ``EffViT`` model (STYLE.md: model inside a system)."""

        def __init__(self, model: torch.nn.Module, cfg: EffViTTrainConfig, pos_weight: float,
                     resume_state=None):
            super().__init__()
            self.model, self.cfg = model, cfg
            self.resume_state = resume_state  # trainer.resume.TrainState or None
            self.epoch_offset = int(resume_state.meta["epochs_done"]) if resume_state else 0
            self.loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight]))
            self.val_scores: list[torch.Tensor] = []
            self.val_labels: list[torch.Tensor] = []

        def training_step(self, batch, _):
            x, y = batch
            loss = self.loss(self.model(x).squeeze(1), y)
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            logit = self.model(x).squeeze(1)
            self.log("val_loss", self.loss(logit, y), prog_bar=True, on_epoch=True, sync_dist=True)
            self.val_scores.append(torch.sigmoid(logit.float()).detach().cpu())  # float32 also under bf16/fp16 AMP
            self.val_labels.append(y.detach().cpu())

        def on_validation_epoch_end(self):
            from sklearn.metrics import roc_auc_score

            from .distributed import gather_cat

            y = gather_cat(self, torch.cat(self.val_labels)).numpy()  # every rank scores the whole val set
            s = gather_cat(self, torch.cat(self.val_scores)).numpy()
            self.val_scores.clear()
            self.val_labels.clear()
            if len(np.unique(y)) == 2:
                self.log("val_auc", float(roc_auc_score(y, s)), prog_bar=True)

        def on_validation_epoch_start(self):
            # BN momentum 0.01 (seed) moves too slowly from random init for short runs:
            # re-estimate the running statistics on a few training batches first.
            if self.trainer.sanity_checking or not self.cfg.bn_recalibrate_batches:
                return
            from engine.models.effvit import recalibrate_batchnorm

            loader = self.trainer.train_dataloader
            batches = []
            for i, (x, _) in enumerate(loader):
                if i >= self.cfg.bn_recalibrate_batches:
                    break
                batches.append(x.to(self.device))
            recalibrate_batchnorm(self.model, batches)
            from .distributed import average_batchnorm_stats

            average_batchnorm_stats(self.model)  # DDP: the same statistics on every rank

        def on_train_start(self):
            st = self.resume_state
            if st is None:
                return
            opt = self.trainer.optimizers[0]
            opt.load_state_dict(st.optimizer)
            sched = self.trainer.lr_scheduler_configs[0].scheduler
            # the saved lr is the one used in the last finished epoch; replay that epoch's step
            sched.last_epoch = self.epoch_offset - 1
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
                warnings.simplefilter("ignore", UserWarning)
                sched.step()

        def on_train_epoch_start(self):
            ds = self.trainer.train_dataloader.dataset
            ds.epoch = self.epoch_offset + self.current_epoch

        def configure_optimizers(self):
            params = [p for p in self.model.parameters() if p.requires_grad]
            if self.cfg.optimizer == "sgd":
                opt = torch.optim.SGD(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay,
                                      momentum=self.cfg.momentum)
            elif self.cfg.optimizer == "adamw":
                opt = torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
            else:
                raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.cfg.optimizer!r}")
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.cfg.step_size, gamma=self.cfg.gamma)
            return [opt], [sched]

    return EffViTSystem


def _previous_epoch_early_stopping(patience: int):
    import lightning.pytorch as pl

    class PreviousEpochEarlyStopping(pl.Callback):
        """Seed 2's rule: stop after ``patience`` epochs whose val loss ≥ the previous epoch's."""

        def __init__(self):
            self.prev, self.count = None, 0

        def on_validation_end(self, trainer, module):
            if trainer.sanity_checking:
                return
            loss = float(trainer.callback_metrics.get("val_loss", float("nan")))
            self.count = self.count + 1 if self.prev is not None and loss >= self.prev else 0
            self.prev = loss
            if self.count >= patience:
                trainer.should_stop = True

    return PreviousEpochEarlyStopping()


class _BestState:
    """Keeps the state dict of the epoch with the best validation AUC (in memory, no pickles)."""

    def __init__(self):
        import lightning.pytorch as pl

        outer = self

        class Cb(pl.Callback):
            def on_validation_end(self, trainer, module):
                if trainer.sanity_checking:
                    return
                auc = float(trainer.callback_metrics.get("val_auc", float("nan")))
                epoch = module.epoch_offset + trainer.current_epoch
                outer.history.append({"epoch": epoch, "val_auc": auc,
                                      "val_loss": float(trainer.callback_metrics.get("val_loss", float("nan")))})
                if outer.best is None or (np.isfinite(auc) and auc > outer.best):
                    outer.best, outer.epoch = auc, epoch
                    outer.state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

        self.best, self.epoch, self.state, self.history = None, -1, None, []
        self.callback = Cb()


def _resume_saver(out_dir: Path, best: "_BestState", stopper, t_start: float, wall_before: float):
    """Callback writing ``out_dir/resume/state.*`` (``trainer.resume``) after every epoch."""
    import lightning.pytorch as pl

    from .resume import TrainState, save_train_state

    class Saver(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            # runs after this epoch's validation and before its LR-scheduler step; rank 0 writes
            if trainer.sanity_checking or not best.history or not trainer.is_global_zero:
                return
            save_train_state(out_dir, TrainState(
                model=module.model.state_dict(), optimizer=trainer.optimizers[0].state_dict(),
                best_model=best.state,
                meta={"epochs_done": module.epoch_offset + trainer.current_epoch + 1,
                      "best": best.best, "best_epoch": best.epoch, "history": best.history,
                      "early_stopping": {"prev": stopper.prev, "count": stopper.count},
                      "wall_time_s": round(wall_before + time.time() - t_start, 1)},
            ))

    return Saver()


def _training_data(cfg: EffViTTrainConfig, data: dict[str, Any], train_caches: Sequence[Path],
                   val_caches: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """Where the samples come from (``data.source``); everything after this is one code path.

    Returns:
        ``{"train_ds", "val_ds"}`` (:class:`EffViTTensors` datasets of ``(float32 (3, 224, 224), float32
        label)``), ``"pos_weight"`` (BCE, ``n_real / n_fake`` of the training samples), ``"summary"`` (data
        counts), ``"split"`` (:class:`trainer.labelled.LabelledSplit` or None).

    Raises:
        ValueError: unknown ``data.source``; ``folders`` with video lists; no fake training face.
    """
    if data_source(data) == "sbi":
        tr_crops, tr_lm, _ = load_faces(train_caches)
        va_crops, va_lm, _ = load_faces(val_caches)
        return {"train_ds": SBIFaceDataset(tr_crops, tr_lm, train=True, seed=cfg.seed),
                "val_ds": SBIFaceDataset(va_crops, va_lm, train=False, seed=cfg.seed + 1),
                "pos_weight": 1.0,  # one fake per real: n_real / n_fake = 1
                "summary": {"train_videos": len(train_caches), "val_videos": len(val_caches),
                            "train_faces": int(len(tr_crops)), "val_faces": int(len(va_crops))},
                "split": None}
    # seed 2 §2.3: 20 frames per video
    split = labelled_split(data, cfg.seed, out_dir, 20, cfg.accelerator, POLICY, [*train_caches, *val_caches])
    n = split.train.counts()
    return {"train_ds": LabelledEffViTDataset(split.train.crops, split.train.labels, train=True, seed=cfg.seed),
            "val_ds": LabelledEffViTDataset(split.val.crops, split.val.labels, train=False, seed=cfg.seed + 1),
            "pos_weight": n["real_faces"] / n["fake_faces"],
            "summary": split.summary(), "split": split}


def fit_effvit(train_caches: Sequence[Path], val_caches: Sequence[Path], cfg: EffViTTrainConfig,
               out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
               data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``deepfake.effvit`` and export ``model.safetensors`` + ``card.json`` into ``out_dir``.

    After every epoch the full training state is written to ``out_dir/resume/``
    (:mod:`trainer.resume`, safetensors + JSON, never a pickle).

    Args:
        train_caches, val_caches: npz caches (``trainer.cache``) of disjoint sets of real videos
            (``data.source: sbi``); empty for ``folders``.
        cfg: hyper-parameters. card_info: ``training_data``, ``limitations`` … for the card.
        command: the exact command line, recorded in the card.
        resume: continue from ``out_dir/resume/`` (model, optimiser, LR schedule,
            early stopping, best epoch); ``cfg.max_epochs`` counts all epochs,
            ``cfg.max_time`` this invocation only.
        data: the YAML ``data:`` section: ``source`` (``sbi`` default, or ``folders`` with ``root``,
            ``dataset``, ``val_fraction``, ``cache_dir``, ``frames_per_video``; see the module docstring).

    Raises:
        FileNotFoundError: ``resume`` but no resume state in ``out_dir``.
        ValueError: bad ``data`` (unknown source, ``folders`` with video lists or without held-out items).

    Returns:
        Summary with validation metrics, epochs, wall time, data counts.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from engine.models.effvit import EffViT, EffViTConfig

    from .distributed import ddp_strategy
    from engine.weights import ModelCard, save_weights

    t0 = time.time()
    data = dict(data or {})
    pl.seed_everything(cfg.seed, workers=True)
    out_dir = Path(out_dir)
    src = _training_data(cfg, data, train_caches, val_caches, out_dir)
    train_ds, val_ds, split = src["train_ds"], src["val_ds"], src["split"]
    loader = lambda ds, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        ds, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed))
    model_cfg = EffViTConfig(**cfg.model)
    model = EffViT(model_cfg)
    state, wall_before = None, 0.0
    best = _BestState()
    stopper = _previous_epoch_early_stopping(cfg.patience)
    if resume:
        from .resume import load_train_state

        state = load_train_state(out_dir)
        model.load_state_dict(state.model)
        m = state.meta
        best.best, best.epoch, best.state, best.history = m["best"], m["best_epoch"], state.best_model, m["history"]
        stopper.prev, stopper.count = m["early_stopping"]["prev"], m["early_stopping"]["count"]
        wall_before = float(m.get("wall_time_s", 0.0))
    system = _system_class()(model, cfg, pos_weight=src["pos_weight"], resume_state=state)
    offset = system.epoch_offset
    if offset >= cfg.max_epochs:
        raise ValueError(f"{out_dir}: {offset} epochs already done, max_epochs is {cfg.max_epochs}")
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs - offset, max_time=cfg.max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        strategy=ddp_strategy(cfg.strategy, model), num_nodes=cfg.num_nodes, precision=cfg.precision,
        logger=CSVLogger(str(out_dir), name="logs", version=f"resume-from-{offset}" if offset else ""),
        enable_checkpointing=False,
        callbacks=[stopper, best.callback, _resume_saver(out_dir, best, stopper, t0, wall_before)],
        limit_train_batches=cfg.limit_train_batches, deterministic=False, enable_progress_bar=True,
        log_every_n_steps=1,
    )
    trainer.fit(system, loader(train_ds, True), loader(val_ds, False))
    if not trainer.is_global_zero:  # DDP: rank 0 alone exports the weights and the card
        return {}
    if best.state is not None:
        model.load_state_dict(best.state)
    wall = wall_before + time.time() - t0
    summary = {
        **src["summary"],
        "epochs_validated": len(best.history), "best_epoch": int(best.epoch),
        "val_auc_best": best.best, "wall_time_s": round(wall, 1),
        "val_per_epoch": best.history, "resumed_from_epoch": offset or None,
        "optimizer": cfg.optimizer, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "hardware": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU",
    }
    best_auc = float(best.best) if best.best is not None else float("nan")
    paper = ("Explainable Attention Based Deepfake Detector (seed 2); Coccomini et al. EfficientNet+ViT; "
             "Chefer et al. relevancy")
    if split is None:
        metrics = {"val_auc_sbi": best_auc}
        evaluation = card_info.get("evaluation", "self-blended pairs of held-out videos' faces")
        training_data = card_info.get("training_data", "")
        paper += "; Shiohara & Yamasaki 2022 (SBI) for training data"
    else:
        summary["pos_weight"] = src["pos_weight"]
        vc = split.val.counts()
        metrics = {"val_auc": best_auc}
        evaluation = card_info.get("evaluation", (
            f"frame-level ROC AUC (epoch with the best value) on the labelled held-out real/fake faces of "
            f"{split.dataset} ({split.root}): {vc['real_faces']} real / {vc['fake_faces']} fake {POLICY} faces of "
            f"{vc['real_groups']} real / {vc['fake_groups']} fake groups never used in training"))
        base = str(card_info.get("training_data", "")).strip()
        training_data = (f"{base} " if base else "") + (
            f"{split.describe()}; labelled real and fake faces (seed 2 §2.3), BCE pos_weight n_real/n_fake = "
            f"{src['pos_weight']:.4g}.")
        split.write(out_dir)
    card = ModelCard(
        detector_id="deepfake.effvit", architecture="effvit", config=dataclasses.asdict(model_cfg),
        classes=["real", "fake"], training_data=training_data, metrics=metrics, evaluation=evaluation,
        limitations=list(card_info.get("limitations", [])), sha256="", init="random (no ImageNet B0 weights reachable)",
        paper=paper, quirks=card_info.get("quirks", []), command=command,
    )
    save_weights(model.state_dict(), card, out_dir)
    return summary
