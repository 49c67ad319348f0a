"""What every model returns: a `PoseOutput`, so losses, decoders and inference read the model's own word.

    out = model(images)            # a PoseOutput
    out.heatmaps                   # (B, h, w, J) or None
    out.coords                     # (B, J, 2) or None
    out.heatmap_kind               # "logits" or "gaussian": how to turn the maps into a decision

A heatmap model states what its maps mean:

* ``"logits"``: spatial logits; a softmax over each map's h·w cells is a probability distribution of the
  joint's position (trained with `posekit.losses.heatmap_ce_loss`);
* ``"gaussian"``: each map regresses a Gaussian bump of peak 1 at the joint (SimpleBaseline's target,
  trained with `posekit.losses.heatmap_mse_loss`).

A regression model returns ``coords`` in coordinates normalized to the input, t = (x + ½) / W (see
`posekit.codecs.regression_targets`); a cascade (DeepPose) also returns its first stage's estimate as
``coarse_coords``; integral regression returns both its logit ``heatmaps`` and the ``coords`` taken from
them (the coordinates are what it is trained on and decoded from). SimCC returns ``simcc_x`` (B, J, W·k)
and ``simcc_y`` (B, J, H·k): per-axis logits over bins of 1/k input pixel (`posekit.codecs.simcc_targets`).
Later models add their own fields (``tags`` for associative embedding) the same way; the person detector of
chapter 4 returns its own `DetectionOutput` (centre logits, box sizes, offsets). A `PoseOutput` is a JAX
pytree: it passes through `jax.jit` and `jax.tree.map` (the static fields ride along in the tree structure).
"""

from __future__ import annotations

from typing import Any

from flax import struct

HEATMAP_KINDS = ("logits", "gaussian")


@struct.dataclass
class PoseOutput:
    """A model's output. Array fields may be None; `heatmap_kind` and `output_stride` are static."""

    heatmaps: Any = None  # (B, h, w, J), NHWC as the convolutions produce them
    coords: Any = None  # (B, J, 2) normalized to the input
    coarse_coords: Any = None  # (B, J, 2) a cascade's first-stage estimate, or None
    simcc_x: Any = None  # (B, J, W·k) SimCC logits over x bins
    simcc_y: Any = None  # (B, J, H·k) SimCC logits over y bins
    tags: Any = None  # (B, h, w, J·D) associative-embedding tags, D per joint, beside the heatmaps
    heatmaps_half: Any = None  # (B, 2h, 2w, J) HigherHRNet's heatmaps at stride output_stride / 2
    heatmap_kind: str = struct.field(pytree_node=False, default="")
    output_stride: int = struct.field(pytree_node=False, default=0)
    simcc_split: float = struct.field(pytree_node=False, default=0.0)  # SimCC bins per input pixel

    def __post_init__(self):
        if self.heatmaps is not None and self.heatmap_kind not in HEATMAP_KINDS:
            raise ValueError(f"PoseOutput: heatmap_kind must be one of {HEATMAP_KINDS}, got {self.heatmap_kind!r}")


def check_heatmap_kind(owner: str, kind: str) -> str:
    """`kind` if it is one of HEATMAP_KINDS, else a ValueError naming the model."""
    if kind not in HEATMAP_KINDS:
        raise ValueError(f"{owner}: heatmap_kind must be one of {HEATMAP_KINDS}, got {kind!r}")
    return kind


@struct.dataclass
class DetectionOutput:
    """What a CenterNet-style detector returns: three maps at `output_stride` (NHWC).

    center_logits (B, h, w, 1): logits of the person-centre heatmap (a sigmoid gives each cell's
    probability of holding a box centre); sizes (B, h, w, 2): box width and height in map cells;
    offsets (B, h, w, 2): the sub-cell offset of the centre, x and y in [0, 1) (`posekit.detection`
    encodes the targets and decodes boxes).
    """

    center_logits: Any = None
    sizes: Any = None
    offsets: Any = None
    output_stride: int = struct.field(pytree_node=False, default=4)
