"""Checkpoints: save, load and resume a training run, and where runs live (cached by their config).

A checkpoint is one msgpack file (`flax.serialization`) holding the model and optimizer state, the step and
the training history, written atomically (`posekit.io.atomic_write_bytes`): an interrupted write leaves the
previous checkpoint intact, and `posekit.train.fit` resumes from it.

Why not orbax-checkpoint, the documented Flax NNX way? It is built for sharded multi-host arrays and
asynchronous saves into a directory per step, and brings tensorstore and an async runtime with it. The
book's models have at most a few million parameters and train on one host: one small file written
atomically is simpler to read, to copy and to reason about, and loads in milliseconds. Moving to orbax is a
change to this module only (`save_checkpoint` / `load_checkpoint` / `load_run`).

Runs are cached by config: `run_dir(name, config)` is `<cache>/runs/<name>-<hash of config>`, so two chapters
that train the same config share one run (the second only loads it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np
from flax import nnx, serialization

from posekit.book import cache_dir
from posekit.io import atomic_write_bytes, atomic_write_json

CKPT_NAME = "checkpoint.msgpack"
WEIGHTS = (nnx.Param, nnx.BatchStat)  # what a trained model is, without its optimizer: a filter for nnx.state
CURVE_NAME = "curve.json"  # a run's validation curve, written as it trains (`posekit.train.fit`)
# Part of every run's hash: raised when what a checkpoint holds changes (2: the learning-rate schedule moved
# into the optimizer state), so that an old cached run is retrained rather than loaded into a new structure.
RUN_FORMAT = 2


def config_hash(config: dict) -> str:
    """Short stable hash of a JSON-able config (sorted keys)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


RUN_INFO = "run.json"


def run_dir(name: str, config: dict) -> Path:
    """Checkpoint folder of a run: `posekit.cache_dir("runs", f"{name}-{config_hash(config)}")`.

    The folder also holds `run.json` ({"name", "config", "format"}), written once, so that a finished run can be
    rebuilt from its folder alone (`read_run`; `posekit predict --run`).
    """
    path = cache_dir("runs", f"{name}-{config_hash({**config, '_format': RUN_FORMAT})}")
    if not (path / RUN_INFO).exists():
        atomic_write_json(path / RUN_INFO, {"name": name, "config": config, "format": RUN_FORMAT}, default=str)
    return path


def find_runs(name: str, **config) -> list[Path]:
    """The finished run folders of `name` (e.g. "bottomup") whose config holds every given key with the given
    value (lists and tuples compare alike), newest first. For handing a chapter's run to `posekit predict`."""

    want = json.loads(json.dumps(config, default=str))
    found = []
    for folder in cache_dir("runs").glob(f"{name}-*"):
        if not (folder / RUN_INFO).exists() or not (folder / CKPT_NAME).exists():
            continue
        cfg = read_run(folder)["config"]
        if all(cfg.get(k) == v for k, v in want.items()):
            found.append(folder)
    return sorted(found, key=lambda p: (p / CKPT_NAME).stat().st_mtime, reverse=True)


def read_run(path) -> dict:
    """A run folder's `run.json` ({"name", "config", "format"}), with a clear error when the folder is not a run."""
    info = Path(path) / RUN_INFO
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: no such run folder")
    if not info.exists():
        raise ValueError(f"{path}: not a run folder of this version of posekit (no {RUN_INFO}; rerun its chapter)")
    return json.loads(info.read_text())


def _flat(pure: dict) -> dict:
    """{'[0]['backbone']...': array}: string keys, so msgpack round-trips them (nnx.List indices are ints)."""
    leaves = jax.tree_util.tree_leaves_with_path(pure)
    return {jax.tree_util.keystr(path): np.asarray(v) for path, v in leaves}


def _unflat(pure: dict, flat: dict, prefix: str = "") -> dict:
    """Fill the structure of `pure` from `flat` (keys as made by `_flat`, optionally with `prefix`)."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(pure)
    missing = [prefix + jax.tree_util.keystr(p) for p, _ in paths if prefix + jax.tree_util.keystr(p) not in flat]
    if missing:
        raise ValueError(f"checkpoint does not match the model: {len(missing)} missing entries, e.g. {missing[:3]}")
    leaves = []
    for p, v in paths:
        a = flat[prefix + jax.tree_util.keystr(p)]
        if a.shape != np.shape(v):
            raise ValueError(f"checkpoint entry {jax.tree_util.keystr(p)} has shape {a.shape}, model {np.shape(v)}")
        leaves.append(a)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _read(path) -> dict:
    return serialization.msgpack_restore(Path(path).read_bytes())


def _history(payload: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in payload["history"].items()}


def save_checkpoint(path, state: nnx.State, step: int, history: dict) -> None:
    """Write {state, step, history} to `path` atomically (msgpack, state flattened to string keys)."""
    payload = {
        "step": int(step),
        "state": _flat(nnx.to_pure_dict(state)),
        "history": {k: np.asarray(v) for k, v in history.items()},
    }
    atomic_write_bytes(path, serialization.msgpack_serialize(payload))


def load_checkpoint(path, state: nnx.State):
    """Read a checkpoint into `state` (updated in place); returns (state, step, history as lists)."""
    payload = _read(path)
    nnx.replace_by_pure_dict(state, _unflat(nnx.to_pure_dict(state), payload["state"]))
    return state, int(payload["step"]), _history(payload)


def load_run(model: nnx.Module, ckpt_dir):
    """Load the model part of a run's checkpoint into `model` (any optimizer); returns (model, history, step).

    `history` is a dict of numpy arrays, as `posekit.train.fit` returns it.
    """
    ckpt = Path(ckpt_dir) / CKPT_NAME
    if not ckpt.exists():
        raise FileNotFoundError(f"load_run: no checkpoint at {ckpt}")
    payload = _read(ckpt)
    state = nnx.state(model)
    # fit saves the pair (model, optimizer): the model's entries are the ones under "[0]"
    nnx.replace_by_pure_dict(state, _unflat(nnx.to_pure_dict(state), payload["state"], prefix="[0]"))
    nnx.update(model, state)
    history = {k: np.asarray(v) for k, v in _history(payload).items()}
    return model, history, int(payload["step"])


def weights_bytes(model: nnx.Module) -> bytes:
    """A model's parameters and BatchNorm statistics (float32), as msgpack bytes: what a zoo file holds."""
    state = nnx.state(model, WEIGHTS)
    flat = {k: np.asarray(v, np.float32) for k, v in _flat(nnx.to_pure_dict(state)).items()}
    return serialization.msgpack_serialize(flat)


def load_weights_bytes(model: nnx.Module, data: bytes) -> nnx.Module:
    """Load `weights_bytes` into `model` (in place; returns it). A clear ValueError when they do not fit."""
    try:
        flat = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several types for damaged bytes
        raise ValueError(f"not a weights file ({type(e).__name__}: {e})") from None
    if not isinstance(flat, dict):
        raise ValueError("not a weights file (expected a table of arrays)")
    state = nnx.state(model, WEIGHTS)
    pure = nnx.to_pure_dict(state)
    extra = set(flat) - {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(pure)}
    if extra:
        raise ValueError(f"the weights have {len(extra)} entries the model lacks, e.g. {sorted(extra)[:3]}")
    nnx.replace_by_pure_dict(state, _unflat(pure, flat))
    nnx.update(model, state)
    return model
