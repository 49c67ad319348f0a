"""Pose metrics: PCP, PCPm, PCK, PCKh, PDJ, OKS and COCO keypoint AP/AR.

Conventions shared by every function here:
  pred: predicted keypoints, shape (N, J, 2) (a third column, if present, is ignored).
  gt: ground-truth keypoints, shape (N, J, 3) [x, y, v]; v = 0 means "not labelled" and such
      joints are excluded from every metric (never counted as wrong).
  Normalizers <= 0 (a zero-length limb, a collapsed torso, an empty box) exclude the sample
  instead of dividing by zero.

`coco_eval` reproduces pycocotools' COCOeval(iouType="keypoints") number for number, vectorized
over all images, thresholds and area ranges at once (see its docstring for the rules it follows):
OKS for every (detection, GT) pair of an image in one pass, then the greedy matching of all images
and all 10 thresholds together, looping only over the detection rank (at most 20 steps).
`random_eval_set` builds a deterministic synthetic COCO ground truth + results pair for tests,
the benchmark (benchmarks/bench_metrics.py) and the chapter.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

import numpy as np

from posekit.skeleton import COCO, MPII_HEAD_SIZE_FACTOR, KeypointSet

__all__ = [
    "AREA_RANGES",
    "MAX_DETS",
    "OKS_THRESHOLDS",
    "RECALL_POINTS",
    "add_cli",
    "bbox_diagonal",
    "bbox_size",
    "coco_eval",
    "format_summary",
    "head_size",
    "oks",
    "pck",
    "pck_auc",
    "pck_curve",
    "pckh",
    "pcp",
    "pcpm",
    "pdj",
    "random_eval_set",
    "resolve_sigmas",
    "STAT_NAMES",
    "torso_diameter",
]

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _as_pred(pred, name="pred") -> np.ndarray:
    p = np.asarray(pred, dtype=float)
    if p.ndim != 3 or p.shape[-1] not in (2, 3):
        raise ValueError(f"{name}: expected shape (N, J, 2) or (N, J, 3), found {p.shape}")
    if not np.all(np.isfinite(p[..., :2])):
        raise ValueError(f"{name}: coordinates must be finite, found NaN or inf")
    return p[..., :2]


def _as_gt(gt, name="gt") -> np.ndarray:
    g = np.asarray(gt, dtype=float)
    if g.ndim != 3 or g.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (N, J, 3) [x, y, v], found {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"{name}: values must be finite, found NaN or inf")
    return g


def _pair(pred, gt):
    p, g = _as_pred(pred), _as_gt(gt)
    if p.shape[:2] != g.shape[:2]:
        raise ValueError(f"pred and gt: expected the same (N, J), found pred {p.shape[:2]} and gt {g.shape[:2]}")
    return p, g


def _as_norm(norm, n: int, name="norm") -> np.ndarray:
    s = np.asarray(norm, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), found {s.shape}")
    if np.any(np.isnan(s)):
        raise ValueError(f"{name}: found NaN; use 0 to exclude a sample")
    return s


def _as_boxes(boxes, name="bboxes") -> np.ndarray:
    b = np.asarray(boxes, dtype=float)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4), found {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: values must be finite, found NaN or inf")
    return b


def resolve_sigmas(sigmas, num_joints: int) -> np.ndarray:
    """OKS sigmas (J,): the given ones, or COCO's 17 when `sigmas` is None and J == 17; else ValueError."""
    if sigmas is None:
        if num_joints != COCO.num_joints:
            raise ValueError(
                f"sigmas: None is only allowed for the {COCO.num_joints} COCO keypoints; "
                f"found J={num_joints}: pass one sigma per keypoint"
            )
        return COCO.sigmas.astype(float)
    s = np.asarray(sigmas, dtype=float).reshape(-1)
    if s.shape != (num_joints,):
        raise ValueError(f"sigmas: expected {num_joints} values (one per keypoint), found {s.shape[0]}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sigmas: expected finite positive values, found {s.tolist()}")
    return s


# --------------------------------------------------------------------------------------------
# normalizers
# --------------------------------------------------------------------------------------------


def bbox_size(bboxes) -> np.ndarray:
    """Box size max(w, h) of COCO boxes (N, 4) [x, y, w, h] -> (N,); mmpose's PCK bbox normalizer."""
    b = _as_boxes(bboxes)
    return np.maximum(b[:, 2], b[:, 3])


def bbox_diagonal(bboxes) -> np.ndarray:
    """Box diagonal sqrt(w^2 + h^2) of COCO boxes (N, 4) [x, y, w, h] -> (N,); PDJ's later normalizer."""
    b = _as_boxes(bboxes)
    return np.hypot(b[:, 2], b[:, 3])


def torso_diameter(gt, kset: KeypointSet = COCO) -> np.ndarray:
    """Torso diameter ||gt[a] - gt[b]|| for (a, b) = kset.torso; gt (N, J, 3) -> (N,).

    0 when either torso joint is unlabelled (v = 0), so PCK/PDJ exclude that person.
    """
    g = _as_gt(gt)
    a, b = kset.torso
    if max(a, b) >= g.shape[1]:
        raise ValueError(f"gt: kset {kset.name!r} needs J >= {max(a, b) + 1} for its torso, found J={g.shape[1]}")
    d = np.hypot(*(g[:, a, :2] - g[:, b, :2]).T)
    return np.where((g[:, a, 2] > 0) & (g[:, b, 2] > 0), d, 0.0)


