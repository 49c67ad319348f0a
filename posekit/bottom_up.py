"""The bottom-up pipeline of chapter 5: every joint in the image at once, then grouped into people.

    loss, aux = losses.bottomup_loss(model(batch["images"], train=True), batch)   # 1/4 (and 1/2) maps + tags
    maps, tags, stride, mats = network_maps(model, images, input_size=128, flip_test=True)
    results = group_images(maps, tags, stride, mats, input_size=128, tag_threshold=1.0)   # grouping alone
    results = bottom_up(images, model, input_size=128, image_ids=ids)       # both: a COCO results list

The network (`posekit.models.bottom_up.AssociativeEmbedding`) outputs, for the whole image, one heatmap per
joint type and one tag map per joint type; HigherHRNet's variant adds heatmaps at 1/2 of the input. Training
(`posekit.losses.bottomup_loss`) fits the heatmaps to every person's Gaussians (`scenes.bottomup_batches`) and
the tags with the associative-embedding loss (`posekit.losses.ae_loss`). Inference (`network_maps`) resizes
each image into the square input (the longer side fitted, as the detector of chapter 4 does), runs the
network, optionally on the mirror image too, and brings everything to one grid:

* heatmap values: a Gaussian-trained map is used as it is, a focal-trained map (logits) through a sigmoid;
* HigherHRNet's aggregation: the 1/4 maps upsampled (bilinear) to 1/2 and averaged with the 1/2 maps;
* flip test: heatmaps averaged with the mirror image's (left and right swapped), tags *stacked* (each joint
  gets a 2-D tag: its tag in the image and in the mirror image), as in HigherHRNet's code.

`posekit.grouping.group` then forms the people; their cells go back to input pixels and, through the inverse
of the resize, to image pixels. A person's score is the grouping's (mean heatmap value over the 17 joints).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from posekit import cocoio, codecs
from posekit.crop import invert_affine, transform_points
from posekit.detection import to_input
from posekit.grouping import group
from posekit.inference import predict
from posekit.skeleton import COCO


def _probabilities(maps, heatmap_loss: str):
    return 1.0 / (1.0 + np.exp(-np.asarray(maps, np.float64))) if heatmap_loss == "focal" else np.asarray(maps)


def _upsample(a, factor: int = 2):
    """(N, h, w, C) → (N, f·h, f·w, C), bilinear with cell centres at integer coordinates (half-pixel aligned)."""
    n, h, w, c = a.shape
    return np.asarray(jax.image.resize(jnp.asarray(a, jnp.float32), (n, factor * h, factor * w, c), "bilinear"))


def network_maps(model, images, *, input_size: int, flip_test: bool = False, use_half: bool = True,
                 heatmap_loss: str = "focal", batch_size: int = 32, project_to_input: bool = False):  # fmt: skip
    """The network's maps for each image on the grid grouping works on.

    Returns heatmaps (N, J, g, g) (probabilities or Gaussian values), tags (N, J, g, g, D) (D doubles with
    `flip_test`), the grid's stride in input pixels, and the image → input matrices (N, 2, 3). The grid is
    1/2 of the input when the model has HigherHRNet's head and `use_half`, else 1/4; `project_to_input`: the maps
    (bilinear) brought to the input's own size (stride 1) before grouping, as HigherHRNet's test does
    (`project2image`), so that grouping's kernel and quarter-cell steps are in input pixels.
    """
    x, mats = to_input(images, input_size)
    out = predict(model, x, batch_size)
    J = COCO.num_joints

    def maps_of(o, mirrored: bool):
        hm = _probabilities(o.heatmaps, heatmap_loss)
        tg = np.asarray(o.tags)
        half = o.heatmaps_half is not None and use_half
        if half:
            hm = 0.5 * (_upsample(hm) + _probabilities(o.heatmaps_half, heatmap_loss))
            tg = _upsample(tg)
        stride = 2 if half else 4
        if project_to_input:
            hm, tg, stride = _upsample(hm, stride), _upsample(tg, stride), 1
        n, g = hm.shape[0], hm.shape[1]
        hm = np.moveaxis(hm, -1, 1)  # (N, J, g, g)
        tg = np.moveaxis(tg.reshape(n, g, g, -1, J), -1, 1)  # (N, J, g, g, D)  (tags are laid out D-major)
        if mirrored:
            perm = COCO.flip_permutation()
            hm, tg = hm[:, perm, :, ::-1], tg[:, perm, :, ::-1]
        return hm, tg, stride

    hm, tg, stride = maps_of(out, False)
    if flip_test:
        hm_f, tg_f, _ = maps_of(predict(model, x[:, :, ::-1], batch_size), True)
        hm, tg = 0.5 * (hm + hm_f), np.concatenate([tg, tg_f], -1)
    return hm.astype(np.float32), tg.astype(np.float32), stride, mats


def to_image(people, mats, input_size: int, stride: int) -> np.ndarray:
    """People (N, J, 3) in grid cells of one image → image pixels (value kept), through `mats` (2, 3)."""
    g = input_size // stride
    xy = np.asarray(codecs.heatmap_to_input(people[..., :2], (input_size,) * 2, (g, g)))
    inv = np.repeat(invert_affine(np.asarray(mats)[None]), len(people), 0)
    return np.concatenate([transform_points(xy, inv), people[..., 2:]], -1) if len(people) else people


def group_images(maps, tags, stride: int, mats, *, input_size: int, image_ids=None, max_people: int = 20,
                 timings: dict | None = None, **group_kwargs) -> list[dict]:  # fmt: skip
    """Group every image's maps (`network_maps`' output) and map the people back → a COCO results list.

    group_kwargs go to `posekit.grouping.group` (its `top_k`, 30 candidates per joint type, is HigherHRNet's
    `max_num_people`); `max_people`: the best-scored people kept per image (COCO's evaluator reads at most 20).
    Grouping several ways from one network pass is how chapter 5's ablations stay cheap. timings: receives the
    seconds spent in "grouping".
    """
    n = len(maps)
    image_ids = list(range(1, n + 1)) if image_ids is None else list(image_ids)
    if len(image_ids) != n:
        raise ValueError(f"bottom_up: image_ids must have one id per image ({n}), got {len(image_ids)}")
    t = time.perf_counter()
    ids, kps, scores = [], [], []
    for k in range(n):
        people, sc = group(maps[k], tags[k], **group_kwargs)
        people, sc = people[:max_people], sc[:max_people]
        kps.append(to_image(people, mats[k], input_size, stride))
        scores.append(sc)
        ids += [image_ids[k]] * len(people)
    if timings is not None:
        timings["grouping"] = timings.get("grouping", 0.0) + time.perf_counter() - t
    if not ids:
        return []
    return cocoio.keypoint_results(np.asarray(ids, dtype=object), np.concatenate(kps), np.concatenate(scores))


def bottom_up(images, model, *, input_size: int = 128, image_ids=None, flip_test: bool = True,
              use_half: bool = True, heatmap_loss: str = "focal", max_people: int = 20, timings: dict | None = None,
              batch_size: int = 32, project_to_input: bool = False, **group_kwargs) -> list[dict]:  # fmt: skip
    """The whole bottom-up pipeline over a set of images → a COCO keypoint results list. Used in chapter 5.

    images: (N, H, W, 3) uint8 or a list of images. image_ids: the COCO ids (default 1..N). `network_maps`
    (flip_test, use_half, heatmap_loss, project_to_input) then `group_images` (max_people, group_kwargs:
    detection_threshold, tag_threshold, top_k, nms_kernel, adjust, refine, score), batch by batch.
    timings: a dict that receives the seconds spent in "network" and "grouping" (added to what is there).
    """
    n = len(images)
    image_ids = list(range(1, n + 1)) if image_ids is None else list(image_ids)
    if len(image_ids) != n:
        raise ValueError(f"bottom_up: image_ids must have one id per image ({n}), got {len(image_ids)}")
    clock = {"network": 0.0, "grouping": 0.0}
    results = []
    for i in range(0, n, batch_size):
        t = time.perf_counter()
        hm, tg, stride, mats = network_maps(model, images[i : i + batch_size], input_size=input_size,
                                            flip_test=flip_test, use_half=use_half, heatmap_loss=heatmap_loss,
                                            batch_size=batch_size, project_to_input=project_to_input)  # fmt: skip
        clock["network"] += time.perf_counter() - t
        results += group_images(hm, tg, stride, mats, input_size=input_size, image_ids=image_ids[i : i + batch_size],
                                max_people=max_people, timings=clock, **group_kwargs)  # fmt: skip
    if timings is not None:
        for k, v in clock.items():
            timings[k] = timings.get(k, 0.0) + v
    return results
