"""The chapters' training recipes: which data, which model, which loss and schedule, cached by config.

  single_person   chapters 2 and 3: one person per crop, a regression or a heatmap model, PCK@0.1;
                  MODELS, train_named, lr_sweep (on held-out training crops), seed_runs, verdict
  cost            measured training and inference images/s
  top_down        chapter 4: the person detector and the crop model on multi-person scenes
  bottom_up       chapter 5: Associative Embedding / HigherHRNet on whole scenes
  recipe          the shape they share: train_run (config -> model -> fit -> cached run) and sweep (the one
                  held-out learning-rate sweep)
  recipes         every trained model by one name (RECIPES, train_recipe) for `posekit train`

What the chapters measure about the trained models is in `posekit.analysis`; the zoo of long-trained models in
`posekit.zoo`.
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
