"""The top-down half of the book: CenterNet targets, loss and decoding, OKS-NMS, rescoring, the scene sets and
the pipeline end to end (chapter 4)."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from posekit import detection, losses, metrics, scenes, synth, top_down
from posekit.analysis.top_down import degrade_boxes, detection_metrics, recall_at_iou
from posekit.models import SimpleBaseline
from posekit.models.centernet import CenterNet
from posekit.models.output import DetectionOutput


def test_gaussian_radius_follows_cornernet_formula():
    # 10 × 10 box, overlap 0.7: the three roots of CornerNet's code are 19.07, 36.73 and 2.73; the smallest wins
    assert detection.gaussian_radius(10, 10) == pytest.approx(2.7332, abs=1e-4)
    # larger boxes get larger radii, and the radius scales with the box
    r = detection.gaussian_radius(np.array([10, 20, 40]), np.array([5, 10, 20]))
    assert np.all(np.diff(r) > 0) and r[2] / r[1] == pytest.approx(2.0, rel=1e-9)


def _corner_shift_ious(h, w, r):
    """IoU with the box [0, 0, w, h] after CornerNet's three corner shifts by r: inwards, outwards, one of each."""
    inward = (h - 2 * r) * (w - 2 * r) / (h * w)
    outward = h * w / ((h + 2 * r) * (w + 2 * r))
    inter = (h - r) * (w - r)
    mixed = inter / (2 * h * w - inter)
    return np.minimum(np.minimum(inward, outward), mixed)


def test_overlap_radius_keeps_the_iou_and_is_the_largest_that_does():
    rng = np.random.default_rng(0)
    h, w = rng.uniform(4, 200, (2, 200))
    for o in (0.5, 0.7, 0.9):
        r = detection.overlap_radius(h, w, o)
        assert np.all(r > 0)
        np.testing.assert_allclose(_corner_shift_ious(h, w, r), o, atol=1e-9)  # the worst case sits exactly at o
        assert np.all(_corner_shift_ious(h, w, r * 1.01) < o)
    # what the reference code's radius guarantees: it is never smaller than the IoU radius (3.35× for a square)
    assert np.all(detection.gaussian_radius(h, w) >= detection.overlap_radius(h, w))
    assert detection.gaussian_radius(10, 10) / detection.overlap_radius(10, 10) == pytest.approx(3.3467, abs=1e-3)


def _ideal_output(heat, size, offset) -> DetectionOutput:
    p = np.clip(heat, 1e-6, 1 - 1e-6)
    return DetectionOutput(center_logits=np.log(p / (1 - p))[..., None], sizes=size, offsets=offset, output_stride=4)


def test_center_targets_and_decoding_round_trip():
    boxes = np.array([[10.3, 20.7, 30.0, 60.5], [70.0, 5.0, 40.2, 90.0]])
    heat, size, offset, mask, ignore = detection.center_targets(boxes, [False, False], 128)
    assert heat.shape == (32, 32) and mask.sum() == 2 and ignore.sum() == 0
    cx, cy = (boxes[0, 0] + boxes[0, 2] / 2) / 4, (boxes[0, 1] + boxes[0, 3] / 2) / 4
    assert heat[int(cy), int(cx)] == 1.0 and mask[int(cy), int(cx)] == 1.0
    np.testing.assert_allclose(size[int(cy), int(cx)], boxes[0, 2:] / 4, rtol=1e-6)
    np.testing.assert_allclose(offset[int(cy), int(cx)], [cx - int(cx), cy - int(cy)], atol=1e-6)
    out = _ideal_output(heat[None], size[None], offset[None])
    got, scores = detection.decode_detections(out, top_k=5)
    assert scores[0, 1] > 0.99 and scores[0, 2] < 0.99  # two centres, then the Gaussian's lower cells
    order = np.argsort(got[0, :2, 0])
    np.testing.assert_allclose(got[0, :2][order], boxes, atol=1e-4)


def test_center_targets_ignore_crowd_regions_but_not_centres():
    heat, _, _, mask, ignore = detection.center_targets([[0, 0, 64, 64], [8, 8, 16, 16]], [True, False], 128)
    assert mask.sum() == 1
    assert ignore[:16, :16].sum() == 16 * 16 - 1  # the crowd box, minus the person's own centre cell
    assert ignore[4, 4] == 0 and heat[4, 4] == 1


