"""C3D clip classifier (seed 3, spec §3.3): 3-D convolutions over 112x112 face clips, logits ["real", "fake"].

Papers / code:

* Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks",
  ICCV 2015, arXiv:1412.0767 (the C3D layout).
* Seed 3 (``03.train_C3D.py`` / ``04.evaluate_C3D.py``, spec §3.3): C3D on MTCNN
  160x160 face crops resized to 171x128 and cropped to 112x112.

Architecture (``width`` w multiplies every channel count and both fc widths;
w = 1 is the spec; shapes for clip length ``T``, batch ``B``)::

    x        float32 (B, 3, T, 112, 112)  RGB in [0, 1]                 (preprocess_clips)
    conv1    Conv3d 3x3x3 "same" 64w + ReLU -> pool1 MaxPool (1,2,2)    -> (B,  64w, T,    56, 56)
    conv2    128w + ReLU                    -> pool2 (2,2,2)            -> (B, 128w, T/2,  28, 28)
    conv3a/b 256w + ReLU, 256w + ReLU       -> pool3 (2,2,2)            -> (B, 256w, T/4,  14, 14)
    conv4a/b 512w + ReLU, 512w + ReLU       -> pool4 (2,2,2)            -> (B, 512w, T/8,   7,  7)
    conv5a/b 512w + ReLU, 512w + ReLU       -> ZeroPad (0,1,1) -> pool5 (2,2,2) -> (B, 512w, T/16, 4, 4)
    flatten  (512w * (T//16) * 16)  -> fc6 2048w ReLU -> Dropout .5 -> fc7 2048w ReLU -> Dropout .5
    fc8      Linear(2048w, 2)       -> logits; softmax gives [P(real), P(fake)]

Pooling is Keras' ``MaxPooling3D`` with "valid" padding (floor), so the temporal
size after pool5 is ``T // 16`` and ``T >= 16`` is required; the flatten size
follows from ``clip_len``. Keras ``ZeroPadding3D((0, 1, 1))`` pads one zero row
and column on *both* sides of H and W (7 -> 9 -> pool -> 4).

Parameter counts (asserted against an independent count from the layer list in
``tests/engine/models/test_c3d.py``):

=====================  ===========  ===========  =============================
config                 conv params  fc params    total
=====================  ===========  ===========  =============================
w = 1, T = 16 (spec)   27,655,936   20,979,714   **48,635,650**
w = 1, T = 32 (README) 27,655,936   37,756,930   **65,412,866**
w = 0.25, T = 16       1,729,984    1,312,770    3,042,754 (bundled weights)
=====================  ===========  ===========  =============================

(fc6 alone is 8,192 x 2,048 at T = 16 and 16,384 x 2,048 at T = 32.)

Differences from the seed (see the model card's quirks):

* **Clip length** is ``clip_len`` (default 16), not the ``--batch_size`` argument
  (spec §3.3 [quirk]: T equalled the batch size, README ``-b 32``).
* **Class order** ``["real", "fake"]`` (class 1 = fake, the engine's convention);
  the seed's one-hot labels used class 1 = real.
* Initialisation as Keras' defaults (Glorot-uniform kernels, zero biases).
* Layout is channels-first (PyTorch); the flatten order therefore differs from
  a Keras channels-last checkpoint (no converter is shipped; none exists).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch import nn

from engine.models._registry import register_model

__all__ = [
    "C3DConfig",
    "C3D",
    "RESIZE_WH",
    "EVAL_ROW0",
    "EVAL_COL0",
    "TRAIN_ROW0_MAX",
    "TRAIN_COL0_MAX",
    "resize_frames",
    "preprocess_clips",
    "model_map_to_crop",
    "conv_channels",
]

#: Frames are resized to 171x128 (width x height) before cropping (spec §3.3).
RESIZE_WH = (171, 128)
#: Evaluation centre crop: rows [8, 120), columns [30, 142) of the 128x171 frame (spec §3.3).
EVAL_ROW0, EVAL_COL0 = 8, 30
#: Training random crop: rows [x, x+112) with x in [0, 15], columns [y, y+112) with y in [0, 58] (spec §3.3).
TRAIN_ROW0_MAX, TRAIN_COL0_MAX = 15, 58

#: Layer list of the spec's C3D (name, output channels at width 1, pooling after it or None).
_CONV_LAYOUT: tuple[tuple[str, int, tuple[int, int, int] | None], ...] = (
    ("conv1", 64, (1, 2, 2)),
    ("conv2", 128, (2, 2, 2)),
    ("conv3a", 256, None),
    ("conv3b", 256, (2, 2, 2)),
    ("conv4a", 512, None),
    ("conv4b", 512, (2, 2, 2)),
    ("conv5a", 512, None),
    ("conv5b", 512, (2, 2, 2)),  # preceded by ZeroPadding3D((0, 1, 1)), see C3D.__init__
)


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def conv_channels(width: float = 1.0) -> dict[str, int]:
    """Output channels of each conv layer for a width multiplier (``conv1`` ... ``conv5b``)."""
    return {name: _scaled(c, width) for name, c, _ in _CONV_LAYOUT}


@dataclass(frozen=True)
class C3DConfig:
    """C3D architecture (spec §3.3).

    Attributes:
        clip_len: frames per clip ``T`` (>= 16; the seed's T was its batch size,
            a [quirk]; 16 is C3D's own clip length).
        input_size: side of the square input in pixels (112; the pooling
            arithmetic of the spec layout, 112 -> 7 -> pad 9 -> 4, assumes it).
        width: multiplier of every conv channel count and of the fc6/fc7 widths
            (1.0 = spec; the bundled CPU-trained weights use 0.25).
        fc_dim: fc6/fc7 width at ``width = 1`` (2048, spec).
        num_classes: logits out (2: ``["real", "fake"]``).
        dropout: dropout after fc6 and fc7 (0.5, spec).
    """

    clip_len: int = 16
    input_size: int = 112
    width: float = 1.0
    fc_dim: int = 2048
    num_classes: int = 2
    dropout: float = 0.5

    def __post_init__(self):
        if self.clip_len < 16:
            raise ValueError(f"clip_len must be >= 16 (four temporal poolings by 2), got {self.clip_len}")
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32, got {self.input_size}")
        if not self.width > 0:
            raise ValueError(f"width must be positive, got {self.width}")
        if self.num_classes < 1 or self.fc_dim < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"invalid config: {self}")

    @property
    def pooled_shape(self) -> tuple[int, int, int]:
        """``(T', h', w')`` after pool5: ``(T // 16, 4, 4)`` for a 112 input."""
        t, s = self.clip_len, self.input_size
        for _, _, pool in _CONV_LAYOUT[:-1]:
            if pool:
                t, s = t // pool[0], s // pool[1]
        return t // 2, (s + 2) // 2, (s + 2) // 2

    @property
    def flatten_dim(self) -> int:
        """Input size of fc6: ``512w * T' * h' * w'`` (8,192 for the spec config, T = 16)."""
        t, h, w = self.pooled_shape
        return conv_channels(self.width)["conv5b"] * t * h * w

    def to_dict(self) -> dict:
        """Keyword arguments for a model card (``ModelCard.config``)."""
        return asdict(self)


# ============================================================================ preprocessing
def resize_frames(crops_rgb_uint8: np.ndarray) -> np.ndarray:
    """Resize face crops to 171x128 (w x h), ``cv2.resize`` bilinear as the seed (spec §3.3).

    Args:
        crops_rgb_uint8: ``uint8 (N, H, W, 3)`` RGB (``mtcnn_margin40_160`` crops: 160x160).

    Returns:
        ``uint8 (N, 128, 171, 3)`` RGB; returned unchanged (no copy) if already that size.

    Raises:
        TypeError: not uint8. ValueError: not ``(N, H, W, 3)``.
    """
    arr = np.asarray(crops_rgb_uint8)
    if arr.dtype != np.uint8:
        raise TypeError(f"frames must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must have shape (N, H, W, 3), got {arr.shape}")
    w, h = RESIZE_WH
    if arr.shape[1:3] == (h, w):
        return arr
    if len(arr) == 0:
        return np.zeros((0, h, w, 3), np.uint8)
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in arr])


