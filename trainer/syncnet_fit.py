"""Self-supervised SyncNet training on real talking footage (spec §5.2; ``forensic-train fit``, detector ``syncnet``).

The pretrained ``syncnet_v2.model`` of seed 5 is not reachable, so SyncNet is
trained here from random initialisation with the only supervision real video
offers for free: in real footage the audio is in sync with the lips.

**Samples.** A *segment* is ``L`` consecutive lip windows of one video (video
frames ``[f0, f0+L+4)`` at 25 fps, ``tmc_shifted1p4_224`` face crops resized to
``lip_size``) and the ``L + 2R`` audio windows (MFCC columns ``[4p, 4p+20)``) of
video frames ``p = f0-R … f0+L+R-1``. Lip window ``i`` is in sync with audio
window ``i + R``; the other ``L + 2R - 1`` audio windows of the segment are the
same voice shifted by ``-R-i … L+R-1-i`` frames (≠ 0), i.e. hard negatives from
the same person, speech and recording. One more negative is the zero vector,
because :func:`calc_pdist` pads the audio with zero vectors beyond the clip:
the in-sync audio must be closer than "no audio" as well.

**Loss (default ``loss: segment``, multi-way matching on the clip statistic).**
For offsets ``d = -R … R`` the segment's mean distance ``mean_i ‖lip_i − audio_{i+d}‖``
(SyncNet's L2 distance; the ``mdist`` that :func:`engine.features.avsync.sync_offsets`
takes the argmin of) is z-scored over the offsets, and a softmax over
``-scale × z`` (plus the zero-vector candidate, the padding of ``calc_pdist``) is
trained with cross-entropy towards ``d = 0``. Averaging over the segment before
the softmax lets weak per-window evidence add up. ``loss: window`` (a softmax per
lip window over the segment's audio windows, Chung & Zisserman 2019 "perfect
match" style) stayed at chance in the CPU budget: with raw ``-distance`` the
embeddings collapsed to one point, with z-scored distances it did not move
either (runs 1–3, see the card's quirks).

**Augmentation.** Per segment: random translation/scale of the crops (same for
all frames, plus ±1 px per-frame jitter mimicking tracking jitter), horizontal
flip, brightness/contrast/saturation jitter, occasional grey; audio: a random
log-energy offset (gain) on c0 and small Gaussian noise on the MFCC.

**Validation (held-out people only).** Offsets are recovered from shifted
audio: for chunks of held-out clips and true shifts ``s`` in ``[-S, S]``
frames (audio delayed by ``s``; expected offset ``-s``, see the sign convention
in :mod:`engine.features.avsync`), the fraction with the argmin within ±1 frame
(``val_acc_pm1``, model selection) and exact; plus the measured offset of each
unshifted clip. The final held-out evaluation re-runs the engine's
:func:`sync_offsets` end to end on waveforms shifted in numpy.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from engine.features.avsync import (
    MFCC_PER_FRAME,
    VSHIFT,
    calc_pdist,
    lip_frames,
    mfcc_16k,
    shift_audio,
    sync_offsets,
)


@dataclass
class SyncNetTrainConfig:
    """Hyper-parameters of :func:`fit_syncnet` (YAML ``train:``).

    Attributes:
        lip_size: lip CNN input side, pixels (spec 224; 112 for the CPU run).
        emb_dim: embedding size (spec 1024).
        region: ``"face"`` (spec: whole crop) or ``"mouth"`` (lower-face square), ``SyncNetConfig.region``.
        width: channel multiplier of both CNNs (``SyncNetConfig.width``; spec 1.0).
        normalize: unit-length embeddings (``SyncNetConfig.normalize``; spec False).
        segment_windows: ``L`` lip windows per segment.
        neg_range: ``R`` extra audio windows on each side of a segment.
        segments_per_batch: segments per optimiser step (different videos when possible).
        steps_per_epoch: optimiser steps between validations.
        max_epochs, max_time: stop after this many epochs or this wall time ("DD:HH:MM:SS").
        lr, weight_decay: Adam(W) settings. warmup_steps: linear LR warm-up.
        augment: colour / geometry / MFCC augmentation.
        loss: ``"segment"`` (softmax over offsets of the segment's mean distance, :func:`segment_offset_logits`),
            ``"window"`` (softmax per lip window over the segment's audio windows, :func:`segment_logits`) or
            ``"infonce"`` (softmax per lip window over ``-logit_scale × ½‖lip − audio‖²`` of the segment's
            audio windows and every other segment's in the batch, :func:`infonce_logits`; with
            ``normalize`` this is InfoNCE on cosine similarity).
        zero_candidate: add the zero vector (calc_pdist's padding) as one more negative per lip window.
        standardize, logit_scale: softmax over ``-logit_scale × z-scored distances`` (per lip window over its
            candidates) instead of raw ``-distance``: with raw distances the first run collapsed every
            embedding to one point (loss = ln(candidates), chance) within ~100 steps. With the zero
            candidate inside the z-score statistics the second run stayed at chance too (the outlier
            squeezed the real candidates together), so the statistics use the audio candidates only.
        val_chunk_frames: length of validation chunks (frames). val_max_frames: frames of each held-out
            clip used for per-epoch validation. val_max_shift: largest true shift (frames).
        eval_shifts: true audio delays (frames) of the final end-to-end held-out evaluation.
        eval_max_frames: frames of each held-out clip used there (from the start).
        min_level_db, min_range_db: speech-like audio filter of :func:`load_av_clips`.
        init_from: model folder (``card.json`` + ``model.safetensors`` of an earlier run with the same
            config) to continue training from; None = random init.
        num_threads: torch CPU threads. accelerator, devices, precision: Lightning.
        seed: set from the YAML's top-level ``seed``.
    """

    lip_size: int = 112
    emb_dim: int = 1024
    region: str = "mouth"
    width: float = 1.0
    normalize: bool = False
    segment_windows: int = 12
    neg_range: int = 8
    segments_per_batch: int = 4
    steps_per_epoch: int = 100
    max_epochs: int = 1000
    max_time: str | None = "00:00:35:00"
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    augment: bool = True
    loss: str = "segment"
    zero_candidate: bool = True
    standardize: bool = True
    logit_scale: float = 2.0
    val_chunk_frames: int = 50
    val_max_frames: int = 150
    val_max_shift: int = 10
    eval_shifts: list[int] = field(default_factory=lambda: [-10, -5, -2, 0, 2, 5, 10])
    eval_max_frames: int = 250
    min_level_db: float = -45.0
    min_range_db: float = 10.0
    init_from: str | None = None
    num_threads: int = 1
    accelerator: str = "cpu"
    devices: int = 1
    precision: str = "32-true"
    seed: int = 0


@dataclass
class AVClip:
    """One cached talking clip ready for training: lips at ``lip_size`` and its MFCC."""

    name: str
    lips: np.ndarray  # uint8 (N, S, S, 3) BGR
    mfcc: np.ndarray  # float32 (13, T)
    audio_16k: np.ndarray  # float32 (n,)
    faces_rgb: np.ndarray | None = None  # uint8 (N, 224, 224, 3) RGB (held-out clips only)

    @property
    def n_windows(self) -> int:
        """Lip windows with complete audio: ``min(N - 4, (T - 20) // 4 + 1)``."""
        return int(min(self.lips.shape[0] - 4, (self.mfcc.shape[1] - 20) // MFCC_PER_FRAME + 1))


def audio_dynamics_db(wave: np.ndarray, sr: int = 16000) -> tuple[float, float]:
    """``(p90, p90 - p10)`` of the 0.1 s frame RMS level in dBFS: loudness and dynamic range.

    Speech alternates words and pauses (range ≳ 10 dB); digital silence gives
    ``(-180, 0)``, steady music or noise a small range.
    """
    hop = sr // 10
    n = wave.shape[0] // hop
    if n < 2:
        return -180.0, 0.0
    rms = np.sqrt((wave[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1))
    db = 20 * np.log10(rms + 1e-9)
    p10, p90 = np.percentile(db, [10, 90])
    return float(p90), float(p90 - p10)


def load_av_clips(caches: Sequence[Path], lip_size: int, keep_rgb: bool = False, min_windows: int = 1,
                  region: str = "face", min_level_db: float = -45.0, min_range_db: float = 10.0) -> tuple[list[AVClip], list[str]]:
    """Read AV caches (``trainer.av_cache``); clips without audio/face, too short or not speech-like are skipped.

    A clip counts as speech-like when the 90th percentile of its 0.1 s RMS level is
    at least ``min_level_db`` dBFS and the 10–90 percentile range at least
    ``min_range_db`` dB (:func:`audio_dynamics_db`): this drops silent tracks and
    steady music beds, whose audio says nothing about the lips.

    Returns:
        ``(clips, skipped)`` where ``skipped`` names each dropped clip with the reason.
    """
    from .av_cache import load_av

    clips, skipped = [], []
    for path in caches:
        d = load_av(path)
        name = str(d.get("source_name", Path(path).name))
        if not bool(d["has_audio"]):
            skipped.append(f"{name}: no audio")
            continue
        if not bool(d["has_face"]):
            skipped.append(f"{name}: no face track")
            continue
        level, span = audio_dynamics_db(d["audio_16k"])
        if level < min_level_db or span < min_range_db:
            skipped.append(f"{name}: audio not speech-like (level {level:.0f} dBFS, range {span:.0f} dB)")
            continue
        lips = lip_frames(d["dense_crops"], lip_size, region)  # (3, N, S, S) float32 BGR
        clip = AVClip(name=name, lips=np.ascontiguousarray(lips.transpose(1, 2, 3, 0)).astype(np.uint8),
                      mfcc=mfcc_16k(d["audio_16k"]), audio_16k=d["audio_16k"],
                      faces_rgb=d["dense_crops"] if keep_rgb else None)
        if clip.n_windows < min_windows:
            skipped.append(f"{name}: {clip.n_windows} windows < {min_windows}")
            continue
        clips.append(clip)
    return clips, skipped


def _augment_lips(seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Geometry + colour augmentation of a segment, uint8 (F, S, S, 3) BGR → float32 same shape."""
    import cv2

    f, s = seg.shape[:2]
    scale = rng.uniform(0.93, 1.07)
    tx, ty = rng.uniform(-0.05, 0.05, size=2) * s
    flip = rng.random() < 0.5
    out = np.empty(seg.shape, np.float32)
    for k in range(f):
        jx, jy = rng.integers(-1, 2, size=2)
        m = np.array([[scale, 0, (1 - scale) * s / 2 + tx + jx], [0, scale, (1 - scale) * s / 2 + ty + jy]],
                     np.float32)
        img = cv2.warpAffine(seg[k], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[k] = img[:, ::-1] if flip else img
    # colour: brightness, contrast, saturation; occasionally grey
    out *= rng.uniform(0.7, 1.3)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean
    grey = out.mean(axis=-1, keepdims=True)
    sat = 0.0 if rng.random() < 0.1 else rng.uniform(0.6, 1.4)
    out = grey + (out - grey) * sat
    out += rng.uniform(-8, 8, size=3).astype(np.float32)
    return np.clip(out, 0, 255)


class SegmentStream(torch.utils.data.IterableDataset):
    """Endless random segments ``(lips (3, L+4, S, S), audio (L+2R, 1, 13, 20))`` of the training clips."""

    def __init__(self, clips: list[AVClip], cfg: SyncNetTrainConfig, seed: int):
        super().__init__()
        self.L, self.R = cfg.segment_windows, cfg.neg_range
        self.clips = [c for c in clips if c.n_windows >= self.L + 2 * self.R]
        if not self.clips:
            raise ValueError(f"no training clip has {self.L + 2 * self.R} lip windows with audio")
        w = np.array([c.n_windows for c in self.clips], np.float64)
        self.p = np.sqrt(w) / np.sqrt(w).sum()  # long clips more often, but not proportionally
        self.augment, self.seed = cfg.augment, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed + (info.id if info else 0) * 1000 + int(time.time() * 1e3) % 100000)
        L, R = self.L, self.R
        while True:
            clip = self.clips[rng.choice(len(self.clips), p=self.p)]
            f0 = int(rng.integers(R, clip.n_windows - L - R + 1))
            seg = clip.lips[f0 : f0 + L + 4]
            lips = _augment_lips(seg, rng) if self.augment else seg.astype(np.float32)
            cols = np.stack([clip.mfcc[:, 4 * p : 4 * p + 20] for p in range(f0 - R, f0 + L + R)])  # (L+2R, 13, 20)
            cols = cols.astype(np.float32)
            if self.augment:
                cols = cols.copy()
                cols[:, 0, :] += rng.uniform(-1.5, 1.5)  # c0 = log energy: gain change
                cols += rng.normal(0, 0.1, size=cols.shape).astype(np.float32)
            yield (torch.from_numpy(np.ascontiguousarray(lips.transpose(3, 0, 1, 2))),
                   torch.from_numpy(cols[:, None]))


def segment_logits(model, lips: torch.Tensor, aud: torch.Tensor, zero_candidate: bool = False,
                   standardize: bool = False, scale: float = 1.0) -> torch.Tensor:
    """``-L2 distance`` between each lip window and each audio window of its segment.

    Args:
        lips: float32 ``(B, 3, L+4, S, S)`` raw BGR. aud: float32 ``(B, L+2R, 1, 13, 20)`` MFCC windows.
        zero_candidate: append a last column ``-‖lip‖`` (distance to the zero vector that
            :func:`calc_pdist` pads with), so training also pushes the in-sync distance below it.
        standardize: z-score each lip window's distances over its candidates before the softmax.
        scale: logits = ``-scale × distance`` (z-scored distance when ``standardize``).

    Returns:
        float32 ``(B, L, L+2R [+1])``; the in-sync target of row ``i`` is column ``i + R``.
    """
    b, na = aud.shape[:2]
    lip_emb = model.forward_lip_seq(lips)  # (B, L, D)
    aud_emb = model.forward_aud(aud.reshape(b * na, *aud.shape[2:])).reshape(b, na, -1)
    d2 = ((lip_emb[:, :, None, :] - aud_emb[:, None, :, :]) ** 2).sum(-1)
    dist = torch.sqrt(d2 + 1e-8)
    extra = lip_emb.norm(dim=-1, keepdim=True)  # distance to calc_pdist's zero padding
    if standardize:  # scale-free: collapsing all distances to one value no longer lowers the loss
        # statistics of the real audio candidates only (the zero vector is an outlier that would
        # squeeze the real candidates' z-scores together)
        mu, sd = dist.mean(-1, keepdim=True), dist.std(-1, keepdim=True) + 1e-6
        dist, extra = (dist - mu) / sd, (extra - mu) / sd
    if zero_candidate:  # calc_pdist pads with zero vectors: the in-sync audio must beat them too
        dist = torch.cat([dist, extra], dim=-1)
    return -scale * dist


def segment_offset_logits(model, lips: torch.Tensor, aud: torch.Tensor, neg_range: int, zero_candidate: bool = True,
                          scale: float = 3.0) -> torch.Tensor:
    """Segment-level offset logits: ``-scale × z-score`` of the mean distance at each offset.

    For offsets ``d = -R … R`` the mean over the segment's lip windows of
    ``‖lip_i − audio_{i+d}‖`` is the quantity :func:`sync_offsets` takes the argmin
    of (``mdist``); the z-score uses the statistics over the ``2R+1`` offsets, so it is
    scale-free. With ``zero_candidate`` the mean distance to the zero vector (the
    padding of :func:`calc_pdist`) is appended as one more candidate, standardised
    with the same statistics.

    Args:
        lips: float32 ``(B, 3, L+4, S, S)``. aud: float32 ``(B, L+2R, 1, 13, 20)``. neg_range: ``R``.

    Returns:
        float32 ``(B, 2R+1 [+1])``; the in-sync target is column ``R``.
    """
    b, na = aud.shape[:2]
    lip_emb = model.forward_lip_seq(lips)  # (B, L, D)
    aud_emb = model.forward_aud(aud.reshape(b * na, *aud.shape[2:])).reshape(b, na, -1)
    L = lip_emb.shape[1]
    idx = (torch.arange(L)[:, None] + torch.arange(2 * neg_range + 1)[None, :]).to(aud_emb.device)
    dist = ((lip_emb[:, :, None, :] - aud_emb[:, idx, :]) ** 2).sum(-1).add(1e-8).sqrt()  # (B, L, 2R+1)
    md = dist.mean(1)
    mu, sd = md.mean(-1, keepdim=True), md.std(-1, keepdim=True) + 1e-6
    z = (md - mu) / sd
    if zero_candidate:
        z = torch.cat([z, (lip_emb.norm(dim=-1).mean(1, keepdim=True) - mu) / sd], dim=-1)
    return -scale * z


def infonce_logits(model, lips: torch.Tensor, aud: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Per lip window: ``-scale × ½‖lip − audio‖²`` against every audio window of the batch.

    Candidates of lip window ``i`` of segment ``b`` are the ``L + 2R`` audio windows of
    its own segment (the same voice shifted by ``-R-i … L+R-1-i`` frames: hard
    negatives) followed by those of the other segments (other clips or other moments:
    easy negatives that start the learning). With unit-length embeddings
    (``SyncNetConfig.normalize``) ``-½‖a − b‖² = cos(a, b) − 1``, i.e. InfoNCE on cosine
    similarity with temperature ``1 / scale``; :func:`calc_pdist` ranks offsets by
    the same distance at analysis time.

    Args:
        lips: float32 ``(B, 3, L+4, S, S)`` raw BGR. aud: float32 ``(B, L+2R, 1, 13, 20)``. scale: 1 / temperature.

    Returns:
        float32 ``(B, L, B·(L+2R))``; the target of window ``i`` of segment ``b`` is
        column ``b·(L+2R) + i + R`` (:func:`infonce_targets`).
    """
    b, na = aud.shape[:2]
    lip_emb = model.forward_lip_seq(lips)  # (B, L, D)
    aud_emb = model.forward_aud(aud.reshape(b * na, *aud.shape[2:]))  # (B·na, D)
    d2 = (lip_emb.pow(2).sum(-1, keepdim=True) + aud_emb.pow(2).sum(-1)[None, None, :]
          - 2 * lip_emb @ aud_emb.T)
    return -0.5 * scale * d2


def infonce_targets(b: int, L: int, n_audio: int, neg_range: int, device=None) -> torch.Tensor:
    """Target columns of :func:`infonce_logits`, int64 ``(B·L,)``: ``b·n_audio + i + R``."""
    seg = torch.arange(b, device=device)[:, None] * n_audio
    return (seg + torch.arange(L, device=device)[None, :] + neg_range).reshape(-1)


@torch.no_grad()
def clip_embeddings(model, clip: AVClip, chunk: int = 64, max_windows: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode lip and audio embeddings of the first ``max_windows`` windows of a clip, float32 ``(W, D)``."""
    model.eval()
    dev = next(model.parameters()).device
    w = clip.n_windows if max_windows is None else min(clip.n_windows, max_windows)
    lips = torch.from_numpy(clip.lips[: w + 4].transpose(3, 0, 1, 2).astype(np.float32))  # (3, w+4, S, S)
    lip_emb, aud_emb = [], []
    for a in range(0, w, chunk):
        b = min(w, a + chunk)
        lip_emb.append(model.forward_lip_seq(lips[None, :, a : b + 4].to(dev))[0].float().cpu())
        cols = np.stack([clip.mfcc[:, 4 * p : 4 * p + 20] for p in range(a, b)])[:, None].astype(np.float32)
        aud_emb.append(model.forward_aud(torch.from_numpy(cols).to(dev)).float().cpu())
    return torch.cat(lip_emb).numpy(), torch.cat(aud_emb).numpy()


def shifted_offset_eval(lip: np.ndarray, aud: np.ndarray, chunk: int, max_shift: int,
                        rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
    """``(true_shift, measured_offset)`` for chunks of one clip with the audio delayed by each shift.

    The delayed stream ``A'[p] = A[p - s]`` is built from the clip's own audio
    embeddings (zero vectors outside the clip, as :func:`calc_pdist` pads), so
    ``dists[i, j] = ‖lip[i] - A[i + j - 15 - s]‖``; expected offset ``-s``.
    """
    w = lip.shape[0]
    out = []
    starts = list(range(0, max(1, w - chunk + 1), max(1, chunk // 2)))
    zeros = np.zeros_like(aud[:1])
    for a in starts:
        b = min(w, a + chunk)
        for s in range(-max_shift, max_shift + 1):
            # the delayed stream around the chunk (real audio where the clip has it, zeros outside)
            lo, hi = a - VSHIFT, b + VSHIFT
            ext_idx = np.arange(lo, hi) - s
            ext = np.concatenate([zeros if (p < 0 or p >= w) else aud[p : p + 1] for p in ext_idx])
            d = np.stack([np.linalg.norm(lip[a + i][None, :] - ext[i : i + 2 * VSHIFT + 1] + 1e-6, axis=1)
                          for i in range(b - a)])
            md = d.mean(0)
            out.append((s, int(VSHIFT - int(np.argmin(md)))))
    return out


def _validate(model, clips: list[AVClip], cfg: SyncNetTrainConfig) -> dict[str, Any]:
    """Shifted-audio offset accuracy on held-out clips (model selection) and unshifted offsets."""
    pairs, unshifted = [], {}
    for clip in clips:
        lip, aud = clip_embeddings(model, clip, max_windows=cfg.val_max_frames)
        pairs += shifted_offset_eval(lip, aud, cfg.val_chunk_frames, cfg.val_max_shift)
        md = calc_pdist(lip, aud).mean(0)
        unshifted[clip.name] = int(VSHIFT - int(np.argmin(md)))
    err = np.array([off - (-s) for s, off in pairs])
    return {"val_acc_pm1": float(np.mean(np.abs(err) <= 1)), "val_acc_exact": float(np.mean(err == 0)),
            "val_n": int(len(err)), "val_unshifted_offsets": unshifted,
            "val_unshifted_mean_abs": float(np.mean(np.abs(list(unshifted.values()))))}


def end_to_end_eval(model, clips: list[AVClip], shifts: Sequence[int], max_frames: int) -> list[dict[str, Any]]:
    """Engine :func:`sync_offsets` on held-out clips with the waveform delayed by ``s × 40 ms``.

    Rows: video, shift_frames (audio delay, frames), expected_offset (``-s``),
    measured offset, conf, ``label`` (1 = out of sync: ``|s| >= 3``; 0: ``|s| <= 1``),
    ``score`` = desync score ``clip((mdist[15] - min) / (median - min), 0, 1)``.
    """
    rows = []
    for clip in clips:
        faces = clip.faces_rgb[:max_frames]
        wave = clip.audio_16k[: int(round(faces.shape[0] / 25.0 * 16000))]
        for s in shifts:
            res = sync_offsets(model, faces, mfcc_16k(shift_audio(wave, s / 25.0)))
            md = res.mdist
            spread = float(np.median(md) - md.min())
            score = float(np.clip((md[VSHIFT] - md.min()) / (spread + 1e-6), 0.0, 1.0))
            label = 1 if abs(s) >= 3 else (0 if abs(s) <= 1 else None)
            rows.append({"video": clip.name, "shift_frames": int(s), "expected_offset": int(-s),
                         "offset": int(res.offset), "conf": round(float(res.conf), 4),
                         "label": label, "score": round(score, 4), "pred": int(score > 0.5),
                         "n_frames": int(faces.shape[0])})
    return rows


def _system_class():
    import lightning.pytorch as pl

    class SyncNetSystem(pl.LightningModule):
        """Lightning system around :class:`engine.models.syncnet.SyncNet` (multi-way matching loss)."""

        def __init__(self, model, cfg: SyncNetTrainConfig, val_clips: list[AVClip]):
            super().__init__()
            self.model, self.cfg, self.val_clips = model, cfg, val_clips
            self.history: list[dict[str, Any]] = []
            self.best, self.best_epoch, self.best_state = None, -1, None
            self.on_best = None  # callable(state_dict, record): interim export of each new best

        def training_step(self, batch, _):
            lips, aud = batch
            if self.cfg.loss == "segment":
                logits = segment_offset_logits(self.model, lips, aud, self.cfg.neg_range, self.cfg.zero_candidate,
                                               self.cfg.logit_scale)
                target = torch.full((logits.shape[0],), self.cfg.neg_range, device=logits.device)
                loss = torch.nn.functional.cross_entropy(logits, target)
                self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
                self.log("train_acc", (logits.argmax(1) == target).float().mean(), prog_bar=True, on_step=False,
                         on_epoch=True)
                return loss
            if self.cfg.loss == "infonce":
                logits = infonce_logits(self.model, lips, aud, self.cfg.logit_scale)  # (B, L, B·(L+2R))
                b, L, _ = logits.shape
                target = infonce_targets(b, L, aud.shape[1], self.cfg.neg_range, logits.device)
            else:
                logits = segment_logits(self.model, lips, aud, self.cfg.zero_candidate, self.cfg.standardize,
                                        self.cfg.logit_scale)  # (B, L, L+2R+1)
                b, L, _ = logits.shape
                target = (torch.arange(L, device=logits.device) + self.cfg.neg_range).repeat(b)
            loss = torch.nn.functional.cross_entropy(logits.reshape(b * L, -1), target)
            acc = (logits.reshape(b * L, -1).argmax(1) == target).float().mean()
            self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
            self.log("train_acc", acc, prog_bar=True, on_step=False, on_epoch=True)
            return loss

        def on_train_epoch_end(self):
            m = _validate(self.model, self.val_clips, self.cfg)
            self.model.train()
            self.log("val_acc_pm1", m["val_acc_pm1"], prog_bar=True)
            self.log("val_acc_exact", m["val_acc_exact"])
            self.log("val_unshifted_mean_abs", m["val_unshifted_mean_abs"])
            tm = self.trainer.callback_metrics
            rec = {"epoch": int(self.current_epoch), "step": int(self.global_step),
                   "train_loss": float(tm.get("train_loss", float("nan"))),
                   "train_acc": float(tm.get("train_acc", float("nan"))), **m}
            self.history.append(rec)
            print(f"[syncnet] epoch {rec['epoch']} loss {rec['train_loss']:.3f} acc {rec['train_acc']:.3f} "
                  f"val_acc_pm1 {m['val_acc_pm1']:.3f} exact {m['val_acc_exact']:.3f} "
                  f"unshifted {m['val_unshifted_offsets']}", flush=True)
            if self.best is None or m["val_acc_pm1"] >= self.best:  # ties: the later (longer-trained) state
                self.best, self.best_epoch = m["val_acc_pm1"], int(self.current_epoch)
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                if self.on_best is not None:
                    self.on_best(self.best_state, rec)

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
            warm = max(1, self.cfg.warmup_steps)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))
            return [opt], [{"scheduler": sched, "interval": "step"}]

    return SyncNetSystem


def _card(model_cfg, card_info: dict[str, Any], command: str, init: str, metrics: dict[str, float],
          evaluation: str, tr_clips: list[AVClip], tr_skipped: list[str]):
    """The SyncNet model card (``engine.weights.ModelCard``)."""
    from engine.weights import ModelCard

    return ModelCard(
        detector_id="syncnet", architecture="syncnet", config=dataclasses.asdict(model_cfg), classes=[],
        training_data=card_info.get("training_data", "") + (
            f" A/V training clips used ({len(tr_clips)}): {', '.join(c.name for c in tr_clips)}."
            f" Skipped: {'; '.join(tr_skipped) or 'none'}."),
        metrics=metrics, evaluation=evaluation,
        limitations=list(card_info.get("limitations", [])), sha256="", init=init,
        paper="Chung & Zisserman 2016, 'Out of time: automated lip sync in the wild' (SyncNet V2, "
              "joonson/syncnet_python); used by seed 5 (TMC multimodal deepfake detector) §5.2",
        quirks=list(card_info.get("quirks", [])), command=command,
    )


def _av_videos(config: dict[str, Any]) -> tuple[list[Path], list[Path], Path]:
    """Training / held-out video lists of the AV run (``data.train_videos`` + ``data.av_extra_train_videos``)."""
    from .fit import resolve_videos

    data = config["data"]
    train = resolve_videos(list(data["train_videos"]) + list(data.get("av_extra_train_videos", [])))
    val = resolve_videos(data["val_videos"])
    vset = {v.resolve() for v in val}
    overlap = [v for v in train if v.resolve() in vset]
    if overlap:
        raise ValueError(f"videos in both train and val: {sorted(map(str, overlap))}")
    return train, val, Path(data.get("av_cache_dir", "cache/av"))


def fit_syncnet(train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
                out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
                config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train SyncNet self-supervised and export ``model.safetensors`` + ``card.json`` (spec §5.2).

    The face caches of ``run_fit`` (``train_caches``/``val_caches``) are not used:
    SyncNet needs every frame at 25 fps plus audio, so the same people's videos
    (``data.train_videos`` + ``data.av_extra_train_videos``; held out:
    ``data.val_videos``) are cached with :func:`trainer.av_cache.cache_av` into
    ``data.av_cache_dir`` (default ``cache/av``).

    Writes ``out_dir/{model.safetensors, card.json, logs/metrics.csv, roc.png,
    val_results.csv, val_results.json}``.

    Raises:
        ValueError: ``resume`` (not supported), no usable training clip, overlapping people.

    Returns:
        Summary dict (counts, epochs, best epoch, wall time, hardware, held-out metrics).
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from engine.models.syncnet import SyncNet, SyncNetConfig
    from engine.weights import save_weights

    from .av_cache import cache_av
    from .metrics import binary_metrics, roc_png, write_video_results

    if resume:
        raise ValueError("syncnet training has no resume state; start a new run")
    t0 = time.time()
    cfg = SyncNetTrainConfig(**{**train, "seed": seed})
    torch.set_num_threads(max(1, int(cfg.num_threads)))
    pl.seed_everything(seed, workers=True)
    out_dir = Path(out_dir)
    config = config or {}
    tr_videos, va_videos, av_dir = _av_videos(config)
    av_dir.mkdir(parents=True, exist_ok=True)
    tr_caches = [cache_av(v, av_dir, device="cpu") for v in tr_videos]
    va_caches = [cache_av(v, av_dir, device="cpu") for v in va_videos]
    need = cfg.segment_windows + 2 * cfg.neg_range
    flt = {"min_level_db": cfg.min_level_db, "min_range_db": cfg.min_range_db, "region": cfg.region}
    tr_clips, tr_skipped = load_av_clips(tr_caches, cfg.lip_size, min_windows=need, **flt)
    va_clips, va_skipped = load_av_clips(va_caches, cfg.lip_size, keep_rgb=True, min_windows=cfg.val_chunk_frames,
                                         **flt)
    if not tr_clips or not va_clips:
        raise ValueError(f"no usable clips (train skipped: {tr_skipped}; held-out skipped: {va_skipped})")
    model_cfg = SyncNetConfig(emb_dim=cfg.emb_dim, lip_size=cfg.lip_size, region=cfg.region, width=cfg.width,
                              normalize=cfg.normalize)
    model = SyncNet(model_cfg)
    init = "random (syncnet_v2.model of joonson/syncnet_python is not reachable)"
    if cfg.init_from:
        from engine.weights import load_weights

        state, prev = load_weights(cfg.init_from)
        if prev.architecture != "syncnet" or SyncNetConfig(**prev.config) != model_cfg:
            raise ValueError(f"{cfg.init_from}: config {prev.config} differs from {dataclasses.asdict(model_cfg)}")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        init = (f"continued from {prev.card_id} ({cfg.init_from}, itself {prev.init}; "
                f"{prev.training.get('steps', '?')} steps, {prev.training.get('wall_time_s', '?')} s)")
    system = _system_class()(model, cfg, va_clips)

    def interim(state, rec):  # out_dir/best/: loadable (card + safetensors) while training goes on
        save_weights(state, _card(model_cfg, card_info, command, init, {"val_acc_pm1_chunks": rec["val_acc_pm1"]},
                                  f"interim best after epoch {rec['epoch']} (step {rec['step']}): "
                                  "chunk offset accuracy on held-out clips", tr_clips, tr_skipped),
                     out_dir / "best")

    system.on_best = interim
    loader = torch.utils.data.DataLoader(SegmentStream(tr_clips, cfg, seed), batch_size=cfg.segments_per_batch,
                                         num_workers=0)
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs, max_time=cfg.max_time, limit_train_batches=cfg.steps_per_epoch,
        accelerator=cfg.accelerator, devices=cfg.devices, precision=cfg.precision,
        logger=CSVLogger(str(out_dir), name="logs", version=""), enable_checkpointing=False,
        num_sanity_val_steps=0, limit_val_batches=0, log_every_n_steps=10, enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(system, loader)
    last_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if system.best_state is not None:
        model.load_state_dict(system.best_state)
    model.cpu().eval()

    # held-out evaluation, end to end through the engine's sync_offsets on shifted waveforms
    t_eval = time.time()
    rows = end_to_end_eval(model, va_clips, cfg.eval_shifts, cfg.eval_max_frames)
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json", rows)
    err = np.array([r["offset"] - r["expected_offset"] for r in rows])
    labelled = [r for r in rows if r["label"] is not None]
    y = [r["label"] for r in labelled]
    s = [r["score"] for r in labelled]
    desync = binary_metrics(y, s, 0.5) if len(set(y)) == 2 else {}
    if len(set(y)) == 2:
        roc_png(out_dir / "roc.png", {"audio shifted >= 3 frames vs in sync": (y, s)},
                title="SyncNet desync score, held-out people")
    unshifted = {r["video"]: r["offset"] for r in rows if r["shift_frames"] == 0}
    heldout = {
        "offset_acc_pm1": float(np.mean(np.abs(err) <= 1)), "offset_acc_exact": float(np.mean(err == 0)),
        "n_shifted_clips": int(len(rows)), "unshifted_offsets": unshifted,
        "desync_auc": desync.get("roc_auc"), "desync_accuracy": desync.get("accuracy"),
        "desync_eer": desync.get("eer"), "desync_n": desync.get("n"),
        "shifts_frames": list(cfg.eval_shifts),
    }
    wall = time.time() - t0
    summary = {
        "train_videos": len(tr_clips), "val_videos": len(va_clips),
        "train_videos_skipped": tr_skipped, "val_videos_skipped": va_skipped,
        "train_windows": int(sum(c.n_windows for c in tr_clips)),
        "val_windows": int(sum(c.n_windows for c in va_clips)),
        "epochs": int(len(system.history)), "steps": int(trainer.global_step),
        "best_epoch": int(system.best_epoch), "val_acc_pm1_best": system.best,
        "val_per_epoch": system.history, "heldout": heldout, "eval_wall_s": round(time.time() - t_eval, 1),
        "wall_time_s": round(wall, 1), "train_config": dataclasses.asdict(cfg),
        "hardware": torch.cuda.get_device_name(0) if torch.cuda.is_available() else
        f"CPU, {torch.get_num_threads()} torch thread(s)",
    }
    metrics = {k: float(v) for k, v in {
        "heldout_offset_acc_pm1": heldout["offset_acc_pm1"], "heldout_offset_acc_exact": heldout["offset_acc_exact"],
        "heldout_desync_auc": heldout["desync_auc"], "heldout_desync_eer": heldout["desync_eer"],
        "val_acc_pm1_chunks": system.best}.items() if v is not None and math.isfinite(float(v))}
    card = _card(model_cfg, card_info, command, init, metrics, card_info.get("evaluation", (
        "Held-out people's clips with the audio waveform delayed by "
        f"{list(cfg.eval_shifts)} video frames (40 ms each); offset measured end to end with "
        "engine.features.avsync.sync_offsets; accuracy = measured offset within ±1 frame of the expected "
        "one. Desync AUC: score (mdist at offset 0 − min) / (median − min), shifts ≥ 3 frames vs ≤ 1.")),
        tr_clips, tr_skipped)
    save_weights(model.state_dict(), card, out_dir)
    # the final (not best) state too, to continue training from (``init_from: RUN/last``)
    save_weights(last_state, dataclasses.replace(card, metrics={}, evaluation="last training state (not evaluated)"),
                 out_dir / "last")
    return summary
