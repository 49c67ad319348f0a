"""Person metrics: PCP, PCPm, PCK, PCKh, PDJ, the PCK curve and its AUC, and their normalizers.

Conventions shared by every function here:
  pred: predicted keypoints, shape (N, J, 2) (a third column, if present, is ignored).
  gt: ground-truth keypoints, shape (N, J, 3) [x, y, v]; v = 0 means "not labelled" and such
      joints are excluded from every metric (never counted as wrong).
  Normalizers <= 0 (a zero-length limb, a collapsed torso, an empty box) exclude the sample
  instead of dividing by zero.
  Rates are per joint (or per limb) first, then averaged over the joints with a valid sample (a
  macro-average, as mmpose reports PCK); `correct` and `valid` give the per-sample booleans.

Used in chapters 2, 3, 6 and 7.
"""

from __future__ import annotations

import numpy as np

from posekit.metrics._inputs import _as_boxes, _as_gt, _as_norm, _pair
from posekit.skeleton import COCO, MPII_HEAD_SIZE_FACTOR, KeypointSet


def bbox_size(bboxes) -> np.ndarray:
    """Box size max(w, h) of COCO boxes (N, 4) [x, y, w, h] -> (N,); mmpose's PCK bbox normalizer.

    Used in chapters 2, 3 and 6.
    """
    b = _as_boxes(bboxes)
    return np.maximum(b[:, 2], b[:, 3])


def bbox_diagonal(bboxes) -> np.ndarray:
    """Box diagonal sqrt(w^2 + h^2) of COCO boxes (N, 4) [x, y, w, h] -> (N,); PDJ's later normalizer.

    Used in chapters 6 and 7.
    """
    b = _as_boxes(bboxes)
    return np.hypot(b[:, 2], b[:, 3])


def torso_diameter(gt, kset: KeypointSet = COCO) -> np.ndarray:
    """Torso diameter ||gt[a] - gt[b]|| for (a, b) = kset.torso; gt (N, J, 3) -> (N,).

    0 when either torso joint is unlabelled (v = 0), so PCK/PDJ exclude that person.

    Used in chapters 6 and 7.
    """
    g = _as_gt(gt)
    a, b = kset.torso
    if max(a, b) >= g.shape[1]:
        raise ValueError(f"gt: kset {kset.name!r} needs J >= {max(a, b) + 1} for its torso, found J={g.shape[1]}")
    d = np.hypot(*(g[:, a, :2] - g[:, b, :2]).T)
    return np.where((g[:, a, 2] > 0) & (g[:, b, 2] > 0), d, 0.0)


def head_size(head_boxes, factor: float = MPII_HEAD_SIZE_FACTOR) -> np.ndarray:
    """MPII head size factor * ||(x2 - x1, y2 - y1)|| of head boxes (N, 4) [x1, y1, x2, y2] -> (N,).

    Used in chapter 6.
    """
    b = _as_boxes(head_boxes, "head_boxes")
    return factor * np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


# --------------------------------------------------------------------------------------------
# PCP / PCPm
# --------------------------------------------------------------------------------------------


def _limb_table(kset: KeypointSet, limbs, num_joints: int):
    limbs = dict(kset.limbs if limbs is None else limbs)
    if not limbs:
        raise ValueError("limbs: expected at least one named (i, j) pair, found none")
    names = list(limbs)
    ij = np.array([limbs[n] for n in names], dtype=int).reshape(-1, 2)
    if ij.min() < 0 or ij.max() >= num_joints:
        raise ValueError(f"limbs: joint indices must lie in [0, {num_joints}), found {ij.min()}..{ij.max()}")
    return names, ij[:, 0], ij[:, 1]


def _pcp(pred, gt, kset, alpha, limbs, mean_length: bool) -> dict:
    p, g = _pair(pred, gt)
    names, a, b = _limb_table(kset, limbs, g.shape[1])
    length = np.linalg.norm(g[:, a, :2] - g[:, b, :2], axis=-1)  # (N, L)
    labelled = (g[:, a, 2] > 0) & (g[:, b, 2] > 0)
    if mean_length:  # PCPm: one threshold per limb type, the mean over the labelled instances of the set
        cnt = labelled.sum(0)
        mean = np.where(cnt > 0, (length * labelled).sum(0) / np.maximum(cnt, 1), 0.0)
        length = np.broadcast_to(mean, length.shape)
    valid = labelled & (length > 0)
    err_a = np.linalg.norm(p[:, a] - g[:, a, :2], axis=-1)
    err_b = np.linalg.norm(p[:, b] - g[:, b, :2], axis=-1)
    thr = alpha * length
    correct = valid & (err_a <= thr) & (err_b <= thr)
    return _summarize_rates(correct, valid, names, "per_limb")


def _summarize_rates(correct, valid, names, key) -> dict:
    cnt = valid.sum(0)
    rate = np.where(cnt > 0, correct.sum(0) / np.maximum(cnt, 1), np.nan)
    mean = float(np.mean(rate[cnt > 0])) if np.any(cnt > 0) else float("nan")
    per = {n: float(r) for n, r in zip(names, rate)} if names is not None else rate
    return {key: per, "mean": mean, "correct": correct, "valid": valid}