def preprocess_clips(clips_rgb_uint8: np.ndarray, train: bool = False, rng: np.random.Generator | None = None,
                     input_size: int = 112) -> torch.Tensor:
    """Face clips -> C3D input. The ONE preprocessing function of ``deepfake.c3d`` (detector and trainer).

    Spec §3.3: each frame is resized to 171x128 (w x h); evaluation takes the
    centre crop rows ``[8:120]``, columns ``[30:142]``; training takes one random
    112x112 window per clip (rows ``[x, x+112)``, x in [0, 15]; columns
    ``[y, y+112)``, y in [0, 58]; the same window for every frame) and flips the
    whole clip horizontally with probability 0.5; values are divided by 255.

    Args:
        clips_rgb_uint8: ``uint8 (B, T, H, W, 3)`` RGB; either ``mtcnn_margin40_160``
            crops (160x160, resized here) or frames already resized to 128x171
            (:func:`resize_frames`; the trainer caches them).
        train: random crop + flip instead of the centre crop.
        rng: generator for the training crop/flip (required when ``train``).
        input_size: crop side (112).

    Returns:
        ``float32 (B, 3, T, 112, 112)`` CPU tensor, RGB in [0, 1].

    Raises:
        TypeError: not uint8. ValueError: wrong shape, or ``train`` without ``rng``.
    """
    arr = np.asarray(clips_rgb_uint8)
    if arr.dtype != np.uint8:
        raise TypeError(f"clips must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim != 5 or arr.shape[-1] != 3:
        raise ValueError(f"clips must have shape (B, T, H, W, 3), got {arr.shape}")
    if train and rng is None:
        raise ValueError("train=True needs an rng")
    b, t = arr.shape[:2]
    frames = resize_frames(arr.reshape(b * t, *arr.shape[2:])).reshape(b, t, RESIZE_WH[1], RESIZE_WH[0], 3)
    s = input_size
    out = np.empty((b, t, s, s, 3), np.uint8)
    for i in range(b):
        if train:
            r0 = int(rng.integers(0, TRAIN_ROW0_MAX + 1))
            c0 = int(rng.integers(0, TRAIN_COL0_MAX + 1))
            win = frames[i, :, r0 : r0 + s, c0 : c0 + s]
            if rng.random() < 0.5:
                win = win[:, :, ::-1]
        else:
            win = frames[i, :, EVAL_ROW0 : EVAL_ROW0 + s, EVAL_COL0 : EVAL_COL0 + s]
        out[i] = win
    x = torch.from_numpy(out).permute(0, 4, 1, 2, 3).float().div_(255.0)  # (B, 3, T, s, s)
    return x.contiguous()


def model_map_to_crop(heatmap: np.ndarray, crop_hw: tuple[int, int] = (160, 160)) -> np.ndarray:
    """Place a map on the evaluation window (112x112, model input coords) back onto the face crop.

    Exact inverse of :func:`preprocess_clips` (eval): crop pixel ``x_c`` maps to
    resized pixel ``x_r = (x_c + 0.5) * 171 / W - 0.5`` (``cv2.resize``'s pixel-centre
    convention) and to model pixel ``x_r - 30``; likewise rows with 128 / H and 8.
    Bilinear sampling; crop pixels outside the 112x112 window get 0.

    Args:
        heatmap: ``float (112, 112)``, model input coordinates.
        crop_hw: ``(H, W)`` of the face crop in pixels (160x160 for ``mtcnn_margin40_160``).

    Returns:
        ``float32 (H, W)`` in face-crop coordinates (cover the whole crop; use
        ``FaceCrop.heatmap_to_frame`` / the crop placement to reach the frame).

    Raises:
        ValueError: ``heatmap`` is not 2-D.
    """
    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {hm.shape}")
    h, w = int(crop_hw[0]), int(crop_hw[1])
    sx, sy = RESIZE_WH[0] / w, RESIZE_WH[1] / h
    # dst (crop) pixel (u, v) samples src (model) pixel (sx u + tx, sy v + ty)
    m = np.array([[sx, 0.0, 0.5 * sx - 0.5 - EVAL_COL0], [0.0, sy, 0.5 * sy - 0.5 - EVAL_ROW0]], np.float64)
    return cv2.warpAffine(hm, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


# ============================================================================ model
class C3D(nn.Module):
    """C3D (spec §3.3); see the module docstring for shapes and parameter counts.

    Args:
        config: architecture; defaults to the spec's (width 1, T = 16).

    Attributes:
        features: ``nn.Sequential`` named ``conv1, relu1, pool1, ..., conv5b, relu5b, pad5, pool5``.
        classifier: ``nn.Sequential`` named ``fc6, relu6, drop6, fc7, relu7, drop7, fc8``.
    """

    def __init__(self, config: C3DConfig = C3DConfig()):
        super().__init__()
        self.config = c = config
        chans = conv_channels(c.width)
        layers: list[tuple[str, nn.Module]] = []
        cin = 3
        for name, _, pool in _CONV_LAYOUT:
            suffix = name[4:]
            layers += [(name, nn.Conv3d(cin, chans[name], kernel_size=3, padding=1)),
                       (f"relu{suffix}", nn.ReLU())]
            if name == "conv5b":
                layers.append(("pad5", nn.ConstantPad3d((1, 1, 1, 1, 0, 0), 0.0)))  # ZeroPadding3D((0, 1, 1))
            if pool:
                layers.append((f"pool{suffix[0]}", nn.MaxPool3d(kernel_size=pool, stride=pool)))
            cin = chans[name]
        self.features = nn.Sequential(OrderedDict(layers))
        fc = _scaled(c.fc_dim, c.width)
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(c.flatten_dim, fc)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(c.dropout)),
            ("fc7", nn.Linear(fc, fc)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(c.dropout)),
            ("fc8", nn.Linear(fc, c.num_classes)),
        ]))
        self.reset_parameters()

    def reset_parameters(self, scheme: str = "glorot") -> None:
        """Re-initialise every Conv3d / Linear; biases zero.

        Args:
            scheme: ``"glorot"`` (Keras' default Glorot-uniform, the seed's) or ``"kaiming"``
                (He-normal, fan-in, for ReLU; keeps the activation scale through the 11
                weight layers of this BatchNorm-free network when training from scratch).

        Raises:
            ValueError: unknown scheme.
        """
        if scheme not in ("glorot", "kaiming"):
            raise ValueError(f"init scheme must be 'glorot' or 'kaiming', got {scheme!r}")
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                if scheme == "glorot":
                    nn.init.xavier_uniform_(m.weight)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def gradcam_layer(self, name: str = "conv5b") -> nn.Module:
        """Grad-CAM (3D) target: the ReLU after ``name`` (Keras' Conv3D output includes its ReLU).

        ``conv5b`` (default): the last conv layer, output ``(B, 512w, T/8, 7, 7)``; the
        standard Grad-CAM choice (spec §3.6 uses the classifier's last conv activation).
        ``conv4b``: ``(B, 512w, T/4, 14, 14)``, twice the temporal and spatial resolution,
        less class-specific.

        Raises:
            KeyError: no conv layer of that name.
        """
        if name not in conv_channels():
            raise KeyError(f"no conv layer {name!r}; choose from {', '.join(conv_channels())}")
        return getattr(self.features, f"relu{name[4:]}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify face clips.

        Args:
            x: ``float32 (B, 3, T, 112, 112)`` from :func:`preprocess_clips` (RGB, [0, 1]),
                ``T = config.clip_len``.

        Returns:
            ``float32 (B, num_classes)`` logits ``[real, fake]``; ``softmax(...)[:, 1]`` = P(fake).

        Raises:
            ValueError: wrong input shape.
        """
        c = self.config
        want = (3, c.clip_len, c.input_size, c.input_size)
        if x.ndim != 5 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected input (B, {', '.join(map(str, want))}), got {tuple(x.shape)}")
        return self.classifier(torch.flatten(self.features(x), 1))


register_model("c3d", C3DConfig)(C3D)