def test_focal_loss_known_values():
    logits = np.zeros((1, 1, 2), np.float32)  # p = 0.5 in both cells
    heat = np.array([[[1.0, 0.0]]], np.float32)
    # positive: (1 − 0.5)² · ln 2; negative: (1 − 0)⁴ · 0.5² · ln 2; one positive
    assert float(losses.focal_loss(logits, heat)) == pytest.approx(0.5 * np.log(2), rel=1e-6)
    heat2 = np.array([[[1.0, 0.5]]], np.float32)  # near a centre the negative is penalty-reduced by (1 − 0.5)⁴
    assert float(losses.focal_loss(logits, heat2)) == pytest.approx((0.25 + 0.25 / 16) * np.log(2), rel=1e-6)
    ignore = np.array([[[0.0, 1.0]]], np.float32)
    assert float(losses.focal_loss(logits, heat, ignore)) == pytest.approx(0.25 * np.log(2), rel=1e-6)


def test_oks_nms_drops_duplicates_keeps_distinct_people():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (17, 2))
    kp = np.stack([a, a + 0.5, a + 60.0])
    keep = top_down.oks_nms(kp, [0.5, 0.9, 0.7], [900.0, 900.0, 900.0])
    assert keep.tolist() == [1, 2]  # the best of the two near-identical poses, then the distant one
    assert top_down.oks_nms(kp, [0.5, 0.9, 0.7], [900.0] * 3, threshold=1.0).tolist() == [1, 2, 0]


def test_rescore():
    conf = np.array([[0.1, 0.5, 0.7], [0.1, 0.1, 0.15]])
    np.testing.assert_allclose(top_down.rescore([0.8, 0.9], conf), [0.8 * 0.6, 0.0])


def test_joint_confidence_of_a_sharp_and_a_flat_map():
    hm = np.zeros((1, 2, 8, 8), np.float32)
    hm[0, 0, 4, 4] = 1.0
    hm[0, 1] = 1.0 / 64
    conf = top_down.joint_confidence(hm, np.array([[[4.0, 4.0], [4.0, 4.0]]]))
    np.testing.assert_allclose(conf, [[1.0, 9 / 64]], rtol=1e-6)


def test_validation_scenes_mix_sizes_crowds_and_truncation():
    val = scenes.validation_scenes("quick")
    assert val["images"].shape == (64, 256, 256, 3) and len(val["image_ids"]) == 64
    a = metrics.coco_eval  # noqa: F841  (the set is scored with it in chapter 4)
    arr = scenes.people(val, include_crowd=True)
    areas = np.concatenate([p["areas"][p["iscrowd"] == 0] for p in arr])
    small, large = (areas < 32**2).mean(), (areas >= 96**2).mean()
    assert 0.05 < small < 0.35 and 0.1 < large < 0.45 and 1 - small - large > 0.3
    assert any(p["iscrowd"].any() for p in arr)  # crowd regions
    boxes = np.concatenate([p["bboxes"] for p in arr])
    assert ((boxes[:, 0] <= 0) | (boxes[:, 1] <= 0) | (boxes[:, :2] + boxes[:, 2:] >= 256).any(1)).any()
    with pytest.raises(ValueError, match="validation stream"):
        scenes.training_scenes(4, scenes.VAL_SEED)


def test_detector_batches_targets_follow_the_boxes():
    train = scenes.select(scenes.validation_scenes("quick"), range(8))
    b = scenes.detector_batches(train, 64, 4, seed=0)(0)
    assert b["images"].shape == (4, 64, 64, 3) and b["heat"].shape == (4, 16, 16)
    assert b["mask"].sum() >= 1 and np.all(b["heat"][b["mask"] > 0] == 1.0)
    c = scenes.crop_batches(train, (32, 24), 5, seed=0)(3)
    assert c["images"].shape == (5, 32, 24, 3) and c["kpts"].shape == (5, 17, 3)
    assert np.all(c["kpts"][..., :2][c["kpts"][..., 2] > 0] > -0.51)


def _pipeline_models():
    det = CenterNet("tiny", rngs=nnx.Rngs(0))
    pose = SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    return det, pose


def test_soft_nms_decays_overlaps_and_keeps_distinct_boxes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    kept, got = detection.soft_nms(boxes, scores, sigma=0.5, top_k=10)
    # the best box stays, the distinct box keeps its score, the others are multiplied by exp(-IoU²/σ) for every
    # box kept before them: the shifted box (IoU 90/110 with the first) now outranks the first box's twin (IoU 1)
    decay = np.exp(-((90 / 110) ** 2) / 0.5)
    np.testing.assert_allclose(got, [0.9, 0.6, 0.7 * decay, 0.8 * np.exp(-1 / 0.5) * decay], rtol=1e-6)
    np.testing.assert_array_equal(kept, boxes[[0, 3, 2, 1]])
    # a small sigma is greedy NMS with threshold 0: only the distinct box survives a threshold
    kept, got = detection.soft_nms(boxes, scores, sigma=1e-3, threshold=0.01)
    assert len(got) == 2 and np.array_equal(kept[1], boxes[3])
    assert len(detection.soft_nms(boxes, scores, top_k=2)[0]) == 2
    assert detection.soft_nms(np.zeros((0, 4)), np.zeros(0))[0].shape == (0, 4)
    with pytest.raises(ValueError, match="sigma"):
        detection.soft_nms(boxes, scores, sigma=0)


