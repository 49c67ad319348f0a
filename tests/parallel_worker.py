"""A subprocess for tests/test_parallel.py: trains a small model with `posekit.train.fit` on a chosen number of
(forced host) devices and prints the losses and a parameter digest as JSON on its last line.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m tests.parallel_worker compare
    python -m tests.parallel_worker train --devices 1 --steps 4 --ckpt DIR [--stop-at 2]
    python -m tests.parallel_worker distributed --process-id 0 --num-processes 2 --port 12345 [--ckpt DIR]
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posekit import parallel
from posekit.train import fit

BATCH = 8


class Tiny(nnx.Module):
    """Conv + BatchNorm + ReLU + mean pool + Linear: enough to exercise batch statistics and gradients."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), use_bias=False, rngs=rngs)  # BatchNorm follows: no bias
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.head = nnx.Linear(8, 4, rngs=rngs)

    def __call__(self, x, train=False):
        self.bn.use_running_average = not train
        h = jax.nn.relu(self.bn(self.conv(x)))
        return self.head(h.mean((1, 2)))


def loss_fn(model, batch):
    pred = model(batch["images"], train=True)
    loss = jnp.mean((pred - batch["targets"]) ** 2)
    return loss, {"mse": loss}


def batches(step, rows=slice(None)):
    rng = np.random.default_rng([7, step])
    b = {"images": rng.normal(size=(BATCH, 12, 12, 3)).astype(np.float32),
         "targets": rng.normal(size=(BATCH, 4)).astype(np.float32)}  # fmt: skip
    return {k: v[rows] for k, v in b.items()}


def train(devices: int, steps: int, ckpt=None, stop_at=None, compute_dtype=None, rows=slice(None)) -> dict:
    model = Tiny(nnx.Rngs(0))
    mesh = parallel.data_mesh(jax.devices()[:devices])

    def data(step):
        if stop_at is not None and step == stop_at:
            raise KeyboardInterrupt  # fit saves the finished steps, then re-raises
        return batches(step, rows)

    try:
        model, hist = fit(model, loss_fn, data, steps, lr=1e-2, ckpt_dir=ckpt, ckpt_every=1000, progress=False,
                          mesh=mesh, compute_dtype=compute_dtype)  # fmt: skip
    except KeyboardInterrupt:
        return {"interrupted_at": stop_at}
    params = parallel.to_host(nnx.state(model))
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
    return {
        "devices": int(mesh.devices.size),
        "loss": [float(v) for v in hist["loss"]],
        "params": [x.ravel().tolist() for x in leaves],
        "dtypes": sorted({str(x.dtype) for x in jax.tree.leaves(nnx.state(model, nnx.Param))}),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["compare", "train", "odd-batch", "distributed"])
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--ckpt", default=None)
    p.add_argument("--stop-at", type=int, default=None)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--num-processes", type=int, default=2)
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args(argv)
    if a.mode == "distributed":
        parallel.initialize(f"localhost:{a.port}", a.num_processes, a.process_id)
        out = train(len(jax.devices()), a.steps, a.ckpt, a.stop_at, rows=parallel.host_rows(BATCH))
        out["process"] = jax.process_index()
        out["processes"] = jax.process_count()
    elif a.mode == "compare":
        out = {"one": train(1, a.steps), "all": train(len(jax.devices()), a.steps)}
    elif a.mode == "odd-batch":
        mesh = parallel.data_mesh()
        try:
            parallel.shard_batch({"images": np.zeros((6, 2))}, mesh)
            out = {"error": None}
        except ValueError as e:
            out = {"error": str(e)}
    else:
        out = train(a.devices, a.steps, a.ckpt, a.stop_at)
    out["n_devices"] = len(jax.devices())
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
