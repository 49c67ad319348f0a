"""The models: output shapes of every family and variant, heads, feature dicts, size and cost helpers."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from posekit.models import HRNet, RegressionPose, SimpleBaseline, flops, param_count
from posekit.models.layers import Backbone, Upsample, conv_transpose_subpixel, depth_to_space, num_upsamplings

X = jnp.zeros((2, 64, 64, 3), jnp.float32)


@pytest.mark.parametrize("variant", ["tiny"])
def test_regression_outputs_normalized_coordinates_per_joint(variant):
    model = RegressionPose(variant, num_joints=17, rngs=nnx.Rngs(0))
    assert model(X, train=False).coords.shape == (2, 17, 2)


@pytest.mark.parametrize("head", ["deconv", "pixelshuffle", "resize"])
def test_simplebaseline_heatmaps_are_a_quarter_of_the_input(head):
    model = SimpleBaseline("tiny", num_joints=16, head=head, rngs=nnx.Rngs(0))
    assert model(X, train=True).heatmaps.shape == (2, 16, 16, 16)
    x = jnp.zeros((1, 128, 96, 3))
    assert model(x, train=False).heatmaps.shape == (1, 32, 24, 16)


@pytest.mark.parametrize("hw", [(5, 7), (8, 6)])
def test_subpixel_transposed_conv_equals_lax_conv_transpose_and_its_gradients(hw):
    """The deconv head's sub-pixel form is nnx.ConvTranspose(4×4, stride 2, SAME): values and both gradients."""
    import jax

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, *hw, 3)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(4, 4, 3, 5)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(2, 2 * hw[0], 2 * hw[1], 5)), jnp.float32)

    def ref(x, k):
        return jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    with jax.default_matmul_precision("highest"):
        np.testing.assert_allclose(conv_transpose_subpixel(x, k), ref(x, k), atol=1e-5)
        for f_grad, r_grad in zip(jax.grad(lambda x, k: jnp.sum(conv_transpose_subpixel(x, k) * g), (0, 1))(x, k),
                                  jax.grad(lambda x, k: jnp.sum(ref(x, k) * g), (0, 1))(x, k)):  # fmt: skip
            np.testing.assert_allclose(f_grad, r_grad, atol=1e-4)
        up = Upsample(3, 5, "deconv", rngs=nnx.Rngs(0))  # the layer keeps nnx.ConvTranspose's parameters
        np.testing.assert_allclose(conv_transpose_subpixel(x, up.conv.kernel[...]), up.conv(x), atol=1e-5)
    with pytest.raises(ValueError, match="4×4"):
        conv_transpose_subpixel(x, k[:3, :3])


def test_simplebaseline_output_stride_option():
    model = SimpleBaseline("tiny", num_joints=17, output_stride=8, rngs=nnx.Rngs(0))
    assert model(X).heatmaps.shape == (2, 8, 8, 17)
    assert len(model.ups) == 1


@pytest.mark.parametrize("variant", ["lite"])
def test_hrnet_heatmaps_are_a_quarter_of_the_input(variant):
    model = HRNet(variant, num_joints=17, rngs=nnx.Rngs(0))
    assert model(X, train=True).heatmaps.shape == (2, 16, 16, 17)


def test_hrnet_four_branch_variant_builds_with_fewer_blocks():
    model = HRNet("w32", num_joints=17, blocks=1, modules=(1, 1, 1), rngs=nnx.Rngs(0))
    out, feats = model(jnp.zeros((1, 64, 64, 3)), return_features=True)
    assert out.heatmaps.shape == (1, 16, 16, 17)
    assert feats["stage4_branch4"].shape == (1, 2, 2, 256)


def test_models_return_named_intermediate_features():
    _, feats = SimpleBaseline("tiny", rngs=nnx.Rngs(0))(X, return_features=True)
    assert [k for k in feats] == ["stem", "stage1", "stage2", "stage3", "up1", "up2", "heatmaps"]
    assert feats["stage3"].shape == (2, 4, 4, 64)  # smallest map stays 4×4 at 64×64 input
    _, feats = RegressionPose("tiny", head="pool", rngs=nnx.Rngs(0))(X, return_features=True)
    assert feats["pooled"].shape == (2, 64)  # global average pooling leaves one vector per image
    _, feats = RegressionPose("tiny", rngs=nnx.Rngs(0))(X, return_features=True)
    assert feats["flat"].shape == (2, 4 * 4 * 64)  # DeepPose flattens the whole map


