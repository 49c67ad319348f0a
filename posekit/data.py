"""Training data for the models: cached synthetic datasets and deterministic batch streams.

    data = synthetic_single(8192, seed=0, size=64)       # images (N, 64, 64, 3) uint8, keypoints (N, 17, 3), ...
    batches = flip_batches(data, batch_size=32, seed=0)  # batches(step) -> {"images", "kpts"}

A batch stream is a pure function of the step (`step_rng`), so a training run is deterministic
and resumes on exactly the batches it would have seen.

Several hosts (`posekit.parallel`): given one dataset, every host holds all of it, draws the whole global batch
and builds only its rows, so the batches are those of one host. Given `Shards` (`read_shards`), each host reads
only its shards of the dataset, and the global batch is made of one block per shard, drawn from that shard
alone (its own generator [seed, step, shard]): the batches then depend on the number of shards, not on the
number of hosts, so one process reading every shard reproduces a run on several hosts.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from posekit import synth
from posekit.book import cache_dir
from posekit.codecs import input_hw
from posekit.crop import crop_batch, flip_keypoints, inside_crop, transform_points
from posekit.io import atomic_write_bytes
from posekit.parallel import host_rows, host_shards, shard_range
from posekit.skeleton import COCO


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The numpy generator for one step's data: a pure function of (seed, step)."""
    return np.random.default_rng([int(seed), int(step)])


def synthetic_single(num: int, seed: int, size=64, shard: tuple[int, int] | None = None) -> dict:
    """Single-person crops, cached as an .npz under `cache_dir("data")`. Used in chapters 2 and 3.

    shard (s, S): only shard s of S of the `num` crops (`parallel.shard_range`), the same bytes as those
    crops of the whole set (`read_shards` reads this process's shards).

    size S: `posekit.synth.render_single(num, seed, S)`, square crops as rendered. size (H, W) with H ≠ W:
    the crops are rendered at S = max(H, W), then each person's box is cut out as a top-down model does
    (`posekit.crop.crop_batch`: padded to the aspect ratio W / H, enlarged by 1.25, warped to W × H); the
    keypoints, boxes, head boxes and areas are carried into the new crop.
    """
    h, w = input_hw(size)
    tag = f"{h}" if h == w else f"{h}x{w}"
    items = range(num) if shard is None else shard_range(num, *shard)
    part = "" if shard is None else f"-shard{shard[0]}of{shard[1]}"
    path = cache_dir("data") / f"single-{num}-{seed}-{tag}-face{synth.FACE_LABELS[0]}{part}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    data = synth.render_single(len(items), seed, max(h, w), start=items.start)
    if h != w:
        data = _box_crops(data, (h, w))
    buf = io.BytesIO()
    np.savez(buf, **data)
    atomic_write_bytes(path, buf.getvalue())
    return data


def _box_crops(data: dict, hw) -> dict:
    """Warp every rendered crop to its person's box at the (H, W) input size (see `synthetic_single`)."""
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


@dataclass(frozen=True)
class Shards:
    """A dataset read in `num_shards` contiguous shards, of which this process holds `parts` ({shard: data}).

    A batch stream given Shards builds shard s's block of B/S rows of the global batch from `parts[s]` alone.
    """

    num_shards: int
    parts: dict


def read_shards(load: Callable[[tuple[int, int]], dict], num_shards: int) -> Shards:
    """This process's shards (`parallel.host_shards`): `load((s, S))` for each; e.g.
    `read_shards(lambda shard: synthetic_single(8192, 0, 64, shard=shard), 2)`."""
    return Shards(num_shards, {s: load((s, num_shards)) for s in host_shards(num_shards)})


def shards_config(data_shards: int) -> dict:
    """A run's config entry for its data shards: none for one (the configs of unsharded runs stay as they were)."""
    if not isinstance(data_shards, int) or data_shards < 1:
        raise ValueError(f"data_shards: expected a positive integer, got {data_shards!r}")
    return {} if data_shards == 1 else {"data_shards": data_shards}


def batch_stream(data, batch_size: int, seed: int, prepare: Callable, draw: Callable, build: Callable):
    """`batches(step)` from the three parts every stream has.

    prepare(data) → what drawing and building need (once per dataset or shard); draw(rng, n, prepared) → the
    random choices of n rows (a dict of arrays, n first), drawn in a fixed order; build(choices, prepared) →
    the batch (a dict of arrays). One dataset: the whole global batch is drawn from `step_rng(seed, step)` and
    this process builds only its rows (`parallel.host_rows`). `Shards`: each shard's block of B/S rows is drawn
    from the generator [seed, step, shard] over that shard only, and this process builds its shards' blocks.
    Returns the stream, with the prepared parts as `batches.prepared` (a list: one per dataset or shard).
    """
    if not isinstance(data, Shards):
        prepared = prepare(data)

        def batches(step):
            choices = draw(step_rng(seed, step), batch_size, prepared)
            mine = host_rows(batch_size)  # the global batch is drawn; this process builds only its rows
            return build({k: v[mine] for k, v in choices.items()}, prepared)

        batches.prepared = [prepared]
        return batches
    S = data.num_shards
    if batch_size % S:
        raise ValueError(f"batch: the global batch of {batch_size} does not split evenly over {S} data shards")
    parts = {s: prepare(part) for s, part in sorted(data.parts.items())}

    def batches_of_shards(step):
        blocks = [build(draw(np.random.default_rng([int(seed), int(step), s]), batch_size // S, p), p)
                  for s, p in parts.items()]  # fmt: skip
        return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}

    batches_of_shards.prepared = list(parts.values())
    return batches_of_shards


def flip_batches(data, batch_size: int, seed: int, flip: bool = True):
    """`batches(step)` over a fixed set: random images (with replacement) and random horizontal flips.

    data: "images" (N, S, S, 3) uint8, "keypoints" (N, J, 3) COCO order (or `Shards` of such sets). Returns dict
    images (B, S, S, 3) float32 in [0, 1] and kpts (B, J, 3); a flip mirrors the image and swaps left/right
    joints. With several processes (`parallel.initialize`) each returns only its rows of the global batch
    (`batch_stream`).
    """

    def draw(rng, n, d):
        choices = {"idx": rng.integers(0, len(d["images"]), n)}
        if flip:
            choices["flip"] = rng.random(n) < 0.5
        return choices

    def build(c, d):
        images, width = d["images"], d["images"].shape[2]
        x, k = images[c["idx"]], d["keypoints"][c["idx"]]
        if flip:
            f = c["flip"]
            x = np.where(f[:, None, None, None], x[:, :, ::-1], x)
            k = np.where(f[:, None, None], flip_keypoints(k, width, COCO), k)
        return {"images": x.astype(np.float32) / 255.0, "kpts": k.astype(np.float32)}

    return batch_stream(data, batch_size, seed, lambda d: d, draw, build)
