"""PyTorch ports of the book's networks, for one question only: is JAX slow on a CPU? (`bench_models.py --torch`)

`port(model)` builds the PyTorch twin of a posekit model (the same layers, widths and strides, written as a
PyTorch user would: NCHW `nn.Conv2d`, `nn.BatchNorm2d`, `F.pixel_shuffle`, `nn.ConvTranspose2d`) and copies the
NNX weights into it. Its `forward(x)` returns the model's output maps/vectors as a tuple, in the order
`nnx_outputs` returns them from the NNX model, so a test can check that both compute the same function.

Two details keep the twins equal. XLA's "SAME" padding of a stride-2 3×3 convolution on an even input pads
(0, 1); PyTorch users write `padding=1`, which pads (1, 1) and samples the other pixels at the same cost:
`exact=True` pads (0, 1) like XLA (for the test), the default writes the usual PyTorch layer (for timing).
A transposed convolution's padding and kernel orientation also differ between the two libraries; its twin is
the usual `nn.ConvTranspose2d(k=4, s=2, p=1)` and is checked for shapes only.

torch is a benchmark extra (`pip install -e ".[bench]"`), never needed to read or build the book.
"""

from __future__ import annotations

import jax
import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from posekit.models import HRNet, RegressionPose, SimpleBaseline
from posekit.models.bottom_up import AssociativeEmbedding
from posekit.models.centernet import CenterNet
from posekit.models.hrnet import Fuse, HRModule
from posekit.models.layers import Backbone, BasicBlock, ConvBN, Upsample


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, np.float32))


def _stride(c: nnx.Conv) -> int:
    s = c.strides
    return int(s if isinstance(s, int) else s[0])


class Conv(nn.Module):
    """The twin of a 'SAME' `nnx.Conv` (HWIO kernel → OIHW). `out_perm` reorders output channels."""

    def __init__(self, c: nnx.Conv, exact: bool, out_perm=None):
        super().__init__()
        k = np.asarray(c.kernel[...])  # (kh, kw, cin, cout)
        kh, _, cin, cout = k.shape
        self.stride = _stride(c)
        self.pad = None  # F.pad's (left, right, top, bottom) when XLA's padding is asymmetric and exact
        sym = (kh - 1) // 2
        if exact and self.stride == 2 and kh == 3:
            self.pad, sym = (0, 1, 0, 1), 0
        self.conv = nn.Conv2d(cin, cout, kh, self.stride, padding=sym, bias=c.bias is not None)
        w = k.transpose(3, 2, 0, 1)
        b = None if c.bias is None else np.asarray(c.bias[...])
        if out_perm is not None:
            w, b = w[out_perm], (None if b is None else b[out_perm])
        with torch.no_grad():
            self.conv.weight.copy_(_t(w))
            if b is not None:
                self.conv.bias.copy_(_t(b))

    def forward(self, x):
        return self.conv(F.pad(x, self.pad) if self.pad else x)


def _bn(b: nnx.BatchNorm) -> nn.BatchNorm2d:
    """flax momentum 0.9 (keep 90 % of the running average) is PyTorch's momentum 0.1; the same epsilon."""
    m = nn.BatchNorm2d(b.num_features, eps=b.epsilon, momentum=1 - b.momentum)
    with torch.no_grad():
        m.weight.copy_(_t(b.scale[...]))
        m.bias.copy_(_t(b.bias[...]))
        m.running_mean.copy_(_t(b.mean[...]))
        m.running_var.copy_(_t(b.var[...]))
    return m


class ConvBNT(nn.Module):
    def __init__(self, m: ConvBN, exact: bool):
        super().__init__()
        self.conv, self.bn, self.act = Conv(m.conv, exact), _bn(m.bn), m.act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x


