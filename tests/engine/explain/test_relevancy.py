"""engine.explain.relevancy: Chefer et al. rules 5 and 6, the EffViT relevancy map, seed 2 §2.5."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.explain import (
    apply_self_attention_rules,
    avg_heads,
    record_attention,
    relevancy_from_attention,
    relevancy_map,
    relevancy_maps,
    tokens_to_grid,
)


# --------------------------------------------------------------------------- rules vs hand computation
def _tiny_stack(depth=3, heads=2, n=5, seed=0):
    """Dyadic values (attn k/8, grad in -3..3) so every float64 operation below is exact."""
    g = torch.Generator().manual_seed(seed)
    attn = [torch.randint(0, 9, (1, heads, n, n), generator=g).double() / 8 for _ in range(depth)]
    grad = [torch.randint(-3, 4, (1, heads, n, n), generator=g).double() for _ in range(depth)]
    return attn, grad


def _hand_relevancy(attn, grad):
    """Rules 5 and 6 written out element by element with exact rationals."""
    heads, n = attn[0].shape[1], attn[0].shape[-1]
    R = [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]
    for A, G in zip(attn, grad):
        cam = [
            [
                sum(max(Fraction(float(G[0, h, i, j])) * Fraction(float(A[0, h, i, j])), Fraction(0)) for h in range(heads))
                / heads
                for j in range(n)
            ]
            for i in range(n)
        ]
        R = [[R[i][j] + sum(cam[i][k] * R[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
    return torch.tensor([[float(v) for v in row] for row in R], dtype=torch.float64)


def test_rules_match_hand_computation_exactly():
    attn, grad = _tiny_stack()
    R = relevancy_from_attention(attn, grad)
    assert R.shape == (1, 5, 5)
    assert torch.equal(R[0], _hand_relevancy(attn, grad))


def test_rule_5_avg_heads_exact():
    attn, grad = _tiny_stack(depth=1, heads=4)
    expected = torch.zeros(5, 5, dtype=torch.float64)
    for h in range(4):
        expected += torch.clamp(grad[0][0, h] * attn[0][0, h], min=0)
    assert torch.equal(avg_heads(attn[0], grad[0])[0], expected / 4)


def test_rule_6_is_R_plus_cam_R():
    R = torch.tensor([[1.0, 0.5], [0.25, 1.0]], dtype=torch.float64)
    cam = torch.tensor([[0.5, 0.0], [1.0, 0.25]], dtype=torch.float64)
    expected = torch.tensor([[1.5, 0.75], [1.3125, 1.75]], dtype=torch.float64)
    assert torch.equal(apply_self_attention_rules(R, cam), expected)


def test_rules_batch_equals_seed_batch_one_loop():
    """Batched rules == the seed's helpers (reshape(-1, N, N), R += cam @ R) applied per sample."""
    g = torch.Generator().manual_seed(3)
    attn = [torch.rand(3, 2, 6, 6, generator=g).softmax(-1) for _ in range(2)]
    grad = [torch.randn(3, 2, 6, 6, generator=g) for _ in range(2)]
    R = relevancy_from_attention(attn, grad)
    for b in range(3):
        Rs = torch.eye(6)
        for A, G in zip(attn, grad):
            cam = (G[b].reshape(-1, 6, 6) * A[b].reshape(-1, 6, 6)).clamp(min=0).mean(dim=0)
            Rs += torch.matmul(cam, Rs)
        assert torch.equal(R[b], Rs)


def test_rules_reject_mismatched_input():
    attn, grad = _tiny_stack()
    with pytest.raises(ValueError):
        relevancy_from_attention(attn, grad[:-1])
    with pytest.raises(ValueError):
        avg_heads(attn[0], grad[0][..., :-1])


# --------------------------------------------------------------------------- model-level relevancy
def test_relevancy_map_of_seed_model(effvit, crops):
    rel = relevancy_map(effvit, crops[:1])
    assert rel.shape == (1024,) and rel.dtype == np.float32
    assert np.isfinite(rel).all() and (rel >= 0).all() and rel.max() > 0
    grid = tokens_to_grid(rel)
    assert grid.shape == (224, 224) and grid.dtype == np.float32
    assert grid.min() == 0.0 and grid.max() == 1.0


