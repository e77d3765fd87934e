"""Fixtures: a full seed-config EffViT with usable BN statistics, and a tiny-config one."""

from __future__ import annotations

import pytest
import torch

from engine.models import EffViT, EffViTConfig, recalibrate_batchnorm


def _calibrated(config: EffViTConfig, seed: int) -> EffViT:
    torch.manual_seed(seed)
    model = EffViT(config)
    x = torch.rand(4, 3, 224, 224) * 255
    recalibrate_batchnorm(model.efficient_net.features, [x])  # fresh random BN stats make eval features ~1e-10
    return model.eval()


@pytest.fixture(scope="session")
def effvit() -> EffViT:
    """Seed config (8,575,403 parameters), random init, eval mode."""
    return _calibrated(EffViTConfig(), 0)


@pytest.fixture(scope="session")
def tiny_effvit() -> EffViT:
    """Same backbone and 1024 tokens, small transformer (2 blocks x 2 heads x 8): fast relevancy tests."""
    return _calibrated(EffViTConfig(depth=2, heads=2, dim_head=8, mlp_dim=16, keep_imagenet_head=False), 1)


@pytest.fixture(scope="session")
def crops() -> torch.Tensor:
    """``float32 (2, 3, 224, 224)`` BGR 0..255 inputs."""
    g = torch.Generator().manual_seed(123)
    return torch.rand(2, 3, 224, 224, generator=g) * 255
