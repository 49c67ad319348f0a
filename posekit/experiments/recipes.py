"""Every trained model of the book by one name, for `posekit train`: the chapters' recipes outside a notebook.

    run, history = train_recipe("heatmap", steps=2000, train_size=8192)          # chapter 3's SimpleBaseline
    run, history = train_recipe("bottomup-higher", steps=3000, train_size=3072)  # chapter 5's HigherHRNet

A name picks the recipe (data, model, loss, schedule) a chapter trains with; the keyword arguments override its
settings. The run is cached by its config like a chapter's (`posekit.checkpoint.run_dir`): run again, it is
loaded, or resumed if it was interrupted; `posekit predict --run` reads the multi-person ones. (A chapter's own
runs also record the validation set they were scored on during training, so a chapter trains its own.)
"""

from __future__ import annotations

from pathlib import Path

from posekit.checkpoint import find_runs
from posekit.data import shards_config
from posekit.experiments import bottom_up, single_person, top_down
from posekit.experiments.single_person import MODELS

MULTI_PERSON = {
    "detector": "chapter 4: the CenterNet person detector on whole scenes",
    "topdown-simplebaseline": "chapter 4: SimpleBaseline on person crops cut from the scenes",
    "topdown-hrnet": "chapter 4: HRNet on person crops",
    "bottomup-ae": "chapter 5: Associative Embedding (heatmaps and tags at 1/4)",
    "bottomup-higher": "chapter 5: HigherHRNet (Associative Embedding with a 1/2-resolution head)",
}
RECIPES = {**{name: "chapters 2-3: a single-person model on crops" for name in MODELS}, **MULTI_PERSON}


def describe() -> str:
    """The recipes in one paragraph (for `posekit train --help`)."""
    multi = "; ".join(f"{k} ({v})" for k, v in MULTI_PERSON.items())
    return f"chapters 2-3, single-person: {', '.join(MODELS)}; {multi}"


def given_only(settings: dict) -> dict:
    """The settings that were given (not None)."""
    return {k: v for k, v in settings.items() if v is not None}


def train_recipe(name: str, *, steps: int, train_size: int, seed: int = 0, variant: str | None = None,
                 input_size=None, batch_size: int | None = None, lr: float | None = None,
                 progress: bool = True, data_shards: int = 1):  # fmt: skip
    """Train (or load, or resume) the recipe `name` (one of `RECIPES`); returns (run folder, history).

    train_size: training crops (single-person recipes) or training scenes (multi-person ones). input_size: an int
    (a square input) or (H, W) for the top-down crops; None keeps the recipe's. batch_size, lr, variant: None keeps
    the recipe's. With several processes (`parallel.initialize` first), every process calls this with the same
    arguments; batch_size is the global batch. data_shards > 1: the training set is read in that many shards
    (`posekit.data.Shards`), each process reading only its own; the batches then depend on the number of shards,
    so one process with data_shards = N reproduces N processes.
    """
    if name not in RECIPES:
        raise ValueError(f"recipe: expected one of {', '.join(RECIPES)}; got {name!r}")
    given = {"variant": variant, "batch_size": batch_size, "lr": lr}
    kwargs = given_only(given)
    common = dict(steps=steps, seed=seed, progress=progress, data_shards=data_shards, **kwargs)
    if name in MODELS:
        if input_size is not None:
            kwargs["size"] = input_size
        _, history = single_person.train_named(name, train_size=train_size, **{**common, **kwargs})
        model_class, model_kwargs, coord_loss = MODELS[name]
        kind, key = f"single-{model_class.__name__.lower()}", {"model": model_class.__name__.lower(), **model_kwargs}
        if coord_loss != "l1":  # (the config names the loss only when it is not L1)
            key["coord_loss"] = coord_loss
    elif name == "detector":
        if input_size is not None:
            common["input_size"] = int(input_size)
        _, history = top_down.train_detector(train_scenes=train_size, **common)
        kind, key = "detector", {}
    elif name.startswith("topdown-"):
        if input_size is not None:
            common["input_size"] = tuple(input_size) if not isinstance(input_size, int) else (input_size, input_size)
        crop = name.removeprefix("topdown-")
        _, history = top_down.train_crop_model(crop, train_scenes=train_size, **common)
        kind, key = "topdown-pose", {"model": f"{crop}-crops"}
    else:
        if input_size is not None:
            common["input_size"] = int(input_size)
        higher = name == "bottomup-higher"
        _, history = bottom_up.train_bottom_up(train_scenes=train_size, higher=higher, **common)
        kind, key = "bottomup", {"higher": higher}
    size_key = "train_size" if name in MODELS else "train_scenes"
    if input_size is not None:  # as the recipe stored it in the run's config
        key["size" if name in MODELS else "input_size"] = common.get("input_size", kwargs.get("size"))
    # the settings given pick the run among runs of the same recipe with other settings (newest first: a run
    # trained just now comes before an older one that also matches, e.g. DeepPose's with a cascade)
    key["data_shards"] = shards_config(data_shards).get("data_shards")  # None: an unsharded run's config has none
    runs = find_runs(kind, steps=steps, seed=seed, **{size_key: train_size}, **key, **given_only(given))
    return (runs[0] if runs else Path()), history
