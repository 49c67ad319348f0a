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

The zoo folder: $POSEKIT_ZOO, else the repository's `zoo/` (`zoo_dir`).
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

from posekit.book import repo_root
from posekit.checkpoint import load_weights_bytes, weights_bytes
from posekit.data import synthetic_single
from posekit.experiments.single_person import lr_sweep, named_config, pck_bbox, train_named
from posekit.inference import predict_keypoints
from posekit.io import atomic_write_bytes, atomic_write_json
from posekit.models import build_model

MANIFEST = "manifest.json"
ZOO_ENV = "POSEKIT_ZOO"
FORMAT = 1  # of the manifest and the files; raised when what a file holds changes

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


ENTRIES = {e.name: e for e in _single_person_entries()}


class ZooError(ValueError):
    """A zoo file or manifest entry that is missing, damaged or does not match its recipe: one clear line."""


def zoo_dir(path=None) -> Path:
    """The zoo folder: `path`, else $POSEKIT_ZOO, else the repository's `zoo/`."""
    if path is not None:
        return Path(path)
    if os.environ.get(ZOO_ENV):
        return Path(os.environ[ZOO_ENV])
    root = repo_root()
    if root is None:
        raise ZooError(f"no zoo folder (not a source checkout); set {ZOO_ENV} or pass --zoo DIR")
    return root / "zoo"


def read_manifest(zoo=None) -> dict:
    """The zoo's manifest {"format", "models": {name: entry}} (an empty one when the folder has none yet)."""
    path = zoo_dir(zoo) / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "models": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ZooError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ZooError(f"{path}: expected {{'format', 'models': {{...}}}}, found {type(data).__name__}")
    return data


def info(name: str, zoo=None) -> dict:
    """The manifest entry of a zoo model (config, steps, curve, metrics, ...); a clear error when it has none."""
    models = read_manifest(zoo)["models"]
    if name not in models:
        known = ", ".join(sorted(models)) or "none yet"
        raise ZooError(f"{name!r} is not in {zoo_dir(zoo) / MANIFEST} (models there: {known})")
    return models[name]


def load(name: str, zoo=None):
    """The trained model `name` of the zoo: its structure rebuilt from the manifest's config
    (`posekit.models.build_model`), its weights read from `<zoo>/<name>.msgpack` after checking the file's sha256."""
    entry = info(name, zoo)
    path = zoo_dir(zoo) / entry["file"]
    if not path.exists():
        raise ZooError(f"{name}: {path} is missing (retrain it: posekit zoo train {name})")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ZooError(f"{name}: {path} is damaged or replaced: sha256 {digest[:12]}…, "
                       f"the manifest expects {entry['sha256'][:12]}…")  # fmt: skip
    try:
        return load_weights_bytes(build_model(entry["config"]), data)
    except ValueError as e:
        raise ZooError(f"{name}: {path} does not fit the model of its config ({e})") from None


def get(name: str, use_zoo: bool = True, zoo=None):
    """(model, validation curve {"step", metric: [...]}) of the zoo model `name`: loaded from the zoo, or, with
    `use_zoo=False`, trained with its recipe (`train_entry`; loaded from the run cache when it has been trained
    before). How the chapters take their long-trained models (their `ZOO` parameter)."""
    if use_zoo:
        return load(name, zoo), info(name, zoo)["curve"]
    model, history, _, _ = train_entry(name, progress=False)
    return model, _curve(entry_of(name), history)


def _curve(entry: Entry, history: dict) -> dict:
    """The validation curve of a training history, as the manifest holds it: {"step": [...], metric: [...]}."""
    return {"step": [int(v) for v in history["val_step"]], entry.metric: [float(v) for v in history["val_pck"]]}


def sp_validation():
    """The validation crops every single-person zoo model is scored on (chapters 2-3's)."""
    return synthetic_single(SP_VAL[0], SP_VAL[1], SP_SIZE)


def evaluate(name: str, model, val=None) -> dict:
    """The metrics a zoo model is recorded with: PCK@0.1 and PCK@0.05 (box normalizer) on the 512 validation
    crops of chapters 2-3 (`sp_validation`), no flip test."""
    entry_of(name)  # a clear error for an unknown name
    val = sp_validation() if val is None else val
    pred = predict_keypoints(model, val["images"])
    return {"pck01": pck_bbox(pred, val, 0.1), "pck005": pck_bbox(pred, val, 0.05)}


def chosen_lr(entry: Entry) -> tuple[float, dict]:
    """(learning rate, {lr: held-out score}) of an entry: its sweep (cached runs) or its fixed `lr`."""
    if entry.lr_sweep is None:
        return float(entry.settings["lr"]), {}

    s = entry.settings
    held = lr_sweep(entry.recipe, entry.lr_sweep["lrs"], train_size=s["train_size"], holdout=entry.lr_sweep["holdout"],
                    seed=0, size=s["size"], steps=entry.lr_sweep["steps"])  # fmt: skip
    return max(held, key=held.get), held


def entry_of(name: str) -> Entry:
    if name not in ENTRIES:
        raise ZooError(f"no recipe named {name!r}; the zoo's recipes: {', '.join(ENTRIES)}")
    return ENTRIES[name]


def recipe_config(name: str, lr: float) -> dict:
    """The run config the zoo entry `name` trains with at learning rate `lr` (what its manifest entry holds)."""
    entry = entry_of(name)
    return named_config(entry.recipe, lr=lr, val=sp_validation(), **_settings(entry))


def _settings(entry: Entry) -> dict:
    """An entry's settings without its learning rate (given separately, fixed or swept)."""
    return {k: v for k, v in entry.settings.items() if k != "lr"}


def train_entry(name: str, progress: bool = True):
    """Train (or resume, or load when finished) the zoo entry `name` with its recipe; returns (model, history, lr,
    held-out sweep). The run lives in the run cache (`posekit.checkpoint.run_dir`): an interrupted training
    resumes from its last checkpoint, and its validation curve is in the run folder's `curve.json` as it goes."""
    entry = entry_of(name)
    if progress and entry.lr_sweep:
        print(f"{name}: the learning rate from {len(entry.lr_sweep['lrs'])}+ runs of {entry.lr_sweep['steps']:,} steps "
              f"on held-out crops (run once, then cached)", flush=True)  # fmt: skip
    lr, held = chosen_lr(entry)
    if progress and held:
        print(f"{name}: learning rate {lr:g} (held-out PCK@0.1 " + ", ".join(f"{k:g}: {v:.3f}" for k, v in held.items())
              + ")", flush=True)  # fmt: skip
    model, history = train_named(entry.recipe, lr=lr, val=sp_validation(), progress=progress, **_settings(entry))
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
        "commit": commit or git_commit(),
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
