"""Blanking (deletion) faithfulness check for explanation maps.

Idea of the deletion / perturbation metrics (Samek et al., IEEE TNNLS 2017,
arXiv:1509.06321; Petsiuk et al. "RISE", BMVC 2018): if a map is faithful,
blanking the pixels it ranks highest changes the model's output more than
blanking the same number of random pixels.

For each input n with map ``M_n (H, W)``: ``k = round(fraction * H * W)`` pixels
are blanked (all channels) and ``|P(fake | blanked) - P(fake | original)|`` is
measured, once for the k highest-ranked pixels of ``M_n`` and once (or
``n_random`` times, averaged) for k pixels drawn uniformly without replacement.

Blank value (recorded in the result): ``"mean"`` = the input's own per-channel
mean over all its pixels, in model-input units (for EffViT: BGR 0..255, so a
flat grey-ish patch); ``"zero"`` = 0 (black for EffViT; for a mean/std-normalised
model that is the dataset mean); ``"blur"`` = the same pixels of a Gaussian-blurred
copy (sigma 8 px; the blur perturbation of Fong & Vedaldi, ICCV 2017, which removes
detail without adding the sharp edges a scattered grey mask adds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from engine.explain.occlusion import random_block_mask, top_cam_mask

__all__ = ["FaithfulnessResult", "blanking_faithfulness", "sigmoid_fake_prob"]

ExplainerFn = Callable[[nn.Module, torch.Tensor], np.ndarray]
"""``explainer(model, x (N, C, H, W)) -> float (N, H, W)`` maps (higher = more relevant)."""


def sigmoid_fake_prob(logits: torch.Tensor) -> torch.Tensor:
    """``P(fake) = sigmoid(logits[:, 0])`` for a single-logit model -> ``(N,)``."""
    return torch.sigmoid(logits[:, 0])


def _default_explainer(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Chefer relevancy on the seed's 32x32 grid, resized to the input (attention models only)."""
    from engine.explain.relevancy import relevancy_maps, tokens_to_grid

    return tokens_to_grid(relevancy_maps(model, x), out_size=int(x.shape[-1]), normalize=False)


@dataclass(frozen=True)
class FaithfulnessResult:
    """Outcome of :func:`blanking_faithfulness`.

    Attributes:
        top_delta: mean over inputs of ``|ΔP(fake)|`` when blanking the top-ranked pixels.
        random_delta: the same for random pixels (mean over inputs and draws).
        top_deltas, random_deltas: ``float64 (N,)`` per-input values.
        base_prob: ``float64 (N,)`` P(fake) of the unblanked inputs.
        fraction: fraction of pixels blanked; k: pixels blanked per input.
        blank: ``"mean"``, ``"zero"`` or ``"blur"`` (see :func:`blanking_faithfulness`).
    """

    top_delta: float
    random_delta: float
    top_deltas: np.ndarray
    random_deltas: np.ndarray
    base_prob: np.ndarray
    fraction: float
    k: int
    blank: str

    @property
    def gain(self) -> float:
        """``top_delta - random_delta``: > 0 when the map beats random blanking."""
        return self.top_delta - self.random_delta


BLANK_MODES = ("mean", "zero", "blur")
"""How blanked pixels are filled: per-input channel mean, zero, or a Gaussian blur of the input."""

BLUR_SIGMA = 8.0
"""Standard deviation (pixels) of the ``"blur"`` fill (Fong & Vedaldi 2017's blur perturbation)."""

BLUR_KERNEL = 49
"""Kernel side (pixels) of the ``"blur"`` fill (about 6 sigma)."""


def _blank(x: torch.Tensor, masks: np.ndarray, blank: str) -> torch.Tensor:
    """``x (N, C, H, W)``; ``masks bool (N, H, W)`` True = blank."""
    m = torch.from_numpy(masks).to(x.device)[:, None]  # (N, 1, H, W)
    if blank == "blur":
        from torchvision.transforms.functional import gaussian_blur

        fill = gaussian_blur(x, kernel_size=[BLUR_KERNEL, BLUR_KERNEL], sigma=[BLUR_SIGMA, BLUR_SIGMA])
    elif blank == "mean":
        fill = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    else:
        fill = torch.zeros_like(x)
    return torch.where(m, fill, x)


