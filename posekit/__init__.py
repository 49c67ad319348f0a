"""posekit: the shared code of the 2D Human Pose Estimation book. One module per concept:

Data
  skeleton     keypoint sets (COCO-17, MPII-16): names, links, flip pairs, OKS sigmas, PCP limbs
  synth        the synthetic people generator (crops and multi-person scenes); render: its rasterizer
  cocoio       COCO JSON: read, validate, and the one builder of COCO records (annotations, results)
  data         cached training sets and deterministic batch streams
  crop         top-down affine crops, augmentation and their inverse
  scenes       multi-person scenes: the shared validation set, training scenes, a COCO folder, batch streams
  perturb      controlled mistakes: predictions made by damaging ground truth (metric chapters)
Models and training
  codecs       heatmap, coordinate and SimCC targets, decoding (argmax, DARK, soft-argmax, SimCC)
  models/      Flax NNX models, one file per family; every model returns a `models.PoseOutput`
  losses       every training loss (heatmap MSE, spatial cross-entropy, L1/L2 coordinates, SimCC, detector, tags)
Multi-person pipelines
  detection    the person detector's targets and decoding (CenterNet)
  top_down     detect, crop, estimate, map back, rescore, OKS-NMS (chapter 4)
  grouping     associative-embedding grouping of joints into people (chapter 5)
  bottom_up    every joint of the image at once, then grouping (chapter 5)
  train        the one training loop (jitted step, progress, validation hook, resume)
  checkpoint   save / load / resume, runs cached by config
  inference    batched prediction, flip test, decoding to input pixels
  experiments/ the chapters' recipes (data + model + loss + schedule, learning-rate sweeps on held-out
               training crops, seeds), cached by config; cost: measured training and inference speed
  zoo          the long-trained models the chapters load: files + manifest, load, verify, retrain
Evaluation and the book
  metrics/     person metrics (PCP, PCPm, PCK, PCKh, PDJ), OKS, the COCO evaluator (keypoints, boxes)
  viz          plotting helpers
  book         chapter plumbing: profiles, seeds, caches, recorded results
  cli          the `posekit` command (synth, predict, eval, train, zoo, assign, grade)
  io           atomic file writes
"""

from posekit.book import PROFILES, cache_dir, glue, pick, record, setup, show_table

__version__ = "0.1.0"
__all__ = ["PROFILES", "cache_dir", "glue", "pick", "record", "setup", "show_table", "__version__"]
