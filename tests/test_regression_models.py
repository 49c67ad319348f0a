"""The regression family of chapters 2-3 (DeepPose, its cascade, pooling, integral regression, SimCC), their
codecs and losses, the flip test's probability averaging, and the full profile's paper-size models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posekit import codecs, losses
from posekit.data import synthetic_single
from posekit.experiments import MODELS, lr_sweep, pose_loss_fn, single_person_run
from posekit.inference import _mean_of_probabilities, flip_averaged, predict_keypoints
from posekit.models import HRNet, IntegralPose, RegressionPose, SimCCPose, SimpleBaseline, param_count
from posekit.models.regression import sample_patches

X = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 64, 64, 3)), jnp.float32)


def test_deeppose_flattens_and_pooling_ablation_is_blind_to_the_layout():
    flat = RegressionPose("tiny", rngs=nnx.Rngs(0))
    pool = RegressionPose("tiny", head="pool", rngs=nnx.Rngs(0))
    f = flat.backbone(X)
    perm = np.random.default_rng(1).permutation(16)
    shuffled = f.reshape(2, 16, -1)[:, perm].reshape(f.shape)
    np.testing.assert_allclose(pool.features_to_coords(f), pool.features_to_coords(shuffled), atol=1e-5)
    assert np.abs(np.asarray(flat.features_to_coords(f) - flat.features_to_coords(shuffled))).max() > 1e-3
    assert param_count(flat) > param_count(pool)  # the flattened map feeds a wider dense layer
    with pytest.raises(ValueError, match="head must be one of"):
        RegressionPose("tiny", head="max", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="multiple of the stride"):
        RegressionPose("tiny", input_size=(60, 64), rngs=nnx.Rngs(0))


def test_cascade_starts_at_the_first_estimate_and_refines_from_crops():
    model = RegressionPose("tiny", cascade=True, rngs=nnx.Rngs(0))
    out = model(X)
    assert out.coarse_coords.shape == out.coords.shape == (2, 17, 2)
    np.testing.assert_allclose(out.coords, out.coarse_coords, atol=1e-6)  # displacement layer starts at zero
    loss_fn = pose_loss_fn(64, coord_loss="l2")
    batch = {"images": X, "kpts": jnp.concatenate([jnp.full((2, 17, 2), 20.0), jnp.full((2, 17, 1), 2.0)], -1)}
    grads = nnx.grad(lambda m: loss_fn(m, batch)[0])(model)
    assert float(jnp.abs(grads.cascade.out.kernel[...]).sum()) > 0  # the refiner learns


def test_sample_patches_is_bilinear_and_zero_outside():
    h, w = 8, 10
    ramp = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :, None], (1, h, w, 1))
    p = sample_patches(jnp.asarray(ramp), jnp.asarray([[[4.25, 3.0]]]), half=1.0, n=2)
    np.testing.assert_allclose(p[0, 0, :, :, 0], [[3.75, 4.75], [3.75, 4.75]], atol=1e-6)  # x = 4.25 ∓ 0.5
    out = sample_patches(jnp.ones((1, h, w, 1)), jnp.asarray([[[-5.0, -5.0]]]), half=1.0, n=2)
    assert float(out.sum()) == 0.0


def test_integral_coords_are_the_soft_argmax_of_its_maps():
    model = IntegralPose("tiny", rngs=nnx.Rngs(0))
    out = model(X)
    cells = codecs.soft_argmax(np.transpose(np.asarray(out.heatmaps), (0, 3, 1, 2)))
    np.testing.assert_allclose(out.coords, (cells + 0.5) / 16, atol=1e-5)
    assert out.heatmap_kind == "logits"
    with pytest.raises(ValueError, match="logits"):
        IntegralPose("tiny", heatmap_kind="gaussian", rngs=nnx.Rngs(0))
    # predict_keypoints decodes what the model was trained on: the coordinates, not the maps
    np.testing.assert_allclose(predict_keypoints(model, np.asarray(X)), np.asarray(out.coords) * 64 - 0.5, atol=1e-4)


def test_simcc_vectors_have_k_bins_per_pixel_on_each_axis():
    model = SimCCPose("tiny", input_size=(64, 48), split=2.0, rngs=nnx.Rngs(0))
    out = model(jnp.zeros((2, 64, 48, 3)))
    assert out.simcc_x.shape == (2, 17, 96) and out.simcc_y.shape == (2, 17, 128) and out.simcc_split == 2.0
    with pytest.raises(ValueError, match="split"):
        SimCCPose("tiny", split=0.5, rngs=nnx.Rngs(0))


def test_simcc_targets_decode_to_the_keypoints_and_mirror_exactly():
    rng = np.random.default_rng(0)
    kpts = np.concatenate([rng.uniform(0, 63, (5, 17, 2)), np.full((5, 17, 1), 2.0)], -1).astype(np.float32)
    tx, ty, w = codecs.simcc_targets(kpts, (64, 64), split=2.0, sigma=1.0)
    np.testing.assert_allclose(tx.sum(-1), 1.0, atol=1e-5)
    dec, _ = codecs.decode_simcc(tx, ty, split=2.0)
    assert np.abs(dec - kpts[..., :2]).max() <= 0.25 + 1e-5  # the nearest half-pixel bin centre
    mirrored = kpts.copy()
    mirrored[..., 0] = 63 - kpts[..., 0]
    mx, _, _ = codecs.simcc_targets(mirrored, (64, 64), split=2.0, sigma=1.0)
    np.testing.assert_allclose(mx, tx[..., ::-1], atol=1e-6)  # bin i ↔ W·k − 1 − i
    with pytest.raises(ValueError, match="split"):
        codecs.simcc_targets(kpts, (64, 64), split=0.5)


def test_simcc_loss_is_the_cross_entropy_of_both_axes():
    rng = np.random.default_rng(0)
    lx, ly = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 3, 6))
    tx, ty = rng.uniform(size=(2, 3, 8)), rng.uniform(size=(2, 3, 6))
    w = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    out = type("O", (), {"simcc_x": jnp.asarray(lx), "simcc_y": jnp.asarray(ly)})()

    def ce(logit, t):
        t = t / t.sum(-1, keepdims=True)
        return -(t * jax.nn.log_softmax(logit, -1)).sum(-1)

    want = ((ce(lx, tx) + ce(ly, ty)) * w).mean()
    np.testing.assert_allclose(losses.simcc_loss(out, tx, ty, w), want, rtol=1e-5)


def test_dark_kernel_follows_the_papers_rule():
    assert [codecs.dark_kernel(s) for s in (1.0, 2.0, 3.0)] == [5, 11, 17]
    with pytest.raises(ValueError, match="sigma"):
        codecs.dark_kernel(0)


def test_flip_test_averages_probabilities_not_logits():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5, 7)) * 3, rng.normal(size=(2, 5, 7)) * 3
    p = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(p(_mean_of_probabilities(a, b, -1)), 0.5 * (p(a) + p(b)), atol=1e-6)


@pytest.mark.parametrize("name", ["deeppose", "integral", "simcc", "heatmap"])
def test_flip_test_of_a_mirror_symmetric_crop_changes_nothing(name):
    cls, kw, _ = MODELS[name]
    kw = dict(kw, input_size=(64, 64)) if cls in (RegressionPose, SimCCPose) else kw
    model = cls("tiny", rngs=nnx.Rngs(0), **kw)
    half = np.random.default_rng(0).uniform(size=(1, 64, 32, 3)).astype(np.float32)
    sym = np.concatenate([half, half[:, :, ::-1]], axis=2)  # an image equal to its mirror
    once = predict_keypoints(model, sym)
    flipped = predict_keypoints(model, sym, flip_test=True)
    # the flip test averages the output with its mirror: a symmetric image gives a symmetric answer
    from posekit.skeleton import COCO

    assert once.shape == flipped.shape == (1, 17, 2)
    out = flip_averaged(model, sym)
    if name == "simcc":  # the averaged vectors are mirror images (an untrained model's argmax may tie)
        np.testing.assert_allclose(out.simcc_x[:, COCO.flip_permutation(), ::-1], out.simcc_x, atol=1e-4)
        return
    if name == "heatmap":  # likewise the averaged maps
        back = codecs.flip_back(np.transpose(out.heatmaps, (0, 3, 1, 2)), COCO)
        np.testing.assert_allclose(back, np.transpose(out.heatmaps, (0, 3, 1, 2)), atol=1e-4)
        return
    mirror = flipped[:, COCO.flip_permutation()].copy()
    mirror[..., 0] = 63 - mirror[..., 0]
    np.testing.assert_allclose(flipped, mirror, atol=0.51)  # within half a cell of exact symmetry


def test_non_square_inputs_are_box_crops_with_the_truth_carried_along():
    data = synthetic_single(8, 3, (64, 48))
    assert data["images"].shape == (8, 64, 48, 3)
    kp = data["keypoints"]
    lab = kp[..., 2] > 0
    assert lab.any()
    assert (kp[..., 0][lab] >= -0.5).all() and (kp[..., 0][lab] <= 47.5).all()
    x, y, w, h = data["bboxes"].T
    assert (w > 0).all() and (h > 0).all()
    with pytest.raises(ValueError, match="size"):
        synthetic_single(8, 3, (64, 48, 3))


def test_lr_sweep_scores_crops_held_out_of_the_training_set(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))
    res = lr_sweep("pooling", [1e-3, 1e-2], train_size=96, holdout=32, steps=2, seed=0, extend=0)
    assert set(res) == {1e-3, 1e-2} and all(0 <= v <= 1 for v in res.values())
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2  # one cached run per learning rate
    m, _ = single_person_run(RegressionPose, "tiny", train_size=96, holdout=32, steps=2, seed=0, lr=1e-3,
                             head="pool", coord_loss="l2", progress=False)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == runs  # the same config: loaded
    # a best rate at an end of the grid extends the grid past that end by the grid's ratio
    more = lr_sweep("pooling", [1e-3, 1e-2], train_size=96, holdout=32, steps=2, seed=0, extend=1)
    best = max(res, key=res.get)
    assert len(more) == 3 and (1e-4 in more if best == 1e-3 else 0.1 in more)


@pytest.mark.parametrize(
    "make, params",
    [
        (lambda: SimpleBaseline("r50", head="deconv", heatmap_kind="gaussian", rngs=nnx.Rngs(0)), 34.0e6),
        (lambda: HRNet("w32", heatmap_kind="gaussian", rngs=nnx.Rngs(0)), 28.5e6),
    ],
    ids=["simplebaseline-r50", "hrnet-w32"],
)
def test_full_profile_models_are_paper_sized_and_backpropagate_at_256x192(make, params):
    """The full profile's models (SimpleBaseline-R50: 34.0 M parameters in the paper, HRNet-W32: 28.5 M) at
    256×192 with 64×48 heatmaps and σ = 2: built, and a loss and gradient computed (training them needs a GPU)."""
    model = make()
    assert abs(param_count(model) - params) / params < 0.03
    rng = np.random.default_rng(0)
    batch = {
        "images": rng.uniform(size=(1, 256, 192, 3)).astype(np.float32),
        "kpts": np.concatenate([rng.uniform(10, 180, (1, 17, 2)), np.full((1, 17, 1), 2.0)], -1).astype(np.float32),
    }
    shape = nnx.eval_shape(lambda m: m(batch["images"]), model).heatmaps.shape  # nothing computed
    assert shape == (1, 64, 48, 17)
    # the loss and its gradient op by op, not jitted: XLA takes about 150 s to compile HRNet-W32's training step
    # on 2 cores (an optimizer step, op by op, would add 10-20 s and test nothing more of the model)
    (loss, _), grads = nnx.value_and_grad(pose_loss_fn((256, 192), sigma=2.0), has_aux=True)(model, batch)
    assert np.isfinite(float(loss))
    leaves = jax.tree.leaves(grads)
    assert len(leaves) == len(jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
    assert np.abs(np.asarray(grads["final"]["kernel"][...])).max() > 0  # the gradient reaches the output layer


def test_verdict_claims_a_direction_only_beyond_the_seeds_spread():
    from posekit.experiments import verdict

    assert verdict([0.70, 0.71, 0.72], [0.60, 0.61, 0.62]) == "higher"
    assert verdict([0.60, 0.61, 0.62], [0.70, 0.71, 0.72]) == "lower"
    assert verdict([0.60, 0.70, 0.65], [0.62, 0.66, 0.64]) == "not distinguishable from"
    assert verdict([0.9], [0.1]) == "not distinguishable from"  # one seed: no spread to judge by


def test_the_full_profile_path_runs_end_to_end_on_non_square_inputs(tmp_path, monkeypatch):
    """The full profile's code path (H ≠ W box crops, σ = 2, the paper's deconv head, every model family),
    at a size a CPU test can afford: tiny models on 64×48 crops, two steps each."""
    from posekit.experiments import pck_bbox, train_named

    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path))
    val = synthetic_single(16, 1000, (64, 48))
    for name, kw in [("heatmap", {"head": "deconv"}), ("integral", {}), ("deeppose", {}), ("simcc", {})]:
        model, hist = train_named(name, steps=2, train_size=64, size=(64, 48), sigma=2.0, val=val, progress=False,
                                  **kw)  # fmt: skip
        pred = predict_keypoints(model, val["images"], flip_test=True, decoder="dark", sigma=2.0)
        assert pred.shape == (16, 17, 2) and np.isfinite(pred).all(), name
        assert 0.0 <= pck_bbox(pred, val) <= 1.0 and len(hist["val_pck"]) >= 1


def test_sweep_extends_the_grid_past_the_best_end_and_ranks_by_its_key():
    """`experiments.recipe.sweep`, the one learning-rate sweep: scores every rate, extends past a best end."""
    from posekit.experiments.recipe import sweep

    peak = 0.05
    trained = []

    def train_at(lr):
        trained.append(lr)
        return lr

    def score(lr):
        return -abs(np.log(lr / peak))

    assert list(sweep(train_at, score, [1e-3, 1e-2], extend=0)) == [1e-3, 1e-2]
    out = sweep(train_at, score, [1e-3, 1e-2], extend=3)
    assert list(out) == [1e-3, 1e-2, 0.1, 1.0]  # best at the top end twice, then 0.1 is bracketed: stop
    low = sweep(train_at, lambda lr: (0.0, lr), [1e-3, 1e-2], extend=1, rank=lambda s: -s[1])
    assert list(low) == [1e-4, 1e-3, 1e-2]  # ranked by the key: the smallest rate wins, the grid grows downwards
