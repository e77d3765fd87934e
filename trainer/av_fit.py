"""Training ``deepfake.av`` (seed 5 §5.6) on real footage only, with Lightning.

Data: the dense 25 fps face crops and aligned audio of real talking videos
(:func:`trainer.av_cache.cache_av`, folder ``data.av_cache_dir``), person-disjoint
train / held-out split (one video = one person). Videos without audio are skipped.
Each clip gives one real sample and three kinds of fake:

* ``sbi``: self-blended faces (Shiohara & Yamasaki 2022, :func:`trainer.sbi.self_blend`):
  **one** blend per clip, i.e. each of its 16 face frames is blended with a generator
  seeded identically (same source/target augmentation and mask deformation; the mask
  is the ellipse of the face box, there are no landmarks in the dense crops), with the
  clip's own audio and latency (SyncNet runs on the unblended dense video: only the 16
  face frames are blended, so this kind is visible to the face stream only);
* ``shift``: the clip's own audio rotated in time (``np.roll``, no silent gap to give it
  away) by 0.40–0.60 s (10–15 video frames, inside SyncNet's ±15-frame search), both signs;
* ``mismatch``: the audio of another person's clip of the same split (looped / cut to length).

SyncNet latency vectors are computed once per (clip, audio variant) with the bundled
SyncNet and stored as npz (``<av_cache_dir>/latency/``, keyed by the SyncNet weights'
SHA-256); :func:`latency_variants` computes the lip embeddings once per clip for all
audio variants and equals ``engine.features.avsync.sync_offsets`` per variant (tested).
Mel images and latency go through the engine functions the detector calls
(:func:`engine.detectors.av.av_inputs`, :func:`engine.models.timesformer.preprocess_av`).

Seed settings kept: sample-weighted cross-entropy ``Σ w_i CE_i / Σ w_i``;
``ReduceLROnPlateau(mode='max' on val AUC, patience 3, cooldown 1, factor 0.3)``;
seed 100; face augmentation of §5.6 per face frame (mel frames untouched), not on the
held-out set (the seed's [quirk] of augmenting its dev set is not reproduced).
Departures (each a config key, listed in the card): optimiser (seed: SGD lr 5e-3 plain),
class-balancing weights, training-time face-frame phase, small CPU architecture.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

KINDS = ("real", "sbi", "shift", "mismatch")


# ============================================================================ config
@dataclass(frozen=True)
class AVTrainConfig:
    """Hyper-parameters of one ``deepfake.av`` fit (YAML ``train:``).

    Attributes:
        optimizer: ``"sgd"`` (seed 5: lr 5e-3, no momentum / weight decay) or ``"adamw"``.
        lr, momentum, weight_decay: optimiser settings.
        plateau_patience, plateau_cooldown, plateau_factor: ReduceLROnPlateau on val AUC (3, 1, 0.3).
        batch_size: clips per step (seed 2 per GPU).
        max_epochs: epochs (seed 32). max_time: wall-clock budget "DD:HH:MM:SS" or None.
        balance_classes: weight each real sample by (#fake / #real) so both classes weigh
            the same (False: every weight 1, the seed's default).
        phases: face-frame phases per training clip (:func:`engine.detectors.av.face_frame_indices`;
            1 = only the analysis frames).
        shift_range_s: |shift| of the ``shift`` fakes in seconds.
        mismatch_partners: other-person audios per training clip (held-out: every other held-out clip).
        epoch_repeats: draws of every (clip, kind) per training epoch (fresh phase, blend, variant and
            augmentation each), so one "epoch" of the plateau scheduler is not just 4 x 21 samples.
        augment: face augmentation of §5.6 on training clips.
        syncnet_dir: SyncNet weights folder (default: the bundled ``resources/models/syncnet``).
        latency_norm: ``"seed"`` (z-score with seed 5's fixed vectors, measured with the pretrained
            syncnet_v2) or ``"train"`` (fixed vectors measured once, before training, on all training
            variants' latency with *this* SyncNet; written into the model config / card).
        num_threads: torch CPU threads. accelerator, devices, precision: Lightning.
        model: :class:`engine.models.timesformer.AVTimeSformerConfig` fields.
    """

    optimizer: str = "sgd"
    lr: float = 5e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    plateau_patience: int = 3
    plateau_cooldown: int = 1
    plateau_factor: float = 0.3
    batch_size: int = 2
    max_epochs: int = 32
    max_time: str | None = None
    balance_classes: bool = True
    phases: int = 4
    shift_range_s: tuple[float, float] = (0.4, 0.6)
    mismatch_partners: int = 2
    epoch_repeats: int = 1
    augment: bool = True
    syncnet_dir: str | None = None
    latency_norm: str = "seed"
    num_threads: int = 1
    accelerator: str = "cpu"
    devices: Any = 1
    precision: str = "32-true"
    model: dict[str, Any] = field(default_factory=dict)


# ============================================================================ SyncNet latency per audio variant
def latency_variants(syncnet, dense_crops: np.ndarray, audios_16k: dict[str, np.ndarray],
                     chunk: int = 48, batch_size: int = 64,
                     audio_cache: dict[bytes, np.ndarray] | None = None) -> dict[str, Any]:
    """``sync_offsets`` of one face video against several audio tracks, lip embeddings computed once.

    Same windows, inputs and aggregates as :func:`engine.features.avsync.sync_offsets`
    (``engine.features.avsync.lip_frames`` / ``calc_pdist``); the lip stream runs
    through ``SyncNet.forward_lip_seq`` in chunks (equal to ``forward_lip`` per window in eval).
    Audio embeddings are looked up by the exact bytes of their ``(13, 20)`` MFCC window in
    ``audio_cache`` first: audio rotated by a multiple of 40 ms, or another clip's audio cut
    to length, has the same MFCC windows as the original (same samples, same 10 ms framing),
    so only the windows at the rotation seam are computed again.

    Args:
        syncnet: SyncNet in eval mode. dense_crops: uint8 ``(N, S, S, 3)`` RGB, 25 fps.
        audios_16k: variant name -> float32 mono 16 kHz audio (sample 0 at video time 0).
        audio_cache: MFCC-window bytes -> audio embedding, shared between calls (optional).

    Returns:
        variant -> ``SyncResult`` (or None when the variant has too little audio / video).
    """
    from engine.features.avsync import MFCC_PER_FRAME, VSHIFT, SyncResult, calc_pdist, lip_frames, mfcc_16k

    cache = audio_cache if audio_cache is not None else {}
    n_frames = int(dense_crops.shape[0])
    mfccs = {k: mfcc_16k(np.asarray(a, np.float32)[: 16 * 16000]) for k, a in audios_16k.items()}
    n_wins = {k: min(n_frames - 5, (m.shape[1] - 20) // MFCC_PER_FRAME + 1) for k, m in mfccs.items()}
    n_max = max(n_wins.values(), default=0)
    out: dict[str, Any] = {k: None for k in audios_16k}
    if n_max < 1:
        return out
    syncnet.eval()
    region = getattr(syncnet.cfg, "region", "face")  # what of the crop the lip CNN sees (as sync_offsets)
    lips = torch.from_numpy(lip_frames(dense_crops[: n_max + 4], syncnet.cfg.lip_size, region))  # (3, n+4, S, S)
    with torch.inference_mode():
        lip_emb = torch.cat([syncnet.forward_lip_seq(lips[None, :, s: min(n_max, s + chunk) + 4])[0]
                             for s in range(0, n_max, chunk)]).float().numpy()
        for name, m in mfccs.items():
            n = n_wins[name]
            if n < 1:
                continue
            m = np.ascontiguousarray(m, np.float32)
            wins = [np.ascontiguousarray(m[:, 4 * v: 4 * v + 20]) for v in range(n)]
            keys = [w.tobytes() for w in wins]
            todo = list(dict.fromkeys(k for k in keys if k not in cache))
            by_key = {k: w for k, w in zip(keys, wins)}
            for s in range(0, len(todo), batch_size):
                part = todo[s: s + batch_size]
                x = torch.from_numpy(np.stack([by_key[k] for k in part]))[:, None]
                for k, e in zip(part, syncnet.forward_aud(x).float().numpy()):
                    cache[k] = e
            aud = np.stack([cache[k] for k in keys])
            dists = calc_pdist(lip_emb[:n], aud, VSHIFT)
            mdist = dists.mean(axis=0).astype(np.float32)
            out[name] = SyncResult(mdist=mdist, offset=int(VSHIFT - int(np.argmin(mdist))),
                                   conf=float(np.median(mdist) - np.min(mdist)), dists=dists)
    return out


# ============================================================================ clips and audio variants
@dataclass
class AVClip:
    """One cached real clip, reduced to what training needs (all images at the model's ``img_size``).

    Attributes:
        name: video file name. person: index of the clip (one video = one person).
        faces: uint8 ``(phases, 16, s, s, 3)`` RGB face frames per phase.
        box: face box ``(x1, y1, x2, y2)`` in those crops' pixels (for the SBI mask).
        variants: audio variant -> ``(kind, mel uint8 (16, s, s, 3) BGR, latency float32 (33,), sync info dict)``.
    """

    name: str
    faces: np.ndarray
    box: tuple[float, float, float, float]
    variants: dict[str, tuple[str, np.ndarray, np.ndarray, dict]] = field(default_factory=dict)


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return np.ascontiguousarray(images)
    return np.stack([cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA)
                     for im in images])


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Loop / cut ``wave`` to ``n`` samples (other-person audio for the mismatch fakes)."""
    if wave.size == 0:
        return np.zeros(n, np.float32)
    reps = int(np.ceil(n / wave.size))
    return np.ascontiguousarray(np.tile(wave, reps)[:n], dtype=np.float32)


def _variant_audio(own: dict[str, np.ndarray], partner: dict[str, np.ndarray] | None, shift_s: float
                   ) -> dict[str, np.ndarray]:
    """16 kHz and 22.05 kHz audio of one variant: own audio rolled by ``shift_s``, or the partner's audio."""
    out = {}
    for key, sr in (("audio_16k", 16000), ("audio_22k", 22050)):
        a = own[key]
        if partner is not None:
            out[key] = _fit_length(partner[key], a.size)
        else:
            out[key] = np.roll(a, int(round(shift_s * sr))) if shift_s else a
    return out


def build_clips(caches: Sequence[Path], syncnet, syncnet_sha: str, latency_dir: Path, img_size: int,
                phases: int, shift_range: tuple[float, float], partners: int | None, seed: int,
                log: list[dict] | None = None) -> list[AVClip]:
    """Load AV caches, make every audio variant's mel images and (cached) SyncNet latency.

    Variants per clip: ``real``; ``shift+`` and ``shift-`` (|shift| drawn in ``shift_range``
    seconds); ``mismatch:<other>`` for ``partners`` other clips (None: all others).
    Latency results are cached in ``latency_dir/<clip>.<sha12>.<variant>.sync<syncnet sha12>.npz``,
    mel images (resized to ``img_size``) in ``latency_dir/../mel/``. ``syncnet=None`` only
    prepares the mel images (latency: cached results or zeros).

    Returns:
        :class:`AVClip` per cache with audio (clips without audio are skipped and listed in ``log``).
    """
    from engine.detectors.av import av_inputs, face_frame_indices
    from engine.features.avsync import SyncResult, latency_vector
    from engine.io import atomic_save_npz, load_npz

    raw = []
    for path in caches:
        a = load_npz(path)
        if not bool(a["has_audio"]) or a["audio_16k"].size < 16000 * 0.3:
            if log is not None:
                log.append({"video": str(a.get("source_name", Path(path).name)), "skipped": "no audio"})
            continue
        raw.append((Path(path), a))
    rng = np.random.default_rng([seed, 7])
    audio_cache: dict[bytes, np.ndarray] = {}  # SyncNet audio embeddings by MFCC window (latency_variants)
    clips = []
    for ci, (path, a) in enumerate(raw):
        crops = a["dense_crops"]
        n = len(crops)
        step = max(1, n // 16)
        ph = sorted({int(round(k * step / phases)) for k in range(phases)} if n >= 16 else {0})
        faces = np.stack([_resize_all(crops[face_frame_indices(n, 16, p)], img_size) for p in ph])
        s = float(img_size)
        clip = AVClip(str(a["source_name"]), faces, (s / 7, 0.0, 6 * s / 7, 5 * s / 7))  # tmc crop: box in crop px
        others = [j for j in range(len(raw)) if j != ci]
        chosen = others if partners is None else list(rng.permutation(others)[:partners]) if others else []
        lo, hi = (int(round(v / 0.04)) for v in shift_range)
        mag = rng.integers(lo, hi + 1, size=2) * 0.04  # whole video frames (40 ms): MFCC windows reusable
        specs = {"real": ("real", None, 0.0), "shift+": ("shift", None, float(mag[0])),
                 "shift-": ("shift", None, -float(mag[1]))}
        for j in chosen:
            specs[f"mismatch:{raw[j][1]['source_name']}"] = ("mismatch", raw[j][1], 0.0)
        audios = {name: _variant_audio(a, partner, sh) for name, (_, partner, sh) in specs.items()}
        stem = path.name.split(".av.")[0]  # <video stem>.<sha12> of the AV cache
        keys, mel_keys = {}, {}
        for name, (_, _, sh) in specs.items():
            tag = name.replace(":", "_") + (f"{sh:+.3f}s" if sh else "")
            keys[name] = latency_dir / f"{stem}.{tag}.sync{syncnet_sha[:12]}.npz"
            mel_keys[name] = latency_dir.parent / "mel" / f"{stem}.{tag}.mel{img_size}.npz"
        mels = {}
        for name in specs:  # mel images do not depend on SyncNet: cached separately
            if mel_keys[name].exists():
                mels[name] = load_npz(mel_keys[name])["mel"]
            else:
                inp = av_inputs(crops, None, audios[name]["audio_22k"], None)
                mels[name] = _resize_all(inp.mel, img_size)
                atomic_save_npz(mel_keys[name], {"mel": mels[name]})
        todo = {name: audios[name]["audio_16k"] for name in specs if not keys[name].exists()}
        if todo and syncnet is not None:
            for name, res in latency_variants(syncnet, crops, todo, audio_cache=audio_cache).items():
                arrays = {"valid": np.array(res is not None)}
                if res is not None:
                    arrays.update(mdist=res.mdist, offset=np.array(res.offset), conf=np.array(res.conf))
                atomic_save_npz(keys[name], arrays)
        for name, (kind, _, sh) in specs.items():
            sync = None
            if keys[name].exists():
                d = load_npz(keys[name])
                if bool(d["valid"]):
                    sync = SyncResult(d["mdist"], int(d["offset"]), float(d["conf"]), np.zeros((0, 31), np.float32))
            info = {"video": clip.name, "variant": name, "kind": kind, "shift_s": round(sh, 3),
                    "offset_frames": None if sync is None else sync.offset,
                    "conf": None if sync is None else round(sync.conf, 4)}
            clip.variants[name] = (kind, mels[name], latency_vector(sync), info)
            if log is not None:
                log.append(info)
        clips.append(clip)
    return clips


# ============================================================================ augmentation (§5.6)
def tmc_face_augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seed 5's face augmentation (albumentations in the seed; cv2/numpy here), one face frame.

    In order, with the seed's probabilities (pixel sizes given for 224 px and scaled to the image):
    JPEG 60–100 (0.5); Gaussian blur 3×3 (0.05); YCbCr Gaussian noise var 0.005 (0.5);
    horizontal flip (0.5); colour jitter brightness/contrast/saturation 0.5, hue 0.5 (0.5);
    one of per-channel gain (FancyPCA stand-in) / HSV shift (0.7); to grey (0.2);
    shift-scale-rotate 0.1/0.2/10° constant border (0.5); coarse dropout 5–8 holes of 16–24 px (0.5);
    red "hello.com" text, font scale 1–3, near (w/6, h/2) (0.5); random sized crop 168–224 → full (0.2).

    Args:
        img: uint8 ``(S, S, 3)`` RGB. rng: numpy Generator.

    Returns:
        uint8 ``(S, S, 3)`` RGB.
    """
    out = np.ascontiguousarray(img)
    h, w = out.shape[:2]
    k = w / 224.0
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(60, 101))])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    if rng.random() < 0.05:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    if rng.random() < 0.5:
        ycc = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb).astype(np.float32) / 255.0
        ycc += rng.normal(0.0, np.sqrt(0.005), ycc.shape).astype(np.float32)
        out = cv2.cvtColor(np.clip(ycc * 255.0, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
    if rng.random() < 0.5:  # ColorJitter(0.5, 0.5, 0.5, 0.5)
        f = out.astype(np.float32) * rng.uniform(0.5, 1.5)
        gray = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).mean()
        f = (f - gray) * rng.uniform(0.5, 1.5) + gray
        hsv = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-0.5, 0.5) * 180.0) % 180.0
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.7:
        if rng.random() < 0.5:
            out = np.clip(out.astype(np.float32) * rng.uniform(0.9, 1.1, size=3), 0, 255).astype(np.uint8)
        else:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180.0  # albumentations hue ±20 of 360
            hsv[..., 1] = np.clip(hsv[..., 1] + rng.uniform(-30, 30), 0, 255)
            hsv[..., 2] = np.clip(hsv[..., 2] + rng.uniform(-20, 20), 0, 255)
            out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.2:
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    if rng.random() < 0.5:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-10, 10), 1 + rng.uniform(-0.2, 0.2))
        m[:, 2] += rng.uniform(-0.1, 0.1, size=2) * (w, h)
        out = cv2.warpAffine(np.ascontiguousarray(out), m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if rng.random() < 0.5:
        out = out.copy()
        for _ in range(int(rng.integers(5, 9))):
            hh, ww = int(rng.integers(16, 25) * k), int(rng.integers(16, 25) * k)
            y, x = int(rng.integers(0, max(1, h - hh))), int(rng.integers(0, max(1, w - ww)))
            out[y: y + hh, x: x + ww] = 0
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out).copy()
        scale = rng.uniform(1, 3) * k
        org = (int(w / 6 + rng.uniform(-0.05, 0.05) * w), int(h / 2 + rng.uniform(-0.05, 0.05) * h))
        cv2.putText(out, "hello.com", org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 0, 0), max(1, int(2 * k)))
    if rng.random() < 0.2:
        side = int(rng.integers(int(168 * k), int(224 * k) + 1))
        side = min(side, h, w)
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out = cv2.resize(np.ascontiguousarray(out[y: y + side, x: x + side]), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out)


# ============================================================================ dataset
class AVSampleDataset(torch.utils.data.Dataset):
    """Real clips and their three fake kinds as model tensors.

    Training (``train=True``): per clip and epoch one real (random phase), one ``sbi``
    (random phase, fresh blend), one ``shift`` and one ``mismatch`` (a random variant of
    that kind), faces augmented per frame (:func:`tmc_face_augment`).
    Held-out (``train=False``): phase 0, no augmentation, the real clip, one fixed-seed
    ``sbi`` blend and **every** shift / mismatch variant.

    Items: ``(x float32 (3, 32, s, s), latency float32 (33,), label int64, weight float32, kind)``,
    ``x`` from :func:`engine.models.timesformer.preprocess_av`.
    """

    def __init__(self, clips: list[AVClip], train: bool, seed: int, img_size: int, augment: bool = True,
                 balance: bool = True, repeats: int = 1):
        self.clips, self.train, self.seed, self.img_size = clips, train, seed, img_size
        self.augment = augment and train
        self.epoch = 0
        self.items: list[tuple[int, str, str | None]] = []  # (clip, kind, variant or None = random)
        for ci, c in enumerate(clips):
            kinds = {v[0] for v in c.variants.values()}
            if train:
                self.items += [(ci, k, None) for k in KINDS if k in kinds or k == "sbi"]
            else:
                self.items += [(ci, "real", "real"), (ci, "sbi", "real")]
                self.items += [(ci, v[0], name) for name, v in c.variants.items() if v[0] in ("shift", "mismatch")]
        n_real = sum(1 for it in self.items if it[1] == "real")
        n_fake = len(self.items) - n_real
        if train:
            self.items = self.items * max(1, int(repeats))
        self.real_weight = (n_fake / max(n_real, 1)) if balance else 1.0

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, i: int) -> dict[str, Any]:
        """``{"video", "kind", "variant"}`` of held-out item ``i``."""
        ci, kind, variant = self.items[i]
        return {"video": self.clips[ci].name, "kind": kind, "variant": variant}

    def __getitem__(self, i: int):
        from engine.models.timesformer import preprocess_av
        from trainer.sbi import self_blend

        ci, kind, variant = self.items[i]
        clip = self.clips[ci]
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, i])
        if variant is None:
            names = ["real"] if kind in ("real", "sbi") else [n for n, v in clip.variants.items() if v[0] == kind]
            variant = names[int(rng.integers(len(names)))]
        _, mel, latency, _ = clip.variants[variant]
        phase = int(rng.integers(len(clip.faces))) if self.train else 0
        faces = clip.faces[phase]
        if kind == "sbi":  # one consistent blend over the clip's 16 faces: same generator seed per frame
            blend_seed = int(rng.integers(2 ** 31))
            faces = np.stack([self_blend(f, None, rng=np.random.default_rng(blend_seed), box=clip.box).image
                              for f in faces])
        if self.augment:
            faces = np.stack([tmc_face_augment(f, np.random.default_rng([self.seed, self.epoch, i, j]))
                              for j, f in enumerate(faces)])
        x = preprocess_av(faces, mel, self.img_size)
        label = 0 if kind == "real" else 1
        weight = self.real_weight if label == 0 else 1.0
        return x, torch.from_numpy(latency), torch.tensor(label), torch.tensor(weight, dtype=torch.float32), kind


# ============================================================================ Lightning
def weighted_ce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Seed 5 loss: ``Σ_i w_i CE_i / Σ_i w_i`` for logits ``(B, 2)``, labels int64 ``(B,)``, weights ``(B,)``."""
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return (weights * ce).sum() / weights.sum().clamp_min(1e-12)


def _system_class():
    import lightning.pytorch as pl

    class AVSystem(pl.LightningModule):
        """Lightning system around the plain :class:`AVTimeSformer` (STYLE.md: model inside a system)."""

        def __init__(self, model: torch.nn.Module, cfg: AVTrainConfig):
            super().__init__()
            self.model, self.cfg = model, cfg
            self.val_scores: list[torch.Tensor] = []
            self.val_labels: list[torch.Tensor] = []

        def training_step(self, batch, _):
            x, lat, y, w, _kind = batch
            loss = weighted_ce(self.model(x, lat), y, w)
            self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y))
            return loss

        def validation_step(self, batch, _):
            x, lat, y, w, _kind = batch
            logits = self.model(x, lat)
            self.log("val_loss", weighted_ce(logits, y, w), on_epoch=True, batch_size=len(y))
            self.val_scores.append(torch.softmax(logits.float(), 1)[:, 1].detach().cpu())
            self.val_labels.append(y.detach().cpu())

        def on_validation_epoch_end(self):
            from sklearn.metrics import roc_auc_score

            y = torch.cat(self.val_labels).numpy()
            s = torch.cat(self.val_scores).numpy()
            self.val_scores.clear()
            self.val_labels.clear()
            auc = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else 0.5
            self.log("val_auc", auc, prog_bar=True)
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"])

        def on_train_epoch_start(self):
            self.trainer.train_dataloader.dataset.epoch = self.current_epoch

        def configure_optimizers(self):
            c = self.cfg
            if c.optimizer == "sgd":
                opt = torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum,
                                      weight_decay=c.weight_decay)
            elif c.optimizer == "adamw":
                opt = torch.optim.AdamW(self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
            else:
                raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {c.optimizer!r}")
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=c.plateau_patience,
                                                               cooldown=c.plateau_cooldown, factor=c.plateau_factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_auc", "interval": "epoch"}}

    return AVSystem


class _BestState:
    """State dict of the epoch with the best val AUC (in memory, no pickles) and the per-epoch history."""

    def __init__(self):
        import lightning.pytorch as pl

        outer = self

        class Cb(pl.Callback):
            def on_validation_end(self, trainer, module):
                if trainer.sanity_checking:
                    return
                m = trainer.callback_metrics
                auc = float(m.get("val_auc", float("nan")))
                outer.history.append({"epoch": trainer.current_epoch, "val_auc": auc,
                                      "val_loss": float(m.get("val_loss", float("nan"))),
                                      "train_loss": float(m.get("train_loss", float("nan")))})
                if outer.best is None or (np.isfinite(auc) and auc > outer.best):
                    outer.best, outer.epoch = auc, trainer.current_epoch
                    outer.state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

        self.best, self.epoch, self.state, self.history = None, -1, None, []
        self.callback = Cb()


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (the summary JSON refuses NaN)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


@torch.no_grad()
def score_dataset(model: torch.nn.Module, ds: AVSampleDataset, batch_size: int = 4) -> list[dict[str, Any]]:
    """P(fake) of every held-out item: rows ``{"video", "kind", "variant", "label", "score"}``."""
    model.eval()
    rows = []
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(len(ds), start + batch_size))]
        x = torch.stack([it[0] for it in items])
        lat = torch.stack([it[1] for it in items])
        p = model.fake_probability(x, lat).numpy()
        for k, it in enumerate(items):
            rows.append({**ds.describe(start + k), "label": int(it[2]), "score": float(p[k])})
    return rows


def heldout_metrics(rows: list[dict[str, Any]], threshold: float = 0.5) -> dict[str, Any]:
    """``binary_metrics`` over all held-out items and per fake kind (that kind vs all reals)."""
    from trainer.metrics import binary_metrics

    y = [r["label"] for r in rows]
    s = [r["score"] for r in rows]
    out = {"all": binary_metrics(y, s, threshold)}
    for kind in KINDS[1:]:
        sel = [r for r in rows if r["kind"] in ("real", kind)]
        if any(r["kind"] == kind for r in sel):
            out[kind] = binary_metrics([r["label"] for r in sel], [r["score"] for r in sel], threshold)
    return out


def fit_av(train_caches: Sequence[Path], val_caches: Sequence[Path], train: dict[str, Any], seed: int,
           out_dir: Path, card_info: dict[str, Any], command: str = "", resume: bool = False,
           config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``deepfake.av`` (``trainer.fit.FITTERS``) and export ``model.safetensors`` + ``card.json``.

    ``train_caches``/``val_caches`` (the face caches of ``trainer.cache``) are not read: the
    videos of ``config["data"]["train_videos"/"val_videos"]`` are cached with
    :func:`trainer.av_cache.cache_av` into ``data.av_cache_dir`` (default ``cache/av``) instead.

    Writes into ``out_dir``: ``model.safetensors``, ``card.json``, ``logs/metrics.csv``,
    ``roc.png``, ``val_results.csv/json``, ``latency_variants.json`` (SyncNet offset of every
    audio variant).

    Raises:
        ValueError: ``resume`` (not supported), fewer than 2 training clips with audio.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from engine.features.avsync import load_syncnet
    from engine.io import atomic_write_json
    from engine.models.timesformer import AVTimeSformer, AVTimeSformerConfig
    from engine.weights import ModelCard, save_weights
    from trainer.av_cache import cache_av
    from trainer.fit import resolve_videos
    from trainer.metrics import roc_png, write_video_results

    if resume:
        raise ValueError("deepfake.av training does not support --resume (runs are short); start a new run")
    cfg = AVTrainConfig(**{**train, "shift_range_s": tuple(train.get("shift_range_s", (0.4, 0.6)))})
    torch.set_num_threads(cfg.num_threads)
    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(seed, workers=True)
    data = (config or {}).get("data", {})
    av_dir = Path(data.get("av_cache_dir", "cache/av"))
    train_videos = resolve_videos(data["train_videos"])
    val_videos = resolve_videos(data["val_videos"])
    t_cache = time.time()
    tr_av = [cache_av(v, av_dir) for v in train_videos]
    va_av = [cache_av(v, av_dir) for v in val_videos]
    syncnet, sync_card = load_syncnet(cfg.syncnet_dir)
    model_cfg = AVTimeSformerConfig(**cfg.model)
    s = model_cfg.img_size
    log: list[dict] = []
    lat_dir = av_dir / "latency"
    tr_clips = build_clips(tr_av, syncnet, sync_card.sha256, lat_dir, s, cfg.phases, cfg.shift_range_s,
                           cfg.mismatch_partners, seed, log)
    va_clips = build_clips(va_av, syncnet, sync_card.sha256, lat_dir, s, 1, cfg.shift_range_s, None, seed + 1, log)
    prep_s = time.time() - t_cache
    atomic_write_json(out_dir / "latency_variants.json", log)
    if len(tr_clips) < 2 or not va_clips:
        raise ValueError(f"need >= 2 training clips and >= 1 held-out clip with audio, got {len(tr_clips)} / "
                         f"{len(va_clips)}")
    if cfg.latency_norm == "train":
        lat = np.stack([v[2] for c in tr_clips for v in c.variants.values()]).astype(np.float64)
        model_cfg = dataclasses.replace(model_cfg, latency_mean=tuple(float(v) for v in lat.mean(0)),
                                        latency_std=tuple(float(v) for v in np.maximum(lat.std(0), 1e-3)))
    elif cfg.latency_norm != "seed":
        raise ValueError(f"latency_norm must be 'seed' or 'train', got {cfg.latency_norm!r}")
    train_ds = AVSampleDataset(tr_clips, True, seed, s, cfg.augment, cfg.balance_classes, cfg.epoch_repeats)
    val_ds = AVSampleDataset(va_clips, False, seed + 1, s, False, cfg.balance_classes)
    loader = lambda ds, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        ds, batch_size=cfg.batch_size, shuffle=shuffle, num_workers=0, generator=torch.Generator().manual_seed(seed))
    model = AVTimeSformer(model_cfg)
    system = _system_class()(model, cfg)
    best = _BestState()
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs, max_time=cfg.max_time, accelerator=cfg.accelerator, devices=cfg.devices,
        precision=cfg.precision, logger=CSVLogger(str(out_dir), name="logs", version=""),
        enable_checkpointing=False, callbacks=[best.callback], num_sanity_val_steps=0, log_every_n_steps=1,
        deterministic=False, enable_progress_bar=False,
    )
    t_train = time.time()
    trainer.fit(system, loader(train_ds, True), loader(val_ds, False))
    train_s = time.time() - t_train
    if best.state is not None:
        model.load_state_dict(best.state)
    rows = score_dataset(model, val_ds)
    metrics = heldout_metrics(rows)
    write_video_results(out_dir / "val_results.csv", out_dir / "val_results.json",
                        [{"video": r["video"], "label": r["label"], "score": r["score"],
                          "pred": int(r["score"] > 0.5), "group": r["kind"], "variant": r["variant"]} for r in rows])
    curves = {"all": ([r["label"] for r in rows], [r["score"] for r in rows])}
    for kind in KINDS[1:]:
        sel = [r for r in rows if r["kind"] in ("real", kind)]
        if len({r["label"] for r in sel}) == 2:
            curves[f"real vs {kind}"] = ([r["label"] for r in sel], [r["score"] for r in sel])
    if len(set(curves["all"][0])) == 2:
        roc_png(out_dir / "roc.png", curves, title="deepfake.av held-out (real vs self-blend / shift / mismatch)")
    n_params = sum(p.numel() for p in model.parameters())
    counts = lambda ds: {k: sum(1 for it in ds.items if it[1] == k) for k in KINDS}  # noqa: E731
    summary = {
        "train_videos": len(tr_clips), "val_videos": len(va_clips),
        "skipped_videos": [e for e in log if "skipped" in e],
        "train_items_per_epoch": counts(train_ds), "val_items": counts(val_ds),
        "epochs_validated": len(best.history), "best_epoch": int(best.epoch),
        "val_auc_best": best.best, "heldout": metrics, "val_per_epoch": best.history,
        "optimizer": cfg.optimizer, "lr": cfg.lr, "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size,
        "parameters": n_params, "prep_time_s": round(prep_s, 1), "train_time_s": round(train_s, 1),
        "wall_time_s": round(time.time() - t0, 1), "syncnet_card": sync_card.card_id,
        "torch_threads": cfg.num_threads,
        "hardware": torch.cuda.get_device_name(0) if cfg.accelerator != "cpu" and torch.cuda.is_available()
        else "CPU",
    }
    fmt = lambda m: None if m is None else round(float(m), 4)  # noqa: E731
    card_metrics = {"heldout_auc_all": fmt(metrics["all"]["roc_auc"]),
                    "heldout_accuracy_all": fmt(metrics["all"]["accuracy"]),
                    "heldout_eer_all": fmt(metrics["all"]["eer"])}
    for kind in KINDS[1:]:
        if kind in metrics:
            card_metrics[f"heldout_auc_{kind}"] = fmt(metrics[kind]["roc_auc"])
            card_metrics[f"heldout_accuracy_{kind}"] = fmt(metrics[kind]["accuracy"])
            card_metrics[f"heldout_eer_{kind}"] = fmt(metrics[kind]["eer"])
    vc = counts(val_ds)
    card = ModelCard(
        detector_id="deepfake.av", architecture="av_timesformer", config=dataclasses.asdict(model_cfg),
        classes=["real", "fake"], training_data=card_info.get("training_data", ""),
        metrics={k: v for k, v in card_metrics.items() if v is not None},
        evaluation=card_info.get("evaluation", "") + (
            f" Held-out items: {vc['real']} real clips vs {vc['sbi']} self-blended, {vc['shift']} audio-shifted, "
            f"{vc['mismatch']} audio-swapped clips of {len(va_clips)} held-out people; AUC per kind = that kind "
            "vs the real clips; threshold 0.5."),
        limitations=list(card_info.get("limitations", [])), sha256="",
        init="random (no pretrained TimeSformer reachable; seed 5 loaded an unspecified checkpoint)",
        paper="Multimodal Model for Deepfake Detection (seed 5, AISG Trusted Media Challenge); Bertasius et al. "
              "2021 TimeSformer (arXiv:2102.05095); Chung & Zisserman 2016 SyncNet; Chefer et al. 2021 relevancy; "
              "Shiohara & Yamasaki 2022 SBI for training fakes",
        quirks=list(card_info.get("quirks", [])), command=command,
    )
    save_weights(model.state_dict(), card, out_dir)
    atomic_write_json(out_dir / "heldout_metrics.json", {"metrics": metrics, "rows": rows})
    return _finite(json.loads(json.dumps(summary, default=str)))