def test_flip_test_averages_the_mirrored_output():
    rng = np.random.default_rng(0)
    logits, sizes, offsets = (
        rng.normal(size=(2, 8, 8, 1)),
        rng.uniform(1, 5, (2, 8, 8, 2)),
        rng.uniform(size=(2, 8, 8, 2)),
    )
    out = DetectionOutput(center_logits=logits, sizes=sizes, offsets=offsets, output_stride=4)
    mirror = DetectionOutput(center_logits=logits[:, :, ::-1], sizes=sizes[:, :, ::-1], offsets=offsets[:, :, ::-1],
                             output_stride=4)  # fmt: skip
    same = detection.flip_average(out, mirror)  # a detector that sees the mirror image exactly mirrored
    np.testing.assert_allclose(same.center_logits, logits, atol=1e-6)
    np.testing.assert_allclose(same.sizes, sizes)
    np.testing.assert_array_equal(same.offsets, offsets)
    flat = DetectionOutput(center_logits=np.zeros_like(logits), sizes=np.zeros_like(sizes), offsets=offsets)
    avg = detection.flip_average(out, flat)  # probabilities (not logits) are averaged
    np.testing.assert_allclose(1 / (1 + np.exp(-avg.center_logits)), (1 / (1 + np.exp(-logits)) + 0.5) / 2, rtol=1e-6)


def test_multi_scale_detection_merges_the_scales():
    det, pose = _pipeline_models()
    det.head.out.bias[...] = det.head.out.bias[...].at[1:3].set(4.0)  # boxes of about 16 × 16 input pixels
    images = synth.render_scenes(2, 3, 64)["images"]
    one = detection.detect(det, images, input_size=64, top_k=5)
    both = detection.detect_scales([(det, 64), (det, 64)], images, top_k=5, sigma=0.5)
    for (b1, s1), (b2, s2) in zip(one, both):  # each box twice: pooled, then merged by Soft-NMS
        ref_b, ref_s = detection.soft_nms(np.concatenate([b1, b1]), np.concatenate([s1, s1]), sigma=0.5, top_k=5)
        np.testing.assert_allclose(s2, ref_s, rtol=1e-6)
        np.testing.assert_allclose(b2, ref_b, rtol=1e-6)
        assert s2[0] == s1[0] and np.allclose(b2[0], b1[0])
    # one detector in a list: its own boxes, unmerged; the pipeline takes the list and the flip test
    flipped = detection.detect(det, images, input_size=64, top_k=5, flip_test=True)
    single = detection.detect_scales([(det, 64)], images, top_k=5, flip_test=True)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(flipped, single))
    via_pipeline = top_down.top_down(images, pose, detector=[(det, 64)], top_k=5, det_threshold=0.0,
                                     det_flip_test=True, input_size=(32, 24), nms_threshold=None,
                                     rescoring=False)  # fmt: skip
    assert sorted(r["score"] for r in via_pipeline) == pytest.approx(sorted(np.concatenate([s for _, s in flipped])))


def test_centre_receptive_field_is_the_window_the_gradient_reaches():
    from posekit.analysis.top_down import centre_receptive_field

    det, _ = _pipeline_models()
    images = synth.render_scenes(2, 3, 256)["images"]
    rf = centre_receptive_field(det, images, 256)
    m = rf["map"]
    assert m.shape == (256, 256) and m[128, 128] > 0 and m[0, 0] == 0 and m[-1, -1] == 0
    ys, xs = np.nonzero(m > 0)
    assert ys.min() > 0 and ys.max() < 255  # the window lies inside a 256-pixel input ...
    assert rf["theoretical"] == max(np.ptp(ys), np.ptp(xs)) + 1 < 256  # ... and is measured as its side
    assert 0 < rf["effective"] <= rf["theoretical"] + 1
    c, r = 128, rf["effective"] // 2
    inside = [m[c - k : c + k, c - k : c + k].sum() for k in (r, r - 1)]  # the smallest square holding 90%
    assert inside[0] >= 0.9 * m.sum() > inside[1]
    small = centre_receptive_field(det, images, 64)  # a small input: the window is clipped by its edges
    assert small["theoretical"] == 64


