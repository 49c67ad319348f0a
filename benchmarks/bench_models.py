"""Training and inference speed (images/s) of the book's models at each profile's input size.

    python benchmarks/bench_models.py            # all models, 64×64 and 128×128 inputs
    python benchmarks/bench_models.py --quick    # tiny variants at 64×64, fewer steps

Training uses the same jitted step as `posekit.train.fit` (split/merge + jax.jit, heatmap or regression
loss); inference uses `posekit.inference.predict`. Prints a markdown table; runs unchanged on a GPU.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax
from flax import nnx

from posekit.experiments import pose_loss_fn
from posekit.inference import predict
from posekit.models import HRNet, RegressionPose, SimpleBaseline, flops, param_count
from posekit.train import make_train_step


def models(quick: bool):
    yield "regression tiny", lambda: RegressionPose("tiny", rngs=nnx.Rngs(0))
    yield "simplebaseline tiny (pixelshuffle)", lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    yield "simplebaseline tiny (resize)", lambda: SimpleBaseline("tiny", head="resize", rngs=nnx.Rngs(0))
    yield "simplebaseline tiny (deconv)", lambda: SimpleBaseline("tiny", head="deconv", rngs=nnx.Rngs(0))
    yield "hrnet lite", lambda: HRNet("lite", rngs=nnx.Rngs(0))
    if not quick:
        yield "regression small", lambda: RegressionPose("small", rngs=nnx.Rngs(0))
        yield "simplebaseline small (pixelshuffle)", lambda: SimpleBaseline("small", rngs=nnx.Rngs(0))
        yield "hrnet small", lambda: HRNet("small", rngs=nnx.Rngs(0))


def train_speed(model, size: int, batch: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
    kpts = np.concatenate([rng.uniform(0, size - 1, (batch, 17, 2)), np.full((batch, 17, 1), 2.0)], -1)
    kpts = kpts.astype(np.float32)

    batch_data = {"images": x, "kpts": kpts}
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    # the chapters' train step and loss (spatial cross-entropy for logit heatmaps, L1 for coordinates)
    step = make_train_step(graphdef, pose_loss_fn(size))
    state, loss, _ = step(state, batch_data)  # compile
    jax.block_until_ready(loss)
    t = time.perf_counter()
    for _ in range(steps):
        state, loss, _ = step(state, batch_data)
    jax.block_until_ready(loss)
    return steps * batch / (time.perf_counter() - t)


def infer_speed(model, size: int, n: int) -> float:
    x = np.random.default_rng(0).uniform(size=(n, size, size, 3)).astype(np.float32)
    predict(model, x[:256])  # compile
    t = time.perf_counter()
    predict(model, x)
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny models at 64×64 only, fewer steps")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)
    sizes = [64] if args.quick else [64, 128]
    steps = 10 if args.quick else 30
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), batch {args.batch}\n")
    print("| model | input | params | MFLOPs/img | train img/s | inference img/s |")
    print("|---|---|---|---|---|---|")
    for name, make in models(args.quick):
        for size in sizes:
            m = make()
            mf = flops(m, (1, size, size, 3)) / 1e6
            tr = train_speed(m, size, args.batch, steps)
            inf = infer_speed(m, size, 512 if args.quick else 1024)
            print(f"| {name} | {size}×{size} | {param_count(m):,} | {mf:.1f} | {tr:.0f} | {inf:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
