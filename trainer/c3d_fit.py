"""Training ``deepfake.c3d`` (seed 3, spec §3.3) on clips of real faces and self-blended clips, with Lightning.

Data: the ``mtcnn_margin40_160`` face crops of the preprocessing cache
(:mod:`trainer.cache`, e.g. 64 equidistant frames per video). A training clip is
``T`` cached frames taken every ``frame_step``-th crop (default 2: 64 cached
frames -> the stride of the 32 frames the detector samples per video, so train
and analysis clips cover the same time span); every start position is a window
(overlapping windows). Each window gives one real clip (label 0) and one
self-blended clip (label 1, :func:`trainer.sbi.self_blend`), so the classes are
balanced. A self-blended clip uses ONE blend for all its frames: every frame is
blended with a generator built from the same seed, so colour/frequency
transforms, source shift, mask deformation and blend ratio agree across the
clip, while the mask follows each frame's own MTCNN landmarks.

Preprocessing is :func:`engine.models.c3d.preprocess_clips` (the detector's
function): resize to 171x128, random 112 crop + clip flip for training, centre
crop for validation, /255.

Held-out evaluation (people never seen in training) builds the clips the way
the detector does (non-overlapping clips of ``T`` frames, a short tail padded by
repeating its last frame), once from the even and once from the odd cached
frames; a video's score is the mean clip P(fake). Real videos are scored as they
are and each held-out video also as ``val_fakes_per_video`` self-blended copies.

Seed settings kept (defaults of :class:`C3DTrainConfig`): SGD lr 0.005,
momentum 0.9, Nesterov; categorical cross-entropy (on logits); seed README
``-e 15``. Batch size is independent of the clip length (the seed's T = batch
size [quirk]). The exported weights are the inner ``nn.Module``'s state dict as
safetensors (never a Lightning checkpoint).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

POLICY = "mtcnn_margin40_160"


@dataclass(frozen=True)
class C3DTrainConfig:
    """Hyper-parameters of one ``deepfake.c3d`` fit (YAML ``train:`` section).

    Attributes:
        optimizer: ``"sgd"`` (seed 3 §3.3) or ``"adam"`` (a documented departure for short runs from scratch).
        lr, momentum, nesterov, weight_decay: seed SGD: 0.005, 0.9, Nesterov, no decay (momentum and
            Nesterov apply to SGD only).
        init: ``"glorot"`` (Keras default, the seed's) or ``"kaiming"`` (see ``C3D.reset_parameters``).
        paired_batches: each batch holds real windows together with their self-blended versions
            (as the SBI paper trains); else real and fake items are shuffled independently.
        batch_size: clips per batch (seed: 32, equal to its clip length [quirk]).
        max_epochs: epochs (seed README 15); ``limit_train_batches`` caps an epoch.
        max_time: ``"DD:HH:MM:SS"`` wall-clock budget of the training loop (Lightning stops gracefully).
        frame_step: cached frames between consecutive clip frames (2 with a 64-frame cache).
        val_fakes_per_video: self-blended versions of each held-out video during training
            (model selection) and, with other blend seeds, in the final held-out evaluation.
        num_threads: ``torch.set_num_threads`` for the run (1 on the shared CPU).
        model: :class:`engine.models.c3d.C3DConfig` fields (``clip_len``, ``width`` ...).
    """

    optimizer: str = "sgd"
    lr: float = 0.005
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    init: str = "glorot"
    paired_batches: bool = True
    batch_size: int = 16
    max_epochs: int = 15
    max_time: str | None = None
    frame_step: int = 2
    val_fakes_per_video: int = 1
    limit_train_batches: float | int | None = None
    accelerator: str = "auto"
    devices: Any = 1
    precision: str = "32-true"
    num_workers: int = 0
    num_threads: int = 1
    seed: int = 0
    model: dict[str, Any] = field(default_factory=dict)


# ============================================================================ clips
def clip_windows(n: int, clip_len: int, step: int = 1, overlapping: bool = True) -> list[np.ndarray]:
    """Index windows of ``clip_len`` frames over ``n`` frames.

    Args:
        n: number of frames (face crops of one track). clip_len: T.
        step: index stride inside a window (frames between consecutive clip frames).
        overlapping: every start position ``0, 1, ...`` (training windows); else the
            frames are cut into consecutive non-overlapping chunks (``step`` must be 1;
            the detector's and the held-out evaluation's rule).

    Returns:
        ``int64 (T,)`` index arrays. A window that would run past the last frame is
        padded by repeating the last frame: non-overlapping mode pads the tail
        chunk; overlapping mode returns one padded window when ``n`` is shorter
        than a window. ``[]`` when ``n == 0``.
    """
    if n <= 0:
        return []
    span = step * (clip_len - 1) + 1
    if overlapping:
        if n < span:
            return [np.minimum(np.arange(clip_len) * step, n - 1).astype(np.int64)]
        return [s + np.arange(clip_len, dtype=np.int64) * step for s in range(n - span + 1)]
    if step != 1:
        raise ValueError("non-overlapping chunks take consecutive frames (step 1); subsample the frames first")
    return [np.minimum(np.arange(s, s + clip_len), n - 1).astype(np.int64) for s in range(0, n, clip_len)]


def blend_clip(frames: np.ndarray, landmarks: np.ndarray, seed: Sequence[int] | int) -> np.ndarray:
    """One self-blended clip: every frame blended with a generator from the same ``seed``.

    Args:
        frames: ``uint8 (T, H, W, 3)`` RGB real face crops. landmarks: ``float32 (T, 5, 2)``
            crop px (NaN rows allowed: that frame uses the default face box).
        seed: seed of ``np.random.default_rng``, rebuilt for every frame so the blend
            parameters agree across the clip.

    Returns:
        ``uint8 (T, H, W, 3)`` self-blended frames (label 1).
    """
    from trainer.sbi import self_blend

    out = np.empty_like(frames)
    for j in range(len(frames)):
        lm = landmarks[j]
        lm = lm if np.isfinite(lm).all() else None
        out[j] = self_blend(frames[j], lm, rng=np.random.default_rng(seed)).image
    return out


@dataclass
class VideoFaces:
    """Cached face crops of one video: ``crops uint8 (M, 160, 160, 3)``, ``landmarks float32 (M, 5, 2)``."""

    name: str
    crops: np.ndarray
    landmarks: np.ndarray


def load_videos(caches: Sequence[Path]) -> list[VideoFaces]:
    """The ``mtcnn_margin40_160`` crops and landmarks of each cache (videos without a face are skipped)."""
    from engine.io import load_npz

    out = []
    for path in caches:
        a = load_npz(path)
        crops = a[f"crops/{POLICY}"]
        if len(crops):
            out.append(VideoFaces(Path(path).name, crops, a[f"landmarks/{POLICY}"].astype(np.float32)))
    if not out:
        raise ValueError("no cached video has a face track")
    return out


class SBIClipDataset(torch.utils.data.Dataset):
    """Training clips: item ``2w`` is window ``w`` real, ``2w + 1`` the same window self-blended.

    Items are ``(float32 (3, T, 112, 112), int64 label)`` from
    :func:`engine.models.c3d.preprocess_clips` with ``train=True`` (random crop + flip).
    Blends and crops are redrawn every epoch (``self.epoch``) and reproducible from ``seed``.
    """

    def __init__(self, videos: list[VideoFaces], clip_len: int, step: int, seed: int = 0):
        self.videos, self.seed, self.epoch = videos, seed, 0
        self.windows = [(v, w) for v, vid in enumerate(videos)
                        for w in clip_windows(len(vid.crops), clip_len, step, overlapping=True)]

    def __len__(self) -> int:
        return 2 * len(self.windows)

    def __getitem__(self, i: int):
        from engine.models.c3d import preprocess_clips

        (v, idx), fake = self.windows[i // 2], i % 2
        vid = self.videos[v]
        frames = vid.crops[idx]
        if fake:
            frames = blend_clip(frames, vid.landmarks[idx], [self.seed, self.epoch, i])
        x = preprocess_clips(frames[None], train=True, rng=np.random.default_rng([self.seed, self.epoch, i, 1]))[0]
        return x, torch.tensor(fake, dtype=torch.int64)


@dataclass
class EvalClips:
    """Held-out clips, built like the detector's (uint8, preprocessed on use).

    Attributes:
        clips: ``uint8 (K, T, 160, 160, 3)``. labels: ``int64 (K,)`` 1 = fake.
        video: ``str (K,)`` evaluation video id (``<cache>:real`` or ``<cache>:sbi<k>``).
    """

    clips: np.ndarray
    labels: np.ndarray
    video: np.ndarray


def eval_clips(videos: list[VideoFaces], clip_len: int, step: int, fakes_per_video: int, seed: int) -> EvalClips:
    """Non-overlapping clips of each held-out video (one set per frame phase ``0..step-1``), real and blended.

    Each fake video ``k`` blends every clip with its own seed ``[seed, video, clip, k]``.
    """
    clips, labels, names = [], [], []
    for v, vid in enumerate(videos):
        real: list[tuple[np.ndarray, np.ndarray]] = []
        for phase in range(step):
            sub = np.arange(phase, len(vid.crops), step)
            real += [(vid.crops[sub[w]], vid.landmarks[sub[w]]) for w in clip_windows(len(sub), clip_len, 1, False)]
        for frames, _ in real:
            clips.append(frames)
            labels.append(0)
            names.append(f"{vid.name}:real")
        for k in range(fakes_per_video):
            for c, (frames, lms) in enumerate(real):
                clips.append(blend_clip(frames, lms, [seed, v, c, k]))
                labels.append(1)
                names.append(f"{vid.name}:sbi{k}")
    return EvalClips(np.stack(clips), np.asarray(labels, np.int64), np.asarray(names))


@torch.no_grad()
def score_clips(model: torch.nn.Module, clips: np.ndarray, batch_size: int = 8, device: str = "cpu") -> np.ndarray:
    """Softmax P(fake) of ``uint8 (K, T, H, W, 3)`` clips (eval preprocessing), ``float64 (K,)``."""
    from engine.models.c3d import preprocess_clips

    was = model.training
    model.eval()
    out = []
    for s in range(0, len(clips), batch_size):
        x = preprocess_clips(clips[s : s + batch_size]).to(device)
        out.append(torch.softmax(model(x).float(), dim=1)[:, 1].cpu().numpy())
    model.train(was)
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def video_level(ev: EvalClips, scores: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(video ids, labels, video P(fake) = mean of its clips, clip counts)`` in first-seen order."""
    names = list(dict.fromkeys(ev.video.tolist()))
    y = np.array([int(ev.labels[ev.video == n][0]) for n in names], np.int64)
    s = np.array([float(scores[ev.video == n].mean()) for n in names])
    k = np.array([int((ev.video == n).sum()) for n in names], np.int64)
    return names, y, s, k


# ============================================================================ Lightning
def _system_class():
    import lightning.pytorch as pl

    class C3DSystem(pl.LightningModule):
        """Lightning system around the plain :class:`engine.models.c3d.C3D` (STYLE.md)."""

        def __init__(self, model: torch.nn.Module, cfg: C3DTrainConfig, val: EvalClips):
            super().__init__()
            self.model, self.cfg, self.val = model, cfg, val
            self.loss = torch.nn.CrossEntropyLoss()
            self.val_scores: list[torch.Tensor] = []
            self.val_losses: list[torch.Tensor] = []
            self.running = [0.0, 0]  # this epoch's training loss sum and sample count (for the history)

        def training_step(self, batch, _):
            x, y = batch
            logits = self.model(x)
            loss = self.loss(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False)
            self.log("train_acc", acc, on_epoch=True, on_step=False)
            self.running[0] += float(loss.detach()) * len(y)
            self.running[1] += len(y)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            logits = self.model(x).float()
            self.val_losses.append(torch.nn.functional.cross_entropy(logits, y, reduction="none").cpu())
            self.val_scores.append(torch.softmax(logits, 1)[:, 1].cpu())

        def on_validation_epoch_end(self):
            from sklearn.metrics import roc_auc_score

            s = torch.cat(self.val_scores).numpy().astype(np.float64)
            loss = float(torch.cat(self.val_losses).mean())
            self.val_scores.clear(), self.val_losses.clear()
            self.log("val_loss", loss, prog_bar=True)
            if len(s) == len(self.val.labels):  # not the sanity check's partial pass
                self.log("val_clip_auc", float(roc_auc_score(self.val.labels, s)), prog_bar=True)
                _, vy, vs, _ = video_level(self.val, s)
                self.log("val_video_auc", float(roc_auc_score(vy, vs)))
                self.log("val_acc", float(((s > 0.5) == self.val.labels).mean()))

        def on_train_epoch_start(self):
            loader = self.trainer.train_dataloader
            loader.dataset.epoch = self.current_epoch
            if isinstance(loader.sampler, PairSampler):
                loader.sampler.set_epoch(self.current_epoch)
            self.running = [0.0, 0]

        def configure_optimizers(self):
            c = self.cfg
            if c.optimizer == "sgd":
                return torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                       weight_decay=c.weight_decay)
            if c.optimizer == "adam":
                return torch.optim.Adam(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {c.optimizer!r}")

    return C3DSystem


class PairSampler(torch.utils.data.Sampler):
    """Shuffled windows, each as two consecutive items: real ``2w`` then self-blended ``2w + 1``.

    With an even batch size every batch holds whole real/fake pairs. The order is
    redrawn each epoch (``set_epoch``) from ``seed``.
    """

    def __init__(self, n_windows: int, seed: int = 0):
        self.n, self.seed, self.epoch = n_windows, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 2 * self.n

    def __iter__(self):
        perm = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.n)
        for w in perm.tolist():
            yield 2 * w
            yield 2 * w + 1


