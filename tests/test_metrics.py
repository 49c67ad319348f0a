"""Hand-computed cases for PCP, PCPm, PCK, PCKh, PDJ, the normalizers and OKS."""

import numpy as np
import pytest

from posekit import metrics
from posekit.skeleton import COCO, MPII


def kp(*rows):
    """(N, J, 3) array from nested [x, y, v] rows."""
    return np.array(rows, dtype=float)


# ----------------------------------------------------------------------------- normalizers


def test_bbox_normalizers_are_max_side_and_diagonal():
    boxes = [[10, 20, 3, 4], [0, 0, 6, 2]]
    np.testing.assert_allclose(metrics.bbox_size(boxes), [4, 6])
    np.testing.assert_allclose(metrics.bbox_diagonal(boxes), [5, np.sqrt(40)])


def test_head_size_is_factor_times_head_box_diagonal():
    # box 30 x 40 -> diagonal 50 -> MPII head size 0.6 * 50 = 30
    np.testing.assert_allclose(metrics.head_size([[10, 10, 40, 50]]), [30.0])
    np.testing.assert_allclose(metrics.head_size([[0, 0, 3, 4]], factor=1.0), [5.0])


def test_torso_diameter_is_zero_when_a_torso_joint_is_unlabelled():
    g = np.zeros((2, 17, 3))
    a, b = COCO.torso
    g[:, a] = [0, 0, 2]
    g[:, b] = [6, 8, 1]
    g[1, b, 2] = 0
    np.testing.assert_allclose(metrics.torso_diameter(g), [10.0, 0.0])


# ----------------------------------------------------------------------------- PCK / PDJ / PCKh


def _pck_case():
    # person 0: norm 10; joint errors 1 (ok), 2 (= 0.2 * 10: not < 0.2), 5 (wrong)
    # person 1: joint 0 error 0 (ok), joint 1 unlabelled, joint 2 error 1 (ok); norm 20
    # person 2: norm 0 -> excluded entirely
    gt = kp(
        [[0, 0, 2], [10, 0, 2], [20, 0, 1]],
        [[0, 0, 2], [0, 0, 0], [5, 5, 2]],
        [[0, 0, 2], [1, 1, 2], [2, 2, 2]],
    )
    pred = gt[..., :2].copy()
    pred[0] += [[1, 0], [0, 2], [3, 4]]
    pred[1, 2] += [0, 1]
    pred[2] += 100.0
    return pred, gt, np.array([10.0, 20.0, 0.0])


