"""The shape every recipe of the book shares, written once: a config → its model → `fit` → a cached run; and the
one learning-rate sweep on held-out data.

    model, history = train_run("detector", cfg, loss_fn=loss, batches=batches, validate=validate)
    scores = sweep(lambda lr: train(lr=lr)[0], lambda model: score(model, held), [2e-3, 6e-3, 2e-2], extend=1)

A recipe (`single_person`, `top_down`, `bottom_up`) says what is particular to it: the config's keys, the
training data and its batches, the loss, and what validation measures. Everything else is here: the model is
`posekit.models.build_model(cfg)` seeded with `cfg["seed"]` (or started from a zoo model's weights, `init_from`),
trained by `posekit.train.fit` with Adam and a
warmup-cosine schedule peaking at `cfg["lr"]` for `cfg["steps"]` steps, checkpointed four times (at least every
`CKPT_MAX_EVERY` steps) in `posekit.checkpoint.run_dir(kind, cfg)` (so a run is cached by its config, loaded when
finished and resumed when interrupted).
"""

from __future__ import annotations

from collections.abc import Callable

from flax import nnx

from posekit.checkpoint import run_dir
from posekit.models import build_model
from posekit.train import fit
from posekit.zoo_files import info, load


def init_from(name: str | None, part: str | None = None) -> dict:
    """The config keys of a run that starts from the zoo model `name`'s weights instead of a random
    initialization (as the papers start from ImageNet weights): {"init": name, "init_sha256": its file's hash},
    so that the run is cached against those exact weights; `part` (e.g. "backbone"): only that attribute of the
    model starts from the zoo model's (a detector from a pose model's backbone; "body": an HRNet's layers but its
    last, a bottom-up model from a top-down HRNet); {} for None."""
    if name is None:
        return {}
    return {"init": name, "init_sha256": info(name)["sha256"][:16], **({"init_part": part} if part else {})}


# init_part "body": every layer of an HRNet but its final 1×1 conv (whose outputs differ between a top-down model and
# a bottom-up one). (Until 2026-12-07 this part was "trunk", a list of attributes that left out HRNet's stage1, so
# the bottom-up models started with a random first stage under a trained rest; "trunk" is no longer accepted.)
HEAD = "final"
# A long run loses at most this many steps when it is stopped (a zoo run of hours, across sessions).
CKPT_MAX_EVERY = 1000


def hrnet_body(model) -> list[str]:
    """The attributes of `model`'s HRNet (the model itself, or its `hrnet`) that init_part "body" copies: all of its
    submodules but `HEAD`."""
    net = getattr(model, "hrnet", model)
    return [k for k, v in vars(net).items() if isinstance(v, nnx.Module | nnx.List) and k != HEAD]


def _start(model, cfg: dict):
    """`model` with the weights of `cfg["init"]` (every parameter and BatchNorm statistic: the zoo model must have
    the same structure); a clear error when the zoo's file is not the one the run was configured with."""
    name = cfg["init"]
    have = info(name)["sha256"][:16]
    if have != cfg.get("init_sha256"):
        raise ValueError(f"train_run: the run starts from zoo model {name!r} with sha256 {cfg.get('init_sha256')}, "
                         f"but the zoo's {name!r} now has {have}")  # fmt: skip
    start, part = load(name), cfg.get("init_part")
    try:
        if part == "body":  # an HRNet's layers up to its last 1×1 conv, wherever the two models keep their HRNet
            mine, theirs = getattr(model, "hrnet", model), getattr(start, "hrnet", start)
            if hrnet_body(mine) != hrnet_body(theirs):
                raise ValueError(f"HRNet layers {hrnet_body(mine)} against {hrnet_body(theirs)}")
            for attr in hrnet_body(mine):
                nnx.update(getattr(mine, attr), nnx.state(getattr(theirs, attr)))
        elif part:
            nnx.update(getattr(model, part), nnx.state(getattr(start, part)))
        else:
            nnx.update(model, nnx.state(start))
    except (ValueError, KeyError, AttributeError) as e:
        raise ValueError(f"train_run: zoo model {name!r} does not have this run's model's structure ({e})") from None
    return model


def train_run(kind: str, cfg: dict, *, loss_fn, batches, validate=None, validations: int = 4,
              progress: bool = True, desc: str = "train"):  # fmt: skip
    """Train (or load, or resume) the run of `cfg` under `run_dir(kind, cfg)`; returns (model, history).

    cfg: the recipe's config, with at least "seed", "steps" and "lr", and what `build_model` reads (and the keys
    of `init_from` for a run that starts from a zoo model). loss_fn,
    batches: as `fit` takes them. validate: `validate(model, step) -> dict` or None, called `validations` times
    along training (and at the end).
    """
    steps = cfg["steps"]
    model = build_model(cfg, cfg["seed"])
    if cfg.get("init"):
        model = _start(model, cfg)
    return fit(model, loss_fn, batches, steps, lr=cfg["lr"], ckpt_dir=run_dir(kind, cfg),
               ckpt_every=max(min(steps // 4, CKPT_MAX_EVERY), 50), validate=validate,
               val_every=max(steps // validations, 1), progress=progress, desc=desc)  # fmt: skip


def sweep(train_at: Callable, score: Callable, lrs, *, extend: int = 0, rank: Callable | None = None) -> dict:
    """{lr: score(train_at(lr))} over the grid `lrs`, in increasing lr: the one learning-rate sweep of the book.

    `score` is measured on data held out of the training set, never on the validation data. rank(score) → the
    number to maximize (default: the score itself). When the best rate is at an end of the grid, the grid is
    extended past that end by its own ratio (lrs[1] / lrs[0]), up to `extend` times, so that a model is not
    held to a grid that stops before its optimum.
    """
    rank = rank or (lambda s: s)
    out = {}

    def measure(lr: float) -> None:
        out[lr] = score(train_at(lr))

    grid = sorted(float(lr) for lr in lrs)
    for lr in grid:
        measure(lr)
    ratio = grid[1] / grid[0] if len(grid) > 1 else 3.0
    for _ in range(extend):
        grid = sorted(out)
        best = max(out, key=lambda lr: rank(out[lr]))
        if best == grid[0]:
            measure(float(f"{grid[0] / ratio:.3g}"))
        elif best == grid[-1]:
            measure(float(f"{grid[-1] * ratio:.3g}"))
        else:
            break
    return dict(sorted(out.items()))
