"""Multi-person scenes: the validation set every multi-person chapter shares, training scenes, a COCO folder.

    val = validation_scenes("standard")        # {"images", "coco", "image_ids"}: 400 scenes, COCO ground truth
    train = training_scenes(3072, seed=0)     # the same form, from a separate random stream
    real = load_folder("person_keypoints_val2017.json", "val2017/")   # a real COCO folder, the same form
    batches = crop_batches(train, (128, 96), batch_size=32, seed=0)   # person crops for a top-down model
    batches = detector_batches(train, 128, batch_size=16, seed=0)     # CenterNet targets for a detector
    batches = bottomup_batches(train, 128, batch_size=16, seed=0)     # whole scenes for a bottom-up model
    grid = people_grid(8, num_images=16)      # exactly 8 people per image, for timing against the count

A scene set is a dict: "images" (an (N, H, W, 3) uint8 array, or a list of differently sized images for a
real folder), "coco" (a COCO person_keypoints dict: the ground truth, crowd regions as iscrowd=1
annotations) and "image_ids" (the COCO image id of each image, in order). Chapters 4, 5 and the head-to-head
chapter score their pipelines on `validation_scenes(profile)` with the same COCO evaluator, so their numbers
are comparable.

The batch streams are pure functions of the step (`posekit.data.batch_stream`): each draws the random choices of
the whole global batch and builds only this process's rows of it (all of them in a single process), so a run on
several hosts sees exactly the batches of a run on one; given `posekit.data.Shards` of scene sets, each host
reads and draws from its own shards only.
"""

from __future__ import annotations

import io
import json

import numpy as np

from posekit import cocoio, synth
from posekit.book import cache_dir, check_profile
from posekit.codecs import multi_person_targets
from posekit.crop import (
    affine_matrix,
    crop_batch,
    inside_crop,
    invert_affine,
    random_augment,
    transform_points,
    warp_images,
)
from posekit.data import batch_stream, read_shards
from posekit.detection import center_targets
from posekit.io import atomic_write_bytes
from posekit.parallel import shard_range
from posekit.skeleton import COCO

VAL_SEED = 20_240_417  # the validation scenes' random stream (training scenes use small seeds: 0, 1, ...)
SCENE_SIZE = 256
CROWD_PROB = 0.15  # one scene in seven holds a crowd region (iscrowd=1), as COCO's crowded photos do
VAL_SCENES = {"quick": 64, "standard": 400, "full": 2000}


def _render(num: int, seed: int, size: int, shard: tuple[int, int] | None = None, face_labels: str = "seen") -> dict:
    """Rendered scenes as a scene set, cached under `cache_dir("data")`; `shard` (s, S): only shard s of S of
    them (image ids and file names as in the whole set); face_labels: `synth.FACE_LABELS`."""

    items = range(num) if shard is None else shard_range(num, *shard)
    part = "" if shard is None else f"-shard{shard[0]}of{shard[1]}"
    path = cache_dir("data") / f"scenes-{num}-{seed}-{size}-crowd{CROWD_PROB}-face{face_labels}{part}.npz"
    if path.exists():
        with np.load(path) as f:
            coco = json.loads(str(f["coco"]))
            return {"images": f["images"], "coco": coco, "image_ids": [im["id"] for im in coco["images"]]}
    batch = synth.render_scenes(len(items), seed, size, crowd_prob=CROWD_PROB, start=items.start,
                                face_labels=face_labels)  # fmt: skip
    coco = synth.to_coco(batch, "scene", first_image_id=items.start + 1)
    buf = io.BytesIO()
    np.savez(buf, images=batch["images"], coco=np.array(json.dumps(coco)))
    atomic_write_bytes(path, buf.getvalue())
    return {"images": batch["images"], "coco": coco, "image_ids": [im["id"] for im in coco["images"]]}