def test_relevancy_equals_seed_procedure_in_a_batch(tiny_effvit, crops):
    """Batch relevancy == the seed's procedure on one crop: register hooks, output.backward(),
    R += cam @ R, R[0, 1:] (so the samples of a batch do not mix)."""
    batch = relevancy_maps(tiny_effvit, crops, batch_size=2)
    assert batch.shape == (2, 1024) and batch.dtype == np.float32 and np.isfinite(batch).all()
    x = crops[:1]
    with record_attention(tiny_effvit) as rec:
        out = tiny_effvit(x)
        tiny_effvit.zero_grad()
        out.backward()
        assert len(rec.maps) == 2 and all(g is not None for g in rec.grads)
        assert rec.maps[0].shape == (1, 2, 1025, 1025)
        R = torch.eye(1025)
        for A, G in zip(rec.maps, rec.grads):
            cam = (G.reshape(-1, 1025, 1025) * A.detach().reshape(-1, 1025, 1025)).clamp(min=0).mean(dim=0)
            R += torch.matmul(cam, R)
    tiny_effvit.zero_grad(set_to_none=True)
    np.testing.assert_allclose(batch[0], R[0, 1:].numpy(), rtol=1e-4, atol=1e-9)
    assert not np.allclose(batch[0], batch[1])


def test_relevancy_leaves_model_untouched(tiny_effvit, crops):
    tiny_effvit.train()
    with torch.no_grad():  # works inside no_grad too
        relevancy_maps(tiny_effvit, crops[:1])
    assert tiny_effvit.training  # mode restored
    tiny_effvit.eval()
    assert all(p.grad is None for p in tiny_effvit.parameters())  # no parameter gradients written
    assert all(not m._forward_hooks for m in tiny_effvit.modules())


def test_frozen_model_still_explained(tiny_effvit, crops):
    tiny_effvit.requires_grad_(False)
    try:
        rel = relevancy_map(tiny_effvit, crops[:1])
    finally:
        tiny_effvit.requires_grad_(True)
        for i, b in enumerate(tiny_effvit.mbconv_blocks()):
            b.requires_grad_(i >= 13)
    assert np.isfinite(rel).all() and rel.max() > 0


def test_relevancy_rejects_models_without_attention_layers(crops):
    with pytest.raises(TypeError, match="attention_layers"):
        relevancy_maps(torch.nn.Conv2d(3, 1, 3), crops[:1])
    with pytest.raises(ValueError):
        relevancy_map(torch.nn.Conv2d(3, 1, 3), crops)


# --------------------------------------------------------------------------- hooks released
def _tensor_attrs(module):
    return [k for k, v in vars(module).items() if isinstance(v, torch.Tensor)]


def test_record_attention_releases_hooks_and_keeps_nothing(tiny_effvit, crops):
    layers = tiny_effvit.attention_layers()
    with record_attention(tiny_effvit) as rec:
        assert all(len(m._forward_hooks) == 1 for m in layers)
        with torch.no_grad():
            tiny_effvit(crops[:1])
        assert len(rec.maps) == 2
    assert rec.maps == [] and rec.grads == []  # cleared on exit
    assert all(not m._forward_hooks for m in tiny_effvit.modules())
    with torch.no_grad():
        tiny_effvit(crops[:1])  # a forward after the context stores nothing anywhere
    assert rec.maps == []
    for m in tiny_effvit.modules():
        assert not _tensor_attrs(m), (type(m).__name__, _tensor_attrs(m))


def test_record_attention_releases_hooks_on_error(tiny_effvit):
    with pytest.raises(RuntimeError):
        with record_attention(tiny_effvit):
            raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in tiny_effvit.modules())


