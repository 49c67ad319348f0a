"""The model zoo: models trained long with the book's own recipes, stored in the repository, loaded by the chapters.

    posekit zoo list                      # name, chapter, metric, steps, size
    posekit zoo verify [NAME]             # hash, config, and a re-evaluation against the manifest
    posekit zoo train NAME                # retrain from its recipe (resumable; the curve is written as it goes)

    model = zoo.load("sp-heatmap")        # the trained model, ready for `posekit.inference.predict_keypoints`
    model, curve = zoo.get("sp-heatmap", use_zoo=False)   # the same recipe trained here instead (or its cached run)

A chapter trains short live runs where they teach (the loop, the loss curve, an equal-budget comparison) and
loads the zoo for its headline tables and figures. Every zoo entry is a recipe (`posekit.experiments.recipes`)
with fixed settings; `train` runs it through the same code as the chapters (the run is cached by config, so an
interrupted training resumes), and `export` writes the model's parameters and BatchNorm statistics to
`<zoo>/<name>.msgpack` with a manifest entry in `<zoo>/manifest.json`.

Why `flax.serialization` msgpack and not orbax: a zoo file is a few hundred kilobytes of float32 arrays read on
one host. One msgpack file per model, whose bytes are hashed in the manifest, is simple to verify, copy and
load (milliseconds); orbax writes a folder of files per checkpoint for sharded, asynchronous multi-host saves,
which the zoo does not need. The run cache's checkpoints (`posekit.checkpoint`) use the same format.

Three families: the single-person models of chapters 2-3 (`sp-*`, scored by PCK on single-person crops), the
top-down models of chapter 4 (`td-*`: the detector, scored by box AP, and the crop models, scored by keypoint AP
with the true boxes, both on chapter 4's validation scenes) and the bottom-up models of chapter 5 (`bu-*`, scored
by the whole pipeline's keypoint AP on the same scenes). A manifest entry records the face labelling rule
of the data it was trained on (`face_labels`, `posekit.synth.FACE_LABELS`): the single-person models were
trained before the book adopted COCO's rule ("all"): their metrics and their config's `val` (the fingerprint
of the validation crops, which only their curve used) are today's ("seen"; the PCK moved by at most 0.005), their
curve is as trained.

The zoo folder: $POSEKIT_ZOO, else the repository's `zoo/` (`zoo_dir`). Reading the folder (the manifest,
`load`) is `posekit.zoo_files`, which knows no recipe, so that a recipe can start from a zoo model (`init`);
this module adds the entries, training, export and verification, and re-exports the reading functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jax
from flax import nnx

from posekit import metrics, scenes
from posekit.analysis.top_down import detection_metrics
from posekit.book import repo_root
from posekit.bottom_up import bottom_up
from posekit.checkpoint import load_weights_bytes, weights_bytes
from posekit.data import synthetic_single
from posekit.detection import detect
from posekit.experiments import bottom_up as bu
from posekit.experiments import top_down as td
from posekit.experiments.single_person import MODELS, lr_sweep, named_config, pck_bbox, train_named
from posekit.inference import predict_keypoints
from posekit.io import atomic_write_bytes, atomic_write_json
from posekit.synth import FACE_LABELS
from posekit.top_down import gt_boxes, top_down
from posekit.zoo_files import FORMAT, MANIFEST, ZooError, info, load, read_manifest, zoo_dir

# The single-person zoo (chapters 2-3). The chapter's standard profile trains 400 steps of batch 32 on 8,192
# crops; the zoo trains the same recipes (`posekit.experiments.single_person`) 16× as long on 32,768 crops,
# each model with the learning rate that scored best on 1,024 crops held out of its training set after 4× the
# standard steps (`lr_sweep`, the grid below, extended once past an end). Three seeds each (data, flips and
# initialization follow the seed); the scaling curve's other budgets (1×, 4×, 64×) with seed 0, each its own run
# with its own schedule, on the same training crops and with the same learning rate.
SP_FAMILIES = ("heatmap", "hrnet", "deeppose", "integral", "simcc")
SP_STANDARD_STEPS = 400
SP_BUDGET = 16  # × the standard steps: the zoo models' training length
# the scaling curve's budgets per family (64×: where the curve had not flattened at 16× and the time allowed)
SP_SCALING = {"heatmap": (1, 4, 16, 64), "hrnet": (1, 4, 16), "deeppose": (1, 4, 16, 64), "integral": (1, 4, 16),
              "simcc": (1, 4, 16)}  # fmt: skip
SP_SEEDS = (0, 1, 2)
SP_TRAIN_SIZE = 32768
SP_SIZE = 64
SP_VAL = (512, 1000)  # the validation crops of chapters 2-3: synthetic_single(512, seed 1000, 64)
SP_LR_GRID = (2e-3, 6e-3, 2e-2)
SP_SWEEP_BUDGET = 4
SP_HOLDOUT = 1024
SP_CHAPTER = {"heatmap": "03_heatmap", "hrnet": "03_heatmap", "deeppose": "02_regression",
              "integral": "03_heatmap", "simcc": "03_heatmap"}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One zoo model: a recipe name (`posekit.experiments.recipes.RECIPES`), its chapter and fixed settings.

    settings: what the recipe trains with (steps, train_size, seed, ...); `lr_sweep`: None when `settings`
    gives the learning rate, else {"lrs", "steps", "holdout"} for the held-out sweep that picks it.
    """

    name: str
    recipe: str
    chapter: str
    metric: str
    settings: dict = field(default_factory=dict)
    lr_sweep: dict | None = None
    validations: int = 4  # validation points along training (the curve); single-person runs: their recipe's

    @property
    def kind(self) -> str:
        """ "single-person", "detector", "crops" or "bottom-up": which recipe module trains it and how it is scored."""
        if self.recipe in MODELS:
            return "single-person"
        if self.recipe == "detector":
            return "detector"
        return "bottom-up" if self.recipe.startswith("bottomup") else "crops"


