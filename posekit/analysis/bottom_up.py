"""Chapter 5's analyses of the bottom-up pipeline: where its AP goes.

    ap_by_size(val, results)                           # AP in COCO's small / medium / large ranges
    perfect_maps_ap(val, input_size=128, stride=2)     # AP of perfect heatmaps and tags: the grid's ceiling
    where_ap_goes(val, maps, tags, stride, mats, input_size=128)  # trained or perfect heatmaps × tags
    candidate_quality(val, maps, stride, mats, input_size=128)    # the candidates' precision and recall
    tags_at_joints(model, val, input_size=128)         # the tag of every true joint
    grouping_errors(val, results)                      # split and merged people
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from posekit import metrics
from posekit.bottom_up import group_images, network_maps, to_image
from posekit.cocoio import keypoint_results
from posekit.codecs import input_to_heatmap, multi_person_targets
from posekit.crop import transform_points
from posekit.detection import resize_matrices
from posekit.grouping import candidates, group
from posekit.inference import predict
from posekit.losses import bottomup_loss
from posekit.scenes import bottomup_batches, people
from posekit.skeleton import COCO

SIZE_RANGES = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e10)}  # COCO's area ranges


def ap_by_size(scenes: dict, results: list, ranges: dict | None = None) -> dict:
    """{range name: AP} with the COCO keypoint evaluator restricted to people whose area is in each range
    (`SIZE_RANGES` by default; the evaluator's own area-range rule, so people outside are ignored, not
    counted as misses)."""
    ranges = SIZE_RANGES if ranges is None else ranges
    return {k: float(metrics.coco_eval(scenes["coco"], results, area_range=tuple(v))["AP"]) for k, v in ranges.items()}


def perfect_maps(keypoints, *, input_size: int, stride: int, sigma: float = 4.0):
    """Perfect maps of one image: keypoints (P, J, 3) in input pixels → heatmaps (J, g, g) with every person's
    Gaussians (std `sigma` input pixels) at 1/`stride`, and tags (J, g, g, 1): at every cell of joint type j's
    map, the tag of the person whose joint j is nearest (person p's tag is 3p, well beyond the tag threshold
    of 1), i.e. tags that are right wherever a joint can be found."""
    g = input_size // stride
    kp = np.asarray(keypoints, np.float32)
    heat, joints = multi_person_targets(kp, (input_size,) * 2, (g, g), sigma / stride, max_people=max(len(kp), 1))
    tags = np.zeros(heat.shape + (1,), np.float32)
    ys, xs = np.mgrid[0:g, 0:g]
    for j in range(heat.shape[0]):
        who = np.flatnonzero(joints[: len(kp), j, 2] > 0)
        if len(who):
            d2 = (xs - joints[who, j, 0, None, None]) ** 2 + (ys - joints[who, j, 1, None, None]) ** 2
            tags[j, ..., 0] = 3.0 * who[np.argmin(d2, 0)]
    return heat, tags


def perfect_maps_ap(scenes: dict, *, input_size: int, stride: int, sigma: float = 4.0, by_size: bool = False,
                    **group_kwargs):  # fmt: skip
    """Keypoint AP of perfect maps (`perfect_maps`): each scene resized into the input as the pipeline does it,
    grouped by `posekit.grouping.group` and mapped back. What the grid alone loses at this input size (joints
    of small people merge in one cell), whatever the network. With `by_size`, returns {"all": AP, "small": AP,
    ...} instead."""
    ids, kps, scores = [], [], []
    for iid, image, gt in zip(scenes["image_ids"], scenes["images"], people(scenes, include_crowd=False)):
        if not len(gt["keypoints"]):
            continue
        mat = resize_matrices([[image.shape[1], image.shape[0]]], input_size)[0]
        kp = transform_points(gt["keypoints"], np.repeat(mat[None], len(gt["keypoints"]), 0))
        found, sc = group(*perfect_maps(kp, input_size=input_size, stride=stride, sigma=sigma), **group_kwargs)
        ids += [iid] * len(found)
        kps.append(to_image(found, mat, input_size, stride))
        scores.append(sc)
    res = keypoint_results(np.asarray(ids, dtype=object), np.concatenate(kps), np.concatenate(scores)) if ids else []
    ap = float(metrics.coco_eval(scenes["coco"], res)["AP"])
    return {"all": ap, **ap_by_size(scenes, res)} if by_size else ap


def tags_at_joints(model, scenes: dict, *, input_size: int, heatmap_loss: str = "focal") -> list[np.ndarray]:
    """Per image, the 1-D tag the model gives each true person's joints: (P, J) (NaN where a joint is not
    labelled or falls off the map), read at the joint's cell of the 1/4 tag maps, without the flip test."""
    _, tags, stride, mats = network_maps(model, scenes["images"], input_size=input_size, use_half=False,
                                         heatmap_loss=heatmap_loss)  # fmt: skip
    g = tags.shape[2]
    out = []
    for k, joints in enumerate(_true_cells(scenes, mats, input_size=input_size, stride=stride)):
        t = np.full(joints.shape[:2], np.nan)
        if len(joints):
            cells = np.floor(joints[..., :2] + 0.5).astype(int)
            ok = (joints[..., 2] > 0) & (cells >= 0).all(-1) & (cells < g).all(-1)
            p, j = np.nonzero(ok)
            t[p, j] = tags[k, j, cells[p, j, 1], cells[p, j, 0], 0]
        out.append(t)
    return out