def head_size(head_boxes, factor: float = MPII_HEAD_SIZE_FACTOR) -> np.ndarray:
    """MPII head size factor * ||(x2 - x1, y2 - y1)|| of head boxes (N, 4) [x1, y1, x2, y2] -> (N,)."""
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
    """
    return _pcp(pred, gt, kset, alpha, limbs, mean_length=False)


def pcpm(pred, gt, kset: KeypointSet = COCO, alpha: float = 0.5, limbs=None) -> dict:
    """PCPm: PCP with threshold alpha * (mean ground-truth length of that limb over the whole set).

    Same inputs and outputs as `pcp`; the mean length is taken over the labelled instances of each
    limb, so short foreshortened limbs are no longer judged by a tiny threshold.
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
    """
    nd, valid = _normalized_distance(pred, gt, norm)
    return _summarize_rates(valid & (nd < thr), valid, None, "per_joint")


def pckh(pred, gt, head_boxes, thr: float = 0.5, factor: float = MPII_HEAD_SIZE_FACTOR) -> dict:
    """PCKh (MPII): PCK with norm = factor * head-box diagonal; head_boxes (N, 4) [x1, y1, x2, y2].

    correct iff ||pred - gt|| < thr * factor * ||(x2 - x1, y2 - y1)||. Same outputs as `pck`.
    """
    return pck(pred, gt, head_size(head_boxes, factor), thr)


def pdj(pred, gt, norm, frac: float = 0.2) -> dict:
    """PDJ (Toshev & Szegedy 2014): joint detected iff ||pred - gt|| <= frac * norm (inclusive '<=').

    pred (N, J, 2), gt (N, J, 3), norm (N,) (torso_diameter in DeepPose, bbox_diagonal later).
    Exclusions and outputs as in `pck`.
    """
    nd, valid = _normalized_distance(pred, gt, norm)
    return _summarize_rates(valid & (nd <= frac), valid, None, "per_joint")


def pck_curve(pred, gt, norm, thrs) -> np.ndarray:
    """Mean PCK at each threshold: thrs (T,) -> (T,); pred (N, J, 2), gt (N, J, 3), norm (N,)."""
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
    """
    if num < 1:
        raise ValueError(f"num: expected >= 1 thresholds, found {num}")
    return float(np.mean(pck_curve(pred, gt, norm, max_thr * np.arange(num) / num)))


# --------------------------------------------------------------------------------------------
# OKS
# --------------------------------------------------------------------------------------------


