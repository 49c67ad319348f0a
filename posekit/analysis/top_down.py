"""Chapter 4's analyses of the top-down pipeline: how good the boxes are, and what each stage costs in AP.

    detection_metrics(dets, val)                 # {"box_AP", "box_AP50", "recall50", ...}
    degrade_boxes(gt_boxes(val), drop=0.2, jitter=0.1, seed=0)   # a worse "detector" made from the truth
    oracle_poses(dets, val)                      # true poses behind detected boxes: what the detector alone costs
    codec_ceiling(val, (128, 96))                # AP of perfect heatmaps at a crop size
    centre_receptive_field(det, val["images"][:8], 256)   # the input a detector's centre cell reads
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posekit import codecs, metrics
from posekit.cocoio import box_results, keypoint_results
from posekit.crop import affine_matrix, box_to_center_scale, crop_to_image, transform_points
from posekit.scenes import people
from posekit.top_down import PADDING, oks_nms, padded_boxes


def recall_at_iou(dets, scenes: dict, iou: float = 0.5) -> np.ndarray:
    """Per non-crowd person (in image order), whether some detection has IoU ≥ `iou` with its box (bool)."""
    found = []
    for (boxes, _), gt in zip(dets, people(scenes)):
        regular = gt["bboxes"][(gt["iscrowd"] == 0) & (gt["areas"] > 0)]
        if not len(regular):
            continue
        if not len(boxes):
            found.append(np.zeros(len(regular), bool))
            continue
        d, g = np.repeat(boxes, len(regular), 0), np.tile(regular, (len(boxes), 1))
        ious = metrics.box_iou_pairs(d, g, np.zeros(len(d), bool)).reshape(len(boxes), len(regular))
        found.append(ious.max(0) >= iou)
    return np.concatenate(found) if found else np.zeros(0, bool)


def detection_metrics(dets, scenes: dict) -> dict:
    """Box AP/AR of detections (per image (boxes, scores)) on a scene set with the COCO box evaluator, and
    "recall50": the share of non-crowd people with a detection at IoU ≥ 0.5."""
    ids = np.concatenate([np.full(len(b), i, dtype=object) for i, (b, _) in zip(scenes["image_ids"], dets)])
    boxes = np.concatenate([np.asarray(b).reshape(-1, 4) for b, _ in dets])
    scores = np.concatenate([np.asarray(s).reshape(-1) for _, s in dets])
    stats = metrics.coco_eval(scenes["coco"], box_results(ids, boxes, scores), iou_type="bbox")
    return {**{f"box_{k}": v for k, v in stats.items()}, "recall50": float(recall_at_iou(dets, scenes).mean())}


def degrade_boxes(boxes, *, drop: float = 0.0, jitter: float = 0.0, seed: int = 0) -> list:
    """A controlled worse detector from per-image (boxes, scores): each box dropped with probability `drop`,
    its centre moved and its sides scaled by N(0, `jitter`) fractions of its size."""
    rng = np.random.default_rng(seed)
    out = []
    for b, s in boxes:
        b = np.asarray(b, float).reshape(-1, 4)
        keep = rng.random(len(b)) >= drop
        c = b[:, :2] + b[:, 2:] / 2 + rng.normal(0, jitter, (len(b), 2)) * b[:, 2:]
        wh = b[:, 2:] * np.exp(rng.normal(0, jitter, (len(b), 2)))
        nb = np.concatenate([c - wh / 2, wh], 1)
        out.append((nb[keep], np.asarray(s, float).reshape(-1)[keep]))
    return out


def oracle_poses(dets, scenes: dict, image_ids=None) -> list[dict]:
    """A COCO results list in which each detected box carries the true pose of the person it covers best.

    Each detection (per image (boxes, scores)) takes the keypoints of the non-crowd person whose box has the
    highest IoU with it (IoU ≥ 0.5; otherwise the box centre for every joint, a pose that matches nobody),
    its score is the box score, and OKS-NMS removes the duplicates it creates. Its AP is what the detector
    alone costs: a perfect single-person model behind these boxes would score it.
    """
    ids, kps, scores = [], [], []
    for iid, (boxes, sc), gt in zip(scenes["image_ids"], dets, people(scenes)):
        regular = (gt["iscrowd"] == 0) & (gt["areas"] > 0)
        g_boxes, g_kp = gt["bboxes"][regular], gt["keypoints"][regular]
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        kp = np.repeat((boxes[:, :2] + boxes[:, 2:] / 2)[:, None], g_kp.shape[1] if len(g_kp) else 17, 1)
        kp = np.concatenate([kp, np.ones(kp.shape[:2] + (1,))], -1)
        if len(g_boxes) and len(boxes):
            d, g = np.repeat(boxes, len(g_boxes), 0), np.tile(g_boxes, (len(boxes), 1))
            iou = metrics.box_iou_pairs(d, g, np.zeros(len(d), bool)).reshape(len(boxes), len(g_boxes))
            best = iou.argmax(1)
            hit = iou.max(1) >= 0.5
            kp[hit, :, :2] = g_kp[best[hit], :, :2]
        if len(boxes):
            keep = oks_nms(kp, sc, boxes[:, 2] * boxes[:, 3])
            ids += [iid] * len(keep)
            kps.append(kp[keep])
            scores.append(np.asarray(sc)[keep])
    if not kps:
        return []

    return keypoint_results(np.asarray(ids, dtype=object), np.concatenate(kps), np.concatenate(scores))


def codec_ceiling(scenes: dict, input_size, sigma: float = 1.0, output_stride: int = 4, area_range=None,
                  decoder: str = "argmax") -> float:  # fmt: skip
    """Keypoint AP of perfect heatmaps: every true pose cut out of its true box at `input_size` (H, W),
    drawn as Gaussian target maps at 1/`output_stride`, decoded (`codecs.decode_heatmaps`: by default the
    argmax with its quarter-cell shift; "dark" refines below the cell) and mapped back. What the map grid
    alone loses at this crop size, whatever the network. area_range: (low, high) to score only the people of
    that area (`metrics.coco_eval`); chapter 5 compares it by person size."""
    h, w = input_size
    ids, kps = [], []
    for iid, gt in zip(scenes["image_ids"], people(scenes)):
        regular = (gt["iscrowd"] == 0) & (gt["areas"] > 0)
        if not regular.any():
            continue
        boxes, kp = gt["bboxes"][regular], gt["keypoints"][regular]
        centre, scale = box_to_center_scale(padded_boxes(boxes), w / h, PADDING)
        mats = affine_matrix(centre, scale, 0.0, (w, h))
        in_crop = transform_points(kp, mats)
        hm_size = (w // output_stride, h // output_stride)
        maps, _ = codecs.heatmap_targets(in_crop, (w, h), hm_size, sigma)
        cells, _ = codecs.decode_heatmaps(np.asarray(maps), decoder, sigma)
        back = crop_to_image(np.asarray(codecs.heatmap_to_input(cells, (w, h), hm_size)), mats)
        ids += [iid] * len(back)
        kps.append(back)
    results = keypoint_results(np.asarray(ids, dtype=object), np.concatenate(kps), np.ones(len(ids)))
    return float(metrics.coco_eval(scenes["coco"], results, area_range=area_range)["AP"])


def centre_receptive_field(detector, images, input_size: int, share: float = 0.9) -> dict:
    """What input a CenterNet-style detector's centre cell reads, measured by gradients.

    For each image (fitted into the `input_size` input as `detection.detect` does), the gradient of the centre
    cell's outputs (centre logit, width and height) with respect to the input pixels; |gradient| summed over
    colours and averaged over the images. Returns {"theoretical": side in input pixels of the box where the
    gradient is non-zero (the receptive field, clipped by the input's edges), "effective": side of the
    smallest centred square holding `share` of the gradient's magnitude, "map": the (S, S) mean magnitude}.
    A size regressed at a person's centre can only use what this window shows of the person."""
    from posekit.detection import to_input

    graphdef, state = nnx.split(detector)

    def centre(x):
        out = nnx.merge(graphdef, state)(x, train=False)
        h, w = out.center_logits.shape[1:3]
        return out.center_logits[0, h // 2, w // 2, 0] + out.sizes[0, h // 2, w // 2].sum()

    grad = jax.jit(jax.grad(centre))
    x, _ = to_input(images, input_size)
    mag = np.mean([np.abs(np.asarray(grad(jnp.asarray(x[i : i + 1])))).sum(-1)[0] for i in range(len(x))], 0)
    ys, xs = np.nonzero(mag > 0)
    theoretical = int(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1) if len(ys) else 0
    c, total = input_size // 2, mag.sum()
    inside = (mag[max(c - r, 0) : c + r, max(c - r, 0) : c + r].sum() for r in range(1, input_size))
    r = next((r for r, v in enumerate(inside, start=1) if v >= share * total), input_size)
    return {"theoretical": theoretical, "effective": 2 * r, "map": mag}
