"""Integral regression (Sun et al., "Integral Human Pose Regression", ECCV 2018).

A heatmap network whose maps are never compared with a target map: each joint's logit map is turned into a
probability distribution over its cells (a softmax), and the joint's coordinate is the *expected* position
under it (the soft-argmax, `posekit.codecs.soft_argmax`). The coordinate is differentiable, so the model
trains with a coordinate loss (L1 in the paper) like a regression model, while its layers keep the image
layout like a heatmap model. Here the network is SimpleBaseline's (the same backbone and upsampling head).
"""

from __future__ import annotations

import jax.numpy as jnp

from posekit import codecs
from posekit.models.simplebaseline import SimpleBaseline


class IntegralPose(SimpleBaseline):
    """(B, H, W, 3) → `PoseOutput(heatmaps=(B, h, w, J) logits, coords=(B, J, 2))`. Used in chapter 3.

    `coords` are normalized to the input like a regression model's: the expected cell (u, v) maps to
    t = (u + ½) / w, the centre of cell u (heatmap cells tile the input exactly). Build and configure as
    `SimpleBaseline` (`IntegralPose("tiny", rngs=nnx.Rngs(0))`); the maps are always logits.
    """

    def __init__(self, variant: str = "tiny", num_joints: int = 17, *, rngs, **kwargs):
        if kwargs.get("heatmap_kind", "logits") != "logits":
            raise ValueError("IntegralPose: the maps are logits (a softmax makes them a distribution)")
        super().__init__(variant, num_joints, heatmap_kind="logits", rngs=rngs, **kwargs)

    def __call__(self, x, train: bool = False, return_features: bool = False):
        res = super().__call__(x, train, return_features)
        out, feats = res if return_features else (res, None)
        hm = jnp.transpose(out.heatmaps, (0, 3, 1, 2))  # (B, J, h, w)
        h, w = hm.shape[2:]
        cells = codecs.soft_argmax(hm)  # expected (u, v) in heatmap cells
        out = out.replace(coords=(cells + 0.5) / jnp.array([w, h], jnp.float32))
        if return_features:
            feats["coords"] = out.coords
            return out, feats
        return out
