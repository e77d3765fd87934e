"""trainer.sbi: Self-Blended Images (Shiohara & Yamasaki, CVPR 2022)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import TESTS
from engine.faces import FaceBox
from trainer.sbi import (
    BLEND_RATIOS,
    SBIConfig,
    SBIPair,
    SBISample,
    SelfBlendedPairs,
    blend_mask,
    face_outline,
    real_sample,
    self_blend,
    source_target_augment,
)

# MTCNN 5 landmarks of tests/data/images/single_face.jpg (572x562), full-image
# pixels, from engine.faces.MTCNNDetector(device="cpu") (box 191,145 - 373,402).
SINGLE_FACE_LANDMARKS = np.array(
    [[230.45, 249.05], [311.72, 245.91], [267.58, 298.87], [232.89, 329.15], [319.45, 325.93]]
)
SINGLE_FACE_BOX = (191.1, 145.3, 373.1, 402.0)
CENTRE_SIDE = 320  # the centre crop: a 320x320 square about the image centre


def _centre_crop(size: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """``(crop uint8 (size, size, 3) RGB, landmarks (5, 2) crop px, face box crop px)``."""
    bgr = cv2.imread(str(TESTS / "data" / "images" / "single_face.jpg"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    x0, y0 = w // 2 - CENTRE_SIDE // 2, h // 2 - CENTRE_SIDE // 2
    crop = cv2.resize(rgb[y0 : y0 + CENTRE_SIDE, x0 : x0 + CENTRE_SIDE], (size, size), interpolation=cv2.INTER_AREA)
    k = size / CENTRE_SIDE
    lm = (SINGLE_FACE_LANDMARKS - [x0, y0]) * k
    b = SINGLE_FACE_BOX
    box = ((b[0] - x0) * k, (b[1] - y0) * k, (b[2] - x0) * k, (b[3] - y0) * k)
    return crop, lm, box


@pytest.fixture(scope="module", params=[160, 224], ids=["160", "224"])
def face(request):
    return _centre_crop(request.param)


def _corner_max(mask: np.ndarray, k: int = 6) -> float:
    return float(max(mask[:k, :k].max(), mask[:k, -k:].max(), mask[-k:, :k].max(), mask[-k:, -k:].max()))


# ---------------------------------------------------------------------------
# self_blend / real_sample
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("use_landmarks", [True, False], ids=["landmarks", "no-landmarks"])
def test_self_blend_contract(face, use_landmarks):
    crop, lm, _ = face
    s = crop.shape[0]
    for seed in range(6):
        fake = self_blend(crop, lm if use_landmarks else None, rng=np.random.default_rng(seed))
        assert isinstance(fake, SBISample) and fake.label == 1
        assert fake.image.dtype == np.uint8 and fake.image.shape == (s, s, 3)
        m = fake.blend_mask
        assert m.dtype == np.float32 and m.shape == (s, s)
        assert 0.0 <= m.min() and m.max() <= 1.0
        # non-empty on the face (nose tip), ~0 at the crop corners
        nx, ny = np.round(lm[2]).astype(int)
        assert m[ny, nx] >= 0.2
        assert m[ny, nx] >= 0.8 * m.max()
        assert _corner_max(m) < 0.02
        # outside the mask the fake is the real image; inside it differs
        diff = np.abs(fake.image.astype(np.int16) - crop.astype(np.int16)).max(-1)
        assert diff[m == 0].max(initial=0) == 0
        assert diff[m < 1e-3].max(initial=0) <= 1
        assert (m < 1e-3).mean() > 0.1


def test_fakes_differ_inside_the_mask(face):
    crop, lm, _ = face
    inside = []
    for seed in range(10):
        fake = self_blend(crop, lm, rng=np.random.default_rng(seed))
        diff = np.abs(fake.image.astype(np.float32) - crop.astype(np.float32)).mean(-1)
        core = fake.blend_mask >= 0.5 * fake.blend_mask.max()
        inside.append(diff[core].mean())
    inside = np.array(inside)
    assert np.median(inside) > 3.0  # uint8 levels
    assert (inside > 0.5).all()


def test_blend_ratio_is_drawn_from_the_paper_set(face):
    crop, lm, _ = face
    peaks = {round(float(self_blend(crop, lm, rng=np.random.default_rng(s)).blend_mask.max()), 3) for s in range(40)}
    assert peaks <= set(BLEND_RATIOS)
    assert {0.25, 1.0} <= peaks


def test_real_face_mask_covers_the_face_not_the_background(face):
    crop, lm, box = face
    x1, y1, x2, y2 = box
    s = crop.shape[0]
    ys, xs = np.mgrid[0:s, 0:s] + 0.5
    w, h = x2 - x1, y2 - y1
    around = (xs > x1 - 0.2 * w) & (xs < x2 + 0.2 * w) & (ys > y1 - 0.2 * h) & (ys < y2 + 0.2 * h)
    for seed in range(5):
        m = self_blend(crop, lm, rng=np.random.default_rng(seed)).blend_mask
        assert m[around].sum() >= 0.97 * m.sum()  # nearly all mask mass on/around the face
        for x, y in np.round(lm).astype(int):  # eyes, nose and mouth corners are blended
            assert m[y, x] >= 0.5 * m.max()


def test_outline_follows_the_landmarks():
    crop, lm, box = _centre_crop(224)
    pts = face_outline(lm)
    assert pts.shape == (21, 2)
    # forehead above the eyes, chin below the mouth, cheeks outside the eyes
    assert pts[:, 1].min() < lm[:2, 1].min() - 20 and pts[:, 1].max() > lm[3:, 1].max() + 15
    assert pts[:, 0].min() < lm[0, 0] - 15 and pts[:, 0].max() > lm[1, 0] + 15
    # rotating the landmarks rotates the outline
    c = lm.mean(0)
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert np.allclose(face_outline((lm - c) @ rot.T + c), (pts - c) @ rot.T + c, atol=1e-6)


def test_determinism_and_seed_dependence(face):
    crop, lm, _ = face
    a = self_blend(crop, lm, rng=np.random.default_rng(7))
    b = self_blend(crop, lm, rng=np.random.default_rng(7))
    c = self_blend(crop, lm, rng=np.random.default_rng(8))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.blend_mask, b.blend_mask)
    assert not np.array_equal(a.image, c.image)
    assert np.array_equal(self_blend(crop, lm, rng=3).image, self_blend(crop, lm, rng=3).image)


def test_box_variants_and_non_square_crop():
    crop, lm, box = _centre_crop(224)
    a = self_blend(crop, rng=np.random.default_rng(1), box=box)
    b = self_blend(crop, rng=np.random.default_rng(1), box=FaceBox(*box))
    assert np.array_equal(a.blend_mask, b.blend_mask)
    rect = np.ascontiguousarray(crop[:, 20:200])  # (224, 180, 3)
    f = self_blend(rect, rng=np.random.default_rng(2))
    assert f.image.shape == (224, 180, 3) and f.blend_mask.shape == (224, 180)
    assert _corner_max(f.blend_mask) < 0.02 and f.blend_mask[112, 90] > 0.2


def test_source_target_augment_keeps_target():
    crop, _, _ = _centre_crop(160)
    src, tgt = source_target_augment(crop, rng=np.random.default_rng(0))
    assert src.dtype == tgt.dtype == np.float32 and src.shape == tgt.shape == (160, 160, 3)
    assert np.array_equal(tgt, crop.astype(np.float32))
    assert 0.0 <= src.min() and src.max() <= 255.0 and not np.allclose(src, tgt)


def test_blend_mask_alone_and_config():
    cfg = SBIConfig(blend_ratios=(1.0,), elastic_alpha=(0.0, 0.0), morph=0.0, blur_sigma=(0.0, 0.0))
    m = blend_mask((100, 100), box=(25, 20, 75, 80), rng=np.random.default_rng(0), config=cfg)
    assert set(np.unique(m)) == {0.0, 1.0}  # no deformation, no blur: the plain ellipse
    assert m[50, 50] == 1.0 and m[50, 20] == 0.0 and m[10, 50] == 0.0
    assert abs(m.sum() - np.pi * 25 * 30) < 0.05 * np.pi * 25 * 30  # rasterised edge pixels included


def test_real_sample():
    crop, _, _ = _centre_crop(160)
    r = real_sample(crop)
    assert r.label == 0 and np.array_equal(r.image, crop) and r.image is not crop
    assert r.blend_mask.dtype == np.float32 and r.blend_mask.shape == (160, 160) and not r.blend_mask.any()


def test_input_errors():
    crop, lm, _ = _centre_crop(160)
    with pytest.raises(ValueError, match="uint8"):
        self_blend(crop.astype(np.float32), rng=0)
    with pytest.raises(ValueError, match="uint8"):
        self_blend(crop[..., 0], rng=0)
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        self_blend(crop, lm[:4], rng=0)
    with pytest.raises(ValueError, match="box"):
        self_blend(crop, rng=0, box=(10, 10, 5, 50))


# ---------------------------------------------------------------------------
# SelfBlendedPairs
# ---------------------------------------------------------------------------
def _crops(n: int = 3, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    crop, lm, _ = _centre_crop(size)
    imgs = np.stack([np.roll(crop, 3 * i, axis=1) for i in range(n)])
    lms = np.stack([lm + [3 * i, 0] for i in range(n)])
    return imgs, lms


def test_pairs_dataset_is_deterministic():
    imgs, lms = _crops()
    ds = SelfBlendedPairs(imgs, lms, seed=5)
    assert len(ds) == 3
    item = ds[1]
    assert isinstance(item, SBIPair)
    assert item.real.label == 0 and item.fake.label == 1
    assert np.array_equal(item.real.image, imgs[1]) and not item.real.blend_mask.any()
    again = SelfBlendedPairs(imgs, lms, seed=5)
    assert np.array_equal(again[1].fake.image, item.fake.image)  # same seed, fresh instance
    assert np.array_equal(ds[-2].fake.image, item.fake.image)
    assert not np.array_equal(SelfBlendedPairs(imgs, lms, seed=6)[1].fake.image, item.fake.image)
    ds.set_epoch(1)
    assert not np.array_equal(ds[1].fake.image, item.fake.image)
    ds.set_epoch(0)
    assert np.array_equal(ds[1].fake.image, item.fake.image)
    with pytest.raises(IndexError):
        ds[3]


def test_alternate_mode_without_landmarks_and_transform():
    imgs, _ = _crops(2, 224)
    to_tensor = lambda im: torch.from_numpy(im).permute(2, 0, 1).float() / 255.0  # noqa: E731
    ds = SelfBlendedPairs(list(imgs), seed=0, mode="alternate", transform=to_tensor)
    assert len(ds) == 4
    labels = [ds[j].label for j in range(4)]
    assert labels == [0, 1, 0, 1]
    assert ds[3].image.shape == (3, 224, 224) and ds[3].image.dtype == torch.float32
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch.image.shape == (4, 3, 224, 224)
    assert batch.label.tolist() == [0, 1, 0, 1]
    assert batch.blend_mask.shape == (4, 224, 224) and batch.blend_mask[0].sum() == 0


def test_pairs_collate_and_mixed_landmarks():
    imgs, lms = _crops(2)
    ds = SelfBlendedPairs(imgs, [lms[0], None], boxes=[None, (20, 20, 140, 140)], seed=1)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    nan_lms = lms.copy()
    nan_lms[1] = np.nan  # trainer.cache marks missing landmarks with NaN
    with_nan = SelfBlendedPairs(imgs, nan_lms, boxes=[None, (20, 20, 140, 140)], seed=1)
    assert np.array_equal(with_nan[1].fake.image, ds[1].fake.image)
    assert batch.real.image.shape == batch.fake.image.shape == (2, 160, 160, 3)
    assert batch.fake.label.tolist() == [1, 1] and batch.real.label.tolist() == [0, 0]


def test_dataset_argument_errors():
    imgs, lms = _crops(2)
    with pytest.raises(ValueError, match="mode"):
        SelfBlendedPairs(imgs, mode="both")
    with pytest.raises(ValueError, match="landmarks"):
        SelfBlendedPairs(imgs, lms[:1])
    with pytest.raises(ValueError, match="seed"):
        SelfBlendedPairs(imgs, seed=-1)
