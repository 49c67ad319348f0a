"""The single-person recipe of chapters 2 and 3: synthetic crops, one model, Adam, PCK@0.1 on validation.

    model, history = single_person_run(SimpleBaseline, "tiny", steps=600, train_size=8192, val=val)
    model, history = train_named("deeppose", steps=600, train_size=8192, val=val, seed=1)

The loss follows from what the model returns (`posekit.models.PoseOutput`): SimCC vectors get SimCC's
cross-entropy, coordinates (regression, integral regression) an L1 or L2 loss on normalized coordinates,
heatmaps the loss their `heatmap_kind` calls for (spatial cross-entropy for logits, MSE for Gaussian maps)
against Gaussian targets of std `sigma` heatmap pixels.

`MODELS` names the book's single-person models, each with the loss its paper uses; `lr_sweep` picks a
learning rate on crops held out of the training set (never on the validation crops), and `seed_runs`
trains one model with several seeds.
"""

from __future__ import annotations

import numpy as np

from posekit import codecs, losses, metrics
from posekit.codecs import input_hw
from posekit.data import flip_batches, read_shards, shards_config, synthetic_single
from posekit.experiments.recipe import sweep, train_run
from posekit.inference import predict_keypoints
from posekit.models import HRNet, IntegralPose, RegressionPose, SimCCPose, SimpleBaseline

# name → (model class, model keyword arguments, coordinate loss). The loss of each is its paper's: DeepPose
# L2, integral regression L1, SimpleBaseline MSE on Gaussian maps; "heatmap" is SimpleBaseline with the
# spatial cross-entropy of Mask R-CNN's keypoint head. "pooling" differs from "deeppose" only in its head,
# "deeppose_l1" only in its loss, "heatmap_mse" from "heatmap" only in its loss.
MODELS = {
    "heatmap": (SimpleBaseline, dict(heatmap_kind="logits"), "l1"),
    "heatmap_mse": (SimpleBaseline, dict(heatmap_kind="gaussian"), "l1"),
    "deeppose": (RegressionPose, dict(head="flatten"), "l2"),
    "deeppose_l1": (RegressionPose, dict(head="flatten"), "l1"),
    "deeppose_cascade": (RegressionPose, dict(head="flatten", cascade=True), "l2"),
    "pooling": (RegressionPose, dict(head="pool"), "l2"),
    "integral": (IntegralPose, {}, "l1"),
    "simcc": (SimCCPose, dict(split=2.0), "l1"),
    "hrnet": (HRNet, dict(heatmap_kind="logits"), "l1"),
}
NEEDS_INPUT_SIZE = (RegressionPose, SimCCPose)  # their dense layers are sized by the input


def pose_loss_fn(input_size, sigma: float = 1.0, coord_loss: str = "l1", simcc_sigma: float = 1.0):
    """`loss_fn(model, batch)` for any model of the book, read from its output. Used in chapters 2 and 3.

    input_size: S or (H, W). SimCC vectors: `losses.simcc_loss` against `codecs.simcc_targets` (std
    `simcc_sigma` input pixels). Coordinates: `losses.regression_loss` (`coord_loss` "l1" or "l2") on
    `codecs.regression_targets`, summed over a cascade's stages. Heatmaps: Gaussian targets
    (`codecs.heatmap_targets`, std `sigma` heatmap pixels) made inside the jitted step at the heatmaps'
    size, scored by `losses.heatmap_loss`.
    """
    h, w = input_hw(input_size)
    if coord_loss not in losses.REGRESSION_LOSSES:
        raise ValueError(f"pose_loss_fn: coord_loss must be one of {losses.REGRESSION_LOSSES}, got {coord_loss!r}")

    def loss_fn(model, batch):
        out = model(batch["images"], train=True)
        if out.simcc_x is not None:
            tx, ty, weights = codecs.simcc_targets(batch["kpts"], (w, h), out.simcc_split, simcc_sigma)
            return losses.simcc_loss(out, tx, ty, weights), {}
        if out.coords is not None:
            target, weights = codecs.regression_targets(batch["kpts"], (w, h))
            loss = losses.regression_loss(out.coords, target, weights, coord_loss)
            if out.coarse_coords is not None:
                loss = loss + losses.regression_loss(out.coarse_coords, target, weights, coord_loss)
            return loss, {}
        hh, hw = out.heatmaps.shape[1:3]
        target, weights = codecs.heatmap_targets(batch["kpts"], (w, h), (hw, hh), sigma)
        return losses.heatmap_loss(out, target, weights), {}

    return loss_fn


