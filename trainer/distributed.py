"""Multi-process (DDP) helpers shared by the trainers (Lightning ``strategy="ddp"``).

Lightning's DDP runs one process per device (GPU, or CPU process with the
gloo backend). Three things must hold for a run to give the same weights and
the same decisions as one process, and the trainers use these helpers for them:

* **validation metrics from the whole validation set**: each rank sees only its
  :class:`~torch.utils.data.DistributedSampler` share, so per-sample outputs are
  gathered (:func:`gather_cat`) before an AUC or a video-level accuracy is
  computed; the sampler pads the last share with repeated samples, so with N
  validation samples and W ranks up to W-1 samples count twice (recorded, tiny);
* **identical BatchNorm statistics** after a re-estimation done per rank
  (:func:`average_batchnorm_stats`);
* **rank 0 alone writes** files (resume state, weights, card): the callers check
  ``trainer.is_global_zero``.

:func:`ddp_strategy` turns the config's strategy name into a Lightning strategy,
with ``find_unused_parameters`` when the model keeps parameters outside the loss
(the seed-2 EffViT keeps B0's unused ImageNet head for its parameter count).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["ddp_strategy", "gather_cat", "average_batchnorm_stats"]


def ddp_strategy(name: str | None, model: nn.Module | None = None) -> Any:
    """Lightning strategy for ``name`` (``"auto"``, ``"ddp"``, ``"ddp_spawn"``, ...).

    ``"ddp"`` becomes ``DDPStrategy(find_unused_parameters=True)`` when ``model`` has
    a parameter that no forward uses (EffViT with ``keep_imagenet_head``), so DDP
    does not wait forever for its gradient; other names pass through unchanged.
    """
    if name in (None, "", "auto") or not str(name).startswith("ddp"):
        return name or "auto"
    unused = bool(getattr(getattr(model, "config", None), "keep_imagenet_head", False))
    if name == "ddp" and unused:
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(find_unused_parameters=True)
    return name


def gather_cat(module: Any, t: torch.Tensor) -> torch.Tensor:
    """Concatenate a per-rank tensor ``(n, ...)`` over all ranks -> ``(world * n, ...)`` on CPU.

    Single process: ``t`` itself. Every rank must pass the same ``n`` (the
    :class:`~torch.utils.data.DistributedSampler` pads the shares to equal length).

    Args:
        module: the running ``LightningModule`` (its ``all_gather`` and ``trainer``).
        t: this rank's tensor.
    """
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size <= 1:
        return t.detach().cpu()
    g = module.all_gather(t.detach().to(module.device))  # (world, n, ...)
    return g.reshape(-1, *g.shape[2:]).cpu()


def average_batchnorm_stats(model: nn.Module) -> None:
    """All-reduce (mean) every BatchNorm's ``running_mean`` / ``running_var`` across ranks; no-op alone."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            for buf in (m.running_mean, m.running_var):
                torch.distributed.all_reduce(buf, op=torch.distributed.ReduceOp.SUM)
                buf.div_(world)