def test_regression_and_heatmap_models_share_the_backbone():
    reg = RegressionPose("tiny", rngs=nnx.Rngs(0))
    hm = SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    assert type(reg.backbone) is type(hm.backbone) is Backbone
    assert param_count(reg.backbone) == param_count(hm.backbone)


def test_depth_to_space_moves_channels_into_2x2_blocks():
    x = jnp.arange(1 * 1 * 1 * 8, dtype=jnp.float32).reshape(1, 1, 1, 8)
    y = depth_to_space(x, 2)
    assert y.shape == (1, 2, 2, 2)
    # channel group k of the input becomes sub-pixel (k // 2, k % 2)
    np.testing.assert_array_equal(np.asarray(y[0, :, :, 0]), [[0, 2], [4, 6]])
    np.testing.assert_array_equal(np.asarray(y[0, :, :, 1]), [[1, 3], [5, 7]])


def test_param_count_and_flops_grow_with_the_variant():
    tiny = SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    small = SimpleBaseline("tiny", head_width=128, rngs=nnx.Rngs(0))
    assert 0 < param_count(tiny) < param_count(small)
    assert 0 < flops(tiny, (1, 64, 64, 3)) < flops(small, (1, 64, 64, 3))
    # a 1×1 conv from 64 channels to 17 at 16×16 alone costs 2·64·17·256 FLOPs
    assert flops(tiny, (1, 64, 64, 3)) > 2 * 64 * 17 * 256


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="variant must be one of"):
        SimpleBaseline("huge", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="kind must be one of"):
        SimpleBaseline("tiny", head="bilinear", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="power-of-two"):
        num_upsamplings(16, 3)


def test_fan_in_normal_is_deterministic_with_the_lecun_scale():
    import jax

    from posekit.models.layers import fan_in_normal

    key = jax.random.key(3)
    a = np.asarray(fan_in_normal(key, (3, 3, 64, 128)))
    np.testing.assert_array_equal(a, np.asarray(fan_in_normal(key, (3, 3, 64, 128))))
    assert not np.array_equal(a, np.asarray(fan_in_normal(jax.random.key(4), (3, 3, 64, 128))))
    assert abs(a.mean()) < 0.002 and a.std() == pytest.approx(1 / np.sqrt(3 * 3 * 64), rel=0.02)
    # same model twice from the same seed: identical; under nnx.eval_shape: only shapes, nothing drawn
    p1 = jax.tree.leaves(nnx.state(SimpleBaseline("tiny", rngs=nnx.Rngs(0)), nnx.Param))
    p2 = jax.tree.leaves(nnx.state(SimpleBaseline("tiny", rngs=nnx.Rngs(0)), nnx.Param))
    assert all(np.array_equal(x, y) for x, y in zip(p1, p2))
    abstract = nnx.eval_shape(lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0)))
    assert param_count(abstract) == param_count(SimpleBaseline("tiny", rngs=nnx.Rngs(0)))


def test_flops_and_feature_shapes_of_an_abstract_model_match_the_real_one():
    from posekit.models import feature_shapes

    real = HRNet("lite", rngs=nnx.Rngs(0))
    abstract = nnx.eval_shape(lambda: HRNet("lite", rngs=nnx.Rngs(0)))
    assert flops(abstract, (1, 64, 64, 3)) == flops(real, (1, 64, 64, 3))
    _, feats = real(X, return_features=True)
    assert feature_shapes(abstract, X.shape) == {k: tuple(v.shape) for k, v in feats.items()}


def test_every_model_states_what_it_returns():
    """The output contract: coordinate models fill `coords`, heatmap models `heatmaps` and say what the maps are."""
    reg = RegressionPose("tiny", rngs=nnx.Rngs(0))(X)
    assert reg.heatmaps is None and reg.coords.shape == (2, 17, 2)
    for model in (SimpleBaseline("tiny", rngs=nnx.Rngs(0)), HRNet("lite", heatmap_kind="gaussian", rngs=nnx.Rngs(0))):
        out = model(X)
        assert out.coords is None and out.heatmaps.shape == (2, 16, 16, 17)
        assert out.heatmap_kind == model.heatmap_kind and out.output_stride == 4
