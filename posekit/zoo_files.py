"""The zoo's files: its folder, its manifest and loading a model from it. Knows no recipe.

    model = load("sp-heatmap")            # the trained model (structure from the manifest's config)
    entry = info("sp-heatmap")            # its manifest entry: config, steps, curve, metrics, sha256, ...

`posekit.zoo` trains, exports and verifies the zoo's entries with the book's recipes and re-exports these
functions; they live apart so that a recipe can start a model from a zoo model's weights (a run's `init`,
`posekit.experiments.recipe.train_run`) without the recipes and the zoo importing each other.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from posekit.book import repo_root
from posekit.checkpoint import load_weights_bytes
from posekit.models import build_model

MANIFEST = "manifest.json"
ZOO_ENV = "POSEKIT_ZOO"
FORMAT = 1  # of the manifest and the files; raised when what a file holds changes


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
