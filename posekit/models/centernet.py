"""A CenterNet-style person detector (Zhou et al. 2019, "Objects as Points") in Flax NNX.

A box is a point: the detector predicts a heatmap of person centres, and at each centre the box's width and
height and the centre's sub-cell offset. The network is SimpleBaseline's (the shared `Backbone`, ×2
upsamplings to output stride 4) ending in a head of 5 channels instead of joint maps: 1 centre logit, 2 sizes,
2 offsets. CenterNet gives each of its three outputs its own 3×3 conv + ReLU + 1×1 conv; here the three share
the 3×3 layer (half as wide as the upsampling layers), which makes the detector 1.6× faster to train on a
CPU. Targets, the focal loss and decoding (3×3 max-pool peaks, top-K) are in `posekit.detection`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from posekit.models.layers import BACKBONES, Backbone, Upsample, conv, num_upsamplings
from posekit.models.output import DetectionOutput

# variant → backbone (shared with the pose models), width of the upsampling layers (the head is half as wide)
VARIANTS = {
    "tiny": dict(backbone="tiny", head_width=64),
    "small": dict(backbone="small", head_width=128),
    "r18": dict(backbone="r18", head_width=256),  # CenterNet's ResNet-18 (full profile)
}
CENTER_PRIOR = 0.1  # the centre head starts at sigmoid⁻¹(0.1): CenterNet's bias of −2.19


class Head(nnx.Module):
    """3×3 conv + ReLU + 1×1 conv: CenterNet's output head. (B, h, w, cin) → (B, h, w, cout).

    `bias_init` (cout,) starts the output's biases (the centre channel at sigmoid⁻¹(CENTER_PRIOR)).
    """

    def __init__(self, cin: int, width: int, cout: int, bias_init=0.0, *, rngs: nnx.Rngs):
        self.hidden = conv(cin, width, 3, bias=True, rngs=rngs)
        self.out = conv(width, cout, 1, bias=True, rngs=rngs)
        self.out.bias[...] = self.out.bias[...] + jnp.asarray(bias_init, jnp.float32)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))


class CenterNet(nnx.Module):
    """(B, H, W, 3) → `DetectionOutput` with maps of (B, H/4, W/4, ·). Used in chapter 4.

    Build with `CenterNet("tiny", rngs=nnx.Rngs(0))`. `head` is the upsampling layer kind of
    `posekit.models.layers.Upsample` ("pixelshuffle" by default, as the book's CPU runs train it; "deconv" for
    CenterNet's transposed convolutions).
    """

    def __init__(self, variant: str = "tiny", head: str = "pixelshuffle", output_stride: int = 4, *,
                 rngs: nnx.Rngs, **overrides):  # fmt: skip
        if variant not in VARIANTS:
            raise ValueError(f"CenterNet: variant must be one of {list(VARIANTS)}, got {variant!r}")
        cfg = {**VARIANTS[variant], **overrides}
        bb = cfg["backbone"]
        self.backbone = Backbone(**(BACKBONES[bb] if isinstance(bb, str) else bb), rngs=rngs)
        width = cfg["head_width"]
        cin, ups = self.backbone.out_channels, []
        for _ in range(num_upsamplings(self.backbone.stride, output_stride)):
            ups.append(Upsample(cin, width, head, rngs=rngs))
            cin = width
        self.ups = nnx.List(ups)
        prior = math.log(CENTER_PRIOR / (1 - CENTER_PRIOR))
        self.head = Head(cin, width // 2, 5, [prior, 0, 0, 0, 0], rngs=rngs)
        self.output_stride = output_stride

    def __call__(self, x, train: bool = False) -> DetectionOutput:
        y = self.backbone(x, train)
        for up in self.ups:
            y = up(y, train)
        y = self.head(y)
        return DetectionOutput(center_logits=y[..., :1], sizes=y[..., 1:3], offsets=y[..., 3:],
                               output_stride=self.output_stride)  # fmt: skip
