"""The top-down recipes of chapter 4: a person detector and a single-person model trained on scene crops.

    det, hist = train_detector(steps=2000, train_scenes=3072)          # CenterNet on the training scenes
    pose, hist = train_crop_model("simplebaseline", steps=1500, train_scenes=3072)

What the chapter measures about them is in `posekit.analysis.top_down`.

Runs are cached by config (`posekit.checkpoint.run_dir`), so chapter 5 and the head-to-head chapter reuse
them. Both train on `posekit.scenes.training_scenes(train_scenes, seed)`; the validation scenes are never seen.
"""

from __future__ import annotations

from posekit import metrics
from posekit.analysis.top_down import detection_metrics
from posekit.data import shards_config
from posekit.detection import detect, merge_scales
from posekit.experiments.recipe import init_from, sweep, train_run
from posekit.experiments.single_person import pose_loss_fn
from posekit.losses import detection_loss
from posekit.models import HRNet, SimpleBaseline
from posekit.scenes import crop_batches, detector_batches, fingerprint, training_data, training_scenes
from posekit.top_down import gt_boxes, top_down
from posekit.zoo_files import info

CROP_MODELS = {"simplebaseline": (SimpleBaseline, "tiny"), "hrnet": (HRNet, "lite")}


def train_detector(*, steps: int, train_scenes: int, seed: int = 0, variant: str = "tiny", input_size: int = 128,
                   lr: float = 2e-3, batch_size: int = 16, val: dict | None = None, validations: int = 4,
                   progress: bool = True, data_shards: int = 1, init: str | None = None):  # fmt: skip
    """Train (or load) `CenterNet(variant)` on `train_scenes` training scenes at `input_size` pixels.

    Adam with warmup-cosine (`posekit.train.fit`), CenterNet's loss (`losses.detection_loss`) on the
    targets of `scenes.detector_batches` (random scale, shift and flip). `val`: a scene set on which the box
    AP and the recall at IoU 0.5 are measured `validations` times along training (history "val_box_ap",
    "val_recall50"; the validation curve is also the run folder's `curve.json`).
    data_shards > 1: each process reads only its shards of the scenes (`scenes.training_data`; another run).
    init: a single-person zoo model whose backbone starts the detector's (`recipe.init_from`, e.g.
    "sp-heatmap": the same "tiny" backbone), as CenterNet starts from ImageNet weights; or a detector zoo model
    whose every weight starts this one (e.g. "td-detector" trained on at 256 pixels); None: random.
    Returns (model, history).
    """
    cfg = detector_config(steps=steps, train_scenes=train_scenes, seed=seed, variant=variant, input_size=input_size,
                          lr=lr, batch_size=batch_size, val=val, data_shards=data_shards, init=init)  # fmt: skip
    data = training_data(train_scenes, seed, data_shards)

    def loss_fn(m, batch):
        return detection_loss(m(batch["images"], train=True), batch)

    def validate(m, step):
        dm = detection_metrics(detect(m, val["images"], input_size=input_size), val)
        return {"box_ap": dm["box_AP"], "recall50": dm["recall50"]}

    return train_run("detector", cfg, loss_fn=loss_fn, batches=detector_batches(data, input_size, batch_size, seed),
                     validate=validate if val is not None else None, validations=validations, progress=progress,
                     desc=f"centernet-{variant}")  # fmt: skip


def _init_part(init: str | None) -> str | None:
    """What a detector takes from the zoo model `init`: all of it from a detector (training it on, e.g. at a
    larger input), the backbone from a pose model."""
    return None if init is None or info(init).get("recipe") == "detector" else "backbone"


def detector_config(*, steps: int, train_scenes: int, seed: int = 0, variant: str = "tiny", input_size: int = 128,
                    lr: float = 2e-3, batch_size: int = 16, val: dict | None = None,
                    data_shards: int = 1, init: str | None = None) -> dict:  # fmt: skip
    """The run config `train_detector` trains with these arguments (what the run cache and the zoo key on)."""
    cfg = dict(model="centernet", variant=variant, steps=steps, train_scenes=train_scenes, seed=seed,
               input_size=input_size, lr=lr, batch_size=batch_size, **shards_config(data_shards),
               **init_from(init, _init_part(init)))  # fmt: skip
    if val is not None:
        cfg["val"] = fingerprint(val)
    return cfg


def crop_config(name: str = "simplebaseline", variant: str | None = None, *, steps: int, train_scenes: int,
                input_size=(128, 96), sigma: float = 1.0, seed: int = 0, lr: float = 6e-3, batch_size: int = 32,
                val: dict | None = None, data_shards: int = 1, init: str | None = None) -> dict:  # fmt: skip
    """The run config `train_crop_model` trains with these arguments."""
    if name not in CROP_MODELS:
        raise ValueError(f"train_crop_model: name must be one of {list(CROP_MODELS)}, got {name!r}")
    h, w = input_size
    cfg = dict(model=f"{name}-crops", variant=variant or CROP_MODELS[name][1], steps=steps, train_scenes=train_scenes,
               seed=seed, input_size=[h, w], sigma=sigma, lr=lr, batch_size=batch_size, **shards_config(data_shards),
               **init_from(init))  # fmt: skip
    if val is not None:
        cfg["val"] = fingerprint(val)
    return cfg


