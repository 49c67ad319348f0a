"""The bottom-up recipe of chapter 5: Associative Embedding (1/4) and HigherHRNet (1/4 + 1/2) on whole scenes.

    model, hist = train_bottom_up(higher=True, steps=800, train_scenes=2048)    # cached by config
    results = bottom_up(val["images"], model, input_size=128, image_ids=val["image_ids"])

What the chapter measures about them is in `posekit.analysis.bottom_up`.

Runs are cached by config (`posekit.checkpoint.run_dir`), so the head-to-head chapter reuses them. Training
uses `posekit.scenes.training_scenes(train_scenes, seed)`; the validation scenes are never seen.
"""

from __future__ import annotations

import numpy as np

from posekit import metrics
from posekit.analysis.bottom_up import heldout_loss
from posekit.bottom_up import bottom_up, group_images, network_maps
from posekit.data import shards_config
from posekit.experiments.recipe import init_from, sweep, train_run
from posekit.losses import TAG_WEIGHT, bottomup_loss
from posekit.scenes import bottomup_batches, fingerprint, training_data, training_scenes
from posekit.zoo_files import info


def _pair(weight) -> list[float]:
    """A tag weight as [push, pull] (one number weighs both)."""
    return [float(v) for v in np.broadcast_to(np.asarray(weight, float), (2,))]


def _init_part(init: str | None) -> str | None:
    """What a bottom-up model takes from the zoo model `init`: all of it from a bottom-up model (training it on),
    the body (all of HRNet but its last 1×1 conv) from a top-down HRNet."""
    return None if init is None or info(init).get("recipe", "").startswith("bottomup-") else "body"


def bottom_up_config(*, steps: int, train_scenes: int, higher: bool = True, variant: str = "lite",
                     input_size: int = 128, sigma: float = 4.0, heatmap_loss: str = "focal",
                     tag_weight: float | None = None, lr: float = 6e-3, batch_size: int = 16, seed: int = 0,
                     val: dict | None = None, data_shards: int = 1, init: str | None = None) -> dict:  # fmt: skip
    """The run config `train_bottom_up` trains with these arguments (what the run cache and the zoo key on)."""
    cfg = dict(model="associative-embedding", variant=variant, higher=higher, steps=steps, train_scenes=train_scenes,
               input_size=input_size, sigma=sigma, heatmap_loss=heatmap_loss, lr=lr, batch_size=batch_size,
               seed=seed, tag_weight=_pair(TAG_WEIGHT[heatmap_loss] if tag_weight is None else tag_weight),
               **shards_config(data_shards), **init_from(init, _init_part(init)))  # fmt: skip
    if val is not None:
        cfg["val"] = fingerprint(val)
    return cfg


def train_bottom_up(*, steps: int, train_scenes: int, higher: bool = True, variant: str = "lite",
                    input_size: int = 128, sigma: float = 4.0, heatmap_loss: str = "focal",
                    tag_weight: float | None = None, lr: float = 6e-3, batch_size: int = 16, seed: int = 0,
                    val: dict | None = None, validations: int = 4, progress: bool = True, data_shards: int = 1,
                    init: str | None = None):  # fmt: skip
    """Train (or load) `AssociativeEmbedding(variant, higher=higher)` on whole training scenes at `input_size`.

    Adam with warmup-cosine (`posekit.train.fit`); `posekit.losses.bottomup_loss` on the targets of
    `scenes.bottomup_batches` (Gaussians of std `sigma` input pixels), push and pull weighted `tag_weight`
    ((push, pull) or one number; default `posekit.losses.TAG_WEIGHT[heatmap_loss]`). `val`: a scene set on which
    the keypoint AP (`bottom_up`, flip test) is measured `validations` times along training (history "val_ap").
    data_shards > 1: each process reads only its shards of the scenes (`scenes.training_data`; another run).
    init: a zoo HRNet (e.g. "td-hrnet") whose body (all but its last 1×1 conv) the model starts from, as the
    papers start from ImageNet weights; or a bottom-up zoo model whose every weight starts this one (training it
    on, e.g. "bu-higherhrnet"). Returns (model, history).
    """
    cfg = bottom_up_config(steps=steps, train_scenes=train_scenes, higher=higher, variant=variant,
                           input_size=input_size, sigma=sigma, heatmap_loss=heatmap_loss, tag_weight=tag_weight, lr=lr,
                           batch_size=batch_size, seed=seed, val=val, data_shards=data_shards, init=init)  # fmt: skip
    data = training_data(train_scenes, seed, data_shards)

    def loss_fn(m, batch):
        return bottomup_loss(m(batch["images"], train=True), batch, heatmap_loss, cfg["tag_weight"])

    def validate(m, step):
        res = bottom_up(val["images"], m, input_size=input_size, image_ids=val["image_ids"], heatmap_loss=heatmap_loss)
        return {"ap": metrics.coco_eval(val["coco"], res)["AP"]}

    batches = bottomup_batches(data, input_size, batch_size, seed, sigma=sigma, higher=higher)
    name = f"{'higher' if higher else 'ae'}-{variant}-{input_size}"
    return train_run("bottomup", cfg, loss_fn=loss_fn, batches=batches, validate=validate if val is not None else None,
                     validations=validations, progress=progress, desc=name)  # fmt: skip