def pcp(pred, gt, kset: KeypointSet = COCO, alpha: float = 0.5, limbs=None) -> dict:
    """Strict PCP (Ferrari et al. 2008): a limb is correct iff BOTH predicted endpoints are within alpha*||gt limb||.

    pred (N, J, 2), gt (N, J, 3); limbs: {name: (i, j)} (default kset.limbs).
    correct[n, l] = ||p_i - g_i|| <= alpha * L and ||p_j - g_j|| <= alpha * L, L = ||g_i - g_j||.
    Limbs with an unlabelled endpoint or zero ground-truth length are excluded (valid = False).
    Returns per_limb {name: fraction correct (nan if never valid)}, mean (over limbs with a valid
    sample), correct (N, L) bool, valid (N, L) bool.

    Used in chapters 6 and 7.
    """
    return _pcp(pred, gt, kset, alpha, limbs, mean_length=False)


def pcpm(pred, gt, kset: KeypointSet = COCO, alpha: float = 0.5, limbs=None) -> dict:
    """PCPm: PCP with threshold alpha * (mean ground-truth length of that limb over the whole set).

    Same inputs and outputs as `pcp`; the mean length is taken over the labelled instances of each
    limb, so short foreshortened limbs are no longer judged by a tiny threshold.

    Used in chapters 6 and 7.
    """
    return _pcp(pred, gt, kset, alpha, limbs, mean_length=True)


# --------------------------------------------------------------------------------------------
# PCK / PCKh / PDJ
# --------------------------------------------------------------------------------------------


def _normalized_distance(pred, gt, norm):
    p, g = _pair(pred, gt)
    s = _as_norm(norm, g.shape[0])
    valid = (g[..., 2] > 0) & (s[:, None] > 0)
    dist = np.linalg.norm(p - g[..., :2], axis=-1)
    nd = dist / np.where(s > 0, s, 1.0)[:, None]
    return nd, valid


def pck(pred, gt, norm, thr: float = 0.2) -> dict:
    """PCK: joint correct iff ||pred - gt|| / norm < thr (strict '<', as mmpose).

    pred (N, J, 2), gt (N, J, 3), norm (N,) per-person normalizer (bbox_size, torso_diameter, head_size).
    Unlabelled joints (v = 0) and people with norm <= 0 are excluded. Returns per_joint (J,) fraction
    correct (nan for joints with no valid sample), mean over joints with a valid sample,
    correct (N, J) bool, valid (N, J) bool.

    Used in chapters 2, 3, 6 and 7.
    """
    nd, valid = _normalized_distance(pred, gt, norm)
    return _summarize_rates(valid & (nd < thr), valid, None, "per_joint")


def pckh(pred, gt, head_boxes, thr: float = 0.5, factor: float = MPII_HEAD_SIZE_FACTOR) -> dict:
    """PCKh (MPII): PCK with norm = factor * head-box diagonal; head_boxes (N, 4) [x1, y1, x2, y2].

    correct iff ||pred - gt|| < thr * factor * ||(x2 - x1, y2 - y1)||. Same outputs as `pck`.

    Used in chapters 6 and 7.
    """
    return pck(pred, gt, head_size(head_boxes, factor), thr)


def pdj(pred, gt, norm, frac: float = 0.2) -> dict:
    """PDJ (Toshev & Szegedy 2014): joint detected iff ||pred - gt|| <= frac * norm (inclusive '<=').

    pred (N, J, 2), gt (N, J, 3), norm (N,) (torso_diameter in DeepPose, bbox_diagonal later).
    Exclusions and outputs as in `pck`.

    Used in chapters 6 and 7.
    """
    nd, valid = _normalized_distance(pred, gt, norm)
    return _summarize_rates(valid & (nd <= frac), valid, None, "per_joint")


def pck_curve(pred, gt, norm, thrs) -> np.ndarray:
    """Mean PCK at each threshold: thrs (T,) -> (T,); pred (N, J, 2), gt (N, J, 3), norm (N,).

    Used in chapter 6.
    """
    nd, valid = _normalized_distance(pred, gt, norm)
    t = np.asarray(thrs, dtype=float).reshape(-1)
    correct = valid[None] & (nd[None] < t[:, None, None])  # (T, N, J)
    cnt = valid.sum(0)
    keep = cnt > 0
    if not np.any(keep):
        return np.full(t.shape, np.nan)
    per_joint = correct.sum(1)[:, keep] / cnt[keep]
    return per_joint.mean(1)


def pck_auc(pred, gt, norm, max_thr: float = 0.5, num: int = 20) -> float:
    """Area under the PCK curve, normalized to [0, 1]: mean PCK at thresholds max_thr * i / num, i = 0..num-1.

    mmpose's left Riemann sum (keypoint_auc); pred (N, J, 2), gt (N, J, 3), norm (N,).

    Used in chapter 6.
    """
    if num < 1:
        raise ValueError(f"num: expected >= 1 thresholds, found {num}")
    return float(np.mean(pck_curve(pred, gt, norm, max_thr * np.arange(num) / num)))