def train_crop_model(name: str = "simplebaseline", variant: str | None = None, *, steps: int, train_scenes: int,
                     input_size=(128, 96), sigma: float = 1.0, seed: int = 0, lr: float = 6e-3,
                     batch_size: int = 32, val: dict | None = None, validations: int = 4, progress: bool = True,
                     data_shards: int = 1, init: str | None = None):  # fmt: skip
    """Train (or load) a heatmap model (`CROP_MODELS`: "simplebaseline" tiny, "hrnet" lite) on person crops
    cut from the training scenes (`scenes.crop_batches`, augmented), spatial cross-entropy against Gaussian
    targets of std `sigma` heatmap pixels. `val`: a scene set on which the keypoint AP with its true boxes
    (`top_down.top_down`, no flip) is measured `validations` times along training (history "val_ap"). data_shards: as in
    `train_detector`. init: a single-person zoo model of the same structure to start from (`recipe.init_from`:
    "sp-heatmap" for SimpleBaseline, "sp-hrnet" for HRNet), as the papers start from ImageNet weights; None
    starts from a random initialization. Returns (model, history)."""
    cfg = crop_config(name, variant, steps=steps, train_scenes=train_scenes, input_size=input_size, sigma=sigma,
                      seed=seed, lr=lr, batch_size=batch_size, val=val, data_shards=data_shards, init=init)  # fmt: skip
    variant, (h, w) = cfg["variant"], input_size
    data = training_data(train_scenes, seed, data_shards)

    def validate(m, step):
        results = top_down(val["images"], m, boxes=gt_boxes(val), image_ids=val["image_ids"], input_size=(h, w),
                           sigma=sigma)  # fmt: skip
        return {"ap": metrics.coco_eval(val["coco"], results)["AP"]}

    return train_run("topdown-pose", cfg, loss_fn=pose_loss_fn((h, w), sigma),
                     batches=crop_batches(data, (h, w), batch_size, seed),
                     validate=validate if val is not None else None, validations=validations, progress=progress,
                     desc=f"{name}-{variant}-{h}x{w}")  # fmt: skip


def lr_sweep(kind: str, lrs, *, steps: int, train_scenes: int, holdout: int = 256, seed: int = 0, extend: int = 1,
             **kwargs) -> dict:  # fmt: skip
    """{lr: score} for the detector (`kind="detector"`, box AP) or a crop model (`kind` a `CROP_MODELS` name,
    keypoint AP with true boxes), each trained for `steps` and scored on `holdout` scenes of the training
    stream `seed + 1`: scenes no model trains on, and never the validation scenes. When the best rate is at an
    end of the grid, the grid is extended past it (`recipe.sweep`, up to `extend` times). How chapter 4's
    learning rates were chosen (`python -m posekit.experiments.top_down`)."""

    held = training_scenes(holdout, seed + 1)
    if kind == "detector":
        size = kwargs.get("input_size", 128)

        def train_at(lr):
            return train_detector(steps=steps, train_scenes=train_scenes, seed=seed, lr=lr, progress=False, **kwargs)[0]

        def score(model):
            return detection_metrics(detect(model, held["images"], input_size=size), held)["box_AP"]
    else:
        hw = tuple(kwargs.get("input_size", (128, 96)))

        def train_at(lr):
            return train_crop_model(kind, steps=steps, train_scenes=train_scenes, seed=seed, lr=lr, progress=False,
                                    **kwargs)[0]  # fmt: skip

        def score(model):
            res = top_down(held["images"], model, boxes=gt_boxes(held), image_ids=held["image_ids"], input_size=hw)
            return float(metrics.coco_eval(held["coco"], res)["AP"])

    return sweep(train_at, score, lrs, extend=extend)


def soft_nms_sweep(detectors, sigmas, *, holdout: int = 256, seed: int = 0, top_k: int = 20,
                   flip_test: bool = True) -> dict:  # fmt: skip
    """{sigma: box AP} of the multi-scale test (`detection.detect_scales`: each (model, input size) of
    `detectors`, merged by Soft-NMS with each `sigma`) on `holdout` scenes of the training stream `seed + 1`,
    never the validation scenes. How chapter 4 chose `detection.SOFT_NMS_SIGMA`."""
    held = training_scenes(holdout, seed + 1)
    per_scale = [detect(m, held["images"], input_size=s, top_k=top_k, flip_test=flip_test) for m, s in detectors]
    return {sigma: float(detection_metrics(merge_scales(per_scale, sigma=sigma, top_k=top_k), held)["box_AP"])
            for sigma in sigmas}  # fmt: skip


if __name__ == "__main__":  # the learning-rate sweep behind chapter 4's settings
    for name in ("detector", "simplebaseline", "hrnet"):
        scores = lr_sweep(name, [2e-3, 6e-3, 1.5e-2], steps=600, train_scenes=2048)
        print(name, " ".join(f"lr {lr:g}: AP {ap:.3f}" for lr, ap in scores.items()), flush=True)
