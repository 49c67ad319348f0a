"""The top-down pipeline: images → person boxes → crops → heatmaps → keypoints in the image → COCO results.

    results = top_down(images, pose_model, detector=det, image_ids=ids)          # detected boxes
    results = top_down(images, pose_model, boxes=gt_boxes(scenes), image_ids=ids)  # given boxes
    metrics.coco_eval(scenes["coco"], results)

Each step is SimpleBaseline's and HRNet's test procedure (Xiao et al. 2018; Sun et al. 2019, and their
reference code): every box is padded to the model's aspect ratio and enlarged by 1.25, cut out and resized to
the input (`posekit.crop`); the heatmaps are decoded (argmax with a quarter-pixel shift, or DARK) and mapped
back to the image with the exact inverse of the crop; each person is rescored as the box score times the
mean confidence of its joints above 0.2; then OKS-based non-maximum suppression (threshold 0.9) removes
duplicates of one person, and the rest become a COCO keypoint results list.
"""

from __future__ import annotations

import time

import numpy as np

from posekit import cocoio, codecs
from posekit.crop import box_to_center_scale, crop_batch, crop_to_image
from posekit.detection import detect_scales
from posekit.inference import flip_averaged, heatmaps_for_decoding, predict
from posekit.metrics import resolve_sigmas
from posekit.skeleton import COCO

JOINT_THRESHOLD = 0.2  # joints whose confidence exceeds this count in the rescoring (SimpleBaseline's in_vis_thre)
NMS_THRESHOLD = 0.9  # OKS above which the lower-scored of two poses is dropped (SimpleBaseline, HRNet)
PADDING = 1.25  # each box is enlarged by this before cropping