def validation_scenes(profile: str, face_labels: str = "seen") -> dict:
    """The shared multi-person validation set of `profile` (64 / 400 / 2,000 scenes of 256×256).

    Scenes of 1-6 people of COCO-like sizes (16% small, 57% medium, 27% large by COCO's area ranges in the
    standard set), overlapping, some cut by the border, one scene in seven with a crowd region; every person
    is labelled, small ones included; the face keypoints as COCO labels them (`face_labels="seen"`: a hidden
    nose, eye or ear is not labelled; "all" labels them v = 1, to measure what the rule changes). The quick
    set is the first 64 scenes of the standard one. Used in chapters 4 and 5.
    """
    return _render(VAL_SCENES[check_profile(profile)], VAL_SEED, SCENE_SIZE, face_labels=face_labels)


def training_scenes(num: int, seed: int = 0, shard: tuple[int, int] | None = None) -> dict:
    """`num` training scenes from the random stream `seed` (never the validation stream). Chapters 4 and 5.
    shard (s, S): only shard s of S of them (`posekit.data.read_shards` reads this process's shards)."""
    if seed == VAL_SEED:
        raise ValueError(f"training_scenes: seed {seed} is the validation stream; pick another")
    return _render(num, seed, SCENE_SIZE, shard)


def training_data(num: int, seed: int = 0, data_shards: int = 1):
    """The training scenes a run reads: all `num` of them (`data_shards` = 1), or this process's shards of them
    (`posekit.data.Shards`, each host reading only its own; `posekit train` on several hosts)."""
    if data_shards == 1:
        return training_scenes(num, seed)
    return read_shards(lambda shard: training_scenes(num, seed, shard), data_shards)


def _restrict(coco: dict, ids) -> dict:
    """The COCO dict with only the images `ids` and their annotations."""
    keep = set(ids)
    return dict(coco, images=[im for im in coco["images"] if im["id"] in keep],
                annotations=[a for a in coco["annotations"] if a["image_id"] in keep])  # fmt: skip


def load_folder(annotations, image_dir, shard: tuple[int, int] | None = None) -> dict:
    """A COCO person_keypoints file and its image folder as a scene set (e.g. COCO's val2017, or a folder
    written by `posekit synth --kind scene`). Images keep their own sizes (a list). shard (s, S): only the
    images of shard s of S (in the file's order) are read, with their annotations; e.g. each host's part,
    `posekit.data.read_shards(lambda shard: load_folder(ann, folder, shard), S)`. Used in chapter 4."""
    coco = cocoio.load_coco(annotations)
    ids = [im["id"] for im in coco["images"]]
    if shard is not None:
        ids = [ids[i] for i in shard_range(len(ids), *shard)]
        coco = _restrict(coco, ids)
    return {"images": cocoio.load_images(coco, image_dir, ids), "coco": coco, "image_ids": ids}


def people(scenes: dict, include_crowd: bool = True) -> list[dict]:
    """Per image, its annotations as arrays (`cocoio.annotation_arrays`): keypoints, bboxes, iscrowd, ...
    (the annotations are grouped by image once: linear in their number)."""
    by_image = cocoio.annotations_by_image(scenes["coco"])
    return [cocoio.annotation_arrays({"annotations": by_image.get(i, [])}, include_crowd=include_crowd)
            for i in scenes["image_ids"]]  # fmt: skip


def fingerprint(scenes: dict) -> list:
    """What identifies a scene set in a run's config (a run scored on other scenes is another run): the number
    of images and the sum of the annotations' areas."""
    return [len(scenes["image_ids"]), sum(a["area"] for a in scenes["coco"]["annotations"])]


def select(scenes: dict, index) -> dict:
    """The scene set restricted to the images at positions `index` (ground truth kept for those only)."""
    index = list(np.asarray(index).reshape(-1))
    ids = [scenes["image_ids"][i] for i in index]
    coco = _restrict(scenes["coco"], ids)
    images = scenes["images"]
    images = images[index] if isinstance(images, np.ndarray) else [images[i] for i in index]
    return {"images": images, "coco": coco, "image_ids": ids}


