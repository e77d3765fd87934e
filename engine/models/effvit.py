"""EfficientNet-B0 + ViT deepfake classifier (seed 2, §2.2): one "fake" logit per face crop.

Papers / code:

* Coccomini et al., "Combining EfficientNet and Vision Transformers for Video
  Deepfake Detection", ICIAP 2022, arXiv:2107.02612 (the EfficientViT baseline).
* The seed "Explainable Attention-Based Deepfake Detector"
  (``model_test_train/evit_model10.py`` + ``configs/explained_architecture.yaml``),
  which changes the patch embedding to 1024 tokens and adds the attention taps
  used by Chefer et al. relevancy (see :mod:`engine.explain.relevancy`).

Architecture (shapes for the default :class:`EffViTConfig`, batch ``B``)::

    img      float32 (B, 3, 224, 224)  BGR, raw 0..255, no normalisation   (preprocess_crops)
    features EfficientNet-B0 features   -> (B, 1280, 7, 7)
    rearrange 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=p2=7 -> (B, 1, 62720)
    patch_to_embedding Conv1d(1, 1024, kernel=1280, stride=1280)  -> (B, 1024, 49)
    cat CLS (1, 1, 49); + pos_embedding (1, 1025, 49); Dropout(0.15)  -> (B, 1025, 49)
    6 x pre-norm Block: x + Attn(LN(x)); x + MLP(LN(x))           -> (B, 1025, 49)
    CLS -> mlp_head Linear(49, 2048) -> ReLU -> Linear(2048, 1)     -> (B, 1) logit

The 1024 "tokens" are 1024 learned projections of the 7x7x1280 feature map
(token k, element j = w_k . f_j + b_k, f_j the feature at spatial cell j); they
are **not** spatial patches (spec §2.2 step 3 [derived]).

Parameter counts (spec §2.2 [derived]; asserted in ``tests/engine/models/test_effvit.py``):

===============================  =========  ===========================================
part                             params     note
===============================  =========  ===========================================
EfficientNet-B0 (torchvision)    5,288,548  incl. the unused ImageNet head
                                            ``classifier.1 = Linear(1280, 1000)`` (1,281,000),
                                            kept when ``keep_imagenet_head=True``
patch_to_embedding               1,311,744
cls_token + pos_embedding           50,274
transformer (6 blocks)           1,820,388
mlp_head                           104,449
**total**                        8,575,403  = spec; 7,294,403 without the ImageNet head
trainable (blocks 0-12 frozen)   6,874,079  = spec; 5,593,079 without the ImageNet head
===============================  =========  ===========================================

torchvision's ``efficientnet_b0`` has exactly the parameter count of the seed's
``efficientnet_pytorch`` B0 (5,288,548 incl. ``_fc``; its 16 MBConv blocks 0-12
hold 1,701,324 parameters in both), so the totals match the spec exactly.

Differences from the seed's backbone, none of which changes a parameter count:

* **Padding.** ``efficientnet_pytorch.from_pretrained`` uses TensorFlow "SAME"
  padding (asymmetric for the stride-2 convolutions); torchvision pads
  symmetrically (k // 2). The seed checkpoint (``efficientnetB0_checkpoint89_All``)
  is therefore *not* loadable bit-exactly here; this module ships no converter.
* **BatchNorm** is built with the seed's ``eps=1e-3, momentum=0.01`` (torchvision's
  default would be 1e-5 / 0.1). As in the seed, frozen blocks keep updating their
  BN running statistics in ``train()`` mode (``requires_grad=False`` does not stop them).
* **Initialisation.** The seed starts from ImageNet B0 weights
  (``EfficientNet.from_pretrained``). No ImageNet B0 weights are reachable from this
  project, so there is deliberately no ImageNet-init hook: the backbone starts from
  torchvision's random init and a model card must say ``init="random"``.
  Two consequences for training from scratch: (1) the seed's
  ``trainable_blocks_from=13`` then freezes 13 *random* MBConv blocks (sensible
  only with pretrained weights; ``trainable_blocks_from=0`` trains them all, and
  the trainable count is then no longer the spec's); (2) torchvision initialises
  depthwise convs with fan-out ``C*9``, so with fresh BN statistics the ``eval()``
  features are ~1e-10, and with ``momentum=0.01`` the running statistics only
  forget their init as 0.99**steps (hundreds of steps); :func:`recalibrate_batchnorm`
  re-estimates them exactly.
* Stochastic depth is the same schedule (0.2 * block_index / 16, per sample, train only).

``keep_imagenet_head=True`` keeps ``efficient_net.classifier`` (Dropout + the
1000-class Linear) only so the parameter count and the optimiser's parameter set
match the seed; it is never called in :meth:`EffViT.forward`.

Grad-CAM targets the last MBConv stage (``features[7]``), not the head conv's
output, on which Grad-CAM is identically zero for this architecture (see
:meth:`EffViT.gradcam_layer`).

Explainability: the post-softmax attention of each block is the output of its
``attn.attend`` module (an ``nn.Softmax``) and :meth:`EffViT.attention_layers`
lists them in block order. :func:`engine.explain.record_attention` hooks them for
the duration of a ``with`` block; nothing is ever stored on the modules, so a
plain forward keeps no attention maps (the seed saved them on ``self`` at every call).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.utils.checkpoint
import torchvision
from torch import nn

__all__ = [
    "EffViTConfig",
    "EffViT",
    "ParamCounts",
    "preprocess_crops",
    "count_parameters",
    "patches_to_sequence",
    "recalibrate_batchnorm",
    "SPEC_TOTAL_PARAMS",
    "SPEC_TRAINABLE_PARAMS",
    "SPEC_BACKBONE_PARAMS",
]

#: Seed 2 §2.2 parameter counts (with the unused 1000-class head).
SPEC_TOTAL_PARAMS = 8_575_403
SPEC_TRAINABLE_PARAMS = 6_874_079
SPEC_BACKBONE_PARAMS = 5_288_548

#: Number of MBConv blocks in EfficientNet-B0 (``efficientnet_pytorch._blocks``).
B0_NUM_BLOCKS = 16
#: Spatial downsampling of the EfficientNet-B0 feature extractor.
B0_STRIDE = 32
#: Channels of EfficientNet-B0's last feature map (after the 1x1 head conv).
B0_CHANNELS = 1280


@dataclass(frozen=True)
class EffViTConfig:
    """Architecture config; seed 2 ``configs/explained_architecture.yaml`` (spec §2.2).

    Attributes:
        image_size: input side in pixels (224). Must equal ``32 * patch_size``:
            the seed's rearrange needs the 7x7 feature map to be exactly one patch.
        patch_size: p1 = p2 of the rearrange (7) = side of the B0 feature map.
        num_classes: logits out (1: the "fake" logit; P(fake) = sigmoid).
        dim: EfficientNet channels fed to the patch embedding (1280); also the
            Conv1d kernel and stride.
        depth: transformer blocks (6).
        heads, dim_head: attention heads (8) x width per head (64) -> inner 512.
        mlp_dim: hidden width of each block's MLP and of ``mlp_head`` (2048).
        emb_dim: token width (49 = patch_size**2: one value per 7x7 cell).
        dropout: after each attention's ``to_out`` Linear (0.15); the MLP uses 0 as in the seed.
        emb_dropout: after adding the positional embedding (0.15).
        trainable_blocks_from: MBConv blocks ``[0, trainable_blocks_from)`` are frozen
            (13: blocks 0-12 frozen, 13-15 trainable); stem and head conv stay trainable.
        keep_imagenet_head: keep B0's unused ``Linear(1280, 1000)`` so the parameter
            count matches the seed's 8,575,403 (False: 7,294,403).
        bn_eps, bn_momentum: BatchNorm settings of the backbone (``efficientnet_pytorch``'s).
    """

    image_size: int = 224
    patch_size: int = 7
    num_classes: int = 1
    dim: int = 1280
    depth: int = 6
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 2048
    emb_dim: int = 49
    dropout: float = 0.15
    emb_dropout: float = 0.15
    trainable_blocks_from: int = 13
    keep_imagenet_head: bool = True
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.image_size != B0_STRIDE * self.patch_size:
            raise ValueError(
                f"image_size must be {B0_STRIDE} * patch_size (the B0 feature map must be one "
                f"{self.patch_size}x{self.patch_size} patch), got {self.image_size} and {self.patch_size}"
            )
        if self.emb_dim != self.patch_size**2:
            raise ValueError(f"emb_dim must be patch_size**2 = {self.patch_size ** 2}, got {self.emb_dim}")
        if self.dim != B0_CHANNELS:
            raise ValueError(f"dim must be EfficientNet-B0's {B0_CHANNELS} channels, got {self.dim}")
        if not 0 <= self.trainable_blocks_from <= B0_NUM_BLOCKS:
            raise ValueError(f"trainable_blocks_from must be in [0, {B0_NUM_BLOCKS}], got {self.trainable_blocks_from}")
        if min(self.num_classes, self.depth, self.heads, self.dim_head, self.mlp_dim) < 1:
            raise ValueError(f"sizes must be positive: {self}")

    @property
    def num_tokens(self) -> int:
        """Tokens after the patch embedding, CLS excluded: ``(image_size // patch_size)**2`` = 1024."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def token_grid(self) -> int:
        """Side of the seed's heuristic square token grid (32); see :func:`engine.explain.tokens_to_grid`."""
        return self.image_size // self.patch_size

    def to_dict(self) -> dict:
        """Keyword arguments for a model card (``ModelCard.config``)."""
        return asdict(self)


# ============================================================================ preprocessing
def preprocess_crops(crops_rgb_uint8: np.ndarray, image_size: int | None = 224) -> torch.Tensor:
    """Face crops -> the seed's model input. The ONE preprocessing function for this model.

    Both the detector (inference) and the trainer's Dataset call this; do not copy it.
    The seed fed ``cv2.imread`` images: **BGR**, raw **0..255** floats, **no**
    mean/std normalisation (spec §2.2, §2.5 step 7). Engine crops are RGB
    (:mod:`engine.faces.crops`), so the channels are flipped here.

    Args:
        crops_rgb_uint8: ``uint8 (N, H, W, 3)`` RGB face crops (e.g. policy
            ``effvit_square224``), crop pixel coordinates.
        image_size: required ``H == W == image_size``; ``None`` skips the check.

    Returns:
        ``float32 (N, 3, H, W)`` contiguous CPU tensor, channels B, G, R, values 0..255.

    Raises:
        TypeError: not a uint8 array. ValueError: not ``(N, H, W, 3)`` or wrong size.
    """
    arr = np.asarray(crops_rgb_uint8)
    if arr.dtype != np.uint8:
        raise TypeError(f"crops must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"crops must have shape (N, H, W, 3), got {arr.shape}")
    if image_size is not None and arr.shape[1:3] != (image_size, image_size):
        raise ValueError(f"crops must be {image_size}x{image_size}, got {arr.shape[1]}x{arr.shape[2]}")
    bgr = arr[..., ::-1].transpose(0, 3, 1, 2)  # (N, 3, H, W), channels B, G, R
    return torch.from_numpy(np.ascontiguousarray(bgr, dtype=np.float32))


def patches_to_sequence(x: torch.Tensor, p: int) -> torch.Tensor:
    """``einops.rearrange(x, 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=p, p2=p)`` without einops.

    Args:
        x: ``(B, C, h * p, w * p)``; for EffViT ``(B, 1280, 7, 7)`` with ``p = 7``.

    Returns:
        ``(B, h * w, p * p * C)``; element ``(p1 * p + p2) * C + c`` of patch
        ``(hi, wi)`` is ``x[:, c, hi * p + p1, wi * p + p2]``. For EffViT ``(B, 1, 62720)``:
        the 1280-d feature vectors of the 49 cells, cell after cell in row-major order.

    Raises:
        ValueError: the spatial size is not a multiple of ``p``.
    """
    b, ch, hh, ww = x.shape
    if hh % p or ww % p:
        raise ValueError(f"spatial size {hh}x{ww} is not a multiple of patch size {p}")
    h, w = hh // p, ww // p
    return x.reshape(b, ch, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(b, h * w, p * p * ch)


# ============================================================================ transformer
class Attention(nn.Module):
    """Multi-head self-attention of the seed (``evit_model10.Attention``).

    ``to_qkv = Linear(dim, 3 * heads * dim_head, bias=False)``; scale ``dim_head**-0.5``;
    ``attend = Softmax(-1)``; ``to_out = Linear(heads * dim_head, dim) + Dropout``.

    The post-softmax attention ``float32 (B, heads, N, N)`` (rows: queries, columns:
    keys; token 0 is CLS) is the output of ``self.attend``: hook that module to see
    it (:func:`engine.explain.record_attention`). Nothing is kept on ``self``.
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.attend = nn.Softmax(dim=-1)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    @property
    def recording(self) -> bool:
        """True while a hook watches ``self.attend`` (e.g. :func:`engine.explain.record_attention`)."""
        return bool(self.attend._forward_hooks or self.attend._forward_pre_hooks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: float (B, N, dim)`` -> ``float (B, N, dim)``.

        When nobody records the attention (no hook on ``self.attend``), the fused
        ``torch.nn.functional.scaled_dot_product_attention`` computes the same
        ``softmax(q k^T * scale) v`` without materialising the ``(B, h, N, N)`` map
        (about 2x faster for training and scoring on CPU; equal within float
        rounding, see ``tests/engine/models/test_effvit.py``). With a hook the
        explicit path runs so the hook sees the post-softmax map.
        """
        b, n, _ = x.shape
        q, k, v = (
            t.reshape(b, n, self.heads, -1).transpose(1, 2)  # 'b n (h d) -> b h n d'
            for t in self.to_qkv(x).chunk(3, dim=-1)
        )
        if self.recording:
            # scale q, not q k^T: the same logits without a second (B, h, N, N) temporary
            attn = self.attend(torch.matmul(q * self.scale, k.transpose(-1, -2)))  # (B, h, N, N)
            out = torch.matmul(attn, v)  # (B, h, N, d)
        else:
            out = nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (B, h, N, d)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))  # 'b h n d -> b n (h d)'


class FeedForward(nn.Module):
    """``Linear(dim, hidden) -> GELU -> Dropout -> Linear(hidden, dim) -> Dropout`` (seed layout, dropout 0)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float, mlp_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads=heads, dim_head=dim_head, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_dim, dropout=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """``depth`` :class:`Block` s, no final norm (seed).

    Attributes:
        recompute: run each block under ``torch.utils.checkpoint`` (non-reentrant) when
            gradients are recorded: the forward pass saves only each block's input and
            the backward pass re-runs the block just before its gradients. Same numbers;
            used by the relevancy pass (:meth:`EffViT.recompute_attention`) so that one
            block's ``(B, heads, N, N)`` attention is alive at a time. Off by default.
    """

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, heads, dim_head, dropout, mlp_dim) for _ in range(depth)])
        self.recompute = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recompute = self.recompute and torch.is_grad_enabled()
        for blk in self.blocks:
            x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False) if recompute else blk(x)
        return x


# ============================================================================ model
@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a model (number of scalar parameters).

    Attributes:
        total: all parameters. trainable: ``requires_grad=True``.
        backbone: the EfficientNet (incl. its ImageNet head when kept).
    """

    total: int
    trainable: int
    backbone: int


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` scalar parameter counts of ``module``."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Reset every BatchNorm's running statistics to the exact average over ``batches``.

    Why: with ``momentum=0.01`` (the seed's) the running statistics move slowly, and
    from torchvision's random init (depthwise convs initialised with fan-out ``C*9``,
    not ``9``) the features of a freshly built EffViT in ``eval()`` are ~1e-10. A
    short training run, or a test on an untrained model, can re-estimate the
    statistics here (cumulative average, ``momentum=None``) instead. The forwards run
    in ``train()`` mode (dropout, stochastic depth active), as BN sees batches in training.

    Args:
        model: any module; its train/eval mode and BN momenta are restored.
        batches: model inputs, e.g. ``float32 (B, 3, 224, 224)`` from :func:`preprocess_crops`.

    Returns:
        Number of batches seen.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in bns]
    was_training = model.training
    n = 0
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for x in batches:
            model(x)
            n += 1
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)
    return n


class EffViT(nn.Module):
    """EfficientNet-B0 + ViT, seed 2 §2.2 (see the module docstring for shapes and counts).

    Args:
        config: architecture; defaults to the seed's.

    Attributes (state_dict names follow the seed where the seed's layout is kept):
        efficient_net: ``torchvision.models.EfficientNet`` B0 (``features`` used;
            ``classifier`` kept unused when ``config.keep_imagenet_head``, else ``nn.Identity``).
        patch_to_embedding, cls_token, pos_embedding, dropout, transformer, mlp_head.
    """

    def __init__(self, config: EffViTConfig = EffViTConfig()):
        super().__init__()
        self.config = c = config
        norm = functools.partial(nn.BatchNorm2d, eps=c.bn_eps, momentum=c.bn_momentum)
        self.efficient_net = torchvision.models.efficientnet_b0(weights=None, norm_layer=norm)
        if not c.keep_imagenet_head:
            self.efficient_net.classifier = nn.Identity()
        for i, block in enumerate(self.mbconv_blocks()):
            block.requires_grad_(i >= c.trainable_blocks_from)

        self.patch_to_embedding = nn.Conv1d(1, c.num_tokens, kernel_size=c.dim, stride=c.dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, c.emb_dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, c.num_tokens + 1, c.emb_dim))
        self.dropout = nn.Dropout(c.emb_dropout)
        self.transformer = Transformer(c.emb_dim, c.depth, c.heads, c.dim_head, c.mlp_dim, c.dropout)
        self.mlp_head = nn.Sequential(nn.Linear(c.emb_dim, c.mlp_dim), nn.ReLU(), nn.Linear(c.mlp_dim, c.num_classes))

    # ------------------------------------------------------------------ structure
    def mbconv_blocks(self) -> list[nn.Module]:
        """The 16 MBConv blocks in order (``efficientnet_pytorch``'s ``_blocks[0..15]``)."""
        blocks = [b for stage in self.efficient_net.features[1:-1] for b in stage]
        assert len(blocks) == B0_NUM_BLOCKS, len(blocks)
        return blocks

    def gradcam_layer(self) -> nn.Module:
        """Grad-CAM target: the last MBConv stage ``efficient_net.features[7]``, output ``(B, 320, 7, 7)``.

        Not the 1x1 head conv (``features[8]``, ``(B, 1280, 7, 7)``, the seed's
        ``extract_features`` output): there Grad-CAM is identically zero. Each token
        holds one value per 7x7 cell (``emb_dim`` = 49 = cells) and every path from a
        token to the logit starts with a LayerNorm over those 49 values, so adding a
        constant to one feature channel at every cell cannot change the logit; hence
        ``sum_hw d logit / d A_c = 0`` for every channel c, and Grad-CAM's channel
        weights (spatial means of the gradient) vanish up to float error
        (``tests/engine/explain/test_gradcam.py`` checks this). One layer earlier the
        head conv's BN + SiLU break that invariance.
        """
        return self.efficient_net.features[-2]

    def token_embedding_layer(self) -> nn.Module:
        """The patch embedding (output ``(B, 1024, 49)``: one value per token per 7x7 cell), for
        :func:`engine.explain.spatial_relevancy_maps`."""
        return self.patch_to_embedding

    def attention_layers(self) -> list[nn.Module]:
        """Each block's ``attn.attend`` (Softmax) in block order; output ``(B, heads, N+1, N+1)``."""
        return [blk.attn.attend for blk in self.transformer.blocks]

    @contextlib.contextmanager
    def recompute_attention(self) -> Iterator[None]:
        """Within the ``with`` block, recompute each transformer block in the backward pass
        (:attr:`Transformer.recompute`) instead of keeping its activations.

        For explanations (:func:`engine.explain.relevancy_gradcam_maps`): with the
        attention hooked, each block would otherwise keep its ``float32 (B, 8, 1025,
        1025)`` post-softmax map (34 MB per crop) until the backward pass reaches it.
        Costs one more forward pass of the transformer (not of the EfficientNet).
        Restores the previous setting on exit, also on error.
        """
        before = self.transformer.recompute
        self.transformer.recompute = True
        try:
            yield
        finally:
            self.transformer.recompute = before

    def parameter_counts(self) -> ParamCounts:
        """Total / trainable / backbone parameter counts (see the module docstring)."""
        total, trainable = count_parameters(self)
        return ParamCounts(total=total, trainable=trainable, backbone=count_parameters(self.efficient_net)[0])

    # ------------------------------------------------------------------ forward
    def features(self, img: torch.Tensor) -> torch.Tensor:
        """``img: float32 (B, 3, 224, 224)`` BGR 0..255 -> ``(B, 1280, 7, 7)`` (seed ``extract_features``)."""
        return self.efficient_net.features(img)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Classify face crops.

        Args:
            img: ``float32 (B, 3, image_size, image_size)`` from :func:`preprocess_crops`
                (BGR, 0..255, unnormalised).

        Returns:
            ``float32 (B, num_classes)`` logits; with the seed config ``(B, 1)`` and
            ``P(fake) = sigmoid(logit)``.

        Raises:
            ValueError: wrong input shape.
        """
        c = self.config
        if img.ndim != 4 or img.shape[1] != 3 or tuple(img.shape[-2:]) != (c.image_size, c.image_size):
            raise ValueError(f"expected input (B, 3, {c.image_size}, {c.image_size}), got {tuple(img.shape)}")
        x = self.features(img)  # (B, 1280, 7, 7)
        y = self.patch_to_embedding(patches_to_sequence(x, c.patch_size))  # (B, num_tokens, emb_dim)
        t = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), y), dim=1) + self.pos_embedding
        t = self.transformer(self.dropout(t))
        return self.mlp_head(t[:, 0])
