"""SimpleBaseline-style heatmap model (Xiao et al., ECCV 2018): ResNet backbone → upsampling head → 1×1 conv.

The original head is three 4×4 stride-2 transposed convolutions of 256 channels. `head="deconv"` builds that
(computed in its sub-pixel form, which XLA:CPU trains several times faster than `lax.conv_transpose`);
`head="pixelshuffle"` (3×3 conv to 4C + depth-to-space, the CPU profiles' head) and `head="resize"` (nearest ×2
+ 3×3 conv) compute the same kind of ×2 learned upsampling (see `posekit.models.layers.Upsample`).
Heatmaps come out at `output_stride` 4 (a 64×64 input gives 16×16 maps), as (B, h, w, J).
"""

from __future__ import annotations

from flax import nnx

from posekit.models.layers import BACKBONES, Backbone, Upsample, conv, num_upsamplings
from posekit.models.output import PoseOutput, check_heatmap_kind

# variant → backbone (shared with RegressionPose) and head width
VARIANTS = {
    "tiny": dict(backbone="tiny", head_width=64),
    "small": dict(backbone="small", head_width=128),
    "r18": dict(backbone="r18", head_width=256),
    "r50": dict(backbone="r50", head_width=256),  # the paper's SimpleBaseline-R50 (full profile, head="deconv")
}


class SimpleBaseline(nnx.Module):
    """(B, H, W, 3) → `PoseOutput(heatmaps=(B, H/4, W/4, J))`.

    Used in chapter 3. Build with `SimpleBaseline("tiny", num_joints=17, head="pixelshuffle", rngs=nnx.Rngs(0))`;
    `heatmap_kind` says what the maps are trained to be ("logits" or "gaussian", see `posekit.models.output`).
    """

    def __init__(
        self,
        variant: str = "tiny",
        num_joints: int = 17,
        head: str = "pixelshuffle",
        output_stride: int = 4,
        heatmap_kind: str = "logits",
        *,
        rngs: nnx.Rngs,
        **overrides,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"SimpleBaseline: variant must be one of {list(VARIANTS)}, got {variant!r}")
        cfg = {**VARIANTS[variant], **overrides}
        bb = cfg["backbone"]
        self.backbone = Backbone(**(BACKBONES[bb] if isinstance(bb, str) else bb), rngs=rngs)
        n = num_upsamplings(self.backbone.stride, output_stride)
        cin, ups = self.backbone.out_channels, []
        for _ in range(n):
            ups.append(Upsample(cin, cfg["head_width"], head, rngs=rngs))
            cin = cfg["head_width"]
        self.ups = nnx.List(ups)
        self.final = conv(cin, num_joints, 1, bias=True, rngs=rngs)
        self.head = head
        self.output_stride = output_stride
        self.heatmap_kind = check_heatmap_kind("SimpleBaseline", heatmap_kind)

    def __call__(self, x, train: bool = False, return_features: bool = False):
        """Returns a PoseOutput with heatmaps (B, h, w, J), or (output, features dict) with return_features=True."""
        feats = {} if return_features else None
        y = self.backbone(x, train, feats)
        for i, up in enumerate(self.ups):
            y = up(y, train)
            if return_features:
                feats[f"up{i + 1}"] = y
        heatmaps = self.final(y)
        out = PoseOutput(heatmaps=heatmaps, heatmap_kind=self.heatmap_kind, output_stride=self.output_stride)
        if return_features:
            feats["heatmaps"] = heatmaps
            return out, feats
        return out
