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
    di, gi = np.repeat(np.arange(D), G), np.tile(np.arange(G), D)
    return oks_pairs(d[..., 0], d[..., 1], di, gts, gi).reshape(D, G)


class OksGroundTruth:
    """Per-ground-truth data that OKS needs, laid out once for many pairs (joint-major, labelled joints first).

    keypoints (G, J, 3), areas (G,), boxes (G, 4) [x, y, w, h], sigmas (J,). Each GT's joints are reordered
    labelled-first (file order kept): pycocotools sums the compressed array of labelled joints, and this
    order replays it. A GT without labelled joints counts all J joints, measured to its box grown by its
    width and height on each side.
    """

    def __init__(self, order, x, y, variances, count, scale, no_labels, box_lo, box_hi):
        self.order, self.x, self.y, self.variances = order, x, y, variances  # each (J, G)
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
        xy = np.take_along_axis(kp[..., :2], order[..., None], axis=1)
        variances = ((np.asarray(sigmas, dtype=float) * 2) ** 2)[order.T]  # pycocotools: vars = (sigmas * 2)**2
        box = np.asarray(boxes, dtype=float).reshape(G, 4)
        box_lo = np.stack([box[:, 0] - box[:, 2], box[:, 1] - box[:, 3]], -1)
        box_hi = np.stack([box[:, 0] + box[:, 2] * 2, box[:, 1] + box[:, 3] * 2], -1)
        scale = np.asarray(areas, dtype=float) + np.spacing(1)
        t = lambda a: np.ascontiguousarray(a.T)
        return cls(t(order), t(xy[..., 0]), t(xy[..., 1]), np.ascontiguousarray(variances),
                   np.where(no_labels, J, count), scale, no_labels, box_lo, box_hi)  # fmt: skip


def oks_pairs(det_x, det_y, det_idx, gts: OksGroundTruth, gt_idx, chunk: int = 8192) -> np.ndarray:
    """OKS of P (detection, ground truth) pairs: keypoint coordinates det_x, det_y (N, J), det_idx, gt_idx (P,).

    The arithmetic of computeOks, term by term: e = (dx² + dy²) / var / (area + eps) / 2, exp(−e) over the
    labelled joints, summed as np.sum sums them, divided by their count. Pairs go through in chunks whose
    (J, chunk) temporaries stay small (large temporaries cost more in allocation than in arithmetic).
    """
    det_idx, gt_idx = np.asarray(det_idx), np.asarray(gt_idx)
    J = gts.order.shape[0]
    det_x = np.ascontiguousarray(det_x, dtype=float).ravel()  # (N·J,): joint j of detection i at i·J + j
    det_y = np.ascontiguousarray(det_y, dtype=float).ravel()
    rows = np.arange(J)[:, None]
    out = np.empty(len(det_idx))
    for s in range(0, len(det_idx), chunk):
        di, gi = det_idx[s : s + chunk], gt_idx[s : s + chunk]
        at = np.take(gts.order, gi, axis=1)
        at += (di * J)[None, :]  # each pair's joints in its GT's order
        dx, dy = np.take(det_x, at), np.take(det_y, at)
        nl = np.flatnonzero(gts.no_labels[gi])
        dx -= np.take(gts.x, gi, axis=1)
        dy -= np.take(gts.y, gi, axis=1)
        if len(nl):  # distance to the grown box, per coordinate
            lo, hi = gts.box_lo[gi[nl]], gts.box_hi[gi[nl]]
            for d, c, det in ((dx, 0, det_x), (dy, 1, det_y)):
                v = np.take(det, at[:, nl])
                d[:, nl] = np.maximum(0, lo[:, c] - v) + np.maximum(0, v - hi[:, c])
        dx *= dx
        dy *= dy
        dx += dy
        dx /= np.take(gts.variances, gi, axis=1)
        dx /= gts.scale[gi]
        dx /= 2
        np.negative(dx, out=dx)
        np.exp(dx, out=dx)
        k = gts.count[gi]
        np.copyto(dx, 0.0, where=rows >= k)  # past the labelled ones
        out[s : s + chunk] = _sum_like_numpy(dx, k) / k
    return out


def _sum_like_numpy(terms: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Σ of the first count[p] entries of each column of terms (J, P), added in np.sum's order. Zeros follow.

    numpy sums a contiguous array of n < 8 numbers one by one; from 8 on (up to its block size of 128) it
    keeps 8 running sums r[0..7] over the first 8·⌊n/8⌋ numbers, adds them as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))
    and then the remaining numbers one by one. Adding the zeros that follow the labelled terms changes nothing
    (x + 0 = x exactly), so each case (the number of blocks of 8) is one fixed sequence of vector additions,
    done for all columns and kept where it applies.
    """
    J, P = terms.shape
    if J > 128:
        raise ValueError(f"OKS with more than 128 keypoints is not supported (found {J})")
    blocks = count // 8
    out = np.empty(P)
    for nb in np.unique(blocks):
        if nb == 0:
            acc = np.zeros(P)
            for row in terms[: min(J, 7)]:
                acc += row
        else:
            r = terms[:8].copy()
            for b in range(1, nb):
                r += terms[8 * b : 8 * b + 8]
            acc = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            for row in terms[8 * nb : min(J, 8 * nb + 7)]:
                acc += row
        np.copyto(out, acc, where=blocks == nb)
    return out
