"""Data-parallel training speed on 1, 2 and 4 devices: the step of `posekit.train.fit` over a `posekit.parallel` mesh.

    python benchmarks/bench_scaling.py            # SimpleBaseline-tiny and HRNet-lite at 64×64, 1/2/4 devices
    python benchmarks/bench_scaling.py --quick    # SimpleBaseline-tiny, 1 and 2 devices, fewer steps

On a CPU each device count runs in its own process with that many *forced host devices*
(XLA_FLAGS=--xla_force_host_platform_device_count=N): they share the machine's cores, so the numbers show that the
sharded code runs and what splitting costs, not a speed-up. On GPUs the same script measures real devices (as many
as are present, up to 4) and adds the share of the device's peak it reaches (MFU), with the training FLOPs taken as
3 × the forward pass's (`posekit.models.flops`). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = ("simplebaseline tiny", "hrnet lite")
# dense peak FLOP/s per device for the MFU column (float32 / bfloat16 tensor cores), by device kind
PEAK_FLOPS = {
    "NVIDIA A100-SXM4-40GB": (19.5e12, 312e12),
    "NVIDIA A100-SXM4-80GB": (19.5e12, 312e12),
    "NVIDIA A100 80GB PCIe": (19.5e12, 312e12),
    "NVIDIA H100 80GB HBM3": (67e12, 989e12),
    "NVIDIA L4": (30.3e12, 121e12),
    "Tesla T4": (8.1e12, 65e12),
    "NVIDIA GeForce RTX 4090": (82.6e12, 165e12),
}


def _make(name: str):
    from flax import nnx

    from posekit.models import HRNet, SimpleBaseline

    if name == "simplebaseline tiny":
        return SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    if name == "hrnet lite":
        return HRNet("lite", rngs=nnx.Rngs(0))
    raise ValueError(f"model: expected one of {MODELS}, found {name!r}")


def worker(name: str, devices: int, batch: int, size: int, steps: int) -> dict:
    """Time `steps` training steps of `name` on the first `devices` devices (after one compiling step)."""
    import jax
    import numpy as np
    import optax
    from flax import nnx

    from posekit import parallel
    from posekit.experiments import pose_loss_fn
    from posekit.models import flops
    from posekit.train import make_train_step

    model = _make(name)
    fwd = flops(model, (1, size, size, 3))
    mesh = parallel.data_mesh(jax.devices()[:devices])
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    state = parallel.replicate(state, mesh)
    step = make_train_step(graphdef, pose_loss_fn(size), parallel.replicated(mesh))
    rng = np.random.default_rng(0)
    host = {
        "images": rng.uniform(size=(batch, size, size, 3)).astype(np.float32),
        "kpts": np.concatenate([rng.uniform(0, size - 1, (batch, 17, 2)), np.full((batch, 17, 1), 2.0)], -1).astype(
            np.float32
        ),
    }
    data = parallel.shard_batch(host, mesh)
    state, loss, _ = step(state, data)  # compile
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, loss, _ = step(state, parallel.shard_batch(host, mesh))
    jax.block_until_ready(loss)
    dt = (time.perf_counter() - t0) / steps
    kind = jax.devices()[0].device_kind
    peak = PEAK_FLOPS.get(kind, (None, None))[0]
    img_s = batch / dt
    return {"model": name, "devices": int(mesh.devices.size), "platform": jax.default_backend(), "kind": kind,
            "batch": batch, "step_ms": dt * 1e3, "img_s": img_s,
            "mfu": (3 * fwd * img_s / (peak * devices)) if peak else None}  # fmt: skip


def measure(name: str, devices: int, batch: int = 32, size: int = 64, steps: int = 10) -> dict:
    """`worker` in a fresh process: with `devices` forced host devices on a CPU, or the first `devices` GPUs."""
    env = dict(os.environ)
    if env.get("JAX_PLATFORMS", "cpu").startswith("cpu") or not _has_gpu():
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    args = [sys.executable, "-m", "benchmarks.bench_scaling", "--worker", name, "--devices", str(devices),
            "--batch", str(batch), "--size", str(size), "--steps", str(steps)]  # fmt: skip
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    if proc.returncode:
        raise RuntimeError(f"bench_scaling worker ({name}, {devices} devices) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _has_gpu() -> bool:
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


def table(rows: list[dict]) -> str:
    """Markdown: model, devices, batch, step ms, img/s, × one device, MFU."""
    base = {r["model"]: r["img_s"] for r in rows if r["devices"] == 1}
    lines = ["| model | devices | batch | step (ms) | train img/s | × 1 device | MFU |", "|---" * 7 + "|"]
    for r in rows:
        mfu = f"{100 * r['mfu']:.0f}%" if r.get("mfu") else "n/a"
        lines.append(f"| {r['model']} | {r['devices']} × {r['platform']} | {r['batch']} | {r['step_ms']:.0f} | "
                     f"{r['img_s']:.0f} | {r['img_s'] / base[r['model']]:.2f} | {mfu} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="SimpleBaseline-tiny, 1 and 2 devices, 3 steps")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.devices, args.batch, args.size, args.steps or 10)))
        return 0
    models = MODELS[:1] if args.quick else MODELS
    counts = (1, 2) if args.quick else (1, 2, 4)
    steps = args.steps or (3 if args.quick else 10)
    rows = [measure(m, n, args.batch, args.size, steps) for m in models for n in counts]
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
