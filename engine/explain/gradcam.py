"""Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391) via pytorch-grad-cam.

A thin wrapper on ``pytorch_grad_cam.GradCAM`` (jacobgil/pytorch-grad-cam 1.5.x)
for "Grad-CAM on the last EfficientNet stage" of :class:`engine.models.EffViT`
(``model.gradcam_layer()`` = the last MBConv stage, output ``(B, 320, 7, 7)``) or
any CNN layer with a ``(B, C, h, w)`` output. (On EffViT's 1280-channel head-conv
output Grad-CAM is identically zero: the transformer's LayerNorms make the logit
invariant to a spatially constant channel shift; see ``EffViT.gradcam_layer``.)

Per input n, with activations ``A (C, h, w)`` of the target layer and the target
score ``y``: ``raw_n = ReLU(sum_c mean_hw(dy/dA_c) * A_c)`` at ``(h, w)``, resized
to the input's ``(H, W)`` with ``cv2.resize`` (bilinear), exactly as the library does.

Normalisation (recorded): the library min-max normalises **each map alone**
(``utils.image.scale_cam_image``), so its maps from different frames are not
comparable. :func:`gradcam_maps` returns those maps *and* the raw maps with their
per-map maximum, so a caller can normalise across frames (``raw / raw_max.max()``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, Union

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # imported lazily: pytorch_grad_cam pulls in matplotlib.pyplot
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

__all__ = ["GradCAMResult", "gradcam_maps", "gradcam_from_gradients", "gradcam_context", "make_target",
           "fake_target"]

Target = Union[None, int, Callable[[torch.Tensor], torch.Tensor]]
"""``None`` (the fake logit), a class index, or ``f(output_of_one_sample (C,)) -> scalar``."""


def fake_target() -> "BinaryClassifierOutputTarget":
    """The "fake" score of a single-logit binary model: ``BinaryClassifierOutputTarget(1)`` (= +logit).

    ``BinaryClassifierOutputTarget(0)`` would explain "real" (= -logit).
    """
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    return BinaryClassifierOutputTarget(1)


def make_target(target: Target) -> Callable[[torch.Tensor], torch.Tensor]:
    """Normalise ``target`` to a pytorch-grad-cam target callable.

    ``None`` -> :func:`fake_target`; ``int i`` -> ``ClassifierOutputTarget(i)``
    (for a single-logit model ``0`` is the logit itself); a callable passes through.

    Raises:
        TypeError: anything else.
    """
    if target is None:
        return fake_target()
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        return ClassifierOutputTarget(int(target))
    if callable(target):
        return target
    raise TypeError(f"target must be None, a class index or a callable, got {type(target).__name__}")


@dataclass(frozen=True)
class GradCAMResult:
    """Grad-CAM maps of N inputs, all in input (crop) pixel coordinates.

    Attributes:
        maps: ``float32 (N, H, W)`` in [0, 1], each map min-max normalised on its own
            (pytorch-grad-cam's ``scale_cam_image``; not comparable across frames). The
            library divides by ``1e-7 + max``, so a map whose range is near 1e-7 or
            below does not reach 1; an all-zero ``raw`` map gives an all-zero map.
        raw: ``float32 (N, H, W)`` >= 0, un-normalised ReLU'd Grad-CAM (units: target
            score gradient x activation), resized like ``maps``.
        raw_max: ``float32 (N,)`` ``raw[n].max()``; divide all ``raw`` by one common
            maximum to compare frames.
    """

    maps: np.ndarray
    raw: np.ndarray
    raw_max: np.ndarray


@contextlib.contextmanager
def gradcam_context(model: nn.Module, target_layer: nn.Module, truncate: bool = False) -> Iterator["GradCAM"]:
    """A ``pytorch_grad_cam.GradCAM`` whose hooks are released on exit.

    Not ``with GradCAM(...)``: the library's ``__exit__`` prints and *swallows*
    ``IndexError``; here every error propagates. The model's train/eval mode and
    every parameter's ``.grad`` are restored on exit (the library switches to
    ``eval()`` and calls ``model.zero_grad()``).

    Args:
        model, target_layer: as :func:`gradcam_maps`.
        truncate: backpropagate only from the score down to ``target_layer``'s
            output. Every parameter's ``requires_grad`` is switched off for the
            duration (restored on exit) and a forward hook, registered before the
            library's, hands the layers after ``target_layer`` a grad-requiring
            copy of its output cut from the graph before it (``A.detach()
            .requires_grad_().clone()``; the clone keeps in-place ops after the
            layer legal). ``dy/dA`` is unchanged, but no weight or input gradient
            is computed and nothing before the layer is recorded: for ResNet50
            ``layer4`` on CPU about 4x cheaper than the full backward. The
            input must then not require grad (it would be unused).
    """
    from pytorch_grad_cam import GradCAM

    was_training = model.training
    saved_grads = [(p, p.grad) for p in model.parameters()]
    saved_flags = [(p, p.requires_grad) for p in model.parameters()]
    handle = None
    if truncate:
        for p, _ in saved_flags:
            p.requires_grad_(False)
        handle = target_layer.register_forward_hook(
            lambda _m, _i, out: out.detach().requires_grad_(True).clone() if isinstance(out, torch.Tensor) else None)
    try:
        cam = GradCAM(model=model, target_layers=[target_layer])
        try:
            yield cam
        finally:
            cam.activations_and_grads.release()
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
        for p, flag in saved_flags:
            p.requires_grad_(flag)
        for p, g in saved_grads:
            p.grad = g


def gradcam_maps(
    model: nn.Module,
    target_layer: nn.Module,
    x: torch.Tensor,
    target: Target | Sequence[Target] = None,
    truncate: bool = False,
) -> GradCAMResult:
    """Grad-CAM of ``target`` at ``target_layer`` for N inputs.

    Args:
        model: any ``nn.Module`` (run in ``eval()``; mode restored afterwards).
        target_layer: a module with ``(B, C, h, w)`` output, e.g. ``EffViT.gradcam_layer()``;
            it must be part of the path from ``x`` to the target score.
        x: ``float32 (N, 3, H, W)`` model input (for EffViT: ``preprocess_crops``).
        target: one target for all inputs or one per input (see :func:`make_target`);
            default the fake logit.
        truncate: backpropagate only down to ``target_layer`` (same maps up to float
            rounding, no weight/input gradients; see :func:`gradcam_context`). Off by
            default (the full backward of the library, as ``deepfake.effvit`` uses).

    Returns:
        :class:`GradCAMResult` with ``(N, H, W)`` maps in crop coordinates.

    Raises:
        ValueError: ``x`` not 4-D, or the number of targets differs from N.
        TypeError: invalid target.
        RuntimeError: ``target_layer`` is not on the path from ``x`` to the score.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {tuple(x.shape)}")
    n, (h, w) = x.shape[0], x.shape[-2:]
    if isinstance(target, (list, tuple)):
        if len(target) != n:
            raise ValueError(f"{len(target)} targets for {n} inputs")
        targets = [make_target(t) for t in target]
    else:
        targets = [make_target(target)] * n

    with gradcam_context(model, target_layer, truncate) as cam, torch.enable_grad():
        # the input requires grad so the layer output does even when every parameter is frozen
        # (truncated: the hook makes the layer output require grad instead)
        xin = x.detach().to(cam.device)
        if not truncate:
            xin.requires_grad_(True)
        try:
            maps = cam(input_tensor=xin, targets=targets)
        except Exception as exc:
            ag = cam.activations_and_grads
            # the library then fails on None activations / gradients with an unhelpful error
            if isinstance(exc, (AttributeError, TypeError)) and (not ag.activations or not ag.gradients):
                raise RuntimeError(
                    f"Grad-CAM: target layer {type(target_layer).__name__} produced no activation or no gradient "
                    "(it is not on the path from x to the target score)"
                ) from exc
            raise
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
    # the raw maps from the same activations and gradients (the library returns only normalised maps)
    raw = gradcam_from_gradients(acts, grads, (int(h), int(w)))
    return GradCAMResult(maps=np.asarray(maps, dtype=np.float32), raw=raw.raw, raw_max=raw.raw_max)


