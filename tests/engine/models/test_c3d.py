"""C3D (seed 3 §3.3): parameter counts of the spec layout, shapes, preprocessing and its inverse placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import create_model
from engine.models.c3d import (
    C3D,
    C3DConfig,
    model_map_to_crop,
    preprocess_clips,
    resize_frames,
)


def _spec_param_count(clip_len: int) -> int:
    """Count written out from the spec's layer list (§3.3), independent of the model code."""
    convs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    n = sum(cin * cout * 27 + cout for cin, cout in convs)  # 3x3x3 kernels + biases
    t = clip_len // 2 // 2 // 2 // 2  # pool1 keeps T; pool2..pool5 halve it (valid padding)
    flat = 512 * t * 4 * 4  # 112 -> 56 -> 28 -> 14 -> 7 -> pad (0,1,1) -> 9 -> pool5 -> 4
    fcs = [(flat, 2048), (2048, 2048), (2048, 2)]
    return n + sum(i * o + o for i, o in fcs)


@pytest.mark.parametrize("clip_len", [16, 32])
def test_spec_parameter_count(clip_len):
    model = C3D(C3DConfig(clip_len=clip_len))
    assert sum(p.numel() for p in model.parameters()) == _spec_param_count(clip_len)
    assert model.config.flatten_dim == 512 * (clip_len // 16) * 16


def test_spec_parameter_count_values():
    # the numbers quoted in the module docstring and the model card
    assert _spec_param_count(16) == 48_635_650
    assert _spec_param_count(32) == 65_412_866
    assert sum(p.numel() for p in C3D(C3DConfig(width=0.25)).parameters()) == 3_042_754


def test_forward_shapes_and_gradcam_layer():
    torch.manual_seed(0)
    model = create_model("c3d", {"clip_len": 16, "width": 0.125}).eval()
    x = torch.rand(2, 3, 16, 112, 112)
    acts = {}
    layer = model.gradcam_layer()
    h = layer.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    out = model(x)
    h.remove()
    assert out.shape == (2, 2) and out.dtype == torch.float32
    assert acts["a"].shape == (2, 64, 2, 7, 7)  # conv5b: 512w channels, T/8, 7x7
    p = torch.softmax(out, 1)
    assert torch.allclose(p.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(1, 3, 8, 112, 112))
    with pytest.raises(ValueError, match="clip_len"):
        C3DConfig(clip_len=8)
    with pytest.raises(KeyError):
        model.gradcam_layer("conv9")


def test_clip_len_is_independent_of_batch():
    model = C3D(C3DConfig(clip_len=32, width=0.0625)).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 3, 32, 112, 112)).shape == (3, 2)


def test_preprocess_eval_is_the_centre_crop():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (2, 16, 160, 160, 3), dtype=np.uint8)
    x = preprocess_clips(clips)
    assert x.shape == (2, 3, 16, 112, 112) and x.dtype == torch.float32
    resized = resize_frames(clips.reshape(-1, 160, 160, 3)).reshape(2, 16, 128, 171, 3)
    want = resized[:, :, 8:120, 30:142].transpose(0, 4, 1, 2, 3) / 255.0
    assert np.allclose(x.numpy(), want, atol=1e-6)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_preprocess_train_crop_and_flip_are_per_clip():
    base = np.zeros((1, 16, 128, 171, 3), np.uint8)
    base[..., 0] = np.arange(171, dtype=np.uint8)[None, None, None, :]  # column index in red
    base[..., 1] = np.arange(128, dtype=np.uint8)[None, None, :, None]  # row index in green
    seen_flip = seen_plain = False
    for s in range(20):
        x = preprocess_clips(base, train=True, rng=np.random.default_rng(s)).numpy()[0] * 255
        cols, rows = np.round(x[0, :, 0, :]), np.round(x[1, :, :, 0])
        assert (cols == cols[0]).all() and (rows == rows[0]).all()  # same window in every frame
        r0, c = int(rows[0, 0]), cols[0]
        assert 0 <= r0 <= 15 and np.array_equal(rows[0], np.arange(r0, r0 + 112))
        if c[0] < c[-1]:
            seen_plain = True
            assert 0 <= c[0] <= 58 and np.array_equal(c, np.arange(c[0], c[0] + 112))
        else:
            seen_flip = True
            assert 0 <= c[-1] <= 58 and np.array_equal(c[::-1], np.arange(c[-1], c[-1] + 112))
    assert seen_flip and seen_plain
    with pytest.raises(ValueError, match="rng"):
        preprocess_clips(base, train=True)
    with pytest.raises(TypeError):
        preprocess_clips(base.astype(np.float32))


def test_model_map_to_crop_inverts_the_eval_crop():
    """A map of the model window lands on the crop region the window shows; zeros outside it."""
    hm = np.zeros((112, 112), np.float32)
    hm[40:72, 40:72] = 1.0  # a block in model coordinates
    on_crop = model_map_to_crop(hm, (160, 160))
    assert on_crop.shape == (160, 160) and on_crop.dtype == np.float32
    # model pixel m <-> resized pixel m + offset <-> crop pixel (r + 0.5) * 160/size - 0.5
    x0, x1 = (40 + 30 + 0.5) * 160 / 171 - 0.5, (72 + 30 + 0.5) * 160 / 171 - 0.5
    y0, y1 = (40 + 8 + 0.5) * 160 / 128 - 0.5, (72 + 8 + 0.5) * 160 / 128 - 0.5
    ys, xs = np.nonzero(on_crop > 0.5)
    assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() - x1) <= 1.5
    assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() - y1) <= 1.5
    # round trip: the crop map, put through the eval preprocessing geometry, gives back the block
    full = model_map_to_crop(np.ones((112, 112), np.float32), (160, 160))
    assert full[:, :20].max() == 0.0 and full[:, 140:].max() == 0.0 and full[:8].max() == 0.0
    assert full[80, 80] == pytest.approx(1.0)
