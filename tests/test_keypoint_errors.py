"""Ronchi & Perona's keypoint error kinds (`posekit.analysis.keypoint_errors`): each kind on a hand-made
prediction, COCO-style pairing, and the correction behind `error_impact`."""

from __future__ import annotations

import numpy as np
import pytest

from posekit import metrics, scenes
from posekit.analysis.keypoint_errors import KINDS, corrected, error_impact, joint_kinds, keypoint_errors, pairs
from posekit.skeleton import COCO

GOOD, JITTER, INVERSION, SWAP, MISS = range(5)


def _two_people(seed: int = 3):
    """Two people 500 px apart, joints spread so that any two of one person are > 40 px apart (beyond ks 0.5)."""
    rng = np.random.default_rng(seed)
    while True:
        xy = rng.uniform(0, 300, (COCO.num_joints, 2))
        d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(COCO.num_joints) * 1e9
        if d.min() > 40:
            break
    one = np.concatenate([xy, np.full((COCO.num_joints, 1), 2.0)], 1)
    two = one + [500.0, 0.0, 0.0]
    return np.stack([one, two]), np.array([10000.0, 10000.0])


def _at_ks(target: float, area: float, j: int) -> float:
    """The distance at which joint j's ks is `target` for a person of `area`."""
    return float(np.sqrt(-np.log(target) * 2 * area * (2 * COCO.sigmas[j]) ** 2))


def test_each_kind_on_a_hand_made_prediction():
    gts, areas = _two_people()
    pred = gts[0].copy()
    kinds, best = joint_kinds(pred, gts, areas, 0)
    assert (kinds == GOOD).all() and np.allclose(best, 1.0)
    pred[[5, 6]] = gts[0, [6, 5]]  # the shoulders exchanged: left and right confused
    pred[7] = gts[1, 7]  # the other person's left elbow
    pred[8] = gts[1, 7]  # ... and the other person's mirror joint for the right elbow
    pred[9] = [2000.0, 2000.0, 1.0]  # nowhere near anyone
    pred[10, 0] += _at_ks(0.7, areas[0], 10)  # close, not close enough to be good
    pred[11, 0] += _at_ks(0.9, areas[0], 11)  # within good
    kinds, best = joint_kinds(pred, gts, areas, 0)
    assert list(kinds[[5, 6, 7, 8, 9, 10, 11]]) == [INVERSION, INVERSION, SWAP, SWAP, MISS, JITTER, GOOD]
    assert best[10] == pytest.approx(0.7) and best[11] == pytest.approx(0.9)
    unlabelled = gts.copy()
    unlabelled[0, 3, 2] = 0
    assert joint_kinds(pred, unlabelled, areas, 0)[0][3] == -1


def _val_with_two_people():
    val = scenes.select(scenes.validation_scenes("quick"), range(12))
    i = next(k for k, p in enumerate(scenes.people(val, include_crowd=False)) if (p["num_keypoints"] >= 10).sum() >= 2)
    gt = scenes.people(val, include_crowd=False)[i]
    who = np.flatnonzero(gt["num_keypoints"] >= 10)[:2]
    return val, i, gt, who


def _result(iid, kp, score):
    kp = np.asarray(kp, float).copy()
    kp[:, 2] = 1.0
    return {"image_id": iid, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": score}


def test_pairing_is_cocos_greedy_by_score():
    val, i, gt, (a, b) = _val_with_two_people()
    iid = val["image_ids"][i]
    near_a = gt["keypoints"][a].copy()
    near_a[:, 0] += 1.0
    res = [_result(iid, near_a, 0.5), _result(iid, gt["keypoints"][a], 0.9), _result(iid, gt["keypoints"][b], 0.7)]
    got = {r: k for r, n, k in pairs(val, res) if n == i}
    assert got[1] == a and got[2] == b  # the best-scored prediction takes person a; the copy near a is left over
    assert got.get(0) not in (a, b)


def test_correcting_a_kind_moves_those_joints_and_raises_ap():
    val, i, gt, (a, _) = _val_with_two_people()
    iid, kp = val["image_ids"][i], gt["keypoints"][a]
    pairs_lr = [(l, r) for l, r in ((5, 6), (11, 12), (13, 14), (15, 16)) if kp[l, 2] > 0 and kp[r, 2] > 0]
    pred = kp.copy()
    for left, right in pairs_lr:
        pred[[left, right]] = kp[[right, left]]
    res = [_result(iid, pred, 1.0)]
    errors = keypoint_errors(val, res)
    assert errors["all"]["people"] == 1 and errors["all"]["inversion"] > 0 and set(KINDS) <= set(errors["all"])
    assert sum(errors["all"][k] for k in KINDS) == pytest.approx(1.0)
    fixed = np.asarray(corrected(val, res, ["inversion"])[0]["keypoints"]).reshape(-1, 3)
    kinds, _ = joint_kinds(pred, gt["keypoints"], gt["areas"], a)
    inverted = np.flatnonzero(kinds == INVERSION)
    # each sat exactly on its mirror joint (ks 1): corrected onto its own joint
    assert len(inverted) and np.allclose(fixed[inverted, :2], kp[inverted, :2])
    assert np.array_equal(fixed[0, :2], pred[0, :2])  # other kinds stay where they were
    impact = error_impact(val, res)
    assert set(impact) == {"none", *KINDS[1:]}
    assert impact["inversion"] > impact["none"] == pytest.approx(metrics.coco_eval(val["coco"], res)["AP"])
