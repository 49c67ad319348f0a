"""posekit.metrics.bootstrap: the paired bootstrap interval of an AP difference over images."""

from __future__ import annotations

import numpy as np
import pytest

from posekit import cocoio, metrics
from posekit.metrics import paired_ap_difference


def _scenes(n_images=40, seed=0):
    """Ground truth of `n_images` images with 1-3 people, and two results lists: close and far from it."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(n_images):
        images.append({"id": 100 + i, "file_name": f"{i}.png", "width": 256, "height": 256})
        for _ in range(rng.integers(1, 4)):
            kp = np.concatenate([rng.uniform(20, 200, (17, 2)), np.full((17, 1), 2.0)], 1)
            anns.append({"image_id": 100 + i, "keypoints": kp})
    coco = cocoio.make_coco(images, anns)
    truth = cocoio.annotation_arrays(coco)
    results = []
    for noise in (6.0, 2.0):
        kp = truth["keypoints"].copy()
        kp[..., :2] += rng.normal(0, noise, kp[..., :2].shape)
        results.append(cocoio.keypoint_results(truth["image_ids"], kp, rng.uniform(0.5, 1, len(kp))))
    return coco, results


def test_all_images_in_order_give_the_same_ap():
    coco, (a, _) = _scenes()
    g, r = cocoio.resample_images(coco, [img["id"] for img in coco["images"]], a)
    assert metrics.coco_eval(g, r)["AP"] == pytest.approx(metrics.coco_eval(coco, a)["AP"], abs=1e-12)


def test_interval_brackets_a_clear_gain_and_collapses_for_equal_results():
    coco, (far, near) = _scenes()
    out = paired_ap_difference(coco, far, near, draws=60, seed=1)
    assert out["difference"] == pytest.approx(metrics.coco_eval(coco, near)["AP"] - metrics.coco_eval(coco, far)["AP"])
    assert 0 < out["low"] <= out["difference"] <= out["high"]
    assert out["samples"].shape == (60,) and out["level"] == 0.9 and out["draws"] == 60
    again = paired_ap_difference(coco, far, near, draws=60, seed=1)
    np.testing.assert_array_equal(again["samples"], out["samples"])  # the seed fixes the draws
    wider = paired_ap_difference(coco, far, near, draws=60, seed=1, level=0.99)
    assert wider["low"] <= out["low"] and wider["high"] >= out["high"]
    same = paired_ap_difference(coco, far, far, draws=20)
    assert same["low"] == same["high"] == same["difference"] == 0.0


def test_area_range_and_stat_are_those_of_coco_eval():
    coco, (far, near) = _scenes()
    out = paired_ap_difference(coco, far, near, draws=5, stat="AP50", area_range=(32**2, 96**2))
    want = [metrics.coco_eval(coco, r, area_range=(32**2, 96**2))["AP50"] for r in (far, near)]
    assert out["difference"] == pytest.approx(want[1] - want[0])


BAD = [(dict(draws=1), "draws: expected a whole number of at least 2"), (dict(draws=2.5), "draws: expected"),
       (dict(level=1.0), "level: expected a coverage between 0 and 1")]  # fmt: skip


@pytest.mark.parametrize("kwargs, words", BAD)
def test_bad_arguments_are_named(kwargs, words):
    coco, (a, b) = _scenes(3)
    with pytest.raises(ValueError, match=words):
        paired_ap_difference(coco, a, b, **kwargs)
