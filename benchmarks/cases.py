"""Random COCO evaluation cases: a ground truth and a results list with every situation COCOeval handles.

Used by the evaluator's tests (against pycocotools), by `bench_metrics.py` and by the performance appendix.
Not part of `posekit`: it is test and benchmark data, not something a reader of the book builds on.
"""

from __future__ import annotations

import numpy as np

from posekit import cocoio
from posekit.skeleton import KeypointSet


def _keypoint_set(num_joints: int) -> KeypointSet:
    """A keypoint set of J anonymous joints k0, k1, ... (no skeleton): the evaluator needs only the count."""
    names = tuple(f"k{j}" for j in range(num_joints))
    return KeypointSet("random", names, (), (), None, {}, (0, min(1, num_joints - 1)))


def _detections(rng, n_per_image, dets_per_image: int, no_det_image_frac: float, noise: float, max_noise: float):
    """Which ground truth each detection estimates, how well, and its score: (image, target, false_pos, quality,
    score), each (D,).

    The first detections of an image find each object once (a good, confident estimate); the rest are
    duplicates of a random object, sloppier and less confident, or false positives. quality: the error as a
    fraction of the object's size (exponential with mean `noise` for the first, uniform up to `max_noise` after).
    """
    num_images = len(n_per_image)
    P = int(n_per_image.sum())
    n_dets = np.full(num_images, dets_per_image)
    n_dets[rng.random(num_images) < no_det_image_frac] = 0
    d_img = np.repeat(np.arange(num_images), n_dets)
    D = len(d_img)
    first = np.concatenate([[0], np.cumsum(n_per_image)[:-1]])
    has = n_per_image[d_img] > 0
    q = np.arange(D) - np.repeat(np.concatenate([[0], np.cumsum(n_dets)[:-1]]), n_dets)
    primary = has & (q < n_per_image[d_img])
    target = first[d_img] + np.where(primary, q, (rng.random(D) * np.maximum(n_per_image[d_img], 1)).astype(int))
    target = np.minimum(target, max(P - 1, 0))
    false_pos = (~has) | (~primary & (rng.random(D) < 0.3))
    quality = np.where(primary, np.minimum(rng.exponential(noise, D), max_noise), rng.uniform(0.05, max_noise, D))
    score = np.where(primary, 0.95 - quality, 0.6 - quality) + rng.normal(0, 0.12, D) - 0.3 * false_pos
    return d_img, target, false_pos, quality, np.clip(score, 0.001, 1.0)


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
    anns = [
        cocoio.annotation(int(owner[i] + id_offset), kps[i], ann_id=i + 1, bbox=bbox[i], area=area[i],
                          iscrowd=int(crowd[i]))  # fmt: skip
        for i in range(P)
    ]
    gt = cocoio.dataset(images, anns, _keypoint_set(J))
    # detections
    # keypoint noise as a fraction of the person size
    d_img, target, false_pos, quality, score = _detections(rng, n_people, dets_per_image, no_det_image_frac, 0.05, 0.4)
    D = len(d_img)
    if P:
        base = xy[target] + rng.normal(0, 1, (D, J, 2)) * (quality * size[target])[:, None, None]
    else:
        base = np.zeros((D, J, 2))
    rand_size = np.exp(rng.uniform(np.log(15), np.log(350), D))
    rand = rng.uniform([50, 50], [590, 430], (D, 1, 2)) + template[None] * rand_size[:, None, None]
    dxy = np.where(false_pos[:, None, None], rand, base)
    if tie_scores:
        score = np.round(score, 1)
    return gt, cocoio.keypoint_results(d_img + id_offset, dxy, score)


def random_box_eval_set(
    num_images: int = 100,
    seed: int = 0,
    num_categories: int = 1,
    max_objects: int = 8,
    dets_per_image: int = 20,
    crowd_frac: float = 0.05,
    empty_image_frac: float = 0.0,
    no_det_image_frac: float = 0.0,
    tie_scores: bool = False,
    id_offset: int = 1,
) -> tuple[dict, list]:
    """A deterministic synthetic COCO box ground truth and results list: (gt dict, results list).

    Each image holds 1..max_objects objects of random categories (1..num_categories) with boxes from tiny to
    large (side 4..400 px, so all three COCO area ranges occur), an `area` smaller than the box (as a
    segmentation's is), some crowd regions (iscrowd=1, large boxes that hold many detections); detections are
    first a jittered box per object (confident), then sloppier duplicates, boxes of the wrong category and
    false positives, with noisy scores. tie_scores rounds scores to one decimal; empty_image_frac: images
    without objects; no_det_image_frac: images without detections.
    """
    rng = np.random.default_rng(seed)
    images = [{"id": int(i + id_offset), "width": 640, "height": 480} for i in range(num_images)]
    n_obj = rng.integers(1, max_objects + 1, num_images)
    n_obj[rng.random(num_images) < empty_image_frac] = 0
    owner = np.repeat(np.arange(num_images), n_obj)
    P = len(owner)
    side = np.exp(rng.uniform(np.log(4), np.log(400), (P, 2)))
    crowd = rng.random(P) < crowd_frac
    side[crowd] *= 2.5
    xy = rng.uniform(0, 1, (P, 2)) * np.maximum(np.array([640.0, 480.0]) - side, 1.0)
    boxes = np.concatenate([xy, side], 1)
    area = side[:, 0] * side[:, 1] * rng.uniform(0.5, 0.9, P)
    cat = rng.integers(1, num_categories + 1, P)
    anns = [
        {"id": int(i + 1), "image_id": int(owner[i] + id_offset), "category_id": int(cat[i]),
         "bbox": boxes[i].tolist(), "area": float(area[i]), "iscrowd": int(crowd[i])}
        for i in range(P)
    ]  # fmt: skip
    categories = [{"id": k, "name": f"class{k}", "supercategory": "thing"} for k in range(1, num_categories + 1)]
    gt = {"images": images, "annotations": anns, "categories": categories}
    d_img, target, false_pos, quality, score = _detections(rng, n_obj, dets_per_image, no_det_image_frac, 0.06, 0.5)
    D = len(d_img)
    if P:
        t = boxes[target]
        jitter = rng.normal(0, 1, (D, 4)) * quality[:, None] * np.c_[t[:, 2:], t[:, 2:]]
        base = np.c_[t[:, :2] + jitter[:, :2], np.maximum(t[:, 2:] * np.exp(jitter[:, 2:] / t[:, 2:]), 1.0)]
        d_cat = np.where(rng.random(D) < 0.1, rng.integers(1, num_categories + 1, D), cat[target])
    else:
        base, d_cat = np.zeros((D, 4)), np.ones(D, int)
    rand_side = np.exp(rng.uniform(np.log(4), np.log(300), (D, 2)))
    rand = np.c_[rng.uniform(0, 600, (D, 2)), rand_side]
    dbox = np.where(false_pos[:, None], rand, base)
    if tie_scores:
        score = np.round(score, 1)
    results = []
    for k in range(1, num_categories + 1):
        sel = np.flatnonzero(d_cat == k)
        results += cocoio.box_results(d_img[sel] + id_offset, dbox[sel], score[sel], category_id=k)
    order = np.argsort(np.concatenate([np.flatnonzero(d_cat == k) for k in range(1, num_categories + 1)]))
    return gt, [results[i] for i in order]  # detections in image order, as a detector writes them
