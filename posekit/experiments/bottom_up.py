"""The bottom-up recipe of chapter 5: Associative Embedding (1/4) and HigherHRNet (1/4 + 1/2) on whole scenes.

    model, hist = train_bottom_up(higher=True, steps=800, train_scenes=2048)    # cached by config
    results = bottom_up(val["images"], model, input_size=128, image_ids=val["image_ids"])
    perfect_maps_ap(val, input_size=128, stride=2)    # AP of perfect heatmaps and tags: the grid's ceiling
    ap_by_size(val, results)                           # AP in COCO's small / medium / large ranges

Runs are cached by config (`posekit.checkpoint.run_dir`), so the head-to-head chapter reuses them. Training
uses `posekit.scenes.training_scenes(train_scenes, seed)`; the validation scenes are never seen.
"""

from __future__ import annotations

import numpy as np

from posekit import metrics
from posekit.bottom_up import bottom_up
from posekit.checkpoint import run_dir
from posekit.data import shards_config
from posekit.losses import TAG_WEIGHT, bottomup_loss
from posekit.models import build_model
from posekit.scenes import bottomup_batches, fingerprint, people, training_data, training_scenes
from posekit.train import fit

SIZE_RANGES = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e10)}  # COCO's area ranges


def _pair(weight) -> list[float]:
    """A tag weight as [push, pull] (one number weighs both)."""
    return [float(v) for v in np.broadcast_to(np.asarray(weight, float), (2,))]


