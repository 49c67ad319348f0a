"""Associative-embedding grouping (`posekit.grouping`) on hand-made heatmaps and tags with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.grouping import COCO_JOINT_ORDER, candidates, group

J, H, W = 17, 48, 48


def _scene(people, tags, joints=None, peak=1.0, sigma=1.0):
    """Heatmaps with a Gaussian bump at each person's joints and tag maps that hold, at every cell, the tag of
    the person whose joint of that type is nearest (so tags are right around every joint)."""
    ys, xs = np.mgrid[0:H, 0:W]
    hm = np.zeros((J, H, W))
    tg = np.zeros((J, H, W, 1))
    for j in range(J):
        best = np.full((H, W), np.inf)
        for p, (pose, t) in enumerate(zip(people, tags)):
            if joints is not None and j not in joints[p]:
                continue
            x, y = pose[j]
            d2 = (xs - x) ** 2 + (ys - y) ** 2
            val = peak[p][j] if isinstance(peak, list) else peak
            hm[j] = np.maximum(hm[j], val * np.exp(-d2 / (2 * sigma**2)))
            tg[j][d2 < best] = t
            best = np.minimum(best, d2)
    return hm, tg


def _poses(n, seed=0):
    rng = np.random.default_rng(seed)
    return [np.stack([rng.integers(4, W - 4, J), rng.integers(4, H - 4, J)], 1).astype(float) for _ in range(n)]


def _by_nose(people):
    return people[np.argsort(people[:, 0, 0])]


def test_ideal_maps_recover_every_person_exactly():
    poses = _poses(3, seed=1)
    hm, tg = _scene(poses, [0.0, 3.0, 6.0])
    people, scores = group(hm, tg, adjust=False, refine=False)
    assert people.shape == (3, J, 3)
    got = _by_nose(people)
    want = sorted(poses, key=lambda p: p[0, 0])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g[:, :2], w)
        np.testing.assert_allclose(g[:, 2], 1.0)
    np.testing.assert_allclose(scores, 1.0)


def test_adjust_moves_a_quarter_cell_as_the_reference():
    poses = _poses(1, seed=2)
    hm, tg = _scene(poses, [0.0])
    # a bump centred between cells x and x + 1 (its right neighbour higher) moves +0.25; an exact, symmetric
    # bump has no higher neighbour and moves −0.25, as the reference code does
    ys, xs = np.mgrid[0:H, 0:W]
    x0, y0 = poses[0][5]
    hm[5] = np.exp(-((xs - x0 - 0.3) ** 2 + (ys - y0) ** 2) / 2)
    people, _ = group(hm, tg, adjust=True, refine=False)
    np.testing.assert_allclose(people[0, 5, :2], [x0 + 0.25, y0 - 0.25])
    np.testing.assert_allclose(people[0, 0, :2], poses[0][0] - 0.25)


def test_two_people_with_equal_tags_merge_and_distinct_tags_separate():
    poses = _poses(2, seed=3)
    upper, lower = set(range(0, 11)), set(range(11, 17))
    hm, tg = _scene(poses, [2.0, 2.0], joints=[upper, lower])
    people, _ = group(hm, tg, adjust=False, refine=False)
    assert len(people) == 1  # one "person" with the upper body of one and the lower body of the other
    np.testing.assert_array_equal(people[0, :11, :2], poses[0][:11])
    np.testing.assert_array_equal(people[0, 11:, :2], poses[1][11:])
    hm, tg = _scene(poses, [2.0, 5.0], joints=[upper, lower])
    people, _ = group(hm, tg, adjust=False, refine=False)
    assert len(people) == 2
    # the tag threshold decides: tags 0.6 apart are one person at threshold 1, two at threshold 0.5
    hm, tg = _scene(poses, [2.0, 2.6], joints=[upper, lower])
    assert len(group(hm, tg, adjust=False, refine=False)[0]) == 1
    assert len(group(hm, tg, adjust=False, refine=False, tag_threshold=0.5)[0]) == 2


def test_missing_joints_are_refined_from_the_heatmaps_around_the_mean_tag():
    poses = _poses(2, seed=4)
    peak = [[1.0] * J, [1.0] * J]
    peak[1][9] = 0.05  # the second person's left wrist is below the detection threshold
    hm, tg = _scene(poses, [0.0, 4.0], peak=peak)
    plain, _ = group(hm, tg, adjust=False, refine=False)
    second = plain[np.argmin([np.abs(p[0, :2] - poses[1][0]).sum() for p in plain])]
    assert second[9, 2] == 0  # not found
    refined, _ = group(hm, tg, adjust=False, refine=True)
    second = refined[np.argmin([np.abs(p[0, :2] - poses[1][0]).sum() for p in refined])]
    x, y = poses[1][9]
    assert second[9, 2] == pytest.approx(0.05)
    # found at its own cell (then moved a quarter cell, as every refined joint is)
    assert abs(second[9, 0] - x) <= 0.25 + 1e-9 and abs(second[9, 1] - y) <= 0.25 + 1e-9


def test_score_is_taken_before_refinement_as_the_reference_does():
    """HigherHRNet's `parse` computes the scores right after `adjust`: a joint that refinement fills does not count."""
    poses = _poses(2, seed=4)
    peak = [[1.0] * J, [1.0] * J]
    peak[1][9] = 0.05  # below the detection threshold: only refinement finds it
    hm, tg = _scene(poses, [0.0, 4.0], peak=peak)
    people, scores = group(hm, tg, adjust=False, refine=True)
    second = int(np.argmin([np.abs(p[0, :2] - poses[1][0]).sum() for p in people]))
    assert people[second, 9, 2] == pytest.approx(0.05)  # refined in
    assert scores[second] == pytest.approx(16 / 17)  # but scored without it
    _, refined = group(hm, tg, adjust=False, refine=True, score="refined")
    assert refined.min() == pytest.approx(16.05 / 17)
    with pytest.raises(ValueError, match="score must be one of"):
        group(hm, tg, score="best")


