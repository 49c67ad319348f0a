"""What a model costs on this machine: training and inference images per second, measured.

    train_speed(model, pose_loss_fn(64), batch)   # images/s through the jitted training step
    infer_speed(model, images)                     # images/s through `posekit.inference.predict`

Timings vary from run to run and machine to machine: chapters glue them for the text but never record them
as regression-tested numbers. `benchmarks/bench_models.py` prints them as a table.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import optax
from flax import nnx

from posekit.inference import predict
from posekit.train import make_train_step


def train_speed(model: nnx.Module, loss_fn, batch: dict, steps: int = 10) -> float:
    """Images/s of `steps` Adam steps of `loss_fn` on one fixed `batch` ({"images", "kpts"}), after compiling.

    Trains a copy: `model` is left as it was. Used in chapter 3.
    """
    model = nnx.clone(model)
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    step = make_train_step(graphdef, loss_fn)
    state, loss, _ = step(state, batch)  # compile
    jax.block_until_ready(loss)
    t = time.perf_counter()
    for _ in range(steps):
        state, loss, _ = step(state, batch)
    jax.block_until_ready(loss)
    return steps * len(batch["images"]) / (time.perf_counter() - t)


def infer_speed(model: nnx.Module, images, batch_size: int = 256) -> float:
    """Images/s of `posekit.inference.predict` over float `images` (N, H, W, 3), after compiling. Chapter 3."""
    images = np.asarray(images, np.float32)
    predict(model, images[:batch_size], batch_size)  # compile
    t = time.perf_counter()
    predict(model, images, batch_size)
    return len(images) / (time.perf_counter() - t)