class BasicBlockT(nn.Module):
    def __init__(self, m: BasicBlock, exact: bool):
        super().__init__()
        self.conv1, self.conv2 = ConvBNT(m.conv1, exact), ConvBNT(m.conv2, exact)
        self.proj = ConvBNT(m.proj, exact) if m.proj is not None else None

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class BackboneT(nn.Module):
    def __init__(self, m: Backbone, exact: bool):
        super().__init__()
        if not all(isinstance(b, BasicBlock) for b in m.blocks):
            raise ValueError("torch_ports: only BasicBlock backbones are ported (the CPU-sized variants)")
        self.stem = ConvBNT(m.stem, exact)
        self.blocks = nn.Sequential(*[BasicBlockT(b, exact) for b in m.blocks])

    def forward(self, x):
        return self.blocks(self.stem(x))


class UpsampleT(nn.Module):
    def __init__(self, m: Upsample, exact: bool):
        super().__init__()
        self.kind = m.kind
        if m.kind == "deconv":
            k = np.asarray(m.conv.kernel[...])  # (4, 4, cin, cout)
            self.conv = nn.ConvTranspose2d(k.shape[2], k.shape[3], 4, 2, padding=1, bias=False)
        elif m.kind == "pixelshuffle":
            # XLA's depth_to_space reads channel (i·2 + j)·C + c; F.pixel_shuffle reads c·4 + i·2 + j
            cout = m.conv.kernel.shape[-1] // 4
            perm = np.array([(ij * cout + c) for c in range(cout) for ij in range(4)])
            self.conv = Conv(m.conv, exact, out_perm=perm)
        else:
            self.conv = Conv(m.conv, exact)
        self.bn = _bn(m.bn)

    def forward(self, x):
        if self.kind == "deconv":
            x = self.conv(x)
        elif self.kind == "pixelshuffle":
            x = F.pixel_shuffle(self.conv(x), 2)
        else:
            x = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        return F.relu(self.bn(x))


def _linear(m: nnx.Linear, in_perm=None) -> nn.Linear:
    k = np.asarray(m.kernel[...])  # (in, out)
    if in_perm is not None:
        k = k[in_perm]
    lin = nn.Linear(k.shape[0], k.shape[1])
    with torch.no_grad():
        lin.weight.copy_(_t(k.T))
        lin.bias.copy_(_t(m.bias[...]))
    return lin


class RegressionT(nn.Module):
    def __init__(self, m: RegressionPose, input_hw, exact: bool):
        super().__init__()
        if m.cascade is not None or m.reduce is not None:
            raise ValueError("torch_ports: RegressionPose without a cascade or a reduce layer only")
        self.backbone, self.head = BackboneT(m.backbone, exact), m.head
        perm = None
        if m.head == "flatten":  # JAX flattens (h, w, c); NCHW flattens (c, h, w): reorder the dense inputs
            s, c = m.backbone.stride, m.backbone.out_channels
            h, w = input_hw[0] // s, input_hw[1] // s
            perm = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
        self.hidden = _linear(m.hidden, perm) if m.hidden is not None else None
        self.out = _linear(m.out, None if self.hidden is not None else perm)

    def forward(self, x):
        f = self.backbone(x)
        v = f.flatten(1) if self.head == "flatten" else f.mean((2, 3))
        v = F.relu(self.hidden(v)) if self.hidden is not None else v
        return (self.out(v),)


class SimpleBaselineT(nn.Module):
    """Also CenterNet's twin: the same backbone and upsampling, then a 1×1 conv or CenterNet's head."""

    def __init__(self, m, exact: bool):
        super().__init__()
        self.backbone = BackboneT(m.backbone, exact)
        self.ups = nn.Sequential(*[UpsampleT(u, exact) for u in m.ups])
        if isinstance(m, CenterNet):
            self.final = nn.Sequential(Conv(m.head.hidden, exact), nn.ReLU(), Conv(m.head.out, exact))
        else:
            self.final = Conv(m.final, exact)

    def forward(self, x):
        return (self.final(self.ups(self.backbone(x))),)


