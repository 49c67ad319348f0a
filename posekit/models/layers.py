"""Shared building blocks: conv + BatchNorm + ReLU, residual blocks, the ResNet-style backbone, upsampling.

Tensors are NHWC: (B, H, W, C), the layout Flax convolutions use. Heatmaps leave the models as
(B, h, w, J); `posekit.codecs` works with (N, J, h, w), so the training losses transpose at that boundary.

The backbone is shared by the regression model and the SimpleBaseline-style heatmap model so that the
book's comparison changes only the head.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def fan_in_normal(key, shape, dtype=jnp.float32):
    """Kernel initializer N(0, 1/fan_in) (LeCun normal, untruncated; fan_in = prod(shape[:-1])), drawn by numpy.

    The distribution Flax uses by default, without its cost on a CPU: jax.random compiles an XLA program for
    every new kernel shape (about 0.5 s each, several seconds per model), numpy draws in microseconds. The
    draw is deterministic in `key`; under a trace (`nnx.eval_shape`, `jax.jit`) it falls back to jax.random.
    """
    fan_in = math.prod(shape[:-1])
    if isinstance(key, jax.core.Tracer):
        return jax.random.normal(key, shape, dtype) / math.sqrt(fan_in)
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    return jnp.asarray(np.random.default_rng(seed).normal(0.0, 1.0 / math.sqrt(fan_in), shape), dtype)


def conv(cin: int, cout: int, kernel: int, stride: int = 1, *, bias: bool = False, rngs: nnx.Rngs) -> nnx.Conv:
    """A k×k 'SAME' convolution initialized with `fan_in_normal` (every conv of the book's models)."""
    return nnx.Conv(cin, cout, (kernel, kernel), strides=stride, padding="SAME", use_bias=bias,
                    kernel_init=fan_in_normal, rngs=rngs)  # fmt: skip


class ConvBN(nnx.Module):
    """k×k convolution (no bias) → BatchNorm → optional ReLU.  (B,H,W,Cin) → (B,H/s,W/s,Cout)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, *, act: bool = True, rngs: nnx.Rngs):
        self.conv = conv(cin, cout, kernel, stride, rngs=rngs)
        self.bn = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
        self.act = act

    def __call__(self, x, train: bool = False):
        x = self.bn(self.conv(x), use_running_average=not train)
        return jax.nn.relu(x) if self.act else x


class BasicBlock(nnx.Module):
    """ResNet basic block (He et al. 2016): two 3×3 ConvBN plus a shortcut (1×1 ConvBN when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, *, rngs: nnx.Rngs):
        self.conv1 = ConvBN(cin, cout, 3, stride, rngs=rngs)
        self.conv2 = ConvBN(cout, cout, 3, 1, act=False, rngs=rngs)
        self.proj = ConvBN(cin, cout, 1, stride, act=False, rngs=rngs) if (stride != 1 or cin != cout) else None

    def __call__(self, x, train: bool = False):
        y = self.conv2(self.conv1(x, train), train)
        skip = self.proj(x, train) if self.proj is not None else x
        return jax.nn.relu(y + skip)


class Bottleneck(nnx.Module):
    """ResNet bottleneck block (He et al. 2016, ResNet-50 and up): 1×1 to cout/4, 3×3 (stride), 1×1 to cout.

    The shortcut is a 1×1 ConvBN when the shape changes. (B, H, W, cin) → (B, H/stride, W/stride, cout).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, *, rngs: nnx.Rngs):
        mid = cout // 4
        self.conv1 = ConvBN(cin, mid, 1, rngs=rngs)
        self.conv2 = ConvBN(mid, mid, 3, stride, rngs=rngs)
        self.conv3 = ConvBN(mid, cout, 1, act=False, rngs=rngs)
        self.proj = ConvBN(cin, cout, 1, stride, act=False, rngs=rngs) if (stride != 1 or cin != cout) else None

    def __call__(self, x, train: bool = False):
        y = self.conv3(self.conv2(self.conv1(x, train), train), train)
        skip = self.proj(x, train) if self.proj is not None else x
        return jax.nn.relu(y + skip)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class Backbone(nnx.Module):
    """ResNet-style backbone: a stride-`stem_stride` stem, then one stride-2 stage of BasicBlocks per width.

    (B, H, W, 3) → (B, H/s, W/s, widths[-1]) with s = stem_stride · 2^len(widths) (the output stride).
    block: "basic" (ResNet-18/34) or "bottleneck" (ResNet-50 and up).
    Keep H/s ≥ 4: XLA:CPU convolutions on 2×2 maps are very slow per unit of work.
    """

    def __init__(self, widths=(16, 32, 64), depths=(1, 1, 1), stem_width: int = 16, stem_stride: int = 2,
                 block: str = "basic", *, rngs):  # fmt: skip
        if len(widths) != len(depths):
            raise ValueError(f"Backbone: widths {widths} and depths {depths} must have the same length")
        if block not in BLOCKS:
            raise ValueError(f"Backbone: block must be one of {list(BLOCKS)}, got {block!r}")
        self.stem = ConvBN(3, stem_width, 3, stem_stride, rngs=rngs)
        blocks, cin = [], stem_width
        for w, d in zip(widths, depths):
            for i in range(d):
                blocks.append(BLOCKS[block](cin, w, 2 if i == 0 else 1, rngs=rngs))
                cin = w
        self.blocks = nnx.List(blocks)
        self.depths = tuple(depths)
        self.out_channels = cin
        self.stride = stem_stride * 2 ** len(widths)

    def __call__(self, x, train: bool = False, features: dict | None = None):
        """Features at every stage are written into `features` (if given) as 'stem', 'stage1', ... ."""
        x = self.stem(x, train)
        if features is not None:
            features["stem"] = x
        k = 0
        for s, d in enumerate(self.depths):
            for _ in range(d):
                x = self.blocks[k](x, train)
                k += 1
            if features is not None:
                features[f"stage{s + 1}"] = x
        return x


# Backbone variants shared by RegressionPose and SimpleBaseline. Output stride 16 for tiny/small (64×64 → 4×4),
# 32 for r18 (ResNet-18 widths/depths, meant for 128×96 inputs and up).
BACKBONES = {
    "tiny": dict(widths=(16, 32, 64), depths=(1, 1, 1), stem_width=16, stem_stride=2),
    "small": dict(widths=(32, 64, 128), depths=(2, 2, 2), stem_width=32, stem_stride=2),
    "r18": dict(widths=(64, 128, 256, 512), depths=(2, 2, 2, 2), stem_width=64, stem_stride=2),
    # ResNet-50's widths, depths and bottlenecks (the paper-size SimpleBaseline of the full profile); the
    # original's 7×7 stride-2 conv + max pool is a stride-2 3×3 conv here, and the first stage downsamples
    "r50": dict(widths=(256, 512, 1024, 2048), depths=(3, 4, 6, 3), stem_width=64, stem_stride=2,
                block="bottleneck"),
}


def depth_to_space(x, r: int = 2):
    """Pixel shuffle (Shi et al. 2016): (B, H, W, C·r²) → (B, H·r, W·r, C)."""
    b, h, w, c = x.shape
    if c % (r * r):
        raise ValueError(f"depth_to_space: channels {c} must be a multiple of r²={r * r}")
    x = x.reshape(b, h, w, r, r, c // (r * r))
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, c // (r * r))


def conv_transpose_subpixel(x, kernel):
    """A 4×4 stride-2 'SAME' transposed convolution (`nnx.ConvTranspose`, `lax.conv_transpose`), as four
    2×2 convolutions, one per output phase, interleaved (Shi et al. 2016, "Is the deconvolution layer the
    same as a convolutional layer?"). x (B, H, W, Cin), kernel (4, 4, Cin, Cout) → (B, 2H, 2W, Cout).

    The transposed convolution correlates the kernel with x dilated by zeros: output row 2i + a (a = 0, 1)
    only meets kernel rows t ≡ a (mod 2), i.e. rows (0, 2) on input rows (i-1, i) for a = 0 and rows (1, 3)
    on (i, i+1) for a = 1; columns alike. Each phase is thus a 2×2 convolution of x with one quarter of the
    kernel's taps: the same sums, with no multiplications by inserted zeros. XLA:CPU computes the backward
    pass of these ordinary convolutions several times faster than the transposed one's; the result and its
    gradients agree with `lax.conv_transpose` to float rounding (tests/test_models.py).
    """
    if kernel.shape[:2] != (4, 4):
        raise ValueError(f"conv_transpose_subpixel: kernel must be 4×4 (H, W, Cin, Cout), got {kernel.shape}")
    dtype = jnp.result_type(x, kernel)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    taps = {0: jnp.array([0, 2]), 1: jnp.array([1, 3])}  # kernel rows/columns that meet output phase a
    pads = {0: (1, 0), 1: (0, 1)}  # phase 0 reads inputs (i-1, i), phase 1 reads (i, i+1)
    phases = [[jax.lax.conv_general_dilated(x, kernel[taps[a]][:, taps[b]], (1, 1), (pads[a], pads[b]),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
               for b in (0, 1)] for a in (0, 1)]  # fmt: skip
    y = jnp.stack([jnp.stack(row, 3) for row in phases], 3)  # (B, H, W, a, b, Cout)
    b, h, w, _ = x.shape
    return y.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, kernel.shape[3])


def upsample_nearest(x, r: int):
    """Nearest-neighbour ×r upsampling: (B, H, W, C) → (B, H·r, W·r, C)."""
    return jnp.repeat(jnp.repeat(x, r, axis=1), r, axis=2)


class Upsample(nnx.Module):
    """One ×2 upsampling layer of a heatmap head, followed by BatchNorm and ReLU.

    kind:
      "deconv"       4×4 transposed convolution, stride 2 (SimpleBaseline, Xiao et al. 2018), computed in
                     its sub-pixel form (`conv_transpose_subpixel`): the same function and parameters as
                     `nnx.ConvTranspose`, without XLA:CPU's transposed-convolution backward pass (about 8×
                     slower on a 16×16×64 map).
      "pixelshuffle" 3×3 convolution to 4·C channels, then depth-to-space (Shi et al. 2016).
      "resize"       nearest-neighbour ×2, then a 3×3 convolution.
    """

    KINDS = ("deconv", "pixelshuffle", "resize")

    def __init__(self, cin: int, cout: int, kind: str = "pixelshuffle", *, rngs: nnx.Rngs):
        if kind not in self.KINDS:
            raise ValueError(f"Upsample: kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "deconv":
            self.conv = nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding="SAME", use_bias=False,
                                          kernel_init=fan_in_normal, rngs=rngs)  # fmt: skip
        elif kind == "pixelshuffle":
            self.conv = conv(cin, 4 * cout, 3, rngs=rngs)
        else:
            self.conv = conv(cin, cout, 3, rngs=rngs)
        self.bn = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)

    def __call__(self, x, train: bool = False):
        if self.kind == "deconv":
            x = conv_transpose_subpixel(x, self.conv.kernel[...])
        elif self.kind == "pixelshuffle":
            x = depth_to_space(self.conv(x), 2)
        else:
            x = self.conv(upsample_nearest(x, 2))
        return jax.nn.relu(self.bn(x, use_running_average=not train))


def num_upsamplings(backbone_stride: int, output_stride: int) -> int:
    """How many ×2 layers take a stride-`backbone_stride` map to stride `output_stride`."""
    n = math.log2(backbone_stride / output_stride)
    if n < 0 or n != int(n):
        raise ValueError(f"backbone stride {backbone_stride} is not a power-of-two multiple of {output_stride}")
    return int(n)


# ----------------------------------------------------------------------------------------------- size and cost
def param_count(model: nnx.Module) -> int:
    """Number of trainable parameters (nnx.Param leaves).

    Used in chapter 3.
    """
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))


def flops(model: nnx.Module, input_shape=(1, 64, 64, 3)) -> float:
    """Forward-pass FLOPs of `model(x, train=False)` for one input of `input_shape`, from XLA's cost analysis.

    Works on an abstract model (`nnx.eval_shape(lambda: Model(...))`): nothing is initialized or compiled,
    only lowered. XLA counts a multiply-add as 2 FLOPs. Returns NaN if the backend reports no cost.

    Used in chapter 3.
    """
    graphdef, state = nnx.split(model)

    def f(state, x):
        return nnx.merge(graphdef, state)(x, train=False)

    state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
    x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
    lowered = jax.jit(f).lower(state, x)
    cost = lowered.cost_analysis()
    if not cost:  # some backends only analyse compiled code
        cost = lowered.compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def feature_shapes(model: nnx.Module, input_shape=(1, 64, 64, 3)) -> dict:
    """{name: shape} of the features `model(x, return_features=True)` returns, computed without running it.

    Used in chapter 3.
    """
    graphdef, state = nnx.split(model)

    names = []

    def f(state, x):
        feats = nnx.merge(graphdef, state)(x, train=False, return_features=True)[1]
        names.extend(feats)  # a list keeps the model's order (a dict output would come back sorted)
        return list(feats.values())

    state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
    out = jax.eval_shape(f, state, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    return {k: tuple(v.shape) for k, v in zip(names, out)}
