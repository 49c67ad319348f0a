"""Run a trained multi-person pipeline on a reader's own images: what `posekit predict` does.

    pipe = load_pipeline("runs/bottomup-1a2b3c4d5e")                       # a bottom-up run folder
    pipe = load_pipeline(pose_run, detector="runs/detector-...")           # top-down: a crop model + a detector
    pipe = load_pipeline(zoo="td-hrnet")                                   # the zoo's models (+ "td-detector")
    images, ids, names = read_images("photos/")                            # or read_images(dir, coco="val.json")
    results = pipe(images, ids)                                            # a COCO keypoint results list

A run folder is what the chapters' recipes write (`posekit.checkpoint.run_dir`): `checkpoint.msgpack` and
`run.json`, whose config says which model was trained and how (input size, variant, loss). Bottom-up runs
(chapter 5's `associative-embedding`) need nothing else; top-down pose runs (chapter 4's `simplebaseline-crops`
and `hrnet-crops`) need a person detector run (`centernet`) for the boxes. The results are the chapters' own
pipelines' (`posekit.bottom_up.bottom_up`, `posekit.top_down.top_down`, flip test on), so `posekit eval` on a
folder of the validation scenes gives the chapters' AP. A zoo model (`posekit.zoo`) serves as well as a run
folder: its manifest holds the same config, its file the same weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posekit import cocoio, viz
from posekit.bottom_up import bottom_up
from posekit.checkpoint import CKPT_NAME, load_run, read_run
from posekit.models import build_model
from posekit.top_down import top_down
from posekit.zoo_files import info as zoo_info
from posekit.zoo_files import load as zoo_load

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
POSE_MODELS = ("associative-embedding", "simplebaseline-crops", "hrnet-crops")


def _model_of(folder) -> tuple[str, dict, object]:
    """(kind, config, model with the run's weights) of a run folder or of a checkpoint file inside one."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    if not (folder / CKPT_NAME).exists():
        raise FileNotFoundError(f"{folder}: no checkpoint ({CKPT_NAME}) in this run folder")
    cfg = read_run(folder)["config"]
    kind = cfg.get("model")
    if kind not in (*POSE_MODELS, "centernet"):
        raise ValueError(f"{folder}: a {kind!r} run; predict runs {', '.join(POSE_MODELS)} (and centernet boxes)")
    model = build_model(cfg)
    try:
        load_run(model, folder)
    except ValueError as e:
        raise ValueError(f"{folder}: the checkpoint does not fit a {kind} model of its config ({e})") from None
    return kind, cfg, model


def _zoo_model(name: str, zoo=None) -> tuple[str, dict, object]:
    """(kind, config, trained model) of the zoo model `name` (`posekit.zoo`)."""
    cfg = zoo_info(name, zoo)["config"]
    kind = cfg.get("model")
    if kind not in (*POSE_MODELS, "centernet"):
        raise ValueError(f"--zoo {name}: a {kind!r} model; predict runs {', '.join(POSE_MODELS)} (and centernet boxes)")
    return kind, cfg, zoo_load(name, zoo)


DEFAULT_ZOO_DETECTOR = "td-detector"


def load_pipeline(pose_run=None, detector=None, *, zoo: str | None = None, detector_zoo: str | None = None,
                  zoo_dir=None, flip_test: bool = True, detector_flip_test: bool = False,
                  decoder: str = "argmax", detection_threshold: float | None = None,
                  tag_threshold: float | None = None):  # fmt: skip
    """A function (images, image_ids) → COCO keypoint results, from a run folder (or its checkpoint file) or a
    zoo model.

    pose_run: a bottom-up run, or a top-down crop-model run together with `detector` (a `centernet` run). zoo:
    a zoo model's name instead of `pose_run` (a top-down one takes its boxes from `detector_zoo`, by default
    the zoo's "td-detector", unless `detector` names a run; several names separated by commas, e.g.
    "td-detector-16x,td-detector-256": each at the input it was trained at, merged as chapter 4's multi-scale
    test, `detection.detect_scales`); zoo_dir: the zoo folder (`posekit.zoo.zoo_dir`). flip_test: the pose
    model's flip test; detector_flip_test: CenterNet's flip test for the boxes; decoder: a top-down model's
    heatmap decoding, "argmax" or "dark" (chapter 4's pipeline uses both flip tests and DARK);
    detection_threshold, tag_threshold: a bottom-up model's grouping thresholds (None: `posekit.grouping.group`'s,
    the reference's 0.1 and 1; chapter 5 chooses them per model on held-out scenes, `experiments.bottom_up.
    grouping_sweep`).
    """
    if (pose_run is None) == (zoo is None):
        raise ValueError("load_pipeline: give the pose model as a run folder or as a zoo name (zoo=...), not both")
    kind, cfg, model = _model_of(pose_run) if zoo is None else _zoo_model(zoo, zoo_dir)
    pose_run = pose_run if zoo is None else f"zoo model {zoo}"
    if kind == "centernet":
        raise ValueError(f"{pose_run}: a person detector's run; give it as the detector and a pose run as the model")
    if kind == "associative-embedding":
        if detector is not None:
            raise ValueError(f"{pose_run}: a bottom-up run needs no detector (got {detector})")
        if decoder != "argmax":
            raise ValueError(f"{pose_run}: a bottom-up run takes no --decoder (got {decoder})")
        grouping = {k: float(v) for k, v in (("detection_threshold", detection_threshold),
                                             ("tag_threshold", tag_threshold)) if v is not None}  # fmt: skip

        def run(images, image_ids):
            return bottom_up(images, model, input_size=cfg["input_size"], heatmap_loss=cfg["heatmap_loss"],
                             image_ids=image_ids, flip_test=flip_test, **grouping)  # fmt: skip

        return run
    for name, v in (("detection", detection_threshold), ("tag", tag_threshold)):
        if v is not None:
            raise ValueError(f"{pose_run}: a top-down ({kind}) run takes no --{name}-threshold (grouping's, bottom-up "
                             f"only; got {v})")  # fmt: skip
    if detector is None and zoo is not None:
        detector_zoo = detector_zoo or DEFAULT_ZOO_DETECTOR
    if detector is None and detector_zoo is None:
        raise ValueError(f"{pose_run}: a top-down ({kind}) run needs a person detector run (--detector-run)")
    names = [detector] if detector is not None else [n.strip() for n in detector_zoo.split(",") if n.strip()]
    scales = []
    for name in names:
        det_kind, det_cfg, det = _model_of(name) if detector is not None else _zoo_model(name, zoo_dir)
        if det_kind != "centernet":
            raise ValueError(f"{name}: a {det_kind!r} model, not a person detector (centernet)")
        scales.append((det, det_cfg["input_size"]))

    def run(images, image_ids):
        return top_down(images, model, detector=scales, image_ids=image_ids, det_flip_test=detector_flip_test,
                        input_size=tuple(cfg["input_size"]), sigma=cfg["sigma"], flip_test=flip_test,
                        decoder=decoder)  # fmt: skip

    return run


def read_images(image_dir, coco=None) -> tuple[list, list, list]:
    """(images as RGB uint8 arrays, image ids, file names) of a folder, or of the images a COCO file lists.

    Without `coco`, every .png/.jpg/.jpeg/.bmp file of the folder in name order, with ids 1, 2, ...
    """
    from PIL import Image

    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: no such image folder")
    if coco is not None:
        gt = cocoio.load_coco(coco)
        names = [im["file_name"] for im in gt["images"]]
        ids = [im["id"] for im in gt["images"]]
    else:
        names = sorted(p.name for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        ids = list(range(1, len(names) + 1))
    if not names:
        raise ValueError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    images = []
    for name in names:
        path = image_dir / name
        try:
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB")))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a readable image ({e})") from None
    return images, ids, names


def predict_folder(image_dir, pose_run=None, *, detector=None, coco=None, batch: int = 16, progress: bool = True,
                   **zoo):  # fmt: skip
    """Results (a COCO keypoint results list) of a pipeline over a folder, `batch` images at a time, with a
    progress bar; also returns the images, ids and file names (for drawing). zoo: `load_pipeline`'s other
    keywords (zoo, detector_zoo, zoo_dir, decoder, detection_threshold, tag_threshold, ...)."""
    from tqdm import tqdm

    pipe = load_pipeline(pose_run, detector, **zoo)
    images, ids, names = read_images(image_dir, coco)
    results = []
    for i in tqdm(range(0, len(images), batch), desc="predict", unit="batch", disable=not progress):
        results += pipe(images[i : i + batch], ids[i : i + batch])
    return results, images, ids, names


def draw_results(out_dir, images, ids, names, results, min_score: float = 0.1) -> int:
    """Write each image with its predicted skeletons (score ≥ `min_score`) to `out_dir` as PNG; returns the count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_image: dict = {}
    for r in results:
        if r["score"] >= min_score:
            by_image.setdefault(r["image_id"], []).append(np.reshape(r["keypoints"], (-1, 3)))
    for image, iid, name in zip(images, ids, names):
        fig, ax = plt.subplots(figsize=(image.shape[1] / 64, image.shape[0] / 64), dpi=64)
        viz.show_image(ax, image)
        for kp in by_image.get(iid, []):
            viz.draw_pose(ax, np.where(kp[:, 2:] > 0, kp, 0), lw=1.2, ms=2)
        fig.subplots_adjust(0, 0, 1, 1)
        fig.savefig(out_dir / (Path(name).stem + ".png"))
        plt.close(fig)
    return len(images)