class _ValClipDataset(torch.utils.data.Dataset):
    def __init__(self, ev: EvalClips):
        self.ev = ev

    def __len__(self) -> int:
        return len(self.ev.labels)

    def __getitem__(self, i: int):
        from engine.models.c3d import preprocess_clips

        return preprocess_clips(self.ev.clips[i : i + 1])[0], torch.tensor(int(self.ev.labels[i]))


class _BestState:
    """Keeps the state dict of the epoch with the best held-out clip AUC (ties: lower val loss), in memory."""

    def __init__(self):
        import lightning.pytorch as pl

        outer = self

        class Cb(pl.Callback):
            def on_validation_end(self, trainer, module):
                if trainer.sanity_checking:
                    return
                m = trainer.callback_metrics
                row = {"epoch": int(trainer.current_epoch),
                       **{k: float(m[k]) for k in ("val_clip_auc", "val_video_auc", "val_loss", "val_acc") if k in m}}
                if module.running[1]:
                    row["train_loss"] = module.running[0] / module.running[1]
                outer.history.append(row)
                print(f"[c3d] epoch {row['epoch']}: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items()
                                                           if k != "epoch"), flush=True)
                key = (row.get("val_clip_auc", float("nan")), -row.get("val_loss", float("inf")))
                if outer.state is None or (np.isfinite(key[0]) and key > outer.key):
                    outer.key, outer.epoch = key, row["epoch"]
                    outer.state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

        self.key, self.epoch, self.state, self.history = (float("-inf"), float("-inf")), -1, None, []
        self.callback = Cb()


