"""COCO evaluation (keypoints and boxes): pycocotools' COCOeval, number for number, vectorized.

    stats = coco_eval(gt, results)                      # {"AP": ..., "AP50": ..., ..., "ARl": ...}
    stats = coco_eval(gt, box_results, iou_type="bbox") # {"AP", ..., "APs", ..., "AR1", "AR10", "AR100", ...}
    ev = evaluate(gt, results); ev.precision            # the whole precision array, for PR curves

How COCOeval works, and how this module does the same work in a few array passes:

1. **Parse** the ground truth (GT) and the results into arrays (`_GroundTruth`, `_Detections`). GT that is
   crowd (iscrowd = 1), or, for keypoints, has no labelled keypoint, is *ignored*: matching it costs nothing
   and earns nothing.
2. **Similarity** of every (detection, GT) pair of the same image and category: OKS for keypoints
   (`posekit.metrics.oks`), IoU for boxes (against a crowd region the union is the detection's own area).
   Only the `max_dets` best-scored detections of an image count (20 for keypoints, 100 for boxes).
3. **Greedy matching**, per image, area range and threshold: detections in score order each take the
   unmatched GT of highest similarity above the threshold, regular GT before ignored GT, the last of tied
   similarities; a crowd GT can absorb any number of detections. Unmatched detections outside the area range
   are ignored. Here all images of similar GT count go through the matching together, all 10 thresholds and
   all area ranges at once, looping only over the detection rank (`_match_bucket`).
4. **Accumulate**: per category, area range and max-dets, all detections sorted by score; precision and
   recall by cumulative sums; the precision envelope sampled at 101 recall points (`_accumulate`).
5. **Summarize**: means over the cells that have GT (`_summarize`).

Images are matched in chunks, so memory stays bounded however many images there are.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from dataclasses import dataclass, replace

import numpy as np

from posekit.cocoio import read_json
from posekit.io import atomic_write_text
from posekit.metrics._inputs import resolve_sigmas
from posekit.metrics.oks import OksGroundTruth, oks_pairs

# COCOeval's parameters (Params.setDetParams / setKpParams), built with linspace exactly as pycocotools
# does, so that "IoU == .75" lookups and threshold comparisons see the very same floats.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
OKS_THRESHOLDS = IOU_THRESHOLDS
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
IOU_TYPES = ("keypoints", "bbox")


@dataclass(frozen=True)
class CocoParams:
    """What COCOeval fixes per iou type: max detections per image, area ranges, and the summary numbers.

    stats: (name, is_ap, iou threshold or None for the 0.50:0.95 mean, area label, max dets) per number.
    """

    iou_type: str
    max_dets: tuple[int, ...]
    area_ranges: tuple[tuple[float, float], ...]
    area_labels: tuple[str, ...]
    stats: tuple[tuple[str, bool, float | None, str, int], ...]

    @property
    def stat_names(self) -> tuple[str, ...]:
        return tuple(s[0] for s in self.stats)


def _kp_stats():
    out = []
    for ap in (True, False):
        for thr, area in ((None, "all"), (0.5, "all"), (0.75, "all"), (None, "medium"), (None, "large")):
            suffix = {0.5: "50", 0.75: "75"}.get(thr, "") + {"medium": "m", "large": "l"}.get(area, "")
            out.append((("AP" if ap else "AR") + suffix, ap, thr, area, 20))
    return tuple(out)


def _box_stats():
    ap = [("AP", None, "all"), ("AP50", 0.5, "all"), ("AP75", 0.75, "all"),
          ("APs", None, "small"), ("APm", None, "medium"), ("APl", None, "large")]  # fmt: skip
    ar = [("AR1", "all", 1), ("AR10", "all", 10), ("AR100", "all", 100),
          ("ARs", "small", 100), ("ARm", "medium", 100), ("ARl", "large", 100)]  # fmt: skip
    return tuple((n, True, t, a, 100) for n, t, a in ap) + tuple((n, False, None, a, m) for n, a, m in ar)


PARAMS = {
    "keypoints": CocoParams(
        "keypoints", (20,), ((0**2, 1e5**2), (32**2, 96**2), (96**2, 1e5**2)), ("all", "medium", "large"),
        _kp_stats(),
    ),
    "bbox": CocoParams(
        "bbox", (1, 10, 100), ((0**2, 1e5**2), (0**2, 32**2), (32**2, 96**2), (96**2, 1e5**2)),
        ("all", "small", "medium", "large"), _box_stats(),
    ),
}  # fmt: skip
STAT_NAMES = PARAMS["keypoints"].stat_names  # AP AP50 AP75 APm APl AR AR50 AR75 ARm ARl
BOX_STAT_NAMES = PARAMS["bbox"].stat_names  # AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl
MAX_DETS = PARAMS["keypoints"].max_dets[-1]
AREA_RANGES = PARAMS["keypoints"].area_ranges


def check_iou_type(iou_type: str) -> CocoParams:
    if iou_type not in PARAMS:
        raise ValueError(f"iou_type: expected one of {IOU_TYPES}, found {iou_type!r}")
    return PARAMS[iou_type]


# --------------------------------------------------------------------------------------------------- parsing
def _loaded(x, what: str):
    """`x` itself, or the JSON in the file it names (a malformed file: an error naming the file and position)."""
    return read_json(x, what) if isinstance(x, (str, os.PathLike)) else x


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


def _number_lists(items, key, name, width: int) -> np.ndarray:
    """The list field `key` of every item as a (n, width) float array (each list must have `width` numbers)."""
    lists = _field(items, key, name)
    lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    if np.any(lens != width):
        i = int(np.argmax(lens != width))
        raise ValueError(f"{name}[{i}][{key!r}]: expected {width} values, found {int(lens[i])}")
    try:
        flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=float, count=len(lists) * width)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: every {key!r} must be a list of numbers") from None
    out = flat.reshape(len(lists), width)
    if not np.all(np.isfinite(out)):
        i = int(np.argmax(~np.isfinite(out).all(1)))
        raise ValueError(f"{name}[{i}][{key!r}]: values must be finite, found NaN or inf")
    return out


class _Index:
    """Positions of ids in a sorted id list (vectorized for integer ids); -1 for an id that is absent."""

    def __init__(self, ids):
        self.ids = sorted(set(ids))
        self.pos = {k: i for i, k in enumerate(self.ids)}
        self.array = np.asarray(self.ids)

    def __len__(self):
        return len(self.ids)

    def __call__(self, values: list) -> np.ndarray:
        if self.array.dtype.kind in "iu" and len(values) and len(self.ids):
            v = np.asarray(values)
            if v.dtype.kind in "iu" and v.ndim == 1:
                at = np.minimum(np.searchsorted(self.array, v), len(self.ids) - 1)
                return np.where(self.array[at] == v, at, -1)
        return np.array([self.pos.get(x, -1) for x in values], dtype=np.int64).reshape(len(values))


@dataclass
class _GroundTruth:
    """The GT annotations COCOeval sees (those of listed images and categories), as arrays of length G."""

    images: _Index
    categories: _Index
    ids: list
    image: np.ndarray  # (G,) position in images
    category: np.ndarray  # (G,) position in categories
    area: np.ndarray  # (G,)
    crowd: np.ndarray  # (G,) bool
    ignore: np.ndarray  # (G,) bool: crowd, or (keypoints) no labelled keypoint
    zero_id: np.ndarray  # (G,) bool: id 0, which pycocotools' match bookkeeping cannot tell from "none"
    boxes: np.ndarray  # (G, 4) [x, y, w, h], NaN where an annotation has none (keypoints only)
    keypoints: np.ndarray | None  # (G, J, 3) for keypoints


def _parse_gt(gt, iou_type: str) -> _GroundTruth:
    name = "gt['annotations']"
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise ValueError("gt: expected a COCO dict with 'images', 'categories' and 'annotations'")
    images = _Index(_field(gt["images"], "id", "gt['images']"))
    categories = _Index(_field(gt["categories"], "id", "gt['categories']"))
    if not len(categories):
        raise ValueError("gt['categories']: expected at least one category, found none")
    anns = gt.get("annotations", [])
    image, category = images(_field(anns, "image_id", name)), categories(_field(anns, "category_id", name))
    keep = np.flatnonzero((image >= 0) & (category >= 0))  # COCOeval only sees listed images and categories
    anns = [anns[i] for i in keep]
    ids = _field(anns, "id", name)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: annotation ids must be unique, found duplicates")
    G = len(anns)
    area = np.array(_field(anns, "area", name), dtype=float).reshape(G)
    if not np.all(np.isfinite(area)) or np.any(area < 0):
        i = int(np.argmax(~np.isfinite(area) | (area < 0)))
        raise ValueError(f"{name}[{i}]['area']: expected a finite value >= 0, found {area[i]}")
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool).reshape(G)
    keypoints = None
    if iou_type == "bbox":
        boxes, ignore = _number_lists(anns, "bbox", name, 4), crowd
    else:
        boxes = np.array([a.get("bbox", (np.nan,) * 4) for a in anns], dtype=float).reshape(G, 4)
        width = len(anns[0]["keypoints"]) if anns and "keypoints" in anns[0] else 3
        keypoints = _number_lists(anns, "keypoints", name, width).reshape(G, -1, 3) if G else np.zeros((0, 0, 3))
        # pycocotools reads num_keypoints (not the v flags) to ignore people without keypoints; when the field
        # is missing we count v > 0 instead (pycocotools would raise KeyError)
        nk = np.array([a.get("num_keypoints", -1) for a in anns], dtype=float).reshape(G)
        nk = np.where(nk < 0, (keypoints[..., 2] > 0).sum(1), nk)
        ignore = crowd | (nk == 0)
    zero_id = np.array([i == 0 for i in ids], dtype=bool).reshape(G)
    return _GroundTruth(images, categories, ids, image[keep], category[keep], area, crowd, ignore, zero_id, boxes,
                        keypoints)  # fmt: skip


@dataclass
class _Detections:
    """The results COCOeval sees (categories of the GT), as arrays of length N, in file order."""

    image: np.ndarray  # (N,) position in the GT's images
    category: np.ndarray  # (N,) position in the GT's categories
    score: np.ndarray  # (N,)
    area: np.ndarray  # (N,) as loadRes sets it: the box's w·h, else the keypoints' extent
    boxes: np.ndarray | None  # (N, 4) [x, y, w, h] for bbox
    kx: np.ndarray | None  # (N, J) keypoint x for keypoints
    ky: np.ndarray | None  # (N, J) keypoint y
    extent: tuple | None  # (lo, hi), each (N, 2): the keypoints' bounding box
    index: np.ndarray  # (N,) position in the results list

    def take(self, idx) -> _Detections:
        pick = lambda a: None if a is None else a[idx]
        ext = None if self.extent is None else (self.extent[0][idx], self.extent[1][idx])
        return _Detections(self.image[idx], self.category[idx], self.score[idx], self.area[idx],
                           pick(self.boxes), pick(self.kx), pick(self.ky), ext, self.index[idx])  # fmt: skip


def _parse_results(dt, gt: _GroundTruth, iou_type: str, num_joints: int) -> _Detections:
    if not isinstance(dt, list):
        raise ValueError(f"results: expected a list of result dicts, found {type(dt).__name__}")
    if not dt:
        z = np.zeros(0)
        kz = np.zeros((0, num_joints))
        return _Detections(z.astype(int), z.astype(int), z, z, np.zeros((0, 4)), kz, kz,
                           (np.zeros((0, 2)), np.zeros((0, 2))), z.astype(int))  # fmt: skip
    img = _field(dt, "image_id", "results")
    image = gt.images(img)
    if np.any(image < 0):  # loadRes asserts that every result's image is in the GT
        missing = sorted({img[i] for i in np.flatnonzero(image < 0)}, key=str)
        raise ValueError(f"results: image ids not in the ground truth, found {missing[:5]} ({len(missing)} in all)")
    category = gt.categories(_field(dt, "category_id", "results"))
    try:
        score = np.fromiter(_field(dt, "score", "results"), dtype=float, count=len(dt))
    except (TypeError, ValueError):
        raise ValueError("results: every 'score' must be a number") from None
    if not np.all(np.isfinite(score)):
        raise ValueError(f"results[{int(np.argmax(~np.isfinite(score)))}]['score']: expected a finite number")
    boxes = kx = ky = extent = None
    first = dt[0]
    has_box = "bbox" in first and not first["bbox"] == []  # loadRes's test, on the first result only
    if iou_type == "bbox":
        boxes = _number_lists(dt, "bbox", "results", 4)
        area = boxes[:, 2] * boxes[:, 3]
    else:
        kp = _number_lists(dt, "keypoints", "results", 3 * num_joints).reshape(len(dt), num_joints, 3)
        kx, ky = np.ascontiguousarray(kp[..., 0]), np.ascontiguousarray(kp[..., 1])  # contiguous: fast to reduce
        lo = np.stack([kx.min(1), ky.min(1)], -1)
        hi = np.stack([kx.max(1), ky.max(1)], -1)
        extent = (lo, hi)
        if has_box:  # loadRes takes the area from a given box (its 'bbox' branch comes first) ...
            area = _number_lists(dt, "bbox", "results", 4)
            area = area[:, 2] * area[:, 3]
        else:  # ... and otherwise from the keypoints' extent
            area = (hi[:, 0] - lo[:, 0]) * (hi[:, 1] - lo[:, 1])
    out = _Detections(image, category, score, area, boxes, kx, ky, extent, np.arange(len(dt)))
    # results of categories absent from the ground truth are dropped, as COCOeval does
    return out if np.all(category >= 0) else out.take(np.flatnonzero(category >= 0))


def _num_joints(gt: dict, dt, gtp: _GroundTruth) -> int:
    if gtp.keypoints is not None and len(gtp.keypoints):
        values = gtp.keypoints.shape[1] * 3
    elif isinstance(dt, list) and dt and isinstance(dt[0], dict) and "keypoints" in dt[0]:
        values = len(dt[0]["keypoints"])
    else:
        values = -1
    if values < 3 or values % 3:
        raise ValueError(f"keypoints: expected 3 values per keypoint, found a list of length {values}")
    return values // 3


# ------------------------------------------------------------------------------------------------ similarity
def box_iou_pairs(det_boxes, gt_boxes, gt_crowd) -> np.ndarray:
    """IoU of P (detection, GT) box pairs, each (P, 4) [x, y, w, h]; crowd (P,) bool -> (P,).

    pycocotools' bbIou term by term: the overlap w = min(x+w) − max(x), h likewise (0 if either is ≤ 0), and
    IoU = overlap / union, where the union is the detection's own area when the GT is a crowd region (a
    detection inside a crowd box is not punished for the rest of the crowd).
    """
    d, g = np.asarray(det_boxes, dtype=float), np.asarray(gt_boxes, dtype=float)
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da, ga = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    union = np.where(gt_crowd, da, da + ga - inter)
    ok = (w > 0) & (h > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


class _Similarity:
    """OKS or IoU of (detection, GT) pairs, the GT side prepared once."""

    def __init__(self, gt: _GroundTruth, dets: _Detections, iou_type: str, sigmas, thresholds, prune: bool = True):
        self.gt, self.dets, self.iou_type = gt, dets, iou_type
        self.lowest = thresholds.min() if prune else 0.0  # log(0) = -inf: nothing is pruned
        if iou_type == "keypoints":
            J = dets.kx.shape[1]
            kp = gt.keypoints if len(gt.keypoints) else np.zeros((0, J, 3))
            self.oks_gt = OksGroundTruth.build(kp, gt.area, np.nan_to_num(gt.boxes), resolve_sigmas(sigmas, J))
            labelled = kp[..., 2] > 0
            big = np.where(labelled, 0.0, np.inf)
            self.g_lo = np.stack([(kp[..., 0] + big).min(1), (kp[..., 1] + big).min(1)], -1)  # (G, 2)
            self.g_hi = np.stack([(kp[..., 0] - big).max(1), (kp[..., 1] - big).max(1)], -1)
            self.max_var = float(self.oks_gt.variances.max()) if self.oks_gt.variances.size else 1.0

    def __call__(self, det_idx, gt_idx) -> np.ndarray:
        if self.iou_type == "bbox":
            return box_iou_pairs(self.dets.boxes[det_idx], self.gt.boxes[gt_idx], self.gt.crowd[gt_idx])
        no_box = self.oks_gt.no_labels[gt_idx] & np.isnan(self.gt.boxes[gt_idx]).any(1)
        if np.any(no_box):
            raise ValueError("gt['annotations']: a person without labelled keypoints has no 'bbox' (its OKS needs one)")
        # Prune pairs that cannot reach the lowest threshold: every labelled joint is at least as far as the gap
        # between the detection's keypoint box and the box of the GT's labelled keypoints, so
        # OKS <= exp(-gap^2 / (2 * max(var) * area)); such pairs keep OKS 0, which matches nothing either.
        lo, hi = self.dets.extent
        gap = np.maximum(0, np.maximum(lo[det_idx] - self.g_hi[gt_idx], self.g_lo[gt_idx] - hi[det_idx]))
        bound = -(gap**2).sum(1) / (2 * self.max_var * self.oks_gt.scale[gt_idx])
        with np.errstate(divide="ignore"):
            floor = np.log(self.lowest) - 1e-6
        live = np.flatnonzero(self.oks_gt.no_labels[gt_idx] | (bound >= floor))
        out = np.zeros(len(det_idx))
        out[live] = oks_pairs(self.dets.kx, self.dets.ky, det_idx[live], self.oks_gt, gt_idx[live])
        return out


# -------------------------------------------------------------------------------------------------- matching
@dataclass
class _Matches:
    """Per kept detection (in (category, image, rank) order), per area range and threshold: (n, A, T) bool."""

    matched: np.ndarray  # matched a GT
    ignored: np.ndarray  # counts neither as TP nor FP (matched an ignored GT, or unmatched outside the area)
    best: np.ndarray  # (n,) highest similarity to any GT of its image and category (0 if none)
    best_gt: np.ndarray  # (n,) that GT's row in _GroundTruth (-1 if none)
    gt_matched: np.ndarray  # (G, T) the GT was matched at area range "all" and each threshold


def _group_layout(n_groups, g_group, d_group):
    """Where each GT sits within its group, and the pairs (det, GT) of every group."""
    g_count = np.bincount(g_group, minlength=n_groups)
    g_first = np.concatenate([[0], np.cumsum(g_count)[:-1]])
    per_det = g_count[d_group]
    P = int(per_det.sum())
    det_of_pair = np.repeat(np.arange(len(d_group)), per_det)
    pair_start = np.concatenate([[0], np.cumsum(per_det)[:-1]]).astype(np.int64)
    gt_of_pair = g_first[d_group][det_of_pair] + (np.arange(P) - pair_start[det_of_pair])
    return g_count, g_first, det_of_pair, gt_of_pair


def _match_bucket(sim, crowd, ignore, gt_area, zero_id, thr, area_ranges):
    """Greedy COCO matching of a bucket of B groups at all area ranges and thresholds at once.

    sim (G, B, D) similarity (padding -1), crowd/ignore/zero_id (G, B) bool, gt_area (G, B), thr (T,).
    Returns matched, matched_ignored, matched_zero_id: (B, D, A, T) bool, and taken (G, B, T): which GT were
    matched at the first area range ("all").
    """
    G, B, D = sim.shape
    A, T = len(area_ranges), len(thr)
    # rank of each GT by (similarity, position): pycocotools keeps the LAST of equal best values
    less = (sim[None] < sim[:, None]) | (
        (sim[None] == sim[:, None]) & (np.arange(G)[None, :, None, None] < np.arange(G)[:, None, None, None])
    )
    rank = less.sum(1, dtype=np.int32)  # (G, B, D)
    lo, hi = np.array(area_ranges).T
    ig_a = ignore[..., None] | (gt_area[..., None] < lo) | (gt_area[..., None] > hi)  # (G, B, A)
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
        o = sim[:, :, r]
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
    return out_m, out_ig, out_z, taken[:, :, 0, :]


# Images are matched in chunks of about this many (detection, GT) pairs: memory stays bounded (a few hundred MB
# at most) however many images there are, and large enough chunks keep the per-chunk overhead small.
MAX_PAIRS_PER_CHUNK = 2_000_000


def _match(gt: _GroundTruth, dets: _Detections, d_group, d_rank, similarity, params: CocoParams, thr,
           keep_best: bool = False) -> _Matches:  # fmt: skip
    """Similarities and greedy matching of every group (category, image), a chunk of groups at a time.

    GT rows are sorted by group; detections (already cut to max_dets per group) by (group, rank).
    """
    n_groups = len(gt.categories) * len(gt.images)
    g_group = gt.category * len(gt.images) + gt.image
    n, A, T = len(d_group), len(params.area_ranges), len(thr)
    matched, ignored, zero = (np.zeros((n, A, T), dtype=bool) for _ in range(3))
    best, best_gt = np.zeros(n), np.full(n, -1)
    gt_matched = np.zeros((len(g_group), T), dtype=bool)
    g_count, g_first, det_of_pair, gt_of_pair = _group_layout(n_groups, g_group, d_group)
    if not len(det_of_pair):
        return _Matches(matched, ignored, best, best_gt, gt_matched)
    # chunks of whole groups holding about MAX_PAIRS_PER_CHUNK pairs each (detections are sorted by group)
    max_pairs = MAX_PAIRS_PER_CHUNK
    pairs_before = np.concatenate([[0], np.cumsum(g_count[d_group])])
    group_start = np.flatnonzero(np.r_[True, d_group[1:] != d_group[:-1]])
    at = pairs_before[group_start]  # pairs before each group
    first = np.unique(np.searchsorted(at, np.arange(0, pairs_before[-1], max_pairs), side="right") - 1)
    bounds = np.r_[group_start[first], n]
    for d0, d1 in zip(bounds[:-1], bounds[1:]):
        p0, p1 = pairs_before[d0], pairs_before[d1]
        dp, gp = det_of_pair[p0:p1], gt_of_pair[p0:p1]
        sim = similarity(dp, gp)
        if keep_best:  # only the per-detection tables need it
            _best_match(dp, gp, sim, best, best_gt)
        _match_groups(gt, d_group, d_rank, dp, gp, sim, g_count, g_first, params, thr, (matched, ignored, zero),
                      gt_matched, (d0, d1))  # fmt: skip
    best_gt[best <= 0] = -1
    # a match to a GT whose id is 0 reads as "unmatched" in pycocotools (dtMatches stores GT ids, 0 = none)
    matched &= ~zero
    return _Matches(matched, ignored, best, best_gt, gt_matched)


def _best_match(det_of_pair, gt_of_pair, sim, best, best_gt) -> None:
    """Each detection's highest similarity and the (last) GT reaching it; pairs come grouped by detection."""
    start = np.flatnonzero(np.r_[True, det_of_pair[1:] != det_of_pair[:-1]])
    dets = det_of_pair[start]
    best[dets] = np.maximum.reduceat(sim, start)
    top = np.where(sim == best[det_of_pair], np.arange(len(sim)), -1)
    best_gt[dets] = gt_of_pair[np.maximum.reduceat(top, start)]


