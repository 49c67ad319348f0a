"""Pose models in Flax NNX, one file per family (big_vision style: a VARIANTS table, built by calling the class).

  output          PoseOutput: what every model returns (heatmaps and/or coords, and what the maps mean)
  regression      RegressionPose: DeepPose, backbone → flatten (or pool) → dense → coords (B, J, 2), + cascade
  integral        IntegralPose: SimpleBaseline's maps → soft-argmax → coords (Sun et al. 2018)
  simcc           SimCCPose: backbone → per-joint vectors → x and y bin logits (Li et al. 2022)
  simplebaseline  SimpleBaseline: backbone → ×2 upsamplings → 1×1 conv → heatmaps (B, h, w, J) (Xiao et al. 2018)
  hrnet           HRNet: parallel multi-resolution branches, repeated fusion → heatmaps (B, h, w, J) (Sun et al. 2019)
  centernet       CenterNet: the person detector of chapter 4 → DetectionOutput (centre logits, sizes, offsets)
  bottom_up       AssociativeEmbedding: HRNet → heatmaps + tags, optional HigherHRNet 1/2 head (chapter 5)
  config          build_model: the model of a run's config (training, the zoo and `posekit predict` share it)
  layers          ConvBN, BasicBlock, Backbone (shared), Upsample, param_count, flops, feature_shapes

Every pose model takes (B, H, W, 3) float32 images and `train: bool` and returns a `PoseOutput` (the detector
a `DetectionOutput`);
`return_features=True` also returns a dict of named intermediate activations for drawing.
"""

from posekit.models.bottom_up import AssociativeEmbedding
from posekit.models.centernet import CenterNet
from posekit.models.config import build_model
from posekit.models.hrnet import HRNet
from posekit.models.integral import IntegralPose
from posekit.models.layers import BACKBONES, Backbone, feature_shapes, flops, param_count
from posekit.models.output import HEATMAP_KINDS, DetectionOutput, PoseOutput
from posekit.models.regression import RegressionPose
from posekit.models.simcc import SimCCPose
from posekit.models.simplebaseline import SimpleBaseline

__all__ = [
    "AssociativeEmbedding",
    "BACKBONES",
    "Backbone",
    "CenterNet",
    "DetectionOutput",
    "HEATMAP_KINDS",
    "PoseOutput",
    "HRNet",
    "IntegralPose",
    "SimCCPose",
    "RegressionPose",
    "SimpleBaseline",
    "feature_shapes",
    "build_model",
    "flops",
    "param_count",
]
