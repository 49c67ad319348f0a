"""The top-down recipe of chapter 4: a person detector and a single-person model trained on scene crops.

    det, hist = train_detector(steps=2000, train_scenes=3072)          # CenterNet on the training scenes
    pose, hist = train_crop_model("simplebaseline", steps=1500, train_scenes=3072)
    dets = detect(det, val["images"], input_size=128)
    detection_metrics(dets, val)                 # {"box_ap", "box_ap50", "recall50", ...}
    degrade_boxes(gt_boxes(val), drop=0.2, jitter=0.1, seed=0)   # a worse "detector" made from the truth

Runs are cached by config (`posekit.checkpoint.run_dir`), so chapter 5 and the head-to-head chapter reuse
them. Both train on `posekit.scenes.training_scenes(train_scenes, seed)`; the validation scenes are never seen.
"""

from __future__ import annotations

import numpy as np

from posekit import metrics
from posekit.checkpoint import run_dir
from posekit.cocoio import box_results
from posekit.data import shards_config
from posekit.experiments.single_person import pose_loss_fn
from posekit.losses import detection_loss
from posekit.models import HRNet, SimpleBaseline, build_model
from posekit.scenes import crop_batches, detector_batches, fingerprint, people, training_data, training_scenes
from posekit.train import fit

CROP_MODELS = {"simplebaseline": (SimpleBaseline, "tiny"), "hrnet": (HRNet, "lite")}


