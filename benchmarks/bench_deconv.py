"""The transposed convolution on XLA:CPU: `lax.conv_transpose` against its sub-pixel form (the performance appendix).

    python benchmarks/bench_deconv.py           # the upsampling layers of SimpleBaseline's deconv head, batch 32
    python benchmarks/bench_deconv.py --quick   # fewer repetitions

SimpleBaseline's paper head upsamples with 4×4 stride-2 transposed convolutions. XLA's CPU backend computes
the backward pass of `lax.conv_transpose` (a convolution of the zero-dilated input) several times slower than
that of ordinary convolutions, so `posekit.models.layers.Upsample("deconv")` computes the same function as
four 2×2 convolutions, one per output phase (`conv_transpose_subpixel`). This script times a training step's
share of one such layer, the output and both gradients (input and kernel), in both forms, and checks that they
agree. Prints a markdown table of milliseconds.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from posekit.models.layers import conv_transpose_subpixel

# (H, W, Cin, Cout): the two upsamplings of SimpleBaseline-tiny at 64×64 and on 128×96 crops, and the paper's
# 256-channel head on the stride-32 map of a 256×192 crop (the full profile's first upsampling)
SHAPES = [(4, 4, 64, 64), (8, 8, 64, 64), (8, 6, 64, 64), (16, 12, 64, 64), (8, 6, 256, 256)]


def lax_transpose(x, k):
    """XLA's transposed convolution: what `nnx.ConvTranspose(4×4, stride 2, 'SAME')` computes."""
    return jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


FORMS = {"lax.conv_transpose": lax_transpose, "sub-pixel": conv_transpose_subpixel}


def step(f):
    """The layer's output and its gradients with respect to the input and the kernel, for a fixed output gradient."""

    def run(x, k, g):
        y, vjp = jax.vjp(f, x, k)
        return (y, *vjp(g))

    return jax.jit(run)


def measure(h: int, w: int, cin: int, cout: int, reps: int = 20, batch: int = 32) -> dict:
    """{"layer", "<form>_ms" per form, "speedup" (lax ÷ sub-pixel), "max_err" (relative, over output and gradients)}."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, h, w, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cin), jnp.float32)
    g = jnp.asarray(rng.normal(size=(batch, 2 * h, 2 * w, cout)), jnp.float32)
    row, outs = {"layer": (h, w, cin, cout)}, {}
    for name, f in FORMS.items():
        run = step(f)
        outs[name] = jax.block_until_ready(run(x, k, g))
        t = time.perf_counter()
        for _ in range(reps):
            out = run(x, k, g)
        jax.block_until_ready(out)
        row[f"{name}_ms"] = (time.perf_counter() - t) / reps * 1e3
    ref, sub = outs["lax.conv_transpose"], outs["sub-pixel"]
    row["max_err"] = max(float(jnp.abs(a - b).max() / jnp.abs(a).max()) for a, b in zip(ref, sub))
    row["speedup"] = row["lax.conv_transpose_ms"] / row["sub-pixel_ms"]
    return row


def rows(reps: int = 20, shapes=SHAPES) -> list[dict]:
    return [measure(*s, reps=reps) for s in shapes]


def layer_name(layer) -> str:
    h, w, cin, cout = layer
    return f"{h}×{w}, {cin}→{cout}, 4×4 stride 2"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args(argv)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), batch 32; ms for the output and both "
          f"gradients of one layer\n")  # fmt: skip
    print("| layer | lax.conv_transpose ms | sub-pixel ms | speed-up | max. relative difference |")
    print("|---|---|---|---|---|")
    for r in rows(5 if args.quick else 20):
        print(f"| {layer_name(r['layer'])} | {r['lax.conv_transpose_ms']:.2f} | {r['sub-pixel_ms']:.2f} | "
              f"{r['speedup']:.1f}× | {r['max_err']:.0e} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