def test_min_joints_drops_people_seeded_by_few_joints_before_refinement():
    poses = _poses(2, seed=6)
    hm, tg = _scene(poses, [0.0, 4.0], joints=[range(J), [0, 1]])  # the second person: only two joints found
    assert len(group(hm, tg)[0]) == 2  # the reference keeps it (and refinement fills its other joints)
    people, _ = group(hm, tg, min_joints=3)
    assert len(people) == 1 and np.abs(people[0, :, :2] - poses[0]).max() <= 0.25 + 1e-9


def test_result_does_not_depend_on_the_order_of_the_people():
    poses = _poses(4, seed=5)
    tags = [0.0, 2.0, 4.0, 6.0]
    a, sa = group(*_scene(poses, tags))
    b, sb = group(*_scene(poses[::-1], tags[::-1]))
    np.testing.assert_allclose(_by_nose(a), _by_nose(b))
    np.testing.assert_allclose(np.sort(sa), np.sort(sb))


def test_candidates_keep_local_maxima_only():
    hm = np.zeros((1, 16, 16))
    hm[0, 5, 5], hm[0, 5, 7], hm[0, 12, 12] = 0.9, 0.8, 0.7  # 0.8 is within the 5×5 window of 0.9
    locs, vals, tags = candidates(hm, np.zeros((1, 16, 16, 2)), top_k=3, nms_kernel=5)
    np.testing.assert_allclose(vals[0], [0.9, 0.7, 0.0])
    np.testing.assert_array_equal(locs[0, :2], [[5, 5], [12, 12]])
    assert tags.shape == (1, 3, 2)
    _, vals3, _ = candidates(hm, np.zeros((1, 16, 16, 2)), top_k=3, nms_kernel=3)
    np.testing.assert_allclose(vals3[0], [0.9, 0.8, 0.7])


