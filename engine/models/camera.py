"""Camera-model identification networks of seed 1 (XAIDevIDFusion, spec/seeds.md §1.7).

Korgialas, Tsingalis, Kotropoulos, "XAIDevIDFusion" (Asilomar 2024): two
unimodal ImageNet CNNs whose softmax outputs are fused late (§1.9).

* **audio** (:class:`CameraAudioNet`, architecture ``"camera_audio"``):
  torchvision ``mobilenet_v3_large`` whose classifier is replaced by
  ``Sequential(Linear(960, 350), Linear(350, C))`` — no activation and no
  dropout between the two linears, exactly as the seed. Input: the
  3-resolution log-mel ``float32 (B, 3, 128, 1500)`` of
  :func:`engine.features.log_mel_3res`, fed raw (no normalisation, §1.7).
* **image** (:class:`CameraImageNet`, architecture ``"camera_image"``):
  torchvision ``resnet50`` with ``fc = Linear(2048, C)``. Input: the
  256×256 centre crop of a frame at full resolution, RGB, values 0–255, no
  normalisation, ``float32 (B, 3, 256, 256)`` (:func:`center_crop_256`, §1.6).

``C`` (``num_classes``) and the class names live in the model card
(``config["classes"]``), so 25-class VISION weights and the 8-device demo
weights load with the same code. No ImageNet weights are reachable for these
backbones offline: they are built with ``weights=None`` (trained from scratch;
the card says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = [
    "CAMERA_CROP",
    "CameraAudioConfig",
    "CameraAudioNet",
    "CameraImageConfig",
    "CameraImageNet",
    "center_crop_256",
    "center_crop_box",
    "preprocess_frames",
]

CAMERA_CROP = 256
"""Side (pixels) of the full-resolution centre crop the image model reads (§1.6)."""


@dataclass
class CameraAudioConfig:
    """Config of :class:`CameraAudioNet` (stored in the card).

    Attributes:
        classes: class names in logit order (e.g. the 25 merged VISION classes).
        hidden: width of the first head linear (350 in the seed).
    """

    classes: list[str] = field(default_factory=list)
    hidden: int = 350

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class CameraImageConfig:
    """Config of :class:`CameraImageNet` (stored in the card).

    Attributes:
        classes: class names in logit order.
    """

    classes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _check_classes(classes: list[str]) -> None:
    if len(classes) < 2:
        raise ValueError(f"a camera model needs at least 2 classes, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate class names in {classes!r}")


class CameraAudioNet(nn.Module):
    """MobileNetV3-Large on the 3-resolution log-mel (seed 1 §1.4, §1.7).

    ``forward(x: float32 (B, 3, 128, 1500)) -> logits float32 (B, C)``.

    Raises:
        ValueError: fewer than 2 or duplicate class names.
    """

    def __init__(self, config: CameraAudioConfig):
        super().__init__()
        from torchvision.models import mobilenet_v3_large

        _check_classes(config.classes)
        self.config = config
        net = mobilenet_v3_large(weights=None)
        net.classifier = nn.Sequential(nn.Linear(960, config.hidden), nn.Linear(config.hidden, config.num_classes))
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def gradcam_layer(self) -> nn.Module:
        """Last convolution block (``features[-1]``, 960 channels at 1/32 resolution) for Grad-CAM."""
        return self.net.features[-1]


class CameraImageNet(nn.Module):
    """ResNet50 on 256×256 full-resolution centre crops (seed 1 §1.6, §1.7).

    ``forward(x: float32 (B, 3, 256, 256), values 0–255) -> logits float32 (B, C)``.

    Raises:
        ValueError: fewer than 2 or duplicate class names.
    """

    def __init__(self, config: CameraImageConfig):
        super().__init__()
        from torchvision.models import resnet50

        _check_classes(config.classes)
        self.config = config
        net = resnet50(weights=None)
        net.fc = nn.Linear(2048, config.num_classes)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def gradcam_layer(self) -> nn.Module:
        """Last residual stage (``layer4``, 2048 channels at 8×8 for a 256 crop) for Grad-CAM."""
        return self.net.layer4


def center_crop_box(height: int, width: int, size: int = CAMERA_CROP) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` pixels of the centre ``size``×``size`` crop (seed ``prnu.cut_ctr``).

    Start = ``(H - size) // 2`` per axis. Frames smaller than ``size`` on an
    axis keep their full extent there (the crop is then zero-padded by
    :func:`center_crop_256`).
    """
    y1 = max(0, (height - size) // 2)
    x1 = max(0, (width - size) // 2)
    return x1, y1, min(width, x1 + size), min(height, y1 + size)


def center_crop_256(frame: np.ndarray, size: int = CAMERA_CROP) -> np.ndarray:
    """Centre crop of an RGB frame at full resolution, no resize (seed 1 §1.6).

    Args:
        frame: ``uint8 (H, W, 3)`` RGB.
        size: crop side in pixels (256).

    Returns:
        ``uint8 (size, size, 3)``; frames smaller than ``size`` are padded
        with zeros bottom/right (the seed never saw such frames; VISION is ≥ 720p).

    Raises:
        ValueError: ``frame`` is not ``(H, W, 3)``.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    x1, y1, x2, y2 = center_crop_box(frame.shape[0], frame.shape[1], size)
    crop = frame[y1:y2, x1:x2]
    if crop.shape[:2] != (size, size):
        out = np.zeros((size, size, 3), np.uint8)
        out[: crop.shape[0], : crop.shape[1]] = crop
        crop = out
    return np.ascontiguousarray(crop)


def preprocess_frames(crops: np.ndarray) -> torch.Tensor:
    """``uint8 (N, 256, 256, 3)`` RGB crops -> ``float32 (N, 3, 256, 256)`` in 0–255 (no normalisation, §1.6)."""
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"expected (N, H, W, 3) crops, got shape {crops.shape}")
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
