"""The chapters' training recipes: which data, which model, which loss and schedule, cached by config.

  single_person   chapters 2 and 3: one person per crop, a regression or a heatmap model, PCK@0.1;
                  MODELS, train_named, lr_sweep (on held-out training crops), seed_runs, verdict
  cost            measured training and inference images/s
  top_down        chapter 4: the person detector and the crop model on multi-person scenes, their diagnostics
  bottom_up       chapter 5: Associative Embedding / HigherHRNet on whole scenes, perfect maps, grouping errors
  recipes         every trained model by one name (RECIPES, train_recipe) for `posekit train`
"""

from posekit.experiments.single_person import (
    MODELS,
    lr_sweep,
    pck_bbox,
    pose_loss_fn,
    seed_runs,
    single_person_run,
    train_named,
    verdict,
)

__all__ = ["MODELS", "lr_sweep", "pck_bbox", "pose_loss_fn", "seed_runs", "single_person_run", "train_named", "verdict"]
