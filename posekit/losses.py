"""Every training loss of the book: heatmaps (MSE, spatial cross-entropy), coordinates (L1, L2), SimCC, the person
detector (CenterNet's focal and L1 terms) and the bottom-up model (heatmaps + associative-embedding tags).

Layouts: models output heatmaps as (B, h, w, J) (NHWC, see `posekit.models.output.PoseOutput`); the targets of
`posekit.codecs.heatmap_targets` are (B, J, h, w); weights are (B, J), 0 for unlabelled joints (zero loss).
`heatmap_loss(output, ...)` picks the loss the model's `heatmap_kind` calls for, so a caller never says it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from posekit.models.output import DetectionOutput, PoseOutput


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


SIZE_WEIGHT = 0.1  # CenterNet's λ_size; the offset loss has weight 1


def focal_loss(logits, heat, ignore=None, alpha: float = 2.0, beta: float = 4.0):
    """CenterNet's penalty-reduced pixel-wise focal loss, summed over cells and divided by the positives.

    logits (B, h, w) before the sigmoid; heat (B, h, w) the Gaussian target (1 at centres). A centre cell
    costs −(1 − p)^α log p; any other cell −(1 − Y)^β p^α log(1 − p): near a centre (Y close to 1) a high p
    is barely penalized. ignore (B, h, w): cells left out (crowd regions). The sum over the batch is divided
    by the number of centres in the batch (at least 1), as in the paper.
    """
    logp, log1mp = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    p = jnp.exp(logp)
    pos = (heat >= 1.0).astype(logits.dtype)
    keep = 1.0 if ignore is None else 1.0 - ignore
    pos_loss = -((1 - p) ** alpha) * logp * pos
    neg_loss = -((1 - heat) ** beta) * p**alpha * log1mp * (1 - pos) * keep
    return (pos_loss.sum() + neg_loss.sum()) / jnp.maximum(pos.sum(), 1.0)


def detection_loss(out: DetectionOutput, batch: dict):
    """The CenterNet loss: focal(centres) + 0.1 · L1(sizes) + L1(offsets), the L1 terms at centre cells only.

    batch: "heat" (B, h, w), "size" (B, h, w, 2), "offset" (B, h, w, 2), "mask" (B, h, w), "ignore" (B, h, w)
    as `posekit.detection.center_targets` makes them. Returns (loss, {"focal", "size", "offset"}).
    """
    focal = focal_loss(out.center_logits[..., 0], batch["heat"], batch["ignore"])
    m = batch["mask"][..., None]
    n = jnp.maximum(batch["mask"].sum(), 1.0)
    size = (jnp.abs(out.sizes - batch["size"]) * m).sum() / n
    offset = (jnp.abs(out.offsets - batch["offset"]) * m).sum() / n
    return focal + SIZE_WEIGHT * size + offset, {"focal": focal, "size": size, "offset": offset}


# Tag-loss weights (push, pull). HigherHRNet (MSE heatmaps, a mean over cells, so tiny): 1e-3 each. With the
# focal loss (a sum over cells divided by the joints) CornerNet weighs the same embedding loss 0.1 each. Measured
# here (HRNet-lite, 1/4 only, batch 16, 600 steps on the training scenes, tags read on the quick validation
# scenes): at (0.1, 0.1) pull wins early, every tag becomes the same and no pair of people is a tag threshold
# apart (push has no gradient at equal tags); at (1, 0.1) 68% of the pairs are apart and 91% of the joints lie
# within the threshold of their person's mean, with the same heatmap loss (1.5). At (1, 1) the heatmaps learned
# more slowly (2.2 after 900 steps).
TAG_WEIGHT = {"mse": (1e-3, 1e-3), "focal": (1.0, 0.1)}
BOTTOMUP_HEATMAP_LOSSES = tuple(TAG_WEIGHT)  # "mse" (HigherHRNet) or "focal" (CenterNet)


def _heatmap_term(pred, target, mask, kind: str):
    """One resolution's heatmap loss: pred, target (B, h, w, J); mask (B, h, w), 0 where the loss is off."""
    if kind == "mse":  # HigherHRNet's HeatmapLoss: the masked squared error, averaged over cells and joints
        return ((pred - target) ** 2 * mask[..., None]).mean()
    b, h, w, J = pred.shape  # the focal loss, one map per joint type, positives counted over the batch
    to_maps = lambda a: jnp.moveaxis(a, -1, 1).reshape(b * J, h, w)  # noqa: E731
    ignore = jnp.repeat(1.0 - mask[:, None], J, 1).reshape(b * J, h, w)
    return focal_loss(to_maps(pred), to_maps(target), ignore)


def bottomup_loss(out: PoseOutput, batch: dict, heatmap_loss: str = "focal", tag_weight: float | None = None):
    """The bottom-up training loss: heatmaps (at 1/4, and at 1/2 when the model has that head) + tags at 1/4.

    heatmap_loss: "mse" (HigherHRNet: Gaussian maps regressed, `heatmap_kind` "gaussian") or "focal"
    (CenterNet's penalty-reduced focal loss on logits: faster to train at a small budget). The tag loss is
    w_push · push + w_pull · pull, `tag_weight` = (w_push, w_pull) or one weight for both (default
    `TAG_WEIGHT[heatmap_loss]`).
    batch: as `scenes.bottomup_batches` makes it. Returns (loss, {"heat", "heat_half", "push", "pull"}).
    """
    if heatmap_loss not in BOTTOMUP_HEATMAP_LOSSES:
        raise ValueError(f"bottomup_loss: heatmap_loss must be one of {BOTTOMUP_HEATMAP_LOSSES}, got {heatmap_loss!r}")
    tw = TAG_WEIGHT[heatmap_loss] if tag_weight is None else tag_weight
    w_push, w_pull = (tw, tw) if np.ndim(tw) == 0 else tw
    heat = _heatmap_term(out.heatmaps, batch["heat"], batch["mask"], heatmap_loss)
    half = jnp.zeros(())
    if out.heatmaps_half is not None:
        half = _heatmap_term(out.heatmaps_half, batch["heat_half"], batch["mask_half"], heatmap_loss)
    if out.tags.shape[-1] != batch["joints"].shape[2]:
        raise ValueError(f"bottomup_loss: the tag loss takes 1-D tags, one per joint; the model outputs "
                         f"{out.tags.shape[-1]} tag channels for {batch['joints'].shape[2]} joints")  # fmt: skip
    push, pull = ae_loss(out.tags, batch["joints"])
    return heat + half + w_push * push + w_pull * pull, {"heat": heat, "heat_half": half, "push": push, "pull": pull}
