"""Person detection as CenterNet does it ("Objects as Points", Zhou et al. 2019): targets, loss, decoding.

    heat, size, offset, mask, ignore = center_targets(boxes, crowd, input_size=(128, 128))   # training targets
    loss, aux = losses.detection_loss(out, batch)                                          # focal + L1 terms
    boxes, scores = decode_detections(out, top_k=20)                                       # per image, input px
    dets = detect(model, images, input_size=128)                                           # image pixels

A person is the centre of its box. The target is a heatmap with a Gaussian bump at every box centre (its
radius from the box size by CornerNet's and CenterNet's reference code, `gaussian_radius`: meant as the largest
corner shift that keeps IoU ≥ 0.7, it is about three times that, see `overlap_radius`), the box's width and
height, and the centre's sub-cell offset, both regressed at the centre cell only. The
heatmap is trained with the penalty-reduced focal loss; sizes and offsets with an L1 loss (both in
`posekit.losses`). Decoding keeps the
cells that are maxima of their 3×3 neighbourhood (the max-pool replaces box NMS), the top K of them, and
reads a box at each.

Geometry: the detector sees the image resized to a square `input_size` (the longer side fitted, the rest
padded with zeros); map cell (i, j) stands for input point (stride·j, stride·i), as in CenterNet's code;
boxes are COCO [x, y, w, h].
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from posekit.crop import warp_images
from posekit.inference import predict
from posekit.metrics.coco import box_iou_pairs
from posekit.models.output import DetectionOutput

MIN_OVERLAP = 0.7  # the IoU the radius is meant to keep


def gaussian_radius(height, width, min_overlap: float = MIN_OVERLAP) -> np.ndarray:
    """The Gaussian radius of CornerNet's and CenterNet's reference code, which the detector is trained with.

    The code means the largest shift r of a box's corners that keeps IoU ≥ `min_overlap` with the box, over
    three cases (both corners moved inwards, both outwards, one of each), each a quadratic in r, and takes the
    smallest of the three. Its algebra slips: it takes the larger root where the smaller one bounds r, and
    divides by 2 instead of 2a, so its radius is larger than the IoU radius (`overlap_radius`), about 3.3×
    for a square box at 0.7; what it guarantees is that it is never smaller (tested), so every centre that
    keeps the IoU lies inside the Gaussian's bump. The book keeps the reference's value because the papers'
    detectors are trained with it; CenterNet draws its centre Gaussian with σ = (2r + 1) / 6.
    height, width: arrays of box sizes (any unit; r comes out in it).
    """
    h, w, o = np.asarray(height, float), np.asarray(width, float), float(min_overlap)
    b1, c1 = h + w, w * h * (1 - o) / (1 + o)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - o) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * o, -2 * o * (h + w), (o - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def overlap_radius(height, width, min_overlap: float = MIN_OVERLAP) -> np.ndarray:
    """The largest r such that moving a box's two corners by up to r each (in x and y) keeps IoU ≥ `min_overlap`.

    CornerNet's three cases solved exactly: both corners moved inwards, (h − 2r)(w − 2r) = o·hw; both
    outwards, hw = o(h + 2r)(w + 2r); one in and one out, (h − r)(w − r) = o(2hw − (h − r)(w − r)). Each
    gives the smallest positive root of its quadratic; the radius is the smallest of the three (the first
    case binds). What `gaussian_radius` meant to compute.
    """
    h, w, o = np.asarray(height, float), np.asarray(width, float), float(min_overlap)
    s, p = h + w, h * w
    inward = (2 * s - np.sqrt(4 * s**2 - 16 * (1 - o) * p)) / 8
    outward = (-2 * o * s + np.sqrt(4 * o**2 * s**2 + 16 * o * (1 - o) * p)) / (8 * o)
    mixed = (s - np.sqrt(s**2 - 4 * p * (1 - o) / (1 + o))) / 2
    return np.minimum(np.minimum(inward, outward), mixed)


def center_targets(boxes, crowd, input_size, output_stride: int = 4):
    """Training targets of one image for CenterNet, from its boxes (P, 4) [x, y, w, h] in input pixels.

    crowd (P,) bool: crowd regions are not people to find, but the heatmap loss ignores the cells they cover
    (a person in a crowd is neither a positive nor a false positive). Boxes with no area are skipped.
    Returns heat (h, w) (a Gaussian of peak 1 at each centre cell, the maximum where two overlap), size
    (h, w, 2) (box w, h in map cells), offset (h, w, 2) (centre − its cell, in [0, 1)), mask (h, w) (1 at
    the centre cells: where size and offset are trained), ignore (h, w) (1 inside crowd regions).
    """
    S = int(input_size)
    h = w = S // output_stride
    heat = np.zeros((h, w), np.float32)
    size = np.zeros((h, w, 2), np.float32)
    offset = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), np.float32)
    ignore = np.zeros((h, w), np.float32)
    boxes = np.asarray(boxes, float).reshape(-1, 4) / output_stride
    crowd = np.asarray(crowd, bool).reshape(-1)
    ys, xs = np.mgrid[0:h, 0:w]
    for (x, y, bw, bh), is_crowd in zip(boxes, crowd):
        if bw <= 0 or bh <= 0:
            continue
        if is_crowd:
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            ignore[max(y0, 0) : max(int(np.ceil(y + bh)), 0), max(x0, 0) : max(int(np.ceil(x + bw)), 0)] = 1
            continue
        c = np.array([x + bw / 2, y + bh / 2])
        ci = np.floor(c).astype(int)
        if not (0 <= ci[0] < w and 0 <= ci[1] < h):
            continue
        r = max(0, int(gaussian_radius(np.ceil(bh), np.ceil(bw))))
        sigma = (2 * r + 1) / 6
        g = np.exp(-((xs - ci[0]) ** 2 + (ys - ci[1]) ** 2) / (2 * sigma**2))
        g[(np.abs(xs - ci[0]) > r) | (np.abs(ys - ci[1]) > r)] = 0
        heat = np.maximum(heat, g.astype(np.float32))
        size[ci[1], ci[0]] = (bw, bh)
        offset[ci[1], ci[0]] = c - ci
        mask[ci[1], ci[0]] = 1
    ignore *= heat < 1  # a person's own centre inside a crowd box stays a positive
    return heat, size, offset, mask, ignore


def decode_detections(out: DetectionOutput, top_k: int = 20):
    """Boxes from a detector's output (numpy arrays): 3×3 max-pool peaks, the top K per image.

    Returns boxes (B, K, 4) [x, y, w, h] in input pixels and scores (B, K) (the centre's sigmoid), best first.
    """
    logits = np.asarray(out.center_logits, np.float32)[..., 0]
    b, h, w = logits.shape
    heat = 1.0 / (1.0 + np.exp(-logits))
    peaks = heat * (maximum_filter(heat, size=(1, 3, 3), mode="constant", cval=-np.inf) == heat)
    k = min(top_k, h * w)
    flat = peaks.reshape(b, -1)
    idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(flat, idx, 1)
    ys, xs = np.divmod(idx, w)
    rows = np.arange(b)[:, None]
    off = np.asarray(out.offsets)[rows, ys, xs]
    wh = np.maximum(np.asarray(out.sizes)[rows, ys, xs], 0.0)
    cx, cy = xs + off[..., 0], ys + off[..., 1]
    s = out.output_stride
    boxes = np.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, wh[..., 0], wh[..., 1]], -1) * s
    return boxes.astype(np.float32), scores.astype(np.float32)


def resize_matrices(sizes, input_size: int) -> np.ndarray:
    """(N, 2, 3) affine maps image → detector input: each (W, H) image scaled by S / max(W, H), no shift."""
    wh = np.asarray(sizes, float).reshape(-1, 2)
    s = input_size / wh.max(1)
    m = np.zeros((len(wh), 2, 3))
    m[:, 0, 0] = m[:, 1, 1] = s
    return m


def to_input(images, input_size: int):
    """Images (a uint8 array (N, H, W, 3) or a list of differently sized ones) → (detector inputs (N, S, S, 3)
    float32 in [0, 1], matrices (N, 2, 3) image → input). The longer side becomes S; the rest is zero."""
    if isinstance(images, np.ndarray):
        sizes = np.tile([images.shape[2], images.shape[1]], (len(images), 1))
        same = images.shape[1] == images.shape[2] == input_size
    else:
        sizes, same = np.array([[im.shape[1], im.shape[0]] for im in images]), False
    mats = resize_matrices(sizes, input_size)
    x = np.asarray(images) if same else warp_images(images, mats, (input_size, input_size))
    return x.astype(np.float32) / 255.0, mats


def boxes_to_image(boxes, matrices) -> np.ndarray:
    """Boxes (N, K, 4) in detector input pixels → image pixels (the inverse of `resize_matrices`)."""
    s = np.asarray(matrices)[:, 0, 0][:, None, None]
    return np.asarray(boxes) / s


def flip_average(out: DetectionOutput, flipped: DetectionOutput) -> DetectionOutput:
    """CenterNet's flip test: the output for an input and the output for its mirror image, averaged.

    The centre probabilities (after the sigmoid, returned as logits again) and the sizes are averaged with the
    mirrored maps flipped back; the offsets are the unflipped input's (a mirrored x offset points the other way
    within its cell), as in CenterNet's code. Cell j of a map covers input pixels [s·j, s·j + s), which the
    mirror takes to cell w − 1 − j whenever the input width is a multiple of the stride s.
    """
    heat = (_sigmoid(out.center_logits) + _sigmoid(np.asarray(flipped.center_logits)[:, :, ::-1])) / 2
    heat = np.clip(heat, 1e-7, 1 - 1e-7)
    sizes = (np.asarray(out.sizes) + np.asarray(flipped.sizes)[:, :, ::-1]) / 2
    return DetectionOutput(center_logits=np.log(heat / (1 - heat)), sizes=sizes, offsets=np.asarray(out.offsets),
                           output_stride=out.output_stride)  # fmt: skip


def _sigmoid(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def detect(model, images, *, input_size: int, top_k: int = 20, threshold: float = 0.0, batch_size: int = 32,
           flip_test: bool = False):  # fmt: skip
    """Run a CenterNet-style `model` on images and decode: a list with one (boxes (K, 4), scores (K,)) per
    image, boxes [x, y, w, h] in image pixels, scores ≥ `threshold`, best first. flip_test: average the
    outputs for each image and its mirror image first (`flip_average`). Used in chapter 4."""

    out_boxes, out_scores = [], []
    for i in range(0, len(images), batch_size):
        x, mats = to_input(images[i : i + batch_size], input_size)
        out = predict(model, x, batch_size)
        if flip_test:
            out = flip_average(out, predict(model, x[:, :, ::-1], batch_size))
        boxes, scores = decode_detections(out, top_k)
        boxes = boxes_to_image(boxes, mats)
        for b, s in zip(boxes, scores):
            keep = s >= threshold
            out_boxes.append(b[keep])
            out_scores.append(s[keep])
    return list(zip(out_boxes, out_scores))


SOFT_NMS_SIGMA = 1.0  # chosen on held-out training scenes (chapter 4): 0.3, 0.5, 1.0, 2.0 tried


def soft_nms(boxes, scores, *, sigma: float = SOFT_NMS_SIGMA, top_k: int = 20, threshold: float = 0.0):
    """Gaussian Soft-NMS (Bodla et al. 2017), the merge of CenterNet's multi-scale test.

    Repeatedly keeps the best box left and multiplies every other box's score by exp(−IoU² / sigma) with it,
    instead of dropping the boxes above an IoU threshold (greedy NMS). boxes (K, 4) [x, y, w, h], scores (K,).
    Returns the kept (boxes (k, 4), decayed scores (k,)), best first, at most `top_k`, scores ≥ `threshold`.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1).copy()
    if len(boxes) != len(scores):
        raise ValueError(f"soft_nms: boxes and scores must have one row each, got {len(boxes)} and {len(scores)}")
    if sigma <= 0:
        raise ValueError(f"soft_nms: sigma must be > 0, got {sigma}")
    left = np.ones(len(boxes), bool)
    kept = []
    while left.any() and len(kept) < top_k:
        best = int(np.flatnonzero(left)[np.argmax(scores[left])])
        if scores[best] < threshold:
            break
        kept.append(best)
        left[best] = False
        others = np.flatnonzero(left)
        iou = box_iou_pairs(np.repeat(boxes[best][None], len(others), 0), boxes[others], np.zeros(len(others), bool))
        scores[others] *= np.exp(-(iou**2) / sigma)
    kept = np.asarray(kept, int)
    return boxes[kept].astype(np.float32), scores[kept].astype(np.float32)