def _match_groups(gt, d_group, d_rank, det_of_pair, gt_of_pair, sim, g_count, g_first, params, thr, out, gt_matched,
                  d_range):  # fmt: skip
    """Matching of the groups these pairs belong to (detections d_range[0]..d_range[1]−1, whole groups), in
    buckets of groups with similar GT counts (the next power of two: little padding)."""
    pair_group = d_group[det_of_pair]
    groups = np.unique(pair_group)
    size_of = np.zeros(len(g_count), dtype=np.int64)  # bucket size of each group here, 0 elsewhere
    size_of[groups] = 2 ** np.ceil(np.log2(g_count[groups])).astype(np.int64)
    g_pos_of_pair = gt_of_pair - g_first[pair_group]
    d0, d1 = d_range
    g0, g1 = g_first[groups[0]], g_first[groups[-1]] + g_count[groups[-1]]  # GT rows are sorted by group too
    g_group = (gt.category * len(gt.images) + gt.image)[g0:g1]
    local = np.full(len(g_count), -1)
    for gsize in np.unique(size_of[groups]):
        in_size = groups[size_of[groups] == gsize]
        ps = np.flatnonzero(size_of[pair_group] == gsize)
        ds = d0 + np.flatnonzero(size_of[d_group[d0:d1]] == gsize)
        gs = g0 + np.flatnonzero(size_of[g_group] == gsize)
        D = int(d_rank[ds].max()) + 1  # the deepest rank present, at most max_dets
        step = max(1, 4_000_000 // (gsize * gsize * D))  # bounds the (G, G, B, D) rank temporary
        for c in range(0, len(in_size), step):
            chunk = in_size[c : c + step]
            B, G = len(chunk), int(g_count[chunk].max())
            local[chunk] = np.arange(B)
            p = ps[local[pair_group[ps]] >= 0]
            S = np.full((G, B, D), -1.0)  # -1: padding, never reaches a threshold
            pd = det_of_pair[p]
            S[g_pos_of_pair[p], local[d_group[pd]], d_rank[pd]] = sim[p]
            rows = gs[local[g_group[gs - g0]] >= 0]
            at = (rows - g_first[g_group[rows - g0]], local[g_group[rows - g0]])
            per_gt = []
            for src, fill in ((gt.crowd, False), (gt.ignore, True), (gt.area, 0.0), (gt.zero_id, False)):
                x = np.full((G, B), fill, dtype=src.dtype)
                x[at] = src[rows]
                per_gt.append(x)
            *res, taken = _match_bucket(S, *per_gt, thr, params.area_ranges)
            di = ds[local[d_group[ds]] >= 0]
            at_d = (local[d_group[di]], d_rank[di])
            for o, r in zip(out, res):
                o[di] = r[at_d]
            gt_matched[rows] = taken[at]
            local[chunk] = -1


# ------------------------------------------------------------------------------------------------ accumulate
def _accumulate(score, d_cat, d_rank, matched, ignored, g_cat, g_regular, K, max_dets):
    """COCOeval.accumulate: precision (T, R, K, A, M), recall (T, K, A, M); -1 where a cell has no GT.

    Detections (n,) in (category, image, rank) order; matched/ignored (n, A, T); g_regular (G, A).
    """
    A, T, R, M = matched.shape[1], matched.shape[2], len(RECALL_POINTS), len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    tp_all = (matched & ~ignored).reshape(len(score), A * T)
    counted_all = (~ignored).reshape(len(score), A * T)
    for k in range(K):
        npig = g_regular[g_cat == k].sum(0)  # (A,)
        for m, max_det in enumerate(max_dets):
            dk = np.flatnonzero((d_cat == k) & (d_rank < max_det))
            # all images together, by score; the stable sort keeps ties in (image, rank) order as COCOeval
            sel = dk[np.argsort(-score[dk], kind="mergesort")]
            _accumulate_cell(tp_all[sel], counted_all[sel], npig, precision[:, :, k, :, m], recall[:, k, :, m])
    return precision, recall


def _accumulate_cell(tp, counted, npig, precision, recall):
    """One category and max-dets: fills precision (T, R, A) and recall (T, A) from the score-sorted detections."""
    T, _, A = precision.shape
    nd = len(tp)
    # cumulative counts, exact integers in float64; fp + tp is simply the number of counted detections
    tp_sum = np.ascontiguousarray(tp.T, dtype=float)  # (A*T, n)
    np.cumsum(tp_sum, axis=1, out=tp_sum)
    n_sum = np.ascontiguousarray(counted.T, dtype=float)
    np.cumsum(n_sum, axis=1, out=n_sum)
    tp_sum, n_sum = tp_sum.reshape(A, T, nd), n_sum.reshape(A, T, nd)
    for a in range(A):
        if npig[a] == 0:
            continue
        if nd == 0:
            recall[:, a] = 0
            precision[:, :, a] = 0
            continue
        rc = tp_sum[a] / npig[a]
        pr = tp_sum[a] / (n_sum[a] + np.spacing(1))
        recall[:, a] = rc[:, -1]
        for t in range(T):
            # precision envelope max(pr[i:]) at the first index reaching each recall point (0 past the end)
            idx = np.searchsorted(rc[t], RECALL_POINTS, side="left")
            reach = idx < nd
            if np.any(reach):
                seg = np.maximum.reduceat(pr[t], idx[reach])  # max over [idx_r, idx_r+1), suffix below
                precision[t, : int(reach.sum()), a] = np.maximum.accumulate(seg[::-1])[::-1]
            precision[t, int(reach.sum()) :, a] = 0.0


def _summarize(precision, recall, params: CocoParams) -> dict:
    """The summary numbers from precision (T, R, K, A, M) and recall (T, K, A, M), as COCOeval.summarize."""
    out = {}
    for name, ap, thr, area, max_det in params.stats:
        a, m = params.area_labels.index(area), params.max_dets.index(max_det)
        s = precision[:, :, :, a, m] if ap else recall[:, :, a, m]
        if thr is not None:
            s = s[np.where(thr == IOU_THRESHOLDS)[0]]
        out[name] = -1.0 if not np.any(s > -1) else float(np.mean(s[s > -1]))
    return out


# ----------------------------------------------------------------------------------------------- public API
@dataclass
class CocoEvaluation:
    """Everything `evaluate` computed: the summary, the arrays behind it and each detection's best match.

    precision (T, R, K, A, M): T thresholds (IOU_THRESHOLDS), R recall points (RECALL_POINTS), K categories,
    A area ranges (params.area_labels), M max-dets (params.max_dets); -1 where a cell has no GT.
    recall (T, K, A, M). category_ids: the K category ids, in order.
    """

    params: CocoParams
    stats: dict
    precision: np.ndarray
    recall: np.ndarray
    category_ids: list
    matches: dict | None = None  # with keep_matches=True: per-detection and per-GT tables (see `evaluate`)

    def pr_curve(self, iou: float = 0.5, area: str = "all", category=None) -> tuple[np.ndarray, np.ndarray]:
        """(recall points (R,), precision (R,)) at one threshold and area range, for the last max-dets.

        category: a category id, or None for the mean over categories with GT. Used in chapter 7.
        """
        at = np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))
        if not len(at):
            raise ValueError(f"iou: expected one of {np.round(IOU_THRESHOLDS, 2).tolist()}, found {iou}")
        if area not in self.params.area_labels:
            raise ValueError(f"area: expected one of {self.params.area_labels}, found {area!r}")
        p = self.precision[at[0], :, :, self.params.area_labels.index(area), -1]  # (R, K)
        if category is not None:
            if category not in self.category_ids:
                raise ValueError(f"category: expected one of {self.category_ids}, found {category!r}")
            return RECALL_POINTS.copy(), p[:, self.category_ids.index(category)]
        valid = (p > -1).all(0)
        return RECALL_POINTS.copy(), p[:, valid].mean(1) if valid.any() else np.full(len(RECALL_POINTS), -1.0)