def sp_name(family: str, budget: int = SP_BUDGET, seed: int = 0) -> str:
    """The zoo name of a single-person model: "sp-heatmap", "sp-heatmap-seed1", "sp-heatmap-4x"."""
    name = f"sp-{family}"
    if budget != SP_BUDGET:
        name += f"-{budget}x"
    if seed:
        name += f"-seed{seed}"
    return name


def _single_person_entries() -> list[Entry]:
    out = []
    for family in SP_FAMILIES:
        runs = [(SP_BUDGET, s) for s in SP_SEEDS] + [(b, 0) for b in SP_SCALING[family] if b != SP_BUDGET]
        for budget, seed in runs:
            settings = dict(steps=SP_STANDARD_STEPS * budget, train_size=SP_TRAIN_SIZE, seed=seed, size=SP_SIZE)
            sweep = dict(lrs=list(SP_LR_GRID), steps=SP_STANDARD_STEPS * SP_SWEEP_BUDGET, holdout=SP_HOLDOUT)
            out.append(Entry(sp_name(family, budget, seed), family, SP_CHAPTER[family], "pck01", settings, sweep))
    return out


# The top-down zoo (chapter 4). The chapter's standard profile trains the detector and the crop models 1,200
# steps each on 2,048 training scenes; the zoo trains the same recipes (`posekit.experiments.top_down`) on 8,192
# scenes (they are free), the detector (batch 16) and SimpleBaseline (batch 32) 8× as long, HRNet as long in
# training FLOPs. They start from the single-person zoo's models (`init`): each crop model from the model of the
# same structure (sp-heatmap, sp-hrnet), the detector its backbone from sp-heatmap's (the same "tiny" backbone),
# as the papers start from ImageNet weights. Their learning rate is the best on 256 held-out training scenes
# after 600 steps (grid extended once past an end). Every model is scored along training on chapter 4's 400
# standard validation scenes, once per standard-profile length (the budget curve).
TD_STANDARD_STEPS = 1200
TD_BUDGET = 8  # × the standard steps: the zoo's top-down models' training length
TD_TRAIN_SCENES = 8192
TD_LR_GRID = (2e-3, 6e-3, 1.5e-2)
TD_SWEEP = dict(lrs=list(TD_LR_GRID), steps=600, holdout=256, train_scenes=2048)
TD_CROP = (128, 96)
TD_CHAPTER = "04_top_down"
# HRNet-lite costs 1/0.7827 = 1.278× SimpleBaseline-tiny's FLOPs per 128 × 96 crop (`models.layers.flops`; a test
# recomputes it), so at equal training FLOPs it trains 0.7827 × SimpleBaseline's steps.
TD_HRNET_FLOP_SHARE = 0.7826661782041321
# The detector at the scenes' own 256 pixels: td-detector's weights trained on at 256 for 2× the standard steps
# (each step costs 4.2× a 128-pixel one: `models.layers.flops`), its learning rate swept from td-detector on
# held-out scenes with a shorter sweep (300 steps: a 600-step sweep at 256 would cost as much as the run).
TD_DET256_BUDGET = 2
# Its control at about equal compute: td-detector trained on at 128 pixels for 4× those steps (td-detector-16x:
# both have then spent about 16× the standard detector run's FLOPs), the learning rate swept the same way.
TD_DET256_SWEEP = dict(lrs=[5e-3, 1.5e-2], steps=300, holdout=256, train_scenes=2048)
# HRNet trained on: td-hrnet's weights trained for as many steps again with a fresh warmup-cosine schedule (the crop
# model's budget curve from 8× to 16× the standard run's FLOPs, a two-stage continuation like td-detector-16x's), its
# learning rate swept from td-hrnet the same short way.
TD_HRNET16_SWEEP = dict(lrs=[5e-3, 1.5e-2], steps=300, holdout=256, train_scenes=2048)