class FuseT(nn.Module):
    def __init__(self, m: Fuse, exact: bool):
        super().__init__()
        self.paths = nn.ModuleList()
        for i, row in enumerate(m.paths):
            r = nn.ModuleList()
            for j, path in enumerate(row):
                if j == i:
                    r.append(nn.Identity())
                elif j > i:
                    r.append(ConvBNT(path, exact))
                else:
                    r.append(nn.Sequential(*[ConvBNT(c, exact) for c in path]))
            self.paths.append(r)

    def forward(self, xs):
        out = []
        for i, row in enumerate(self.paths):
            total = xs[i]
            for j, path in enumerate(row):
                if j > i:
                    total = total + F.interpolate(path(xs[j]), scale_factor=2 ** (j - i), mode="nearest")
                elif j < i:
                    total = total + path(xs[j])
            out.append(F.relu(total))
        return out


class HRModuleT(nn.Module):
    def __init__(self, m: HRModule, exact: bool):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(*[BasicBlockT(b, exact) for b in br]) for br in m.branches])
        self.fuse = FuseT(m.fuse, exact)

    def forward(self, xs):
        return self.fuse([b(x) for b, x in zip(self.branches, xs)])


class HRNetT(nn.Module):
    def __init__(self, m: HRNet, exact: bool):
        super().__init__()
        self.stem = nn.Sequential(*[ConvBNT(c, exact) for c in m.stem])
        self.stage1 = nn.Sequential(*[BasicBlockT(b, exact) for b in m.stage1])
        self.transitions = nn.ModuleList([ConvBNT(t, exact) for t in m.transitions])
        self.stages = nn.ModuleList([nn.ModuleList([HRModuleT(h, exact) for h in s]) for s in m.stages])
        self.final = Conv(m.final, exact)

    def features(self, x):
        xs = [self.stage1(self.stem(x))]
        for trans, stage in zip(self.transitions, self.stages):
            xs = xs + [trans(xs[-1])]
            for module in stage:
                xs = module(xs)
        return xs[0]

    def forward(self, x):
        return (self.final(self.features(x)),)


class AssociativeEmbeddingT(nn.Module):
    def __init__(self, m: AssociativeEmbedding, exact: bool):
        super().__init__()
        self.hrnet, self.J, self.higher = HRNetT(m.hrnet, exact), m.num_joints, m.higher
        if m.higher:
            self.up = UpsampleT(m.up, exact)
            self.refine = nn.Sequential(*[BasicBlockT(b, exact) for b in m.refine])
            self.final_half = Conv(m.final_half, exact)

    def forward(self, x):
        f = self.hrnet.features(x)
        maps = self.hrnet.final(f)
        out = (maps[:, : self.J], maps[:, self.J :])
        if self.higher:
            out = out + (self.final_half(self.refine(self.up(torch.cat([f, maps], 1)))),)
        return out


def port(model: nnx.Module, input_hw=(64, 64), exact: bool = False) -> nn.Module:
    """The PyTorch twin of `model` with its weights (train mode; see the module docstring for `exact`)."""
    if isinstance(model, RegressionPose):
        twin = RegressionT(model, input_hw, exact)
    elif isinstance(model, (SimpleBaseline, CenterNet)):
        twin = SimpleBaselineT(model, exact)
    elif isinstance(model, AssociativeEmbedding):
        twin = AssociativeEmbeddingT(model, exact)
    elif isinstance(model, HRNet):
        twin = HRNetT(model, exact)
    else:
        raise ValueError(f"torch_ports: no PyTorch twin of {type(model).__name__}")
    return twin.train()


def nnx_outputs(model: nnx.Module, x, train: bool = True) -> tuple:
    """The NNX model's outputs in the twin's order, as a tuple of arrays (maps NHWC)."""
    out = model(x, train=train)
    if isinstance(model, RegressionPose):
        return (out.coords.reshape(out.coords.shape[0], -1),)
    if isinstance(model, CenterNet):
        return (jax.numpy.concatenate([out.center_logits, out.sizes, out.offsets], -1),)
    if isinstance(model, AssociativeEmbedding):
        return tuple(a for a in (out.heatmaps, out.tags, out.heatmaps_half) if a is not None)
    return (out.heatmaps,)


def square_loss(outputs) -> object:
    """The benchmarks' stand-in loss, the same in both libraries: Σ over outputs of mean(output²)."""
    return sum((o * o).mean() for o in outputs)
