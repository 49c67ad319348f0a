"""posekit: the shared code of the 2D Human Pose Estimation book.

Modules, one per concept of the book:
  skeleton   keypoint sets (COCO-17, MPII-16): names, links, flip pairs, sigmas
  cocoio     COCO person_keypoints JSON: read, validate, write
  synth      the synthetic people generator
  metrics    PCP, PCPm, PCK, PCKh, PDJ, OKS, COCO AP/AR
  codecs     heatmap and regression targets, decoding (argmax, DARK)
  crop       top-down affine crops, augmentation and their inverse
  models     regression, SimpleBaseline-style and HRNet-style models (Flax NNX)
  train      the one training loop (optax, checkpoints, resume)
  viz        plotting helpers
  book       chapter plumbing: profiles, seeds, caches, recorded results
"""

from posekit.book import PROFILES, cache_dir, glue, pick, record, setup

__version__ = "0.1.0"
__all__ = ["PROFILES", "cache_dir", "glue", "pick", "record", "setup", "__version__"]
