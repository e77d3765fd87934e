"""Model architectures (plain ``nn.Module`` s: config dataclass in, logits out).

* :mod:`engine.models.effvit`  seed 2 §2.2 EfficientNet-B0 + ViT (:class:`EffViT`,
  :class:`EffViTConfig`, :func:`preprocess_crops`), registered as ``"effvit"``.

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

register_model("effvit", EffViTConfig)(EffViT)

__all__ = [
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
