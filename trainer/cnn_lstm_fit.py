"""Training ``deepfake.cnn_lstm`` (seed 3 §3.4) on sequences of frozen ``deepfake.cnn`` ``fc1`` features.

Data, from the preprocessing cache of real videos (``mtcnn_margin40_160`` crops of
equidistant frames; the bundled run uses 64 per video):

1. **Features** (``05.lstm_features.py``): every cached crop goes through the installed
   (or configured) ``deepfake.cnn`` model, frozen, in eval mode, with the detector's own
   function :meth:`engine.detectors.cnn.CNNDetector.fc1_features` → 512-d ``fc1``.
   Self-blended fakes: for each video and blend ``k`` every crop is blended with a
   generator seeded ``[seed, video, k]``, i.e. the **same blend parameters on every
   frame** (one consistent manipulation per sequence; the mask follows each frame's
   landmarks). Features are computed once and stored in ``RUN/features.npz``
   (``engine.io.atomic_save_npz``), reused by a re-run with the same CNN weights.
2. **Sequences**: windows of ``seq_length`` (25) *consecutive cached frames*
   (start every ``window_stride`` frames); a real window reads the real features, the
   fake window with the same start reads blend ``start_index % blends_per_video``.
   Videos with fewer crops give one padded window (masked).

Training (``06.train_CNN_LSTM.py``): Nadam(0.002, β 0.9/0.999, ε 1e-8, schedule decay
0.004), categorical cross-entropy, ``EarlyStopping(val_loss, patience=10)``, weights of
the best validation-loss epoch exported. Validation = every window of the held-out
people (fixed blend 0). Held-out metrics (``07.evaluate_CNN_LSTM.py``: one sequence per
video): the first ``seq_length`` frames of each held-out video, real vs its
self-blended version, at video level; all windows at window level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .cnn_fit import BestValLoss, classifier_system, hardware, heldout_evaluation, make_trainer, stopped_by
from .labelled import load_faces


@dataclass(frozen=True)
class CNNLSTMTrainConfig:
    """Hyper-parameters of one ``deepfake.cnn_lstm`` fit (YAML ``train:``); defaults = seed 3 §3.4.

    Attributes:
        lr, betas, eps, momentum_decay: Nadam. batch_size: 32 (README ``-b 32``).
        max_epochs: upper bound (README ``-e 15``; early stopping with ``patience`` 10 decides).
        window_stride: cached frames between window starts. blends_per_video: SBI versions per
            training video (held-out videos use one). cnn_model_dir: the ``deepfake.cnn`` weights
            folder (default: the installed one, ``engine.weights.find_model_dir``).
        model: :class:`engine.models.cnn_lstm.CNNLSTMConfig` fields (``variant``, ``seq_length`` …).
    """

    lr: float = 0.002
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum_decay: float = 0.004
    batch_size: int = 32
    max_epochs: int = 100
    patience: int = 10
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: Any = 1
    torch_threads: int = 1
    limit_train_batches: float | int | None = None
    max_time: str | None = None
    window_stride: int = 3
    blends_per_video: int = 3
    feature_batch: int = 32
    cnn_model_dir: str | None = None
    model: dict[str, Any] = field(default_factory=dict)


def blended_crops(crops: np.ndarray, landmarks: np.ndarray, seed: Sequence[int]) -> np.ndarray:
    """Self-blend every crop of one video with the same blend parameters (spec §3.4 fake sequence).

    Each frame gets a fresh ``np.random.default_rng(seed)``, so every random draw of
    :func:`trainer.sbi.self_blend` (augmentation, mask deformation, blend ratio) is identical
    across frames; the mask follows each frame's own landmarks (box fallback when NaN).

    Args:
        crops: ``uint8 (M, S, S, 3)`` RGB. landmarks: ``float32 (M, 5, 2)`` crop px or NaN.
        seed: entropy for the generator, e.g. ``[run_seed, video, blend]``.

    Returns:
        ``uint8 (M, S, S, 3)`` self-blended crops.
    """
    from trainer.sbi import self_blend

    out = np.empty_like(crops)
    for i, (c, lm) in enumerate(zip(crops, landmarks)):
        out[i] = self_blend(c, lm if np.isfinite(lm).all() else None, rng=np.random.default_rng(list(seed))).image
    return out


def compute_features(cnn, caches: Sequence[Path], blends: int, seed: int, tag: str) -> dict[str, np.ndarray]:
    """``fc1`` features of the real crops and ``blends`` consistent SBI versions of each cached video.

    Returns:
        npz-ready dict: ``{tag}/{v}/real`` and ``{tag}/{v}/fake{k}`` ``float32 (M, 512)``,
        ``{tag}/{v}/pts`` ``float64 (M,)`` seconds.
    """
    out: dict[str, np.ndarray] = {}
    for v, path in enumerate(caches):
        faces = load_faces([path])
        out[f"{tag}/{v}/real"] = cnn.fc1_features(faces["crops"])[0]
        out[f"{tag}/{v}/pts"] = faces["pts"]
        for k in range(blends):
            fake = blended_crops(faces["crops"], faces["landmarks"], [seed, v, k])
            out[f"{tag}/{v}/fake{k}"] = cnn.fc1_features(fake)[0]
    return out


class FeatureWindows(torch.utils.data.Dataset):
    """Windows of consecutive per-frame features: item = ``(x float32 (L, F), length int64, label int64)``.

    Args:
        feats: the dict of :func:`compute_features`. tag: ``"train"`` / ``"val"``.
        n_videos: videos under ``tag``. seq_length: L. stride: frames between window starts.
        blends: fake versions to cycle through (window j reads blend ``j % blends``).
        first_only: one window per video (start 0), as the seed's evaluation.
    """

    def __init__(self, feats: dict[str, np.ndarray], tag: str, n_videos: int, seq_length: int, stride: int,
                 blends: int, first_only: bool = False):
        self.feats, self.L = feats, seq_length
        self.items: list[tuple[str, int, int, int, int]] = []  # (key, start, length, label, video)
        for v in range(n_videos):
            m = len(feats[f"{tag}/{v}/real"])
            if m == 0:
                continue
            starts = [0] if (first_only or m <= seq_length) else list(range(0, m - seq_length + 1, stride))
            for j, s in enumerate(starts):
                n = min(seq_length, m - s)
                self.items.append((f"{tag}/{v}/real", s, n, 0, v))
                self.items.append((f"{tag}/{v}/fake{j % blends}", s, n, 1, v))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        key, s, n, label, _ = self.items[i]
        x = np.zeros((self.L, self.feats[key].shape[1]), np.float32)
        x[:n] = self.feats[key][s : s + n]
        return torch.from_numpy(x), torch.tensor(n, dtype=torch.int64), torch.tensor(label, dtype=torch.int64)

    @property
    def videos(self) -> np.ndarray:
        """``int64 (N,)`` held-out video of each item."""
        return np.array([it[4] for it in self.items], np.int64)


def fit_cnn_lstm(train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
                 out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
                 config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``deepfake.cnn_lstm`` (spec §3.4); writes ``model.safetensors``, ``card.json``, ``features.npz``.

    Raises:
        ValueError: ``resume`` (not supported) or bad config.
        engine.weights.WeightsError: the ``deepfake.cnn`` weights are missing or fail their check.

    Returns:
        JSON-able summary (counts, epochs, wall time, hardware, held-out metrics, CNN weights hash).
    """
    import lightning.pytorch as pl

    from engine.detectors.cnn import CNNDetector
    from engine.io import atomic_save_npz, load_npz
    from engine.models.cnn_lstm import CNNLSTM, CNNLSTMConfig
    from engine.weights import ModelCard, save_weights

    from .metrics import binary_metrics

    if resume:
        raise ValueError("deepfake.cnn_lstm does not support --resume; re-run the fit")
    t0 = time.time()
    cfg = CNNLSTMTrainConfig(seed=seed, **train)
    torch.set_num_threads(cfg.torch_threads)
    pl.seed_everything(cfg.seed, workers=True)
    out_dir = Path(out_dir)
    cnn = CNNDetector(device="cpu", model_dir=cfg.cnn_model_dir, batch_size=cfg.feature_batch, explain=False)
    model_cfg = CNNLSTMConfig(**{**cfg.model, "cnn_sha256": cnn.card.sha256})

    feat_path = out_dir / "features.npz"
    feats: dict[str, np.ndarray] | None = None
    if feat_path.exists():
        feats = load_npz(feat_path)
        if str(feats.get("cnn_sha256", np.array("")).item()) != cnn.card.sha256 or \
                int(feats.get("seed", np.array(-1)).item()) != cfg.seed:
            feats = None
    reused = feats is not None
    if feats is None:
        feats = {**compute_features(cnn, train_caches, cfg.blends_per_video, cfg.seed, "train"),
                 **compute_features(cnn, val_caches, 1, cfg.seed + 1, "val"),
                 "cnn_sha256": np.array(cnn.card.sha256), "seed": np.array(cfg.seed)}
        atomic_save_npz(feat_path, feats)
    t_feat = time.time() - t0

    L = model_cfg.seq_length
    train_ds = FeatureWindows(feats, "train", len(train_caches), L, cfg.window_stride, cfg.blends_per_video)
    val_ds = FeatureWindows(feats, "val", len(val_caches), L, cfg.window_stride, 1)
    first_ds = FeatureWindows(feats, "val", len(val_caches), L, cfg.window_stride, 1, first_only=True)
    loader = lambda ds, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        ds, batch_size=cfg.batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(cfg.seed))
    model = CNNLSTM(model_cfg)
    best = BestValLoss()
    trainer = make_trainer(cfg, out_dir, best)
    system = classifier_system(model, cfg.lr, cfg.betas, cfg.eps, cfg.momentum_decay,
                               forward=lambda m, b: (m(b[0], b[1]), b[2]))
    trainer.fit(system, loader(train_ds, True), loader(val_ds, False))
    if best.state is not None:
        model.load_state_dict(best.state)

    @torch.no_grad()
    def scores(ds):
        model.eval()
        ps, ys = [], []
        for x, n, y in loader(ds, False):
            ps.append(torch.softmax(model(x, n), 1)[:, 1].numpy())
            ys.append(y.numpy())
        return np.concatenate(ps), np.concatenate(ys)

    names = [Path(c).name.split(".")[0] for c in val_caches]
    p1, y1 = scores(first_ds)
    ev = heldout_evaluation(p1, y1, first_ds.videos, names, out_dir)
    pw, yw = scores(val_ds)
    wm = binary_metrics(yw, pw, 0.5)
    vm = ev["video"]
    wall = time.time() - t0
    summary = {
        "train_videos": len(train_caches), "val_videos": len(val_caches),
        "train_windows": len(train_ds), "val_windows": len(val_ds), "seq_length": L,
        "window_stride_cached_frames": cfg.window_stride, "blends_per_video": cfg.blends_per_video,
        "epochs_validated": len(best.history), "best_epoch": int(best.epoch), "val_loss_best": best.value,
        "val_per_epoch": best.history, "stopped_by": stopped_by(trainer, cfg.max_epochs),
        "feature_time_s": round(t_feat, 1), "features_reused": reused,
        "wall_time_s": round(wall, 1), "hardware": hardware(), "variant": model_cfg.variant, "lr": cfg.lr,
        "cnn_weights_sha256": cnn.card.sha256, "cnn_model_dir": str(cnn.model_dir),
        "heldout_video": vm, "heldout_window": wm,
        "parameters": {"total": sum(q.numel() for q in model.parameters())},
    }
    card = ModelCard(
        detector_id="deepfake.cnn_lstm", architecture="cnn_lstm", config=model_cfg.to_dict(), classes=["real", "fake"],
        training_data=card_info.get("training_data", ""),
        metrics={"heldout_video_auc": vm["roc_auc"], "heldout_video_accuracy": vm["accuracy"],
                 "heldout_video_eer": vm["eer"], "heldout_window_auc": wm["roc_auc"],
                 "heldout_window_accuracy": wm["accuracy"], "val_loss_best": best.value},
        evaluation=card_info.get("evaluation", (
            f"{len(val_caches)} held-out people: per video the sequence of its first {L} cached frames, real vs the "
            f"same frames self-blended with one fixed blend (video n={vm['n']}: {vm['n_real']} real / "
            f"{vm['n_fake']} self-blended); window level: every {cfg.window_stride}-frame-stride window of "
            f"those videos (n={wm['n']}); threshold 0.5")),
        limitations=list(card_info.get("limitations", [])), sha256="",
        init=f"random (torch default LSTM/Linear init); per-frame features from the frozen deepfake.cnn "
             f"{cnn.card.sha256}",
        paper="Kumar, Bhavsar, Verma: Detecting Deepfakes with Metric Learning (IWBF 2020), CNN-LSTM of "
              "05-07 *_CNN_LSTM.py (seed 3 §3.4); Shiohara & Yamasaki 2022 (SBI) for the training fakes",
        quirks=list(card_info.get("quirks", [])), command=command,
    )
    save_weights(model.state_dict(), card, out_dir)
    return summary