def lr_sweep(lrs, *, higher: bool, steps: int, train_scenes: int, holdout: int = 128, seed: int = 0, extend: int = 0,
             **kwargs) -> dict:  # fmt: skip
    """{lr: (keypoint AP, heatmap loss)} of `train_bottom_up` runs of `steps`, scored on `holdout` scenes of the
    training stream `seed + 1` (never the validation scenes): the AP, and the held-out heatmap loss
    (`heldout_loss`), which still ranks runs whose AP is 0; `extend`: as `recipe.sweep` (the grid grows past
    an end that wins). How chapter 5's learning rate was chosen (`python -m posekit.experiments.bottom_up`)."""
    held = training_scenes(holdout, seed + 1)
    size = kwargs.get("input_size", 128)

    def train_at(lr):
        return train_bottom_up(steps=steps, train_scenes=train_scenes, higher=higher, seed=seed, lr=lr, progress=False,
                               **kwargs)[0]  # fmt: skip

    def score(model):
        res = bottom_up(held["images"], model, input_size=size, image_ids=held["image_ids"])
        return float(metrics.coco_eval(held["coco"], res)["AP"]), heldout_loss(model, held, input_size=size)

    return sweep(train_at, score, lrs, extend=extend, rank=lambda s: -s[1])  # ranked by the held-out heatmap loss


# Grouping's thresholds tried on held-out scenes (`grouping_sweep`). The reference's detection threshold, 0.1, was
# set for maps trained with a mean squared error toward Gaussians of peak 1; the book's focal-loss maps are
# probabilities with a prior of 0.1. Its tag threshold, 1, was set for its tags. So both are chosen on data for each
# model, like the learning rate.
DETECTION_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
TAG_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)


def grouping_sweep(model, detection=DETECTION_THRESHOLDS, tag=TAG_THRESHOLDS, *, holdout: int = 400, seed: int = 0,
                   input_size: int = 128, heatmap_loss: str = "focal") -> dict:  # fmt: skip
    """Grouping's two thresholds chosen for `model` on `holdout` scenes of the training stream `seed + 1` (as
    `lr_sweep`; never the validation scenes), one after the other from one network pass (`bottom_up`'s, flip
    test): the detection threshold at the reference's tag threshold (1), then the tag threshold at the chosen
    detection threshold, each the one with the highest keypoint AP (the lower one on a tie).

    Returns {"detection": {threshold: AP}, "tag": {threshold: AP}, "chosen": {"detection_threshold": d,
    "tag_threshold": t}}; "chosen" is what `bottom_up` and `group` take. How chapters 5 and 5b set each model's
    grouping."""
    if not detection or not tag:
        raise ValueError(f"grouping_sweep: detection and tag must each name at least one threshold, got "
                         f"{list(detection)} and {list(tag)}")  # fmt: skip
    held = training_scenes(holdout, seed + 1)
    maps = network_maps(model, held["images"], input_size=input_size, flip_test=True, heatmap_loss=heatmap_loss)

    def ap(**kwargs):
        res = group_images(*maps, input_size=input_size, image_ids=held["image_ids"], **kwargs)
        return float(metrics.coco_eval(held["coco"], res)["AP"])

    det = {float(d): ap(detection_threshold=float(d), tag_threshold=1.0) for d in detection}
    best_det = max(det, key=det.get)
    tags = {float(t): ap(detection_threshold=best_det, tag_threshold=float(t)) for t in tag}
    best_tag = max(tags, key=tags.get)
    return {"detection": det, "tag": tags, "chosen": {"detection_threshold": best_det, "tag_threshold": best_tag}}


if __name__ == "__main__":  # the learning-rate sweep behind chapter 5's settings
    for higher in (True, False):
        scores = lr_sweep([3e-3, 1e-2], higher=higher, steps=300, train_scenes=2048)
        cells = [f"lr {lr:g}: AP {ap:.3f}, held-out heatmap loss {loss:.3f}" for lr, (ap, loss) in scores.items()]
        print("higher" if higher else "quarter", "; ".join(cells), flush=True)
