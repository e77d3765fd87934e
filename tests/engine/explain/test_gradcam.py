"""engine.explain.gradcam: pytorch-grad-cam wrapper (shapes, range, raw maps, hooks released)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget
from torch import nn

from engine.explain import gradcam_maps, make_target


class TinyCNN(nn.Module):
    """conv -> ReLU -> conv (target, 8x8 for a 32x32 input) -> GAP -> one logit."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1))
        self.head = nn.Linear(6, 1)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)).mean(dim=(2, 3)))


@pytest.fixture()
def cnn() -> TinyCNN:
    return TinyCNN()


def test_maps_shape_range_and_raw(cnn):
    x = torch.rand(3, 3, 32, 40)
    res = gradcam_maps(cnn, cnn.body[2], x)
    for a in (res.maps, res.raw):
        assert a.shape == (3, 32, 40) and a.dtype == np.float32 and np.isfinite(a).all()
    assert res.maps.min() >= 0 and res.maps.max() <= 1 and np.isclose(res.maps.max(), 1, atol=1e-5)
    assert res.raw.min() >= 0
    assert res.raw_max.shape == (3,) and res.raw_max.dtype == np.float32
    np.testing.assert_array_equal(res.raw_max, res.raw.reshape(3, -1).max(axis=1))
    # the library's per-map min-max == min-max of our raw maps
    lo = res.raw.min(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(res.maps, (res.raw - lo) / (res.raw.max(axis=(1, 2), keepdims=True) - lo), atol=1e-4)


def test_raw_maps_are_comparable_across_inputs(cnn):
    x = torch.rand(1, 3, 32, 32)
    res = gradcam_maps(cnn, cnn.body[2], torch.cat([x, 2 * x]))
    # raw maps keep each input's scale (so frames can share one normaliser); maps are each scaled to [0, 1]
    assert res.raw_max[0] != res.raw_max[1]
    assert np.isclose(res.maps[0].max(), 1, atol=1e-5) and np.isclose(res.maps[1].max(), 1, atol=1e-5)


def test_targets(cnn):
    x = torch.rand(2, 3, 32, 32)
    layer = cnn.body[2]
    default = gradcam_maps(cnn, layer, x)
    for t in (BinaryClassifierOutputTarget(1), 0, lambda out: out[0]):
        np.testing.assert_allclose(gradcam_maps(cnn, layer, x, target=t).raw, default.raw, rtol=1e-6)
    real = gradcam_maps(cnn, layer, x, target=[BinaryClassifierOutputTarget(0)] * 2)  # -logit
    assert not np.allclose(real.raw, default.raw)
    with pytest.raises(ValueError, match="targets"):
        gradcam_maps(cnn, layer, x, target=[None])
    with pytest.raises(TypeError):
        make_target("fake")


def test_hooks_released_mode_and_grads_restored(cnn):
    cnn.train()
    sentinel = torch.full_like(cnn.head.weight, 7.0)
    cnn.head.weight.grad = sentinel
    gradcam_maps(cnn, cnn.body[2], torch.rand(1, 3, 32, 32))
    assert cnn.training
    assert cnn.head.weight.grad is sentinel and cnn.body[0].weight.grad is None
    assert all(not m._forward_hooks and not m._backward_hooks for m in cnn.modules())


def test_errors_propagate_and_release_hooks(cnn):
    def bad_target(out):
        raise IndexError("no such class")  # pytorch-grad-cam's own __exit__ would swallow this

    with pytest.raises(IndexError):
        gradcam_maps(cnn, cnn.body[2], torch.rand(1, 3, 32, 32), target=bad_target)
    assert all(not m._forward_hooks for m in cnn.modules())
    with pytest.raises(RuntimeError, match="not on the path"):
        gradcam_maps(cnn, nn.Conv2d(3, 3, 1), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError):
        gradcam_maps(cnn, cnn.body[2], torch.rand(3, 32, 32))


# --------------------------------------------------------------------------- EffViT
def test_effvit_last_stage_gradcam(tiny_effvit, crops):
    effvit = tiny_effvit
    res = gradcam_maps(effvit, effvit.gradcam_layer(), crops[:1])
    assert res.maps.shape == (1, 224, 224) and res.raw.shape == (1, 224, 224)
    assert res.maps.min() >= 0 and res.maps.max() <= 1 and res.raw_max[0] > 0
    assert all(not m._forward_hooks for m in effvit.modules())
    assert not effvit.training and all(p.grad is None for p in effvit.parameters())


def test_effvit_head_conv_gradcam_is_degenerate(tiny_effvit, crops):
    """Why gradcam_layer() is features[7]: the logit is invariant to a spatially constant shift
    of any head-conv output channel (every token goes through a LayerNorm over its 49 = 7x7
    cells), so the Grad-CAM channel weights mean_hw(dy/dA) vanish there, but not one stage earlier.
    (Holds for any depth; the tiny config keeps the test fast.)"""
    effvit = tiny_effvit
    outs = {}
    hooks = [
        effvit.efficient_net.features[i].register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o))
        for i in (7, 8)
    ]
    try:
        logit = effvit(crops[:1].clone().requires_grad_(True))
        g7, g8 = torch.autograd.grad(logit.sum(), [outs[7], outs[8]])
    finally:
        for h in hooks:
            h.remove()
    ratio = lambda g: (g.mean(dim=(2, 3)).abs().max() / g.abs().max()).item()  # noqa: E731
    assert ratio(g8) < 1e-4
    assert ratio(g7) > 1e-2