def pck_bbox(pred, data: dict, thr: float = 0.1) -> float:
    """Mean PCK@thr with the bbox size max(w, h) as normalizer (`posekit.metrics.pck`). Used in chapters 2-3."""
    return float(metrics.pck(pred, data["keypoints"], metrics.bbox_size(data["bboxes"]), thr)["mean"])


def single_person_config(model_class, variant: str = "tiny", *, steps: int, train_size: int, val: dict | None = None,
                         seed: int = 0, size=64, sigma: float = 1.0, lr: float = 6e-3, batch_size: int = 32,
                         coord_loss: str = "l1", holdout: int = 0, data_shards: int = 1,
                         **model_kwargs) -> dict:  # fmt: skip
    """The config of a `single_person_run` (its run folder's key, and what `posekit.models.build_model` reads)."""
    if model_class in NEEDS_INPUT_SIZE:
        model_kwargs = dict(model_kwargs, input_size=input_hw(size))
    cfg = dict(model=model_class.__name__.lower(), variant=variant, steps=steps, train_size=train_size, seed=seed,
               size=size, lr=lr, batch_size=batch_size, sigma=sigma, **model_kwargs)  # fmt: skip
    if coord_loss != "l1":  # (l1 is the default: configs written before the option stay valid)
        cfg["coord_loss"] = coord_loss
    if holdout:
        cfg["holdout"] = holdout
    cfg.update(shards_config(data_shards))
    if val is not None:
        cfg["val"] = [int(len(val["images"])), float(val["keypoints"].sum())]
    return cfg


def single_person_run(
    model_class,
    variant: str = "tiny",
    *,
    steps: int,
    train_size: int,
    val: dict | None = None,
    seed: int = 0,
    size=64,
    sigma: float = 1.0,
    lr: float = 6e-3,
    batch_size: int = 32,
    coord_loss: str = "l1",
    holdout: int = 0,
    progress: bool = True,
    data_shards: int = 1,
    **model_kwargs,
):
    """Train (or load, if a finished run with the same config exists) one model of chapters 2 and 3.

    model_class: `RegressionPose`, `SimpleBaseline`, `IntegralPose`, `SimCCPose` or `HRNet`, built as
    `model_class(variant, rngs=nnx.Rngs(seed), **model_kwargs)` (e.g. `heatmap_kind="gaussian"` for
    SimpleBaseline's MSE-trained maps; `input_size` is passed to the models whose dense layers need it).
    Data: `synthetic_single(train_size, seed, size)` with random flips, minus its last `holdout` crops (kept
    for `lr_sweep`); loss: `pose_loss_fn(size, sigma, coord_loss)`; Adam, warmup-cosine schedule peaking
    at `lr`. `val`: a dataset (as `synthetic_single` returns) scored with PCK@0.1 (bbox) 6 times during
    training. data_shards > 1: each process renders or loads only its shards of the training crops
    (`posekit.data.Shards`; another run). Returns (model, history); the run lives in
    `run_dir(f"single-{model_class.__name__.lower()}", config)`. Used in chapters 2 and 3.
    """
    name = model_class.__name__.lower()
    hw = input_hw(size)
    cfg = single_person_config(model_class, variant, steps=steps, train_size=train_size, val=val, seed=seed,
                               size=size, sigma=sigma, lr=lr, batch_size=batch_size, coord_loss=coord_loss,
                               holdout=holdout, data_shards=data_shards, **model_kwargs)  # fmt: skip
    if data_shards > 1:  # each process renders (or loads) only its shards of the training crops
        if holdout:
            raise ValueError("single_person_run: holdout needs the whole training set; use data_shards=1")
        data = read_shards(lambda shard: synthetic_single(train_size, seed, size, shard=shard), data_shards)
    else:
        data = synthetic_single(train_size, seed, size)
    if holdout:
        data = {k: v[: train_size - holdout] for k, v in data.items()}

    def validate(m, step):
        return {"pck": pck_bbox(predict_keypoints(m, val["images"]), val)}

    return train_run(f"single-{name}", cfg, loss_fn=pose_loss_fn(hw, sigma, coord_loss),
                     batches=flip_batches(data, batch_size, seed), validate=validate if val is not None else None,
                     validations=6, progress=progress, desc=f"{name}-{variant}")  # fmt: skip