def grouping_errors(scenes: dict, results: list, min_joints: int = 3, min_similarity: float = 0.5) -> dict:
    """Split and merged people: how grouping goes wrong, counted against the ground truth.

    Each predicted joint is credited to the true person whose same joint it is closest to, if its keypoint
    similarity (OKS's per-joint term, COCO's sigmas) is at least `min_similarity`. A true person is **split**
    when two or more predicted people each hold at least `min_joints` of its joints; a predicted person is
    **merged** when it holds at least `min_joints` joints of each of two or more true people.
    Returns {"split": [(image index, gt index, [pred indices])...], "merged": [(image index, pred index,
    [gt indices])...], "people": number of true people, "predictions": number of predicted people, and per
    image the predictions (N, J, 3) and true keypoints (G, J, 3) under "pred" and "gt", and under "held" how many
    predicted people hold at least `min_joints` of each true person's joints (G,): 1 is a person found whole}.
    """
    by_image: dict = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(np.asarray(r["keypoints"], float).reshape(-1, 3))
    out = {"split": [], "merged": [], "people": 0, "predictions": 0, "pred": [], "gt": [], "held": []}
    var = (2 * np.asarray(COCO.sigmas)) ** 2
    for i, (iid, gt) in enumerate(zip(scenes["image_ids"], people(scenes, include_crowd=False))):
        pred = np.array(by_image.get(iid, np.zeros((0, 17, 3))))
        g = gt["keypoints"]
        out["pred"].append(pred)
        out["gt"].append(g)
        out["people"] += len(g)
        out["predictions"] += len(pred)
        out["held"].append(np.zeros(len(g), int))
        if not len(pred) or not len(g):
            continue
        d2 = ((pred[:, None, :, :2] - g[None, :, :, :2]) ** 2).sum(-1)  # (N, G, J)
        ks = np.exp(-d2 / (2 * (gt["areas"][None, :, None] + np.spacing(1)) * var))
        ks = np.where((g[None, :, :, 2] > 0) & (pred[:, None, :, 2] > 0), ks, 0.0)
        owner = np.where(ks.max(1) >= min_similarity, ks.argmax(1), -1)  # (N, J): the credited true person
        counts = np.stack([(owner == k).sum(1) for k in range(len(g))], 1)  # (N, G)
        held = counts >= min_joints
        out["held"][-1] = held.sum(0)
        for k in np.flatnonzero(held.sum(0) >= 2):
            out["split"].append((i, int(k), [int(n) for n in np.flatnonzero(held[:, k])]))
        for n in np.flatnonzero(held.sum(1) >= 2):
            out["merged"].append((i, int(n), [int(k) for k in np.flatnonzero(held[n])]))
    return out


def heldout_loss(model, scenes: dict, *, input_size: int = 128, sigma: float = 4.0, heatmap_loss: str = "focal",
                 batches: int = 8, batch_size: int = 16, seed: int = 99) -> float:  # fmt: skip
    """The mean heatmap loss (at 1/4, plus 1/2 for a HigherHRNet model) of `model` on `batches` batches of
    augmented `scenes` (`scenes.bottomup_batches`, its own stream `seed`), in inference mode."""


    higher = getattr(model, "higher", False)
    stream = bottomup_batches(scenes, input_size, batch_size, seed, sigma=sigma, higher=higher)
    total = 0.0
    for step in range(batches):
        b = stream(step)
        out = predict(model, b["images"], batch_size)
        _, aux = bottomup_loss(out, {k: jnp.asarray(v) for k, v in b.items()}, heatmap_loss)
        total += float(aux["heat"] + aux["heat_half"])
    return total / batches


