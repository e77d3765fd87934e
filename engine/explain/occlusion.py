"""Occlusion sanity check for class-activation maps of multi-class models (seed 1 §1.10).

The issue-6 check: occluding the **top-CAM region** of an input lowers the
softmax probability of the predicted class more than occluding a **random
region of equal size**, on average over held-out clips (deletion-style test,
Samek et al., IEEE TNNLS 2017, arXiv:1509.06321; Petsiuk et al. "RISE", BMVC 2018).
:func:`engine.explain.blanking_faithfulness` is the single-logit P(fake)
version with ``|ΔP|``; this one explains a class of a softmax model and keeps
the sign of the drop.

Per input n with map ``M_n (H, W)`` and target class ``t_n`` (default: the
class predicted on the unoccluded input):

* ``k = round(fraction * H * W)`` pixels are occluded, all channels.
* **top region**: the ``k`` pixels with the highest ``M_n`` (stable sort, ties
  broken in row-major pixel order).
* **random region** (same size, same shape family): the ``H x W`` plane is
  tiled into ``cell``-sized blocks (the CAM's native cell, e.g. 32x32 px for
  ResNet50 ``layer4`` on a 256 crop: one Grad-CAM cell each; edge blocks are
  cut at the border). Blocks are drawn in random order and occluded whole
  until the next one would exceed ``k``; the remaining pixels are the first
  ones, in row-major order, of the next block. So exactly ``k`` pixels, in
  contiguous blocks like the CAM's own (a bilinearly upsampled CAM's top
  region is a few blobs of whole cells, not salt-and-pepper pixels).
  Drawn ``n_random`` times per input and averaged.
* **occlusion value**: the input's own **per-channel mean over all its
  pixels**, in model-input units (for the camera models: the mean log-mel of
  each resolution channel, or the mean 0-255 RGB of the crop), so the occluded
  region carries no structure but no out-of-distribution extreme either.
* **drop** = ``softmax(model(x))[t] - softmax(model(x_occluded))[t]``
  (signed; > 0 means the probability went down).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["OcclusionResult", "occlusion_sanity", "random_block_mask", "top_cam_mask"]


@dataclass(frozen=True)
class OcclusionResult:
    """Outcome of :func:`occlusion_sanity` over N inputs.

    Attributes:
        top_drops: ``float64 (N,)`` drop of the target-class probability when the
            top-CAM region is occluded.
        random_drops: ``float64 (N,)`` the same for random regions of equal size,
            mean over ``n_random`` draws.
        base_prob: ``float64 (N,)`` target-class probability of the unoccluded inputs.
        target: ``int64 (N,)`` the class whose probability is measured.
        fraction: share of the ``H*W`` pixels occluded; k: pixels occluded per input.
        cell: ``(ch, cw)`` pixels of the random blocks; n_random: draws per input.
        fill: the occlusion value (see module docstring).
    """

    top_drops: np.ndarray
    random_drops: np.ndarray
    base_prob: np.ndarray
    target: np.ndarray
    fraction: float
    k: int
    cell: tuple[int, int]
    n_random: int
    fill: str = "per-image per-channel mean"

    @property
    def top_drop(self) -> float:
        """Mean over inputs of :attr:`top_drops`."""
        return float(np.mean(self.top_drops)) if self.top_drops.size else float("nan")

    @property
    def random_drop(self) -> float:
        """Mean over inputs of :attr:`random_drops`."""
        return float(np.mean(self.random_drops)) if self.random_drops.size else float("nan")

    @property
    def gain(self) -> float:
        """``top_drop - random_drop``: > 0 when the CAM's region matters more than a random one."""
        return self.top_drop - self.random_drop

    @property
    def win_rate(self) -> float:
        """Share of inputs whose top-region drop exceeds their random-region drop."""
        return float(np.mean(self.top_drops > self.random_drops)) if self.top_drops.size else float("nan")

    @property
    def passed(self) -> bool:
        """The issue's criterion: mean top-region drop > mean random-region drop."""
        return bool(self.top_drop > self.random_drop)

    def to_dict(self) -> dict:
        """JSON-ready summary (means, counts, settings; no per-input arrays)."""
        return {"n": int(self.top_drops.size), "top_drop": self.top_drop, "random_drop": self.random_drop,
                "gain": self.gain, "win_rate": self.win_rate, "passed": self.passed, "fraction": self.fraction,
                "k": self.k, "cell": list(self.cell), "n_random": self.n_random, "fill": self.fill}

    @staticmethod
    def concat(results: Sequence["OcclusionResult"]) -> "OcclusionResult":
        """Join results of several batches (e.g. every held-out clip) into one.

        Raises:
            ValueError: no results, or their ``fraction``/``k``/``cell``/``n_random`` differ.
        """
        if not results:
            raise ValueError("no results to concatenate")
        r0 = results[0]
        for r in results[1:]:
            if (r.fraction, r.k, r.cell, r.n_random, r.fill) != (r0.fraction, r0.k, r0.cell, r0.n_random, r0.fill):
                raise ValueError("cannot concatenate occlusion results with different settings")
        cat = lambda name: np.concatenate([getattr(r, name) for r in results])  # noqa: E731
        return OcclusionResult(cat("top_drops"), cat("random_drops"), cat("base_prob"), cat("target"),
                               r0.fraction, r0.k, r0.cell, r0.n_random, r0.fill)