def _top_down_entries() -> list[Entry]:
    det = dict(variant="tiny", input_size=128, steps=TD_BUDGET * TD_STANDARD_STEPS, train_scenes=TD_TRAIN_SCENES,
               seed=0, batch_size=16, init="sp-heatmap")  # fmt: skip
    sb_steps = TD_BUDGET * TD_STANDARD_STEPS
    crops = dict(input_size=TD_CROP, sigma=1.0, train_scenes=TD_TRAIN_SCENES, seed=0)
    return [
        Entry("td-detector", "detector", TD_CHAPTER, "box_ap", det, dict(TD_SWEEP), validations=TD_BUDGET),
        Entry("td-simplebaseline", "topdown-simplebaseline", TD_CHAPTER, "ap",
              dict(crops, steps=sb_steps, init="sp-heatmap"), dict(TD_SWEEP), validations=TD_BUDGET),
        Entry("td-detector-256", "detector", TD_CHAPTER, "box_ap",
              dict(det, input_size=256, steps=TD_DET256_BUDGET * TD_STANDARD_STEPS, init="td-detector"),
              dict(TD_DET256_SWEEP), validations=TD_DET256_BUDGET * 2),
        Entry("td-detector-16x", "detector", TD_CHAPTER, "box_ap",
              dict(det, steps=TD_DET256_BUDGET * 4 * TD_STANDARD_STEPS, init="td-detector"),
              dict(TD_DET256_SWEEP), validations=TD_BUDGET),
        Entry("td-hrnet", "topdown-hrnet", TD_CHAPTER, "ap",
              dict(crops, steps=round(sb_steps * TD_HRNET_FLOP_SHARE), init="sp-hrnet"), dict(TD_SWEEP),
              validations=TD_BUDGET),
        Entry("td-hrnet-16x", "topdown-hrnet", TD_CHAPTER, "ap",
              dict(crops, steps=round(sb_steps * TD_HRNET_FLOP_SHARE), init="td-hrnet"), dict(TD_HRNET16_SWEEP),
              validations=TD_BUDGET),
    ]  # fmt: skip


