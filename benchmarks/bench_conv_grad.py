"""Convolution weight gradients on XLA:CPU: XLA's own against matmul formulations (the performance appendix).

    python benchmarks/bench_conv_grad.py           # the layer shapes of the book's CPU models, batch 32
    python benchmarks/bench_conv_grad.py --quick   # fewer repetitions
    python benchmarks/bench_conv_grad.py --models  # whole training steps with 1×1 weight gradients as matmuls

The backward pass dominates training on a CPU, and XLA's weight gradient of a convolution is its slowest part.
Three ways to compute dL/dW of a 'SAME' NHWC convolution from the input x and the output gradient dy:

* `xla`:     jax.vjp of lax.conv_general_dilated (what every model uses);
* `patches`: lax.conv_general_dilated_patches(x) reshaped to a matrix, times dy (one big matmul);
* `shifts`:  one (Cin × B·H·W) @ (B·H·W × Cout) matmul per kernel offset, on strided slices of the padded x;

and for 1×1 convolutions, `matmul`: x as a (B·H·W × Cin) matrix, times dy. Each is checked against `xla`
(relative error in the table). Where PyTorch is installed (the bench extra), its weight gradient of the same
layer is timed too (`torch.nn.grad.conv2d_weight`, the faster of NCHW and channels-last tensors). Prints a
markdown table of milliseconds per weight gradient.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")
# (H = W, Cin, Cout, kernel, stride): layers of the tiny backbone, the HRNet-lite branches and fuse layers, heads
SHAPES = [(64, 3, 16, 3, 2), (32, 16, 32, 3, 2), (32, 32, 32, 3, 1), (16, 32, 64, 3, 2), (16, 64, 64, 3, 1),
          (8, 64, 64, 3, 1), (16, 64, 256, 3, 1), (32, 16, 16, 1, 1), (16, 32, 16, 1, 1),
          (32, 16, 32, 1, 2)]  # fmt: skip


def conv(x, w, s: int):
    return lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=DN)


def wgrad_xla(x, w, dy, s: int):
    return jax.vjp(lambda w: conv(x, w, s), w)[1](dy)[0]


def wgrad_patches(x, w, dy, s: int):
    kh, kw, cin, cout = w.shape
    p = lax.conv_general_dilated_patches(x, (kh, kw), (s, s), "SAME", dimension_numbers=DN)  # features (cin, kh, kw)
    g = p.reshape(-1, p.shape[-1]).T @ dy.reshape(-1, cout)
    return g.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)


def _shifted(x, k: int, s: int):
    """The k·k strided views of x, padded as XLA pads 'SAME', that the kernel's offsets multiply."""
    h, w = x.shape[1:3]
    oh, ow = -(-h // s), -(-w // s)
    th, tw = max((oh - 1) * s + k - h, 0), max((ow - 1) * s + k - w, 0)
    xp = jnp.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    return [xp[:, i : i + (oh - 1) * s + 1 : s, j : j + (ow - 1) * s + 1 : s] for i in range(k) for j in range(k)]


def wgrad_shifts(x, w, dy, s: int):
    k, _, cin, cout = w.shape
    d = dy.reshape(-1, cout)
    return jnp.stack([v.reshape(-1, cin).T @ d for v in _shifted(x, k, s)]).reshape(k, k, cin, cout)


def wgrad_matmul_1x1(x, w, dy, s: int):
    """A 1×1 convolution of stride s reads every s-th pixel: its weight gradient is one matrix product."""
    xs = x[:, ::s, ::s]
    return (xs.reshape(-1, w.shape[2]).T @ dy.reshape(-1, w.shape[3])).reshape(w.shape)


METHODS = {"xla": wgrad_xla, "patches": wgrad_patches, "shifts": wgrad_shifts, "matmul": wgrad_matmul_1x1}


def gradients(h: int, cin: int, cout: int, k: int, s: int, batch: int = 32, seed: int = 0) -> dict:
    """{method: dL/dW} for one random layer (the 1×1 `matmul` only when k = 1)."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, h, h, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=conv(x, w, s).shape), jnp.float32)
    return {m: (f, (x, w, dy)) for m, f in METHODS.items() if m != "matmul" or k == 1}


def time_ms(f, args, s: int, reps: int) -> tuple[float, np.ndarray]:
    g = jax.jit(f, static_argnums=3)
    out = g(*args, s).block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        out = g(*args, s)
    out.block_until_ready()
    return (time.perf_counter() - t) / reps * 1e3, np.asarray(out)


def torch_ms(h: int, cin: int, cout: int, k: int, s: int, reps: int, batch: int = 32) -> float | None:
    """PyTorch's milliseconds for the same weight gradient (best of NCHW and channels-last); None without torch."""
    try:
        import torch
        from torch.nn.grad import conv2d_weight
    except ImportError:
        return None
    best = None
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(batch, cin, h, h).contiguous(memory_format=fmt)
        shape = (cout, cin, k, k)
        dy = torch.randn(batch, cout, -(-h // s), -(-h // s)).contiguous(memory_format=fmt)
        pad = (k - 1) // 2
        conv2d_weight(x, shape, dy, stride=s, padding=pad)  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            conv2d_weight(x, shape, dy, stride=s, padding=pad)
        ms = (time.perf_counter() - t) / reps * 1e3
        best = ms if best is None else min(best, ms)
    return best


def _conv1x1_fwd(x, w, s: int):
    xs = x[:, ::s, ::s]  # a 1×1 'SAME' convolution of stride s reads every s-th pixel
    return conv(xs, w, 1), (xs, w, x.shape)


def _conv1x1_bwd(s: int, res, dy):
    xs, w, shape = res
    dw = wgrad_matmul_1x1(xs, w, dy, 1)
    dxs = dy @ w.reshape(w.shape[2:]).T
    dx = dxs if s == 1 else jnp.zeros(shape, dy.dtype).at[:, ::s, ::s].set(dxs)
    return dx, dw


conv1x1 = jax.custom_vjp(lambda x, w, s: _conv1x1_fwd(x, w, s)[0], nondiff_argnums=(2,))
conv1x1.defvjp(_conv1x1_fwd, _conv1x1_bwd)
conv1x1.__doc__ = "A 1×1 'SAME' NHWC convolution whose backward pass is two matrix products (custom VJP)."


@contextlib.contextmanager
def matmul_1x1_gradients():
    """Within the block, every 1×1 `nnx.Conv` of a model (HRNet's fusion layers, the shortcuts, the output layers)
    computes its gradients as matrix products (`conv1x1`); other convolutions are unchanged. For measuring.
    Yields a list that counts the layers called through `conv1x1`."""
    original = nnx.Conv.__call__
    swapped = []

    def call(self, x):
        if tuple(self.kernel_size) != (1, 1) or self.padding != "SAME":
            return original(self, x)
        s = self.strides if isinstance(self.strides, int) else self.strides[0]
        y = conv1x1(x, self.kernel[...], int(s))
        swapped.append(self.kernel.shape)
        return y if self.bias is None else y + self.bias[...]

    nnx.Conv.__call__ = call
    try:
        yield swapped
    finally:
        nnx.Conv.__call__ = original


def model_rows(steps: int = 20, repeats: int = 2, names=("simplebaseline tiny", "hrnet lite")) -> list[dict]:
    """Train images/s of whole training steps (batch 32, 64×64), XLA's 1×1 gradients against `conv1x1`'s,
    alternating `repeats` times: {"network", "xla": [...], "matmul": [...]} for each of `names`."""
    from benchmarks.bench_models import train_speed
    from posekit.models import HRNet, SimpleBaseline

    nets = {"simplebaseline tiny": lambda: SimpleBaseline("tiny", rngs=nnx.Rngs(0)),
            "hrnet lite": lambda: HRNet("lite", rngs=nnx.Rngs(0))}  # fmt: skip
    out = []
    for name in names:
        make = nets[name]
        row = {"network": name, "xla": [], "matmul": []}
        for _ in range(repeats):
            row["xla"].append(train_speed(make(), 64, 32, steps))
            with matmul_1x1_gradients():
                row["matmul"].append(train_speed(make(), 64, 32, steps))
        out.append(row)
    return out


def rows(reps: int = 20, shapes=SHAPES) -> list[dict]:
    """One dict per layer: "layer" (H, Cin, Cout, k, s), "xla_ms", "torch_ms" (None without torch), and per
    method "<m>_ms" and "<m>_err" (the max difference from XLA's gradient relative to its largest entry); the
    1×1 `matmul` only for 1×1 layers."""
    out = []
    for h, cin, cout, k, s in shapes:
        cases = gradients(h, cin, cout, k, s)
        base, ref = time_ms(*cases["xla"], s, reps)
        row = {"layer": (h, cin, cout, k, s), "xla_ms": base, "torch_ms": torch_ms(h, cin, cout, k, s, reps)}
        for m in ("patches", "shifts", "matmul"):
            if m in cases:
                ms, g = time_ms(*cases[m], s, reps)
                row[f"{m}_ms"], row[f"{m}_err"] = ms, float(np.abs(g - ref).max() / np.abs(ref).max())
        out.append(row)
    return out


def layer_name(layer) -> str:
    h, cin, cout, k, s = layer
    return f"{h}×{h} {cin}→{cout} {k}×{k}/{s}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--models", action="store_true", help="whole training steps, with and without conv1x1")
    args = ap.parse_args(argv)
    if args.models:
        print("| network | train images/s, XLA's 1×1 gradients | with conv1x1 | ratio (means) |")
        print("|---|---|---|---|")
        for r in model_rows(10 if args.quick else 20):
            a, b = np.mean(r["xla"]), np.mean(r["matmul"])
            runs = lambda v: ", ".join(f"{x:.0f}" for x in v)  # noqa: E731
            print(f"| {r['network']} | {runs(r['xla'])} | {runs(r['matmul'])} | {b / a:.2f} |", flush=True)
        return 0
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), batch 32; ms per weight gradient "
          f"(× = XLA's time over this one; err = max relative difference from XLA's)\n")  # fmt: skip
    print("| layer | xla ms | PyTorch ms | patches | shifts | 1×1 matmul |")
    print("|---|---|---|---|---|---|")
    for r in rows(5 if args.quick else 20):
        cells = [f"{r[f'{m}_ms']:.2f} ({r['xla_ms'] / r[f'{m}_ms']:.2f}×, err {r[f'{m}_err']:.0e})"
                 if f"{m}_ms" in r else "" for m in ("patches", "shifts", "matmul")]  # fmt: skip
        pt = "" if r["torch_ms"] is None else f"{r['torch_ms']:.2f}"
        print(f"| {layer_name(r['layer'])} | {r['xla_ms']:.2f} | {pt} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