# --------------------------------------------------------------------------- tokens_to_grid
def test_tokens_to_grid_is_the_seed_visualisation():
    rel = np.random.default_rng(0).random(1024).astype(np.float32)
    t = torch.from_numpy(rel).reshape(1, 1, 32, 32)
    t = torch.nn.AvgPool2d(kernel_size=2)(t)
    t = F.interpolate(t, scale_factor=14, mode="bilinear").reshape(224, 224).numpy()
    t = (t - t.min()) / (t.max() - t.min())
    out = tokens_to_grid(rel)
    np.testing.assert_allclose(out, t, rtol=0, atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0


def test_tokens_to_grid_batch_raw_and_degenerate():
    rel = np.random.default_rng(1).random((3, 1024)).astype(np.float32) * 5
    maps = tokens_to_grid(rel)
    assert maps.shape == (3, 224, 224)
    for i in range(3):
        np.testing.assert_array_equal(maps[i], tokens_to_grid(rel[i]))
    raw = tokens_to_grid(rel, normalize=False)
    assert raw.max() > 1 and raw.min() >= 0  # un-normalised values kept for cross-frame scaling
    np.testing.assert_array_equal(tokens_to_grid(np.full(1024, 3.0)), np.zeros((224, 224), np.float32))
    assert tokens_to_grid(np.ones(64), out_size=32).shape == (32, 32)  # 8x8 -> 4x4 -> x8
    with pytest.raises(ValueError):
        tokens_to_grid(np.ones(1000))
    with pytest.raises(ValueError):
        tokens_to_grid(np.ones(49), pool=2)


def test_spatial_relevancy_is_token_relevance_split_by_embedding_grad_x_input(tiny_effvit, crops):
    """S_j = sum_k R_k |e_kj g_kj| with R from the same pass as relevancy_maps and e, g the token
    embedding (B, 1024, 49) and its gradient, computed here by hand with a hook."""
    from engine.explain import spatial_relevancy_maps

    cells, tokens = spatial_relevancy_maps(tiny_effvit, crops, batch_size=2, return_tokens=True)
    assert cells.shape == (2, 49) and cells.dtype == np.float32 and (cells >= 0).all()
    np.testing.assert_allclose(tokens, relevancy_maps(tiny_effvit, crops, batch_size=2), rtol=1e-5, atol=1e-9)
    store = {}
    hook = tiny_effvit.token_embedding_layer().register_forward_hook(lambda m, i, o: store.setdefault("e", o))
    was_training = tiny_effvit.training
    tiny_effvit.eval()
    try:
        x = crops[:1].clone().requires_grad_(True)
        out = tiny_effvit(x)[:, 0].sum()
        (g,) = torch.autograd.grad(out, [store["e"]])
    finally:
        hook.remove()
        tiny_effvit.train(was_training)
    e = store["e"].detach()
    by_hand = (tokens[0][:, None] * (e[0] * g[0]).abs().numpy()).sum(0)
    np.testing.assert_allclose(cells[0], by_hand, rtol=1e-4, atol=1e-12)
    grid = tokens_to_grid(cells, pool=1)
    assert grid.shape == (2, 224, 224) and grid.min() == 0.0 and grid.max() == 1.0


def test_spatial_relevancy_needs_an_embedding_axis(crops):
    from engine.explain import spatial_relevancy_maps

    class NoEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def attention_layers(self):
            return []

        def forward(self, x):
            return self.lin(x.mean(dim=(2, 3)))

    with pytest.raises(TypeError, match="token_embedding_layer"):
        spatial_relevancy_maps(NoEmbedding(), crops)


# --------------------------------------------------------------------------- CLS row and the shared pass
def test_cls_row_equals_row_0_of_full_relevancy_exactly():
    """The row-vector product from the last block back gives R[0] of rules 5 + 6 (dyadic: exact)."""
    from engine.explain import cls_relevancy_from_attention

    attn, grad = _tiny_stack(depth=4, heads=4, n=6, seed=5)
    assert torch.equal(cls_relevancy_from_attention(attn, grad), relevancy_from_attention(attn, grad)[:, 0])
    assert torch.equal(cls_relevancy_from_attention([a[0] for a in attn], [g[0] for g in grad]),
                       _hand_relevancy(attn, grad)[0])
    with pytest.raises(ValueError):
        cls_relevancy_from_attention(attn, grad[:-1])
    with pytest.raises(ValueError, match="no gradient"):
        cls_relevancy_from_attention(attn, [None] * len(attn))


def test_shared_pass_equals_separate_relevancy_and_truncated_gradcam(tiny_effvit, crops):
    """relevancy_gradcam_maps == spatial_relevancy_maps + gradcam_maps(truncate=True) + a no-grad forward."""
    from engine.explain import gradcam_maps, relevancy_gradcam_maps, spatial_relevancy_maps

    layer = tiny_effvit.gradcam_layer()
    ex = relevancy_gradcam_maps(tiny_effvit, crops, layer, batch_size=2)  # same batch: conv rounding differs by batch size
    cells, tokens = spatial_relevancy_maps(tiny_effvit, crops, batch_size=2, return_tokens=True)
    cam = gradcam_maps(tiny_effvit, layer, crops, truncate=True)
    tiny_effvit.eval()
    with torch.no_grad():
        logits = tiny_effvit(crops).numpy()
    assert ex.logits.shape == (2, 1) and ex.cells.shape == (2, 49) and ex.tokens.shape == (2, 1024)
    np.testing.assert_allclose(ex.logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ex.tokens, tokens, rtol=1e-4, atol=1e-6 * tokens.max())
    np.testing.assert_allclose(ex.cells, cells, rtol=1e-4, atol=1e-6 * cells.max())
    assert ex.gradcam.maps.shape == (2, 224, 224)
    np.testing.assert_allclose(ex.gradcam.maps, cam.maps, atol=1e-5)
    np.testing.assert_allclose(ex.gradcam.raw, cam.raw, rtol=1e-4, atol=1e-6 * cam.raw.max())
    np.testing.assert_allclose(ex.gradcam.raw_max, cam.raw_max, rtol=1e-4)
    assert all(p.grad is None for p in tiny_effvit.parameters())


def test_shared_pass_rejects_a_layer_off_the_forward_path(tiny_effvit, crops):
    from engine.explain import relevancy_gradcam_maps

    with pytest.raises(RuntimeError, match="not called"):
        relevancy_gradcam_maps(tiny_effvit, crops[:1], torch.nn.Conv2d(3, 3, 1))


def test_block_recomputation_gives_the_same_maps_and_is_switched_off_after(tiny_effvit, crops, monkeypatch):
    """With ``recompute_attention`` each transformer block runs again in the backward pass
    (its attention is seen twice: forward + recomputation) and the maps equal the pass
    that keeps every block's attention (the model without the method)."""
    from engine.explain import relevancy_gradcam_maps

    layer = tiny_effvit.gradcam_layer()
    calls = []
    handles = [m.register_forward_hook(lambda _m, _i, _o, b=b: calls.append(b))
               for b, m in enumerate(tiny_effvit.attention_layers())]
    try:
        recomputed = relevancy_gradcam_maps(tiny_effvit, crops, layer, batch_size=1)
    finally:
        for h in handles:
            h.remove()
    depth = len(tiny_effvit.attention_layers())
    # per crop: blocks 0..D-1 in the forward pass, then D-1..0 re-run in the backward pass
    assert calls == (list(range(depth)) + list(range(depth - 1, -1, -1))) * len(crops)
    assert tiny_effvit.transformer.recompute is False

    monkeypatch.delattr(type(tiny_effvit), "recompute_attention")
    kept = relevancy_gradcam_maps(tiny_effvit, crops, layer, batch_size=1)
    for name in ("logits", "tokens", "cells"):
        np.testing.assert_allclose(getattr(recomputed, name), getattr(kept, name), rtol=1e-6, atol=0)
    np.testing.assert_allclose(recomputed.gradcam.maps, kept.gradcam.maps, atol=1e-6)