def train_bottom_up(*, steps: int, train_scenes: int, higher: bool = True, variant: str = "lite",
                    input_size: int = 128, sigma: float = 4.0, heatmap_loss: str = "focal",
                    tag_weight: float | None = None, lr: float = 6e-3, batch_size: int = 16, seed: int = 0,
                    val: dict | None = None, progress: bool = True, data_shards: int = 1):  # fmt: skip
    """Train (or load) `AssociativeEmbedding(variant, higher=higher)` on whole training scenes at `input_size`.

    Adam with warmup-cosine (`posekit.train.fit`); `posekit.losses.bottomup_loss` on the targets of
    `scenes.bottomup_batches` (Gaussians of std `sigma` input pixels), push and pull weighted `tag_weight`
    ((push, pull) or one number; default `posekit.losses.TAG_WEIGHT[heatmap_loss]`). `val`: a scene set on which the
    keypoint AP (`bottom_up`, flip test) is measured 4 times during training (history "val_ap"). data_shards > 1:
    each process reads only its shards of the scenes (`scenes.training_data`; another run). Returns (model, history).
    """
    cfg = dict(model="associative-embedding", variant=variant, higher=higher, steps=steps, train_scenes=train_scenes,
               input_size=input_size, sigma=sigma, heatmap_loss=heatmap_loss, lr=lr, batch_size=batch_size,
               seed=seed, tag_weight=_pair(TAG_WEIGHT[heatmap_loss] if tag_weight is None else tag_weight),
               **shards_config(data_shards))  # fmt: skip
    if val is not None:
        cfg["val"] = fingerprint(val)
    model = build_model(cfg, seed)  # focal loss: sigmoid maps start at CenterNet's prior 0.1
    data = training_data(train_scenes, seed, data_shards)

    def loss_fn(m, batch):
        return bottomup_loss(m(batch["images"], train=True), batch, heatmap_loss, cfg["tag_weight"])

    def validate(m, step):
        res = bottom_up(val["images"], m, input_size=input_size, image_ids=val["image_ids"], heatmap_loss=heatmap_loss)
        return {"ap": metrics.coco_eval(val["coco"], res)["AP"]}

    batches = bottomup_batches(data, input_size, batch_size, seed, sigma=sigma, higher=higher)
    name = f"{'higher' if higher else 'ae'}-{variant}-{input_size}"
    return fit(model, loss_fn, batches, steps, lr=lr, ckpt_dir=run_dir("bottomup", cfg), ckpt_every=max(steps // 4, 50),
               progress=progress, validate=validate if val is not None else None, val_every=max(steps // 4, 1),
               desc=name)  # fmt: skip


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
    from posekit.codecs import multi_person_targets

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
    from posekit.bottom_up import to_image
    from posekit.cocoio import keypoint_results
    from posekit.crop import transform_points
    from posekit.detection import resize_matrices
    from posekit.grouping import group

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
    from posekit.bottom_up import network_maps
    from posekit.codecs import input_to_heatmap
    from posekit.crop import transform_points

    _, tags, _, mats = network_maps(model, scenes["images"], input_size=input_size, use_half=False,
                                    heatmap_loss=heatmap_loss)  # fmt: skip
    g = tags.shape[2]
    out = []
    for k, gt in enumerate(people(scenes, include_crowd=False)):
        kp = gt["keypoints"]
        t = np.full(kp.shape[:2], np.nan)
        if len(kp):
            xy = transform_points(kp, np.repeat(mats[k][None], len(kp), 0))[..., :2]
            cells = np.floor(np.asarray(input_to_heatmap(xy, (input_size,) * 2, (g, g))) + 0.5).astype(int)
            ok = (kp[..., 2] > 0) & (cells >= 0).all(-1) & (cells < g).all(-1)
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
    image the predictions (N, J, 3) and true keypoints (G, J, 3) under "pred" and "gt"}.
    """
    from posekit.skeleton import COCO

    by_image: dict = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(np.asarray(r["keypoints"], float).reshape(-1, 3))
    out = {"split": [], "merged": [], "people": 0, "predictions": 0, "pred": [], "gt": []}
    var = (2 * np.asarray(COCO.sigmas)) ** 2
    for i, (iid, gt) in enumerate(zip(scenes["image_ids"], people(scenes, include_crowd=False))):
        pred = np.array(by_image.get(iid, np.zeros((0, 17, 3))))
        g = gt["keypoints"]
        out["pred"].append(pred)
        out["gt"].append(g)
        out["people"] += len(g)
        out["predictions"] += len(pred)
        if not len(pred) or not len(g):
            continue
        d2 = ((pred[:, None, :, :2] - g[None, :, :, :2]) ** 2).sum(-1)  # (N, G, J)
        ks = np.exp(-d2 / (2 * (gt["areas"][None, :, None] + np.spacing(1)) * var))
        ks = np.where((g[None, :, :, 2] > 0) & (pred[:, None, :, 2] > 0), ks, 0.0)
        owner = np.where(ks.max(1) >= min_similarity, ks.argmax(1), -1)  # (N, J): the credited true person
        counts = np.stack([(owner == k).sum(1) for k in range(len(g))], 1)  # (N, G)
        held = counts >= min_joints
        for k in np.flatnonzero(held.sum(0) >= 2):
            out["split"].append((i, int(k), [int(n) for n in np.flatnonzero(held[:, k])]))
        for n in np.flatnonzero(held.sum(1) >= 2):
            out["merged"].append((i, int(n), [int(k) for k in np.flatnonzero(held[n])]))
    return out


def heldout_loss(model, scenes: dict, *, input_size: int = 128, sigma: float = 4.0, heatmap_loss: str = "focal",
                 batches: int = 8, batch_size: int = 16, seed: int = 99) -> float:  # fmt: skip
    """The mean heatmap loss (at 1/4, plus 1/2 for a HigherHRNet model) of `model` on `batches` batches of
    augmented `scenes` (`scenes.bottomup_batches`, its own stream `seed`), in inference mode."""
    import jax.numpy as jnp

    from posekit.inference import predict

    higher = getattr(model, "higher", False)
    stream = bottomup_batches(scenes, input_size, batch_size, seed, sigma=sigma, higher=higher)
    total = 0.0
    for step in range(batches):
        b = stream(step)
        out = predict(model, b["images"], batch_size)
        _, aux = bottomup_loss(out, {k: jnp.asarray(v) for k, v in b.items()}, heatmap_loss)
        total += float(aux["heat"] + aux["heat_half"])
    return total / batches


def lr_sweep(lrs, *, higher: bool, steps: int, train_scenes: int, holdout: int = 128, seed: int = 0, **kwargs) -> dict:
    """{lr: (keypoint AP, heatmap loss)} of `train_bottom_up` runs of `steps`, scored on `holdout` scenes of the
    training stream `seed + 1` (never the validation scenes): the AP, and the held-out heatmap loss
    (`heldout_loss`), which still ranks runs whose AP is 0. How chapter 5's learning rate was chosen
    (`python -m posekit.experiments.bottom_up`)."""
    held = training_scenes(holdout, seed + 1)
    size = kwargs.get("input_size", 128)
    out = {}
    for lr in sorted(float(v) for v in lrs):
        model, _ = train_bottom_up(steps=steps, train_scenes=train_scenes, higher=higher, seed=seed, lr=lr,
                                   progress=False, **kwargs)  # fmt: skip
        res = bottom_up(held["images"], model, input_size=size, image_ids=held["image_ids"])
        out[lr] = (float(metrics.coco_eval(held["coco"], res)["AP"]), heldout_loss(model, held, input_size=size))
    return out


if __name__ == "__main__":  # the learning-rate sweep behind chapter 5's settings
    for higher in (True, False):
        scores = lr_sweep([3e-3, 1e-2], higher=higher, steps=300, train_scenes=2048)
        cells = [f"lr {lr:g}: AP {ap:.3f}, held-out heatmap loss {loss:.3f}" for lr, (ap, loss) in scores.items()]
        print("higher" if higher else "quarter", "; ".join(cells), flush=True)