def evaluate(gt, results, iou_type: str = "keypoints", sigmas=None, keep_matches: bool = False,
             area_range=None) -> CocoEvaluation:  # fmt: skip
    """Run the whole COCO evaluation and keep its arrays (`CocoEvaluation`); `coco_eval` returns the summary.

    keep_matches: also keep `matches`, a dict of two tables (dicts of equal-length arrays), for finding
    failures: "detections" (index (its position in `results`), image_id, category_id, score, rank, best
    (highest OKS/IoU to any GT of the image), best_gt_id, tp50, tp75 (true positive at 0.50 / 0.75, area
    "all"); detections past max_dets of their image are left out, as COCOeval leaves them) and
    "ground_truth" (image_id, category_id, gt_id, ignored, best (highest OKS/IoU of any counted detection),
    found50, found75).
    area_range: (low, high) replaces the "all" range (as setting COCOeval's params.areaRng[0] does), so "AP"
    and "AR" count only the people whose area lies in it, e.g. (0, 32**2) for COCO's small people.
    Used in chapters 5 and 7.
    """
    params = check_iou_type(iou_type)
    if area_range is not None:
        lo, hi = (float(v) for v in area_range)
        if not 0 <= lo < hi:
            raise ValueError(f"area_range: expected (low, high) with 0 <= low < high, found {area_range!r}")
        params = replace(params, area_ranges=((lo, hi),) + params.area_ranges[1:])
    gt_dict, results = _loaded(gt, "ground-truth file"), _loaded(results, "results file")
    g = _parse_gt(gt_dict, iou_type)
    J = _num_joints(gt_dict, results, g) if iou_type == "keypoints" else 0
    if iou_type == "keypoints":
        resolve_sigmas(sigmas, J)  # a clear error before any work
    d = _parse_results(results, g, iou_type, J)
    I, K = len(g.images), len(g.categories)

    # group = (category, image). GT keep file order inside a group (stable sort); detections go best score
    # first (stable, like COCOeval's mergesort) and only the first max_dets of a group count.
    g_rows = np.argsort(g.category * I + g.image, kind="stable")
    g = _take_gt(g, g_rows)
    d_group = d.category * I + d.image
    d_rows = np.lexsort((-d.score, d_group))
    d_group = d_group[d_rows]
    d_rank = np.arange(len(d_group)) - np.searchsorted(d_group, d_group, side="left")
    keep = d_rank < params.max_dets[-1]
    d_rows, d_group, d_rank = d_rows[keep], d_group[keep], d_rank[keep]
    d = d.take(d_rows)

    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
    sim = _Similarity(g, d, iou_type, sigmas, thr, prune=not keep_matches)
    m = _match(g, d, d_group, d_rank, sim, params, thr, keep_best=keep_matches)
    lo, hi = np.array(params.area_ranges).T
    d_out = (d.area[:, None] < lo) | (d.area[:, None] > hi)  # (n, A)
    d_ignored = m.ignored | (~m.matched & d_out[..., None])  # (n, A, T)
    g_regular = ~g.ignore[:, None] & (g.area[:, None] >= lo) & (g.area[:, None] <= hi)  # (G, A)
    precision, recall = _accumulate(d.score, d_group // I, d_rank, m.matched, d_ignored, g.category, g_regular, K,
                                    params.max_dets)  # fmt: skip
    matches = _match_tables(g, d, d_rank, m, d_ignored) if keep_matches else None
    return CocoEvaluation(params, _summarize(precision, recall, params), precision, recall, list(g.categories.ids),
                          matches)  # fmt: skip


