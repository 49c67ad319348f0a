"""Training data for the models: cached synthetic datasets and deterministic batch streams.

    data = synthetic_single(8192, seed=0, size=64)       # images (N, 64, 64, 3) uint8, keypoints (N, 17, 3), ...
    batches = flip_batches(data, batch_size=32, seed=0)  # batches(step) -> {"images", "kpts"}

A batch stream is a pure function of the step (`posekit.train.step_rng`), so a training run is deterministic
and resumes on exactly the batches it would have seen.
"""

from __future__ import annotations

import io

import numpy as np

from posekit.codecs import input_hw
from posekit.crop import flip_keypoints
from posekit.io import atomic_write_bytes
from posekit.parallel import host_rows
from posekit.skeleton import COCO
from posekit.train import step_rng


def synthetic_single(num: int, seed: int, size=64) -> dict:
    """Single-person crops, cached as an .npz under `cache_dir("data")`. Used in chapters 2 and 3.

    size S: `posekit.synth.render_single(num, seed, S)`, square crops as rendered. size (H, W) with H ≠ W:
    the crops are rendered at S = max(H, W), then each person's box is cut out as a top-down model does
    (`posekit.crop.crop_batch`: padded to the aspect ratio W / H, enlarged by 1.25, warped to W × H); the
    keypoints, boxes, head boxes and areas are carried into the new crop.
    """
    from posekit import synth
    from posekit.book import cache_dir

    h, w = input_hw(size)
    tag = f"{h}" if h == w else f"{h}x{w}"
    path = cache_dir("data") / f"single-{num}-{seed}-{tag}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    data = synth.render_single(num, seed, max(h, w))
    if h != w:
        data = _box_crops(data, (h, w))
    buf = io.BytesIO()
    np.savez(buf, **data)
    atomic_write_bytes(path, buf.getvalue())
    return data


def _box_crops(data: dict, hw) -> dict:
    """Warp every rendered crop to its person's box at the (H, W) input size (see `synthetic_single`)."""
    from posekit.crop import crop_batch, inside_crop, transform_points

    h, w = hw
    crops, kpts, mats = crop_batch(data["images"], data["bboxes"], data["keypoints"], (w, h))
    kpts[..., 2] = np.where(inside_crop(kpts, w, h), kpts[..., 2], 0)
    kpts[..., :2] = np.where(kpts[..., 2:] > 0, kpts[..., :2], 0.0)
    out = dict(data, images=crops, keypoints=kpts.astype(np.float32))
    scale = np.abs(mats[:, 0, 0])  # the warp is a similarity without rotation: one scale per crop
    x, y, bw, bh = np.moveaxis(data["bboxes"], -1, 0)
    corners = transform_points(np.stack([np.stack([x, y], -1), np.stack([x + bw, y + bh], -1)], 1), mats)
    out["bboxes"] = np.concatenate([corners[:, 0], corners[:, 1] - corners[:, 0]], -1).astype(np.float32)
    out["head_boxes"] = transform_points(data["head_boxes"].reshape(-1, 2, 2), mats).reshape(-1, 4).astype(np.float32)
    out["areas"] = (data["areas"] * scale**2).astype(np.float32)
    return out


def flip_batches(data: dict, batch_size: int, seed: int, flip: bool = True):
    """`batches(step)` over a fixed set: random images (with replacement) and random horizontal flips.

    data: "images" (N, S, S, 3) uint8, "keypoints" (N, J, 3) COCO order. Returns dict images (B, S, S, 3)
    float32 in [0, 1] and kpts (B, J, 3); a flip mirrors the image and swaps left/right joints. With several
    processes (`parallel.initialize`) each returns only its rows of the global batch (`parallel.host_rows`).
    """
    images, kpts = data["images"], data["keypoints"]
    width = images.shape[2]

    def batches(step):
        rng = step_rng(seed, step)
        idx = rng.integers(0, len(images), batch_size)
        f = rng.random(batch_size) < 0.5 if flip else None
        rows = host_rows(batch_size)  # the global batch is drawn; this process builds only its rows
        idx = idx[rows]
        x, k = images[idx], kpts[idx]
        if flip:
            f = f[rows]
            x = np.where(f[:, None, None, None], x[:, :, ::-1], x)
            k = np.where(f[:, None, None], flip_keypoints(k, width, COCO), k)
        return {"images": x.astype(np.float32) / 255.0, "kpts": k.astype(np.float32)}

    return batches