# The bottom-up zoo (chapter 5). The chapter's standard profile trains HigherHRNet-lite and the 1/4-only
# Associative Embedding model 640 steps of batch 16 on 2,048 scenes at 128 pixels; the zoo trains the same recipe
# (`posekit.experiments.bottom_up`) on 8,192 scenes, `BU_STEPS` steps, every layer of its HRNet but the last 1×1
# conv started from td-hrnet's (`init_part` "body"), as the papers start from ImageNet weights. Measured for
# HigherHRNet (300 steps at lr 0.01 on 2,048 scenes, 128 held-out training scenes): started from td-hrnet, the
# held-out focal heatmap loss is 3.39 against 4.38 from scratch, and 81% of the true joints have a candidate above
# 0.1 within 6 input pixels against 45%. (The first bottom-up zoo models, before 2026-12-07, started from a part
# list that left out HRNet's stage1; they learned almost no left from right.) The learning rate
# is the one with the lower held-out heatmap loss after 300 steps (`bottom_up.lr_sweep`; the AP of such short runs
# is about 0 and ranks nothing).
BU_STANDARD_STEPS = 640
# The steps: the bottom-up pipeline's training compute, its pretraining (td-hrnet, itself from sp-hrnet) included,
# equals the top-down pipeline's (td-detector from sp-heatmap, td-hrnet from sp-hrnet), by `training_flops` (a test
# recomputes it): 7,262 steps, 11.3× the standard run. The 1/4-only model trains as many steps on the same scenes.
BU_STEPS = 7262
BU_TRAIN_SCENES = 8192
BU_SWEEP = dict(lrs=[3e-3, 1e-2], steps=300, holdout=128, train_scenes=2048, extend=2)
BU_CHAPTER = "05_bottom_up"
# The budget curve past the equal-compute model: bu-higherhrnet's weights trained on until the run has spent 16× and
# 64× the standard steps in all (two continuations, each from bu-higherhrnet, each with a fresh warmup-cosine
# schedule of its own length, like td-hrnet-16x), the learning rate swept from bu-higherhrnet the same short way
# (held-out heatmap loss after 300 steps: 1.770 / 1.778 / 1.845 at 0.003 / 0.01 / 0.0333, so 0.003; a sweep this
# short favours a low rate for a warm start, which a long run might not).
BU_LONGER_PLANNED = (16, 64)
# The continuations in the zoo (64×: 280 min of training on 2 cores, resumed across sessions from the run cache).
BU_LONGER = (16, 64)
BU_LONGER_SWEEP = dict(lrs=[1e-2, 3.33e-2], steps=300, holdout=128, train_scenes=2048, extend=1)
# The input at the scenes' own 256 pixels: bu-higherhrnet's weights trained on at 256 for as many training FLOPs as
# bu-higherhrnet-16x spent at 128 (a step at 256 costs 1/0.2437 = 4.10× one at 128: `models.layers.flops`; a test
# recomputes it), so the two continuations compare the input size at equal compute, as chapter 4 compares
# td-detector-256 with td-detector-16x. Its learning rate is the 128-pixel continuations' (0.003), not swept again:
# a 300-step sweep at 256 would cost more than the run.
BU_256_FLOP_SHARE = 0.24370862893655823
BU_256_STEPS = round((16 * BU_STANDARD_STEPS - BU_STEPS) * BU_256_FLOP_SHARE)
BU_256_LR = 3e-3


