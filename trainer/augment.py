"""Training augmentations of seed 2 §2.3 (albumentations in the seed; cv2/numpy here).

albumentations is not a dependency of this project, so the seed's pipeline is
re-stated with OpenCV and numpy, same probabilities and ranges:
ImageCompression(60–100, p=0.2), GaussNoise(p=0.3), HorizontalFlip(p=0.5),
one of brightness/contrast, hue/saturation (p=0.4), ToGray(p=0.2),
ShiftScaleRotate(shift 0.1, scale 0.2, rotate 5°, constant border, p=0.5).
FancyPCA is replaced by a per-channel gain (document in the card).
"""

from __future__ import annotations

import cv2
import numpy as np


def effvit_train_augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Augment one face crop.

    Args:
        img: uint8 (H, W, 3) RGB.
        rng: numpy Generator (the caller seeds it per worker/epoch).

    Returns:
        uint8 (H, W, 3) RGB, same size.
    """
    out = img
    if rng.random() < 0.2:  # ImageCompression(60-100)
        q = int(rng.integers(60, 101))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if rng.random() < 0.3:  # GaussNoise(var 10-50, albumentations default)
        sigma = float(np.sqrt(rng.uniform(10, 50)))
        out = np.clip(out.astype(np.float32) + rng.normal(0, sigma, out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.4:  # OneOf(brightness/contrast, channel gain ~FancyPCA, hue/saturation)
        choice = int(rng.integers(0, 3))
        f = out.astype(np.float32)
        if choice == 0:
            alpha, beta = rng.uniform(0.8, 1.2), rng.uniform(-0.2, 0.2) * 255
            f = f * alpha + beta
        elif choice == 1:
            f = f * rng.uniform(0.9, 1.1, size=3)
        else:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180
            hsv[..., 1] = np.clip(hsv[..., 1] + rng.uniform(-30, 30), 0, 255)
            f = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        g = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
        out = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < 0.5:  # ShiftScaleRotate(0.1, 0.2, 5 deg, BORDER_CONSTANT)
        h, w = out.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), 1 + rng.uniform(-0.2, 0.2))
        m[:, 2] += rng.uniform(-0.1, 0.1, size=2) * (w, h)
        out = cv2.warpAffine(np.ascontiguousarray(out), m, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.ascontiguousarray(out)
