"""Every training loss of the book: heatmap losses (MSE, spatial cross-entropy) and coordinate losses.

Layouts: models output heatmaps as (B, h, w, J) (NHWC, see `posekit.models.output.PoseOutput`); the targets of
`posekit.codecs.heatmap_targets` are (B, J, h, w); weights are (B, J), 0 for unlabelled joints (zero loss).
`heatmap_loss(output, ...)` picks the loss the model's `heatmap_kind` calls for, so a caller never says it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from posekit.models.output import PoseOutput


def _codec_layout(name: str, pred, target):
    """NHWC model output (B, h, w, J) → the codecs' (B, J, h, w), checked against the target's shape."""
    pred = jnp.transpose(pred, (0, 3, 1, 2))
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred (as B,J,h,w) {pred.shape} does not match target {target.shape}")
    return pred


def heatmap_mse_loss(heatmaps, target, weights):
    """Weighted heatmap MSE (SimpleBaseline's JointsMSELoss): mean over (B, J) of w_j · mean_hw (P − T)².

    heatmaps: (B, h, w, J) as the models output them; target: (B, J, h, w); weights: (B, J).
    The loss of models whose `heatmap_kind` is "gaussian". Used in chapter 3.
    """
    pred = _codec_layout("heatmap_mse_loss", heatmaps, target)
    per_joint = ((pred - target) ** 2).mean(axis=(2, 3))
    return (per_joint * weights).mean()


def heatmap_ce_loss(heatmaps, target, weights):
    """Weighted spatial cross-entropy: each joint's map is a softmax over its h·w cells.

    The loss of Mask R-CNN's keypoint head (He et al. 2017), here with the Gaussian target normalized to sum
    to 1 instead of a one-hot cell: mean over (B, J) of w_j · (−Σ_hw T̃ log softmax(P)), T̃ = T / Σ_hw T.
    Unlike the MSE, every cell of the map gets a gradient that pushes probability towards the joint, so
    small models learn much faster. The loss of models whose `heatmap_kind` is "logits". Used in chapter 3.
    heatmaps: (B, h, w, J); target: (B, J, h, w); weights: (B, J).
    """
    pred = _codec_layout("heatmap_ce_loss", heatmaps, target)
    b, j, h, w = pred.shape
    return _soft_cross_entropy(pred.reshape(b, j, h * w), target.reshape(b, j, h * w), weights)


def _soft_cross_entropy(logits, target, weights):
    """mean over (B, J) of w · (−Σ T̃ log softmax(logits)) over the last axis, T̃ = T normalized to sum 1."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    t = target / jnp.maximum(target.sum(-1, keepdims=True), 1e-12)
    return (-(t * logp).sum(-1) * weights).mean()


def simcc_loss(output: PoseOutput, target_x, target_y, weights):
    """SimCC's loss: the cross-entropy of each axis' bin logits against the smoothed labels, summed over x and y.

    target_x (B, J, W·k), target_y (B, J, H·k), weights (B, J) from `posekit.codecs.simcc_targets`. With
    targets that sum to 1 this is the KL divergence of the paper up to a constant. Used in chapter 3.
    """
    if output.simcc_x is None:
        raise ValueError("simcc_loss: the model returned no SimCC vectors")
    return _soft_cross_entropy(output.simcc_x, target_x, weights) + _soft_cross_entropy(
        output.simcc_y, target_y, weights
    )


# the loss each kind of heatmap is trained with
HEATMAP_LOSSES = {"gaussian": heatmap_mse_loss, "logits": heatmap_ce_loss}


def heatmap_loss(output: PoseOutput, target, weights):
    """The heatmap loss `output.heatmap_kind` calls for: spatial cross-entropy for "logits", MSE for "gaussian"."""
    if output.heatmaps is None:
        raise ValueError("heatmap_loss: the model returned no heatmaps (a coordinate model? use regression_loss)")
    return HEATMAP_LOSSES[output.heatmap_kind](output.heatmaps, target, weights)


REGRESSION_LOSSES = ("l1", "l2")


def regression_loss(coords, target, weights, kind: str = "l1"):
    """Weighted coordinate loss: mean over (B, J) of w_j · |p − t|₁ (kind="l1") or ‖p − t‖² (kind="l2").

    coords, target: (B, J, 2) normalized coordinates; weights: (B, J). Used in chapter 2.
    """
    if kind not in REGRESSION_LOSSES:
        raise ValueError(f"regression_loss: kind must be one of {REGRESSION_LOSSES}, got {kind!r}")
    d = coords - target
    per_joint = jnp.abs(d).sum(-1) if kind == "l1" else (d**2).sum(-1)
    return (per_joint * weights).mean()
