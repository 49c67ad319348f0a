"""Controlled perturbations of ground truth (posekit.perturb) do exactly one thing each."""

import numpy as np
import pytest

from posekit import perturb
from posekit.skeleton import COCO


def _people(n=4, seed=0):
    rng = np.random.default_rng(seed)
    k = np.zeros((n, 17, 3))
    k[..., :2] = rng.uniform(10, 100, size=(n, 17, 2))
    k[..., 2] = 2
    k[0, 3, :] = 0  # one unlabelled joint
    return k


def test_jitter_std_matches_sigma_and_keeps_visibility():
    k = np.zeros((2000, 17, 3))
    k[..., 2] = 2
    out = perturb.jitter(k, 3.0, np.random.default_rng(0))
    assert out.shape == k.shape
    assert np.allclose(out[..., 2], 2)
    assert abs(out[..., :2].std() - 3.0) < 0.05


def test_jitter_per_person_sigma_scales_each_person():
    k = np.zeros((2, 5000, 2))
    out = perturb.jitter(k, np.array([1.0, 10.0]), np.random.default_rng(1))
    stds = out.reshape(2, -1).std(axis=1)
    assert np.allclose(stds, [1.0, 10.0], rtol=0.05)


def test_jitter_rejects_wrong_sigma_shape():
    with pytest.raises(ValueError, match="sigma"):
        perturb.jitter(_people(4), np.ones(3), np.random.default_rng(0))


def test_displace_moves_every_joint_by_exactly_dist():
    k = _people()
    out = perturb.displace(k, 7.5, np.random.default_rng(0))
    d = np.linalg.norm(out[..., :2] - k[..., :2], axis=-1)
    assert np.allclose(d, 7.5)


def test_swap_left_right_twice_is_identity_and_once_swaps_eyes():
    k = _people()
    once = perturb.swap_left_right(k, COCO)
    assert np.allclose(once[:, 1, :2], k[:, 2, :2]) and np.allclose(once[:, 0], k[:, 0])
    assert np.allclose(once[..., 2], k[..., 2])
    assert np.allclose(perturb.swap_left_right(once, COCO), k)


def test_swap_left_right_subset_only_touches_given_pairs():
    k = _people()
    out = perturb.swap_left_right(k, COCO, pairs=[(9, 10)])
    changed = np.any(out != k, axis=(0, 2))
    assert set(np.flatnonzero(changed)) == {9, 10}
    with pytest.raises(ValueError, match="flip pair"):
        perturb.swap_left_right(k, COCO, pairs=[(0, 1)])


def test_drop_probability_zero_and_one():
    k = _people()
    rng = np.random.default_rng(0)
    assert np.array_equal(perturb.drop(k, 0.0, rng), k)
    all_gone = perturb.drop(k, 1.0, rng, fill=-5.0)
    assert np.all(all_gone[..., :2] == -5.0) and np.array_equal(all_gone[..., 2], k[..., 2])


def test_translate_per_person_and_global():
    k = _people(3)
    assert np.allclose(perturb.translate(k, [2.0, -1.0])[..., :2], k[..., :2] + [2.0, -1.0])
    shifts = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    assert np.allclose(perturb.translate(k, shifts)[..., :2], k[..., :2] + shifts[:, None, :])
    with pytest.raises(ValueError, match="shift"):
        perturb.translate(k, np.zeros((2, 2)))


def test_scale_about_centre_scales_limb_lengths_and_keeps_unlabelled_at_zero():
    k = _people()
    out = perturb.scale_about_centre(k, 0.5)
    a, b = COCO.limbs["left_upper_arm"]
    before = np.linalg.norm(k[:, a, :2] - k[:, b, :2], axis=-1)
    after = np.linalg.norm(out[:, a, :2] - out[:, b, :2], axis=-1)
    assert np.allclose(after, 0.5 * before)
    assert np.array_equal(out[0, 3], k[0, 3])


def test_inputs_are_not_modified():
    k = _people()
    copy = k.copy()
    rng = np.random.default_rng(0)
    perturb.jitter(k, 2.0, rng)
    perturb.displace(k, 2.0, rng)
    perturb.swap_left_right(k, COCO)
    perturb.drop(k, 0.5, rng)
    perturb.translate(k, [1.0, 1.0])
    perturb.scale_about_centre(k, 2.0)
    assert np.array_equal(k, copy)


def _coco(num_images=5, per_image=3, seed=0):
    from posekit.cocoio import make_coco

    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "file_name": f"{i}.png", "width": 256, "height": 256} for i in range(num_images)]
    anns = []
    for im in images:
        for _ in range(per_image):
            k = np.zeros((17, 3))
            k[:, :2] = rng.uniform(20, 200, size=(17, 2))
            k[:, 2] = 2
            anns.append({"image_id": im["id"], "keypoints": k})
    return make_coco(images, anns)


def test_detections_without_mistakes_reproduce_ground_truth():
    coco = _coco()
    dets = perturb.detections(coco, np.random.default_rng(0))
    assert len(dets) == len(coco["annotations"])
    for d, a in zip(dets, coco["annotations"]):
        assert d["image_id"] == a["image_id"] and d["category_id"] == 1
        assert np.allclose(np.reshape(d["keypoints"], (17, 3))[:, :2], np.reshape(a["keypoints"], (17, 3))[:, :2])
        assert 0.5 <= d["score"] <= 1.0


def test_detections_miss_everyone_and_add_false_ones_with_their_own_scores():
    coco = _coco(num_images=50)
    dets = perturb.detections(coco, np.random.default_rng(0), miss=1.0, false_per_image=2.0, false_score=(0.9, 0.95))
    assert 60 < len(dets) < 140  # Poisson(100)
    assert all(0.9 <= d["score"] <= 0.95 for d in dets)
    ids = {im["id"] for im in coco["images"]}
    assert all(d["image_id"] in ids for d in dets)


def test_detections_are_valid_pycocotools_results():
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    coco = _coco()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = PyCOCO()
        gt.dataset = coco
        gt.createIndex()
        dt = gt.loadRes(perturb.detections(coco, np.random.default_rng(0)))
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] > 0.99  # perfect detections: AP = 1
