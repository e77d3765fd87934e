"""Crop policies: sizes and region geometry (centre and frame-edge faces, padding values) and the
crop -> frame heatmap mapping."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from engine.faces import CROP_POLICIES, FaceBox, FaceCrop, crop_face, get_crop_policy

H, W = 360, 480


def _smooth_frame() -> np.ndarray:
    """uint8 (H, W, 3) RGB with slowly varying, different patterns per channel."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 29.0)
    g = 128 + 100 * np.cos(x / 23.0 + 1.0)
    b = 128 + 100 * np.sin((x + y) / 41.0)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def _coded_frame() -> np.ndarray:
    """uint8 (H, W, 3): R = x mod 256, G = y mod 256, B = x // 256 + 100: every pixel says where it is."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x % 256, y % 256, x // 256 + 100], axis=-1).astype(np.uint8)


CENTRE = FaceBox(200, 120, 300, 180, 0.99)  # 100 x 60, wider than tall
TALL = FaceBox(180, 100, 240, 200, 0.99)  # 60 x 100
CORNER = FaceBox(0, 0, 70, 90, 0.9)  # at the top-left corner
RIGHT_EDGE = FaceBox(420, 200, 480, 280, 0.9)  # touching the right edge


def test_registry():
    assert set(CROP_POLICIES) == {"effvit_square224", "mtcnn_margin40_160", "freq_square1p5", "tmc_shifted1p4_224"}
    for name, policy in CROP_POLICIES.items():
        assert policy.name == name and policy.seed_section
        assert get_crop_policy(name) is policy and get_crop_policy(policy) is policy
        with pytest.raises(dataclasses.FrozenInstanceError):
            policy.name = "x"  # type: ignore[misc]
    with pytest.raises(KeyError, match="known"):
        crop_face(_smooth_frame(), CENTRE, "nope")


@pytest.mark.parametrize("policy", sorted(CROP_POLICIES))
@pytest.mark.parametrize("box", [CENTRE, TALL, CORNER, RIGHT_EDGE], ids=["centre", "tall", "corner", "right"])
def test_output_type_and_rgb_order(policy, box):
    frame = np.zeros((H, W, 3), np.uint8)
    frame[..., 0] = 200  # pure red frame
    c = crop_face(frame, box, policy)
    assert isinstance(c, FaceCrop) and c.policy == policy and c.box is box and c.frame_hw == (H, W)
    assert c.image.dtype == np.uint8 and c.image.ndim == 3 and c.image.shape[2] == 3
    x0, y0, x1, y1 = c.content
    # real pixels; stay 1 px inside a padded border, where resizing blends in the padding
    h, w = c.image.shape[:2]
    real = c.image[
        int(np.ceil(y0)) + (y0 > 0) : int(y1) - (y1 < h), int(np.ceil(x0)) + (x0 > 0) : int(x1) - (x1 < w)
    ]
    assert real.size and np.all(real[..., 0] == 200) and np.all(real[..., 1:] == 0)


# --------------------------------------------------------------------------- effvit (seed 2)
def test_effvit_pads_box_to_square_without_margin():
    c = crop_face(_coded_frame(), CENTRE, "effvit_square224")
    assert c.image.shape == (224, 224, 3)
    # 100 x 60 box: height padded by 20 on each side -> square 100 x 100 at (200, 100)
    assert c.region == pytest.approx((200, 100, 300, 200))
    assert c.content == (0, 0, 224, 224)
    t = crop_face(_coded_frame(), TALL, "effvit_square224")
    assert t.region == pytest.approx((160, 100, 260, 200))


def test_effvit_clamps_top_left_and_pads_with_zeros():
    frame = _smooth_frame()
    box = FaceBox(0, 20, 40, 120, 0.9)  # 40 x 100: width padded by 30 -> x from -30, clamped to 0
    c = crop_face(frame, box, "effvit_square224")
    # crop [0, 70) x [20, 120): 70 x 100 -> isotropic resize to 156 x 224, centred in 224
    assert c.content == pytest.approx((34, 0, 190, 224))
    assert c.content_in_frame == pytest.approx((0, 20, 70, 120))
    assert np.all(c.image[:, :34] == 0) and np.all(c.image[:, 190:] == 0)
    assert c.region[0] < 0  # the padded image reaches left of the frame
    expected = cv2.resize(frame[20:120, 0:70], (156, 224), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(c.image[:, 34:190], expected)


# --------------------------------------------------------------------------- mtcnn (seed 3)
def test_mtcnn_margin_rule_matches_facenet_extract_face():
    frame = _coded_frame()
    box = FaceBox(100, 100, 220, 220, 0.99)  # 120 px -> margin 40 px -> 20 each side, scale 1
    c = crop_face(frame, box, "mtcnn_margin40_160")
    assert c.image.shape == (160, 160, 3)
    assert c.region == (80, 80, 240, 240)
    assert np.array_equal(c.image, frame[80:240, 80:240])

    from facenet_pytorch.models.utils.detect_face import extract_face

    for b in (FaceBox(37.3, 51.9, 163.2, 201.4), CORNER, RIGHT_EDGE):
        ours = crop_face(frame, b, "mtcnn_margin40_160")
        theirs = extract_face(frame, np.array(b.xyxy), image_size=160, margin=40)  # float (3,160,160)
        assert np.array_equal(ours.image, theirs.permute(1, 2, 0).numpy().astype(np.uint8))


def test_mtcnn_margin_clamps_at_the_frame():
    c = crop_face(_coded_frame(), CORNER, "mtcnn_margin40_160")
    # margins 70*40/120 = 23.3 and 90*40/120 = 30 -> left/top clamped to 0
    assert c.region == (0, 0, 81, 105)
    assert c.content == (0, 0, 160, 160)


# --------------------------------------------------------------------------- freq (seed 4)
def test_freq_square_1p5_no_resize():
    frame = _coded_frame()
    box = FaceBox(100, 50, 180, 150, 0.9)  # 80 x 100 -> side 150 about the centre (140, 100)
    c = crop_face(frame, box, "freq_square1p5")
    assert c.region == (65, 25, 215, 175)
    assert np.array_equal(c.image, frame[25:175, 65:215])
    # at the right edge the square is shrunk to fit (FF++ get_boundingbox), and stays square
    e = crop_face(frame, RIGHT_EDGE, "freq_square1p5")
    assert e.image.shape[0] == e.image.shape[1] == 480 - 390
    assert e.region == (390, 180, 480, 270)
    assert np.array_equal(e.image, frame[180:270, 390:480])


# --------------------------------------------------------------------------- tmc (seed 5)
def test_tmc_shifted_square_geometry():
    frame = _coded_frame()
    box = FaceBox(190, 130, 290, 230, 0.99)  # 100 px, centre (240, 180): s = 50
    c = crop_face(frame, box, "tmc_shifted1p4_224")
    assert c.image.shape == (224, 224, 3)
    # rows [180 - 50, 180 + 90), cols [240 - 70, 240 + 70): side 140 = 1.4 x 100, shifted down
    assert c.region == (170, 130, 310, 270)
    assert c.content == (0, 0, 224, 224)
    expected = cv2.resize(frame[130:270, 170:310], (224, 224), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(c.image, expected)


def test_tmc_pads_with_110_at_the_frame_edge():
    frame = _smooth_frame()
    c = crop_face(frame, CORNER, "tmc_shifted1p4_224")  # s = 45, centre (35, 45)
    assert c.region == (-28, 0, 98, 126)  # cols [35 - 63, 35 + 63), rows [0, 126)
    x0, y0, x1, y1 = c.content
    assert x0 == pytest.approx(28 * 224 / 126) and (y0, x1, y1) == (0, 224, 224)
    assert np.all(c.image[:, : int(x0) - 1] == 110)
    assert c.content_in_frame == pytest.approx((0, 0, 98, 126))


# --------------------------------------------------------------------------- crop -> frame
@pytest.mark.parametrize("policy", sorted(CROP_POLICIES))
@pytest.mark.parametrize("box", [CENTRE, TALL, CORNER, RIGHT_EDGE], ids=["centre", "tall", "corner", "right"])
def test_heatmap_of_crop_grey_maps_back_onto_frame_grey(policy, box):
    frame = _smooth_frame()
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    c = crop_face(frame, box, policy)
    heat = cv2.cvtColor(c.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    back = c.heatmap_to_frame(heat, (H, W))
    assert back.shape == (H, W) and back.dtype == np.float32
    covered = ~np.isnan(back)
    # coverage = frame pixels whose centres lie in the crop's real content
    fx1, fy1, fx2, fy2 = c.content_in_frame
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    expected = (xs >= fx1) & (xs < fx2) & (ys >= fy1) & (ys < fy2)
    assert np.array_equal(covered, expected)
    # away from the content border (where crop resampling mixes in padding) the values line up
    inner = expected & (xs >= fx1 + 2) & (xs < fx2 - 2) & (ys >= fy1 + 2) & (ys < fy2 - 2)
    err = np.abs(back[inner] - grey[inner])
    assert err.mean() < 1.5 and np.percentile(err, 99) < 6


@pytest.mark.parametrize("policy", sorted(CROP_POLICIES))
def test_single_hot_heatmap_lands_on_the_right_frame_pixel(policy):
    c = crop_face(_smooth_frame(), CENTRE, policy)
    h, w = c.image.shape[:2]
    for u, v in [(w // 2, h // 2), (w // 4, 3 * h // 4), (w - 10, 10)]:
        heat = np.zeros((h, w), np.float32)
        heat[v, u] = 1.0
        back = c.heatmap_to_frame(heat)
        peak = np.unravel_index(np.nanargmax(back), back.shape)
        want = c.crop_to_frame_xy(np.array([u + 0.5, v + 0.5]))
        assert abs(peak[1] + 0.5 - want[0]) <= 1.0 and abs(peak[0] + 0.5 - want[1]) <= 1.0
        assert np.nansum(back) > 0


def test_low_resolution_heatmap_and_point_mapping():
    c = crop_face(_smooth_frame(), CENTRE, "effvit_square224")
    cam = np.zeros((7, 7), np.float32)
    cam[:, 4:] = 1.0  # right 3/7 of the crop
    back = c.heatmap_to_frame(cam)
    x1, _, x2, _ = c.region
    split = x1 + (x2 - x1) * 4 / 7
    row = back[150]
    cols = np.arange(W) + 0.5
    assert np.all(row[(cols > split + 8) & (cols < x2)] > 0.99)
    assert np.all(row[(cols > x1) & (cols < split - 8)] < 0.01)
    assert np.all(np.isnan(row[cols < x1])) and np.all(np.isnan(row[cols > x2]))
    pts = np.array([[0.0, 0.0], [112.0, 112.0], [224.0, 224.0]])
    assert np.allclose(c.frame_to_crop_xy(c.crop_to_frame_xy(pts)), pts)
    assert np.allclose(c.crop_to_frame_xy(pts[1]), CENTRE.center)
    with pytest.raises(ValueError):
        c.heatmap_to_frame(np.zeros((2, 2, 2)))


def test_crop_outside_the_frame_maps_to_all_nan():
    c = crop_face(_smooth_frame(), CENTRE, "tmc_shifted1p4_224")
    assert np.all(np.isnan(c.heatmap_to_frame(np.ones((14, 14)), (100, 100))))  # frame smaller than region