def train_named(name: str, variant: str | None = None, **kwargs):
    """`single_person_run` for a `MODELS` entry (its class, keyword arguments and loss). Used in chapters 2-3.

    variant defaults to "tiny" ("lite" for HRNet). Keyword arguments go to `single_person_run` and override
    the entry's (e.g. `coord_loss="l1"`).
    """
    model_class, variant, kwargs = _named(name, variant, kwargs, "train_named")
    return single_person_run(model_class, variant, **kwargs)


def named_config(name: str, variant: str | None = None, **kwargs) -> dict:
    """The run config `train_named(name, variant, **kwargs)` trains (without training; `val` may be given)."""
    model_class, variant, kwargs = _named(name, variant, kwargs, "named_config")
    kwargs.pop("progress", None)
    return single_person_config(model_class, variant, **kwargs)


def _named(name: str, variant, kwargs: dict, caller: str):
    """(model class, variant, keyword arguments) of a `MODELS` entry with `kwargs` overriding its own."""
    if name not in MODELS:
        raise ValueError(f"{caller}: name must be one of {list(MODELS)}, got {name!r}")
    model_class, model_kwargs, coord_loss = MODELS[name]
    variant = variant or ("lite" if model_class is HRNet else "tiny")
    return model_class, variant, {"coord_loss": coord_loss, **model_kwargs, **kwargs}


def lr_sweep(name: str, lrs, *, train_size: int, holdout: int, seed: int = 0, size=64, extend: int = 1,
             **kwargs) -> dict:  # fmt: skip
    """PCK@0.1 on `holdout` crops held out of the training set, for each learning rate in `lrs`.

    Each run trains `MODELS[name]` on the first `train_size − holdout` crops of the training set and is scored
    on its last `holdout` crops: the validation crops are never looked at. When the best rate is at an end
    of the grid, the grid is extended past that end by its own ratio (lrs[1] / lrs[0]), up to `extend`
    times, so that a model is not held to a grid that stops before its optimum. Returns {lr: PCK@0.1} in
    increasing lr; the best is `max(result, key=result.get)`. Used in chapters 2 and 3.
    """
    data = synthetic_single(train_size, seed, size)
    held = {k: v[train_size - holdout :] for k, v in data.items()}

    def train_at(lr):
        return train_named(name, train_size=train_size, holdout=holdout, seed=seed, size=size, lr=lr, progress=False,
                           **kwargs)[0]  # fmt: skip

    return sweep(train_at, lambda model: pck_bbox(predict_keypoints(model, held["images"]), held), lrs, extend=extend)


def seed_runs(name: str, seeds, *, val: dict, **kwargs) -> dict:
    """Train `MODELS[name]` once per seed (data order, flips and initialization all follow the seed).

    Returns {"pck": (S,) PCK@0.1 on `val`, "models": [...], "histories": [...]}; the PCK is the final
    validation of each run (`fit` scores `val` after the last step). Used in chapters 2 and 3.
    """
    runs = [train_named(name, seed=int(s), val=val, progress=False, **kwargs) for s in seeds]
    pck = np.asarray([h["val_pck"][-1] for _, h in runs], dtype=float)
    return {"pck": pck, "models": [m for m, _ in runs], "histories": [h for _, h in runs]}


def verdict(a, b, more: str = "higher", less: str = "lower", same: str = "not distinguishable from") -> str:
    """A word for how per-seed scores `a` compare with `b`, that says no more than the seeds support.

    `more`/`less` when the difference of the means exceeds twice its standard error (from the seeds'
    spread, sqrt(var_a / n_a + var_b / n_b)); `same` when it does not, or when either side has one seed
    (no spread to judge by). Chapters glue it into sentences, so the text follows the numbers.
    """
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    if len(a) < 2 or len(b) < 2:
        return same
    diff = a.mean() - b.mean()
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    if abs(diff) <= 2 * se:
        return same
    return more if diff > 0 else less