# ============================================================================ entry point
def fit_c3d(*, train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
            out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
            config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``deepfake.c3d`` and write the run folder (``trainer.fit.FITTERS`` entry point).

    Writes ``model.safetensors`` + ``card.json`` (:func:`engine.weights.save_weights`),
    ``logs/metrics.csv`` (Lightning CSVLogger), ``roc.png`` and ``val_results.{csv,json}``
    (held-out videos, :mod:`trainer.metrics`) into ``out_dir``.

    Args:
        train_caches, val_caches: :mod:`trainer.cache` npz files of disjoint people.
        train: YAML ``train:`` (:class:`C3DTrainConfig` fields). seed: run seed.
        out_dir: run folder. card_info: YAML ``card:`` + ``training_data``.
        command: exact command line (into the card). resume: not supported.
        config: the whole YAML (unused; recorded by ``run_fit``).

    Returns:
        JSON-ready summary: counts, epochs, best epoch, wall time, hardware, held-out
        video-level and clip-level metrics.

    Raises:
        ValueError: ``resume`` (C3D runs are short; rerun instead) or no faces in the caches.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from engine.models.c3d import C3D, C3DConfig
    from engine.weights import ModelCard, save_weights
    from trainer.metrics import VideoResult, binary_metrics, roc_png, write_video_results

    if resume:
        raise ValueError("deepfake.c3d has no resumable state; rerun the fit (runs are short)")
    t0 = time.time()
    cfg = C3DTrainConfig(**{**train, "seed": seed})
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    pl.seed_everything(cfg.seed, workers=True)
    model_cfg = C3DConfig(**cfg.model)
    T = model_cfg.clip_len
    tr_videos, va_videos = load_videos(train_caches), load_videos(val_caches)
    train_ds = SBIClipDataset(tr_videos, T, cfg.frame_step, seed=cfg.seed)
    val = eval_clips(va_videos, T, cfg.frame_step, cfg.val_fakes_per_video, seed=cfg.seed + 1)
    model = C3D(model_cfg)
    model.reset_parameters(cfg.init)
    if cfg.paired_batches and cfg.batch_size % 2:
        raise ValueError(f"paired_batches needs an even batch_size, got {cfg.batch_size}")
    out_dir = Path(out_dir)
    best = _BestState()
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs, max_time=cfg.max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        precision=cfg.precision, logger=CSVLogger(str(out_dir), name="logs", version="", flush_logs_every_n_steps=1),
        enable_checkpointing=False, callbacks=[best.callback], limit_train_batches=cfg.limit_train_batches,
        num_sanity_val_steps=0, deterministic=False, enable_progress_bar=False, log_every_n_steps=1,
    )
    loader_args = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers)
    if cfg.paired_batches:
        train_loader = torch.utils.data.DataLoader(
            train_ds, sampler=PairSampler(len(train_ds.windows), cfg.seed), **loader_args)
    else:
        train_loader = torch.utils.data.DataLoader(
            train_ds, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed), **loader_args)
    trainer.fit(_system_class()(model, cfg, val), train_loader,
                torch.utils.data.DataLoader(_ValClipDataset(val), shuffle=False, **loader_args))
    train_wall = time.time() - t0
    if best.state is not None:
        model.load_state_dict(best.state)
    model.cpu().eval()

    # held-out evaluation with the exported weights: new blend seeds, the detector's clip rule
    test = eval_clips(va_videos, T, cfg.frame_step, max(1, cfg.val_fakes_per_video), seed=cfg.seed + 1000)
    clip_s = score_clips(model, test.clips, batch_size=cfg.batch_size)
    names, vy, vs, counts = video_level(test, clip_s)
    video_metrics = binary_metrics(vy, vs, 0.5)
    clip_metrics = binary_metrics(test.labels, clip_s, 0.5)
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json", [
        VideoResult(video=n, label=int(y), score=float(s), pred=int(s > 0.5), group="sbi" if y else "real",
                    n_frames=int(k) * T) for n, y, s, k in zip(names, vy, vs, counts)])
    roc_png(out_dir / "roc.png", {"clips": (test.labels, clip_s), "videos": (vy, vs)},
            title="deepfake.c3d held-out ROC (self-blended vs real)")
    n_real_v, n_fake_v = int((vy == 0).sum()), int((vy == 1).sum())
    evaluation = (
        f"{len(va_videos)} held-out real videos (people not in training): each scored as it is and as "
        f"{n_fake_v // max(1, len(va_videos))} self-blended cop{'y' if n_fake_v == len(va_videos) else 'ies'} "
        f"({n_real_v} real vs {n_fake_v} fake videos; {int((test.labels == 0).sum())} real vs "
        f"{int((test.labels == 1).sum())} fake clips of {T} frames, every {cfg.frame_step}nd cached frame, "
        "non-overlapping as in analysis). Video score = mean clip P(fake), threshold 0.5. The fakes use other "
        "blend seeds than the ones used to pick the best epoch; the real clips are the same."
    )
    metrics = {"val_video_auc": video_metrics["roc_auc"], "val_video_accuracy": video_metrics["accuracy"],
               "val_video_eer": video_metrics["eer"], "val_clip_auc": clip_metrics["roc_auc"],
               "val_clip_accuracy": clip_metrics["accuracy"], "val_clip_eer": clip_metrics["eer"]}
    card = ModelCard(
        detector_id="deepfake.c3d", architecture="c3d", config=dataclasses.asdict(model_cfg),
        classes=["real", "fake"], training_data=card_info.get("training_data", ""),
        metrics={k: float(v) for k, v in metrics.items() if v is not None}, evaluation=evaluation,
        limitations=list(card_info.get("limitations", [])), sha256="",
        init=("random: Glorot-uniform kernels, zero biases (Keras defaults, as the seed)" if cfg.init == "glorot" else
              "random: He-normal (fan-in, ReLU) kernels, zero biases") + "; no pretrained C3D weights",
        paper="Seed 3 (arXiv:2003.08645 code, 03.train_C3D.py / 04.evaluate_C3D.py); Tran et al., C3D, ICCV 2015; "
              "Shiohara & Yamasaki 2022 (SBI) for the training fakes",
        quirks=list(card_info.get("quirks", [])), command=command,
    )
    save_weights(model.state_dict(), card, out_dir)
    hardware = torch.cuda.get_device_name(0) if torch.cuda.is_available() and cfg.accelerator != "cpu" else \
        f"CPU, {torch.get_num_threads()} torch thread(s)"
    return {
        "detector": "deepfake.c3d",
        "train_videos": len(train_caches), "val_videos": len(val_caches),
        "train_windows": len(train_ds.windows), "train_clips_per_epoch": len(train_ds),
        "clip_len": T, "frame_step": cfg.frame_step, "width": model_cfg.width,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "epochs_validated": len(best.history), "best_epoch": int(best.epoch),
        "batch_size": cfg.batch_size, "optimizer": cfg.optimizer, "lr": cfg.lr, "init": cfg.init,
        "paired_batches": cfg.paired_batches, "limit_train_batches": cfg.limit_train_batches,
        "val_per_epoch": best.history,
        "heldout_video_metrics": video_metrics, "heldout_clip_metrics": clip_metrics,
        "train_wall_time_s": round(train_wall, 1), "wall_time_s": round(time.time() - t0, 1),
        "hardware": hardware,
    }
