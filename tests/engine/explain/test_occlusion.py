"""engine.explain.occlusion: the top-CAM region matters more than a random region of equal size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.explain import OcclusionResult, gradcam_maps, occlusion_sanity
from engine.explain.occlusion import random_block_mask, top_cam_mask

H = W = 32
CELL = 8
REGION = (slice(8, 16), slice(16, 24))  # exactly one 8x8 cell = 64 px = 6.25 % of 1024


class RegionModel(nn.Module):
    """3-class softmax model whose class-0 logit depends only on REGION's mean brightness."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 12)
            self.conv.bias.zero_()
        mask = torch.zeros(1, 1, H, W)
        mask[..., REGION[0], REGION[1]] = 1
        self.register_buffer("mask", mask)

    def forward(self, x):
        f = torch.relu(self.conv(x)).sum(dim=1, keepdim=True)  # channel mean of x (x >= 0)
        region_mean = (f * self.mask).sum(dim=(1, 2, 3)) / self.mask.sum()
        z = torch.zeros_like(region_mean)
        return torch.stack([0.05 * (region_mean - 120), z, z], dim=1)


@pytest.fixture()
def inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, H, W, generator=g) * 100
    x[..., REGION[0], REGION[1]] += 150  # bright region: class 0 predicted
    return x


def _oracle(n):
    cams = np.random.default_rng(0).random((n, H, W)) * 0.1
    cams[:, REGION[0], REGION[1]] += 1
    return cams


def test_oracle_cam_beats_random_region(inputs):
    model = RegionModel()
    res = occlusion_sanity(model, inputs, _oracle(4), fraction=64 / 1024, n_random=8, rng=1, cell=CELL)
    assert isinstance(res, OcclusionResult) and res.k == 64 and res.cell == (CELL, CELL) and res.n_random == 8
    assert res.top_drops.shape == res.random_drops.shape == res.base_prob.shape == res.target.shape == (4,)
    assert (res.target == 0).all() and (res.base_prob > 0.9).all()
    # the known answer: occluding REGION with the image mean (~ 55) sends the class-0 logit to about -3
    x = inputs.clone()
    x[..., REGION[0], REGION[1]] = inputs.mean(dim=(2, 3), keepdim=True)
    with torch.no_grad():
        expected = res.base_prob - torch.softmax(model(x).double(), 1)[:, 0].numpy()
    np.testing.assert_allclose(res.top_drops, expected, rtol=1e-9)
    assert res.top_drop > 0.8 and res.random_drop < 0.5 * res.top_drop
    assert res.passed and res.gain > 0 and res.win_rate == 1.0
    assert model.training  # mode restored (a fresh module is in train mode)
    # the anti-oracle (REGION ranked last) occludes nothing that matters
    anti = occlusion_sanity(model, inputs, -_oracle(4), fraction=64 / 1024, cell=CELL)
    np.testing.assert_allclose(anti.top_drops, 0.0, atol=1e-12)
    summary = res.to_dict()
    assert summary["passed"] is True and summary["n"] == 4 and summary["fill"] == "per-image per-channel mean"


def test_gradcam_cam_passes_on_region_model(inputs):
    model = RegionModel()
    cams = gradcam_maps(model, model.conv, inputs, 0).maps  # sum_c alpha_c A_c: brightness, highest on REGION
    outside = np.ones((H, W), bool)
    outside[REGION[0], REGION[1]] = False
    assert cams[:, REGION[0], REGION[1]].min() > cams[:, outside].max()
    res = occlusion_sanity(model, inputs, cams, fraction=64 / 1024, target=0, n_random=4, rng=0, cell=CELL)
    assert res.passed and res.top_drop > 0.8


def test_random_block_mask_exact_size_and_blocks():
    rng = np.random.default_rng(0)
    for k in (1, 64, 100, 1024):
        m = random_block_mask(rng, H, W, k, CELL)
        assert m.shape == (H, W) and m.sum() == k
        blocks = m.reshape(H // CELL, CELL, W // CELL, CELL).sum(axis=(1, 3))
        assert (blocks == CELL * CELL).sum() == k // (CELL * CELL)  # whole cells ...
        assert ((blocks > 0) & (blocks < CELL * CELL)).sum() == (1 if k % (CELL * CELL) else 0)  # ... + one partial
    # non-square cells and edge blocks cut at the border (the log-mel: 128 x 1500, cells 32 px)
    m = random_block_mask(rng, 128, 1500, 19200, (32, 32))
    assert m.sum() == 19200
    with pytest.raises(ValueError):
        random_block_mask(rng, H, W, 0, CELL)
    with pytest.raises(ValueError):
        random_block_mask(rng, H, W, 10, 0)


def test_top_cam_mask_ties_row_major():
    m = top_cam_mask(np.zeros((1, 4, 4)), 6)
    assert m[0].reshape(-1).tolist() == [True] * 6 + [False] * 10


def test_concat_and_errors(inputs):
    model = RegionModel()
    a = occlusion_sanity(model, inputs[:2], _oracle(2), fraction=64 / 1024, cell=CELL, n_random=2)
    b = occlusion_sanity(model, inputs[2:], _oracle(2), fraction=64 / 1024, cell=CELL, n_random=2)
    both = OcclusionResult.concat([a, b])
    assert both.top_drops.shape == (4,) and both.top_drop == pytest.approx((a.top_drop + b.top_drop) / 2)
    with pytest.raises(ValueError):
        OcclusionResult.concat([a, occlusion_sanity(model, inputs[:2], _oracle(2), fraction=0.2, cell=CELL)])
    with pytest.raises(ValueError, match="cams"):
        occlusion_sanity(model, inputs, _oracle(3))
    with pytest.raises(ValueError, match="fraction"):
        occlusion_sanity(model, inputs, _oracle(4), fraction=1.0)
    with pytest.raises(ValueError, match="out of range"):
        occlusion_sanity(model, inputs, _oracle(4), target=3)
    with pytest.raises(ValueError, match="targets"):
        occlusion_sanity(model, inputs, _oracle(4), target=[0, 1])