def test_top_down_is_estimate_poses_then_assemble():
    _, pose = _pipeline_models()
    data = synth.render_scenes(2, 4, 64)
    boxes = [
        (np.array([[4.0, 6.0, 30.0, 50.0], [5.0, 6.0, 30.0, 50.0]]), np.array([0.9, 0.5])),
        (np.zeros((0, 4)), np.zeros(0)),
    ]
    poses = top_down.estimate_poses(data["images"], boxes, pose, input_size=(32, 24))
    for change in ({}, dict(rescoring=False), dict(nms_threshold=None)):
        whole = top_down.top_down(data["images"], pose, boxes=boxes, image_ids=[7, 9], input_size=(32, 24), **change)
        assert whole == top_down.assemble(poses, [7, 9], **change)
    assert len(top_down.assemble(poses, [7, 9], nms_threshold=None)) == 2


def test_pipeline_end_to_end_on_a_coco_folder(tmp_path):
    """`posekit synth --kind scene` output read back as a COCO folder, through the whole pipeline."""
    from posekit.cli import main

    assert main(["synth", "--out", str(tmp_path / "val"), "--kind", "scene", "--num-images", "3", "--seed", "5",
                 "--quiet", "--crowd-prob", "0.5"]) == 0  # fmt: skip
    folder = scenes.load_folder(tmp_path / "val" / "annotations.json", tmp_path / "val" / "images")
    ref = synth.render_scenes(3, 5, 256, crowd_prob=0.5)
    assert len(folder["images"]) == 3 and np.array_equal(folder["images"][1], ref["images"][1])
    det, pose = _pipeline_models()
    boxes = top_down.gt_boxes(folder)
    results = top_down.top_down(folder["images"], pose, boxes=boxes, image_ids=folder["image_ids"],
                               input_size=(32, 24), nms_threshold=None, rescoring=False)  # fmt: skip
    assert len(results) == sum(len(b) for b, _ in boxes)
    assert {r["image_id"] for r in results} <= set(folder["image_ids"])
    assert all(r["score"] == 1.0 for r in results)
    stats = metrics.coco_eval(folder["coco"], results)
    assert 0.0 <= stats["AP"] <= 1.0
    timings = {}
    results = top_down.top_down(folder["images"], pose, detector=det, det_input=64, top_k=5, det_threshold=0.0,
                               image_ids=folder["image_ids"], input_size=(32, 24), timings=timings)  # fmt: skip
    assert set(timings) == {"detector", "pose", "post"} and len(results) <= 15


def test_pipeline_maps_keypoints_back_to_the_image_exactly():
    """Crop → heatmap cells → input → image inverts the crop: a model whose maps peak at the crop's centre
    cell puts every joint at the centre of the padded box, for boxes anywhere and of any shape."""

    class Centre(nnx.Module):
        def __init__(self):
            self.dummy = nnx.Param(np.zeros(()))

        def __call__(self, x, train=False):
            from posekit.models.output import PoseOutput

            b, h, w, _ = x.shape
            hm = np.full((b, h // 4, w // 4, 17), -20.0, np.float32)
            hm[:, (h // 4 - 1) // 2, (w // 4 - 1) // 2] = 20.0
            return PoseOutput(heatmaps=hm + 0 * self.dummy[...], heatmap_kind="logits", output_stride=4)

    images = np.zeros((1, 100, 100, 3), np.uint8)
    boxes = np.array([[10.0, 20.0, 30.0, 50.0], [60.0, 5.0, 20.0, 20.0]])
    poses = top_down.estimate_poses(images, [(boxes, np.ones(2))], Centre(), input_size=(32, 24))
    # the centre cell (3, 2) of the 8×6 map is input pixel (4·2 + 1.5, 4·3 + 1.5) = (9.5, 13.5) of a 24×32 crop,
    # which is (11.5 − 9.5, 15.5 − 13.5) = (2, 2) input pixels left of / above the crop centre
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    from posekit.crop import box_to_center_scale

    _, scale = box_to_center_scale(boxes, 24 / 32, 1.25)
    expect = centre - (np.array([11.5, 15.5]) - np.array([9.5, 13.5])) * scale / np.array([24, 32])
    np.testing.assert_allclose(poses["keypoints"][:, 0, :2], expect, atol=1e-4)


def test_detection_metrics_of_perfect_and_degraded_boxes():
    val = scenes.select(scenes.validation_scenes("quick"), range(16))
    gt = top_down.gt_boxes(val)
    perfect = detection_metrics(gt, val)
    assert perfect["box_AP"] == pytest.approx(1.0) and perfect["recall50"] == 1.0
    worse = degrade_boxes(gt, drop=0.5, seed=0)
    assert recall_at_iou(worse, val).mean() < 0.8
    assert detection_metrics(degrade_boxes(gt, jitter=0.2, seed=0), val)["box_AP"] < 0.8
