"""The top-down crop pipeline: geometry, sampling, augmentation and its exact inverse."""

import numpy as np
import pytest

from posekit import crop
from posekit.skeleton import COCO, MPII

OUT = (48, 64)  # (W, H)


def people(rng, n, img_size=(160, 120)):
    """n random COCO people: boxes (n, 4) and keypoints (n, 17, 3) inside their boxes, a few unlabelled."""
    W, H = img_size
    x, y = rng.uniform(0, W / 2, n), rng.uniform(0, H / 2, n)
    w, h = rng.uniform(10, W / 2, n), rng.uniform(10, H / 2, n)
    boxes = np.stack([x, y, w, h], -1)
    kx = x[:, None] + rng.uniform(0, 1, (n, 17)) * w[:, None]
    ky = y[:, None] + rng.uniform(0, 1, (n, 17)) * h[:, None]
    v = rng.choice([0, 1, 2], (n, 17), p=[0.2, 0.2, 0.6]).astype(float)
    kpts = np.stack([np.where(v > 0, kx, 0), np.where(v > 0, ky, 0), v], -1)
    return boxes, kpts


def test_crop_then_inverse_is_the_identity_with_rotation_scale_shift_and_flip():
    rng = np.random.default_rng(0)
    boxes, kpts = people(rng, 32)
    images = np.zeros((32, 120, 160, 3), np.uint8)
    aug = crop.random_augment(rng, 32, shift_range=0.1, rotation_prob=1.0)
    assert aug["flip"].any() and not aug["flip"].all()
    crops, kp, mats = crop.crop_batch(images, boxes, kpts, OUT, aug, COCO)
    assert crops.shape == (32, 64, 48, 3) and crops.dtype == np.uint8
    expected_v = np.where(aug["flip"][:, None], kpts[:, COCO.flip_permutation(), 2], kpts[..., 2])
    np.testing.assert_array_equal(kp[..., 2], expected_v)
    back = crop.crop_to_image(kp, mats, COCO)
    np.testing.assert_allclose(back, kpts, atol=1e-9)
    assert np.all(kp[kp[..., 2] == 0][:, :2] == 0)


def test_affine_inverse_flag_gives_the_inverse_matrix():
    rng = np.random.default_rng(1)
    c, s, r = rng.uniform(0, 100, (5, 2)), rng.uniform(10, 50, (5, 2)), rng.uniform(-90, 90, 5)
    fwd = crop.affine_matrix(c, s, r, OUT, flip=[True, False, True, False, False])
    inv = crop.affine_matrix(c, s, r, OUT, inverse=True, flip=[True, False, True, False, False])
    pts = rng.uniform(-50, 150, (5, 9, 2))
    np.testing.assert_allclose(crop.transform_points(crop.transform_points(pts, fwd), inv), pts, atol=1e-9)


def test_crop_maps_the_scaled_box_edges_onto_the_output_edges():
    # Centre -> middle of the crop; the scaled box's corners -> the output's outer corners (-0.5, W - 0.5).
    m = crop.affine_matrix([[50.0, 40.0]], [[24.0, 32.0]], 0.0, OUT)
    pts = crop.transform_points(np.array([[[50.0, 40.0], [38.0, 24.0], [62.0, 56.0]]]), m)
    np.testing.assert_allclose(pts[0], [[23.5, 31.5], [-0.5, -0.5], [47.5, 63.5]])


def test_positive_rotation_turns_the_person_counter_clockwise_as_displayed():
    m = crop.affine_matrix([[50.0, 50.0]], [[48.0, 64.0]], 90.0, OUT)
    # A point to the right of the centre ends up above it (smaller y) in the crop.
    p = crop.transform_points(np.array([[[60.0, 50.0]]]), m)[0, 0]
    np.testing.assert_allclose(p, [23.5, 31.5 - 10.0], atol=1e-9)


def test_a_box_covering_the_image_warps_it_unchanged():
    img = np.random.default_rng(2).integers(0, 255, (1, 30, 20, 3), dtype=np.uint8)
    center, scale = crop.box_to_center_scale([[-0.5, -0.5, 20, 30]], 20 / 30, padding=1.0)
    m = crop.affine_matrix(center, scale, 0.0, (20, 30))
    np.testing.assert_array_equal(crop.warp_images(img, m, (20, 30)), img)


