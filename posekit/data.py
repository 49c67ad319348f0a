"""Training data for the models: cached synthetic datasets and deterministic batch streams.

    data = synthetic_single(8192, seed=0, size=64)       # images (N, 64, 64, 3) uint8, keypoints (N, 17, 3), ...
    batches = flip_batches(data, batch_size=32, seed=0)  # batches(step) -> {"images", "kpts"}

A batch stream is a pure function of the step (`posekit.train.step_rng`), so a training run is deterministic
and resumes on exactly the batches it would have seen.
"""

from __future__ import annotations

import io

import numpy as np

from posekit.crop import flip_keypoints
from posekit.io import atomic_write_bytes
from posekit.skeleton import COCO
from posekit.train import step_rng


def synthetic_single(num: int, seed: int, size: int = 64) -> dict:
    """`posekit.synth.render_single(num, seed, size)`, cached as an .npz under `cache_dir("data")`.

    Used in chapters 2 and 3.
    """
    from posekit import synth
    from posekit.book import cache_dir

    path = cache_dir("data") / f"single-{num}-{seed}-{size}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    data = synth.render_single(num, seed, size)
    buf = io.BytesIO()
    np.savez(buf, **data)
    atomic_write_bytes(path, buf.getvalue())
    return data


def flip_batches(data: dict, batch_size: int, seed: int, flip: bool = True):
    """`batches(step)` over a fixed set: random images (with replacement) and random horizontal flips.

    data: "images" (N, S, S, 3) uint8, "keypoints" (N, J, 3) COCO order. Returns dict images (B, S, S, 3)
    float32 in [0, 1] and kpts (B, J, 3); a flip mirrors the image and swaps left/right joints.
    """
    images, kpts = data["images"], data["keypoints"]
    width = images.shape[2]

    def batches(step):
        rng = step_rng(seed, step)
        idx = rng.integers(0, len(images), batch_size)
        x, k = images[idx], kpts[idx]
        if flip:
            f = rng.random(batch_size) < 0.5
            x = np.where(f[:, None, None, None], x[:, :, ::-1], x)
            k = np.where(f[:, None, None], flip_keypoints(k, width, COCO), k)
        return {"images": x.astype(np.float32) / 255.0, "kpts": k.astype(np.float32)}

    return batches
