"""SimCC (Li et al., "SimCC: a Simple Coordinate Classification Perspective for Human Pose Estimation", ECCV 2022).

Each coordinate is classified instead of regressed: the x axis of the input is cut into W·k bins (k, the
split ratio, ≥ 1 gives sub-pixel bins) and the y axis into H·k, and the model outputs, per joint, one logit
vector per axis. The head follows the paper and mmpose's SimCCHead: a 1×1 convolution of the backbone's
last feature map to J channels, each joint's (h, w) map flattened to an h·w vector, and two linear layers
to the W·k x-logits and H·k y-logits. No upsampling, no 2-D heatmap. Targets are Gaussian-smoothed labels
over the bins (`posekit.codecs.simcc_targets`); the loss is a cross-entropy per axis (`posekit.losses.simcc_loss`).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from posekit.codecs import input_hw
from posekit.models.layers import BACKBONES, Backbone, conv, fan_in_normal
from posekit.models.output import PoseOutput

VARIANTS = {
    "tiny": dict(backbone="tiny"),
    "small": dict(backbone="small"),
    "r18": dict(backbone="r18"),
    "r50": dict(backbone="r50"),
}


class SimCCPose(nnx.Module):
    """(B, H, W, 3) → `PoseOutput(simcc_x=(B, J, W·k), simcc_y=(B, J, H·k))` logits. Used in chapter 3.

    Build with `SimCCPose("tiny", input_size=(64, 64), split=2.0, rngs=nnx.Rngs(0))`; `input_size` is (H, W)
    and sizes the linear layers. Decode with `posekit.codecs.decode_simcc` (`predict_keypoints` does).
    """

    def __init__(self, variant: str = "tiny", num_joints: int = 17, *, input_size=(64, 64), split: float = 2.0,
                 rngs: nnx.Rngs, **overrides):  # fmt: skip
        if variant not in VARIANTS:
            raise ValueError(f"SimCCPose: variant must be one of {list(VARIANTS)}, got {variant!r}")
        if split < 1:
            raise ValueError(f"SimCCPose: split must be >= 1, got {split!r}")
        cfg = {**VARIANTS[variant], **overrides}
        bb = cfg["backbone"]
        self.backbone = Backbone(**(BACKBONES[bb] if isinstance(bb, str) else bb), rngs=rngs)
        h, w = input_hw(input_size)
        s = self.backbone.stride
        if h % s or w % s:
            raise ValueError(f"SimCCPose: input_size {(h, w)} must be a multiple of the stride {s}")
        self.final = conv(self.backbone.out_channels, num_joints, 1, bias=True, rngs=rngs)
        n = (h // s) * (w // s)
        self.mlp_x = nnx.Linear(n, int(round(w * split)), kernel_init=fan_in_normal, rngs=rngs)
        self.mlp_y = nnx.Linear(n, int(round(h * split)), kernel_init=fan_in_normal, rngs=rngs)
        self.split = float(split)

    def __call__(self, x, train: bool = False, return_features: bool = False):
        """Returns a PoseOutput with simcc_x, simcc_y, or (output, features dict) with return_features=True."""
        feats = {} if return_features else None
        f = self.final(self.backbone(x, train, feats))  # (B, h, w, J)
        v = jnp.transpose(f, (0, 3, 1, 2)).reshape(f.shape[0], f.shape[3], -1)  # (B, J, h·w)
        out = PoseOutput(simcc_x=self.mlp_x(v), simcc_y=self.mlp_y(v), simcc_split=self.split)
        if return_features:
            feats["joint_vectors"] = v
            feats["simcc_x"], feats["simcc_y"] = out.simcc_x, out.simcc_y
            return out, feats
        return out