# ------------------------------------------------------------------------------------------------ batch streams
def crop_batches(scenes, input_size, batch_size: int, seed: int, min_keypoints: int = 1, augment: bool = True):
    """`batches(step)` of person crops for a top-down model: {"images" (B, H, W, 3) float, "kpts" (B, J, 3)}.

    People: every non-crowd annotation with at least `min_keypoints` labelled joints, drawn with replacement.
    Each crop is the person's box padded to the input's aspect ratio and enlarged by 1.25 (`crop.crop_batch`),
    with SimpleBaseline's augmentation (scale ×0.75-1.25, rotation σ = 30° on 60% of crops, flips) when
    `augment`; joints that fall outside the crop are marked unlabelled. input_size: (H, W). scenes: a scene
    set or `posekit.data.Shards` of them.
    """
    h, w = input_size

    def prepare(scenes):
        rows = []
        for i, p in enumerate(people(scenes, include_crowd=False)):
            for j in np.flatnonzero(p["num_keypoints"] >= min_keypoints):
                rows.append((i, p["bboxes"][j], p["keypoints"][j]))
        if not rows:
            raise ValueError(f"crop_batches: no person with at least {min_keypoints} labelled joints in the scenes")
        return {"img_of": np.array([r[0] for r in rows]), "boxes": np.stack([r[1] for r in rows]),
                "kpts": np.stack([r[2] for r in rows]).astype(np.float32), "images": scenes["images"]}  # fmt: skip

    def draw(rng, n, d):
        idx = rng.integers(0, len(d["boxes"]), n)
        return {"idx": idx, **(random_augment(rng, n) if augment else {})}

    def build(c, d):
        idx, images = c["idx"], d["images"]
        aug = {k: v for k, v in c.items() if k != "idx"} or None
        src = images[d["img_of"][idx]] if isinstance(images, np.ndarray) else [images[k] for k in d["img_of"][idx]]
        crops, kp, _ = crop_batch(src, d["boxes"][idx], d["kpts"][idx], (w, h), aug, COCO)
        kp[..., 2] = np.where(inside_crop(kp, w, h), kp[..., 2], 0)
        kp[..., :2] = np.where(kp[..., 2:] > 0, kp[..., :2], 0.0)
        return {"images": crops.astype(np.float32) / 255.0, "kpts": kp.astype(np.float32)}

    batches = batch_stream(scenes, batch_size, seed, prepare, draw, build)
    batches.num_people = sum(len(d["boxes"]) for d in batches.prepared)
    return batches


def detector_batches(scenes, input_size: int, batch_size: int, seed: int, output_stride: int = 4,
                     scale_range=(0.7, 1.3), shift: float = 0.2):  # fmt: skip
    """`batches(step)` of detector inputs (B, S, S, 3) float and CenterNet targets (`detection.center_targets`).

    Each scene is fitted into the S×S input, zoomed by a random factor in `scale_range` about a centre
    shifted by up to `shift` of the side, and flipped with probability ½ (CenterNet's random scale, crop and
    flip); boxes follow and are clipped to the input. scenes: a scene set or `posekit.data.Shards` of them.
    """
    S = int(input_size)

    def draw(rng, n, d):
        idx = rng.integers(0, len(d["sizes"]), n)
        wh = d["sizes"][idx].astype(float)
        zoom = rng.uniform(*scale_range, n)
        side = wh.max(1) / zoom  # the side of the image square shown in the input
        centre = wh / 2 + rng.uniform(-shift, shift, (n, 2)) * side[:, None]
        flip = rng.random(n) < 0.5
        return {"idx": idx, "mats": affine_matrix(centre, np.stack([side, side], 1), np.zeros(n), (S, S), flip=flip)}

    def build(c, d):
        idx, mats, images = c["idx"], c["mats"], d["images"]
        src = images[idx] if isinstance(images, np.ndarray) else [images[k] for k in idx]
        x = warp_images(src, mats, (S, S)).astype(np.float32) / 255.0
        targets = [center_targets(*_boxes_in_input(d["anns"][k], m, S), S, output_stride) for k, m in zip(idx, mats)]
        names = ("heat", "size", "offset", "mask", "ignore")
        return {"images": x, **{n: np.stack([t[i] for t in targets]) for i, n in enumerate(names)}}

    return batch_stream(scenes, batch_size, seed, _whole_scenes, draw, build)


