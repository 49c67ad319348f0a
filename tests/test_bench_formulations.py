"""The benchmarks' alternative formulations compute what they stand in for (issue 18's speed experiments).

The weight-gradient formulations of `benchmarks/bench_conv_grad.py` equal XLA's, as does the sub-pixel transposed
convolution that `benchmarks/bench_deconv.py` times against `lax.conv_transpose`; the PyTorch twins of
`benchmarks/torch_ports.py` compute the NNX networks' outputs (skipped where the bench extra, torch, is absent).
"""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from benchmarks.bench_conv_grad import gradients

LAYERS = [(8, 3, 4, 3, 2), (6, 4, 5, 3, 1), (8, 4, 6, 1, 2), (5, 4, 6, 1, 1), (7, 2, 3, 3, 2)]


@pytest.mark.parametrize("h,cin,cout,k,s", LAYERS)
def test_weight_gradient_formulations_equal_xla(h, cin, cout, k, s):
    cases = gradients(h, cin, cout, k, s, batch=2)
    f, args = cases.pop("xla")
    ref = np.asarray(f(*args, s))
    assert np.abs(ref).max() > 0
    for name, (g, a) in cases.items():
        np.testing.assert_allclose(np.asarray(g(*a, s)), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=name)


def test_the_deconv_benchmark_compares_equal_computations():
    from benchmarks.bench_deconv import measure

    row = measure(3, 5, 4, 6, reps=1, batch=2)  # output and both gradients, in both forms
    assert row["max_err"] < 1e-5 and row["lax.conv_transpose_ms"] > 0 and row["sub-pixel_ms"] > 0


def _models():
    from posekit.models import HRNet, RegressionPose, SimpleBaseline
    from posekit.models.bottom_up import AssociativeEmbedding
    from posekit.models.centernet import CenterNet

    return {
        "deeppose": lambda: RegressionPose("tiny", input_size=(64, 48), rngs=nnx.Rngs(0)),
        "pooling": lambda: RegressionPose("tiny", head="pool", rngs=nnx.Rngs(0)),
        "simplebaseline-pixelshuffle": lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0)),
        "simplebaseline-resize": lambda: SimpleBaseline("tiny", head="resize", rngs=nnx.Rngs(0)),
        "hrnet": lambda: HRNet("lite", rngs=nnx.Rngs(0)),
        "centernet": lambda: CenterNet("tiny", rngs=nnx.Rngs(0)),
        "higherhrnet": lambda: AssociativeEmbedding("lite", higher=True, rngs=nnx.Rngs(0)),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_torch_twins_compute_the_same_networks(name):
    torch = pytest.importorskip("torch", reason="the bench extra (torch) is not installed")
    from benchmarks.torch_ports import nnx_outputs, port

    model = _models()[name]()
    x = np.random.default_rng(0).uniform(size=(2, 64, 48, 3)).astype(np.float32)
    twin = port(model, (64, 48), exact=True)
    # the running averages first, then batch statistics (a training pass would update the running variances
    # differently: PyTorch stores the unbiased batch variance, Flax the biased one)
    for train in (False, True):
        twin.train(train)
        ours = nnx_outputs(model, x, train=train)
        theirs = twin(torch.from_numpy(x).permute(0, 3, 1, 2))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            b = b.detach().numpy()
            b = b.transpose(0, 2, 3, 1) if b.ndim == 4 else b
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(b).max()))


def test_matmul_1x1_gradients_equal_xla_in_a_whole_model():
    """`conv1x1` (custom VJP) swapped into every 1×1 convolution (strided shortcuts, the output layer) of a
    SimpleBaseline gives XLA's gradients."""
    import jax

    from benchmarks.bench_conv_grad import matmul_1x1_gradients
    from posekit.models import SimpleBaseline

    model = SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)

    def loss(m):
        return (m(x, train=True).heatmaps ** 2).mean()

    ref = nnx.jit(nnx.grad(loss))(model)
    with matmul_1x1_gradients() as swapped:
        got = nnx.jit(nnx.grad(loss))(model)
    assert len(swapped) >= 4  # three strided shortcuts and the output layer went through conv1x1
    a, b = jax.tree.leaves(ref), jax.tree.leaves(got)
    assert len(a) == len(b) > 20
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.asarray(v), np.asarray(u), rtol=1e-3, atol=1e-5 * max(1e-3, np.abs(u).max()))