def _bottom_up_entries() -> list[Entry]:
    common = dict(variant="lite", input_size=128, sigma=4.0, heatmap_loss="focal", batch_size=16, seed=0,
                  train_scenes=BU_TRAIN_SCENES, steps=BU_STEPS, init="td-hrnet")  # fmt: skip
    longer = [Entry(f"bu-higherhrnet-{k}x", "bottomup-higher", BU_CHAPTER, "ap",
                    dict(common, higher=True, steps=k * BU_STANDARD_STEPS - BU_STEPS, init="bu-higherhrnet"),
                    dict(BU_LONGER_SWEEP), validations=max((k * BU_STANDARD_STEPS - BU_STEPS) // 2560, 4))
              for k in BU_LONGER]  # fmt: skip
    return [Entry("bu-higherhrnet", "bottomup-higher", BU_CHAPTER, "ap", dict(common, higher=True), dict(BU_SWEEP),
                  validations=BU_STEPS // BU_STANDARD_STEPS),
            Entry("bu-ae", "bottomup-ae", BU_CHAPTER, "ap", dict(common, higher=False), dict(BU_SWEEP),
                  validations=BU_STEPS // BU_STANDARD_STEPS)] + longer + [
            Entry("bu-higherhrnet-256", "bottomup-higher", BU_CHAPTER, "ap",
                  dict(common, higher=True, input_size=256, steps=BU_256_STEPS, init="bu-higherhrnet", lr=BU_256_LR),
                  None, validations=4)]  # fmt: skip


ENTRIES = {e.name: e for e in _single_person_entries() + _top_down_entries() + _bottom_up_entries()}


def get(name: str, use_zoo: bool = True, zoo=None):
    """(model, validation curve {"step", metric: [...]}) of the zoo model `name`: loaded from the zoo, or, with
    `use_zoo=False`, trained with its recipe (`train_entry`; loaded from the run cache when it has been trained
    before). How the chapters take their long-trained models (their `ZOO` parameter)."""
    if use_zoo:
        return load(name, zoo), info(name, zoo)["curve"]
    model, history, _, _ = train_entry(name, progress=False)
    return model, _curve(entry_of(name), history)


def _curve(entry: Entry, history: dict) -> dict:
    """The validation curve of a training history, as the manifest holds it: {"step": [...], series: [...]}
    (PCK@0.1 of a single-person model, box AP and recall of the detector, AP without flip of a crop model, the
    pipeline's AP of a bottom-up model)."""
    series = {"single-person": {"pck01": "val_pck"}, "detector": {"box_ap": "val_box_ap", "recall50": "val_recall50"},
              "crops": {"ap_noflip": "val_ap"}, "bottom-up": {"ap": "val_ap"}}[entry.kind]  # fmt: skip
    out = {"step": [int(v) for v in history["val_step"]]}
    return out | {k: [float(v) for v in history[h]] for k, h in series.items()}


def sp_validation():
    """The validation crops every single-person zoo model is scored on (chapters 2-3's)."""
    return synthetic_single(SP_VAL[0], SP_VAL[1], SP_SIZE)


def td_validation():
    """The validation scenes every top-down zoo model is scored on (chapter 4's standard 400)."""
    return scenes.validation_scenes("standard")


def validation(name: str):
    """The validation set the zoo model `name` is scored on (the top-down and bottom-up models: the same scenes)."""
    return sp_validation() if entry_of(name).kind == "single-person" else td_validation()


def evaluate(name: str, model, val=None) -> dict:
    """The metrics a zoo model is recorded with (`validation(name)` unless `val` is given). Single-person:
    PCK@0.1 and PCK@0.05 (box normalizer) on the 512 validation crops of chapters 2-3, no flip test. Detector:
    box AP, AP50, AP75 and the recall at IoU 0.5 on chapter 4's validation scenes (top 20 boxes). Crop model:
    keypoint AP with the true boxes, with and without the flip test, and AP_M, AP_L. Bottom-up model: keypoint AP
    of the whole pipeline (`posekit.bottom_up.bottom_up`, flip test: the curve's measure), AP50, AP_M, AP_L, AR."""
    entry = entry_of(name)
    val = validation(name) if val is None else val
    if entry.kind == "single-person":
        pred = predict_keypoints(model, val["images"])
        return {"pck01": pck_bbox(pred, val, 0.1), "pck005": pck_bbox(pred, val, 0.05)}
    cfg = entry.settings
    if entry.kind == "detector":
        dm = detection_metrics(detect(model, val["images"], input_size=cfg["input_size"]), val)
        return {"box_ap": dm["box_AP"], "box_ap50": dm["box_AP50"], "box_ap75": dm["box_AP75"],
                "recall50": dm["recall50"]}  # fmt: skip
    if entry.kind == "bottom-up":
        res = bottom_up(val["images"], model, input_size=cfg["input_size"], image_ids=val["image_ids"],
                        heatmap_loss=cfg["heatmap_loss"])  # fmt: skip
        s = metrics.coco_eval(val["coco"], res)
        return {"ap": s["AP"], "ap50": s["AP50"], "apm": s["APm"], "apl": s["APl"], "ar": s["AR"]}
    out = {}
    for flip in (True, False):
        res = top_down(val["images"], model, boxes=gt_boxes(val), image_ids=val["image_ids"],
                       input_size=tuple(cfg["input_size"]), sigma=cfg["sigma"], flip_test=flip)  # fmt: skip
        s = metrics.coco_eval(val["coco"], res)
        out |= {"ap": s["AP"], "apm": s["APm"], "apl": s["APl"]} if flip else {"ap_noflip": s["AP"]}
    return out


def _input_shape(cfg: dict, kind: str) -> tuple:
    """One training input's shape (1, H, W, 3) of a run config: a square of `size` (single-person crops) or
    `input_size` (whole scenes), or the (H, W) crop of a top-down pose model."""
    if kind == "single-person":
        return (1, cfg["size"], cfg["size"], 3)
    size = cfg["input_size"]
    h, w = (size, size) if isinstance(size, int) else size
    return (1, h, w, 3)


def training_flops(name: str, zoo=None) -> dict:
    """{model: training FLOPs} of the zoo model `name` and of every zoo model its weights started from (`init`,
    followed back to a random start), in that order. Training FLOPs = 3 × the forward FLOPs of one training input
    (`models.flops`; the backward pass costs about twice the forward) × batch size × steps. How the head-to-head
    chapter states what each pipeline spent."""
    from posekit.models import build_model, flops  # (the model zoo's reading side does not need them)

    out = {}
    while name:
        e = info(name, zoo)
        cfg = e["config"]
        model = build_model(cfg, 0)
        out[name] = 3 * flops(model, _input_shape(cfg, entry_of(name).kind)) * cfg["batch_size"] * e["steps"]
        name = cfg.get("init")
    return out


def chosen_lr(entry: Entry) -> tuple[float, dict]:
    """(learning rate, {lr: held-out score}) of an entry: its sweep (cached runs) or its fixed `lr`. The score is
    higher-is-better (PCK, AP) except for the bottom-up models' held-out heatmap loss."""
    if entry.lr_sweep is None:
        return float(entry.settings["lr"]), {}
    s, sw = entry.settings, entry.lr_sweep
    if entry.kind == "single-person":
        held = lr_sweep(entry.recipe, sw["lrs"], train_size=s["train_size"], holdout=sw["holdout"], seed=0,
                        size=s["size"], steps=sw["steps"])  # fmt: skip
    elif entry.kind == "detector":
        held = td.lr_sweep("detector", sw["lrs"], steps=sw["steps"], train_scenes=sw["train_scenes"],
                           holdout=sw["holdout"], init=s.get("init"), input_size=s["input_size"],
                           batch_size=s["batch_size"], variant=s["variant"])  # fmt: skip
    elif entry.kind == "bottom-up":  # ranked by the held-out heatmap loss (lower is better)
        fixed = {k: v for k, v in _settings(entry).items() if k not in ("steps", "train_scenes", "seed")}
        swept = bu.lr_sweep(sw["lrs"], steps=sw["steps"], train_scenes=sw["train_scenes"], holdout=sw["holdout"],
                            extend=sw.get("extend", 0), **fixed)  # fmt: skip
        held = {lr: loss for lr, (_, loss) in swept.items()}
        return min(held, key=held.get), held
    else:
        held = td.lr_sweep(entry.recipe.removeprefix("topdown-"), sw["lrs"], steps=sw["steps"],
                           train_scenes=sw["train_scenes"], holdout=sw["holdout"], init=s.get("init"),
                           input_size=tuple(s["input_size"]), sigma=s["sigma"])  # fmt: skip
    return max(held, key=held.get), held


def entry_of(name: str) -> Entry:
    if name not in ENTRIES:
        raise ZooError(f"no recipe named {name!r}; the zoo's recipes: {', '.join(ENTRIES)}")
    return ENTRIES[name]


def _settings(entry: Entry) -> dict:
    """An entry's settings without its learning rate (given separately, fixed or swept)."""
    return {k: v for k, v in entry.settings.items() if k != "lr"}


def recipe_config(name: str, lr: float) -> dict:
    """The run config the zoo entry `name` trains with at learning rate `lr` (what its manifest entry holds)."""
    entry = entry_of(name)
    if entry.kind == "single-person":
        return named_config(entry.recipe, lr=lr, val=sp_validation(), **_settings(entry))
    if entry.kind == "detector":
        return td.detector_config(lr=lr, val=td_validation(), **_settings(entry))
    if entry.kind == "bottom-up":
        return bu.bottom_up_config(lr=lr, val=td_validation(), **_settings(entry))
    return td.crop_config(entry.recipe.removeprefix("topdown-"), lr=lr, val=td_validation(), **_settings(entry))


def train_entry(name: str, progress: bool = True):
    """Train (or resume, or load when finished) the zoo entry `name` with its recipe; returns (model, history, lr,
    held-out sweep). The run lives in the run cache (`posekit.checkpoint.run_dir`): an interrupted training
    resumes from its last checkpoint, and its validation curve is in the run folder's `curve.json` as it goes."""
    entry = entry_of(name)
    if progress and entry.lr_sweep:
        print(f"{name}: the learning rate from {len(entry.lr_sweep['lrs'])}+ runs of {entry.lr_sweep['steps']:,} steps "
              f"on held-out data (run once, then cached)", flush=True)  # fmt: skip
    lr, held = chosen_lr(entry)
    if progress and held:
        print(f"{name}: learning rate {lr:g} (held-out " + ", ".join(f"{k:g}: {v:.3f}" for k, v in held.items())
              + ")", flush=True)  # fmt: skip
    if entry.kind == "single-person":
        model, history = train_named(entry.recipe, lr=lr, val=sp_validation(), progress=progress, **_settings(entry))
    elif entry.kind == "detector":
        model, history = td.train_detector(lr=lr, val=td_validation(), validations=entry.validations,
                                           progress=progress, **_settings(entry))  # fmt: skip
    elif entry.kind == "bottom-up":
        model, history = bu.train_bottom_up(lr=lr, val=td_validation(), validations=entry.validations,
                                            progress=progress, **_settings(entry))  # fmt: skip
    else:
        model, history = td.train_crop_model(entry.recipe.removeprefix("topdown-"), lr=lr, val=td_validation(),
                                             validations=entry.validations, progress=progress,
                                             **_settings(entry))  # fmt: skip
    return model, history, lr, held


def machine() -> str:
    """This machine in words: CPU model, cores, and the JAX backend."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.default_backend()}"


def git_commit() -> str | None:
    """The source checkout's commit (with "-dirty" when posekit has uncommitted changes), or None."""
    root = repo_root()
    if root is None:
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "posekit"], cwd=root, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def export(name: str, zoo=None, *, commit: str | None = None, progress: bool = False) -> dict:
    """Train (or load the finished run of) the entry `name`, write its weights to `<zoo>/<name>.msgpack` and its
    manifest entry; returns the entry. `commit`: the code commit it was trained at (default: the checkout's)."""
    entry = entry_of(name)
    model, history, lr, held = train_entry(name, progress)
    folder = zoo_dir(zoo)
    folder.mkdir(parents=True, exist_ok=True)
    data = weights_bytes(model)
    atomic_write_bytes(folder / f"{name}.msgpack", data)
    cfg = recipe_config(name, lr)
    steps, batch = cfg["steps"], cfg["batch_size"]
    record = {
        "file": f"{name}.msgpack", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "recipe": entry.recipe, "chapter": entry.chapter, "metric": entry.metric, "config": cfg,
        "steps": steps, "images_seen": steps * batch, "lr": lr,
        "lr_sweep": {**(entry.lr_sweep or {}), "held_out": {f"{k:g}": v for k, v in held.items()}},
        "train_seconds": round(float(history["time"][-1]), 1), "machine": machine(),
        "commit": commit or git_commit(), "face_labels": FACE_LABELS[0],
        "curve": _curve(entry, history),
        "metrics": evaluate(name, load_weights(model, data)),
    }  # fmt: skip
    manifest = read_manifest(zoo)
    manifest["models"][name] = record
    manifest["models"] = dict(sorted(manifest["models"].items()))
    manifest["format"] = FORMAT
    atomic_write_json(folder / MANIFEST, manifest, indent=1)
    return record


def load_weights(model, data: bytes):
    """A fresh copy of `model`'s structure holding `data` (what loading the zoo file gives)."""
    return load_weights_bytes(nnx.clone(model), data)


def verify(name: str, zoo=None, val=None) -> dict:
    """Check one zoo model: its file's sha256, that its manifest config is what its recipe trains today, and a
    re-evaluation equal to the manifest's metrics (exactly: evaluation on a CPU is deterministic). Returns the
    re-evaluated metrics; raises ZooError naming what does not match."""
    entry = info(name, zoo)
    model = load(name, zoo)
    want, have = json.loads(json.dumps(recipe_config(name, entry["lr"]))), entry["config"]
    if want != have:
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise ZooError(f"{name}: the manifest's config differs from its recipe's in {', '.join(diff)}")
    got = evaluate(name, model, val)
    for k, v in entry["metrics"].items():
        if got.get(k) != v:
            raise ZooError(f"{name}: re-evaluated {k} = {got.get(k)!r}, the manifest says {v!r}")
    return got


def table_rows(zoo=None) -> list[list[str]]:
    """`posekit zoo list`: name, chapter, metric and its value, steps, file size."""
    rows = []
    for name, e in read_manifest(zoo)["models"].items():
        value = e["metrics"].get(e["metric"], float("nan"))
        rows.append([name, e["chapter"], f"{e['metric']} {value:.3f}", f"{e['steps']:,}", f"{e['bytes'] / 1e6:.2f} MB"])
    return rows
