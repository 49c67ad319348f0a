"""Heatmap/regression codecs: the grid convention, round trips and their measured error bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posekit import codecs
from posekit.crop import flip_keypoints
from posekit.skeleton import COCO, MPII

INPUT, HEATMAP = (192, 256), (48, 64)  # (W, H): stride 4, SimpleBaseline's 256x192 setting


def random_on_map(rng, n, j, size=HEATMAP):
    """(n, j, 2) heatmap coordinates uniform over the whole map extent [-0.5, size - 0.5]."""
    w, h = size
    return np.stack([rng.uniform(-0.5, w - 0.5, (n, j)), rng.uniform(-0.5, h - 0.5, (n, j))], axis=-1)


def as_input_kpts(mu, v=2.0):
    xy = codecs.heatmap_to_input(mu, INPUT, HEATMAP)
    return np.concatenate([xy, np.full(xy.shape[:-1] + (1,), v)], axis=-1).astype(np.float32)


def cell_distance_to_border(mu, size=HEATMAP):
    """Per keypoint, how many cells the argmax cell is from the nearest map edge (0 = on the edge)."""
    cell = np.rint(mu)
    return np.minimum(cell, np.asarray(size) - 1 - cell).min(axis=-1)


def test_grid_convention_maps_block_centres_to_cell_centres():
    # Stride 4: input pixels 0..3 (centre 1.5) form cell 0; the outer edges -0.5 coincide.
    xy = np.array([[1.5, 1.5], [-0.5, -0.5], [191.5, 255.5], [5.5, 9.5]])
    uv = codecs.input_to_heatmap(xy, INPUT, HEATMAP)
    np.testing.assert_allclose(uv, [[0, 0], [-0.5, -0.5], [47.5, 63.5], [1, 2]])
    np.testing.assert_allclose(codecs.heatmap_to_input(uv, INPUT, HEATMAP), xy)


def test_regrid_keeps_the_visibility_column():
    k = np.array([[[10.0, 20.0, 1.0]]])
    out = codecs.input_to_heatmap(k, INPUT, HEATMAP)
    assert out.shape == (1, 1, 3) and out[0, 0, 2] == 1.0


def test_heatmap_is_a_unit_peak_gaussian_at_the_subpixel_position():
    mu = np.array([[[10.3, 20.8]]])
    hm, w = codecs.heatmap_targets(as_input_kpts(mu), INPUT, HEATMAP, sigma=2.0)
    assert hm.shape == (1, 1, 64, 48) and hm.dtype == np.float32 and w.tolist() == [[1.0]]
    v, u = np.mgrid[0:64, 0:48]
    expected = np.exp(-((u - 10.3) ** 2 + (v - 20.8) ** 2) / (2 * 2.0**2))
    np.testing.assert_allclose(hm[0, 0], expected, atol=1e-5)
    assert hm.max() < 1.0 and hm.max() > np.exp(-(0.3**2 + 0.2**2) / 8) - 1e-5


def test_unlabelled_keypoint_gets_zero_weight_and_an_all_zero_map():
    k = as_input_kpts(np.array([[[10.0, 20.0], [30.0, 40.0]]]))
    k[0, 1, 2] = 0
    hm, w = codecs.heatmap_targets(k, INPUT, HEATMAP, sigma=2.0)
    assert w.tolist() == [[1.0, 0.0]]
    assert not hm[0, 1].any() and hm[0, 0].any()


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_keypoint_off_the_map_gets_weight_zero_once_its_gaussian_misses_every_cell(sigma):
    reach = 3 * sigma
    u = np.array([-reach + 0.01, -reach - 0.01, 47 + reach - 0.01, 47 + reach + 0.01, 20, 20])
    v = np.array([30, 30, 30, 30, -reach - 0.01, 63 + reach + 0.01])
    hm, w = codecs.heatmap_targets(as_input_kpts(np.stack([u, v], -1)[None]), INPUT, HEATMAP, sigma)
    assert w[0].tolist() == [1, 0, 1, 0, 0, 0]
    assert (hm[0].reshape(6, -1).max(-1) > 0).tolist() == [True, False, True, False, False, False]


def test_heatmap_targets_under_jit_equal_the_numpy_result():
    k = as_input_kpts(random_on_map(np.random.default_rng(0), 4, 17))
    k[0, 3, 2] = 0
    hm_np, w_np = codecs.heatmap_targets(k, INPUT, HEATMAP, 2.0)
    assert isinstance(hm_np, np.ndarray)
    fn = jax.jit(codecs.heatmap_targets, static_argnums=(1, 2, 3))
    hm_j, w_j = fn(jnp.asarray(k), INPUT, HEATMAP, 2.0)
    assert isinstance(hm_j, jax.Array)
    np.testing.assert_allclose(np.asarray(hm_j), hm_np, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(w_j), w_np)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_argmax_shift_recovers_positions_within_a_quarter_pixel_inside_and_half_on_the_border(sigma):
    mu = random_on_map(np.random.default_rng(1), 200, 17)
    hm, _ = codecs.heatmap_targets(as_input_kpts(mu), INPUT, HEATMAP, sigma)
    coords, maxvals = codecs.decode_argmax(hm)
    err = np.abs(coords - mu)  # per axis
    edge_x = (np.rint(mu[..., 0]) == 0) | (np.rint(mu[..., 0]) == 47)
    edge_y = (np.rint(mu[..., 1]) == 0) | (np.rint(mu[..., 1]) == 63)
    assert err[..., 0][~edge_x].max() <= 0.25 + 1e-4
    assert err[..., 1][~edge_y].max() <= 0.25 + 1e-4
    assert err.max() <= 0.5 + 1e-4
    assert maxvals.min() > np.exp(-0.5 / (2 * sigma**2)) - 1e-5  # the peak cell is within half a cell


def test_argmax_without_shift_returns_the_integer_peak_cell():
    hm = np.zeros((1, 1, 5, 7), np.float32)
    hm[0, 0, 3, 2], hm[0, 0, 3, 3] = 1.0, 0.5
    coords, maxvals = codecs.decode_argmax(hm, shift=0.0)
    assert coords.tolist() == [[[2.0, 3.0]]] and maxvals.tolist() == [[1.0]]
    coords, _ = codecs.decode_argmax(hm)
    assert coords.tolist() == [[[2.25, 3.0]]]


@given(
    u=st.floats(-0.5, 47.5, allow_nan=False),
    v=st.floats(-0.5, 63.5, allow_nan=False),
    sigma=st.sampled_from([1.0, 2.0, 3.0]),
)
@settings(max_examples=60, deadline=None)
def test_decoders_never_miss_by_more_than_half_a_cell_anywhere_on_the_map(u, v, sigma):
    mu = np.array([[[u, v]]])
    hm, _ = codecs.heatmap_targets(as_input_kpts(mu), INPUT, HEATMAP, sigma)
    for decode in (codecs.decode_argmax, codecs.decode_dark):
        coords, _ = decode(hm)
        assert np.abs(coords - mu).max() <= 0.5 + 1e-4, decode.__name__


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_dark_is_within_005_pixel_away_from_borders(sigma):
    mu = random_on_map(np.random.default_rng(2), 200, 17)
    hm, _ = codecs.heatmap_targets(as_input_kpts(mu), INPUT, HEATMAP, sigma)
    coords, _ = codecs.decode_dark(hm)
    err = np.abs(coords - mu).max(-1)
    far = cell_distance_to_border(mu) >= 4
    # Measured: < 1e-4 px for exact targets at >= 4 cells from the edge (sigma 1 and 2, kernel 11).
    assert err[far].max() <= 0.05
    argmax_err = np.abs(codecs.decode_argmax(hm)[0] - mu).max(-1)
    assert err.mean() < 0.5 * argmax_err.mean()  # border fallbacks included


def test_dark_falls_back_to_argmax_near_the_border():
    mu = np.array([[[1.2, 30.3], [30.4, 62.9], [0.0, 0.0]]])
    hm, _ = codecs.heatmap_targets(as_input_kpts(mu), INPUT, HEATMAP, 2.0)
    np.testing.assert_array_equal(codecs.decode_dark(hm)[0], codecs.decode_argmax(hm)[0])
    # With border=1 the (biased) Taylor step is used on the second cell from the edge.
    assert not np.array_equal(codecs.decode_dark(hm, border=1)[0][0, 0], codecs.decode_argmax(hm)[0][0, 0])


def test_dark_falls_back_when_the_hessian_is_not_negative_definite():
    # A flat plateau: log is constant around the argmax, so the Hessian is 0.
    hm = np.ones((1, 1, 20, 20), np.float32)
    coords, _ = codecs.decode_dark(hm, kernel=3)
    np.testing.assert_array_equal(coords, codecs.decode_argmax(hm)[0])


def test_dark_rejects_even_kernels():
    with pytest.raises(ValueError, match="kernel"):
        codecs.decode_dark(np.zeros((1, 1, 8, 8)), kernel=4)


def test_regression_targets_round_trip_and_span_the_crop():
    rng = np.random.default_rng(3)
    k = np.concatenate([rng.uniform(-0.5, 191.5, (5, 17, 1)), rng.uniform(-0.5, 255.5, (5, 17, 1))], -1)
    k = np.concatenate([k, np.full((5, 17, 1), 2.0)], -1)
    k[0, 0] = [-0.5, -0.5, 2]
    k[0, 1] = [191.5, 255.5, 2]
    k[1, 2, 2] = 0
    k[1, 3, :2] = [-3.0, 10.0]
    t, w = codecs.regression_targets(k, INPUT)
    np.testing.assert_allclose(t[0, :2], [[0, 0], [1, 1]], atol=1e-6)
    assert w[1, 2] == 0 and w[1, 3] == 0 and w.sum() == 5 * 17 - 2
    np.testing.assert_allclose(codecs.decode_regression(t, INPUT), k[..., :2], atol=1e-4)


def test_soft_argmax_is_the_expected_position_and_sharpens_to_the_argmax():
    hm = np.zeros((1, 2, 9, 11), np.float32)
    hm[0, 0, 4, 7] = 1.0
    hm[0, 1, 2, 3] = hm[0, 1, 2, 5] = 1.0
    coords = codecs.soft_argmax(hm, beta=100.0)
    np.testing.assert_allclose(coords[0], [[7, 4], [4, 2]], atol=1e-3)
    flat = codecs.soft_argmax(hm, beta=0.0)  # uniform softmax: the map's centre
    np.testing.assert_allclose(flat[0, 0], [5, 4], atol=1e-5)


def test_soft_argmax_is_differentiable_under_jax():
    hm = jnp.zeros((1, 1, 4, 4))
    grad = jax.grad(lambda h: codecs.soft_argmax(h, 1.0)[0, 0, 0])(hm)
    assert grad.shape == hm.shape and float(jnp.abs(grad).sum()) > 0


@pytest.mark.parametrize("kset", [COCO, MPII])
def test_flip_back_twice_is_the_identity(kset):
    hm = np.random.default_rng(4).random((2, kset.num_joints, 8, 6)).astype(np.float32)
    np.testing.assert_array_equal(codecs.flip_back(codecs.flip_back(hm, kset), kset), hm)


def test_flip_back_of_the_flipped_targets_equals_the_targets_without_a_pixel_shift():
    mu = random_on_map(np.random.default_rng(5), 3, 17)
    k = as_input_kpts(mu)
    hm, _ = codecs.heatmap_targets(k, INPUT, HEATMAP, 2.0)
    hm_flip, _ = codecs.heatmap_targets(flip_keypoints(k, INPUT[0], COCO), INPUT, HEATMAP, 2.0)
    np.testing.assert_allclose(codecs.flip_back(hm_flip, COCO), hm, atol=1e-5)
    # SimpleBaseline's 1 px shift moves the decoded position by one cell under this convention.
    shifted = codecs.decode_argmax(codecs.flip_back(hm_flip, COCO, shift=True), shift=0)[0]
    plain = codecs.decode_argmax(hm, shift=0)[0]
    inner = (plain[..., 0] > 0) & (plain[..., 0] < 46)
    np.testing.assert_array_equal((shifted - plain)[..., 0][inner], 1.0)


def test_codecs_reject_wrong_shapes_naming_the_input():
    with pytest.raises(ValueError, match=r"kpts must have shape \(N, J, 3\)"):
        codecs.heatmap_targets(np.zeros((2, 17)), INPUT, HEATMAP)
    with pytest.raises(ValueError, match="heatmaps"):
        codecs.decode_argmax(np.zeros((17, 8, 8)))
    with pytest.raises(ValueError, match="input_size"):
        codecs.regression_targets(np.zeros((1, 17, 3)), (0, 5))
    with pytest.raises(ValueError, match="channels"):
        codecs.flip_back(np.zeros((1, 16, 4, 4)), COCO)


def test_decode_heatmaps_picks_the_decoder_by_name():
    kp = np.array([[[10.3, 7.6, 2.0], [4.2, 12.9, 2.0]]])
    hm, _ = codecs.heatmap_targets(kp, (96, 128), (24, 32), sigma=2.0)
    hm = np.asarray(hm)
    dark = codecs.decode_dark(hm, kernel=codecs.dark_kernel(2.0))
    for name, ref in [("argmax", codecs.decode_argmax(hm)), ("dark", dark)]:
        got = codecs.decode_heatmaps(hm, name, sigma=2.0)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    with pytest.raises(ValueError, match="decoder must be one of"):
        codecs.decode_heatmaps(hm, "softmax")
