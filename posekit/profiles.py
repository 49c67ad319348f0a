"""The `full` profile at a glance: each chapter's models with their paper-like settings, and what a GPU run takes.

The chapters' settings cells are the source (`ctx.pick(quick=..., standard=..., full=...)`); `FULL` repeats their
`full` values for the preface's table, and `tests/test_profiles.py` checks that the two agree. `gpu_hours`
estimates a run from the model's FLOPs, not from a measurement: training ≈ 3 × the forward pass's FLOPs per
image, at a stated share (MFU) of one GPU's peak.

Used in the preface.
"""

from __future__ import annotations

from posekit import models
from posekit.models import bottom_up, flops

# (chapter, what, model, its constructor arguments, input (H, W), steps, batch): `steps` and `batch` name the
# settings-cell variables they mirror, with their full-profile values
FULL = (
    ("02_regression", "DeepPose", "RegressionPose", {"variant": "r50"}, (256, 192),
     ("STEPS", 140 * 65536 // 32), ("batch", 32)),
    ("03_heatmap", "SimpleBaseline", "SimpleBaseline", {"variant": "r50", "head": "deconv"}, (256, 192),
     ("STEPS", 140 * 65536 // 32), ("batch", 32)),
    ("03_heatmap", "HRNet", "HRNet", {"variant": "w32"}, (256, 192), ("STEPS", 140 * 65536 // 32), ("batch", 32)),
    ("04_top_down", "CenterNet detector", "CenterNet", {"variant": "r18"}, (512, 512),
     ("DET_STEPS", 140 * 16384 // 16), ("batch", 16)),
    ("04_top_down", "SimpleBaseline crops", "SimpleBaseline", {"variant": "r50", "head": "deconv"}, (256, 192),
     ("POSE_STEPS", 210 * 16384 * 3 // 32), ("batch", 32)),
    ("05_bottom_up", "HigherHRNet", "AssociativeEmbedding", {"variant": "w32", "higher": True}, (512, 512),
     ("STEPS", 300 * 16384 // 48), ("BATCH", 48)),
)  # fmt: skip

PEAK_BF16 = 312e12  # one NVIDIA A100's dense bfloat16 tensor-core peak, FLOP/s
MFU = 0.3  # a typical share of the peak for convolutional networks of this size


def _model(cls: str, kwargs: dict, size):
    from flax import nnx


    make = getattr(bottom_up if cls == "AssociativeEmbedding" else models, cls)
    if cls == "RegressionPose":
        kwargs = {**kwargs, "input_size": (size[1], size[0])}
    if cls == "AssociativeEmbedding":  # its initializer rescales with a concrete std: build it for real
        return make(**kwargs, rngs=nnx.Rngs(0))
    return nnx.eval_shape(lambda: make(**kwargs, rngs=nnx.Rngs(0)))


def rows(estimate: bool = True) -> list[list]:
    """The preface's table: chapter, model, input, steps, batch, images seen, and (with `estimate`) GFLOPs per
    image and the estimated A100 hours at `MFU`. Lowering the large models for their FLOPs takes a few seconds."""

    out = []
    for chapter, what, cls, kwargs, size, (_, steps), (_, batch) in FULL:
        row = [chapter, what, f"{size[0]}×{size[1]}", f"{steps:,}", batch, f"{steps * batch / 1e6:.1f} M"]
        if estimate:
            g = flops(_model(cls, kwargs, size), (1, *size, 3))
            row += [f"{g / 1e9:.1f}", f"{3 * g * steps * batch / (MFU * PEAK_BF16) / 3600:.1f}"]
        out.append(row)
    return out