def _true_cells(scenes: dict, mats, *, input_size: int, stride: int) -> list[np.ndarray]:
    """Per image, the true people's joints (P, J, 3) on the maps' grid (x, y in cells; v as labelled), mapped
    into the input through `mats` as `network_maps` maps the image."""
    g = input_size // stride
    out = []
    for k, gt in enumerate(people(scenes, include_crowd=False)):
        kp = gt["keypoints"]
        if not len(kp):
            out.append(np.zeros((0, COCO.num_joints, 3)))
            continue
        xy = transform_points(kp, np.repeat(np.asarray(mats[k])[None], len(kp), 0))[..., :2]
        out.append(np.concatenate([np.asarray(input_to_heatmap(xy, (input_size,) * 2, (g, g))), kp[..., 2:3]], -1))
    return out


def true_maps(scenes: dict, mats, *, input_size: int, stride: int, sigma: float = 4.0):
    """`perfect_maps` of every scene on the grid of `network_maps` (the scenes resized through `mats`):
    heatmaps (N, J, g, g) and tags (N, J, g, g, 1), to put in place of a network's."""
    g = input_size // stride
    hm = np.zeros((len(mats), COCO.num_joints, g, g), np.float32)
    tg = np.zeros(hm.shape + (1,), np.float32)
    for k, gt in enumerate(people(scenes, include_crowd=False)):
        if len(gt["keypoints"]):
            kp = transform_points(gt["keypoints"], np.repeat(np.asarray(mats[k])[None], len(gt["keypoints"]), 0))
            hm[k], tg[k] = perfect_maps(kp, input_size=input_size, stride=stride, sigma=sigma)
    return hm, tg


def where_ap_goes(scenes: dict, heatmaps, tags, stride: int, mats, *, input_size: int, sigma: float = 4.0,
                  **group_kwargs) -> dict:  # fmt: skip
    """Keypoint AP of the four combinations of the network's heatmaps or perfect ones with its tags or perfect
    ones (`true_maps`), all grouped alike: {(heatmaps, tags): AP} with each "trained" or "perfect".

    Perfect tags are the tag of the person whose joint is nearest, at every cell: with them, grouping is as good
    as the heatmaps allow, so ("trained", "perfect") is what the heatmaps alone are worth and ("perfect",
    "trained") what the tags alone are worth. heatmaps, tags, stride, mats: `network_maps`' output.
    """
    true_hm, true_tg = true_maps(scenes, mats, input_size=input_size, stride=stride, sigma=sigma)
    out = {}
    for hm_name, hm in (("trained", heatmaps), ("perfect", true_hm)):
        for tg_name, tg in (("trained", tags), ("perfect", true_tg)):
            res = group_images(hm, tg, stride, mats, input_size=input_size, image_ids=scenes["image_ids"],
                               **group_kwargs)  # fmt: skip
            out[hm_name, tg_name] = float(metrics.coco_eval(scenes["coco"], res)["AP"])
    return out


def candidate_quality(scenes: dict, heatmaps, stride: int, mats, *, input_size: int, thresholds=(0.1, 0.2, 0.3),
                      radius: float = 4.0, top_k: int = 30, nms_kernel: int = 5) -> dict:  # fmt: skip
    """How good grouping's candidates are (`posekit.grouping.candidates`: local maxima above a threshold), per
    threshold and joint type: {threshold: {"per_image" (J,), "precision" (J,), "recall" (J,)}}.

    A candidate is right when a true joint of its type lies within `radius` input pixels; a true joint (labelled,
    inside the input) is found when a candidate lies within `radius` of it. per_image: candidates per image.
    """
    J = COCO.num_joints
    cells = _true_cells(scenes, mats, input_size=input_size, stride=stride)
    r = radius / stride
    tally = {t: np.zeros((4, J)) for t in thresholds}  # candidates, right candidates, true joints, found joints
    g = heatmaps.shape[-1]
    for k in range(len(heatmaps)):
        locs, vals, _ = candidates(heatmaps[k], np.zeros(heatmaps[k].shape + (1,)), top_k=top_k, nms_kernel=nms_kernel)
        gt = cells[k]
        for j in range(J):
            truth = gt[(gt[:, j, 2] > 0) & (gt[:, j, :2] > -0.5).all(-1) & (gt[:, j, :2] < g - 0.5).all(-1), j, :2]
            for t in thresholds:
                c = locs[j][vals[j] > t]
                d = np.linalg.norm(c[:, None] - truth[None], axis=-1) if len(c) and len(truth) else None
                tally[t][:, j] += (len(c), 0 if d is None else (d.min(1) <= r).sum(), len(truth),
                                   0 if d is None else (d.min(0) <= r).sum())  # fmt: skip
    n = len(heatmaps)
    return {t: {"per_image": c / n, "precision": ok / np.maximum(c, 1), "recall": found / np.maximum(true, 1)}
            for t, (c, ok, true, found) in tally.items()}  # fmt: skip