def _cell(cell: int | Sequence[int]) -> tuple[int, int]:
    ch, cw = (int(cell), int(cell)) if np.isscalar(cell) else (int(cell[0]), int(cell[1]))
    if ch < 1 or cw < 1:
        raise ValueError(f"cell must be >= 1 pixel, got {cell}")
    return ch, cw


def top_cam_mask(cams: np.ndarray, k: int) -> np.ndarray:
    """``bool (N, H, W)``: the ``k`` highest pixels of each map ``cams float (N, H, W)``.

    Ties are broken by row-major pixel order (stable sort), so a constant map selects the top rows.

    Raises:
        ValueError: ``cams`` not 3-D or ``k`` outside ``[1, H*W]``.
    """
    cams = np.asarray(cams, dtype=np.float64)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (N, H, W), got {cams.shape}")
    n, h, w = cams.shape
    if not 1 <= k <= h * w:
        raise ValueError(f"k must be in [1, {h * w}], got {k}")
    order = np.argsort(-cams.reshape(n, -1), axis=1, kind="stable")[:, :k]
    mask = np.zeros((n, h * w), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask.reshape(n, h, w)


def random_block_mask(rng: np.random.Generator, h: int, w: int, k: int, cell: int | Sequence[int]) -> np.ndarray:
    """``bool (h, w)`` with exactly ``k`` pixels set, as random ``cell`` blocks (see module docstring).

    Args:
        rng: numpy random generator.
        h, w: mask size in pixels.
        k: pixels to set, ``1 <= k <= h*w``.
        cell: block side in pixels, an int or ``(ch, cw)``; blocks tile the plane
            from the top-left corner, edge blocks are cut at the border.

    Raises:
        ValueError: ``k`` outside ``[1, h*w]`` or a cell side < 1.
    """
    ch, cw = _cell(cell)
    if not 1 <= k <= h * w:
        raise ValueError(f"k must be in [1, {h * w}], got {k}")
    if (ch, cw) == (1, 1):  # scattered single pixels: same distribution, without the per-block loop
        flat = np.zeros(h * w, dtype=bool)
        flat[rng.choice(h * w, size=k, replace=False)] = True
        return flat.reshape(h, w)
    gh, gw = -(-h // ch), -(-w // cw)
    mask = np.zeros((h, w), dtype=bool)
    left = k
    for b in rng.permutation(gh * gw):
        y0, x0 = (b // gw) * ch, (b % gw) * cw
        block = mask[y0 : min(y0 + ch, h), x0 : min(x0 + cw, w)]  # a view
        if block.size <= left:
            block[...] = True
            left -= block.size
        else:  # the first `left` pixels of this block, row-major
            ys, xs = np.unravel_index(np.arange(left), block.shape)
            block[ys, xs] = True
            left = 0
        if left == 0:
            break
    return mask


def _occlude(x: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """``x (N, C, H, W)`` with ``masks bool (N, H, W)`` pixels set to each input's per-channel mean."""
    m = torch.from_numpy(masks).to(x.device)[:, None]
    return torch.where(m, x.mean(dim=(2, 3), keepdim=True).expand_as(x), x)


@torch.no_grad()
def _softmax(model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    return np.concatenate([torch.softmax(model(x[i : i + batch_size]).double(), dim=1).cpu().numpy()
                           for i in range(0, x.shape[0], batch_size)])


def occlusion_sanity(
    model: nn.Module,
    x: torch.Tensor,
    cams: np.ndarray,
    fraction: float = 0.1,
    target: int | Sequence[int] | None = None,
    n_random: int = 5,
    rng: np.random.Generator | int | None = 0,
    cell: int | Sequence[int] = 32,
    batch_size: int = 8,
) -> OcclusionResult:
    """Drop of the target-class softmax probability: top-``fraction`` CAM region vs random region of equal size.

    Args:
        model: classifier returning logits ``(N, C)``, ``C >= 2``; run in ``eval()``
            (its mode is restored afterwards).
        x: ``float32 (N, C_in, H, W)`` model input (camera audio: the log-mel
            ``(N, 3, 128, 1500)``; camera image: ``(N, 3, 256, 256)`` 0-255).
        cams: ``float (N, H, W)`` maps in input pixels, higher = more important
            (e.g. :func:`engine.explain.gradcam_maps` ``.maps``); any range.
        fraction: share of the ``H*W`` pixels occluded, in (0, 1).
        target: class index for all inputs, one per input, or None for the
            class predicted on each unoccluded input.
        n_random: random regions per input (their drops are averaged).
        rng: ``numpy.random.Generator`` or a seed for ``default_rng``.
        cell: random block size in pixels, int or ``(ch, cw)``: the CAM's native
            cell, i.e. input size / CAM grid size; 32 for both camera models
            (ResNet50 ``layer4`` and MobileNetV3 ``features[-1]`` have stride 32).
        batch_size: inputs per forward pass.

    Returns:
        :class:`OcclusionResult` (per-input drops, means via its properties).

    Raises:
        ValueError: ``x`` not 4-D, ``cams`` not ``(N, H, W)``, ``fraction`` not in
            (0, 1), ``n_random < 1``, bad ``cell``, a target out of range or the
            wrong number of targets.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {tuple(x.shape)}")
    n, _, h, w = x.shape
    cams = np.asarray(cams, dtype=np.float64)
    if cams.shape != (n, h, w):
        raise ValueError(f"cams must be {(n, h, w)} to match x, got {cams.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    cell_hw = _cell(cell)
    k = max(1, int(round(fraction * h * w)))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device if any(True for _ in model.parameters()) else x.device
        xd = x.detach().to(dev)
        base = _softmax(model, xd, batch_size)
        c = base.shape[1]
        if target is None:
            t = base.argmax(axis=1)
        elif isinstance(target, (int, np.integer)):
            t = np.full(n, int(target))
        else:
            t = np.asarray(list(target), dtype=np.int64)
            if t.shape != (n,):
                raise ValueError(f"{t.size} targets for {n} inputs")
        if ((t < 0) | (t >= c)).any():
            raise ValueError(f"target class out of range [0, {c}): {t.tolist()}")
        rows = np.arange(n)
        p0 = base[rows, t]
        top = p0 - _softmax(model, _occlude(xd, top_cam_mask(cams, k)), batch_size)[rows, t]
        rand = np.zeros(n)
        for _ in range(n_random):
            masks = np.stack([random_block_mask(gen, h, w, k, cell_hw) for _ in range(n)])
            rand += p0 - _softmax(model, _occlude(xd, masks), batch_size)[rows, t]
        rand /= n_random
    finally:
        model.train(was_training)
    return OcclusionResult(top_drops=top, random_drops=rand, base_prob=p0, target=t.astype(np.int64),
                           fraction=float(fraction), k=k, cell=cell_hw, n_random=int(n_random))