def test_bad_shapes_and_joint_order_are_named():
    with pytest.raises(ValueError, match="heatmaps must have shape"):
        group(np.zeros((17, 8)), np.zeros((17, 8, 8)))
    with pytest.raises(ValueError, match="tags must have shape"):
        group(np.zeros((17, 8, 8)), np.zeros((16, 8, 8)))
    with pytest.raises(ValueError, match="joint_order"):
        group(np.zeros((17, 8, 8)), np.zeros((17, 8, 8)), joint_order=COCO_JOINT_ORDER[:-1])


def test_ae_loss_known_values():
    """Two people: tags 1, 1, 3 (mean 5/3) and 0, 0 (mean 0); a padded third person without joints."""
    from posekit.losses import ae_loss

    tags = np.zeros((1, 4, 4, 3), np.float32)
    tags[0, 0, 0, 0], tags[0, 0, 1, 1], tags[0, 0, 2, 2] = 1.0, 1.0, 3.0  # person A's joints 0, 1, 2
    joints = np.zeros((1, 3, 3, 3), np.float32)
    joints[0, 0] = [[0, 0, 1], [1, 0, 1], [2, 0, 1]]
    joints[0, 1] = [[3, 3, 1], [3, 2, 1], [0, 0, 0]]  # person B: tags 0 and 0; joint 2 unlabelled
    push, pull = ae_loss(tags, joints)
    pull_a = ((1 - 5 / 3) ** 2 * 2 + (3 - 5 / 3) ** 2) / 3
    assert float(pull) == pytest.approx(pull_a / 2, rel=1e-6)
    # ordered pairs: 2 · exp(−(5/3)²) + 2 · exp(0), minus N = 2, over N(N − 1) = 2, halved
    assert float(push) == pytest.approx(2 * np.exp(-25 / 9) / 2 * 0.5, rel=1e-5)
    one = joints.copy()
    one[0, 1, :, 2] = 0  # one person only: no push
    assert float(ae_loss(tags, one)[0]) == 0.0


def test_bottom_up_model_shapes_and_the_higher_head():
    import jax.numpy as jnp
    from flax import nnx

    from posekit.models.bottom_up import AssociativeEmbedding

    x = jnp.zeros((2, 64, 64, 3))
    plain = AssociativeEmbedding("lite", rngs=nnx.Rngs(0))
    out = plain(x)
    assert out.heatmaps.shape == (2, 16, 16, 17) and out.tags.shape == (2, 16, 16, 17)
    assert out.heatmaps_half is None and out.heatmap_kind == "gaussian"
    higher = AssociativeEmbedding("lite", higher=True, tag_dim=2, rngs=nnx.Rngs(0))
    out = higher(x, train=True)
    assert out.tags.shape == (2, 16, 16, 34) and out.heatmaps_half.shape == (2, 32, 32, 17)


def test_multi_person_targets_take_the_maximum_and_index_the_cells():
    from posekit.codecs import multi_person_targets

    kp = np.zeros((2, 17, 3), np.float32)
    kp[0, :, :2], kp[0, :, 2] = [10.0, 10.0], 2  # input pixels of a 64 × 64 input, 16 × 16 maps
    kp[1, :, :2], kp[1, :, 2] = [41.5, 22.0], 2
    kp[1, 3] = [70.0, 10.0, 2]  # off the input
    kp[1, 4, 2] = 0  # unlabelled
    heat, joints = multi_person_targets(kp, (64, 64), (16, 16), sigma=1.0, max_people=4)
    assert heat.shape == (17, 16, 16) and joints.shape == (4, 17, 3)
    # 10 px → cell (10 + 0.5) / 4 − 0.5 = 2.125 → 2; 41.5 px → 10; 22 px → 5.125 → 5
    np.testing.assert_array_equal(joints[0, 0], [2, 2, 1])
    np.testing.assert_array_equal(joints[1, 0], [10, 5, 1])
    assert joints[1, 3, 2] == 0 and joints[1, 4, 2] == 0 and not joints[2:].any()
    assert heat[0, 2, 2] == pytest.approx(np.exp(-2 * 0.125**2 / 2), rel=1e-5)
    assert heat[0, 5, 10] > 0.9 and heat[4].max() == heat[0, 2, 2]  # joint 4 of person 2 unlabelled
