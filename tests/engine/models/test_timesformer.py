"""engine.models.timesformer (seed 5 §5.5) and engine.explain.spacetime (space-time relevancy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.explain.spacetime import cls_row_rollout, patch_maps, space_time_relevancy
from engine.models import create_model
from engine.models.timesformer import (
    LATENCY_MEAN,
    LATENCY_STD,
    AVTimeSformer,
    AVTimeSformerConfig,
    TimeSformer,
    TimeSformerConfig,
    preprocess_av,
)

TINY = dict(num_frames=32, img_size=32, patch_size=16, embed_dims=16, depth=2, num_heads=2)


def _count_by_hand(T=32, S=224, p=16, D=768, depth=12, mlp=4) -> int:
    """TimeSformer parameters written out from the layer list (mmaction2 divided_space_time)."""
    P = (S // p) ** 2
    patch_embed = 3 * p * p * D + D
    tokens = D + (P + 1) * D + T * D                     # cls_token, pos_embed, time_embed
    ln = 2 * D
    mha = 3 * D * D + 3 * D + D * D + D                   # in_proj (q, k, v) + out_proj
    time_attn = ln + mha + D * D + D                      # + temporal_fc
    space_attn = ln + mha
    ffn = ln + D * mlp * D + mlp * D + mlp * D * D + D
    return patch_embed + tokens + depth * (time_attn + space_attn + ffn) + ln


def _n(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------- parameter counts
def test_paper_config_parameter_count():
    assert _count_by_hand() == 121_277_184
    cfg = AVTimeSformerConfig()
    assert (cfg.num_frames, cfg.img_size, cfg.patch_size, cfg.embed_dims, cfg.depth, cfg.num_heads) == \
        (32, 224, 16, 768, 12, 12)
    assert (cfg.mlp_ratio, cfg.drop_path_rate, cfg.ln_eps) == (4.0, 0.1, 1e-6)
    with torch.device("meta"):  # no 485 MB allocation
        model = AVTimeSformer(cfg)
    assert _n(model.backbone) == _count_by_hand() == 121_277_184
    latency = 33 * 16 + 16 + 16 * 8 + 8
    head = (768 + 8) * 2 + 2
    assert _n(model.latency_net) == latency == 680 and _n(model.head) == head == 1554
    assert _n(model) == 121_277_184 + 680 + 1554 == 121_279_418


def test_small_config_count_matches_formula():
    m = TimeSformer(TimeSformerConfig(**TINY))
    assert _n(m) == _count_by_hand(T=32, S=32, p=16, D=16, depth=2)


def test_mmaction2_state_dict_names():
    keys = set(TimeSformer(TimeSformerConfig(**TINY)).state_dict())
    for k in ("patch_embed.projection.weight", "cls_token", "pos_embed", "time_embed", "norm.weight",
              "transformer_layers.layers.0.attentions.0.attn.in_proj_weight",
              "transformer_layers.layers.0.attentions.0.temporal_fc.weight",
              "transformer_layers.layers.0.attentions.1.attn.out_proj.weight",
              "transformer_layers.layers.1.ffns.0.layers.0.0.weight",
              "transformer_layers.layers.1.ffns.0.layers.1.weight"):
        assert k in keys, k


def test_drop_path_linear_and_layernorm_eps():
    m = TimeSformer(TimeSformerConfig(**{**TINY, "depth": 3}))
    rates = [float(getattr(layer.ffns[0].dropout_layer, "drop_prob", 0.0)) for layer in m.transformer_layers.layers]
    assert rates == pytest.approx([0.0, 0.05, 0.1])
    assert m.norm.eps == 1e-6 and m.transformer_layers.layers[0].attentions[1].norm.eps == 1e-6


# --------------------------------------------------------------------------- shapes / semantics
def test_forward_shapes_and_probabilities():
    torch.manual_seed(0)
    model = AVTimeSformer(AVTimeSformerConfig(**TINY)).eval()
    x = torch.randn(3, 3, 32, 32, 32)
    lat = torch.randn(3, 33) + torch.tensor(LATENCY_MEAN)
    assert model.backbone(x).shape == (3, 16)
    logits = model(x, lat)
    assert logits.shape == (3, 2) and logits.dtype == torch.float32
    p = model.fake_probability(x, lat)
    assert p.shape == (3,) and bool(((p >= 0) & (p <= 1)).all())
    assert torch.allclose(p, torch.softmax(logits, 1)[:, 1])
    with pytest.raises(ValueError):
        model(torch.randn(1, 3, 16, 32, 32), lat[:1])
    assert isinstance(create_model("av_timesformer", AVTimeSformerConfig(**TINY).to_dict()), AVTimeSformer)


def test_latency_is_z_scored_with_the_fixed_vectors():
    assert len(LATENCY_MEAN) == len(LATENCY_STD) == 33
    assert LATENCY_MEAN[16] == pytest.approx(11.7443412) and LATENCY_STD[31] == pytest.approx(4.35032996)
    model = AVTimeSformer(AVTimeSformerConfig(**TINY)).eval()
    assert "latency_mean" not in model.state_dict()  # fixed, not learned
    seen = {}
    model.latency_net.register_forward_hook(lambda m, i, o: seen.update(z=i[0]))
    lat = torch.tensor(LATENCY_MEAN)[None] + 2 * torch.tensor(LATENCY_STD)[None]
    model(torch.zeros(1, 3, 32, 32, 32), lat)
    assert torch.allclose(seen["z"], torch.full((1, 33), 2.0), atol=1e-5)


def test_latency_normalisation_can_be_fixed_per_syncnet():
    mean, std = tuple(range(33)), (2.0,) * 33
    model = AVTimeSformer(AVTimeSformerConfig(**TINY, latency_mean=mean, latency_std=list(std)))
    assert torch.equal(model.latency_mean, torch.arange(33, dtype=torch.float32))
    with pytest.raises(ValueError):
        AVTimeSformer(AVTimeSformerConfig(**TINY, latency_mean=(0.0,) * 32))


def test_time_attention_starts_as_identity_and_skips_cls():
    torch.manual_seed(0)
    m = TimeSformer(TimeSformerConfig(**TINY)).eval()
    x = torch.randn(2, 1 + 4 * 32, 16)
    layer = m.transformer_layers.layers[0].attentions[0]
    assert torch.equal(layer(x), x)  # temporal_fc is zero-initialised (mmaction2)
    torch.nn.init.normal_(layer.temporal_fc.weight)
    y = layer(x)
    assert torch.equal(y[:, 0], x[:, 0]) and not torch.allclose(y[:, 1:], x[:, 1:])


def test_space_attention_cls_is_mean_of_per_frame_copies():
    torch.manual_seed(0)
    cfg = TimeSformerConfig(**{**TINY, "num_frames": 3})
    layer = TimeSformer(cfg).transformer_layers.layers[0].attentions[1].eval()
    P, T, D = 4, 3, 16
    x = torch.randn(1, 1 + P * T, D)
    y = layer(x)
    # by hand: frame t sees [CLS, patches p*T + t]
    outs = []
    for t in range(T):
        seq = torch.cat((x[:, :1], x[:, 1:].reshape(1, P, T, D)[:, :, t]), dim=1)
        outs.append(layer.attn(layer.norm(seq)))
    cls = x[:, 0] + torch.stack([o[:, 0] for o in outs]).mean(0)
    assert torch.allclose(y[:, 0], cls, atol=1e-6)
    for t in range(T):
        got = y[:, 1:].reshape(1, P, T, D)[:, :, t]
        want = x[:, 1:].reshape(1, P, T, D)[:, :, t] + outs[t][:, 1:]
        assert torch.allclose(got, want, atol=1e-6)


def test_preprocess_av_order_colour_and_scale():
    faces = np.zeros((16, 32, 32, 3), np.uint8)
    faces[..., 0] = 255  # red (RGB) -> channel 2 in BGR
    mel = np.zeros((16, 32, 32, 3), np.uint8)
    mel[..., 0] = 255  # already BGR: blue stays channel 0
    x = preprocess_av(faces, mel, 32)
    assert x.shape == (3, 32, 32, 32) and x.dtype == torch.float32
    assert torch.all(x[2, :16] == 1.0) and torch.all(x[0, :16] == -1.0)
    assert torch.all(x[0, 16:] == 1.0) and torch.all(x[2, 16:] == -1.0)
    big = preprocess_av(np.full((16, 64, 64, 3), 127, np.uint8), np.full((16, 64, 64, 3), 255, np.uint8), 32)
    assert big.shape == (3, 32, 32, 32) and float(big[:, 16:].min()) == 1.0
    with pytest.raises(ValueError):
        preprocess_av(faces[:8], mel, 32)


# --------------------------------------------------------------------------- space-time relevancy
def _dense_cls_row(time_maps, space_maps, T, P):
    """Row CLS of Π (I + Ā) built from full (1+PT)² matrices (the reference the fast rollout must equal)."""
    n = 1 + P * T
    tok = lambda p, t: 1 + p * T + t  # noqa: E731
    R = torch.eye(n, dtype=torch.float64)
    for a_t, a_s in zip(time_maps, space_maps):
        A = torch.zeros(n, n, dtype=torch.float64)
        for p in range(P):
            for t in range(T):
                for t2 in range(T):
                    A[tok(p, t), tok(p, t2)] = a_t[p, t, t2]
        R = R + A @ R
        A = torch.zeros(n, n, dtype=torch.float64)
        for t in range(T):
            A[0, 0] += a_s[t, 0, 0]
            for j in range(P):
                A[0, tok(j, t)] = a_s[t, 0, j + 1]
                A[tok(j, t), 0] = a_s[t, j + 1, 0]
                for i in range(P):
                    A[tok(i, t), tok(j, t)] = a_s[t, i + 1, j + 1]
        R = R + A @ R
    return R[0]


def test_cls_row_rollout_equals_dense_rule6_product():
    g = torch.Generator().manual_seed(0)
    T, P, L = 3, 4, 2
    tm = [torch.rand(P, T, T, generator=g, dtype=torch.float64) for _ in range(L)]
    sm = [torch.rand(T, P + 1, P + 1, generator=g, dtype=torch.float64) for _ in range(L)]
    fast = cls_row_rollout(tm, sm, T, batch=1)[0]
    assert torch.allclose(fast, _dense_cls_row(tm, sm, T, P))


def test_space_time_relevancy_shapes_and_maps():
    torch.manual_seed(0)
    model = AVTimeSformer(AVTimeSformerConfig(**TINY))
    model.train()
    x = torch.randn(2, 3, 32, 32, 32)
    lat = torch.tensor(LATENCY_MEAN)[None].repeat(2, 1)
    rel = space_time_relevancy(model, x, lat)
    assert model.training and all(p.grad is None for p in model.parameters())  # restored, no grads kept
    assert rel.patches.shape == (2, 32, 2, 2) and rel.cls.shape == (2,) and rel.logits.shape == (2, 2)
    assert (rel.patches >= 0).all() and rel.patches.sum() > 0 and (rel.cls >= 1.0).all()
    share = rel.frame_share(slice(0, 16))
    assert ((share >= 0) & (share <= 1)).all()
    maps = patch_maps(rel.patches[0, :16], 224)
    assert maps.shape == (16, 224, 224) and maps.min() >= 0 and maps.max() <= 1
    assert np.allclose(maps.max(axis=(1, 2))[maps.max(axis=(1, 2)) > 0], 1.0)
