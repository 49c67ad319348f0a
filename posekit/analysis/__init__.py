"""Analyses: what the chapters measure about trained models and pipelines, apart from training them.

  top_down     chapter 4: detection metrics (box AP, recall), a degraded detector, oracle poses behind detected
               boxes, the codec ceiling of perfect heatmaps
  bottom_up    chapter 5: AP by person size, perfect maps and their AP, tags at the true joints, split and merged
               people, the held-out heatmap loss

The recipes that train the models are in `posekit.experiments`, the inference pipelines in `posekit.top_down`
and `posekit.bottom_up`; an analysis may call a pipeline, never a recipe.
"""
