"""Transformer relevancy (Chefer et al.) for attention models such as :class:`engine.models.EffViT`.

Paper: H. Chefer, S. Gur, L. Wolf, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV 2021,
arXiv:2103.15679 (code: hila-chefer/Transformer-MM-Explainability). Seed 2 §2.5
applies its self-attention rules to the EfficientNet-B0 + ViT detector:

1. forward with the post-softmax attention ``A_b`` of every block recorded
   (:func:`record_attention`) and its gradient ``dy/dA_b`` from the single fake logit ``y``;
2. ``R = I`` (``N+1`` tokens incl. CLS); for each block in order
   ``Ā = E_h[(∇A ⊙ A)^+]`` (rule 5, :func:`avg_heads`) and ``R = R + Ā R`` (rule 6,
   :func:`apply_self_attention_rules`);
3. relevance = ``R[0, 1:]``: the CLS row without CLS (1024 values for EffViT).

The rules are pure functions so they read against the paper and are tested
against a hand computation; :func:`relevancy_maps` holds no state between calls.

**Tokens are not pixels.** EffViT's 1024 tokens are learned projections of the
whole 7x7x1280 feature map (spec §2.2 step 3), so token k has no location.
:func:`tokens_to_grid` reproduces the seed's visualisation, which lays them out
on a 32x32 grid anyway: a heuristic of the seed, not geometry. Treat the map
as the seed's picture, not as evidence of *where* a manipulation is.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from engine.explain.gradcam import GradCAMResult

__all__ = [
    "AttentionRecord",
    "record_attention",
    "avg_heads",
    "apply_self_attention_rules",
    "relevancy_from_attention",
    "cls_relevancy_from_attention",
    "relevancy_maps",
    "relevancy_gradcam_maps",
    "RelevancyGradCAM",
    "spatial_relevancy_maps",
    "relevancy_map",
    "tokens_to_grid",
    "fake_logit",
]

TargetFn = Callable[[torch.Tensor], torch.Tensor]
"""``target(logits (B, C)) -> (B,)`` scores whose gradient is explained."""


def fake_logit(logits: torch.Tensor) -> torch.Tensor:
    """Default target: column 0 of ``logits (B, C)`` (EffViT's single "fake" logit) -> ``(B,)``."""
    return logits[:, 0]


# ============================================================================ recording
@dataclass
class AttentionRecord:
    """Attention maps and their gradients captured inside :func:`record_attention`.

    Attributes:
        maps: one ``float (B, heads, N, N)`` post-softmax attention per recorded
            layer call, in call (= block) order; still attached to the autograd graph.
        grads: ``d target / d map`` per entry of ``maps`` (same shapes), filled by the
            tensor hooks when a backward pass reaches the map; ``None`` until then.
    """

    maps: list[torch.Tensor] = field(default_factory=list)
    grads: list[torch.Tensor | None] = field(default_factory=list)

    def clear(self) -> None:
        """Drop all maps and gradients (and with them the autograd graph they reference)."""
        self.maps.clear()
        self.grads.clear()


def _attention_layers(model: nn.Module) -> list[nn.Module]:
    getter = getattr(model, "attention_layers", None)
    if getter is None:
        raise TypeError(
            f"{type(model).__name__} has no attention_layers(): it must list the modules whose output "
            "is the post-softmax attention (B, heads, N, N), in block order"
        )
    layers = list(getter())
    if not layers:
        raise ValueError(f"{type(model).__name__}.attention_layers() is empty")
    return layers


@contextlib.contextmanager
def record_attention(model: nn.Module, grads: bool = True) -> Iterator[AttentionRecord]:
    """Record every attention map (and, on backward, its gradient) while the block is open.

    Registers a forward hook on each module of ``model.attention_layers()``; the
    hook keeps the output tensor and, if ``grads`` and the tensor requires grad,
    calls ``register_hook`` on it to capture its gradient. On exit (also on error)
    every hook handle is removed and the record is cleared, so nothing stays on
    the model and a later forward stores no attention.

    Args:
        model: exposes ``attention_layers() -> list[nn.Module]`` (e.g. ``EffViT``).
        grads: also capture gradients.

    Yields:
        :class:`AttentionRecord`; entries append in forward order (call
        ``record.clear()`` between forwards to reuse it).

    Raises:
        TypeError: the model has no ``attention_layers``.
    """
    record = AttentionRecord()
    handles = []

    def on_forward(module, inputs, output):
        idx = len(record.maps)
        record.maps.append(output)
        record.grads.append(None)
        if grads and output.requires_grad:

            def on_grad(g, idx=idx):
                if idx < len(record.grads):
                    record.grads[idx] = g

            output.register_hook(on_grad)

    try:
        for layer in _attention_layers(model):
            handles.append(layer.register_forward_hook(on_forward))
        yield record
    finally:
        for h in handles:
            h.remove()
        record.clear()


# ============================================================================ rules
def avg_heads(attn: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Rule 5 (Chefer et al. 2021, eq. 5): ``Ā = E_h[(∇A ⊙ A)^+]``.

    Args:
        attn: post-softmax attention ``(..., heads, N, N)``.
        grad: its gradient, same shape.

    Returns:
        ``(..., N, N)``: the mean over the head axis (-3) of ``clamp(grad * attn, min=0)``.
        (The seed's helper reshapes to ``(-1, N, N)`` and so only works for batch 1;
        this keeps any leading batch axes.)
    """
    if attn.shape != grad.shape or attn.ndim < 3:
        raise ValueError(f"attn and grad must share a (..., heads, N, N) shape, got {attn.shape} and {grad.shape}")
    return (grad * attn).clamp_(min=0).mean(dim=-3)  # in place on the product: one (B, heads, N, N) temporary


def apply_self_attention_rules(R: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Rule 6 (Chefer et al. 2021, eq. 6): ``R = R + Ā R`` for self-attention.

    Args:
        R: relevancy so far ``(..., N, N)`` (starts as the identity).
        cam: ``Ā`` from :func:`avg_heads`, ``(..., N, N)``.

    Returns:
        The updated ``(..., N, N)`` (a new tensor). The seed's helper returns only
        the addition ``Ā R`` and its caller does ``R += ...``; same result.
    """
    return R + torch.matmul(cam, R)


def relevancy_from_attention(maps: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Full relevancy matrix from per-block attention maps and gradients (rules 5 + 6).

    Args:
        maps, grads: per block in forward order, each ``(B, heads, N, N)`` (or ``(heads, N, N)``).

    Returns:
        ``R``: ``(B, N, N)`` (or ``(N, N)``) in the maps' dtype; row 0 is the CLS row.

    Raises:
        ValueError: no blocks, mismatched lengths or shapes.
    """
    if not maps or len(maps) != len(grads):
        raise ValueError(f"need one gradient per attention map, got {len(maps)} maps and {len(grads)} grads")
    n = maps[0].shape[-1]
    R = torch.eye(n, dtype=maps[0].dtype, device=maps[0].device).expand(*maps[0].shape[:-3], n, n)
    for attn, grad in zip(maps, grads):
        if grad is None:
            raise ValueError("an attention map has no gradient (the backward pass did not reach it)")
        R = apply_self_attention_rules(R, avg_heads(attn, grad))
    return R


def cls_relevancy_from_attention(maps: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Row 0 (the CLS row) of :func:`relevancy_from_attention`, without the ``N x N`` products.

    Rule 6 applied block by block gives ``R = (I + Ā_L) ... (I + Ā_1)`` (block 1 first
    in the forward pass), so its CLS row is ``e_0ᵀ (I + Ā_L) ... (I + Ā_1)``: a row
    vector multiplied from the last block back to the first, ``v <- v + v Ā_b``. The
    same numbers (up to float rounding) at ``O(N²)`` per block instead of ``O(N³)``
    (for EffViT's 1025 tokens about 1 GFLOP less per block and crop).

    Args:
        maps, grads: per block in forward order, each ``(B, heads, N, N)`` (or ``(heads, N, N)``).

    Returns:
        ``(B, N)`` (or ``(N,)``): ``R[..., 0, :]`` in the maps' dtype (entry 0 is CLS itself).

    Raises:
        ValueError: no blocks, mismatched lengths or shapes, a missing gradient.
    """
    if not maps or len(maps) != len(grads):
        raise ValueError(f"need one gradient per attention map, got {len(maps)} maps and {len(grads)} grads")
    v = _cls_row_start(maps[0])
    for attn, grad in zip(reversed(list(maps)), reversed(list(grads))):
        if grad is None:
            raise ValueError("an attention map has no gradient (the backward pass did not reach it)")
        v = _cls_row_step(v, attn, grad)
    return v[..., 0, :]


def _cls_row_start(attn: torch.Tensor) -> torch.Tensor:
    """``e_0ᵀ`` as ``(..., 1, N)`` for maps shaped like ``attn (..., heads, N, N)``."""
    n = attn.shape[-1]
    v = torch.zeros(*attn.shape[:-3], 1, n, dtype=attn.dtype, device=attn.device)
    v[..., 0, 0] = 1.0
    return v


def _cls_row_step(v: torch.Tensor, attn: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """One block of the CLS row, last block first: ``v (I + Ā_b) = v + v Ā_b`` (rules 5 + 6)."""
    return v + torch.matmul(v, avg_heads(attn, grad))


# ============================================================================ model-level
@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@dataclass
class _ClsRow:
    row: torch.Tensor  # (B, N)
    extra_grads: tuple[torch.Tensor, ...]


class _ClsRowRecorder:
    """Attention hooks for one forward + one ``autograd.grad``: the CLS relevancy row and the gradients of ``extra``.

    :func:`cls_relevancy_from_attention` consumes the blocks from the last to the first,
    which is the order in which the backward pass produces their gradients. So a tensor
    hook on each block's map (registered in the forward pass) applies ``v <- v + v Ā_b``
    as soon as ``dy/dA_b`` exists and drops the map and its gradient: at most one
    block's ``(B, heads, N, N)`` gradient is alive instead of all of them (for EffViT
    about 200 MB less per crop).

    ``recompute=True`` (a model with ``recompute_attention()``, e.g. EffViT): the
    blocks run under ``torch.utils.checkpoint`` (non-reentrant), so the forward pass
    keeps no block's map but the first (the ``autograd.grad`` input); each block's
    forward runs again inside the backward pass, just before its gradients, and the
    hook keeps that recomputed map (the same numbers) until its gradient has been
    consumed. One block's map is alive at a time instead of every block's (for
    EffViT's 6 blocks of ``8 x 1025 x 1025`` float32 about 170 MB less per crop).

    Raises (from :meth:`backward`):
        RuntimeError: no map was recorded, the gradients arrive out of block order (a
            model whose blocks are not a chain), or the backward pass does not reach a map.
    """

    def __init__(self, layers: Sequence[nn.Module], recompute: bool):
        self.layers = list(layers)
        self.recompute = recompute
        self.reset()

    def reset(self) -> None:
        """Forget the previous chunk (maps, hooks' state): call before each forward pass."""
        n = len(self.layers)
        self.maps: list[torch.Tensor | None] = [None] * n
        self.calls = [0] * n
        self.head: torch.Tensor | None = None
        self.next = n - 1
        self.v: torch.Tensor | None = None

    def on_forward(self, b: int, output: torch.Tensor) -> None:
        first = self.calls[b] == 0
        self.calls[b] += 1
        if not first:  # the block's forward re-run by the checkpoint inside the backward pass
            self.maps[b] = output.detach()
            return
        if b == 0:
            self.head = output  # the autograd.grad input: kept (one map)
        elif output.requires_grad:
            output.register_hook(lambda g, b=b: self._consume(b, g))
        if b == 0 or not self.recompute:
            self.maps[b] = output

    def _consume(self, b: int, grad: torch.Tensor) -> None:
        if b != self.next:
            raise RuntimeError(f"attention gradient of block {b} arrived before block {self.next}'s")
        attn = self.maps[b]
        if attn is None:
            raise RuntimeError(f"the attention map of block {b} was not recorded (recomputed) before its gradient")
        with torch.no_grad():
            attn = attn.detach()
            v = _cls_row_start(attn) if self.v is None else self.v
            self.v = _cls_row_step(v, attn, grad)
        self.maps[b] = None
        self.next -= 1

    def backward(self, score: torch.Tensor, extra: list[torch.Tensor]) -> _ClsRow:
        """``autograd.grad(score.sum(), [map of block 0] + extra)``, consuming every block on the way."""
        if self.head is None or self.calls[0] == 0:
            raise RuntimeError("no attention map was recorded in the forward pass")
        grads = torch.autograd.grad(score.sum(), [self.head] + list(extra))
        if self.next != 0:
            raise RuntimeError(f"the backward pass did not reach the attention map of block {self.next}")
        self._consume(0, grads[0])
        row = self.v[:, 0, :]
        self.reset()
        return _ClsRow(row=row, extra_grads=tuple(grads[1:]))

    @contextlib.contextmanager
    def hooked(self, model: nn.Module) -> Iterator["_ClsRowRecorder"]:
        """Register the hooks (and the model's block recomputation) for the ``with`` block; removed on exit."""
        handles = [layer.register_forward_hook(lambda _m, _i, o, b=b: self.on_forward(b, o))
                   for b, layer in enumerate(self.layers)]
        try:
            with (model.recompute_attention() if self.recompute else contextlib.nullcontext()):
                yield self
        finally:
            for h in handles:
                h.remove()
            self.reset()


@dataclass(frozen=True)
class _PassOutput:
    logits: np.ndarray  # (N, C)
    tokens: np.ndarray  # (N, T)
    cells: np.ndarray | None  # (N, E)
    cam_acts: np.ndarray | None  # (N, C', h, w)
    cam_grads: np.ndarray | None  # (N, C', h, w)


def _relevancy_pass(model: nn.Module, x: torch.Tensor, target: TargetFn, batch_size: int,
                    spatial: bool, cam_layer: nn.Module | None = None) -> _PassOutput:
    """One forward and one ``autograd.grad`` per chunk: the logits, the token relevance ``(N, T)``,
    with ``spatial`` the relevance carried onto the embedding axis ``(N, E)`` (see
    :func:`spatial_relevancy_maps`), and with ``cam_layer`` that layer's activations and
    gradients for Grad-CAM (:func:`relevancy_gradcam_maps`)."""
    if x.ndim != 4 or x.shape[0] < 1:
        raise ValueError(f"x must be (N, C, H, W) with N >= 1, got {tuple(x.shape)}")
    emb_layer = None
    if spatial:
        getter = getattr(model, "token_embedding_layer", None)
        if getter is None:
            raise TypeError(f"{type(model).__name__} has no token_embedding_layer(): no spatial axis to map onto")
        emb_layer = getter()
    device = next(model.parameters()).device
    bs = max(1, int(batch_size))
    out_logits, out, out_sp, out_acts, out_grads = [], [], [], [], []
    emb: list[torch.Tensor] = []
    acts: list[torch.Tensor] = []
    handles = []
    if emb_layer is not None:
        handles.append(emb_layer.register_forward_hook(lambda _m, _i, o: emb.append(o)))
    if cam_layer is not None:
        def cut(_m, _i, o):
            # the graph starts here: nothing before the layer is recorded or differentiated
            # (the truncated Grad-CAM of engine.explain.gradcam); dy/dA is unchanged
            a = o.detach().requires_grad_(True).clone()
            acts.append(a)
            return a

        handles.append(cam_layer.register_forward_hook(cut))
    try:
        recorder = _ClsRowRecorder(_attention_layers(model), recompute=hasattr(model, "recompute_attention"))
        with _eval_mode(model), torch.enable_grad(), recorder.hooked(model) as rec:
            for start in range(0, x.shape[0], bs):
                rec.reset()
                emb.clear()
                acts.clear()
                xb = x[start : start + bs].detach().to(device)
                if cam_layer is None:
                    # the input requires grad so the maps do even when every parameter is frozen
                    xb.requires_grad_(True)
                logits = model(xb)
                score = target(logits)
                if score.shape != (xb.shape[0],):
                    raise ValueError(f"target must return shape ({xb.shape[0]},), got {tuple(score.shape)}")
                if cam_layer is not None and not acts:
                    raise RuntimeError(f"Grad-CAM layer {type(cam_layer).__name__} was not called in the forward pass")
                v = rec.backward(score, emb[:1] + acts[:1])
                grads = v.extra_grads
                with torch.no_grad():
                    rel = v.row[:, 1:]  # (B, T)
                    k = 0
                    if spatial:
                        e, g = emb[0].detach(), grads[k]  # (B, T, E)
                        out_sp.append(torch.einsum("bt,bte->be", rel, (e * g).abs()).float().cpu().numpy())
                        k += 1
                    if cam_layer is not None:
                        out_acts.append(acts[0].detach().float().cpu().numpy())
                        out_grads.append(grads[k].float().cpu().numpy())
                out.append(rel.float().cpu().numpy())
                out_logits.append(logits.detach().float().cpu().numpy())
                del grads, score, logits, v
                rec.reset()
                emb.clear()
                acts.clear()
    finally:
        for h in handles:
            h.remove()

    def cat(parts: list[np.ndarray]) -> np.ndarray | None:
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False) if parts else None

    return _PassOutput(logits=cat(out_logits), tokens=cat(out), cells=cat(out_sp), cam_acts=cat(out_acts),
                       cam_grads=cat(out_grads))


def relevancy_maps(
    model: nn.Module, x: torch.Tensor, target: TargetFn = fake_logit, batch_size: int = 4
) -> np.ndarray:
    """Token relevance of N inputs (seed 2 §2.5 steps 1-4), one forward/backward per chunk.

    The model runs in ``eval()`` mode (restored afterwards) so dropout is off and
    the samples of a chunk are independent; gradients come from
    ``torch.autograd.grad`` of ``target(model(x)).sum()`` with respect to the
    attention maps only, so no parameter ``.grad`` is written (the seed called
    ``model.zero_grad(); output.backward()``). Works under ``torch.no_grad()``
    (not under ``torch.inference_mode()``).

    Args:
        model: exposes ``attention_layers()`` (e.g. :class:`engine.models.EffViT`).
        x: ``float32 (N, 3, H, W)`` model input (for EffViT: :func:`engine.models.preprocess_crops`).
        target: ``logits (B, C) -> (B,)``; default the fake logit (column 0).
        batch_size: inputs per forward (EffViT keeps ~34 MB of attention per block per input).

    Returns:
        ``float32 (N, T)``: ``R[0, 1:]`` per input, T = tokens without CLS (1024 for
        EffViT); non-negative, unnormalised (units: the rules' accumulated
        gradient x attention, comparable across inputs of one model).

    Raises:
        TypeError: the model has no ``attention_layers``. ValueError: bad ``x``.
    """
    return _relevancy_pass(model, x, target, batch_size, spatial=False).tokens


def spatial_relevancy_maps(
    model: nn.Module, x: torch.Tensor, target: TargetFn = fake_logit, batch_size: int = 4,
    return_tokens: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Chefer token relevance carried onto the image cells through the token embedding.

    EffViT's tokens have no location (module docstring), but each token's 49
    embedding values are one per 7x7 feature-map cell (spec §2.2 step 3: the
    patch embedding is applied per cell). So the spatial axis of the model is the
    embedding axis. For token k with relevance ``R_k = R[0, 1 + k]`` (rules 5-6,
    as :func:`relevancy_maps`) and embedding ``e_k (E,)`` with gradient
    ``g_k = d target / d e_k``, cell j gets ``S_j = sum_k R_k |e_kj g_kj|``: each
    token's relevance split over the cells by gradient x input, the rule used to
    carry relevance through a linear layer. Not in the seed (which drew the token
    vector on a 32x32 grid, :func:`tokens_to_grid`); it is the view whose
    blanking test is in the model card.

    Args:
        model: exposes ``attention_layers()`` and ``token_embedding_layer()`` (its
            output ``(B, T, E)``, E = cells of a square grid).
        x: ``float32 (N, 3, H, W)`` model input. target, batch_size: as :func:`relevancy_maps`.
        return_tokens: also return the token relevance of the same pass.

    Returns:
        ``float32 (N, E)`` non-negative, unnormalised; E = 49 for EffViT, row-major
        7x7 cells of 32x32 crop pixels. :func:`tokens_to_grid` ``(S, pool=1)``
        renders it as a ``(224, 224)`` map. With ``return_tokens``: ``(S, R)``,
        R as returned by :func:`relevancy_maps`.

    Raises:
        TypeError: no ``attention_layers`` / ``token_embedding_layer``. ValueError: bad ``x``.
    """
    res = _relevancy_pass(model, x, target, batch_size, spatial=True)
    return (res.cells, res.tokens) if return_tokens else res.cells


@dataclass(frozen=True)
class RelevancyGradCAM:
    """What :func:`relevancy_gradcam_maps` returns for N inputs.

    Attributes:
        logits: ``float32 (N, C)`` model output of the explained pass (eval mode).
        cells: ``float32 (N, E)`` as :func:`spatial_relevancy_maps`.
        tokens: ``float32 (N, T)`` as :func:`relevancy_maps`.
        gradcam: :class:`engine.explain.gradcam.GradCAMResult` at ``cam_layer`` (maps in input pixels).
    """

    logits: np.ndarray
    cells: np.ndarray
    tokens: np.ndarray
    gradcam: "GradCAMResult"


def relevancy_gradcam_maps(
    model: nn.Module, x: torch.Tensor, cam_layer: nn.Module, target: TargetFn = fake_logit, batch_size: int = 2,
) -> RelevancyGradCAM:
    """Scores, spatial and token relevancy, and Grad-CAM of N inputs from **one** forward/backward.

    :func:`spatial_relevancy_maps` and a truncated :func:`engine.explain.gradcam_maps`
    each need a forward and a backward through the transformer; here one forward
    records the attention maps, the token embedding and ``cam_layer``'s output, and one
    ``autograd.grad`` of ``target(logits).sum()`` returns all their gradients. The
    graph is cut at ``cam_layer`` (as the truncated Grad-CAM does), so nothing before
    it is recorded. Grad-CAM is then formed from those activations and gradients by
    :func:`engine.explain.gradcam.gradcam_from_gradients` (the library's weighting and
    normalisation; equal to :func:`engine.explain.gradcam_maps` with ``truncate=True``,
    tested). About half the cost of the two separate passes on CPU.

    Args:
        model: exposes ``attention_layers()`` and ``token_embedding_layer()`` (EffViT).
        x: ``float32 (N, 3, H, W)`` model input.
        cam_layer: a module with a ``(B, C, h, w)`` output on the path to the target,
            before the transformer (EffViT: ``model.gradcam_layer()``).
        target, batch_size: as :func:`relevancy_maps` (memory grows with ``batch_size``).

    Returns:
        :class:`RelevancyGradCAM`.

    Raises:
        TypeError: the model lacks the layer getters. ValueError: bad ``x`` or target.
        RuntimeError: ``cam_layer`` is not called by the forward pass.
    """
    from engine.explain.gradcam import gradcam_from_gradients

    res = _relevancy_pass(model, x, target, batch_size, spatial=True, cam_layer=cam_layer)
    cam = gradcam_from_gradients(res.cam_acts, res.cam_grads, (int(x.shape[-2]), int(x.shape[-1])))
    return RelevancyGradCAM(logits=res.logits, cells=res.cells, tokens=res.tokens, gradcam=cam)


def relevancy_map(model: nn.Module, x: torch.Tensor, target: TargetFn = fake_logit) -> np.ndarray:
    """Token relevance of one input: ``x float32 (1, 3, H, W)`` -> ``float32 (T,)`` (1024 for EffViT).

    See :func:`relevancy_maps`. Raises ValueError unless ``x`` holds exactly one input.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be (1, C, H, W), got {tuple(x.shape)}")
    return relevancy_maps(model, x, target=target, batch_size=1)[0]


# ============================================================================ visualisation
def tokens_to_grid(
    rel: np.ndarray | torch.Tensor,
    grid: int | None = None,
    pool: int = 2,
    out_size: int = 224,
    normalize: bool = True,
) -> np.ndarray:
    """Token relevance -> image-sized map, seed 2 §2.5 step 5 (a heuristic, see module docstring).

    Steps: reshape to ``(1, 1, grid, grid)`` (row-major: token k at row k // grid,
    column k % grid) -> ``AvgPool2d(pool)`` -> ``interpolate(scale_factor=out_size /
    (grid / pool), mode='bilinear', align_corners=False)`` -> ``(out_size, out_size)``
    -> per-map min-max. With the defaults: 1024 -> 32x32 -> 16x16 -> x14 -> 224x224.

    Normalisation (recorded): ``normalize=True`` maps each map alone to [0, 1] with
    ``(v - min) / (max - min)`` like the seed, so maps of different frames are **not**
    comparable; a constant map becomes all zeros (the seed would divide by 0).
    ``normalize=False`` returns the pooled/interpolated raw relevance instead
    (non-negative, same units as :func:`relevancy_maps`) for normalising across frames.

    Args:
        rel: ``float (T,)`` or ``(N, T)`` token relevance, CLS excluded.
        grid: grid side; default ``sqrt(T)`` (32 for EffViT, ``EffViTConfig.token_grid``).
        pool: average-pooling kernel and stride (2).
        out_size: output side in crop pixels (224).
        normalize: per-map min-max to [0, 1].

    Returns:
        ``float32 (out_size, out_size)`` or ``(N, out_size, out_size)``, crop coordinates
        (pass to ``FaceCrop.heatmap_to_frame``).

    Raises:
        ValueError: ``T`` is not ``grid**2`` or ``grid`` is not divisible by ``pool``.
    """
    t = torch.as_tensor(np.asarray(rel, dtype=np.float32) if not isinstance(rel, torch.Tensor) else rel)
    t = t.detach().float().cpu()
    single = t.ndim == 1
    if single:
        t = t[None]
    if t.ndim != 2:
        raise ValueError(f"rel must be (T,) or (N, T), got {tuple(t.shape)}")
    n_tok = t.shape[1]
    g = int(round(math.sqrt(n_tok))) if grid is None else int(grid)
    if g * g != n_tok:
        raise ValueError(f"{n_tok} tokens do not fill a {g}x{g} grid")
    if pool < 1 or g % pool:
        raise ValueError(f"grid {g} is not divisible by pool {pool}")
    m = t.reshape(-1, 1, g, g)
    if pool > 1:
        m = F.avg_pool2d(m, kernel_size=pool)
    side = g // pool
    if out_size % side == 0:  # the seed's call (scale_factor=14 for 16 -> 224)
        m = F.interpolate(m, scale_factor=out_size // side, mode="bilinear", align_corners=False)
    else:
        m = F.interpolate(m, size=(out_size, out_size), mode="bilinear", align_corners=False)
    m = m[:, 0].numpy().astype(np.float32, copy=False)
    if normalize:
        lo = m.min(axis=(1, 2), keepdims=True)
        span = m.max(axis=(1, 2), keepdims=True) - lo
        m = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)
    return m[0] if single else m
