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
from flax import nnx

from posekit import metrics
from posekit.checkpoint import run_dir
from posekit.cocoio import box_results
from posekit.detection import detection_loss
from posekit.experiments.single_person import pose_loss_fn
from posekit.models import HRNet, SimpleBaseline
from posekit.models.centernet import CenterNet
from posekit.scenes import crop_batches, detector_batches, training_scenes
from posekit.train import fit

CROP_MODELS = {"simplebaseline": (SimpleBaseline, "tiny"), "hrnet": (HRNet, "lite")}


def train_detector(*, steps: int, train_scenes: int, seed: int = 0, variant: str = "tiny", input_size: int = 128,
                   lr: float = 2e-3, batch_size: int = 16, progress: bool = True):  # fmt: skip
    """Train (or load) `CenterNet(variant)` on `train_scenes` training scenes at `input_size` pixels.

    Adam with warmup-cosine (`posekit.train.fit`), CenterNet's loss (`detection.detection_loss`) on the
    targets of `scenes.detector_batches` (random scale, shift and flip). Returns (model, history).
    """
    cfg = dict(model="centernet", variant=variant, steps=steps, train_scenes=train_scenes, seed=seed,
               input_size=input_size, lr=lr, batch_size=batch_size)  # fmt: skip
    model = CenterNet(variant, rngs=nnx.Rngs(seed))
    data = training_scenes(train_scenes, seed)

    def loss_fn(m, batch):
        return detection_loss(m(batch["images"], train=True), batch)

    return fit(model, loss_fn, detector_batches(data, input_size, batch_size, seed), steps, lr=lr,
               ckpt_dir=run_dir("detector", cfg), ckpt_every=max(steps // 4, 50), progress=progress,
               desc=f"centernet-{variant}")  # fmt: skip


def train_crop_model(name: str = "simplebaseline", variant: str | None = None, *, steps: int, train_scenes: int,
                     input_size=(128, 96), sigma: float = 1.0, seed: int = 0, lr: float = 6e-3,
                     batch_size: int = 32, progress: bool = True):  # fmt: skip
    """Train (or load) a heatmap model (`CROP_MODELS`: "simplebaseline" tiny, "hrnet" lite) on person crops
    cut from the training scenes (`scenes.crop_batches`, augmented), spatial cross-entropy against Gaussian
    targets of std `sigma` heatmap pixels. Returns (model, history)."""
    if name not in CROP_MODELS:
        raise ValueError(f"train_crop_model: name must be one of {list(CROP_MODELS)}, got {name!r}")
    model_class, default_variant = CROP_MODELS[name]
    variant = variant or default_variant
    h, w = input_size
    cfg = dict(model=f"{name}-crops", variant=variant, steps=steps, train_scenes=train_scenes, seed=seed,
               input_size=[h, w], sigma=sigma, lr=lr, batch_size=batch_size)  # fmt: skip
    model = model_class(variant, heatmap_kind="logits", rngs=nnx.Rngs(seed))
    data = training_scenes(train_scenes, seed)
    return fit(model, pose_loss_fn((h, w), sigma), crop_batches(data, (h, w), batch_size, seed), steps, lr=lr,
               ckpt_dir=run_dir("topdown-pose", cfg), ckpt_every=max(steps // 4, 50), progress=progress,
               desc=f"{name}-{variant}-{h}x{w}")  # fmt: skip


def _gt_arrays(scenes: dict):
    from posekit.scenes import people

    return people(scenes, include_crowd=True)


def recall_at_iou(dets, scenes: dict, iou: float = 0.5) -> np.ndarray:
    """Per non-crowd person (in image order), whether some detection has IoU ≥ `iou` with its box (bool)."""
    found = []
    for (boxes, _), gt in zip(dets, _gt_arrays(scenes)):
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