def _oks_pairs(d_xy, det_idx, g_kp, gt_idx, area, bbox, variances, chunk: int = 32768) -> np.ndarray:
    """OKS of P (detection, GT) pairs: d_xy (Nd, J, 2), g_kp (G, J, 3), area (G,), bbox (G, 4); indices (P,) -> (P,).

    Same arithmetic, in the same order, as pycocotools' computeOks, so results agree bit for bit:
    pycocotools sums exp(-e) over the labelled joints with np.sum, i.e. numpy's pairwise summation of
    that compressed array (8 running partial sums when n >= 8, then a plain loop over the rest); we
    reorder each GT's joints labelled-first and replay that order, so a comparison such as
    OKS >= 0.5 never flips on a rounding difference.
    """
    G, J = g_kp.shape[:2]
    labelled = g_kp[..., 2] > 0
    n = labelled.sum(1)
    none = n == 0  # no labelled joint: every joint counts, distances go to the grown GT box
    n = np.where(none, J, n)
    order = np.argsort(~labelled, axis=1, kind="stable")  # labelled joints first, each in file order
    order_t = np.ascontiguousarray(order.T)  # (J, G)
    g_xy = np.take_along_axis(g_kp[..., :2], order[..., None], axis=1).transpose(1, 0, 2)  # (J, G, 2)
    var_t = variances[order_t]  # (J, G)
    box = np.asarray(bbox, dtype=float)
    lo = np.stack([box[:, 0] - box[:, 2], box[:, 1] - box[:, 3]], -1)  # (G, 2)
    hi = np.stack([box[:, 0] + box[:, 2] * 2, box[:, 1] + box[:, 3] * 2], -1)
    cols = np.arange(J)[:, None]
    out = np.empty(len(det_idx))
    for s in range(0, len(det_idx), chunk):
        di, gi = det_idx[s : s + chunk], gt_idx[s : s + chunk]
        d = d_xy[di[None, :], order_t[:, gi]]  # (J, p, 2), joints in the GT's compressed order
        delta = d - g_xy[:, gi]
        nn = none[gi]
        if np.any(nn):
            dn = d[:, nn]
            lo_n, hi_n = lo[gi[nn]], hi[gi[nn]]
            delta[:, nn] = np.maximum(0, lo_n - dn) + np.maximum(0, dn - hi_n)
        e = (delta[..., 0] ** 2 + delta[..., 1] ** 2) / var_t[:, gi] / (area[gi] + np.spacing(1)) / 2
        k = n[gi]
        v = np.where(cols < k, np.exp(-e), 0.0)  # (J, p)
        nb = k // 8  # full blocks of 8 (numpy sums arrays of n < 8 with a plain loop: nb = 0)
        acc = np.zeros(len(gi))
        if J >= 8 and np.any(nb > 0):
            r = v[:8].copy()
            for blk in range(1, J // 8):
                r += np.where(nb > blk, v[8 * blk : 8 * blk + 8], 0.0)
            s8 = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            acc = np.where(nb > 0, s8, 0.0)
        tail = 8 * nb
        for c in range(J):
            acc += np.where((c >= tail) & (c < k), v[c], 0.0)
        out[s : s + chunk] = acc / k
    return out


def _oks_fast(d_xy, det_idx, g_kp, gt_idx, area, bbox, variances, chunk: int = 65536) -> np.ndarray:
    """OKS of P pairs like `_oks_pairs`, summed in a convenient order: equal to it within a few ulps."""
    G, J = g_kp.shape[:2]
    labelled = g_kp[..., 2] > 0
    n = labelled.sum(1)
    none = n == 0
    weight = np.where(none[:, None], 1.0 / J, labelled / np.maximum(n, 1)[:, None])  # (G, J)
    inv = 1.0 / (variances * (2 * (area[:, None] + np.spacing(1))))  # (G, J)
    g_xy = np.ascontiguousarray(g_kp[..., :2])
    box = np.asarray(bbox, dtype=float)
    out = np.empty(len(det_idx))
    for s in range(0, len(det_idx), chunk):
        di, gi = det_idx[s : s + chunk], gt_idx[s : s + chunk]
        delta = np.take(d_xy, di, axis=0) - np.take(g_xy, gi, axis=0)  # (p, J, 2)
        nn = np.flatnonzero(none[gi])
        if len(nn):
            b = box[gi[nn]]
            dn = np.take(d_xy, di[nn], axis=0)
            lo = np.stack([b[:, 0] - b[:, 2], b[:, 1] - b[:, 3]], -1)[:, None]
            hi = np.stack([b[:, 0] + b[:, 2] * 2, b[:, 1] + b[:, 3] * 2], -1)[:, None]
            delta[nn] = np.maximum(0, lo - dn) + np.maximum(0, dn - hi)
        delta *= delta
        e = delta[..., 0] + delta[..., 1]
        e *= np.take(inv, gi, axis=0)
        np.negative(e, out=e)
        np.exp(e, out=e)
        e *= np.take(weight, gi, axis=0)
        out[s : s + chunk] = e.sum(1)
    return out


def _oks_for_matching(d_xy, d_box, det_idx, g_kp, gt_idx, area, bbox, variances, thresholds) -> np.ndarray:
    """OKS of P pairs, bit-identical to pycocotools wherever a comparison could depend on the last bits.

    Matching only compares OKS with the thresholds and with the OKS of other GTs of the same detection,
    and only at or above the lowest threshold. The fast sum differs from pycocotools' by a few ulps, so
    we recompute exactly the pairs within 1e-9 of a threshold or of another candidate of the same detection.
    """
    tol = 1e-9
    # Prune pairs that cannot reach the lowest threshold: every joint is at least as far as the gap
    # between the detection's keypoint box and the box of the GT's labelled keypoints, so
    # OKS <= exp(-gap^2 / (2 * max(var) * area)); such pairs keep OKS 0, which matches nothing either.
    labelled = g_kp[..., 2] > 0
    none = ~labelled.any(1)
    big = np.where(labelled, 0.0, np.inf)
    g_lo = np.stack([(g_kp[..., 0] + big).min(1), (g_kp[..., 1] + big).min(1)], -1)  # (G, 2)
    g_hi = np.stack([(g_kp[..., 0] - big).max(1), (g_kp[..., 1] - big).max(1)], -1)
    d_lo, d_hi = d_box  # (Nd, 2) keypoint extent of each detection
    gap = np.maximum(0, np.maximum(d_lo[det_idx] - g_hi[gt_idx], g_lo[gt_idx] - d_hi[det_idx]))
    bound = -(gap**2).sum(1) / (2 * variances.max() * (area[gt_idx] + np.spacing(1)))
    live = np.flatnonzero(none[gt_idx] | (bound >= np.log(thresholds.min()) - 1e-6))
    o = np.zeros(len(det_idx))
    o[live] = _oks_fast(d_xy, det_idx[live], g_kp, gt_idx[live], area, bbox, variances)
    cand = np.flatnonzero(o >= thresholds.min() - tol)
    oc, dc = o[cand], det_idx[cand]
    sens = (np.abs(oc[:, None] - thresholds[None]) <= tol).any(1)
    srt = np.lexsort((oc, dc))
    close = (np.diff(oc[srt]) <= tol) & (np.diff(dc[srt]) == 0)
    sens[srt[1:][close]] = True
    sens[srt[:-1][close]] = True
    fix = cand[sens]
    if len(fix):
        gts, gi = np.unique(gt_idx[fix], return_inverse=True)  # only the GTs involved
        o[fix] = _oks_pairs(d_xy, det_idx[fix], g_kp[gts], gi, area[gts], np.asarray(bbox)[gts], variances)
    return o


def oks(dt, gt, areas, sigmas=None, gt_bboxes=None) -> np.ndarray:
    """Object keypoint similarity, exactly COCO's computeOks: dt (D, J, 2|3), gt (G, J, 3), areas (G,) -> (D, G).

    OKS = mean over labelled joints of exp(-d^2 / (2 * area * (2 sigma)^2)), d the pixel distance.
    A ground truth with no labelled joint uses, for every joint, the distance from the detection to
    the GT box grown by its width/height on each side (needs gt_bboxes (G, 4) [x, y, w, h]).
    sigmas (J,): None means COCO's 17 (only when J == 17). Detection scores/visibilities are ignored.
    """
    d = _as_pred(dt, "dt")
    g = _as_gt(gt)
    if d.shape[1] != g.shape[1]:
        raise ValueError(f"dt and gt: expected the same number of keypoints, found {d.shape[1]} and {g.shape[1]}")
    a = _as_norm(areas, g.shape[0], "areas")
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        raise ValueError("areas: expected finite values >= 0, found a negative or infinite area")
    s = resolve_sigmas(sigmas, g.shape[1])
    none = (g[..., 2] > 0).sum(1) == 0
    if gt_bboxes is None:
        if np.any(none):
            raise ValueError(f"gt_bboxes: needed because {int(none.sum())} ground truths have no labelled keypoint")
        b = np.zeros((g.shape[0], 4))
    else:
        b = _as_boxes(gt_bboxes, "gt_bboxes")
        if b.shape[0] != g.shape[0]:
            raise ValueError(f"gt_bboxes: expected shape ({g.shape[0]}, 4), found {b.shape}")
    D, G = d.shape[0], g.shape[0]
    di, gi = np.repeat(np.arange(D), G), np.tile(np.arange(G), D)
    return _oks_pairs(d, di, g, gi, a, b, (s * 2) ** 2).reshape(D, G)


# --------------------------------------------------------------------------------------------
# COCO keypoint AP / AR (pycocotools' COCOeval, vectorized)
# --------------------------------------------------------------------------------------------

# COCOeval's keypoint parameters (Params.setKpParams): built with linspace exactly as pycocotools
# does, so that "IoU == .75" lookups and threshold comparisons see the very same floats.
OKS_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = 20
AREA_RANGES = ((0**2, 1e5**2), (32**2, 96**2), (96**2, 1e5**2))
AREA_LABELS = ("all", "medium", "large")


def _load_json(x, name):
    if isinstance(x, (str, os.PathLike)):
        with open(x) as f:
            return json.load(f)
    return x


def _flat_keypoints(kps, num_values: int, name: str) -> np.ndarray:
    lens = np.fromiter(map(len, kps), dtype=np.int64, count=len(kps))
    if np.any(lens != num_values):
        i = int(np.argmax(lens != num_values))
        raise ValueError(
            f"{name}[{i}]['keypoints']: expected {num_values} values (3 per keypoint), found {int(lens[i])}"
        )
    try:
        flat = np.fromiter(itertools.chain.from_iterable(kps), dtype=float, count=len(kps) * num_values)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: keypoints must be lists of numbers") from None
    out = flat.reshape(len(kps), num_values // 3, 3)
    if not np.all(np.isfinite(out)):
        i = int(np.argmax(~np.isfinite(out).all((1, 2))))
        raise ValueError(f"{name}[{i}]['keypoints']: values must be finite, found NaN or inf")
    return out


def _field(items, key, name, default=None):
    try:
        return [a[key] for a in items]
    except KeyError:
        if default is not None:
            return [a.get(key, default) for a in items]
        i = next(i for i, a in enumerate(items) if key not in a)
        raise ValueError(f"{name}[{i}]: missing field {key!r}") from None
    except TypeError:
        raise ValueError(f"{name}: expected a list of dicts, found an element of another type") from None


def _index_of(values: list, keys: list, index: dict) -> np.ndarray:
    """Position of each value in the sorted list `keys`, -1 when absent (vectorized for integer ids)."""
    k = np.asarray(keys)
    if k.dtype.kind in "iu" and len(values):
        v = np.asarray(values)
        if v.dtype.kind in "iu" and v.ndim == 1:
            pos = np.minimum(np.searchsorted(k, v), len(k) - 1)
            return np.where(k[pos] == v, pos, -1)
    return np.array([index.get(x, -1) for x in values], dtype=np.int64).reshape(len(values))


def _prepare_gt(gt: dict):
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise ValueError("gt: expected a COCO dict with 'images', 'categories' and 'annotations'")
    img_ids = sorted(set(_field(gt["images"], "id", "gt['images']")))
    cat_ids = sorted(set(_field(gt["categories"], "id", "gt['categories']")))
    if not cat_ids:
        raise ValueError("gt['categories']: expected at least one category, found none")
    img_index = {k: i for i, k in enumerate(img_ids)}
    cat_index = {k: i for i, k in enumerate(cat_ids)}
    anns = gt.get("annotations", [])
    ii = _index_of(_field(anns, "image_id", "gt['annotations']"), img_ids, img_index)
    ci = _index_of(_field(anns, "category_id", "gt['annotations']"), cat_ids, cat_index)
    # COCOeval only sees annotations of listed images and categories
    sel = np.flatnonzero((ii >= 0) & (ci >= 0))
    anns = [anns[i] for i in sel]
    ids = _field(anns, "id", "gt['annotations']")
    if len(set(ids)) != len(ids):
        raise ValueError("gt['annotations']: annotation ids must be unique, found duplicates")
    return img_ids, cat_ids, (img_ids, img_index), (cat_ids, cat_index), anns, ii[sel], ci[sel]


def _gt_arrays(anns, num_values):
    G = len(anns)
    kp = _flat_keypoints(_field(anns, "keypoints", "gt['annotations']"), num_values, "gt['annotations']")
    area = np.array(_field(anns, "area", "gt['annotations']"), dtype=float).reshape(G)
    if not np.all(np.isfinite(area)) or np.any(area < 0):
        i = int(np.argmax(~np.isfinite(area) | (area < 0)))
        raise ValueError(f"gt['annotations'][{i}]['area']: expected a finite value >= 0, found {area[i]}")
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool).reshape(G)
    # pycocotools reads the num_keypoints field (not the v flags) to ignore people without keypoints;
    # when the field is missing we count v > 0 instead (pycocotools would raise KeyError)
    nk = np.array([a.get("num_keypoints", -1) for a in anns], dtype=float).reshape(G)
    nk = np.where(nk < 0, (kp[..., 2] > 0).sum(1), nk)
    bbox = np.array([a.get("bbox", (np.nan,) * 4) for a in anns], dtype=float).reshape(G, 4)
    zero_id = np.array([a["id"] == 0 for a in anns], dtype=bool).reshape(G)
    return kp, area, crowd, crowd | (nk == 0), bbox, zero_id


def _dt_arrays(dt, img_index, cat_index, num_values):
    if not isinstance(dt, list):
        raise ValueError(f"results: expected a list of result dicts, found {type(dt).__name__}")
    if len(dt) == 0:
        # pycocotools' loadRes fails on an empty list (IndexError on anns[0]); we refuse it clearly
        raise ValueError("results: the list is empty; COCO AP is undefined without detections (pycocotools raises)")
    img = _field(dt, "image_id", "results")
    ii = _index_of(img, *img_index)
    if np.any(ii < 0):
        missing = sorted({img[i] for i in np.flatnonzero(ii < 0)}, key=str)
        raise ValueError(f"results: image ids not in the ground truth, found {missing[:5]} ({len(missing)} in all)")
    ci = _index_of(_field(dt, "category_id", "results"), *cat_index)
    try:
        score = np.fromiter(_field(dt, "score", "results"), dtype=float, count=len(dt))
    except (TypeError, ValueError):
        raise ValueError("results: every 'score' must be a number") from None
    if not np.all(np.isfinite(score)):
        raise ValueError(f"results[{int(np.argmax(~np.isfinite(score)))}]['score']: expected a finite number")
    kp = _flat_keypoints(_field(dt, "keypoints", "results"), num_values, "results")
    first = dt[0]
    if "bbox" in first and not first["bbox"] == []:
        # loadRes takes the detection area from a given box (its 'bbox' branch) ...
        bb = np.array(_field(dt, "bbox", "results"), dtype=float).reshape(len(dt), 4)
        area = bb[:, 2] * bb[:, 3]
    # keypoint extent (one coordinate at a time: reducing strided (n, J, 2) blocks is much slower)
    lo = np.stack([kp[..., 0].min(1), kp[..., 1].min(1)], -1)
    hi = np.stack([kp[..., 0].max(1), kp[..., 1].max(1)], -1)
    if not ("bbox" in first and not first["bbox"] == []):  # ... and otherwise from the keypoint extent
        area = (hi[:, 0] - lo[:, 0]) * (hi[:, 1] - lo[:, 1])
    # results of categories absent from the ground truth are dropped, as COCOeval does
    out = ii, ci, score, np.ascontiguousarray(kp[..., :2]), area, lo, hi
    if np.all(ci >= 0):
        return out
    sel = np.flatnonzero(ci >= 0)
    return tuple(x[sel] for x in out)


def _match_bucket(O, crowd, ig, gt_area, zero_id, thr):
    """Greedy COCO matching of a bucket of images at all area ranges and thresholds at once.

    O (G, B, D) OKS (padding -1), crowd/ig/zero_id (G, B) bool, gt_area (G, B), thr (T,).
    Returns matched, matched_ignored, matched_zero_id: (B, D, A, T) bool.
    """
    G, B, D = O.shape
    A, T = len(AREA_RANGES), len(thr)
    # rank of each GT by (OKS, position): pycocotools keeps the LAST of equal best OKS values
    less = (O[None] < O[:, None]) | (
        (O[None] == O[:, None]) & (np.arange(G)[None, :, None, None] < np.arange(G)[:, None, None, None])
    )
    rank = less.sum(1, dtype=np.int32)  # (G, B, D)
    lo, hi = np.array(AREA_RANGES).T
    ig_a = ig[..., None] | (gt_area[..., None] < lo) | (gt_area[..., None] > hi)  # (G, B, A)
    # a regular GT beats any ignored one: offset regular keys by G
    key = rank[:, :, None, :] + G * (~ig_a)[..., None]  # (G, B, A, D)
    key = key.astype(np.int16 if 2 * G < 32000 else np.int32)
    taken = np.zeros((G, B, A, T), dtype=bool)
    free_crowd = crowd[:, :, None, None]
    out_m = np.zeros((B, D, A, T), dtype=bool)
    out_ig = np.zeros((B, D, A, T), dtype=bool)
    out_z = np.zeros((B, D, A, T), dtype=bool)
    any_zero = bool(zero_id.any())
    for r in range(D):
        o = O[:, :, r]
        if o.max() < thr[0]:
            continue
        cand = (o[..., None] >= thr)[:, :, None, :] & (~taken | free_crowd)  # (G, B, A, T)
        k = np.where(cand, key[:, :, :, r, None], -1)
        kmax = k.max(0)  # (B, A, T)
        hit = (k == kmax) & cand
        taken |= hit
        m = kmax >= 0
        out_m[:, r] = m
        out_ig[:, r] = m & (kmax < G)
        if any_zero:
            out_z[:, r] = (hit & zero_id[:, :, None, None]).any(0)
    return out_m, out_ig, out_z


def coco_eval(gt, dt, sigmas=None, verbose: bool = False) -> dict:
    """COCO keypoint AP/AR, identical to pycocotools COCOeval(iouType="keypoints") -> {AP, AP50, ..., ARl}.

    gt: COCO dict or JSON path; dt: list of results {image_id, category_id, keypoints (3J), score} or path.
    sigmas (J,): None means COCO's 17 (only when J == 17). Follows pycocotools exactly: crowd GT and GT
    with num_keypoints == 0 are ignored; area ranges all/medium/large; the 20 best-scored detections per
    image (stable sort); greedy matching per OKS threshold (0.50:0.05:0.95, compared as >= min(t, 1-1e-10))
    that prefers regular over ignored GT, keeps the last of tied OKS and lets a crowd GT absorb many
    detections; unmatched detections outside the area range (area = keypoint extent, or the result's own
    bbox when the first result has one) are ignored; precision envelope sampled at 101 recall points;
    cells without GT (-1) are left out of the means (a number is -1 when every cell is).
    Raises ValueError on: an empty result list (pycocotools raises too), a wrong keypoint count,
    NaN/inf coordinates or scores, result image ids missing from the GT, negative areas.
    """
    precision, recall = _evaluate(gt, dt, sigmas)
    stats = _summarize(precision, recall)
    if verbose:
        print(format_summary(stats))
    return stats


def _evaluate(gt, dt, sigmas):
    """Parse, match and accumulate: precision (T, R, K, A, 1) and recall (T, K, A, 1) as COCOeval.eval."""
    gt = _load_json(gt, "gt")
    dt = _load_json(dt, "results")
    img_ids, cat_ids, img_index, cat_index, anns, g_img, g_cat = _prepare_gt(gt)
    if anns:
        num_values = len(anns[0]["keypoints"]) if "keypoints" in anns[0] else -1
    elif isinstance(dt, list) and dt and isinstance(dt[0], dict) and "keypoints" in dt[0]:
        num_values = len(dt[0]["keypoints"])
    else:
        num_values = -1
    if num_values < 3 or num_values % 3:
        raise ValueError(f"keypoints: expected 3 values per keypoint, found a list of length {num_values}")
    variances = (resolve_sigmas(sigmas, num_values // 3) * 2) ** 2
    g_kp, g_area, g_crowd, g_ig, g_bbox, g_zero = _gt_arrays(anns, num_values)
    d_img, d_cat, d_score, d_xy, d_area, d_lo, d_hi = _dt_arrays(dt, img_index, cat_index, num_values)
    I, K = len(img_ids), len(cat_ids)

    # group = (category, image). GT keep file order inside a group (stable sort); detections go best
    # score first (stable, like COCOeval's mergesort) and only the first MAX_DETS of a group count.
    g_order = np.argsort(g_cat * I + g_img, kind="stable")
    g_kp, g_area, g_crowd, g_ig, g_bbox, g_zero = (x[g_order] for x in (g_kp, g_area, g_crowd, g_ig, g_bbox, g_zero))
    g_grp = (g_cat * I + g_img)[g_order]
    d_grp = d_cat * I + d_img
    d_order = np.lexsort((-d_score, d_grp))
    d_grp = d_grp[d_order]
    d_rank = np.arange(len(d_grp)) - np.searchsorted(d_grp, d_grp, side="left")
    keep = d_rank < MAX_DETS
    d_order, d_grp, d_rank = d_order[keep], d_grp[keep], d_rank[keep]
    d_area, d_score = d_area[d_order], d_score[d_order]  # keypoints stay in file order: d_order maps to them

    thr = np.minimum(OKS_THRESHOLDS, 1 - 1e-10)
    matched, matched_ig, matched_zero = _match_all(
        d_xy,
        (d_lo, d_hi),
        d_order,
        d_grp,
        d_rank,
        g_kp,
        g_grp,
        g_area,
        g_crowd,
        g_ig,
        g_bbox,
        g_zero,
        variances,
        thr,
        K * I,
    )
    # a match to a GT whose id is 0 reads as "unmatched" in pycocotools (dtMatches stores GT ids, 0 = none)
    matched &= ~matched_zero
    lo, hi = np.array(AREA_RANGES).T
    d_out = (d_area[:, None] < lo) | (d_area[:, None] > hi)  # (n, A)
    d_ignored = matched_ig | (~matched & d_out[..., None])  # (n, A, T)
    g_regular = ~g_ig[:, None] & (g_area[:, None] >= lo) & (g_area[:, None] <= hi)  # (G, A)
    return _accumulate(d_score, d_grp // I, matched, d_ignored, g_grp // I, g_regular, K)


def _match_all(
    d_xy, d_box, d_src, d_grp, d_rank, g_kp, g_grp, g_area, g_crowd, g_ig, g_bbox, g_zero, variances, thr, ngrp
):
    """OKS of every (detection, GT) pair of a group, then greedy matching of all groups at once.

    Detections sorted by (group, rank), d_src their rows in d_xy and d_box; GT sorted by group.
    Returns matched, matched_ignored, matched_zero_id: (n_dets, A, T) bool.
    """
    n_d, A, T = len(d_grp), len(AREA_RANGES), len(thr)
    out = [np.zeros((n_d, A, T), dtype=bool) for _ in range(3)]
    g_count = np.bincount(g_grp, minlength=ngrp)
    g_first = np.concatenate([[0], np.cumsum(g_count)[:-1]])
    g_pos = np.arange(len(g_grp)) - g_first[g_grp]  # position of each GT inside its group
    per_det = g_count[d_grp]
    P = int(per_det.sum())
    if P == 0:
        return out
    det_of_pair = np.repeat(np.arange(n_d), per_det)
    pair_start = np.concatenate([[0], np.cumsum(per_det)[:-1]])
    gt_of_pair = g_first[d_grp][det_of_pair] + (np.arange(P) - pair_start[det_of_pair])
    in_pair = np.bincount(gt_of_pair, minlength=len(g_grp)) > 0
    need_box = in_pair & ((g_kp[..., 2] > 0).sum(1) == 0) & np.isnan(g_bbox).any(1)
    if np.any(need_box):
        raise ValueError("gt['annotations']: a person without labelled keypoints has no 'bbox', which its OKS needs")
    pair_oks = _oks_for_matching(d_xy, d_box, d_src[det_of_pair], g_kp, gt_of_pair, g_area, g_bbox, variances, thr)

    # bucket groups by GT count (next power of two) so that the padding stays small
    active = np.flatnonzero((np.bincount(d_grp, minlength=ngrp) > 0) & (g_count > 0))
    size = (2 ** np.ceil(np.log2(g_count[active]))).astype(int)
    local = np.full(ngrp, -1)
    pair_grp = d_grp[det_of_pair]
    for gsize in np.unique(size):
        in_size = active[size == gsize]
        step = max(1, 4_000_000 // (gsize * gsize * MAX_DETS))  # bounds the (G, G, B, D) rank temporary
        for c in range(0, len(in_size), step):
            groups = in_size[c : c + step]
            B, G = len(groups), int(g_count[groups].max())
            local[groups] = np.arange(B)
            p = np.flatnonzero(local[pair_grp] >= 0)
            O = np.full((G, B, MAX_DETS), -1.0)  # -1: padding, never reaches a threshold
            pd = det_of_pair[p]
            O[g_pos[gt_of_pair[p]], local[d_grp[pd]], d_rank[pd]] = pair_oks[p]
            gi = np.flatnonzero(local[g_grp] >= 0)
            at = (g_pos[gi], local[g_grp[gi]])
            per_gt = []
            for src, fill in ((g_crowd, False), (g_ig, True), (g_area, 0.0), (g_zero, False)):
                x = np.full((G, B), fill, dtype=src.dtype)
                x[at] = src[gi]
                per_gt.append(x)
            res = _match_bucket(O, *per_gt, thr)
            di = np.flatnonzero(local[d_grp] >= 0)
            at_d = (local[d_grp[di]], d_rank[di])
            for o, r in zip(out, res):
                o[di] = r[at_d]
            local[groups] = -1
    return out


def _accumulate(score, d_cat, matched, ignored, g_cat, g_regular, K):
    """COCOeval.accumulate: precision (T, R, K, A, 1), recall (T, K, A, 1); -1 where a cell has no GT.

    Detections (n,) in (category, image, rank) order; matched/ignored (n, A, T); g_regular (G, A).
    """
    A, T, R = matched.shape[1], matched.shape[2], len(RECALL_POINTS)
    precision = -np.ones((T, R, K, A, 1))
    recall = -np.ones((T, K, A, 1))
    tp_all = (matched & ~ignored).reshape(len(score), A * T)
    counted_all = (~ignored).reshape(len(score), A * T)
    for k in range(K):
        npig = g_regular[g_cat == k].sum(0)  # (A,)
        dk = np.flatnonzero(d_cat == k)
        # all images together, by score; the stable sort keeps ties in (image, rank) order as COCOeval
        sel = dk[np.argsort(-score[dk], kind="mergesort")]
        nd = len(sel)
        # cumulative counts, exact integers in float64; fp + tp is simply the number of counted detections
        tp_sum = np.ascontiguousarray(tp_all[sel].T, dtype=float)  # (A*T, n)
        np.cumsum(tp_sum, axis=1, out=tp_sum)
        n_sum = np.ascontiguousarray(counted_all[sel].T, dtype=float)
        np.cumsum(n_sum, axis=1, out=n_sum)
        tp_sum, n_sum = tp_sum.reshape(A, T, nd), n_sum.reshape(A, T, nd)
        for a in range(A):
            if npig[a] == 0:
                continue
            if nd == 0:
                recall[:, k, a, 0] = 0
                precision[:, :, k, a, 0] = 0
                continue
            rc = tp_sum[a] / npig[a]
            pr = tp_sum[a] / (n_sum[a] + np.spacing(1))
            recall[:, k, a, 0] = rc[:, -1]
            for t in range(T):
                # precision envelope max(pr[i:]) at the first index reaching each recall point (0 past the end)
                idx = np.searchsorted(rc[t], RECALL_POINTS, side="left")
                reach = idx < nd
                if np.any(reach):
                    seg = np.maximum.reduceat(pr[t], idx[reach])  # max over [idx_r, idx_r+1), suffix below
                    precision[t, : int(reach.sum()), k, a, 0] = np.maximum.accumulate(seg[::-1])[::-1]
                precision[t, int(reach.sum()) :, k, a, 0] = 0.0
    return precision, recall


def _summarize(precision, recall) -> dict:
    """The ten COCO keypoint numbers from precision (T, R, K, A, 1) and recall (T, K, A, 1), as COCOeval.summarize."""

    def one(ap, iou_thr=None, area="all"):
        aind = [AREA_LABELS.index(area)]
        s = precision if ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == OKS_THRESHOLDS)[0]]
        s = s[:, :, :, aind, [0]] if ap else s[:, :, aind, [0]]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    vals = [
        one(ap, thr, area)
        for ap in (1, 0)
        for thr, area in ((None, "all"), (0.5, "all"), (0.75, "all"), (None, "medium"), (None, "large"))
    ]
    return dict(zip(STAT_NAMES, vals))


def format_summary(stats: dict) -> str:
    """The ten summary lines exactly as pycocotools' COCOeval.summarize prints them for keypoints."""
    line = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
    rows = []
    for name in STAT_NAMES:
        ap = name.startswith("AP")
        rest = name[2:]
        iou = {"50": "0.50", "75": "0.75"}.get(rest, "0.50:0.95")
        area = {"m": "medium", "l": "large"}.get(rest, "all")
        title = "Average Precision" if ap else "Average Recall"
        rows.append(line.format(title, "(AP)" if ap else "(AR)", iou, area, MAX_DETS, stats[name]))
    return "\n".join(rows)


def add_cli(subparsers) -> None:
    """Register `posekit eval GT.json RESULTS.json [--sigmas s1 s2 ...]`."""
    p = subparsers.add_parser(
        "eval",
        help="COCO keypoint AP/AR of a results file (same numbers as pycocotools)",
        description="Evaluate COCO keypoint results (a JSON list of {image_id, category_id, keypoints, score}) "
        "against COCO ground truth; prints the ten AP/AR lines exactly as pycocotools does.",
    )
    p.add_argument("gt", help="ground-truth COCO JSON (person_keypoints format)")
    p.add_argument("results", help="results JSON: list of {image_id, category_id, keypoints (3J), score}")
    p.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        default=None,
        help="OKS sigma per keypoint (required unless the set has the 17 COCO keypoints)",
    )
    p.set_defaults(func=_cli_eval)


def _cli_eval(args: argparse.Namespace) -> int:
    stats = coco_eval(args.gt, args.results, sigmas=args.sigmas)
    print(format_summary(stats))
    return 0


# --------------------------------------------------------------------------------------------
# a synthetic evaluation set (tests, benchmark, chapter)
# --------------------------------------------------------------------------------------------


def random_eval_set(
    num_images: int = 100,
    seed: int = 0,
    num_joints: int = 17,
    max_people: int = 6,
    dets_per_image: int = 20,
    crowd_frac: float = 0.05,
    unlabelled_frac: float = 0.05,
    empty_image_frac: float = 0.0,
    no_det_image_frac: float = 0.0,
    tie_scores: bool = False,
    id_offset: int = 1,
) -> tuple[dict, list]:
    """A deterministic synthetic COCO keypoint ground truth and results list: (gt dict, results list).

    Each image holds 1..max_people people of sizes from small to large (area 15^2..350^2 px^2), some
    crowd regions (iscrowd=1, no keypoints) and some people without labelled keypoints; each image
    gets `dets_per_image` detections: first one confident, mostly accurate estimate per person, then
    sloppier, less confident duplicates and false positives (scores are noisy, so the orders mix). tie_scores rounds
    scores to one decimal so many are equal. empty_image_frac: images without people;
    no_det_image_frac: images without detections.
    """
    rng = np.random.default_rng(seed)
    J = num_joints
    template = rng.uniform(-0.5, 0.5, (J, 2)) * np.array([0.6, 1.0])  # a fixed "body" in a unit box
    images = [{"id": int(i + id_offset), "width": 640, "height": 480} for i in range(num_images)]
    n_people = rng.integers(1, max_people + 1, num_images)
    n_people[rng.random(num_images) < empty_image_frac] = 0
    owner = np.repeat(np.arange(num_images), n_people)
    P = len(owner)
    size = np.exp(rng.uniform(np.log(15), np.log(350), P))
    centre = rng.uniform([50, 50], [590, 430], (P, 2))
    pose = template[None] + rng.normal(0, 0.06, (P, J, 2))
    xy = centre[:, None] + pose * size[:, None, None]
    v = rng.choice([0, 1, 2], p=[0.15, 0.25, 0.6], size=(P, J))
    kind = rng.random(P)
    crowd = kind < crowd_frac
    unlabelled = (~crowd) & (kind < crowd_frac + unlabelled_frac)
    v[crowd | unlabelled] = 0
    xy_gt = np.where(v[..., None] > 0, xy, 0.0)
    lo, hi = xy.min(1), xy.max(1)
    bbox = np.concatenate([lo, hi - lo], 1)
    area = size**2 * rng.uniform(0.4, 0.7, P)
    kps = np.concatenate([xy_gt, v[..., None]], -1).reshape(P, 3 * J)
    nk = (v > 0).sum(1)
    anns = [
        {
            "id": int(i + 1),
            "image_id": int(owner[i] + id_offset),
            "category_id": 1,
            "keypoints": kps[i].tolist(),
            "num_keypoints": int(nk[i]),
            "bbox": bbox[i].tolist(),
            "area": float(area[i]),
            "iscrowd": int(crowd[i]),
        }
        for i in range(P)
    ]
    gt = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{j}" for j in range(J)], "skeleton": []}],
    }
    # detections
    n_dets = np.full(num_images, dets_per_image)
    n_dets[rng.random(num_images) < no_det_image_frac] = 0
    d_img = np.repeat(np.arange(num_images), n_dets)
    D = len(d_img)
    first = np.concatenate([[0], np.cumsum(n_people)[:-1]])
    has = n_people[d_img] > 0
    # the first detections of an image find each person once (a good, confident estimate); the
    # rest are duplicates of a random person, sloppier and less confident, or false positives
    q = np.arange(D) - np.repeat(np.concatenate([[0], np.cumsum(n_dets)[:-1]]), n_dets)
    primary = has & (q < n_people[d_img])
    target = first[d_img] + np.where(primary, q, (rng.random(D) * np.maximum(n_people[d_img], 1)).astype(int))
    target = np.minimum(target, max(P - 1, 0))
    false_pos = (~has) | (~primary & (rng.random(D) < 0.3))
    # keypoint noise as a fraction of the person size
    quality = np.where(primary, np.minimum(rng.exponential(0.05, D), 0.4), rng.uniform(0.05, 0.4, D))
    score = np.where(primary, 0.95 - quality, 0.6 - quality) + rng.normal(0, 0.12, D) - 0.3 * false_pos
    score = np.clip(score, 0.001, 1.0)
    if P:
        base = xy[target] + rng.normal(0, 1, (D, J, 2)) * (quality * size[target])[:, None, None]
    else:
        base = np.zeros((D, J, 2))
    rand_size = np.exp(rng.uniform(np.log(15), np.log(350), D))
    rand = rng.uniform([50, 50], [590, 430], (D, 1, 2)) + template[None] * rand_size[:, None, None]
    dxy = np.where(false_pos[:, None, None], rand, base)
    if tie_scores:
        score = np.round(score, 1)
    dk = np.concatenate([dxy, np.ones((D, J, 1))], -1).reshape(D, 3 * J)
    results = [
        {"image_id": int(d_img[i] + id_offset), "category_id": 1, "keypoints": dk[i].tolist(), "score": float(score[i])}
        for i in range(D)
    ]
    return gt, results