def _whole_scenes(scenes: dict) -> dict:
    """What the whole-scene streams (detector, bottom-up) draw from: annotations, images and their sizes."""
    return {"anns": people(scenes, include_crowd=True), "images": scenes["images"],
            "sizes": _image_sizes(scenes["images"])}  # fmt: skip


def _image_sizes(images) -> np.ndarray:
    """(N, 2) [W, H] of an image array or of a list of differently sized images."""
    if isinstance(images, np.ndarray):
        return np.tile([images.shape[2], images.shape[1]], (len(images), 1))
    return np.array([[im.shape[1], im.shape[0]] for im in images])


def _boxes_in_input(ann: dict, mat, S: int):
    """One image's boxes mapped by `mat` (a flip swaps the corners) and clipped to the S×S input."""
    b = ann["bboxes"]
    corners = np.stack([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    c = transform_points(corners, np.repeat(mat[None], len(b), 0)) if len(b) else corners
    lo = np.clip(np.minimum(c[:, 0], c[:, 1]), 0, S)
    hi = np.clip(np.maximum(c[:, 0], c[:, 1]), 0, S)
    return np.concatenate([lo, hi - lo], 1), ann["iscrowd"].astype(bool)


def bottomup_batches(scenes, input_size: int, batch_size: int, seed: int, *, sigma: float = 4.0,
                     output_stride: int = 4, higher: bool = True, max_people: int = 16,
                     scale_range=(0.75, 1.5), rotation: float = 30.0, shift: float = 0.15):  # fmt: skip
    """`batches(step)` of whole scenes for a bottom-up model, with HigherHRNet's augmentation and targets.

    Each scene is fitted into the S×S input, zoomed by a random factor in `scale_range`, rotated by up to
    ±`rotation` degrees, its centre shifted by up to `shift` of the side, and flipped with probability ½
    (left and right joints swapped). Returns {"images" (B, S, S, 3) float in [0, 1], "heat" (B, S/4, S/4, J),
    "joints" (B, max_people, J, 3) (each person's cells at 1/4 and weights, `codecs.multi_person_targets`;
    the cell nearest each labelled joint is set to exactly 1, the positives of a focal loss),
    "mask" (B, S/4, S/4) (0 inside crowd regions: their people are not labelled, so the heatmap loss leaves
    them out)} and, when `higher`, "heat_half" and "mask_half" at 1/2. `sigma` is the Gaussians' std in
    input pixels (HigherHRNet draws σ = 2 cells at both resolutions of a 512 input; here one σ in pixels keeps
    the two maps' targets the same shape). Used in chapter 5.
    """
    S = int(input_size)
    strides = {"": output_stride, "_half": output_stride // 2} if higher else {"": output_stride}
    perm = COCO.flip_permutation()

    def draw(rng, n, d):
        sizes = d["sizes"]
        idx = rng.integers(0, len(sizes), n)
        zoom = rng.uniform(*scale_range, n)
        side = sizes[idx].max(1) / zoom
        centre = sizes[idx] / 2 + rng.uniform(-shift, shift, (n, 2)) * side[:, None]
        rot = rng.uniform(-rotation, rotation, n)
        flip = rng.random(n) < 0.5
        mats = affine_matrix(centre, np.stack([side, side], 1), rot, (S, S), flip=flip)
        return {"idx": idx, "mats": mats, "flip": flip}

    def build(c, d):
        idx, mats, flip, images, anns = c["idx"], c["mats"], c["flip"], d["images"], d["anns"]
        src = images[idx] if isinstance(images, np.ndarray) else [images[k] for k in idx]
        out = {"images": warp_images(src, mats, (S, S)).astype(np.float32) / 255.0}
        parts = {k: [] for k in ("heat", "joints", "mask", "heat_half", "mask_half")}
        for k, m, fl in zip(idx, mats, flip):
            a = anns[k]
            kp = a["keypoints"][a["iscrowd"] == 0].astype(np.float32)
            if len(kp):
                kp = transform_points(kp, np.repeat(m[None], len(kp), 0))
                kp[..., 2] = np.where(inside_crop(kp, S, S), kp[..., 2], 0)
                if fl:
                    kp = kp[:, perm]
            crowd = a["bboxes"][a["iscrowd"] == 1]
            for suffix, stride in strides.items():
                hw = S // stride
                heat, joints = multi_person_targets(kp.reshape(-1, COCO.num_joints, 3), (S, S), (hw, hw),
                                                    sigma / stride, max_people)  # fmt: skip
                on = joints[..., 2] > 0  # the cell nearest each joint is exactly 1: the focal loss's positives
                heat[np.nonzero(on)[1], joints[..., 1][on].astype(int), joints[..., 0][on].astype(int)] = 1.0
                parts["heat" + suffix].append(np.moveaxis(heat, 0, -1))
                parts["mask" + suffix].append(outside_regions(crowd, m, hw, stride))
                if suffix == "":
                    parts["joints"].append(joints)
        out.update({k: np.stack(v) for k, v in parts.items() if v})
        return out

    return batch_stream(scenes, batch_size, seed, _whole_scenes, draw, build)


def outside_regions(boxes, matrix, hw: int, stride: int) -> np.ndarray:
    """(hw, hw) float32: 0 at the map cells whose centre lies inside one of `boxes` ([x, y, w, h] in image
    pixels) once the image is warped to the input by `matrix` (2, 3), else 1.

    Each cell centre is mapped back into the image (the inverse of `matrix`) and tested against the boxes, so
    the masked region is the box's exact image under any rotation, scale, shift or flip: a box rotated by 30°
    masks a rotated rectangle, not the axis-aligned box of two of its corners.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    mask = np.ones((hw, hw), np.float32)
    if not len(boxes):
        return mask
    c = (np.arange(hw) + 0.5) * stride - 0.5
    grid = np.stack(np.meshgrid(c, c), -1).reshape(1, -1, 2)
    pts = transform_points(grid, invert_affine(np.asarray(matrix, np.float64)[None]))[0]
    x, y = pts[:, :1], pts[:, 1:]
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    mask.reshape(-1)[inside.any(1)] = 0.0
    return mask


def people_grid(num_people: int, num_images: int, seed: int = 0, size: int = SCENE_SIZE) -> dict:
    """A scene set of `num_images` images, each holding exactly `num_people` (1-16) people: single-person
    renderings (`synth.render_single`, no truncation) in random cells of a 4×4 grid, the other cells a flat
    grey. For timing against the number of people (chapters 5 and the head-to-head chapter)."""

    if not 1 <= int(num_people) <= 16:
        raise ValueError(f"people_grid: num_people must be in 1..16, got {num_people!r}")
    tile = size // 4
    single = synth.render_single(num_images * num_people, seed, tile, truncation=0.0)
    rng = np.random.default_rng(seed)
    images = np.full((num_images, size, size, 3), 110, np.uint8)
    anns = []
    for i in range(num_images):
        for k, cell in enumerate(rng.choice(16, num_people, replace=False)):
            n = i * num_people + k
            oy, ox = (cell // 4) * tile, (cell % 4) * tile
            images[i, oy : oy + tile, ox : ox + tile] = single["images"][n]
            kp = single["keypoints"][n].copy()
            kp[:, :2] += np.where(kp[:, 2:] > 0, [ox, oy], 0)
            box = single["bboxes"][n] + np.array([ox, oy, 0, 0])
            anns.append(cocoio.annotation(i + 1, kp, ann_id=len(anns) + 1, bbox=box, area=single["areas"][n],
                                          decimals=2))  # fmt: skip
    ims = [{"id": i + 1, "file_name": f"{i:06d}.png", "width": size, "height": size} for i in range(num_images)]
    coco = cocoio.dataset(ims, anns, info={"description": f"posekit people grid ({num_people} per image)"})
    return {"images": images, "coco": coco, "image_ids": [im["id"] for im in ims]}
