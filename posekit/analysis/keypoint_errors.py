"""What kind of mistake each predicted joint is, and what each kind costs in AP: Ronchi & Perona's keypoint
error analysis (ICCV 2017, their `coco-analyze`).

    errors = keypoint_errors(scenes, results)      # {"all": {"good": 0.6, "inversion": 0.1, ...}, "small": ...}
    impact = error_impact(scenes, results)         # {"none": AP, "jitter": AP with jitter corrected, ...}

Predictions are paired with true people as COCO's evaluator pairs them at its loosest threshold: each image's
predictions, best score first, each take the unpaired true person with which their OKS is highest, if it is at
least 0.1 (`pairs`). Each labelled joint k of a paired prediction is then compared, by OKS's per-joint
similarity ks = exp(−d² / (2 s² κ²)), with the person's own joint k, with the person's mirror joint (left ↔
right, `COCO.flip_permutation`) and with joint k and its mirror of every other true person of the image (each
with its own area s²); the best of these decides its kind:

* **good**: ks ≥ 0.85 with its own joint;   **jitter**: 0.5 ≤ ks < 0.85 with its own joint;
* **inversion**: ks ≥ 0.5 with the person's mirror joint (left and right confused);
* **swap**: ks ≥ 0.5 with another person's joint (the joint given to the wrong person);
* **miss**: ks < 0.5 with all of them.

`error_impact` corrects one kind at a time as coco-analyze does (a jitter joint moved to where ks = 0.85, an
inversion or swap to where its own ks equals the ks it had with the joint it took, a miss to where ks = 0.5) and
re-evaluates: the AP gained is what that kind of error costs. Differences from coco-analyze: crowd regions and
the evaluator's ignore flags play no part in the pairing (the synthetic scenes have few crowds); a corrected joint
is moved along x only, as there, but to where its ks is exactly the target (coco-analyze's code computes that
distance with σ where OKS has κ = 2σ, which puts the joint at half of it, above the target).
"""

from __future__ import annotations

import numpy as np

from posekit import metrics
from posekit.analysis.bottom_up import SIZE_RANGES
from posekit.scenes import people
from posekit.skeleton import COCO

KINDS = ("good", "jitter", "inversion", "swap", "miss")
_GOOD, _JITTER, _INVERSION, _SWAP, _MISS = range(len(KINDS))
GOOD, JITTER = 0.85, 0.5  # coco-analyze's `jitterKsThrs` (0.5, 0.85)
MIN_OKS = 0.1  # the OKS at which coco-analyze pairs predictions with true people


def _ks(pred, gt, areas, var) -> np.ndarray:
    """ks of pred (J, 2+) against each of gt (G, J, 3)'s joints: (G, J), −1 where a joint is not labelled."""
    d2 = ((gt[..., :2] - pred[None, :, :2]) ** 2).sum(-1)
    ks = np.exp(-d2 / (2 * var[None] * (areas[:, None] + np.spacing(1))))
    return np.where(gt[..., 2] > 0, ks, -1.0)


def joint_kinds(pred, gts, areas, k: int, kset=COCO) -> tuple[np.ndarray, np.ndarray]:
    """(kinds (J,), best ks (J,)) of prediction `pred` (J, 2|3) paired with true person k of gts (G, J, 3) (areas
    (G,)): each joint's kind as an index into `KINDS`, −1 where person k's joint is not labelled, and the highest
    ks it reached (with the joint that decided its kind)."""
    gts, areas = np.asarray(gts, float), np.asarray(areas, float)
    var = (2 * np.asarray(kset.sigmas)) ** 2
    inv = np.asarray(kset.flip_permutation())
    own, mirror = _ks(pred, gts, areas, var), _ks(pred, gts[:, inv], areas, var)
    others = np.delete(np.concatenate([own, mirror]), [k, len(gts) + k], axis=0)
    best_other = others.max(0) if len(others) else np.full(own.shape[1], -1.0)
    stack = np.stack([own[k], mirror[k], best_other])  # ties go to the first, as coco-analyze's argmax
    best, which = stack.max(0), stack.argmax(0)
    kinds = np.select([best < JITTER, which == 1, which == 2, best >= GOOD], [_MISS, _INVERSION, _SWAP, _GOOD],
                      default=_JITTER)  # fmt: skip
    return np.where(gts[k, :, 2] > 0, kinds, -1), best


