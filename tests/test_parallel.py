"""Data-parallel training on several devices (issue 18), on this CPU with forced host devices.

Each case runs `tests/parallel_worker.py` in a subprocess, because the number of host devices is fixed when
JAX starts (XLA_FLAGS=--xla_force_host_platform_device_count=N).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tests.harness import ROOT

# float32 sums of 4 partial gradients instead of one: the same step up to rounding, a few Adam steps apart
RTOL, ATOL = 1e-4, 1e-6


def _worker(*args: str, devices: int = 1, timeout: int = 300, background: bool = False):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    cmd = [sys.executable, "-m", "tests.parallel_worker", *args]
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"worker {args} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _close(a: dict, b: dict) -> None:
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=RTOL, atol=ATOL)
    for x, y in zip(a["params"], b["params"], strict=True):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


def test_four_devices_train_like_one():
    out = _worker("compare", "--steps", "3", devices=4)
    assert out["n_devices"] == 4 and out["all"]["devices"] == 4 and out["one"]["devices"] == 1
    _close(out["all"], out["one"])
    assert out["one"]["loss"] != out["one"]["loss"][:1] * 3  # the model did train


def test_a_batch_that_does_not_split_evenly_is_a_clear_error():
    out = _worker("odd-batch", devices=4)
    assert "the global batch of 6 does not split evenly over 4 devices" in out["error"]
    assert "use a multiple of 4" in out["error"]


@pytest.mark.parametrize("first,then", [(4, 1), (1, 4)], ids=["4-to-1", "1-to-4"])
def test_checkpoint_resumes_on_another_device_count(tmp_path, first, then):
    ckpt = tmp_path / "run"
    stopped = _worker("train", "--devices", str(first), "--steps", "4", "--ckpt", str(ckpt), "--stop-at", "2",
                      devices=first)  # fmt: skip
    assert stopped["interrupted_at"] == 2 and (ckpt / "checkpoint.msgpack").exists()
    resumed = _worker("train", "--devices", str(then), "--steps", "4", "--ckpt", str(ckpt), devices=then)
    straight = _worker("train", "--devices", "1", "--steps", "4", devices=1)
    assert len(resumed["loss"]) == 4  # two steps from the checkpoint's history, two trained after resuming
    _close(resumed, straight)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_with_jax_distributed_train_like_one_device():
    """Two processes on localhost, two forced CPU devices each, joined by jax.distributed (gloo collectives);
    each process feeds only its half of every batch."""
    port = str(_free_port())
    procs = [_worker("distributed", "--process-id", str(i), "--num-processes", "2", "--port", port, devices=2,
                     background=True) for i in range(2)]  # fmt: skip
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, f"process failed:\n{stderr[-3000:]}"
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [o["process"] for o in outs] == [0, 1] and all(o["processes"] == 2 and o["n_devices"] == 4 for o in outs)
    single = _worker("train", "--devices", "1", "--steps", "3", devices=1)
    for o in outs:
        _close(o, single)


def test_mixed_precision_trains_on_cpu():
    """bfloat16 compute on float32 parameters follows float32 training closely on a fixed batch."""
    from posekit.train import fit
    from tests.parallel_worker import Tiny, batches, loss_fn

    fixed = batches(0)
    final = {}
    for dtype in (None, jnp.bfloat16):
        model, hist = fit(Tiny(nnx.Rngs(0)), loss_fn, lambda step: fixed, 40, lr=1e-2, progress=False,
                          compute_dtype=dtype)  # fmt: skip
        final[dtype] = hist["loss"][-1]
        assert hist["loss"][-1] < 0.75 * hist["loss"][0], hist["loss"]
    assert abs(final[jnp.bfloat16] - final[None]) < 0.05 * final[None], final
    # the parameters and BatchNorm statistics stay float32
    for kind in (nnx.Param, nnx.BatchStat):
        assert {str(x.dtype) for x in jax.tree.leaves(nnx.state(model, kind))} == {"float32"}
