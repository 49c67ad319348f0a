"""Object keypoint similarity (OKS), COCO's keypoint counterpart of box IoU: the book's one implementation.

    OKS = Σ_j [v_j > 0] exp(−d_j² / (2 s² k_j²)) / Σ_j [v_j > 0],   s² = area, k_j = 2 σ_j

`oks` gives the (D, G) matrix of a few detections and ground truths (chapter 7); the COCO evaluator
(`posekit.metrics.coco`) calls `oks_pairs` on the (detection, ground truth) pairs of each image. Both
compute exactly what pycocotools' `COCOeval.computeOks` computes, bit for bit, so that a comparison such as
OKS ≥ 0.75 never flips on a rounding difference: the same operations in the same order, including the order
in which numpy's `np.sum` adds the per-joint terms (see `_sum_like_numpy`).
"""

from __future__ import annotations

import numpy as np

from posekit.metrics._inputs import _as_boxes, _as_gt, _as_norm, _as_pred, resolve_sigmas


def oks(dt, gt, areas, sigmas=None, gt_bboxes=None) -> np.ndarray:
    """Object keypoint similarity, exactly COCO's computeOks: dt (D, J, 2|3), gt (G, J, 3), areas (G,) -> (D, G).

    OKS = mean over labelled joints of exp(-d^2 / (2 * area * (2 sigma)^2)), d the pixel distance.
    A ground truth with no labelled joint uses, for every joint, the distance from the detection to
    the GT box grown by its width/height on each side (needs gt_bboxes (G, 4) [x, y, w, h]).
    sigmas (J,): None means COCO's 17 (only when J == 17). Detection scores/visibilities are ignored.
    Used in chapter 7.
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
    gts = OksGroundTruth.build(g, a, b, s)
    return oks_pairs(d, np.repeat(np.arange(D), G), gts, np.tile(np.arange(G), D)).reshape(D, G)


class OksGroundTruth:
    """Per-ground-truth data that OKS needs, laid out once for many pairs (joint-major, labelled joints first).

    keypoints (G, J, 3), areas (G,), boxes (G, 4) [x, y, w, h], sigmas (J,). Each GT's joints are reordered
    labelled-first (file order kept): pycocotools sums the compressed array of labelled joints, and this
    order replays it. A GT without labelled joints counts all J joints, measured to its box grown by its
    width and height on each side.
    """

    def __init__(self, order, xy, variances, count, scale, no_labels, box_lo, box_hi):
        self.order, self.xy, self.variances = order, xy, variances  # (J, G), (J, G, 2), (J, G)
        self.count, self.scale, self.no_labels = count, scale, no_labels  # (G,) joints summed, area + eps, bool
        self.box_lo, self.box_hi = box_lo, box_hi  # (G, 2) the grown box of GTs without labels

    @classmethod
    def build(cls, keypoints, areas, boxes, sigmas) -> OksGroundTruth:
        kp = np.asarray(keypoints, dtype=float)
        G, J = kp.shape[:2]
        labelled = kp[..., 2] > 0
        count = labelled.sum(1)
        no_labels = count == 0
        order = np.argsort(~labelled, axis=1, kind="stable")  # (G, J), labelled joints first
        xy = np.take_along_axis(kp[..., :2], order[..., None], axis=1).transpose(1, 0, 2)
        variances = ((np.asarray(sigmas, dtype=float) * 2) ** 2)[order.T]  # pycocotools: vars = (sigmas * 2)**2
        box = np.asarray(boxes, dtype=float).reshape(G, 4)
        box_lo = np.stack([box[:, 0] - box[:, 2], box[:, 1] - box[:, 3]], -1)
        box_hi = np.stack([box[:, 0] + box[:, 2] * 2, box[:, 1] + box[:, 3] * 2], -1)
        scale = np.asarray(areas, dtype=float) + np.spacing(1)
        return cls(np.ascontiguousarray(order.T), xy, variances, np.where(no_labels, J, count), scale, no_labels,
                   box_lo, box_hi)  # fmt: skip

    def take(self, idx) -> OksGroundTruth:
        """The ground truths `idx` only."""
        return OksGroundTruth(self.order[:, idx], self.xy[:, idx], self.variances[:, idx], self.count[idx],
                              self.scale[idx], self.no_labels[idx], self.box_lo[idx], self.box_hi[idx])  # fmt: skip


def oks_pairs(det_xy, det_idx, gts: OksGroundTruth, gt_idx, chunk: int = 65536) -> np.ndarray:
    """OKS of P (detection, ground truth) pairs: det_xy (N, J, 2), indices det_idx, gt_idx (P,) -> (P,).

    The arithmetic of computeOks, term by term: e = (dx² + dy²) / var / (area + eps) / 2, exp(−e) over the
    labelled joints, summed as np.sum sums them, divided by their count.
    """
    det_idx, gt_idx = np.asarray(det_idx), np.asarray(gt_idx)
    out = np.empty(len(det_idx))
    for s in range(0, len(det_idx), chunk):
        di, gi = det_idx[s : s + chunk], gt_idx[s : s + chunk]
        d = det_xy[di[None, :], gts.order[:, gi]]  # (J, p, 2): each pair's joints in its GT's order
        delta = d - gts.xy[:, gi]
        nl = np.flatnonzero(gts.no_labels[gi])
        if len(nl):  # distance to the grown box, per coordinate
            dn = d[:, nl]
            lo, hi = gts.box_lo[gi[nl]], gts.box_hi[gi[nl]]
            delta[:, nl] = np.maximum(0, lo - dn) + np.maximum(0, dn - hi)
        e = (delta[..., 0] ** 2 + delta[..., 1] ** 2) / gts.variances[:, gi] / gts.scale[gi] / 2
        k = gts.count[gi]
        terms = np.where(np.arange(e.shape[0])[:, None] < k, np.exp(-e), 0.0)  # (J, p), 0 past the labelled ones
        out[s : s + chunk] = _sum_like_numpy(terms, k) / k
    return out


def _sum_like_numpy(terms: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Σ of the first count[p] entries of each column of terms (J, P), added in np.sum's order. Zeros follow.

    numpy sums a contiguous array of n < 8 numbers one by one; from 8 on (up to its block size of 128) it
    keeps 8 running sums r[0..7] over the first 8·⌊n/8⌋ numbers, adds them as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))
    and then the remaining numbers one by one. Adding the zeros that follow the labelled terms changes nothing
    (x + 0 = x exactly), so each case is one fixed sequence of vector additions.
    """
    J, P = terms.shape
    if J > 128:
        raise ValueError(f"OKS with more than 128 keypoints is not supported (found {J})")
    blocks = count // 8
    out = np.empty(P)
    for nb in np.unique(blocks):
        sel = np.flatnonzero(blocks == nb)
        t = terms[:, sel]
        if nb == 0:
            acc = np.zeros(len(sel))
            for row in t[: min(J, 7)]:
                acc += row
        else:
            r = t[:8].copy()
            for b in range(1, nb):
                r += t[8 * b : 8 * b + 8]
            acc = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            for row in t[8 * nb : min(J, 8 * nb + 7)]:
                acc += row
        out[sel] = acc
    return out