def _match_tables(g: _GroundTruth, d: _Detections, d_rank, m: _Matches, d_ignored) -> dict:
    t50, t75 = 0, int(np.flatnonzero(np.isclose(IOU_THRESHOLDS, 0.75))[0])
    tp = m.matched[:, 0] & ~d_ignored[:, 0]  # (n, T) at area "all"
    gt_best = np.zeros(len(g.ids))
    has = m.best_gt >= 0
    np.maximum.at(gt_best, m.best_gt[has], m.best[has])
    ids = np.array(g.ids + [None], dtype=object)
    return {
        "detections": {
            "index": d.index, "image_id": g.images.array[d.image], "category_id": g.categories.array[d.category],
            "score": d.score, "rank": d_rank, "best": m.best, "best_gt_id": ids[m.best_gt],
            "tp50": tp[:, t50], "tp75": tp[:, t75],
        },
        "ground_truth": {
            "image_id": g.images.array[g.image], "category_id": g.categories.array[g.category],
            "gt_id": np.array(g.ids, dtype=object), "ignored": g.ignore, "best": gt_best,
            "found50": m.gt_matched[:, t50], "found75": m.gt_matched[:, t75],
        },
    }  # fmt: skip


def write_per_image_csv(ev: CocoEvaluation, path) -> int:
    """Write `ev.matches` as one CSV sorted by image: a row per detection, then a row per ground truth.

    Columns: image_id, category_id, kind ("detection" / "ground_truth"), id (the GT's id, or the detection's
    position in the results list), score, rank, best (highest OKS/IoU to the other side), best_gt_id, tp50,
    tp75 (a detection that is a true positive, or a GT that was found, at 0.50 / 0.75), ignored. Sort by `best`
    or filter on tp50 = 0 to find the failures. Written atomically; returns the number of rows.
    """

    if ev.matches is None:
        raise ValueError("write_per_image_csv: evaluate(..., keep_matches=True) keeps the matches it needs")
    det, gtt = ev.matches["detections"], ev.matches["ground_truth"]
    rows = [(i, c, "detection", k, f"{s:.6g}", r, f"{b:.6f}", "" if gid is None else gid, int(t5), int(t7), "")
            for k, i, c, s, r, b, gid, t5, t7 in zip(det["index"], det["image_id"], det["category_id"], det["score"],
                                                     det["rank"], det["best"], det["best_gt_id"], det["tp50"],
                                                     det["tp75"])]  # fmt: skip
    rows += [(i, c, "ground_truth", gid, "", "", f"{b:.6f}", "", int(f5), int(f7), int(ig))
             for i, c, gid, ig, b, f5, f7 in zip(gtt["image_id"], gtt["category_id"], gtt["gt_id"], gtt["ignored"],
                                                 gtt["best"], gtt["found50"], gtt["found75"])]  # fmt: skip
    rows.sort(key=lambda r: (str(r[0]) if not isinstance(r[0], (int, np.integer)) else int(r[0]), r[2]))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image_id", "category_id", "kind", "id", "score", "rank", "best", "best_gt_id", "tp50", "tp75",
                "ignored"])  # fmt: skip
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return len(rows)