@pytest.mark.parametrize("rotation", [0.0, 17.0, -75.0])
def test_a_bright_dot_lands_where_its_keypoint_maps_in_the_crop(rotation):
    rng = np.random.default_rng(3)
    n = 16
    img = np.zeros((n, 120, 160), np.float32)
    dot = np.stack([rng.integers(40, 120, n), rng.integers(30, 90, n)], -1)  # (x, y) integer pixels
    img[np.arange(n), dot[:, 1], dot[:, 0]] = 1.0
    boxes = np.concatenate([dot - rng.uniform(3, 9, (n, 2)), rng.uniform(12, 18, (n, 2))], -1)
    kpts = np.concatenate([np.repeat(dot[:, None, :], 16, 1).astype(float), np.full((n, 16, 1), 2.0)], -1)
    aug = {"scale": np.full(n, 1.0), "rotation": np.full(n, rotation), "flip": rng.random(n) < 0.5}
    crops, kp, _ = crop.crop_batch(img, boxes, kpts, OUT, aug, MPII)
    kp = kp[:, 0, :2]  # every joint sits on the dot, so left/right swaps do not matter here
    # The crop magnifies ~3x, so the dot becomes a bilinear tent: its brightest sample is the crop
    # pixel nearest the mapped keypoint and its intensity-weighted centroid is the keypoint itself.
    peak = np.array([np.unravel_index(c.argmax(), c.shape)[::-1] for c in crops])
    assert np.abs(peak - kp).max() <= 1.0
    ys, xs = np.mgrid[0 : OUT[1], 0 : OUT[0]]
    mass = crops.sum(axis=(1, 2))
    centroid = np.stack([(crops * xs).sum(axis=(1, 2)), (crops * ys).sum(axis=(1, 2))], -1) / mass[:, None]
    np.testing.assert_allclose(centroid, kp, atol=0.05)


def test_aspect_ratio_padding_keeps_the_box_inside_the_crop():
    rng = np.random.default_rng(4)
    boxes = np.concatenate([rng.uniform(0, 100, (200, 2)), rng.uniform(1, 200, (200, 2))], -1)
    for aspect in (0.75, 1.0, 1.6):
        center, scale = crop.box_to_center_scale(boxes, aspect, padding=1.25)
        np.testing.assert_allclose(scale[:, 0] / scale[:, 1], aspect)
        np.testing.assert_allclose(center, boxes[:, :2] + boxes[:, 2:] / 2)
        assert np.all(scale >= boxes[:, 2:] * 1.25 - 1e-9)
        # Exactly one side is the padded box side (the other was grown to the aspect ratio).
        tight = np.isclose(scale, boxes[:, 2:] * 1.25)
        assert np.all(tight.any(axis=1))
        corners = np.stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
        m = crop.affine_matrix(center, scale, 0.0, (int(aspect * 64), 64))
        c = crop.transform_points(corners, m)
        assert c.min() >= -0.5 and np.all(c[..., 0] <= int(aspect * 64) - 0.5 + 1e-6) and c[..., 1].max() <= 63.5


def test_flipped_crop_is_the_mirror_image_of_the_unflipped_crop():
    rng = np.random.default_rng(5)
    img = rng.random((3, 80, 90)).astype(np.float32)
    c, s, r = rng.uniform(30, 60, (3, 2)), rng.uniform(20, 40, (3, 2)), rng.uniform(-30, 30, 3)
    plain = crop.warp_images(img, crop.affine_matrix(c, s, r, OUT), OUT)
    flipped = crop.warp_images(img, crop.affine_matrix(c, s, r, OUT, flip=np.ones(3, bool)), OUT)
    np.testing.assert_allclose(flipped, plain[:, :, ::-1], atol=1e-5)


def test_flip_keypoints_twice_is_the_identity_and_swaps_left_and_right():
    rng = np.random.default_rng(6)
    _, kpts = people(rng, 4)
    once = crop.flip_keypoints(kpts, 160, COCO)
    np.testing.assert_allclose(crop.flip_keypoints(once, 160, COCO), kpts)
    lw, rw = COCO.index("left_wrist"), COCO.index("right_wrist")
    nose = COCO.index("nose")
    np.testing.assert_allclose(once[:, rw, 2], kpts[:, lw, 2])
    lab = kpts[:, lw, 2] > 0
    np.testing.assert_allclose(once[lab, rw, 0], 159 - kpts[lab, lw, 0])
    np.testing.assert_allclose(once[lab, rw, 1], kpts[lab, lw, 1])
    labn = kpts[:, nose, 2] > 0
    np.testing.assert_allclose(once[labn, nose, 0], 159 - kpts[labn, nose, 0])


def test_transform_points_leaves_the_visibility_column_alone():
    m = crop.affine_matrix([[10.0, 10.0]], [[20.0, 20.0]], 30.0, (20, 20))
    p = crop.transform_points(np.array([[[1.0, 2.0, 1.0], [3.0, 4.0, 0.0]]]), m)
    assert p[0, :, 2].tolist() == [1.0, 0.0]


