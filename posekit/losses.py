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


def ae_loss(tags, joints):
    """Associative-embedding loss (Newell et al. 2017), normalized as HigherHRNet's reference `AELoss`.

    tags (B, h, w, J): one tag per joint type and cell (1-D embeddings); joints (B, P, J, 3): each of up to P
    people's joints as x, y (integer heatmap cells) and a weight (> 0 where the joint is labelled and inside
    the map; padded people have weight 0 everywhere). For each image, with t̄_n the mean tag of person n over
    their labelled joints and N the people with at least one:

      pull = (1/N) Σ_n mean_k (t_nk − t̄_n)²                     (a person's tags toward their mean)
      push = 1/(2N(N − 1)) · (Σ_n Σ_m exp(−(t̄_n − t̄_m)²) − N)   (different people's means apart)

    The double sum runs over all ordered pairs including n = m, whose N terms are each exp(0) = 1; the "− N"
    removes them, leaving each unordered pair twice, hence the ½. An image with fewer than two people has no
    push. Returns (push, pull), each the mean over the batch.
    """
    b, h, w, J = tags.shape
    x = jnp.clip(joints[..., 0].astype(jnp.int32), 0, w - 1)
    y = jnp.clip(joints[..., 1].astype(jnp.int32), 0, h - 1)
    m = (joints[..., 2] > 0).astype(tags.dtype)  # (B, P, J)
    t = tags[jnp.arange(b)[:, None, None], y, x, jnp.arange(J)[None, None, :]]  # (B, P, J)
    count = m.sum(-1)
    present = (count > 0).astype(tags.dtype)
    mean = (t * m).sum(-1) / jnp.maximum(count, 1.0)  # (B, P)
    pull_n = ((t - mean[..., None]) ** 2 * m).sum(-1) / jnp.maximum(count, 1.0)
    n = present.sum(-1)
    pull = (pull_n * present).sum(-1) / jnp.maximum(n, 1.0)
    pair = present[:, :, None] * present[:, None, :]
    e = jnp.exp(-((mean[:, :, None] - mean[:, None, :]) ** 2)) * pair
    push = jnp.where(n > 1, (e.sum((1, 2)) - n) / jnp.maximum(n * (n - 1), 1.0) * 0.5, 0.0)
    return push.mean(), pull.mean()
