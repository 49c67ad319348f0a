"""Associative-embedding grouping (Newell et al. 2017), as HigherHRNet's reference code does it.

    people, scores = group(heatmaps, tags)     # heatmaps (J, H, W), tags (J, H, W, D) of one image

A bottom-up network outputs, for each joint type j, a heatmap (where joints of that type are) and a tag map
(an embedding per pixel, trained so that the joints of one person carry similar tags, and different people
different ones). Grouping turns them into people:

1. candidates: each heatmap's local maxima (a `nms_kernel` × `nms_kernel` max-pool keeps a cell only where it
   equals the maximum around it), its `top_k` highest, those above `detection_threshold`;
2. joint types are visited in a fixed order (`COCO_JOINT_ORDER`: the face, the shoulders, the hips, then
   elbows, wrists, knees, ankles), so that people are seeded by the parts that are found most reliably;
3. the first type's candidates each start a person; each later type's candidates are matched to the people
   found so far by the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`) on the cost
   round(‖tag − person's mean tag‖) · 100 − heatmap value (the distance in whole units first, the detection
   value breaking ties), and a match whose tag distance is at least `tag_threshold` starts a new person
   instead, as does every candidate left without a person;
4. `adjust`: each joint moves a quarter of a cell toward its higher neighbour on each axis;
5. `refine`: for each person, each missing joint is filled with the best cell of its heatmap after
   subtracting the rounded tag distance to the person's mean tag (so a cell of the right person wins);
6. a person's score is the mean heatmap value over all J joints (0 for a missing joint) as grouping found
   them, *before* refinement, as the reference's `parse` computes it (right after `adjust`): a joint that
   refinement fills does not raise the score. `score="refined"` takes the mean after refinement instead.

Coordinates are heatmap cells with the cell centre at integer coordinates (the book's convention, as in
`posekit.codecs`); the reference code adds 0.5 to every coordinate (its cells span [i, i + 1)), so
reference = ours + 0.5. The defaults are HigherHRNet's COCO test settings (Cheng et al. 2020, its
`experiments/coco/higher_hrnet/*.yaml`: detection threshold 0.1, tag threshold 1, top 30 per joint, a 5×5
max-pool, adjust and refine on). One deliberate difference: the reference keys its people by the first
component of their first tag, so two new people whose tags are exactly equal collide into one; here people are
a list, and exact ties do not merge unrelated joints.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.optimize import linear_sum_assignment

# The order joint types are visited in (COCO indices): nose, eyes, ears, shoulders, hips, elbows, wrists,
# knees, ankles. The reference's `joint_order` for COCO, [1, 2, 3, 4, 5, 6, 7, 12, 13, 8, 9, 10, 11, 14, ...] − 1.
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
SCORES = ("grouped", "refined")  # a person's score: the mean value of its joints before or after refinement
NO_MATCH = 1e10  # the cost of leaving a candidate without a person (the reference's padding value)


def _check(heatmaps, tags):
    hm = np.asarray(heatmaps, np.float64)
    tg = np.asarray(tags, np.float64)
    if hm.ndim != 3:
        raise ValueError(f"group: heatmaps must have shape (J, H, W), found {hm.shape}")
    if tg.ndim == 3:
        tg = tg[..., None]
    if tg.ndim != 4 or tg.shape[:3] != hm.shape:
        raise ValueError(f"group: tags must have shape (J, H, W, D) matching heatmaps {hm.shape}, found {tg.shape}")
    return hm, tg


def candidates(heatmaps, tags, *, top_k: int = 30, nms_kernel: int = 5):
    """Each joint type's `top_k` best local maxima: locations (J, K, 2) [x, y] in cells, values (J, K) and tags
    (J, K, D), best first. A cell is a local maximum when it equals the maximum of the `nms_kernel`-wide square
    around it (a max-pool with stride 1, the border padded so that it never wins)."""
    hm, tg = _check(heatmaps, tags)
    J, H, W = hm.shape
    pooled = maximum_filter(hm, size=(1, nms_kernel, nms_kernel), mode="constant", cval=-np.inf)
    peaks = np.where(pooled == hm, hm, 0.0).reshape(J, -1)
    k = min(top_k, H * W)
    idx = np.argsort(-peaks, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(peaks, idx, 1)
    ys, xs = np.divmod(idx, W)
    tag_k = tg.reshape(J, H * W, -1)[np.arange(J)[:, None], idx]
    return np.stack([xs, ys], -1).astype(np.float64), vals, tag_k


def match_by_tag(locs, vals, tag_k, *, detection_threshold: float = 0.1, tag_threshold: float = 1.0,
                 max_people: int = 30, use_detection_val: bool = True, joint_order=COCO_JOINT_ORDER):  # fmt: skip
    """Steps 2-3 of the module docstring on the candidates of `candidates`. Returns (N, J, 3 + D): x, y,
    heatmap value and tag of each person's joints (all zero where a person has no such joint)."""
    J, _, D = tag_k.shape
    people: list[np.ndarray] = []  # (J, 3 + D) each
    person_tags: list[list[np.ndarray]] = []  # every tag a person has collected
    for j in joint_order:
        keep = vals[j] > detection_threshold
        joints = np.concatenate([locs[j], vals[j][:, None], tag_k[j]], 1)[keep]
        tags = tag_k[j][keep]
        if not len(joints):
            continue
        if not people:
            for t, joint in zip(tags, joints):
                people.append(np.zeros((J, 3 + D)))
                people[-1][j] = joint
                person_tags.append([t])
            continue
        grouped = list(range(min(len(people), max_people)))
        means = np.array([np.mean(person_tags[p], axis=0) for p in grouped])
        dist = np.linalg.norm(joints[:, None, 3:] - means[None], axis=2)
        cost = np.round(dist) * 100 - joints[:, 2:3] if use_detection_val else dist.copy()
        n_added, n_grouped = cost.shape
        if n_added > n_grouped:  # room for every candidate to stay alone
            cost = np.concatenate([cost, np.full((n_added, n_added - n_grouped), NO_MATCH)], 1)
        rows, cols = linear_sum_assignment(cost)
        matched = set()
        for r, c in zip(rows, cols):
            matched.add(r)
            if c < n_grouped and dist[r, c] < tag_threshold:
                people[grouped[c]][j] = joints[r]
                person_tags[grouped[c]].append(tags[r])
            else:
                people.append(np.zeros((J, 3 + D)))
                people[-1][j] = joints[r]
                person_tags.append([tags[r]])
        for r in range(n_added):  # (only when a solver leaves a row out; the padded matrix assigns every row)
            if r not in matched:
                people.append(np.zeros((J, 3 + D)))
                people[-1][j] = joints[r]
                person_tags.append([tags[r]])
    return np.array(people).reshape(-1, J, 3 + D)


