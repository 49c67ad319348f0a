"""Training and inference speed (images/s) of the book's models at each profile's input size.

    python benchmarks/bench_models.py            # all models, 64×64 and 128×128 inputs
    python benchmarks/bench_models.py --quick    # tiny variants at 64×64, fewer steps
    python benchmarks/bench_models.py --torch    # JAX against PyTorch ports of the same layers (bench extra)

Training uses the same jitted step as `posekit.train.fit` (split/merge + jax.jit, heatmap or regression
loss); inference uses `posekit.inference.predict`. Prints a markdown table; runs unchanged on a GPU.

`--torch` answers "is JAX slow on a CPU?": every network the book trains, at the input size and batch its
chapters train with on a CPU, trained by JAX and by its PyTorch twin (`benchmarks/torch_ports.py`: the same
layers and weights) with the same stand-in loss (mean square of the outputs) and Adam, in PyTorch's eager mode
with NCHW tensors, with channels_last tensors and (`--compile`) under torch.compile. The ratio is JAX's images/s
over the best PyTorch mode's, from one run of each, after warm-up.
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


def cpu_cases():
    """(name, make, (H, W), batch): each network as its chapter trains it on a CPU (quick and standard)."""
    from posekit.models.bottom_up import AssociativeEmbedding
    from posekit.models.centernet import CenterNet

    yield "ch2 deeppose tiny", lambda: RegressionPose("tiny", input_size=(64, 64), rngs=nnx.Rngs(0)), (64, 64), 32
    yield "ch2 pooling regression tiny", lambda: RegressionPose("tiny", head="pool", rngs=nnx.Rngs(0)), (64, 64), 32
    yield "ch3 simplebaseline tiny", lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0)), (64, 64), 32
    deconv = lambda: SimpleBaseline("tiny", head="deconv", rngs=nnx.Rngs(0))  # noqa: E731
    yield "ch3 simplebaseline tiny (deconv head)", deconv, (64, 64), 32
    yield "ch3 hrnet lite", lambda: HRNet("lite", rngs=nnx.Rngs(0)), (64, 64), 32
    yield "ch4 simplebaseline tiny crops", lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0)), (128, 96), 32
    yield "ch4 hrnet lite crops", lambda: HRNet("lite", rngs=nnx.Rngs(0)), (128, 96), 32
    yield "ch4 centernet tiny", lambda: CenterNet("tiny", rngs=nnx.Rngs(0)), (128, 128), 16
    yield "ch5 higherhrnet lite", lambda: AssociativeEmbedding("lite", higher=True, rngs=nnx.Rngs(0)), (128, 128), 16


MODES = ("nchw", "channels_last", "compile")


def torch_rows(steps: int, modes=MODES[:2], cases=None) -> list[dict]:
    """JAX against the PyTorch twins: one dict per network ("network", "input", "batch", "jax", one images/s per
    PyTorch mode, and "ratio": JAX over the best mode). `cases`: (name, make, (H, W), batch), default `cpu_cases()`."""
    import time

    import torch

    from benchmarks.torch_ports import nnx_outputs, port, square_loss

    def jax_speed(model, x):
        loss = lambda m, b: (square_loss(nnx_outputs(m, b["images"])), {})  # noqa: E731
        return cost.train_speed(model, loss, {"images": x}, steps)

    def torch_speed(twin, x, mode):
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        if mode != "nchw":
            twin, xt = twin.to(memory_format=torch.channels_last), xt.contiguous(memory_format=torch.channels_last)
        fwd = torch.compile(twin) if mode == "compile" else twin
        opt = torch.optim.Adam(twin.parameters(), 1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = square_loss(fwd(xt))
            loss.backward()
            opt.step()

        for _ in range(3):  # warm-up (and compilation)
            step()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * len(x) / (time.perf_counter() - t)

    out = []
    for name, make, (h, w), batch in cases or cpu_cases():
        x = np.random.default_rng(0).uniform(size=(batch, h, w, 3)).astype(np.float32)
        model = make()
        row = {"network": name, "input": f"{h}×{w}", "batch": batch, "jax": jax_speed(model, x)}
        for m in modes:
            row[m] = torch_speed(port(model, (h, w)), x, m)
        row["ratio"] = row["jax"] / max(row[m] for m in modes)
        out.append(row)
    return out


def torch_table(steps: int, compile_too: bool) -> None:
    import torch

    modes = MODES if compile_too else MODES[:2]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; jax {jax.__version__}, "
          f"{jax.devices()[0].device_kind}; train images/s, {steps} steps after warm-up\n")  # fmt: skip
    print("| network | input | batch | JAX | " + " | ".join(f"PyTorch {m}" for m in modes) + " | JAX ÷ best |")
    print("|---|---|---|---|" + "---|" * len(modes) + "---|")
    for r in torch_rows(steps, modes):
        cells = " | ".join(f"{r[m]:.0f}" for m in modes)
        print(f"| {r['network']} | {r['input']} | {r['batch']} | {r['jax']:.0f} | {cells} | {r['ratio']:.2f} |",
              flush=True)  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny models at 64×64 only, fewer steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--torch", action="store_true", help="JAX against PyTorch twins of every network (bench extra)")
    ap.add_argument("--compile", action="store_true", help="with --torch: also time torch.compile (slow to compile)")
    args = ap.parse_args(argv)
    if args.torch:
        torch_table(10 if args.quick else 20, args.compile)
        return 0
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
