"""Pose models in Flax NNX, one file per family (big_vision style: a VARIANTS table, built by calling the class).

  regression      RegressionPose: backbone → global average pooling → dense → (B, J, 2)   (DeepPose-style)
  simplebaseline  SimpleBaseline: backbone → ×2 upsamplings → 1×1 conv → (B, h, w, J)     (Xiao et al. 2018)
  hrnet           HRNet: parallel multi-resolution branches with repeated fusion → (B, h, w, J) (Sun et al. 2019)
  layers          ConvBN, BasicBlock, Backbone (shared), Upsample, param_count, flops, feature_shapes

Every model takes (B, H, W, 3) float32 images and `train: bool`; `return_features=True` also returns a dict of
named intermediate activations for drawing.
"""

from posekit.models.hrnet import HRNet
from posekit.models.layers import BACKBONES, Backbone, feature_shapes, flops, param_count
from posekit.models.regression import RegressionPose
from posekit.models.simplebaseline import SimpleBaseline

__all__ = [
    "BACKBONES",
    "Backbone",
    "HRNet",
    "RegressionPose",
    "SimpleBaseline",
    "feature_shapes",
    "flops",
    "param_count",
]
