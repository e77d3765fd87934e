"""TimeSformer (divided space-time attention) and seed 5's audio-visual deepfake model (spec §5.5).

Papers / code:

* G. Bertasius, H. Wang, L. Torresani, "Is Space-Time Attention All You Need for
  Video Understanding?", ICML 2021, arXiv:2102.05095 (TimeSformer).
* mmaction2 ``mmaction/models/backbones/timesformer.py`` and
  ``mmaction/models/common/transformer.py`` (``DividedTemporalAttentionWithNorm``,
  ``DividedSpatialAttentionWithNorm``, ``FFNWithNorm``): the implementation seed 5
  (TMC "Multimodal Model for Deepfake Detection", ``model.py``) instantiates as
  ``TimeSformer(num_frames=32, img_size=224, patch_size=16, embed_dims=768,
  attention_type='divided_space_time')``. mmaction2 is not installable here, so
  the backbone is re-written; module and parameter names follow mmaction2's state
  dict (``patch_embed.projection``, ``transformer_layers.layers.<i>.attentions.<0|1>``,
  ``ffns.0.layers.0.0`` …), so an mmaction2 TimeSformer state dict loads without a
  key converter (nn.MultiheadAttention's ``in_proj_weight``/``out_proj`` layout is kept).

Shapes (paper config :class:`TimeSformerConfig`, batch ``B``, ``T`` frames, ``P = (S/p)²`` patches)::

    x           float32 (B, 3, T, S, S)
    patch_embed Conv2d(3, D, p, stride p) per frame          -> (B*T, P, D)
    + CLS, + pos_embed (1, P+1, D)  (spatial, shared by frames)
    + time_embed (1, T, D)  (per frame, shared by patches)     -> (B, 1 + P*T, D), patch-major "(p t)" order
    depth x DividedBlock:
        time:  x_p = x_p + temporal_fc(DropPath(MHA_T(LN(x_p))))    patches only, over the T frames of one
               patch position; the CLS token is passed through unchanged
        space: per frame t, MHA_S over [CLS, P patches of frame t] (LN first);
               patches: x = x + DropPath(out);  CLS: x_cls = x_cls + mean_t DropPath(out_cls^t)
        ffn:   x = x + DropPath(FFN(LN(x)))   FFN = Linear(D, 4D) GELU Linear(4D, D)
    LN (eps 1e-6) -> CLS                                       -> (B, D)

So, as in mmaction2: **time attention comes first, then space attention**, each
with its own pre-LayerNorm and residual; the time attention's output goes
through an extra ``temporal_fc`` (zero-initialised, so each block starts as a
space-only block); the CLS token takes no part in time attention and in space
attention it is **copied into every frame**, attends within that frame, and the
T per-frame CLS outputs are **averaged** into one. DropPath rates rise linearly
from 0 to ``drop_path_rate`` over the blocks (mmaction2: ``np.linspace(0, 0.1, 12)``).

Seed 5 model (:class:`AVTimeSformer`)::

    faces(16) ++ mel_3cs(16) -> (B, 3, 32, S, S) BGR, (x - 127.5)/127.5  (preprocess_av)
    TimeSformer CLS          -> (B, D)
    latency (B, 33) -> z-score with the FIXED LATENCY_MEAN/STD -> Linear(33,16) LeakyReLU Linear(16,8) -> (B, 8)
    head Linear(D + 8, 2) on cat(CLS, latency feature)  -> logits (B, 2); P(fake) = softmax[:, 1]

Parameter counts (asserted in ``tests/engine/models/test_timesformer.py`` against a count
written out by hand): paper TimeSformer (T=32, 224, p16, D 768, depth 12) 121,277,184;
:class:`AVTimeSformer` with it 121,279,418 (+ latency MLP 680, head 1,554).

Attention maps: each attention's post-softmax weights are the output of its
``attend`` module (an ``nn.Softmax``), ``(N, heads, L, L)`` with ``N = B*P, L = T`` for
time and ``N = B*T, L = P + 1`` for space. :meth:`AVTimeSformer.attention_layers`
lists them as ``[time_0, space_0, time_1, space_1, …]`` for
:func:`engine.explain.record_attention` and :mod:`engine.explain.spacetime`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

from ._registry import register_model

__all__ = [
    "TimeSformerConfig",
    "TimeSformer",
    "AVTimeSformerConfig",
    "AVTimeSformer",
    "LATENCY_MEAN",
    "LATENCY_STD",
    "NUM_FACE_FRAMES",
    "NUM_MEL_FRAMES",
    "preprocess_av",
]

#: Seed 5 §5.4/5.5: 16 face frames followed by 16 mel-spectrogram images along time.
NUM_FACE_FRAMES = 16
NUM_MEL_FRAMES = 16

#: Seed 5 ``dataset.py`` (spec §5.5): fixed z-score of the 33-d latency vector [mdist(31), offset, conf].
LATENCY_MEAN = (
    13.19363815, 13.19501656, 13.18659362, 13.17640294, 13.17066425, 13.17019671, 13.17482536, 13.17799065,
    13.18566418, 13.20933517, 13.25752388, 13.28976352, 13.20823131, 12.90568457, 12.38983396, 11.89045171,
    11.7443412, 12.03197746, 12.4989344, 12.87843759, 13.07726926, 13.13755761, 13.14001962, 13.13205015,
    13.12779171, 13.12155903, 13.11000457, 13.1013639, 13.10253977, 13.10916571, 13.10936431, -0.66052139,
    2.08751058,
)
LATENCY_STD = (
    1.22018219, 1.21550165, 1.21229337, 1.20948145, 1.21118108, 1.22301931, 1.23717952, 1.24618324,
    1.24850914, 1.25898727, 1.29470179, 1.34988986, 1.4100049, 1.47685704, 1.56634314, 1.62855303,
    1.59250148, 1.54371076, 1.53380911, 1.47927914, 1.39061644, 1.31827097, 1.26728097, 1.2379907,
    1.22404027, 1.21914667, 1.21814202, 1.21650715, 1.21238232, 1.20961766, 1.21228655, 4.35032996,
    1.24566509,
)


# ============================================================================ config
@dataclass(frozen=True)
class TimeSformerConfig:
    """TimeSformer hyper-parameters; defaults = the paper / mmaction2 config seed 5 uses (spec §5.5).

    Attributes:
        num_frames: T, frames per clip (32 = 16 faces + 16 mel images).
        img_size: S, frame side in pixels (224); must be a multiple of ``patch_size``.
        patch_size: p, square patch side in pixels (16 -> 14x14 = 196 patches per frame).
        embed_dims: D, token width (768).
        depth: divided space-time blocks (12).
        num_heads: attention heads (12); ``embed_dims`` must be divisible by it.
        mlp_ratio: FFN hidden width / D (4 -> 3072).
        drop_path_rate: DropPath of the last block; block i uses ``linspace(0, rate, depth)[i]`` (0.1).
        dropout: after the positional / time embeddings and in attention/FFN (0, mmaction2 default).
        ln_eps: LayerNorm epsilon (1e-6).
        in_channels: 3.
    """

    num_frames: int = 32
    img_size: int = 224
    patch_size: int = 16
    embed_dims: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1
    dropout: float = 0.0
    ln_eps: float = 1e-6
    in_channels: int = 3

    def __post_init__(self):
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dims % self.num_heads:
            raise ValueError(f"embed_dims {self.embed_dims} is not divisible by num_heads {self.num_heads}")

    @property
    def grid(self) -> int:
        """Patches per side (S / p)."""
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """P = grid², patches per frame."""
        return self.grid ** 2


@dataclass(frozen=True)
class AVTimeSformerConfig(TimeSformerConfig):
    """Seed 5 audio-visual model: TimeSformer over faces + mel images, plus the latency MLP (spec §5.5).

    Attributes (besides :class:`TimeSformerConfig`'s):
        latency_dim: input of the latency network (33 = mdist(31), offset, conf).
        latency_hidden: its hidden width (16). latency_out: its output width (8).
        num_classes: logits (2: real, fake).
        latency_mean, latency_std: the fixed z-score of the latency input; None = seed 5's
            :data:`LATENCY_MEAN` / :data:`LATENCY_STD` (measured with the pretrained ``syncnet_v2``).
            A SyncNet with another distance scale needs its own fixed vectors (stored here, in
            the model card, never learned).
    """

    latency_dim: int = 33
    latency_hidden: int = 16
    latency_out: int = 8
    num_classes: int = 2
    latency_mean: tuple[float, ...] | None = None
    latency_std: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        """Config as a plain dict (model card ``config``)."""
        return asdict(self)

    def backbone(self) -> TimeSformerConfig:
        """The :class:`TimeSformerConfig` part."""
        return TimeSformerConfig(**{f: getattr(self, f) for f in TimeSformerConfig.__dataclass_fields__})


# ============================================================================ preprocessing
def preprocess_av(faces_rgb: np.ndarray, mel_bgr: np.ndarray, img_size: int = 224) -> torch.Tensor:
    """Seed 5 input tensor of one clip (spec §5.5): faces then mel images along time, BGR, scaled to [-1, 1].

    The one preprocessing function of ``deepfake.av``: the detector and the trainer
    (``trainer.av_fit``) both call it.

    Args:
        faces_rgb: uint8 ``(16, H, W, 3)`` **RGB** face crops (``tmc_shifted1p4_224``; the seed
            stored BGR, so they are flipped to BGR here).
        mel_bgr: uint8 ``(16, H, W, 3)`` **BGR** mel-spectrogram images
            (:func:`engine.features.melimages.mel_images`).
        img_size: model input side in pixels; images of another size are resized
            (``cv2.INTER_AREA``) to it (the paper config reads 224 directly).

    Returns:
        float32 ``(3, 32, img_size, img_size)``, channels BGR, ``(x - 127.5) / 127.5``.

    Raises:
        ValueError: wrong shapes or dtypes.
    """
    for name, a in (("faces_rgb", faces_rgb), ("mel_bgr", mel_bgr)):
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3:
            raise ValueError(f"{name} must be uint8 (N, H, W, 3), got {a.dtype} {a.shape}")
    if len(faces_rgb) != NUM_FACE_FRAMES or len(mel_bgr) != NUM_MEL_FRAMES:
        raise ValueError(f"need {NUM_FACE_FRAMES} faces and {NUM_MEL_FRAMES} mel images, "
                         f"got {len(faces_rgb)} and {len(mel_bgr)}")
    frames = np.concatenate([faces_rgb[..., ::-1], mel_bgr], axis=0)
    if frames.shape[1:3] != (img_size, img_size):
        frames = np.stack([cv2.resize(np.ascontiguousarray(f), (img_size, img_size), interpolation=cv2.INTER_AREA)
                           for f in frames])
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()  # (32, S, S, 3)
    return ((x - 127.5) / 127.5).permute(3, 0, 1, 2).contiguous()


# ============================================================================ blocks
class PatchEmbed(nn.Module):
    """Per-frame patch embedding: ``(B, C, T, S, S) -> (B*T, P, D)`` (mmaction2 ``PatchEmbed``)."""

    def __init__(self, cfg: TimeSformerConfig):
        super().__init__()
        self.projection = nn.Conv2d(cfg.in_channels, cfg.embed_dims, cfg.patch_size, stride=cfg.patch_size)
        # mmaction2: kaiming_init(mode='fan_in', nonlinearity='linear')
        nn.init.kaiming_normal_(self.projection.weight, mode="fan_in", nonlinearity="linear")
        nn.init.zeros_(self.projection.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        return self.projection(x).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameters (``in_proj_weight`` (3D, D),
    ``in_proj_bias``, ``out_proj``), written out so the post-softmax map is the output of ``attend``.

    ``forward(x float (N, L, D)) -> (N, L, D)``; the map is ``(N, heads, L, L)``.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        self.attend = nn.Softmax(dim=-1)
        self.attn_drop = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.in_proj_weight)  # nn.MultiheadAttention's init
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.reshape(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = self.attend((q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1))
        out = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(n, length, d)
        return self.out_proj(out)


class DividedTemporalAttentionWithNorm(nn.Module):
    """Time attention of one block (mmaction2 class of the same name); CLS passes unchanged.

    ``forward(x (B, 1 + P*T, D)) -> same``: ``x_patches + temporal_fc(DropPath(MHA(LN(x_patches))))``
    with attention over the T frames of each patch position.
    """

    def __init__(self, cfg: TimeSformerConfig, drop_path: float):
        super().__init__()
        d = cfg.embed_dims
        self.num_frames = cfg.num_frames
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.attn = SelfAttention(d, cfg.num_heads, cfg.dropout)
        self.proj_drop = nn.Dropout(cfg.dropout)
        self.dropout_layer = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.temporal_fc = nn.Linear(d, d)
        nn.init.zeros_(self.temporal_fc.weight)  # mmaction2: constant_init(temporal_fc, 0, bias=0)
        nn.init.zeros_(self.temporal_fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls, patches = x[:, :1], x[:, 1:]
        b, pt, m = patches.shape
        t = self.num_frames
        p = pt // t
        q = self.norm(patches.reshape(b * p, t, m))  # "(p t)" order: each row block is one patch position
        res = self.temporal_fc(self.dropout_layer(self.proj_drop(self.attn(q))))
        return torch.cat((cls, patches + res.reshape(b, p * t, m)), dim=1)


class DividedSpatialAttentionWithNorm(nn.Module):
    """Space attention of one block (mmaction2 class of the same name).

    ``forward(x (B, 1 + P*T, D)) -> same``: per frame, attention over ``[CLS, its P patches]``
    (CLS copied into each frame); patch outputs are added to their tokens, the T CLS
    outputs are averaged and added to the CLS token.
    """

    def __init__(self, cfg: TimeSformerConfig, drop_path: float):
        super().__init__()
        d = cfg.embed_dims
        self.num_frames = cfg.num_frames
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.attn = SelfAttention(d, cfg.num_heads, cfg.dropout)
        self.proj_drop = nn.Dropout(cfg.dropout)
        self.dropout_layer = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls, patches = x[:, :1], x[:, 1:]
        b, pt, m = patches.shape
        t = self.num_frames
        p = pt // t
        cls_t = cls.expand(b, t, m).reshape(b * t, 1, m)
        q = patches.reshape(b, p, t, m).transpose(1, 2).reshape(b * t, p, m)  # '(b t) p m'
        q = self.norm(torch.cat((cls_t, q), dim=1))
        res = self.dropout_layer(self.proj_drop(self.attn(q)))  # (B*T, P+1, D)
        res_cls = res[:, 0].reshape(b, t, m).mean(dim=1, keepdim=True)
        res_p = res[:, 1:].reshape(b, t, p, m).transpose(1, 2).reshape(b, p * t, m)  # back to '(p t)'
        return x + torch.cat((res_cls, res_p), dim=1)


class FFNWithNorm(nn.Module):
    """``x + DropPath(FFN(LN(x)))`` with mmcv FFN's layout ``layers = [[Linear, GELU, Dropout], Linear, Dropout]``."""

    def __init__(self, cfg: TimeSformerConfig, drop_path: float):
        super().__init__()
        d, hidden = cfg.embed_dims, int(cfg.embed_dims * cfg.mlp_ratio)
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(cfg.dropout)),
            nn.Linear(hidden, d),
            nn.Dropout(cfg.dropout),
        )
        self.dropout_layer = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout_layer(self.layers(self.norm(x)))