def pairs(scenes: dict, results: list, min_oks: float = MIN_OKS) -> list[tuple[int, int, int]]:
    """(result index, image index, true person index) of each prediction paired with a true person: per image,
    predictions by descending score each take the unpaired non-crowd person with the highest OKS ≥ `min_oks`."""
    by_image: dict = {}
    for i, r in enumerate(results):
        by_image.setdefault(r["image_id"], []).append(i)
    out = []
    for n, (iid, gt) in enumerate(zip(scenes["image_ids"], people(scenes, include_crowd=False))):
        idx = sorted(by_image.get(iid, []), key=lambda i: -results[i]["score"])
        g = np.asarray(gt["keypoints"], float)
        keep = (g[..., 2] > 0).any(1)
        if not idx or not keep.any():
            continue
        pred = np.stack([np.asarray(results[i]["keypoints"], float).reshape(-1, 3) for i in idx])
        sim = metrics.oks(pred, g[keep], np.asarray(gt["areas"], float)[keep])
        people_idx = np.flatnonzero(keep)
        taken = np.zeros(len(people_idx), bool)
        for row, i in enumerate(idx):
            s = np.where(taken, -1.0, sim[row])
            best = int(np.argmax(s))
            if s[best] >= min_oks:
                taken[best] = True
                out.append((i, n, int(people_idx[best])))
    return out


def keypoint_errors(scenes: dict, results: list, *, ranges: dict | None = None, kset=COCO) -> dict:
    """The fraction of the paired predictions' labelled joints of each kind (`KINDS`), per size range of the true
    person: {"all" and each range name: {kind: fraction, "people": paired people, "per_joint": (J, 5) fractions}}.
    ranges: {name: (low, high)} of COCO area (default `analysis.bottom_up.SIZE_RANGES`). scenes: as
    `posekit.scenes` makes them; results: a COCO keypoint results list. Used in chapters 5 and 5b."""
    ranges = {"all": (0.0, np.inf), **(SIZE_RANGES if ranges is None else ranges)}
    tally = {name: np.zeros((kset.num_joints, len(KINDS))) for name in ranges}
    paired = dict.fromkeys(ranges, 0)
    for _, _, area, kinds, _ in _classified(scenes, results, kset):
        on = np.flatnonzero(kinds >= 0)
        for name, (lo, hi) in ranges.items():
            if lo <= area < hi:
                paired[name] += 1
                np.add.at(tally[name], (on, kinds[on]), 1)
    out = {}
    for name, t in tally.items():
        out[name] = {kind: float(t[:, i].sum() / max(t.sum(), 1.0)) for i, kind in enumerate(KINDS)}
        out[name].update(people=paired[name], per_joint=t / np.maximum(t.sum(1, keepdims=True), 1))
    return out


def _classified(scenes: dict, results: list, kset=COCO) -> list:
    """For each pair of `pairs`: (result index, the true person's keypoints (J, 3), its area, the joints' kinds (J,)
    and best ks (J,) from `joint_kinds`)."""
    gts = people(scenes, include_crowd=False)
    out = []
    for i, n, k in pairs(scenes, results):
        g, areas = np.asarray(gts[n]["keypoints"], float), np.asarray(gts[n]["areas"], float)
        kinds, best = joint_kinds(np.asarray(results[i]["keypoints"], float).reshape(-1, 3), g, areas, k, kset)
        out.append((i, g[k], float(areas[k]), kinds, best))
    return out


def corrected(scenes: dict, results: list, kinds, kset=COCO, classified: list | None = None) -> list:
    """`results` with the joints of the given kinds (names from `KINDS`) corrected as coco-analyze corrects them:
    moved to the true joint plus an x offset at which ks is 0.85 (jitter), 0.5 (miss) or the ks the joint
    reached with the joint it took (inversion, swap). Predictions not paired with a true person are unchanged.
    classified: `_classified(scenes, results)` when the caller has it already."""
    want = [KINDS.index(k) for k in kinds]
    var = (2 * np.asarray(kset.sigmas)) ** 2
    out = [dict(r) for r in results]
    for i, truth, area, kind, best in _classified(scenes, results, kset) if classified is None else classified:
        kp = np.asarray(results[i]["keypoints"], float).reshape(-1, 3).copy()
        target = np.select([kind == _JITTER, kind == _MISS], [GOOD, JITTER], default=np.clip(best, np.spacing(1), 1.0))
        offset = np.sqrt(-np.log(target) * 2 * area * var)  # ks(offset) = target exactly
        fix = np.isin(kind, want)
        kp[fix, 0] = truth[fix, 0] + offset[fix]
        kp[fix, 1] = truth[fix, 1]
        out[i]["keypoints"] = kp.reshape(-1).tolist()
    return out


def error_impact(scenes: dict, results: list, kset=COCO) -> dict:
    """{"none": AP, kind: AP with that kind of joint error corrected (`corrected`), for jitter, inversion, swap and
    miss}: what each kind of error costs the pipeline. Used in chapters 5 and 5b."""
    classified = _classified(scenes, results, kset)
    out = {"none": float(metrics.coco_eval(scenes["coco"], results)["AP"])}
    for kind in KINDS[1:]:
        fixed = corrected(scenes, results, [kind], kset, classified)
        out[kind] = float(metrics.coco_eval(scenes["coco"], fixed)["AP"])
    return out