def oks_nms(keypoints, scores, areas, threshold: float = NMS_THRESHOLD, sigmas=None) -> np.ndarray:
    """Greedy non-maximum suppression of poses by OKS, as SimpleBaseline's and HRNet's `oks_nms`.

    keypoints (N, J, 2|3) of one image, scores (N,), areas (N,) (the crop box area of each pose). Visits the
    poses from the highest score; keeps one and drops every remaining pose whose OKS with it exceeds
    `threshold`, the OKS of a pair using the mean of their two areas and every joint. Returns the indices of
    the kept poses, best first.
    """
    kp = np.asarray(keypoints, float)
    scores, areas = np.asarray(scores, float).reshape(-1), np.asarray(areas, float).reshape(-1)
    if kp.ndim != 3 or len(kp) != len(scores) or len(areas) != len(scores):
        raise ValueError(f"oks_nms: keypoints (N, J, 2|3), scores (N,), areas (N,); found {kp.shape}, "
                         f"{scores.shape}, {areas.shape}")  # fmt: skip
    var = (2 * resolve_sigmas(sigmas, kp.shape[1])) ** 2
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        d2 = ((kp[rest, :, :2] - kp[i, :, :2]) ** 2).sum(-1)
        e = d2 / var / ((areas[i] + areas[rest])[:, None] / 2 + np.spacing(1)) / 2
        order = rest[np.exp(-e).mean(1) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def joint_confidence(heatmaps, coords) -> np.ndarray:
    """Each joint's confidence in [0, 1] from its decoding heatmap (N, J, h, w) at cells `coords` (N, J, 2).

    For probability maps (logit heatmaps after the spatial softmax) the probability mass in the 3×3 cells
    around the decoded cell; for Gaussian maps their value there (SimpleBaseline's maxval). A sharp, sure
    peak gives a value near the Gaussian target's own (0.75 for σ = 1 maps), a spread-out map a small one.
    """
    hm = np.asarray(heatmaps, np.float32)
    n, j, h, w = hm.shape
    cx = np.clip(np.rint(coords[..., 0]).astype(int), 0, w - 1)
    cy = np.clip(np.rint(coords[..., 1]).astype(int), 0, h - 1)
    ni, ji = np.meshgrid(np.arange(n), np.arange(j), indexing="ij")
    total = np.zeros((n, j), np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yy, xx = cy + dy, cx + dx
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            total += np.where(ok, hm[ni, ji, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)
    return total


def rescore(box_scores, confidences, threshold: float = JOINT_THRESHOLD) -> np.ndarray:
    """Person score = box score × the mean confidence of the joints above `threshold` (0 when none is)."""
    c = np.asarray(confidences, float)
    above = c > threshold
    mean = np.where(above.any(1), (c * above).sum(1) / np.maximum(above.sum(1), 1), 0.0)
    return np.asarray(box_scores, float) * mean


def padded_boxes(boxes) -> np.ndarray:
    """Boxes (K, 4) [x, y, w, h] as floats with sides of at least one pixel (a degenerate box still gets a crop)."""
    return np.maximum(np.asarray(boxes, float).reshape(-1, 4), [-np.inf, -np.inf, 1.0, 1.0])


def gt_boxes(scenes: dict) -> list:
    """Ground-truth person boxes of a scene set as the pipeline takes boxes: per image (boxes (P, 4),
    scores (P,) all 1), crowd regions left out."""
    out = []
    for iid in scenes["image_ids"]:
        a = cocoio.annotation_arrays(scenes["coco"], iid, include_crowd=False)
        keep = a["areas"] > 0
        out.append((a["bboxes"][keep], np.ones(int(keep.sum()))))
    return out


def estimate_poses(images, boxes_per_image, pose_model, *, input_size, flip_test: bool = False,
                   decoder: str = "argmax", sigma: float = 1.0, batch_size: int = 64, kset=COCO):  # fmt: skip
    """The single-person half of the pipeline for every box of every image (no rescoring, no NMS).

    images: (N, H, W, 3) uint8 or a list; boxes_per_image: per image (boxes (K, 4) [x, y, w, h], scores (K,)).
    input_size: (H, W) of the pose model. Returns a dict of arrays over all boxes: "image" (D,) index into
    images, "keypoints" (D, J, 3) [x, y, confidence] in image pixels, "box_scores" (D,), "areas" (D,) (of the
    padded crop box).
    """
    h, w = input_size
    img_of = np.concatenate([np.full(len(b), i) for i, (b, _) in enumerate(boxes_per_image)]).astype(int)
    boxes = padded_boxes(np.concatenate([np.asarray(b, float).reshape(-1, 4) for b, _ in boxes_per_image]))
    box_scores = np.concatenate([np.asarray(s, float).reshape(-1) for _, s in boxes_per_image])
    J = kset.num_joints
    kps = np.zeros((len(boxes), J, 3), np.float32)
    for s in range(0, len(boxes), batch_size):
        sl = slice(s, s + batch_size)
        src = images[img_of[sl]] if isinstance(images, np.ndarray) else [images[k] for k in img_of[sl]]
        crops, _, mats = crop_batch(src, boxes[sl], None, (w, h), padding=PADDING)
        x = crops.astype(np.float32) / 255.0
        out = flip_averaged(pose_model, x, batch_size, kset) if flip_test else predict(pose_model, x, batch_size)
        hm = heatmaps_for_decoding(out)
        cells, _ = codecs.decode_heatmaps(hm, decoder, sigma)
        conf = joint_confidence(hm, cells)
        in_crop = np.asarray(codecs.heatmap_to_input(cells, (w, h), (hm.shape[3], hm.shape[2])))
        kps[sl, :, :2] = crop_to_image(in_crop, mats)
        kps[sl, :, 2] = conf
    _, scale = box_to_center_scale(boxes, w / h, PADDING)
    return {"image": img_of, "keypoints": kps, "box_scores": box_scores, "areas": scale.prod(1)}


def assemble(poses: dict, image_ids, *, rescoring: bool = True, nms_threshold: float | None = NMS_THRESHOLD) -> list:
    """The last stage of `top_down`: the poses `estimate_poses` found (one per box) → a COCO keypoint results
    list. rescoring: score = box score × mean joint confidence (`rescore`), else the box score; nms_threshold:
    OKS-NMS among each image's poses (None: none). image_ids: one COCO id per image of `poses["image"]`."""
    kp, img = poses["keypoints"], poses["image"]
    scores = rescore(poses["box_scores"], kp[..., 2]) if rescoring else poses["box_scores"]
    keep = []
    for i in range(len(image_ids)):
        rows = np.flatnonzero(img == i)
        if nms_threshold is not None and len(rows) > 1:
            rows = rows[oks_nms(kp[rows], scores[rows], poses["areas"][rows], nms_threshold)]
        keep.append(rows)
    keep = np.concatenate(keep).astype(int) if keep else np.zeros(0, int)
    return cocoio.keypoint_results(np.asarray(image_ids, dtype=object)[img[keep]], kp[keep], scores[keep])


def top_down(images, pose_model, *, detector=None, boxes=None, image_ids=None, input_size=(128, 96),
             det_input: int = 128, top_k: int = 20, det_threshold: float = 0.05, det_flip_test: bool = False,
             flip_test: bool = False,
             decoder: str = "argmax", sigma: float = 1.0, nms_threshold: float | None = NMS_THRESHOLD,
             rescoring: bool = True, batch_size: int = 64, timings: dict | None = None) -> list[dict]:  # fmt: skip
    """The whole top-down pipeline over a set of images → a COCO keypoint results list. Used in chapter 4.

    images: (N, H, W, 3) uint8 or a list of images. Boxes come from `detector` (a CenterNet-style model, run
    by `posekit.detection.detect` at `det_input` pixels, its `top_k` best boxes above `det_threshold`, with
    CenterNet's flip test if `det_flip_test`; or a list of (model, input size) pairs, merged by
    `detection.detect_scales`) or are given as `boxes`: per image (boxes (K, 4) [x, y, w, h], scores (K,)),
    e.g. `gt_boxes(scenes)`.
    pose_model: a heatmap model taking (H, W) = `input_size` crops. image_ids: the COCO ids (default 1..N).
    flip_test, decoder, sigma: as `posekit.inference.predict_keypoints`. rescoring: score = box score × mean
    joint confidence (else the box score); nms_threshold: OKS-NMS per image (None: none).
    timings: a dict that receives the seconds spent in "detector", "pose" and "post" (added to what is there).
    """
    n = len(images)
    image_ids = list(range(1, n + 1)) if image_ids is None else list(image_ids)
    if (detector is None) == (boxes is None):
        raise ValueError("top_down: give exactly one of detector= (to detect boxes) and boxes= (per image)")
    if boxes is not None and len(boxes) != n:
        raise ValueError(f"top_down: boxes must hold one (boxes, scores) pair per image ({n}), got {len(boxes)}")
    if len(image_ids) != n:
        raise ValueError(f"top_down: image_ids must have one id per image ({n}), got {len(image_ids)}")
    clock = {"detector": 0.0, "pose": 0.0, "post": 0.0}
    t = time.perf_counter()
    if detector is not None:
        scales = detector if isinstance(detector, (list, tuple)) else [(detector, det_input)]
        boxes = detect_scales(scales, images, top_k=top_k, threshold=det_threshold, flip_test=det_flip_test)
    clock["detector"] += time.perf_counter() - t
    t = time.perf_counter()
    poses = estimate_poses(images, boxes, pose_model, input_size=input_size, flip_test=flip_test, decoder=decoder,
                           sigma=sigma, batch_size=batch_size)  # fmt: skip
    clock["pose"] += time.perf_counter() - t
    t = time.perf_counter()
    results = assemble(poses, image_ids, rescoring=rescoring, nms_threshold=nms_threshold)
    clock["post"] += time.perf_counter() - t
    if timings is not None:
        for k, v in clock.items():
            timings[k] = timings.get(k, 0.0) + v
    return results
