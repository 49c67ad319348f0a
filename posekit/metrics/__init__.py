"""Pose metrics: person metrics (PCP, PCPm, PCK, PCKh, PDJ), OKS, and the COCO evaluator (keypoints and boxes).

  person   PCP, PCPm, PCK, PCKh, PDJ, the PCK curve and AUC, and their normalizers (chapters 2, 3, 6)
  oks      object keypoint similarity, exactly as pycocotools computes it (chapter 7)
  coco     COCO AP/AR for keypoints (OKS) and boxes (IoU), identical to pycocotools, vectorized (chapters 3, 4, 7)
  bootstrap  a paired bootstrap interval of an AP difference over the evaluated images (chapter 5)

Everything a chapter needs is importable from here: `from posekit.metrics import coco_eval, pck, oks`.
"""

from posekit.metrics._inputs import resolve_sigmas
from posekit.metrics.bootstrap import paired_ap_difference
from posekit.metrics.coco import (
    AREA_RANGES,
    BOX_STAT_NAMES,
    IOU_THRESHOLDS,
    MAX_DETS,
    OKS_THRESHOLDS,
    PARAMS,
    RECALL_POINTS,
    STAT_NAMES,
    CocoEvaluation,
    box_iou_pairs,
    coco_eval,
    evaluate,
    format_summary,
)
from posekit.metrics.oks import oks
from posekit.metrics.person import (
    bbox_diagonal,
    bbox_size,
    head_size,
    pck,
    pck_auc,
    pck_curve,
    pckh,
    pcp,
    pcpm,
    pdj,
    torso_diameter,
)

__all__ = [
    "AREA_RANGES",
    "BOX_STAT_NAMES",
    "IOU_THRESHOLDS",
    "MAX_DETS",
    "OKS_THRESHOLDS",
    "PARAMS",
    "RECALL_POINTS",
    "STAT_NAMES",
    "CocoEvaluation",
    "bbox_diagonal",
    "bbox_size",
    "box_iou_pairs",
    "coco_eval",
    "evaluate",
    "format_summary",
    "head_size",
    "oks",
    "paired_ap_difference",
    "pck",
    "pck_auc",
    "pck_curve",
    "pckh",
    "pcp",
    "pcpm",
    "pdj",
    "resolve_sigmas",
    "torso_diameter",
]
