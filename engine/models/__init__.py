"""Model architectures (plain ``nn.Module`` s: config dataclass in, logits out).

* :mod:`engine.models.effvit`  seed 2 §2.2 EfficientNet-B0 + ViT (:class:`EffViT`,
  :class:`EffViTConfig`, :func:`preprocess_crops`), registered as ``"effvit"``.
* :mod:`engine.models.camera`  seed 1 §1.7 camera-model CNNs: MobileNetV3-Large on the
  log-mel (``"camera_audio"``) and ResNet50 on 256×256 centre crops (``"camera_image"``).

:func:`create_model` rebuilds a model from a card's ``architecture`` + ``config``.
Importing this package imports torch and torchvision (never Qt).
"""

from engine.models._registry import create_model, list_models, register_model
from engine.models.effvit import (
    SPEC_BACKBONE_PARAMS,
    SPEC_TOTAL_PARAMS,
    SPEC_TRAINABLE_PARAMS,
    EffViT,
    EffViTConfig,
    ParamCounts,
    count_parameters,
    preprocess_crops,
    recalibrate_batchnorm,
)

from engine.models.camera import (
    CameraAudioConfig,
    CameraAudioNet,
    CameraImageConfig,
    CameraImageNet,
    center_crop_256,
    preprocess_frames,
)

register_model("effvit", EffViTConfig)(EffViT)
register_model("camera_audio", CameraAudioConfig)(CameraAudioNet)
register_model("camera_image", CameraImageConfig)(CameraImageNet)

__all__ = [
    "CameraAudioConfig",
    "CameraAudioNet",
    "CameraImageConfig",
    "CameraImageNet",
    "center_crop_256",
    "preprocess_frames",
    "EffViT",
    "EffViTConfig",
    "ParamCounts",
    "SPEC_BACKBONE_PARAMS",
    "SPEC_TOTAL_PARAMS",
    "SPEC_TRAINABLE_PARAMS",
    "count_parameters",
    "create_model",
    "list_models",
    "preprocess_crops",
    "recalibrate_batchnorm",
    "register_model",
]