class DividedBlock(nn.Module):
    """mmcv ``BaseTransformerLayer`` with ``operation_order=('self_attn', 'self_attn', 'ffn')``: time, space, FFN."""

    def __init__(self, cfg: TimeSformerConfig, drop_path: float):
        super().__init__()
        self.attentions = nn.ModuleList([DividedTemporalAttentionWithNorm(cfg, drop_path),
                                         DividedSpatialAttentionWithNorm(cfg, drop_path)])
        self.ffns = nn.ModuleList([FFNWithNorm(cfg, drop_path)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffns[0](self.attentions[1](self.attentions[0](x)))


class _Layers(nn.Module):
    def __init__(self, cfg: TimeSformerConfig):
        super().__init__()
        rates = np.linspace(0, cfg.drop_path_rate, cfg.depth)
        self.layers = nn.ModuleList([DividedBlock(cfg, float(r)) for r in rates])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


# ============================================================================ models
class TimeSformer(nn.Module):
    """TimeSformer backbone with divided space-time attention (mmaction2 semantics, see module docstring).

    ``forward(x float32 (B, C, T, S, S)) -> float32 (B, D)``: the CLS token after the final LayerNorm.

    Raises (forward):
        ValueError: input shape does not match the config.
    """

    def __init__(self, cfg: TimeSformerConfig = TimeSformerConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dims
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches + 1, d))
        self.drop_after_pos = nn.Dropout(cfg.dropout)
        self.time_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, d))
        self.drop_after_time = nn.Dropout(cfg.dropout)
        self.transformer_layers = _Layers(cfg)
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        trunc_normal_(self.pos_embed, std=0.02)  # mmaction2 init_weights; time_embed stays zero
        trunc_normal_(self.cls_token, std=0.02)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Embedded tokens before the blocks: ``(B, C, T, S, S) -> (B, 1 + P*T, D)``, "(p t)" patch order."""
        c = self.cfg
        expected = (c.in_channels, c.num_frames, c.img_size, c.img_size)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"TimeSformer expects (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        b = x.shape[0]
        x = self.patch_embed(x)  # (B*T, P, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        x = self.drop_after_pos(x)
        cls = x[:b, :1]  # mmaction2 takes the first B rows; all CLS rows are equal
        p = x.shape[1] - 1
        x = x[:, 1:].reshape(b, c.num_frames, p, -1).transpose(1, 2)  # (B, P, T, D)
        x = self.drop_after_time(x + self.time_embed[:, None])
        return torch.cat((cls, x.reshape(b, p * c.num_frames, -1)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.transformer_layers(self.tokens(x)))[:, 0]

    def attention_layers(self) -> list[nn.Module]:
        """Post-softmax attention modules in forward order: ``[time_0, space_0, time_1, space_1, …]``."""
        out = []
        for layer in self.transformer_layers.layers:
            out += [layer.attentions[0].attn.attend, layer.attentions[1].attn.attend]
        return out


class AVTimeSformer(nn.Module):
    """Seed 5 audio-visual deepfake model: TimeSformer CLS + latency feature -> 2 logits (spec §5.5).

    ``forward(x float32 (B, 3, 32, S, S), latency float32 (B, 33)) -> logits float32 (B, 2)``;
    ``x`` from :func:`preprocess_av`; ``latency`` raw ``[mdist(31), offset, conf]``
    (``engine.features.avsync.latency_vector``), z-scored inside with the fixed
    :data:`LATENCY_MEAN` / :data:`LATENCY_STD` (non-persistent buffers, not in the state dict).
    P(fake) = ``softmax(logits)[:, 1]`` (:meth:`fake_probability`).
    """

    def __init__(self, cfg: AVTimeSformerConfig = AVTimeSformerConfig()):
        super().__init__()
        mean = LATENCY_MEAN if cfg.latency_mean is None else tuple(cfg.latency_mean)
        std = LATENCY_STD if cfg.latency_std is None else tuple(cfg.latency_std)
        if not cfg.latency_dim == len(mean) == len(std):
            raise ValueError(f"latency_dim {cfg.latency_dim} must equal the length of the fixed z-score vectors "
                             f"({len(mean)}, {len(std)})")
        if min(std) <= 0:
            raise ValueError("latency_std must be positive")
        self.cfg = cfg
        self.backbone = TimeSformer(cfg.backbone())
        self.latency_net = nn.Sequential(nn.Linear(cfg.latency_dim, cfg.latency_hidden), nn.LeakyReLU(),
                                         nn.Linear(cfg.latency_hidden, cfg.latency_out))
        self.head = nn.Linear(cfg.embed_dims + cfg.latency_out, cfg.num_classes)
        self.register_buffer("latency_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("latency_std", torch.tensor(std, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
        if latency.ndim != 2 or latency.shape[1] != self.cfg.latency_dim:
            raise ValueError(f"latency must be (B, {self.cfg.latency_dim}), got {tuple(latency.shape)}")
        z = (latency.to(self.latency_mean.dtype) - self.latency_mean) / self.latency_std
        feat = torch.cat((self.backbone(x), self.latency_net(z.to(x.dtype))), dim=1)
        return self.head(feat)

    @torch.no_grad()
    def fake_probability(self, x: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
        """P(fake) = softmax(logits)[:, 1], float32 ``(B,)``."""
        return torch.softmax(self.forward(x, latency).float(), dim=1)[:, 1]

    def attention_layers(self) -> list[nn.Module]:
        """The backbone's attention modules, ``[time_0, space_0, time_1, …]``."""
        return self.backbone.attention_layers()


register_model("timesformer", TimeSformerConfig)(TimeSformer)
register_model("av_timesformer", AVTimeSformerConfig)(AVTimeSformer)
