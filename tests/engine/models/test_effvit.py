"""engine.models.effvit: seed 2 §2.2 EfficientNet-B0 + ViT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import (
    SPEC_BACKBONE_PARAMS,
    SPEC_TOTAL_PARAMS,
    SPEC_TRAINABLE_PARAMS,
    EffViT,
    EffViTConfig,
    count_parameters,
    create_model,
    list_models,
    preprocess_crops,
)
from engine.models.effvit import patches_to_sequence


@pytest.fixture(scope="module")
def model() -> EffViT:
    torch.manual_seed(0)
    return EffViT()


# --------------------------------------------------------------------------- parameter counts
def test_parameter_counts_match_spec(model):
    counts = model.parameter_counts()
    assert (SPEC_TOTAL_PARAMS, SPEC_TRAINABLE_PARAMS, SPEC_BACKBONE_PARAMS) == (8_575_403, 6_874_079, 5_288_548)
    assert counts.total == SPEC_TOTAL_PARAMS
    assert counts.trainable == SPEC_TRAINABLE_PARAMS
    assert counts.backbone == SPEC_BACKBONE_PARAMS


def test_component_counts_match_spec(model):
    n = lambda m: count_parameters(m)[0]  # noqa: E731
    assert n(model.patch_to_embedding) == 1_311_744
    assert n(model.transformer) == 1_820_388
    assert n(model.mlp_head) == 104_449
    assert model.cls_token.numel() + model.pos_embedding.numel() == 50_274
    assert n(model.efficient_net.classifier) == 1_281_000  # the unused ImageNet head (seed's _fc)
    assert tuple(model.transformer.blocks[0].attn.to_qkv.weight.shape) == (1536, 49)


def test_blocks_0_to_12_frozen_stem_and_head_trainable(model):
    blocks = model.mbconv_blocks()
    assert len(blocks) == 16
    assert sum(count_parameters(b)[0] for b in blocks[:13]) == SPEC_TOTAL_PARAMS - SPEC_TRAINABLE_PARAMS
    for i, b in enumerate(blocks):
        assert all(p.requires_grad == (i >= 13) for p in b.parameters()), i
    assert all(p.requires_grad for p in model.efficient_net.features[0].parameters())  # stem
    assert all(p.requires_grad for p in model.efficient_net.features[8].parameters())  # head conv


def test_seed_batchnorm_settings(model):
    bn = model.efficient_net.features[0][1]
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)


def test_counts_without_imagenet_head():
    counts = EffViT(EffViTConfig(keep_imagenet_head=False)).parameter_counts()
    assert (counts.total, counts.trainable, counts.backbone) == (7_294_403, 5_593_079, 4_007_548)


# --------------------------------------------------------------------------- forward
def test_forward_backward_batch_of_two(model):
    model.train()
    x = torch.rand(2, 3, 224, 224) * 255
    out = model(x)
    assert out.shape == (2, 1) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.sum().backward()
    frozen = [p for b in model.mbconv_blocks()[:13] for p in b.parameters()]
    assert all(p.grad is None for p in frozen)
    assert model.mlp_head[2].weight.grad is not None and torch.isfinite(model.mlp_head[2].weight.grad).all()
    assert model.patch_to_embedding.weight.grad is not None
    assert model.efficient_net.features[0][0].weight.grad is not None  # stem trains
    model.zero_grad(set_to_none=True)
    model.eval()


def test_forward_rejects_wrong_input_size(model):
    with pytest.raises(ValueError, match="224"):
        model(torch.zeros(1, 3, 112, 112))


def test_patches_to_sequence_is_the_seed_rearrange():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 6, 6)  # C=5, 2x2 patches of p=3
    y = patches_to_sequence(x, 3)
    assert y.shape == (2, 4, 45)
    for hi in range(2):
        for wi in range(2):
            for p1 in range(3):
                for p2 in range(3):
                    for c in range(5):
                        assert y[:, hi * 2 + wi, (p1 * 3 + p2) * 5 + c].equal(x[:, c, hi * 3 + p1, wi * 3 + p2])


def test_tokens_are_projections_of_cells(model):
    """Token k, element j = w_k . f_j + b_k (spec §2.2 step 3)."""
    f = torch.randn(1, 1280, 7, 7, dtype=torch.float64)
    conv = model.patch_to_embedding.double()
    try:
        tokens = conv(patches_to_sequence(f, 7))[0]  # (1024, 49)
        w, b = conv.weight[:, 0], conv.bias  # (1024, 1280), (1024,)
        cells = f[0].reshape(1280, 49).T  # cell j = row-major (row, col)
        assert tokens.shape == (1024, 49)
        torch.testing.assert_close(tokens, w @ cells.T + b[:, None])
    finally:
        conv.float()


# --------------------------------------------------------------------------- preprocessing
def test_preprocess_crops_rgb_to_bgr_0_255():
    crops = np.zeros((2, 224, 224, 3), dtype=np.uint8)
    crops[..., 0] = 10  # R
    crops[..., 1] = 20  # G
    crops[..., 2] = 255  # B
    x = preprocess_crops(crops)
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32 and x.is_contiguous()
    assert x[:, 0].eq(255).all() and x[:, 1].eq(20).all() and x[:, 2].eq(10).all()


@pytest.mark.parametrize(
    "arr, exc",
    [
        (np.zeros((1, 224, 224, 3), np.float32), TypeError),
        (np.zeros((224, 224, 3), np.uint8), ValueError),
        (np.zeros((1, 224, 224, 4), np.uint8), ValueError),
        (np.zeros((1, 160, 160, 3), np.uint8), ValueError),
    ],
)
def test_preprocess_crops_rejects_bad_input(arr, exc):
    with pytest.raises(exc):
        preprocess_crops(arr)


# --------------------------------------------------------------------------- config / registry
@pytest.mark.parametrize(
    "kwargs",
    [dict(image_size=230), dict(image_size=256, patch_size=8), dict(emb_dim=64), dict(trainable_blocks_from=17)],
)
def test_config_rejects_inconsistent_values(kwargs):
    with pytest.raises(ValueError):
        EffViTConfig(**kwargs)


def test_config_defaults_are_the_seed_yaml():
    c = EffViTConfig()
    assert (c.image_size, c.patch_size, c.num_classes, c.dim, c.depth, c.dim_head, c.heads) == (224, 7, 1, 1280, 6, 64, 8)
    assert (c.mlp_dim, c.emb_dim, c.dropout, c.emb_dropout) == (2048, 49, 0.15, 0.15)
    assert (c.num_tokens, c.token_grid, c.trainable_blocks_from) == (1024, 32, 13)
    assert EffViTConfig(**c.to_dict()) == c


def test_registry_builds_from_card_config():
    assert "effvit" in list_models()
    m = create_model("effvit", {"depth": 1, "keep_imagenet_head": False})
    assert isinstance(m, EffViT) and len(m.transformer.blocks) == 1
    with pytest.raises(KeyError, match="unknown architecture"):
        create_model("nope")


def test_fused_attention_equals_recorded_attention_path(model):
    """The SDPA fast path and the explicit path (taken while attention is recorded) agree."""
    from engine.explain import record_attention

    torch.manual_seed(1)
    x = torch.randn(2, 1025, 49)
    attn = model.transformer.blocks[0].attn.eval()
    fast = attn(x)
    assert not attn.recording
    with record_attention(model, grads=False) as rec:
        assert attn.recording
        slow = attn(x)
        assert len(rec.maps) == 1 and rec.maps[0].shape == (2, 8, 1025, 1025)
    assert not attn.recording  # hooks removed again
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
