"""The training loop, its losses and inference: it learns, it is deterministic, checkpoints resume exactly, and
the losses and decoders read what the model says it returns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posekit import codecs
from posekit.checkpoint import load_run
from posekit.data import step_rng
from posekit.experiments import pose_loss_fn
from posekit.inference import predict, predict_keypoints, spatial_softmax
from posekit.losses import heatmap_ce_loss, heatmap_loss, heatmap_mse_loss, regression_loss
from posekit.models import PoseOutput, RegressionPose, SimpleBaseline
from posekit.train import fit, make_train_step

TINY = dict(widths=(8, 8), depths=(1, 1), stem_width=8, stem_stride=2)  # stride 8: 32×32 → 4×4
SIZE = 32


def make_batch(step, seed=0, n=8):
    """A small deterministic batch: a bright square per joint on a dark image."""
    rng = step_rng(seed, step)
    kpts = np.zeros((n, 3, 3), np.float32)
    kpts[..., :2] = rng.uniform(4, SIZE - 5, (n, 3, 2))
    kpts[..., 2] = 2
    kpts[:, 2, :] = 0  # joint 2 unlabelled: zero loss
    images = np.zeros((n, SIZE, SIZE, 3), np.float32)
    for i in range(n):
        for j in range(2):
            x, y = kpts[i, j, :2].round().astype(int)
            images[i, y - 1 : y + 2, x - 1 : x + 2, j] = 1.0
    return {"images": images, "kpts": kpts}


def hm_loss(model, batch):
    target, weights = codecs.heatmap_targets(batch["kpts"], (SIZE, SIZE), (SIZE // 4, SIZE // 4), 1.0)
    return heatmap_mse_loss(model(batch["images"], train=True).heatmaps, target, weights), {"w": weights.mean()}


def small_model(seed=0, heatmap_kind="gaussian"):
    return SimpleBaseline("tiny", num_joints=3, backbone=TINY, head_width=8, heatmap_kind=heatmap_kind,
                          rngs=nnx.Rngs(seed))  # fmt: skip


def params(model):
    return [np.asarray(p) for p in jax.tree.leaves(nnx.state(model))]


@pytest.mark.parametrize("kind", ["gaussian", "logits"])
def test_training_reduces_the_loss_on_a_fixed_batch(kind):
    batch = make_batch(0)
    loss_fn = pose_loss_fn(SIZE, 1.0)  # MSE for Gaussian maps, cross-entropy for logits

    def with_weights(model, batch):
        loss, _ = loss_fn(model, batch)
        _, w = codecs.heatmap_targets(batch["kpts"], (SIZE, SIZE), (SIZE // 4, SIZE // 4), 1.0)
        return loss, {"w": w.mean()}

    model, hist = fit(small_model(heatmap_kind=kind), with_weights, lambda step: batch, 40, lr=1e-2, warmup=0.0,
                      progress=False)  # fmt: skip
    assert hist["loss"].shape == (40,)
    floor = 0.0  # the smallest possible loss: 0 for the MSE, the targets' entropy for the cross-entropy
    if kind == "logits":
        t, w = codecs.heatmap_targets(batch["kpts"], (SIZE, SIZE), (SIZE // 4, SIZE // 4), 1.0)
        t = np.asarray(t, np.float64) / np.asarray(t).sum(axis=(2, 3), keepdims=True).clip(1e-12)
        floor = float((-(t * np.log(np.maximum(t, 1e-30))).sum(axis=(2, 3)) * w).mean())
    assert hist["loss"][-5:].mean() - floor < 0.5 * (hist["loss"][:5].mean() - floor)
    assert np.all(hist["w"] == pytest.approx(2 / 3))  # unlabelled joints carry weight 0


def test_heatmap_loss_ignores_unlabelled_joints():
    batch = make_batch(0)
    target, weights = codecs.heatmap_targets(batch["kpts"], (SIZE, SIZE), (8, 8), 1.0)
    pred = np.transpose(np.asarray(target), (0, 2, 3, 1)).copy()
    pred[..., 2] = 5.0  # wrong everywhere on the unlabelled joint's map
    assert float(heatmap_mse_loss(pred, target, weights)) == 0.0
    assert float(heatmap_mse_loss(pred + 0.1, target, weights)) > 0.0


def test_ce_loss_is_smallest_when_the_softmax_equals_the_normalized_target():
    batch = make_batch(0)
    target, weights = codecs.heatmap_targets(batch["kpts"], (SIZE, SIZE), (8, 8), 1.0)
    t = np.asarray(target, np.float64)
    t = t / t.sum(axis=(2, 3), keepdims=True).clip(1e-12)
    best = np.transpose(np.log(np.maximum(t, 1e-30)), (0, 2, 3, 1)).astype(np.float32)
    entropy = -(t * np.log(np.maximum(t, 1e-30))).sum(axis=(2, 3))
    assert float(heatmap_ce_loss(best, target, weights)) == pytest.approx((entropy * weights).mean(), rel=1e-4)
    rng = np.random.default_rng(0)
    for _ in range(3):  # any other logits cost more
        assert float(heatmap_ce_loss(best + rng.normal(0, 0.5, best.shape), target, weights)) > float(
            heatmap_ce_loss(best, target, weights)
        )
    worse = best.copy()
    worse[..., 2] = rng.normal(0, 3, worse[..., 2].shape)  # the unlabelled joint: ignored
    assert float(heatmap_ce_loss(worse, target, weights)) == float(heatmap_ce_loss(best, target, weights))
    assert float(heatmap_ce_loss(best + 7.0, target, weights)) == pytest.approx(
        float(heatmap_ce_loss(best, target, weights)), rel=1e-5
    )  # a softmax ignores a constant offset


def test_heatmap_loss_follows_the_kind_the_model_states():
    batch = make_batch(0)
    target, weights = codecs.heatmap_targets(batch["kpts"], (SIZE, SIZE), (8, 8), 1.0)
    maps = np.random.default_rng(0).normal(0, 1, (8, 8, 8, 3)).astype(np.float32)
    as_logits = heatmap_loss(PoseOutput(heatmaps=maps, heatmap_kind="logits"), target, weights)
    as_gaussian = heatmap_loss(PoseOutput(heatmaps=maps, heatmap_kind="gaussian"), target, weights)
    assert float(as_logits) == float(heatmap_ce_loss(maps, target, weights))
    assert float(as_gaussian) == float(heatmap_mse_loss(maps, target, weights))
    with pytest.raises(ValueError, match="regression_loss"):
        heatmap_loss(PoseOutput(coords=np.zeros((8, 3, 2))), target, weights)


def test_bad_heatmap_kind_or_loss_name_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match=r"SimpleBaseline: heatmap_kind must be one of \('logits', 'gaussian'\)"):
        small_model(heatmap_kind="probabilities")
    with pytest.raises(ValueError, match=r"one of \('l1', 'l2'\), got 'huber'"):
        regression_loss(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), np.ones((1, 3)), kind="huber")


def test_spatial_softmax_sums_to_one_and_keeps_the_argmax():
    hm = np.random.default_rng(0).normal(0, 4, (2, 3, 5, 6)).astype(np.float32)
    p = spatial_softmax(hm)
    np.testing.assert_allclose(p.sum(axis=(2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(p.reshape(6, -1).argmax(1), hm.reshape(6, -1).argmax(1))


def test_predict_keypoints_with_logits_decodes_the_same_peak():
    """A model whose outputs are logits (CE training) decodes to the same joints with DARK as with argmax."""
    model = small_model(heatmap_kind="logits")
    images = make_batch(0)["images"]
    a = predict_keypoints(model, images)
    d = predict_keypoints(model, images, decoder="dark")
    assert a.shape == d.shape == (8, 3, 2)
    assert np.all(np.isfinite(d)) and np.abs(a - d).max() <= 4 * 1.5  # DARK moves at most ~1 cell (stride 4)


def test_flip_test_averages_with_the_mirror_image_mapped_back():
    """On an image equal to its mirror, the flip test averages the *probability* maps (the spatial softmax of the
    logits) with their flipped-back copy; its output stays logits: log of that average."""
    from posekit.inference import flip_averaged
    from posekit.skeleton import COCO

    model = SimpleBaseline("tiny", num_joints=17, backbone=TINY, head_width=8, rngs=nnx.Rngs(0))
    x = make_batch(0)["images"]
    x = 0.5 * (x + x[:, :, ::-1])
    h = np.transpose(predict(model, x).heatmaps, (0, 3, 1, 2))
    expected = 0.5 * (spatial_softmax(h) + spatial_softmax(np.asarray(codecs.flip_back(h, COCO))))
    got = np.transpose(flip_averaged(model, x).heatmaps, (0, 3, 1, 2))
    np.testing.assert_allclose(spatial_softmax(got), expected, atol=1e-6)
    assert predict_keypoints(model, x, flip_test=True).shape == (8, 17, 2)


def test_regression_loss_is_zero_at_the_target_and_weighted():
    t = np.random.default_rng(0).uniform(size=(4, 3, 2)).astype(np.float32)
    w = np.array([[1, 1, 0]] * 4, np.float32)
    assert float(regression_loss(t, t, w)) == 0.0
    bad = t.copy()
    bad[:, 2] += 1.0
    assert float(regression_loss(bad, t, w)) == 0.0
    assert float(regression_loss(bad, t, np.ones_like(w), kind="l2")) == pytest.approx(
        2 * 4 / 12
    )  # (1² + 1²) on 4 of 12 joints


def test_two_runs_with_the_same_seed_give_identical_params():
    a, ha = fit(small_model(), hm_loss, make_batch, 6, progress=False)
    b, hb = fit(small_model(), hm_loss, make_batch, 6, progress=False)
    for x, y in zip(params(a), params(b)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(ha["loss"], hb["loss"])


def test_interrupted_run_resumes_at_the_same_step_with_identical_params(tmp_path):
    full, hfull = fit(small_model(), hm_loss, make_batch, 8, ckpt_dir=tmp_path / "full", progress=False)

    def interrupting(step):
        if step == 5:
            raise KeyboardInterrupt
        return make_batch(step)

    with pytest.raises(KeyboardInterrupt):
        fit(small_model(), hm_loss, interrupting, 8, ckpt_dir=tmp_path / "cut", ckpt_every=3, progress=False)
    _, _, step = load_run(small_model(), tmp_path / "cut")
    assert step == 5  # saved on interrupt after the last finished step

    seen = []

    def recording(step):
        seen.append(step)
        return make_batch(step)

    resumed, hres = fit(small_model(seed=1), hm_loss, recording, 8, ckpt_dir=tmp_path / "cut", progress=False)
    assert seen == [5, 6, 7]
    for x, y in zip(params(full), params(resumed)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(hfull["loss"], hres["loss"])
    np.testing.assert_array_equal(hres["step"], np.arange(8))


def test_finished_run_reloads_without_training(tmp_path):
    model, hist = fit(small_model(), hm_loss, make_batch, 4, ckpt_dir=tmp_path, progress=False)

    def no_data(step):
        raise AssertionError("a finished run must not ask for data")

    again, hist2 = fit(small_model(seed=3), hm_loss, no_data, 4, ckpt_dir=tmp_path, progress=False)
    for x, y in zip(params(model), params(again)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(hist["loss"], hist2["loss"])
    images = make_batch(99)["images"]
    np.testing.assert_array_equal(predict(model, images).heatmaps, predict(again, images).heatmaps)


def test_validation_callback_is_recorded_in_the_history():
    calls = []

    def validate(model, step):
        calls.append(step)
        return {"score": float(step)}

    _, hist = fit(small_model(), hm_loss, make_batch, 6, validate=validate, val_every=2, progress=False)
    assert calls == [2, 4, 6]
    np.testing.assert_array_equal(hist["val_step"], [2, 4, 6])
    np.testing.assert_array_equal(hist["val_score"], [2.0, 4.0, 6.0])


def test_regression_model_trains_with_the_same_loop():
    def loss(model, batch):
        t, w = codecs.regression_targets(batch["kpts"], (SIZE, SIZE))
        return regression_loss(model(batch["images"], train=True).coords, t, w), {}

    model = RegressionPose("tiny", num_joints=3, backbone=TINY, hidden=16, input_size=SIZE, rngs=nnx.Rngs(0))
    batch = make_batch(0)
    _, hist = fit(model, loss, lambda s: batch, 30, lr=1e-2, warmup=0.0, progress=False)
    assert hist["loss"][-5:].mean() < 0.5 * hist["loss"][:5].mean()


def test_schedule_matches_optax_and_one_program_serves_every_learning_rate():
    """The warmup-cosine schedule held in the optimizer state gives optax's values, and two learning rates
    compile to the same program (so a learning-rate sweep compiles its training step once)."""
    import optax

    from posekit.train import make_optimizer, scale_by_warmup_cosine

    ref = optax.warmup_cosine_decay_schedule(0.0, 3e-3, 5, 50, 3e-5)
    tx = scale_by_warmup_cosine(3e-3, 50, 5, 3e-5)
    state = tx.init({"w": jnp.zeros(())})
    for t in range(60):
        upd, state = tx.update({"w": jnp.ones(())}, state)
        np.testing.assert_allclose(-float(upd["w"]), float(ref(t)), rtol=1e-5, atol=1e-9)

    def program(lr, steps):
        model = RegressionPose("tiny", num_joints=3, backbone=TINY, hidden=16, input_size=SIZE, rngs=nnx.Rngs(0))
        opt = nnx.Optimizer(model, make_optimizer(steps, lr), wrt=nnx.Param)
        graphdef, st = nnx.split((model, opt))

        def loss(m, batch):
            return (m(batch["images"], train=True).coords ** 2).mean(), {}

        return make_train_step(graphdef, loss).lower(st, make_batch(0)).as_text()

    assert program(1e-3, 100) == program(2e-2, 700)
