"""HRNet-style model (Sun et al., CVPR 2019): parallel multi-resolution branches with repeated fusion.

A stride-4 stem, then stages with 1, 2, 3 (, 4) parallel branches; branch k runs at stride 4·2^k with
widths[k] channels. After each module every branch receives the sum of all branches brought to its
resolution: lower-resolution inputs by a 1×1 conv + nearest upsampling, higher-resolution inputs by
strided 3×3 convs. The heatmaps are a 1×1 conv of the highest-resolution branch: (B, H/4, W/4, J).
"""

from __future__ import annotations

import jax
from flax import nnx

from posekit.models.layers import BasicBlock, ConvBN, conv, upsample_nearest
from posekit.models.output import PoseOutput, check_heatmap_kind

# widths per branch, blocks per branch in a module, modules per stage (stage s has s+1 branches)
VARIANTS = {
    "lite": dict(widths=(16, 32, 64), blocks=2, modules=(1, 1), stem_width=32),
    "small": dict(widths=(32, 64, 128), blocks=2, modules=(1, 2), stem_width=64),
    "w32": dict(widths=(32, 64, 128, 256), blocks=4, modules=(1, 4, 3), stem_width=64),
}


class Fuse(nnx.Module):
    """Exchange across branches: out_i = ReLU(Σ_j T_ij(x_j)), T_ii = identity,
    T_ij (j > i) = 1×1 ConvBN then nearest ×2^(j−i), T_ij (j < i) = (i−j) stride-2 3×3 ConvBNs."""

    def __init__(self, widths, *, rngs: nnx.Rngs):
        n = len(widths)
        paths = []
        for i in range(n):
            row = []
            for j in range(n):
                if j == i:
                    row.append(None)
                elif j > i:
                    row.append(ConvBN(widths[j], widths[i], 1, act=False, rngs=rngs))
                else:
                    convs = [ConvBN(widths[j], widths[j], 3, 2, rngs=rngs) for _ in range(i - j - 1)]
                    convs.append(ConvBN(widths[j], widths[i], 3, 2, act=False, rngs=rngs))
                    row.append(nnx.List(convs))
            paths.append(nnx.List(row))
        self.paths = nnx.List(paths)

    def __call__(self, xs, train: bool = False):
        out = []
        for i, row in enumerate(self.paths):
            total = xs[i]
            for j, path in enumerate(row):
                if j == i:
                    continue
                if j > i:
                    y = upsample_nearest(path(xs[j], train), 2 ** (j - i))
                else:
                    y = xs[j]
                    for conv in path:
                        y = conv(y, train)
                total = total + y
            out.append(jax.nn.relu(total))
        return out


class HRModule(nnx.Module):
    """`blocks` BasicBlocks on every branch, then a Fuse."""

    def __init__(self, widths, blocks: int, *, rngs: nnx.Rngs):
        self.branches = nnx.List([nnx.List([BasicBlock(w, w, rngs=rngs) for _ in range(blocks)]) for w in widths])
        self.fuse = Fuse(widths, rngs=rngs)

    def __call__(self, xs, train: bool = False):
        ys = []
        for x, branch in zip(xs, self.branches):
            for block in branch:
                x = block(x, train)
            ys.append(x)
        return self.fuse(ys, train)


class HRNet(nnx.Module):
    """(B, H, W, 3) → `PoseOutput(heatmaps=(B, H/4, W/4, J))`. Used in chapter 3.

    Build with `HRNet("lite", num_joints=17, rngs=nnx.Rngs(0))`; `heatmap_kind` as in `SimpleBaseline`.
    """

    def __init__(
        self, variant: str = "lite", num_joints: int = 17, heatmap_kind: str = "logits", *, rngs: nnx.Rngs, **overrides
    ):
        if variant not in VARIANTS:
            raise ValueError(f"HRNet: variant must be one of {list(VARIANTS)}, got {variant!r}")
        cfg = {**VARIANTS[variant], **overrides}
        widths, blocks = tuple(cfg["widths"]), cfg["blocks"]
        if len(cfg["modules"]) != len(widths) - 1:
            raise ValueError(f"HRNet: need len(modules) == len(widths) - 1, got {cfg['modules']} for {widths}")
        s = cfg["stem_width"]
        self.stem = nnx.List([ConvBN(3, s, 3, 2, rngs=rngs), ConvBN(s, s, 3, 2, rngs=rngs)])
        self.stage1 = nnx.List([BasicBlock(s, widths[0], rngs=rngs)] + [
            BasicBlock(widths[0], widths[0], rngs=rngs) for _ in range(blocks - 1)
        ])  # fmt: skip
        stages, transitions = [], []
        for k, m in enumerate(cfg["modules"]):
            # a new, lower-resolution branch from the current lowest one (stride-2 3×3 conv)
            transitions.append(ConvBN(widths[k], widths[k + 1], 3, 2, rngs=rngs))
            stages.append(nnx.List([HRModule(widths[: k + 2], blocks, rngs=rngs) for _ in range(m)]))
        self.transitions = nnx.List(transitions)
        self.stages = nnx.List(stages)
        self.final = conv(widths[0], num_joints, 1, bias=True, rngs=rngs)
        self.output_stride = 4
        self.heatmap_kind = check_heatmap_kind("HRNet", heatmap_kind)

    def __call__(self, x, train: bool = False, return_features: bool = False):
        """Returns a PoseOutput with heatmaps (B, h, w, J), or (output, features dict) with return_features=True."""
        feats = {}
        for layer in self.stem:
            x = layer(x, train)
        for block in self.stage1:
            x = block(x, train)
        xs = [x]
        for k, (trans, stage) in enumerate(zip(self.transitions, self.stages)):
            xs = xs + [trans(xs[-1], train)]
            for module in stage:
                xs = module(xs, train)
            if return_features:
                for b, y in enumerate(xs):
                    feats[f"stage{k + 2}_branch{b + 1}"] = y
        heatmaps = self.final(xs[0])
        out = PoseOutput(heatmaps=heatmaps, heatmap_kind=self.heatmap_kind, output_stride=self.output_stride)
        if return_features:
            feats["heatmaps"] = heatmaps
            return out, feats
        return out
