"""DeepPose-style regression (Toshev & Szegedy 2014): backbone → global average pooling → dense → J×2.

The output is one (x, y) per joint in coordinates normalized to the crop (see `posekit.codecs.regression_targets`).
Global average pooling turns the (h, w, C) feature map into a C-vector: where a feature fired is lost, and
the dense layer must rebuild coordinates from *what* fired. Chapter 3 measures what that costs.
"""

from __future__ import annotations

import jax
from flax import nnx

from posekit.models.layers import BACKBONES, Backbone, fan_in_normal
from posekit.models.output import PoseOutput

# variant → backbone (shared with SimpleBaseline) and the hidden width of the dense head (0: none)
VARIANTS = {
    "tiny": dict(backbone="tiny", hidden=256),
    "small": dict(backbone="small", hidden=512),
    "r18": dict(backbone="r18", hidden=1024),
}


class RegressionPose(nnx.Module):
    """(B, H, W, 3) → `PoseOutput(coords=(B, J, 2))`, joint coordinates normalized to the input.

    Used in chapters 2 and 3. Build with `RegressionPose("tiny", num_joints=17, rngs=nnx.Rngs(0))`; any VARIANTS
    entry can be overridden by keyword (e.g. `hidden=0`).
    """

    def __init__(self, variant: str = "tiny", num_joints: int = 17, *, rngs: nnx.Rngs, **overrides):
        if variant not in VARIANTS:
            raise ValueError(f"RegressionPose: variant must be one of {list(VARIANTS)}, got {variant!r}")
        cfg = {**VARIANTS[variant], **overrides}
        bb = cfg["backbone"]
        self.backbone = Backbone(**(BACKBONES[bb] if isinstance(bb, str) else bb), rngs=rngs)
        c = self.backbone.out_channels
        self.hidden = nnx.Linear(c, cfg["hidden"], kernel_init=fan_in_normal, rngs=rngs) if cfg["hidden"] else None
        self.out = nnx.Linear(cfg["hidden"] or c, 2 * num_joints, kernel_init=fan_in_normal, rngs=rngs)
        self.num_joints = num_joints

    def __call__(self, x, train: bool = False, return_features: bool = False):
        """Returns a PoseOutput with coords (B, J, 2), or (output, features dict) with return_features=True."""
        feats = {} if return_features else None
        f = self.backbone(x, train, feats)
        pooled = f.mean(axis=(1, 2))  # global average pooling: (B, h, w, C) → (B, C)
        h = jax.nn.relu(self.hidden(pooled)) if self.hidden is not None else pooled
        coords = self.out(h).reshape(x.shape[0], self.num_joints, 2)
        out = PoseOutput(coords=coords)
        if return_features:
            feats["pooled"] = pooled
            feats["coords"] = coords
            return out, feats
        return out