def train_detector(*, steps: int, train_scenes: int, seed: int = 0, variant: str = "tiny", input_size: int = 128,
                   lr: float = 2e-3, batch_size: int = 16, val: dict | None = None, progress: bool = True,
                   data_shards: int = 1):  # fmt: skip
    """Train (or load) `CenterNet(variant)` on `train_scenes` training scenes at `input_size` pixels.

    Adam with warmup-cosine (`posekit.train.fit`), CenterNet's loss (`losses.detection_loss`) on the
    targets of `scenes.detector_batches` (random scale, shift and flip). `val`: a scene set on which the box
    AP and the recall at IoU 0.5 are measured 4 times during training (history "val_box_ap", "val_recall50").
    data_shards > 1: each process reads only its shards of the scenes (`scenes.training_data`; another run).
    Returns (model, history).
    """
    cfg = dict(model="centernet", variant=variant, steps=steps, train_scenes=train_scenes, seed=seed,
               input_size=input_size, lr=lr, batch_size=batch_size, **shards_config(data_shards))  # fmt: skip
    if val is not None:
        cfg["val"] = fingerprint(val)
    model = build_model(cfg, seed)
    data = training_data(train_scenes, seed, data_shards)

    def loss_fn(m, batch):
        return detection_loss(m(batch["images"], train=True), batch)

    def validate(m, step):
        from posekit.detection import detect

        dm = detection_metrics(detect(m, val["images"], input_size=input_size), val)
        return {"box_ap": dm["box_AP"], "recall50": dm["recall50"]}

    return fit(model, loss_fn, detector_batches(data, input_size, batch_size, seed), steps, lr=lr,
               ckpt_dir=run_dir("detector", cfg), ckpt_every=max(steps // 4, 50), progress=progress,
               validate=validate if val is not None else None, val_every=max(steps // 4, 1),
               desc=f"centernet-{variant}")  # fmt: skip


def train_crop_model(name: str = "simplebaseline", variant: str | None = None, *, steps: int, train_scenes: int,
                     input_size=(128, 96), sigma: float = 1.0, seed: int = 0, lr: float = 6e-3,
                     batch_size: int = 32, val: dict | None = None, progress: bool = True,
                     data_shards: int = 1):  # fmt: skip
    """Train (or load) a heatmap model (`CROP_MODELS`: "simplebaseline" tiny, "hrnet" lite) on person crops
    cut from the training scenes (`scenes.crop_batches`, augmented), spatial cross-entropy against Gaussian
    targets of std `sigma` heatmap pixels. `val`: a scene set on which the keypoint AP with its true boxes
    (`top_down.top_down`, no flip) is measured 4 times during training (history "val_ap"). data_shards: as in
    `train_detector`. Returns (model, history)."""
    if name not in CROP_MODELS:
        raise ValueError(f"train_crop_model: name must be one of {list(CROP_MODELS)}, got {name!r}")
    variant = variant or CROP_MODELS[name][1]
    h, w = input_size
    cfg = dict(model=f"{name}-crops", variant=variant, steps=steps, train_scenes=train_scenes, seed=seed,
               input_size=[h, w], sigma=sigma, lr=lr, batch_size=batch_size, **shards_config(data_shards))  # fmt: skip
    if val is not None:
        cfg["val"] = fingerprint(val)
    model = build_model(cfg, seed)
    data = training_data(train_scenes, seed, data_shards)

    def validate(m, step):
        from posekit.top_down import gt_boxes, top_down

        results = top_down(val["images"], m, boxes=gt_boxes(val), image_ids=val["image_ids"], input_size=(h, w),
                           sigma=sigma)  # fmt: skip
        return {"ap": metrics.coco_eval(val["coco"], results)["AP"]}

    return fit(model, pose_loss_fn((h, w), sigma), crop_batches(data, (h, w), batch_size, seed), steps, lr=lr,
               ckpt_dir=run_dir("topdown-pose", cfg), ckpt_every=max(steps // 4, 50), progress=progress,
               validate=validate if val is not None else None, val_every=max(steps // 4, 1),
               desc=f"{name}-{variant}-{h}x{w}")  # fmt: skip


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
    from posekit.top_down import oks_nms

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
    from posekit.cocoio import keypoint_results

    return keypoint_results(np.asarray(ids, dtype=object), np.concatenate(kps), np.concatenate(scores))


def codec_ceiling(scenes: dict, input_size, sigma: float = 1.0, output_stride: int = 4, area_range=None) -> float:
    """Keypoint AP of perfect heatmaps: every true pose cut out of its true box at `input_size` (H, W),
    drawn as Gaussian target maps at 1/`output_stride`, decoded (argmax, quarter-cell shift) and mapped
    back. What the map grid alone loses at this crop size, whatever the network. area_range: (low, high) to
    score only the people of that area (`metrics.coco_eval`); chapter 5 compares it by person size."""
    from posekit import codecs
    from posekit.cocoio import keypoint_results
    from posekit.crop import affine_matrix, box_to_center_scale, crop_to_image, transform_points
    from posekit.top_down import PADDING, padded_boxes

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
        cells, _ = codecs.decode_argmax(np.asarray(maps))
        back = crop_to_image(np.asarray(codecs.heatmap_to_input(cells, (w, h), hm_size)), mats)
        ids += [iid] * len(back)
        kps.append(back)
    results = keypoint_results(np.asarray(ids, dtype=object), np.concatenate(kps), np.ones(len(ids)))
    return float(metrics.coco_eval(scenes["coco"], results, area_range=area_range)["AP"])


def lr_sweep(kind: str, lrs, *, steps: int, train_scenes: int, holdout: int = 256, seed: int = 0, **kwargs) -> dict:
    """{lr: score} for the detector (`kind="detector"`, box AP) or a crop model (`kind` a `CROP_MODELS` name,
    keypoint AP with true boxes), each trained for `steps` and scored on `holdout` scenes of the training
    stream `seed + 1`: scenes no model trains on, and never the validation scenes. How chapter 4's learning
    rates were chosen (`python -m posekit.experiments.top_down`)."""
    from posekit.detection import detect
    from posekit.top_down import gt_boxes, top_down

    held = training_scenes(holdout, seed + 1)
    out = {}
    for lr in sorted(float(v) for v in lrs):
        if kind == "detector":
            model, _ = train_detector(steps=steps, train_scenes=train_scenes, seed=seed, lr=lr, progress=False,
                                      **kwargs)  # fmt: skip
            size = kwargs.get("input_size", 128)
            out[lr] = detection_metrics(detect(model, held["images"], input_size=size), held)["box_AP"]
        else:
            model, _ = train_crop_model(kind, steps=steps, train_scenes=train_scenes, seed=seed, lr=lr,
                                        progress=False, **kwargs)  # fmt: skip
            hw = tuple(kwargs.get("input_size", (128, 96)))
            res = top_down(held["images"], model, boxes=gt_boxes(held), image_ids=held["image_ids"], input_size=hw)
            out[lr] = float(metrics.coco_eval(held["coco"], res)["AP"])
    return out


if __name__ == "__main__":  # the learning-rate sweep behind chapter 4's settings
    for name in ("detector", "simplebaseline", "hrnet"):
        scores = lr_sweep(name, [2e-3, 6e-3, 1.5e-2], steps=600, train_scenes=2048)
        print(name, " ".join(f"lr {lr:g}: AP {ap:.3f}" for lr, ap in scores.items()), flush=True)
