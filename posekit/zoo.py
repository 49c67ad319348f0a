"""The model zoo: models trained long with the book's own recipes, stored in the repository, loaded by the chapters.

    posekit zoo list                      # name, chapter, metric, steps, size
    posekit zoo verify [NAME]             # hash, config, and a re-evaluation against the manifest
    posekit zoo train NAME                # retrain from its recipe (resumable; the curve is written as it goes)

    model = zoo.load("sp-heatmap")        # the trained model, ready for `posekit.inference.predict_keypoints`

A chapter trains short live runs where they teach (the loop, the loss curve, an equal-budget comparison) and
loads the zoo for its headline tables and figures. Every zoo entry is a recipe (`posekit.experiments.recipes`)
with fixed settings; `train` runs it through the same code as the chapters (the run is cached by config, so an
interrupted training resumes), and `export` writes the model's parameters and BatchNorm statistics to
`<zoo>/<name>.msgpack` with a manifest entry in `<zoo>/manifest.json`.

Why `flax.serialization` msgpack and not orbax: a zoo file is a few hundred kilobytes of float32 arrays read on
one host. One msgpack file per model, whose bytes are hashed in the manifest, is simple to verify, copy and
load (milliseconds); orbax writes a folder of files per checkpoint for sharded, asynchronous multi-host saves,
which the zoo does not need. The run cache's checkpoints (`posekit.checkpoint`) use the same format.

The zoo folder: $POSEKIT_ZOO, else the repository's `zoo/` (`zoo_dir`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The single-person zoo (chapters 2-3). The chapter's standard profile trains 400 steps of batch 32 on 8,192
# crops; the zoo trains the same recipes (`posekit.experiments.single_person`) 16× as long on 32,768 crops,
# each model with the learning rate that scored best on 1,024 crops held out of its training set after 4× the
# standard steps (`lr_sweep`, the grid below, extended once past an end). Three seeds each (data, flips and
# initialization follow the seed); the scaling curve's shorter budgets (1×, 4×) with seed 0, each its own run
# with its own schedule, on the same training crops.
SP_FAMILIES = ("heatmap", "hrnet", "deeppose", "integral", "simcc")
SP_STANDARD_STEPS = 400
SP_BUDGET = 16  # × the standard steps: the zoo models' training length
SP_SCALING = (1, 4, 16)
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
        runs = [(SP_BUDGET, s) for s in SP_SEEDS] + [(b, 0) for b in SP_SCALING if b != SP_BUDGET]
        for budget, seed in runs:
            settings = dict(steps=SP_STANDARD_STEPS * budget, train_size=SP_TRAIN_SIZE, seed=seed, size=SP_SIZE)
            sweep = dict(lrs=list(SP_LR_GRID), steps=SP_STANDARD_STEPS * SP_SWEEP_BUDGET, holdout=SP_HOLDOUT)
            out.append(Entry(sp_name(family, budget, seed), family, SP_CHAPTER[family], "pck01", settings, sweep))
    return out


ENTRIES = {e.name: e for e in _single_person_entries()}


def sp_validation():
    """The validation crops every single-person zoo model is scored on (chapters 2-3's)."""
    from posekit.data import synthetic_single

    return synthetic_single(SP_VAL[0], SP_VAL[1], SP_SIZE)


def chosen_lr(entry: Entry, progress: bool = False) -> tuple[float, dict]:
    """(learning rate, {lr: held-out score}) of an entry: its sweep (cached runs) or its fixed `lr`."""
    if entry.lr_sweep is None:
        return float(entry.settings["lr"]), {}
    from posekit.experiments.single_person import lr_sweep

    s = entry.settings
    held = lr_sweep(entry.recipe, entry.lr_sweep["lrs"], train_size=s["train_size"], holdout=entry.lr_sweep["holdout"],
                    seed=0, size=s["size"], steps=entry.lr_sweep["steps"])  # fmt: skip
    return max(held, key=held.get), held


def train_entry(name: str, progress: bool = True):
    """Train (or resume, or load when finished) the zoo entry `name` with its recipe; returns (model, history, lr,
    held-out sweep). The run lives in the run cache (`posekit.checkpoint.run_dir`), so an interrupted training
    resumes where its last checkpoint left it."""
    from posekit.experiments.single_person import train_named

    entry = ENTRIES[name]
    lr, held = chosen_lr(entry, progress)
    model, history = train_named(entry.recipe, lr=lr, val=sp_validation(), progress=progress, **entry.settings)
    return model, history, lr, held