def detect_scales(detectors, images, *, top_k: int = 20, threshold: float = 0.0, flip_test: bool = False,
                  sigma: float = SOFT_NMS_SIGMA, batch_size: int = 32):  # fmt: skip
    """CenterNet's multi-scale test: run each (model, input_size) of `detectors` (the same model at several
    input sizes, or models trained at them), pool each image's boxes and merge them by `soft_nms`. Returns what
    `detect` returns. A person too large for a detector's receptive field at a large input is found at a small
    one, a small person at the large one (chapter 4). With one (model, input_size), its boxes as `detect` gives
    them (CenterNet merges only the outputs of several scales)."""
    if len(detectors) == 1:
        (m, s), *_ = detectors
        return detect(m, images, input_size=s, top_k=top_k, threshold=threshold, flip_test=flip_test,
                      batch_size=batch_size)  # fmt: skip
    per_scale = [detect(m, images, input_size=s, top_k=top_k, flip_test=flip_test, batch_size=batch_size)
                 for m, s in detectors]  # fmt: skip
    return merge_scales(per_scale, sigma=sigma, top_k=top_k, threshold=threshold)


def merge_scales(per_scale, *, sigma: float = SOFT_NMS_SIGMA, top_k: int = 20, threshold: float = 0.0) -> list:
    """Detections of the same images from several scales (a list of `detect` outputs) → one per image: each
    image's boxes pooled and merged by `soft_nms`."""
    return [soft_nms(np.concatenate([b for b, _ in dets]), np.concatenate([s for _, s in dets]), sigma=sigma,
                     top_k=top_k, threshold=threshold) for dets in zip(*per_scale)]  # fmt: skip