def _take_gt(g: _GroundTruth, rows) -> _GroundTruth:
    return _GroundTruth(g.images, g.categories, [g.ids[i] for i in rows], g.image[rows], g.category[rows],
                        g.area[rows], g.crowd[rows], g.ignore[rows], g.zero_id[rows], g.boxes[rows],
                        None if g.keypoints is None else g.keypoints[rows])  # fmt: skip


def coco_eval(gt, results, sigmas=None, verbose: bool = False, iou_type: str = "keypoints", area_range=None) -> dict:
    """COCO AP/AR, identical to pycocotools' COCOeval(iouType=iou_type) -> {name: value}. Used in chapters 3 and 7.

    gt: a COCO dict or a JSON path; results: a list of {image_id, category_id, keypoints (3J) | bbox, score}
    or a JSON path. iou_type "keypoints": the ten numbers AP AP50 AP75 APm APl AR AR50 AR75 ARm ARl
    (`STAT_NAMES`); "bbox": the twelve AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl (`BOX_STAT_NAMES`).
    sigmas (J,): OKS sigmas, None for COCO's 17 (only when J == 17). area_range: see `evaluate`.

    Follows pycocotools exactly: crowd GT (and, for keypoints, GT with num_keypoints == 0) is ignored; the
    area ranges; the max_dets best-scored detections per image (stable sort); greedy matching per threshold
    (0.50:0.05:0.95, compared as >= min(t, 1-1e-10)) that prefers regular over ignored GT, keeps the last of
    tied similarities and lets a crowd GT absorb many detections; unmatched detections outside the area range
    (the result's box area, else the keypoints' extent) are ignored; precision envelope sampled at 101 recall
    points; cells without GT (-1) are left out of the means (a number is -1 when every cell is).
    An empty results list gives what COCOeval gives for no detections: 0 wherever there is GT.
    Raises ValueError on a wrong keypoint count, NaN/inf coordinates or scores, result image ids missing from
    the GT, negative areas, a malformed JSON file (naming the file and the position).
    """
    ev = evaluate(gt, results, iou_type, sigmas, area_range=area_range)
    if verbose:
        print(format_summary(ev.stats, iou_type))
    return ev.stats


def format_summary(stats: dict, iou_type: str = "keypoints") -> str:
    """The summary lines exactly as pycocotools' COCOeval.summarize prints them."""
    params = check_iou_type(iou_type)
    line = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
    rows = []
    for name, ap, thr, area, max_det in params.stats:
        title = "Average Precision" if ap else "Average Recall"
        iou = "0.50:0.95" if thr is None else f"{thr:0.2f}"
        rows.append(line.format(title, "(AP)" if ap else "(AR)", iou, area, max_det, stats[name]))
    return "\n".join(rows)