@torch.no_grad()
def _probs(model: nn.Module, x: torch.Tensor, prob_fn, batch_size: int) -> np.ndarray:
    return np.concatenate(
        [prob_fn(model(x[i : i + batch_size])).double().cpu().numpy() for i in range(0, x.shape[0], batch_size)]
    )


def blanking_faithfulness(
    model: nn.Module,
    crops: torch.Tensor,
    fraction: float = 0.1,
    *,
    maps: np.ndarray | None = None,
    explainer: ExplainerFn | None = None,
    blank: str = "mean",
    n_random: int = 1,
    seed: int = 0,
    prob_fn: Callable[[torch.Tensor], torch.Tensor] = sigmoid_fake_prob,
    batch_size: int = 8,
    random_cell: int = 1,
) -> FaithfulnessResult:
    """Mean ``|ΔP(fake)|`` when blanking the most relevant ``fraction`` of pixels vs a random ``fraction``.

    Args:
        model: classifier; evaluated in ``eval()`` mode (restored afterwards).
        crops: ``float32 (N, C, H, W)`` model input (for EffViT: ``preprocess_crops``).
        fraction: share of the ``H * W`` pixels blanked, in (0, 1).
        maps: ``float (N, H, W)`` relevance in crop coordinates (any range, higher =
            more relevant). If None, ``explainer(model, crops)`` computes them; if that
            is None too, Chefer relevancy (:func:`engine.explain.relevancy_maps` +
            ``tokens_to_grid``) for attention models such as EffViT.
        blank: ``"mean"`` (per-input, per-channel mean), ``"zero"``, or ``"blur"`` (the pixels of a
            Gaussian-blurred copy, sigma :data:`BLUR_SIGMA`: removes detail without adding edges, so
            scattered and connected masks are compared on information removed rather than noise added).
        n_random: random draws per input, averaged.
        seed: seed of the random pixel draws (``numpy.random.default_rng``).
        prob_fn: ``logits -> (N,)`` probability; default ``sigmoid(logits[:, 0])``.
        batch_size: inputs per forward.
        random_cell: side in pixels of the cells the random baseline blanks. 1 blanks
            scattered single pixels (salt-and-pepper noise, a different perturbation
            from blanking a connected relevant region); the map's own granularity
            (7 for EffViT's 32x32 token grid on 224 px) blanks random whole cells, so
            both masks have the same structure and only *where* differs. Exactly ``k``
            pixels either way (:func:`engine.explain.occlusion.random_block_mask`).

    Returns:
        :class:`FaithfulnessResult`. Ties in a map are broken by pixel order
        (row-major, stable sort), so a constant map blanks the top rows.

    Raises:
        ValueError: bad ``fraction``, ``blank``, ``n_random`` or map shape.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if blank not in BLANK_MODES:
        raise ValueError(f"blank must be one of {BLANK_MODES}, got {blank!r}")
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    if random_cell < 1:
        raise ValueError(f"random_cell must be >= 1, got {random_cell}")
    if crops.ndim != 4:
        raise ValueError(f"crops must be (N, C, H, W), got {tuple(crops.shape)}")
    n, _, h, w = crops.shape
    k = max(1, int(round(fraction * h * w)))

    was_training = model.training
    model.eval()
    try:
        x = crops.detach().to(next(model.parameters()).device)
        if maps is None:
            maps = (explainer or _default_explainer)(model, x)
        maps = np.asarray(maps, dtype=np.float64)
        if maps.shape != (n, h, w):
            raise ValueError(f"maps must be {(n, h, w)}, got {maps.shape}")

        base = _probs(model, x, prob_fn, batch_size)

        top = top_cam_mask(maps, k)
        top_deltas = np.abs(_probs(model, _blank(x, top, blank), prob_fn, batch_size) - base)

        rng = np.random.default_rng(seed)
        rand = np.zeros(n, dtype=np.float64)
        for _ in range(n_random):
            masks = np.stack([random_block_mask(rng, h, w, k, random_cell) for _ in range(n)])
            rand += np.abs(_probs(model, _blank(x, masks, blank), prob_fn, batch_size) - base)
        rand /= n_random
    finally:
        model.train(was_training)

    return FaithfulnessResult(
        top_delta=float(top_deltas.mean()),
        random_delta=float(rand.mean()),
        top_deltas=top_deltas,
        random_deltas=rand,
        base_prob=base,
        fraction=float(fraction),
        k=k,
        blank=blank,
    )
