"""Bottom-up models: Associative Embedding on an HRNet, and HigherHRNet's higher-resolution head.

Associative Embedding (Newell et al. 2017) adds to every joint's heatmap a *tag* map: one embedding per cell,
trained (`posekit.losses.ae_loss`) so that the joints of one person carry similar tags and different people
different ones; `posekit.grouping.group` then turns maps and tags into people. HigherHRNet (Cheng et al. 2020)
puts this on an HRNet, whose final 1×1 conv outputs the J heatmaps and the J·D tags at stride 4, and adds a
head at stride 2 for small people: the stride-4 features concatenated with the stride-4 outputs, upsampled ×2
(here by pixel shuffle, CPU-friendly; the paper uses a 4×4 transposed convolution), refined by residual blocks
and read out as J heatmaps. The maps are Gaussian maps (heatmap_kind "gaussian") as in both papers: several
people share one map, so a softmax over the cells does not fit.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from posekit.models.hrnet import VARIANTS as HRNET_VARIANTS
from posekit.models.hrnet import HRNet
from posekit.models.layers import BasicBlock, Upsample, conv
from posekit.models.output import PoseOutput

# variant → HRNet variant and the residual blocks of the 1/2-resolution head (HigherHRNet-W32 uses 4)
VARIANTS = {"lite": dict(hrnet="lite", refine_blocks=1), "w32": dict(hrnet="w32", refine_blocks=4)}


class AssociativeEmbedding(nnx.Module):
    """(B, H, W, 3) → `PoseOutput(heatmaps (B, H/4, W/4, J), tags (B, H/4, W/4, J·D)[, heatmaps_half])`.

    Build with `AssociativeEmbedding("lite", higher=True, rngs=nnx.Rngs(0))`: `higher` adds HigherHRNet's
    stride-2 heatmaps (`heatmaps_half`, (B, H/2, W/2, J)); `tag_dim` is D (1 in both papers). `heatmap_prior`:
    for maps trained through a sigmoid (a focal loss), the heatmap biases start at sigmoid⁻¹(prior), as
    CenterNet starts its centre map at 0.1, so that training does not begin with every cell a joint. The
    maps are then logits, not Gaussian values; `posekit.bottom_up` reads them accordingly. Used in chapter 5.
    """

    def __init__(self, variant: str = "lite", num_joints: int = 17, higher: bool = False, tag_dim: int = 1,
                 heatmap_prior: float | None = None, *, rngs: nnx.Rngs):  # fmt: skip
        if variant not in VARIANTS:
            raise ValueError(f"AssociativeEmbedding: variant must be one of {list(VARIANTS)}, got {variant!r}")
        cfg = VARIANTS[variant]
        self.num_joints, self.tag_dim, self.higher = num_joints, tag_dim, higher
        self.hrnet = HRNet(cfg["hrnet"], num_joints * (1 + tag_dim), heatmap_kind="gaussian", rngs=rngs)
        self.last_stage = f"stage{len(HRNET_VARIANTS[cfg['hrnet']]['modules']) + 1}_branch1"
        if higher:
            width = HRNET_VARIANTS[cfg["hrnet"]]["widths"][0]
            self.up = Upsample(width + num_joints * (1 + tag_dim), width, "pixelshuffle", rngs=rngs)
            self.refine = nnx.List([BasicBlock(width, width, rngs=rngs) for _ in range(cfg["refine_blocks"])])
            self.final_half = conv(width, num_joints, 1, bias=True, rngs=rngs)
        # the heatmap outputs start near zero (std 0.001, as HRNet's and HigherHRNet's code initializes them): at
        # the default scale the first maps are large, the first losses huge, and training stalls on flat maps.
        # The tag outputs keep the default scale: equal tags are a saddle point of the push loss (zero gradient)
        for f in [self.hrnet.final] + ([self.final_half] if higher else []):
            k = f.kernel[...]
            f.kernel[...] = k.at[..., :num_joints].set(k[..., :num_joints] * (0.001 / float(jnp.std(k))))
        if heatmap_prior is not None:  # maps read through a sigmoid start at this probability (CenterNet: 0.1)
            logit = math.log(heatmap_prior / (1 - heatmap_prior))
            finals = [self.hrnet.final] + ([self.final_half] if higher else [])
            for f in finals:
                f.bias[...] = f.bias[...].at[:num_joints].set(logit)

    def __call__(self, x, train: bool = False) -> PoseOutput:
        import jax.numpy as jnp

        out, feats = self.hrnet(x, train, return_features=True)
        maps = out.heatmaps
        J = self.num_joints
        half = None
        if self.higher:
            y = self.up(jnp.concatenate([feats[self.last_stage], maps], -1), train)
            for block in self.refine:
                y = block(y, train)
            half = self.final_half(y)
        return PoseOutput(heatmaps=maps[..., :J], tags=maps[..., J:], heatmaps_half=half, heatmap_kind="gaussian",
                          output_stride=4)  # fmt: skip
