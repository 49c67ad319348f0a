"""The chapters' training recipes: which data, which model, which loss and schedule, cached by config.

  single_person   chapters 2 and 3: one person per crop, a regression or a heatmap model, PCK@0.1
"""

from posekit.experiments.single_person import pck_bbox, pose_loss_fn, single_person_run

__all__ = ["pck_bbox", "pose_loss_fn", "single_person_run"]