def test_a_list_of_images_of_different_sizes_crops_like_each_image_alone():
    rng = np.random.default_rng(7)
    imgs = [rng.random((50, 70, 3)).astype(np.float32), rng.random((90, 40, 3)).astype(np.float32)]
    c, s, r = np.array([[35.0, 25.0], [20.0, 45.0]]), np.array([[80.0, 100.0], [60.0, 80.0]]), np.array([10.0, -20])
    mats = crop.affine_matrix(c, s, r, OUT)
    together = crop.warp_images(imgs, mats, OUT)
    for i in range(2):
        np.testing.assert_allclose(together[i], crop.warp_images(imgs[i][None], mats[i : i + 1], OUT)[0], atol=1e-6)
    # Outside the image is black: the crops above reach past every image edge.
    assert together[0, 0, 0].max() == 0 and together[1, -1, -1].max() == 0


def test_random_augment_respects_its_ranges():
    aug = crop.random_augment(np.random.default_rng(8), 2000, scale_range=(0.7, 1.3), rotation_std=30.0)
    assert aug["scale"].min() >= 0.7 and aug["scale"].max() <= 1.3
    assert np.abs(aug["rotation"]).max() <= 60.0 and np.abs(aug["rotation"]).max() > 45.0
    assert 0.3 < (aug["rotation"] == 0).mean() < 0.5  # rotation applied with probability 0.6
    assert 0.45 < aug["flip"].mean() < 0.55 and not aug["shift"].any()


def test_crop_batch_needs_a_keypoint_set_to_flip():
    aug = {"scale": np.ones(1), "rotation": np.zeros(1), "flip": np.ones(1, bool)}
    with pytest.raises(ValueError, match="kset"):
        crop.crop_batch(np.zeros((1, 10, 10)), [[0, 0, 5, 5]], np.zeros((1, 17, 3)), OUT, aug)


def test_crop_rejects_wrong_shapes_naming_the_input():
    with pytest.raises(ValueError, match="bboxes"):
        crop.box_to_center_scale(np.zeros((3, 3)), 0.75)
    with pytest.raises(ValueError, match="matrices"):
        crop.transform_points(np.zeros((1, 2, 2)), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="output_size"):
        crop.affine_matrix(np.zeros((1, 2)), np.ones((1, 2)), 0.0, (0, 10))


def test_one_image_can_be_shared_by_many_crops():
    img = np.random.default_rng(9).random((1, 60, 80, 3)).astype(np.float32)
    c, s = np.array([[20.0, 20.0], [50.0, 30.0], [40.0, 40.0]]), np.full((3, 2), 30.0)
    mats = crop.affine_matrix(c, s, [0.0, 30.0, -10.0], OUT)
    shared = crop.warp_images([img[0]], mats, OUT)
    np.testing.assert_allclose(shared, crop.warp_images(np.repeat(img, 3, axis=0), mats, OUT))
    with pytest.raises(ValueError, match="2 images but 3 matrices"):
        crop.warp_images(np.repeat(img, 2, axis=0), mats, OUT)


def test_crop_encode_decode_and_back_recovers_image_keypoints():
    # The whole top-down path: image -> crop -> heatmap -> DARK -> crop -> image.
    from posekit import codecs

    rng = np.random.default_rng(10)
    boxes, kpts = people(rng, 8, img_size=(640, 480))
    lab = kpts[..., 2] > 0
    aug = crop.random_augment(rng, 8, scale_range=(1.2, 1.3), rotation_prob=1.0, rotation_std=10.0)
    _, kp, mats = crop.crop_batch([np.zeros((480, 640))], boxes, kpts, (192, 256), aug, COCO)
    hm, w = codecs.heatmap_targets(kp, (192, 256), (48, 64), sigma=2.0)
    np.testing.assert_array_equal(w, kp[..., 2] > 0)  # scale >= 1.2 keeps every labelled keypoint inside
    uv, _ = codecs.decode_dark(hm, border=1)
    xy = codecs.heatmap_to_input(uv, (192, 256), (48, 64))
    back = crop.crop_to_image(np.concatenate([xy, kp[..., 2:]], -1), mats, COCO)
    # Heatmap px of error times the stride (4) times the crop-to-image scale (box side / output side).
    px_per_cell = 4 * np.linalg.norm(crop.invert_affine(mats)[:, :, 0], axis=1)
    err = np.abs(back[..., :2] - kpts[..., :2]).max(-1) / px_per_cell[:, None]
    assert err[lab].max() <= 0.5 + 1e-3
