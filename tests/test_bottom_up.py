"""The bottom-up pipeline (`posekit.bottom_up`, chapter 5): targets, loss, geometry, perfect maps, end to end."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posekit import bottom_up, losses, metrics, scenes
from posekit.analysis.bottom_up import ap_by_size, perfect_maps_ap
from posekit.models.output import PoseOutput


@pytest.mark.parametrize("degrees", [30.0, -30.0])
def test_crowd_mask_is_the_rotated_region(degrees):
    from matplotlib.path import Path

    from posekit.crop import affine_matrix, transform_points

    box = np.array([[80.0, 100.0, 96.0, 40.0]])  # a wide crowd region in a 256 × 256 image
    m = affine_matrix(np.array([[128.0, 128.0]]), np.array([[256.0, 256.0]]), degrees, (128, 128))
    mask = scenes.outside_regions(box, m[0], 32, 4)
    # independent check: the box's four corners mapped forward, the cell centres tested against that polygon
    x, y, w, h = box[0]
    corners = transform_points(np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]]), m)[0]
    c = (np.arange(32) + 0.5) * 4 - 0.5
    centres = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
    want = Path(corners).contains_points(centres).reshape(32, 32)
    assert want.sum() > 20 and np.array_equal(mask == 0, want)
    # two corners only (the axis-aligned box of the top-left and bottom-right) would mask cells outside the region
    lo, hi = corners[[0, 2]].min(0), corners[[0, 2]].max(0)
    two = (centres >= lo).all(1) & (centres <= hi).all(1)
    assert (two.reshape(32, 32) != want).sum() > 10


def test_bottomup_batches_targets_follow_the_people():
    train = scenes.training_scenes(32, seed=3)
    batch = scenes.bottomup_batches(train, 64, 8, seed=0)(0)
    assert batch["images"].shape == (8, 64, 64, 3)
    assert batch["heat"].shape == (8, 16, 16, 17) and batch["heat_half"].shape == (8, 32, 32, 17)
    assert batch["joints"].shape == (8, 16, 17, 3) and batch["mask"].shape == (8, 16, 16)
    j = batch["joints"]
    b, p, k = np.nonzero(j[..., 2] > 0)
    assert len(b) > 20
    # every labelled joint's cell is a positive (exactly 1) of its joint type's map at 1/4
    np.testing.assert_array_equal(batch["heat"][b, j[b, p, k, 1].astype(int), j[b, p, k, 0].astype(int), k], 1.0)
    assert batch["heat"].max() <= 1.0 and batch["heat"].min() >= 0.0
    # the 1/2 maps hold as many positives (the same joints, one grid finer)
    assert (batch["heat_half"] == 1.0).sum() >= 0.9 * (batch["heat"] == 1.0).sum()
    # a scene set whose every image holds a crowd region masks cells out of the heatmap loss
    crowd = scenes.select(train, [i for i, p in enumerate(scenes.people(train)) if p["iscrowd"].any()])
    assert len(crowd["image_ids"]) > 0
    cb = scenes.bottomup_batches(crowd, 256, 4, seed=0, scale_range=(1.0, 1.0), rotation=0.0, shift=0.0)(0)
    assert (cb["mask"] == 0).any() and (cb["mask_half"] == 0).any()


def test_bottomup_loss_prefers_the_targets_and_checks_tags():
    batch = scenes.bottomup_batches(scenes.training_scenes(32, seed=3), 64, 4, seed=1)(0)
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    tags = jnp.zeros(batch["heat"].shape)

    def out(heat, half):
        return PoseOutput(heatmaps=heat, tags=tags, heatmaps_half=half, heatmap_kind="gaussian", output_stride=4)

    # focal: logits that put +6 on the targets' positives and −6 elsewhere beat constant logits
    good = jnp.where(batch["heat"] == 1.0, 6.0, -6.0), jnp.where(batch["heat_half"] == 1.0, 6.0, -6.0)
    flat = jnp.full(batch["heat"].shape, -2.0), jnp.full(batch["heat_half"].shape, -2.0)
    lg, aux = losses.bottomup_loss(out(*good), batch, "focal")
    lf, _ = losses.bottomup_loss(out(*flat), batch, "focal")
    assert float(lg) < 0.1 * float(lf) and set(aux) == {"heat", "heat_half", "push", "pull"}
    # mse: the targets themselves cost only the tag term (equal tags: no pull, full push)
    loss, aux = losses.bottomup_loss(out(batch["heat"], batch["heat_half"]), batch, "mse")
    assert float(aux["heat"]) == 0.0 and float(aux["heat_half"]) == 0.0 and float(aux["pull"]) == 0.0
    np.testing.assert_allclose(float(loss), 1e-3 * float(aux["push"]), rtol=1e-6)
    with pytest.raises(ValueError, match="heatmap_loss"):
        losses.bottomup_loss(out(*good), batch, "l2")
    two_d = PoseOutput(heatmaps=good[0], tags=jnp.zeros(batch["heat"].shape[:3] + (34,)), heatmap_kind="gaussian")
    with pytest.raises(ValueError, match="1-D tags"):
        losses.bottomup_loss(two_d, batch)


class _Blob(nnx.Module):
    """A stand-in network: every joint's 1/4 map is the image's red channel average-pooled 4×4 (so a bright
    blob in the image is a joint of every type there), tags 0. Its maps are Gaussian-like values ("mse")."""

    def __init__(self):
        self.dummy = nnx.Param(jnp.zeros(()))

    def __call__(self, x, train=False):
        b, h, w, _ = x.shape
        pooled = x[..., 0].reshape(b, h // 4, 4, w // 4, 4).mean((2, 4))
        hm = jnp.repeat(pooled[..., None], 17, -1) + self.dummy[...]
        return PoseOutput(heatmaps=hm, tags=jnp.zeros_like(hm), heatmap_kind="gaussian", output_stride=4)


@pytest.mark.parametrize("flip_test", [False, True])
def test_pipeline_maps_joints_back_to_the_image(flip_test):
    """Image → letterboxed input → 1/4 grid → grouping → image pixels: a blob at (x0, y0) of a 256×192 image is
    found there (within the grid's resolution), with and without the flip test."""
    x0, y0 = 150.0, 70.0
    ys, xs = np.mgrid[0:192, 0:256]
    img = np.zeros((1, 192, 256, 3), np.uint8)
    img[0, ..., 0] = (255 * np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * 6.0**2))).astype(np.uint8)
    maps, tags, stride, mats = bottom_up.network_maps(_Blob(), img, input_size=128, flip_test=flip_test,
                                                     heatmap_loss="mse")  # fmt: skip
    assert stride == 4 and maps.shape == (1, 17, 32, 32) and tags.shape[-1] == (2 if flip_test else 1)
    results = bottom_up.bottom_up(img, _Blob(), input_size=128, flip_test=flip_test, heatmap_loss="mse",
                                 refine=False)  # fmt: skip
    assert len(results) == 1
    kp = np.asarray(results[0]["keypoints"]).reshape(17, 3)
    # one cell is 4 input px = 8 image px; the quarter-cell adjustment leaves at most ~1 input px of error
    np.testing.assert_allclose(kp[:, :2], np.tile([x0, y0], (17, 1)), atol=2.5)
    # HigherHRNet's projection to the input size: the same joint, on a grid of input pixels
    maps1, tags1, stride1, _ = bottom_up.network_maps(_Blob(), img, input_size=128, flip_test=flip_test,
                                                     heatmap_loss="mse", project_to_input=True)  # fmt: skip
    assert stride1 == 1 and maps1.shape == (1, 17, 128, 128) and tags1.shape[-1] == tags.shape[-1]
    projected = bottom_up.bottom_up(img, _Blob(), input_size=128, flip_test=flip_test, heatmap_loss="mse",
                                    refine=False, project_to_input=True)  # fmt: skip
    assert len(projected) == 1
    kp1 = np.asarray(projected[0]["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(kp1[:, :2], np.tile([x0, y0], (17, 1)), atol=2.5)


def test_perfect_maps_reach_a_high_ap_and_a_finer_grid_helps_small_people():
    val = scenes.select(scenes.validation_scenes("quick"), range(24))
    fine = perfect_maps_ap(val, input_size=256, stride=2, by_size=True)
    assert fine["all"] > 0.85
    coarse = perfect_maps_ap(val, input_size=128, stride=4, by_size=True)
    half = perfect_maps_ap(val, input_size=128, stride=2, by_size=True)
    assert half["small"] > coarse["small"] + 0.1  # small people's joints share cells on the coarse grid


def test_ap_by_size_counts_only_people_in_range():
    val = scenes.select(scenes.validation_scenes("quick"), range(12))
    gt = [a for a in val["coco"]["annotations"] if not a["iscrowd"]]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in gt if a["area"] < 32**2]  # fmt: skip
    by = ap_by_size(val, results)
    assert by["small"] == pytest.approx(1.0) and by["large"] == 0.0
    assert metrics.coco_eval(val["coco"], results)["AP"] < 1.0


def test_people_grid_holds_exactly_n_people():
    grid = scenes.people_grid(5, num_images=3, seed=2)
    assert grid["images"].shape == (3, 256, 256, 3)
    per_image = [len(p["areas"]) for p in scenes.people(grid)]
    assert per_image == [5, 5, 5]
    with pytest.raises(ValueError, match="num_people"):
        scenes.people_grid(17, 1)


def test_bottom_up_end_to_end_on_a_coco_folder(tmp_path):
    """`posekit synth --kind scene` output read back, through an (untrained) HigherHRNet-style model."""
    from posekit.cli import main
    from posekit.models.bottom_up import AssociativeEmbedding

    assert main(["synth", "--out", str(tmp_path / "val"), "--kind", "scene", "--num-images", "3", "--seed", "5",
                 "--quiet"]) == 0  # fmt: skip
    folder = scenes.load_folder(tmp_path / "val" / "annotations.json", tmp_path / "val" / "images")
    model = AssociativeEmbedding("lite", higher=True, heatmap_prior=0.1, rngs=nnx.Rngs(0))
    timings = {}
    results = bottom_up.bottom_up(folder["images"], model, input_size=64, image_ids=folder["image_ids"],
                                 timings=timings, max_people=7)  # fmt: skip
    assert set(timings) == {"network", "grouping"}
    assert {r["image_id"] for r in results} <= set(folder["image_ids"]) and len(results) <= 21
    assert all(len(r["keypoints"]) == 51 for r in results)
    assert 0.0 <= metrics.coco_eval(folder["coco"], results)["AP"] <= 1.0


def test_grouping_errors_find_split_and_merged_people():
    from posekit.analysis.bottom_up import grouping_errors

    val = scenes.select(scenes.validation_scenes("quick"), range(12))
    i = next(k for k, p in enumerate(scenes.people(val, include_crowd=False)) if len(p["areas"]) >= 2)
    gt = scenes.people(val, include_crowd=False)[i]
    a, b = gt["keypoints"][0].copy(), gt["keypoints"][1].copy()
    a[:, 2] = b[:, 2] = 1
    iid = val["image_ids"][i]

    def res(*poses):
        return [{"image_id": iid, "category_id": 1, "keypoints": p.reshape(-1).tolist(), "score": 1.0} for p in poses]

    whole = grouping_errors(val, res(a, b))
    assert whole["split"] == [] and whole["merged"] == []
    assert list(whole["held"][i][:2]) == [1, 1]  # the first two people found whole, once each
    upper, lower = a.copy(), a.copy()
    upper[11:, 2] = 0
    lower[:11, 2] = 0
    split = grouping_errors(val, res(upper, lower))
    assert split["split"] == [(i, 0, [0, 1])] and split["held"][i][0] == 2
    mixed = a.copy()
    mixed[9:] = b[9:]
    assert grouping_errors(val, res(mixed))["merged"] == [(i, 0, [0, 1])]


def test_untrained_heatmaps_start_at_the_prior_and_tags_do_not_start_equal():
    from posekit.models.bottom_up import AssociativeEmbedding

    model = AssociativeEmbedding("lite", higher=True, heatmap_prior=0.1, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    out = model(x, train=True)
    prob = 1 / (1 + np.exp(-np.asarray(out.heatmaps)))
    np.testing.assert_allclose(prob, 0.1, atol=0.01)
    np.testing.assert_allclose(1 / (1 + np.exp(-np.asarray(out.heatmaps_half))), 0.1, atol=0.01)
    assert np.asarray(out.tags).std() > 0.1


def test_grouping_sweep_scores_the_pipeline_on_held_out_scenes():
    """Each threshold's AP is the pipeline's AP there on the training stream seed + 1's scenes: the detection
    threshold at the reference's tag threshold, then the tag threshold at the chosen detection threshold."""
    from posekit import zoo
    from posekit.experiments.bottom_up import grouping_sweep

    model = zoo.load("bu-higherhrnet")
    sweep = grouping_sweep(model, (0.1, 0.4, 0.99), (1.0, 3.0), holdout=16)
    assert list(sweep["detection"]) == [0.1, 0.4, 0.99] and list(sweep["tag"]) == [1.0, 3.0]
    held = scenes.training_scenes(16, 1)

    def ap(**kwargs):
        res = bottom_up.bottom_up(held["images"], model, image_ids=held["image_ids"], **kwargs)
        return metrics.coco_eval(held["coco"], res)["AP"]

    assert sweep["detection"][0.4] == pytest.approx(ap(detection_threshold=0.4), abs=1e-12)
    assert sweep["detection"][0.99] < sweep["detection"][0.4]  # almost no joint is that sure: almost nobody is found
    best = max(sweep["detection"], key=sweep["detection"].get)
    assert sweep["tag"][3.0] == pytest.approx(ap(detection_threshold=best, tag_threshold=3.0), abs=1e-12)
    assert sweep["chosen"] == {"detection_threshold": best,
                               "tag_threshold": max(sweep["tag"], key=sweep["tag"].get)}  # fmt: skip
    with pytest.raises(ValueError, match="at least one threshold"):
        grouping_sweep(model, (), (1.0,))
