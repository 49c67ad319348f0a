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
    return gt, cocoio.keypoint_results(d_img + id_offset, dxy, score)