def adjust_quarter(people, heatmaps) -> np.ndarray:
    """Move each found joint (value > 0) a quarter cell toward its higher neighbour on each axis (x, then y),
    and a quarter cell the other way when that neighbour is not higher, as the reference's `adjust`."""
    hm = np.asarray(heatmaps, np.float64)
    out = np.array(people, dtype=np.float64, copy=True)
    J, H, W = hm.shape
    for p in range(len(out)):
        for j in range(J):
            if out[p, j, 2] <= 0:
                continue
            x, y = out[p, j, :2]
            xi, yi = int(x), int(y)
            m = hm[j]
            out[p, j, 0] = x + (0.25 if m[yi, min(xi + 1, W - 1)] > m[yi, max(xi - 1, 0)] else -0.25)
            out[p, j, 1] = y + (0.25 if m[min(yi + 1, H - 1), xi] > m[max(yi - 1, 0), xi] else -0.25)
    return out


def refine_person(person, heatmaps, tags) -> np.ndarray:
    """Fill a person's missing joints (value 0) from the heatmaps around the person's mean tag.

    person (J, 3 + D); the mean tag is taken at the found joints' cells. For each joint type the cell with
    the highest heatmap value minus the rounded tag distance to that mean is picked, moved a quarter cell
    toward its higher neighbours, and used where the joint was missing and its value is positive.
    """
    hm, tg = _check(heatmaps, tags)
    out = np.array(person, dtype=np.float64, copy=True)
    J, H, W = hm.shape
    found = out[:, 2] > 0
    if not found.any():
        return out
    cells = np.floor(out[found, :2] + 0.5).astype(int)  # the reference truncates its +0.5-shifted coordinates
    cells = np.clip(cells, 0, [W - 1, H - 1])
    mean_tag = tg[np.flatnonzero(found), cells[:, 1], cells[:, 0]].mean(0)
    missing = np.flatnonzero(~found)
    if not len(missing):
        return out
    sq = np.zeros((len(missing), H, W))
    for d in range(tg.shape[-1]):  # squared distance, one tag component at a time (faster than a strided sum)
        sq += (tg[missing, :, :, d] - mean_tag[d]) ** 2
    score = (hm[missing] - np.round(np.sqrt(sq))).reshape(len(missing), -1)
    best = score.argmax(1)
    ys, xs = np.divmod(best, W)
    for j, y, x in zip(missing, ys, xs):
        m = hm[j]
        val = m[y, x]
        if val <= 0:
            continue
        fx = x + (0.25 if m[y, min(x + 1, W - 1)] > m[y, max(x - 1, 0)] else -0.25)
        fy = y + (0.25 if m[min(y + 1, H - 1), x] > m[max(y - 1, 0), x] else -0.25)
        out[j, :3] = (fx, fy, val)
    return out


