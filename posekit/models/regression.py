"""Direct regression of joint coordinates: DeepPose (Toshev & Szegedy, CVPR 2014) and a pooling ablation.

    RegressionPose("tiny", rngs=nnx.Rngs(0))                 # DeepPose: flatten → dense → dense → J×2
    RegressionPose("tiny", head="pool", rngs=nnx.Rngs(0))    # ablation: global average pooling → dense → J×2
    RegressionPose("tiny", cascade=True, rngs=nnx.Rngs(0))   # plus one refinement stage on joint crops

The output is one (x, y) per joint in coordinates normalized to the crop (`posekit.codecs.regression_targets`).
DeepPose flattens the last feature map into fully connected layers, so the dense layers see *where* each
feature fired, and trains them with an L2 loss. Global average pooling (``head="pool"``) averages the map
away: the dense layers must rebuild coordinates from *what* fired. Chapter 2 measures what that costs.

DeepPose's cascade crops a box around each joint's first estimate and regresses a displacement from that
crop with a second network (shared by all joints; joint j reads its own two outputs). The paper trains each
stage separately on the previous stage's (augmented) estimates; here both stages train together, the crop
positions taken from the first estimate with its gradient stopped, and the loss sums both stages.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from posekit.codecs import input_hw
from posekit.models.layers import BACKBONES, Backbone, ConvBN, fan_in_normal
from posekit.models.output import PoseOutput

# variant → backbone (shared with SimpleBaseline), the hidden width of the dense head (0: none) and, for wide
# backbones, a 1×1 conv to `reduce` channels before flattening (0: none). ResNet-50's 2048 channels on an 8×6
# map would feed 98,304 numbers into the dense layer (200 M weights); reduced to 256 channels, as many as
# DeepPose's AlexNet ends with, they feed 12,288.
VARIANTS = {
    "tiny": dict(backbone="tiny", hidden=256, reduce=0),
    "small": dict(backbone="small", hidden=512, reduce=0),
    "r18": dict(backbone="r18", hidden=1024, reduce=0),
    "r50": dict(backbone="r50", hidden=1024, reduce=256),
}
HEADS = ("flatten", "pool")


def sample_patches(images, centres, half: float, n: int):
    """Bilinear n×n patches of `images` (B, H, W, C) around `centres` (B, J, 2) input pixels (x, y).

    Each patch samples a square of side 2·`half` input pixels on an n×n grid; outside the image reads 0.
    Returns (B, J, n, n, C).
    """
    b, h, w, c = images.shape
    offs = (jnp.arange(n, dtype=jnp.float32) + 0.5) / n * 2 * half - half
    x = centres[..., 0][:, :, None, None] + offs[None, None, None, :]  # (B, J, 1, n)
    y = centres[..., 1][:, :, None, None] + offs[None, None, :, None]  # (B, J, n, 1)
    x, y = jnp.broadcast_to(x, y.shape[:3] + (n,)), jnp.broadcast_to(y, y.shape[:3] + (n,))
    x0, y0 = jnp.floor(x), jnp.floor(y)
    bi = jnp.arange(b)[:, None, None, None]
    out = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - jnp.abs(x - xi)) * (1 - jnp.abs(y - yi))
            ok = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            v = images[bi, jnp.clip(yi, 0, h - 1).astype(jnp.int32), jnp.clip(xi, 0, w - 1).astype(jnp.int32)]
            out = out + (wgt * ok)[..., None] * v
    return out


class CascadeStage(nnx.Module):
    """One DeepPose refinement stage: per joint, an n×n crop around the estimate → a displacement.

    (images (B, H, W, 3), coords (B, J, 2) normalized) → refined coords (B, J, 2). The crop covers a square
    of side `box` × the input's larger side; the displacement is predicted in units of that box.
    """

    def __init__(self, num_joints: int, input_size, *, box: float = 0.25, patch: int = 16, width: int = 32,
                 rngs: nnx.Rngs):  # fmt: skip
        self.convs = nnx.List([ConvBN(3, width, 3, 2, rngs=rngs), ConvBN(width, 2 * width, 3, 2, rngs=rngs)])
        self.hidden = nnx.Linear(2 * width * (patch // 4) ** 2, 128, kernel_init=fan_in_normal, rngs=rngs)
        self.out = nnx.Linear(128, 2 * num_joints, kernel_init=jax.nn.initializers.zeros, rngs=rngs)
        self.input_size = tuple(input_size)  # (H, W)
        self.box, self.patch, self.num_joints = box, patch, num_joints

    def __call__(self, images, coords, train: bool = False):
        h, w = self.input_size
        b, j = coords.shape[:2]
        side = self.box * max(h, w)
        px = jax.lax.stop_gradient(coords) * jnp.array([w, h], jnp.float32) - 0.5  # input pixels
        x = sample_patches(images, px, side / 2, self.patch).reshape(b * j, self.patch, self.patch, -1)
        for layer in self.convs:
            x = layer(x, train)
        d = self.out(jax.nn.relu(self.hidden(x.reshape(b * j, -1)))).reshape(b, j, self.num_joints, 2)
        d = d[:, jnp.arange(j), jnp.arange(j)]  # joint j reads its own displacement: (B, J, 2)
        return jax.lax.stop_gradient(coords) + d * side / jnp.array([w, h], jnp.float32)


class RegressionPose(nnx.Module):
    """(B, H, W, 3) → `PoseOutput(coords=(B, J, 2))`, joint coordinates normalized to the input.

    Used in chapters 2 and 3. head: "flatten" (DeepPose: the whole (h, w, C) feature map into the dense
    layers; needs `input_size` (H, W) to size them) or "pool" (global average pooling, an ablation).
    cascade: add one `CascadeStage`; then `coords` is the refined estimate and `coarse_coords` the first.
    Any VARIANTS entry can be overridden by keyword (e.g. `hidden=0`).
    """

    def __init__(self, variant: str = "tiny", num_joints: int = 17, *, head: str = "flatten", input_size=(64, 64),
                 cascade: bool = False, rngs: nnx.Rngs, **overrides):  # fmt: skip
        if variant not in VARIANTS:
            raise ValueError(f"RegressionPose: variant must be one of {list(VARIANTS)}, got {variant!r}")
        if head not in HEADS:
            raise ValueError(f"RegressionPose: head must be one of {HEADS}, got {head!r}")
        cfg = {**VARIANTS[variant], **overrides}
        bb = cfg["backbone"]
        self.backbone = Backbone(**(BACKBONES[bb] if isinstance(bb, str) else bb), rngs=rngs)
        c = self.backbone.out_channels
        self.reduce = ConvBN(c, cfg["reduce"], 1, rngs=rngs) if cfg["reduce"] and head == "flatten" else None
        c = cfg["reduce"] if self.reduce is not None else c
        s = self.backbone.stride
        h, w = input_hw(input_size)
        if head == "flatten" and (h % s or w % s):
            raise ValueError(f"RegressionPose: input_size {(h, w)} must be a multiple of the stride {s}")
        n_in = c * (h // s) * (w // s) if head == "flatten" else c
        self.hidden = nnx.Linear(n_in, cfg["hidden"], kernel_init=fan_in_normal, rngs=rngs) if cfg["hidden"] else None
        self.out = nnx.Linear(cfg["hidden"] or n_in, 2 * num_joints, kernel_init=fan_in_normal, rngs=rngs)
        self.cascade = CascadeStage(num_joints, (h, w), rngs=rngs) if cascade else None
        self.head, self.num_joints = head, num_joints

    def head_vector(self, f, train: bool = False):
        """Backbone features (B, h, w, C) → the vector the dense layers read: flattened or pooled (B, D)."""
        if self.reduce is not None:
            f = self.reduce(f, train)
        return f.reshape(f.shape[0], -1) if self.head == "flatten" else f.mean(axis=(1, 2))

    def vector_to_coords(self, v):
        """The dense layers: (B, D) → normalized coords (B, J, 2)."""
        v = jax.nn.relu(self.hidden(v)) if self.hidden is not None else v
        return self.out(v).reshape(v.shape[0], self.num_joints, 2)

    def features_to_coords(self, f, train: bool = False):
        """The head alone: backbone features (B, h, w, C) → normalized coords (B, J, 2)."""
        return self.vector_to_coords(self.head_vector(f, train))

    def __call__(self, x, train: bool = False, return_features: bool = False):
        """Returns a PoseOutput with coords (B, J, 2), or (output, features dict) with return_features=True."""
        feats = {} if return_features else None
        v = self.head_vector(self.backbone(x, train, feats), train)
        coords = self.vector_to_coords(v)
        out = PoseOutput(coords=coords)
        if self.cascade is not None:
            out = PoseOutput(coords=self.cascade(x, coords, train), coarse_coords=coords)
        if return_features:
            feats["flat" if self.head == "flatten" else "pooled"] = v
            feats["coords"] = out.coords
            return out, feats
        return out
