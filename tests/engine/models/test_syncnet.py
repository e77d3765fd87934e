"""SyncNet V2 (spec §5.2): layer list, parameter counts, shapes at 224 and 112, sequence mode."""

from __future__ import annotations

import pytest
import torch

from engine.models import create_model
from engine.models.syncnet import SyncNet, SyncNetConfig, lip_final_kernel


def _conv(cout, cin, *kernel):
    n = cout * cin
    for k in kernel:
        n *= k
    return n + cout + 2 * cout  # weight + bias + BatchNorm affine (gamma, beta)


def _spec_count(emb=1024, lip_kernel=6):
    """Independent count from the spec §5.2 layer list (conv + bias + BN affine; FC heads)."""
    audio = (_conv(64, 1, 3, 3) + _conv(192, 64, 3, 3) + _conv(384, 192, 3, 3) + _conv(256, 384, 3, 3)
             + _conv(256, 256, 3, 3) + _conv(512, 256, 5, 4))
    lip = (_conv(96, 3, 5, 7, 7) + _conv(256, 96, 1, 5, 5) + 3 * _conv(256, 256, 1, 3, 3)
           + _conv(512, 256, 1, lip_kernel, lip_kernel))
    fc = (512 * 512 + 512) + 2 * 512 + (512 * emb + emb)
    return audio, lip, fc


def test_parameter_count_matches_spec_layer_list():
    m = SyncNet(SyncNetConfig())
    audio, lip, fc = _spec_count()
    assert sum(p.numel() for p in m.netcnnaud.parameters()) == audio == 4_875_712
    assert sum(p.numel() for p in m.netcnnlip.parameters()) == lip == 7_177_920
    assert sum(p.numel() for p in m.netfcaud.parameters()) == fc == sum(p.numel() for p in m.netfclip.parameters())
    assert sum(p.numel() for p in m.parameters()) == audio + lip + 2 * fc == 13_631_616


def test_lip_size_112_changes_only_last_lip_kernel():
    assert lip_final_kernel(224) == 6 and lip_final_kernel(112) == 2
    m = SyncNet(SyncNetConfig(lip_size=112))
    audio, lip, fc = _spec_count(lip_kernel=2)
    assert sum(p.numel() for p in m.parameters()) == audio + lip + 2 * fc == 9_437_312
    assert m.netcnnlip[-3].kernel_size == (1, 2, 2)


@pytest.mark.parametrize("size", [224, 112])
def test_shapes(size):
    torch.manual_seed(0)
    m = SyncNet(SyncNetConfig(emb_dim=1024, lip_size=size)).eval()
    with torch.no_grad():
        lip = m.forward_lip(torch.rand(2, 3, 5, size, size) * 255)
        aud = m.forward_aud(torch.randn(2, 1, 13, 20))
        assert m.netcnnlip(torch.rand(1, 3, 5, size, size)).shape == (1, 512, 1, 1, 1)
        assert m.netcnnaud(torch.randn(1, 1, 13, 20)).shape == (1, 512, 1, 1)
    assert lip.shape == (2, 1024) and aud.shape == (2, 1024)
    assert lip.dtype == torch.float32 and torch.isfinite(lip).all() and torch.isfinite(aud).all()


def test_sequence_mode_equals_sliding_windows_in_eval():
    torch.manual_seed(0)
    m = SyncNet(SyncNetConfig(emb_dim=32, lip_size=64)).eval()
    x = torch.rand(1, 3, 9, 64, 64) * 255
    with torch.no_grad():
        seq = m.forward_lip_seq(x)[0]
        win = torch.cat([m.forward_lip(x[:, :, v : v + 5]) for v in range(5)])
    assert seq.shape == (5, 32)
    torch.testing.assert_close(seq, win, rtol=1e-4, atol=1e-4)


def test_registered_and_too_small_lip_size_rejected():
    m = create_model("syncnet", {"emb_dim": 16, "lip_size": 112})
    assert isinstance(m, SyncNet) and m.cfg == SyncNetConfig(16, 112)
    with pytest.raises((ValueError, RuntimeError)):
        SyncNet(SyncNetConfig(lip_size=24))


def test_region_config():
    assert SyncNetConfig().region == "face"  # spec §5.2: the whole face crop
    assert SyncNetConfig(1024, 112, "mouth").region == "mouth"
    with pytest.raises(ValueError):
        SyncNetConfig(region="eyes")


def test_width_scales_every_layer_and_normalize_gives_unit_embeddings():
    """``width`` scales channels of the spec's layer list; ``normalize`` makes embeddings unit length."""
    w = 0.25
    m = SyncNet(SyncNetConfig(emb_dim=64, lip_size=112, width=w, normalize=True)).eval()

    def conv(cout, cin, *k):
        return _conv(int(cout * w), int(cin * w) if cin > 3 else cin, *k)

    audio = (conv(64, 1, 3, 3) + conv(192, 64, 3, 3) + conv(384, 192, 3, 3) + conv(256, 384, 3, 3)
             + conv(256, 256, 3, 3) + conv(512, 256, 5, 4))
    lip = (conv(96, 3, 5, 7, 7) + conv(256, 96, 1, 5, 5) + 3 * conv(256, 256, 1, 3, 3) + conv(512, 256, 1, 2, 2))
    fc = (128 * 128 + 128) + 2 * 128 + (128 * 64 + 64)
    assert sum(p.numel() for p in m.parameters()) == audio + lip + 2 * fc
    with torch.no_grad():
        lip_e = m.forward_lip(torch.rand(3, 3, 5, 112, 112) * 255)
        aud_e = m.forward_aud(torch.randn(3, 1, 13, 20))
        seq = m.forward_lip_seq(torch.rand(1, 3, 7, 112, 112) * 255)
    for e in (lip_e, aud_e, seq.reshape(-1, 64)):
        torch.testing.assert_close(e.norm(dim=-1), torch.ones(e.shape[0]))
    with pytest.raises(ValueError):
        SyncNetConfig(width=0)