def gradcam_from_gradients(activations: np.ndarray, gradients: np.ndarray, size: tuple[int, int]) -> GradCAMResult:
    """Grad-CAM maps from a layer's activations and their gradients already at hand.

    For a caller whose own backward pass already produced ``dy/dA`` (e.g.
    :func:`engine.explain.relevancy.relevancy_gradcam_maps`, which shares one pass
    between relevancy and Grad-CAM). The same steps as ``pytorch_grad_cam.GradCAM``
    and :func:`gradcam_maps`: weights ``mean_hw(dy/dA_c)``, ``ReLU(sum_c w_c A_c)``,
    ``cv2.resize`` (bilinear) to the input size, and the library's own
    ``scale_cam_image`` for the per-map normalisation (applied twice, as the library's
    per-layer and aggregation steps do). A test checks equality with
    :func:`gradcam_maps` on the same layer.

    Args:
        activations, gradients: ``float (N, C, h, w)`` of the target layer.
        size: ``(H, W)`` input (crop) size in pixels.

    Returns:
        :class:`GradCAMResult` with ``(N, H, W)`` maps.

    Raises:
        ValueError: the arrays are not 4-D or differ in shape.
    """
    from pytorch_grad_cam.utils.image import scale_cam_image

    a = np.asarray(activations, dtype=np.float32)
    g = np.asarray(gradients, dtype=np.float32)
    if a.ndim != 4 or a.shape != g.shape:
        raise ValueError(f"activations and gradients must share an (N, C, h, w) shape, got {a.shape} and {g.shape}")
    h, w = int(size[0]), int(size[1])
    weights = g.mean(axis=(2, 3))
    low = np.maximum((weights[:, :, None, None] * a).sum(axis=1), 0).astype(np.float32)  # (N, h', w')
    maps = scale_cam_image(np.maximum(scale_cam_image(low, (w, h)), 0))
    raw = np.maximum(np.stack([cv2.resize(m, (w, h)) for m in low]).astype(np.float32), 0)
    return GradCAMResult(
        maps=np.asarray(maps, dtype=np.float32),
        raw=raw,
        raw_max=raw.reshape(len(raw), -1).max(axis=1).astype(np.float32),
    )