def test_pck_hand_computed_with_strict_threshold_and_exclusions():
    pred, gt, norm = _pck_case()
    r = metrics.pck(pred, gt, norm, thr=0.2)
    np.testing.assert_array_equal(r["valid"], [[1, 1, 1], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(r["correct"], [[1, 0, 0], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(r["per_joint"], [1.0, 0.0, 0.5])
    assert r["mean"] == pytest.approx(0.5)


def test_pck_mean_skips_joints_without_any_valid_sample():
    pred, gt, norm = _pck_case()
    gt[:, 1, 2] = 0  # joint 1 never labelled
    r = metrics.pck(pred, gt, norm, thr=0.2)
    assert np.isnan(r["per_joint"][1])
    assert r["mean"] == pytest.approx((1.0 + 0.5) / 2)


def test_pdj_counts_the_boundary_as_detected():
    pred, gt, norm = _pck_case()
    r = metrics.pdj(pred, gt, norm, frac=0.2)
    # same as PCK except the error of exactly 0.2 * norm, which PDJ (<=) accepts
    np.testing.assert_array_equal(r["correct"], [[1, 1, 0], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(r["per_joint"], [1.0, 1.0, 0.5])


def test_pckh_uses_six_tenths_of_the_head_box_diagonal():
    gt = kp([[0, 0, 2], [0, 0, 2]])
    pred = np.array([[[14.9, 0], [15.0, 0]]])  # head size 30 -> threshold 0.5 * 30 = 15 px (strict)
    r = metrics.pckh(pred, gt, [[0, 0, 30, 40]], thr=0.5)
    np.testing.assert_array_equal(r["correct"], [[True, False]])


def test_pck_curve_and_auc_hand_computed():
    gt = kp([[0, 0, 2]])
    pred = np.array([[[2.0, 0.0]]])  # normalized error 0.2
    np.testing.assert_allclose(metrics.pck_curve(pred, gt, [10.0], [0.1, 0.2, 0.3]), [0, 0, 1])
    # thresholds 0 and 0.25 -> PCK 0 and 1 -> AUC 0.5
    assert metrics.pck_auc(pred, gt, [10.0], max_thr=0.5, num=2) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- PCP / PCPm

LIMB = {"a": (0, 1)}


def test_pcp_needs_both_endpoints_within_half_the_limb_length():
    gt = kp(
        [[0, 0, 2], [10, 0, 2]],  # length 10 -> 5 px
        [[0, 0, 2], [10, 0, 2]],
        [[0, 0, 2], [0, 0, 2]],  # zero length: excluded
        [[0, 0, 2], [10, 0, 0]],  # unlabelled endpoint: excluded
    )
    pred = gt[..., :2].copy()
    pred[0] += [[3, 0], [0, 5]]  # 3 and 5 (boundary is inclusive): correct
    pred[1] += [[0, 0], [5.5, 0]]  # second endpoint off: wrong
    r = metrics.pcp(pred, gt, limbs=LIMB)
    np.testing.assert_array_equal(r["valid"][:, 0], [1, 1, 0, 0])
    np.testing.assert_array_equal(r["correct"][:, 0], [1, 0, 0, 0])
    assert r["per_limb"] == {"a": 0.5}
    assert r["mean"] == 0.5


def test_pcpm_uses_the_mean_limb_length_of_the_set():
    gt = kp([[0, 0, 2], [10, 0, 2]], [[0, 0, 2], [20, 0, 2]])  # mean length 15 -> 7.5 px
    pred = gt[..., :2].copy()
    pred[0, 1] += [6, 0]  # 6 px: wrong for PCP (5 px) but right for PCPm (7.5 px)
    pred[1, 0] += [8, 0]  # 8 px: right for PCP (10 px) but wrong for PCPm
    np.testing.assert_array_equal(metrics.pcp(pred, gt, limbs=LIMB)["correct"][:, 0], [0, 1])
    np.testing.assert_array_equal(metrics.pcpm(pred, gt, limbs=LIMB)["correct"][:, 0], [1, 0])


def test_pcp_defaults_to_the_keypoint_sets_limbs():
    rng = np.random.default_rng(0)
    gt = np.concatenate([rng.uniform(0, 100, (4, 16, 2)), np.full((4, 16, 1), 2.0)], -1)
    r = metrics.pcp(gt[..., :2], gt, kset=MPII)
    assert list(r["per_limb"]) == list(MPII.limbs)
    assert r["mean"] == 1.0 and r["correct"].shape == (4, len(MPII.limbs))


# ----------------------------------------------------------------------------- OKS


def test_oks_single_joint_hand_computed():
    # d^2 = 25, area 100, sigma 0.1 -> k^2 = 0.04 -> e = 25 / (2 * 100 * 0.04) = 3.125
    o = metrics.oks([[[3.0, 4.0]]], kp([[0, 0, 2]]), [100.0], sigmas=[0.1])
    np.testing.assert_allclose(o, [[np.exp(-3.125)]], rtol=1e-12)


def test_oks_averages_over_labelled_joints_only():
    gt = kp([[0, 0, 2], [50, 50, 0]])
    o = metrics.oks([[[0.0, 0.0], [999.0, 999.0]]], gt, [100.0], sigmas=[0.1, 0.1])
    np.testing.assert_allclose(o, [[1.0]])


def test_oks_without_labelled_joints_measures_distance_to_the_grown_box():
    gt = kp([[0, 0, 0]])
    box = [[10, 10, 10, 10]]  # grown box: [0, 30] x [0, 30]
    inside = metrics.oks([[[25.0, 5.0]]], gt, [100.0], sigmas=[0.1], gt_bboxes=box)
    outside = metrics.oks([[[33.0, 34.0]]], gt, [100.0], sigmas=[0.1], gt_bboxes=box)  # 3, 4 px out
    np.testing.assert_allclose(inside, [[1.0]])
    np.testing.assert_allclose(outside, [[np.exp(-3.125)]], rtol=1e-12)
    with pytest.raises(ValueError, match="gt_bboxes"):
        metrics.oks([[[0.0, 0.0]]], gt, [100.0], sigmas=[0.1])


# ----------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
    gt = kp([[0, 0, 2], [1, 1, 2]])
    with pytest.raises(ValueError, match="pred and gt"):
        metrics.pck(np.zeros((1, 3, 2)), gt, [1.0])
    with pytest.raises(ValueError, match="finite"):
        metrics.pck(np.full((1, 2, 2), np.nan), gt, [1.0])
    with pytest.raises(ValueError, match="norm"):
        metrics.pck(np.zeros((1, 2, 2)), gt, [1.0, 2.0])
    with pytest.raises(ValueError, match="sigmas"):
        metrics.oks(np.zeros((1, 2, 2)), gt, [1.0])  # J = 2 needs explicit sigmas
    with pytest.raises(ValueError, match="areas"):
        metrics.oks(np.zeros((1, 2, 2)), gt, [-1.0], sigmas=[0.1, 0.1])
    with pytest.raises(ValueError, match="limbs"):
        metrics.pcp(np.zeros((1, 2, 2)), gt, limbs={"x": (0, 5)})


def test_pck_is_a_macro_average_over_joints_as_in_mmpose():
    """mmpose's keypoint_pck_accuracy: per-joint rates (strict '<'), then their mean; not a pooled count."""
    gt = np.zeros((3, 2, 3))
    gt[..., 2] = 2
    gt[1:, 1, 2] = 0  # joint 1 is labelled only on person 0
    pred = gt[..., :2].copy()
    pred[0, 1] += [1.0, 0.0]  # joint 1 of person 0 is off by exactly the threshold: wrong under '<'
    res = metrics.pck(pred, gt, np.ones(3), thr=1.0)
    np.testing.assert_allclose(res["per_joint"], [1.0, 0.0])
    assert res["mean"] == 0.5  # macro; the pooled (micro) rate would be 3/4
