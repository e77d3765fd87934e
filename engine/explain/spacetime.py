"""Space-time relevancy for divided-attention video transformers (TimeSformer, spec §5, ``deepfake.av``).

Chefer et al. (ICCV 2021, arXiv:2103.15679) explain a self-attention stack with
rule 5, ``Ā = E_h[(∇A ⊙ A)^+]`` (:func:`engine.explain.avg_heads`), and rule 6,
``R ← R + Ā R`` starting from ``R = I`` (:func:`engine.explain.apply_self_attention_rules`);
the relevance of the input tokens for the output is the CLS row of ``R``. A
TimeSformer block (:mod:`engine.models.timesformer`) has **two** attentions
over the ``1 + P·T`` tokens (CLS, then patch ``p`` of frame ``t`` in "(p t)" order),
neither of which is a plain ``(1+PT)²`` self-attention. Each is written here as
the full-token attention it *acts as*, and rule 6 is applied to those, in forward
order (time_1, space_1, time_2, …):

* **time attention** (per patch position ``p``, over its ``T`` frames; CLS excluded):
  ``Ā_time[(p,t), (p,t')] = E_h[(∇A^p ⊙ A^p)^+][t, t']``, every other entry 0 (the CLS row is
  zero: its update is the identity, which rule 6's ``I`` already carries). The time map
  is how relevance crosses frames: a patch of face frame 3 that the CLS relies on
  passes part of its relevance to the same patch position in the frames it attended to.
* **space attention** (per frame ``t``, over ``[CLS, P patches of t]``, CLS copied into
  every frame and the ``T`` CLS outputs averaged): with ``a^t = E_h[(∇A^t ⊙ A^t)^+]``
  ``(P+1, P+1)``, patch rows ``Ā[(i,t), (j,t)] = a^t[i, j]``, ``Ā[(i,t), CLS] = a^t[i, 0]``;
  the CLS row ``Ā[CLS, (j,t)] = a^t[0, j]`` and ``Ā[CLS, CLS] = Σ_t a^t[0, 0]``. The
  averaging's 1/T needs no extra factor: the gradient ``∇A^t`` already carries it
  (this is rule 5 applied to the averaged map ``(1/T)·A^t`` written back in ``A^t``).
* **rollout (rule 6)** ``R = Π_l (I + Ā_l)`` (last layer leftmost). Only the CLS row is
  needed, so instead of the ``(1+PT)²`` matrix (39 M entries for the paper config) the
  row vector ``v = e_CLS`` is multiplied through the layers from the last to the first,
  ``v ← v + v Ā_l``, using the block structure above: this **equals** row 0 of ``R``
  (asserted against the dense product in ``tests/engine/models/test_timesformer.py``).

What is **not** computed: the residual/LayerNorm/FFN paths and ``temporal_fc`` are
treated as in Chefer's rules (through the identity term only); values (``V``) and
the patch embedding are not attributed, so a patch's relevance is assigned to its
whole ``p×p`` pixel square; the latency MLP (SyncNet features) bypasses the
transformer and gets no map (its share of the decision is not in these numbers).

Target: the log-odds of "fake", ``logit_fake − logit_real`` (two-class softmax model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.explain.relevancy import avg_heads, record_attention

__all__ = ["SpaceTimeRelevancy", "cls_row_rollout", "space_time_relevancy", "fake_log_odds", "patch_maps"]


def fake_log_odds(logits: torch.Tensor) -> torch.Tensor:
    """Default target: ``logits[:, 1] - logits[:, 0]`` of ``(B, 2)`` logits -> ``(B,)``."""
    return logits[:, 1] - logits[:, 0]


@dataclass
class SpaceTimeRelevancy:
    """Relevance of every input token of a divided space-time transformer for its output.

    Attributes:
        cls: float32 ``(B,)`` relevance left on the CLS token itself (rule 6 identity and CLS→CLS).
        patches: float32 ``(B, T, g, g)`` relevance of patch ``(row, col)`` of frame ``t``
            (raw rule-6 values, ≥ 0, not normalised).
        logits: float32 ``(B, C)`` of the explained forward pass.
    """

    cls: np.ndarray
    patches: np.ndarray
    logits: np.ndarray

    def frame_share(self, frames: slice) -> np.ndarray:
        """Share of the patch relevance in ``frames`` (e.g. ``slice(16, 32)`` = mel images), ``(B,)`` in [0, 1]."""
        tot = self.patches.sum(axis=(1, 2, 3))
        part = self.patches[:, frames].sum(axis=(1, 2, 3))
        return np.where(tot > 0, part / np.where(tot > 0, tot, 1.0), 0.0)


def cls_row_rollout(time_maps: list[torch.Tensor], space_maps: list[torch.Tensor], num_frames: int,
                    batch: int) -> torch.Tensor:
    """Row CLS of ``R = Π_l (I + Ā_l)`` for divided attention (rule 6; see module docstring).

    Args:
        time_maps: per block, rule-5 map of the time attention, ``(B*P, T, T)`` (row block
            ``b*P + p`` = patch ``p`` of sample ``b``).
        space_maps: per block, rule-5 map of the space attention, ``(B*T, P+1, P+1)`` (row block
            ``b*T + t`` = frame ``t``; index 0 = the CLS copy).
        num_frames: T. batch: B.

    Returns:
        float ``(B, 1 + P*T)``: relevance of [CLS, tokens in "(p t)" order] for the CLS output.

    Raises:
        ValueError: different numbers of time and space maps.
    """
    if len(time_maps) != len(space_maps) or not time_maps:
        raise ValueError(f"need one time and one space map per block, got {len(time_maps)} and {len(space_maps)}")
    t = num_frames
    p = space_maps[0].shape[-1] - 1
    ref = space_maps[0]
    v0 = torch.ones(batch, dtype=ref.dtype, device=ref.device)          # CLS entry of v
    vp = torch.zeros(batch, p, t, dtype=ref.dtype, device=ref.device)   # patch entries, (B, P, T)
    for a_t, a_s in zip(reversed(time_maps), reversed(space_maps)):     # forward order: time, space; so space first
        # v <- v + v Ā_space
        a_s = a_s.reshape(batch, t, p + 1, p + 1)
        w = torch.cat((v0[:, None, None].expand(batch, t, 1), vp.transpose(1, 2)), dim=2)  # (B, T, P+1)
        z = torch.einsum("bti,btij->btj", w, a_s)                       # (B, T, P+1)
        v0, vp = v0 + z[:, :, 0].sum(dim=1), vp + z[:, :, 1:].transpose(1, 2)
        # v <- v + v Ā_time (CLS row and column are zero)
        a_t = a_t.reshape(batch, p, t, t)
        vp = vp + torch.einsum("bpt,bpts->bps", vp, a_t)
    return torch.cat((v0[:, None], vp.reshape(batch, p * t)), dim=1)


def space_time_relevancy(model: torch.nn.Module, x: torch.Tensor, *extra: torch.Tensor,
                         target=fake_log_odds) -> SpaceTimeRelevancy:
    """Chefer rules 5 + 6 adapted to divided space-time attention (module docstring) for a batch.

    Args:
        model: exposes ``attention_layers()`` = ``[time_0, space_0, time_1, …]`` post-softmax modules
            and a ``backbone.cfg`` (or ``cfg``) with ``num_frames`` and ``grid``
            (e.g. :class:`engine.models.timesformer.AVTimeSformer`).
        x: float32 ``(B, 3, T, S, S)`` model input (``preprocess_av``).
        *extra: further forward arguments (the ``(B, 33)`` latency vector of ``AVTimeSformer``).
        target: ``logits (B, C) -> (B,)`` whose gradient is explained (default: fake log-odds).

    Returns:
        :class:`SpaceTimeRelevancy`. The model is run in ``eval()`` mode with gradients
        enabled and restored afterwards; no parameter gradient is kept.
    """
    cfg = getattr(getattr(model, "backbone", model), "cfg")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), record_attention(model) as rec:
            xin = x.detach().requires_grad_(True)  # makes every attention map part of the graph
            logits = model(xin, *extra)
            maps = list(rec.maps)
            grads = torch.autograd.grad(target(logits).sum(), maps)
            ms = [avg_heads(a.detach(), g.detach()) for a, g in zip(maps, grads)]
    finally:
        model.train(was_training)
    v = cls_row_rollout(ms[0::2], ms[1::2], cfg.num_frames, x.shape[0])
    g = cfg.grid
    patches = v[:, 1:].reshape(x.shape[0], g * g, cfg.num_frames).transpose(1, 2).reshape(x.shape[0], -1, g, g)
    return SpaceTimeRelevancy(v[:, 0].float().cpu().numpy(), patches.float().cpu().numpy(),
                              logits.detach().float().cpu().numpy())


def patch_maps(patches: np.ndarray, size: int) -> np.ndarray:
    """Patch relevance ``(N, g, g)`` -> maps ``float32 (N, size, size)`` in [0, 1], crop pixels.

    Bilinear upsampling (``align_corners=False``), then min-max **per map** (each frame
    on its own scale: compare frames through the raw values / ``frame_share``, not the maps).
    A constant map becomes all zeros.
    """
    t = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))[:, None]
    up = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    return torch.where(hi > lo, (up - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(up)).numpy()
