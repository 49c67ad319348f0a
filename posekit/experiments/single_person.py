"""The single-person recipe of chapters 2 and 3: synthetic crops, one model, Adam, PCK@0.1 on validation.

    model, history = single_person_run(SimpleBaseline, "tiny", steps=600, train_size=8192, val=val)

The loss follows from what the model returns (`posekit.models.PoseOutput`): coordinates get an L1 loss on
normalized coordinates, heatmaps the loss their `heatmap_kind` calls for (spatial cross-entropy for logits,
MSE for Gaussian maps) against Gaussian targets of std `sigma` heatmap pixels.
"""

from __future__ import annotations

from flax import nnx

from posekit import codecs, losses
from posekit.checkpoint import run_dir
from posekit.data import flip_batches, synthetic_single
from posekit.inference import predict_keypoints
from posekit.train import fit


def pose_loss_fn(input_size: int, sigma: float = 1.0, coord_loss: str = "l1"):
    """`loss_fn(model, batch)` for any model of the book, read from its output. Used in chapters 2 and 3.

    Heatmaps: Gaussian targets (`codecs.heatmap_targets`, std `sigma` in heatmap pixels) made inside the jitted
    step at the heatmaps' size, scored by `losses.heatmap_loss`. Coordinates: `losses.regression_loss`
    (`coord_loss` "l1" or "l2") on `codecs.regression_targets`.
    """

    def loss_fn(model, batch):
        out = model(batch["images"], train=True)
        if out.heatmaps is not None:
            h, w = out.heatmaps.shape[1:3]
            target, weights = codecs.heatmap_targets(batch["kpts"], (input_size, input_size), (h, w), sigma)
            return losses.heatmap_loss(out, target, weights), {}
        target, weights = codecs.regression_targets(batch["kpts"], (input_size, input_size))
        return losses.regression_loss(out.coords, target, weights, coord_loss), {}

    return loss_fn


def pck_bbox(pred, data: dict, thr: float = 0.1) -> float:
    """Mean PCK@thr with the bbox size max(w, h) as normalizer (`posekit.metrics.pck`). Used in chapters 2-3."""
    from posekit import metrics

    return float(metrics.pck(pred, data["keypoints"], metrics.bbox_size(data["bboxes"]), thr)["mean"])


def single_person_run(
    model_class,
    variant: str = "tiny",
    *,
    steps: int,
    train_size: int,
    val: dict | None = None,
    seed: int = 0,
    size: int = 64,
    sigma: float = 1.0,
    lr: float = 6e-3,
    batch_size: int = 32,
    progress: bool = True,
    **model_kwargs,
):
    """Train (or load, if a finished run with the same config exists) one model of chapters 2 and 3.

    model_class: `RegressionPose`, `SimpleBaseline` or `HRNet`, built as `model_class(variant, rngs=nnx.Rngs(seed),
    **model_kwargs)` (e.g. `heatmap_kind="gaussian"` for SimpleBaseline's MSE-trained maps).
    Data: `synthetic_single(train_size, seed, size)` with random flips; loss: `pose_loss_fn(size, sigma)`
    (`sigma` only matters to heatmap models); Adam, warmup-cosine schedule peaking at `lr`.
    `val`: a dataset (as `synthetic_single` returns) scored with PCK@0.1 (bbox) 6 times during training.
    Returns (model, history); the run lives in `run_dir(f"single-{model_class.__name__.lower()}", config)`.

    Used in chapter 3.
    """
    name = model_class.__name__.lower()
    cfg = dict(model=name, variant=variant, steps=steps, train_size=train_size, seed=seed, size=size, lr=lr,
               batch_size=batch_size, sigma=sigma, **model_kwargs)  # fmt: skip
    if val is not None:
        cfg["val"] = [int(len(val["images"])), float(val["keypoints"].sum())]
    model = model_class(variant, rngs=nnx.Rngs(seed), **model_kwargs)

    def validate(m, step):
        return {"pck": pck_bbox(predict_keypoints(m, val["images"]), val)}

    return fit(
        model, pose_loss_fn(size, sigma), flip_batches(synthetic_single(train_size, seed, size), batch_size, seed),
        steps, lr=lr, ckpt_dir=run_dir(f"single-{name}", cfg), ckpt_every=max(steps // 4, 50),
        validate=validate if val is not None else None, val_every=max(steps // 6, 1),
        progress=progress, desc=f"{name}-{variant}",
    )  # fmt: skip