def group(heatmaps, tags, *, detection_threshold: float = 0.1, tag_threshold: float = 1.0, top_k: int = 30,
          nms_kernel: int = 5, adjust: bool = True, refine: bool = True, use_detection_val: bool = True,
          joint_order=COCO_JOINT_ORDER, score: str = "grouped", min_joints: int = 1):  # fmt: skip
    """Group one image's joints into people. Used in chapter 5.

    heatmaps (J, H, W) (detection values, e.g. sigmoid or Gaussian-trained maps, flip-averaged if wanted);
    tags (J, H, W, D) or (J, H, W). Returns (people, scores): people (N, J, 3) [x, y, heatmap value] in
    heatmap cells (value 0 for a joint the person lacks), scores (N,) the mean value over the J joints, best
    first: of the joints grouping found (`score="grouped"`, the reference's) or of the refined person
    (`score="refined"`). min_joints: people that grouping found with fewer joints are dropped before
    refinement (1, the reference's, keeps every one; refinement can turn a spurious one-joint candidate into
    a whole duplicate person). The steps and defaults are in the module docstring.
    """
    if score not in SCORES:
        raise ValueError(f"group: score must be one of {SCORES}, got {score!r}")
    hm, tg = _check(heatmaps, tags)
    J = hm.shape[0]
    if sorted(joint_order) != list(range(J)):
        raise ValueError(f"group: joint_order must be a permutation of 0..{J - 1}, found {list(joint_order)}")
    locs, vals, tag_k = candidates(hm, tg, top_k=top_k, nms_kernel=nms_kernel)
    full = match_by_tag(locs, vals, tag_k, detection_threshold=detection_threshold, tag_threshold=tag_threshold,
                        max_people=top_k, use_detection_val=use_detection_val, joint_order=joint_order)  # fmt: skip
    if min_joints > 1 and len(full):
        full = full[(full[..., 2] > 0).sum(1) >= min_joints]
    if adjust and len(full):
        full = adjust_quarter(full, hm)
    grouped = full[..., 2].mean(1) if len(full) else np.zeros(0)
    if refine:
        full = np.array([refine_person(p, hm, tg) for p in full]).reshape(full.shape)
    people = full[..., :3]
    scores = grouped if score == "grouped" else (people[..., 2].mean(1) if len(people) else np.zeros(0))
    order = np.argsort(-scores, kind="stable")
    return people[order].astype(np.float32), scores[order].astype(np.float32)
