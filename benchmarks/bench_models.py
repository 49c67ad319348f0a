"""Training and inference speed (images/s) of the book's models at each profile's input size.

    python benchmarks/bench_models.py            # all models, 64×64 and 128×128 inputs
    python benchmarks/bench_models.py --quick    # tiny variants at 64×64, fewer steps

Training uses the same jitted step as `posekit.train.fit` (split/merge + jax.jit, heatmap or regression
loss); inference uses `posekit.inference.predict`. Prints a markdown table; runs unchanged on a GPU.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from flax import nnx

from posekit.experiments import cost, pose_loss_fn
from posekit.models import HRNet, IntegralPose, RegressionPose, SimCCPose, SimpleBaseline, flops, param_count


def models(quick: bool):
    """(name, make) pairs; `make(size)` builds the model for size × size inputs (dense heads depend on it)."""
    hw = lambda size: (size, size)  # noqa: E731
    yield "deeppose tiny", lambda size: RegressionPose("tiny", input_size=hw(size), rngs=nnx.Rngs(0))
    yield "simplebaseline tiny (pixelshuffle)", lambda size: SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    yield "simplebaseline tiny (resize)", lambda size: SimpleBaseline("tiny", head="resize", rngs=nnx.Rngs(0))
    yield "simplebaseline tiny (deconv)", lambda size: SimpleBaseline("tiny", head="deconv", rngs=nnx.Rngs(0))
    yield "hrnet lite", lambda size: HRNet("lite", rngs=nnx.Rngs(0))
    if not quick:
        yield "pooling regression tiny", lambda size: RegressionPose("tiny", head="pool", rngs=nnx.Rngs(0))
        yield "integral tiny", lambda size: IntegralPose("tiny", rngs=nnx.Rngs(0))
        yield "simcc tiny", lambda size: SimCCPose("tiny", input_size=hw(size), rngs=nnx.Rngs(0))
        yield "deeppose small", lambda size: RegressionPose("small", input_size=hw(size), rngs=nnx.Rngs(0))
        yield "simplebaseline small (pixelshuffle)", lambda size: SimpleBaseline("small", rngs=nnx.Rngs(0))
        yield "hrnet small", lambda size: HRNet("small", rngs=nnx.Rngs(0))


def train_speed(model, size: int, batch: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
    kpts = np.concatenate([rng.uniform(0, size - 1, (batch, 17, 2)), np.full((batch, 17, 1), 2.0)], -1)
    # the chapters' train step and loss (spatial cross-entropy for logit heatmaps, L1 for coordinates)
    return cost.train_speed(model, pose_loss_fn(size), {"images": x, "kpts": kpts.astype(np.float32)}, steps)


def infer_speed(model, size: int, n: int) -> float:
    return cost.infer_speed(model, np.random.default_rng(0).uniform(size=(n, size, size, 3)))


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
            m = make(size)
            mf = flops(m, (1, size, size, 3)) / 1e6
            tr = train_speed(m, size, args.batch, steps)
            inf = infer_speed(m, size, 512 if args.quick else 1024)
            print(f"| {name} | {size}×{size} | {param_count(m):,} | {mf:.1f} | {tr:.0f} | {inf:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
