"""The book's one training loop: optax, a jitted train step, progress, validation, checkpoints and resume.

    model, history = fit(model, loss_fn, batches, steps=2000, lr=2e-3, ckpt_dir=run_dir("heatmap", cfg))

* `loss_fn(model, batch) -> (loss, aux dict)` calls the model with `train=True`; `batches(step) -> dict` of
  numpy arrays, a pure function of the step (seed the data with `posekit.data.step_rng(seed, step)`), so a run is
  deterministic and an interrupted run resumes on exactly the batches it would have seen.
* The train step is a pure function under `jax.jit`: `nnx.split` once, `nnx.merge` at the top of the jitted
  function (the fastest pattern on CPU; graph-mode `nnx.jit` costs ~3 ms per step).
* Checkpoints (`posekit.checkpoint`) are written every `ckpt_every` steps; `fit` resumes from one, and returns
  a finished run without training.
* Data parallel over every device (`posekit.parallel`): the model and optimizer state are replicated, each
  batch is split over a mesh axis "data", and the jitted step is one SPMD program whose gradients XLA sums
  across devices. One device is a mesh of one: the same code path. A checkpoint holds plain arrays, so a run
  saved on 4 devices resumes on 1 and the other way round.
* `compute_dtype=jnp.bfloat16`: mixed precision, the forward and backward pass in bfloat16 on float32
  parameters (the optimizer updates float32 parameters).

Losses live in `posekit.losses`, prediction in `posekit.inference`, the chapters' recipes in
`posekit.experiments`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from posekit import parallel
from posekit.checkpoint import CKPT_NAME, CURVE_NAME, load_checkpoint, save_checkpoint
from posekit.io import atomic_write_json


class ScheduleState(NamedTuple):
    """The warmup-cosine schedule as optimizer state: its numbers are arrays, not constants of the program."""

    count: jax.Array
    peak: jax.Array
    warmup: jax.Array
    total: jax.Array
    final: jax.Array


def scale_by_warmup_cosine(peak: float, total: int, warmup: int, final: float):
    """−lr(t) × updates, lr linear from 0 to `peak` over `warmup` steps, then cosine to `final` at `total`.

    The values of `optax.warmup_cosine_decay_schedule(0, peak, warmup, total, final)`, but held in the
    optimizer's state: the jitted training step is then the same program for every learning rate and length,
    so XLA compiles it once per model (and the persistent compilation cache serves every later run) instead
    of once per learning rate in a sweep.
    """

    def init(params):
        f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        return ScheduleState(jnp.zeros([], jnp.int32), f(peak), f(warmup), f(total), f(final))

    def update(updates, state, params=None):
        t = state.count.astype(jnp.float32)
        frac = jnp.clip((t - state.warmup) / jnp.maximum(state.total - state.warmup, 1.0), 0.0, 1.0)
        cosine = state.final + (state.peak - state.final) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
        lr = jnp.where(t < state.warmup, state.peak * t / state.warmup, cosine)
        updates = jax.tree.map(lambda u: -lr * u, updates)
        return updates, state._replace(count=optax.safe_int32_increment(state.count))

    return optax.GradientTransformation(init, update)


def make_optimizer(steps: int, lr: float = 2e-3, *, optimizer: str = "adam", weight_decay: float = 0.0,
                   warmup: float = 0.05, final_lr: float = 0.01, clip: float | None = None):  # fmt: skip
    """optax adam/adamw with a linear warmup over `warmup`·steps then cosine decay to `final_lr`·lr.

    The schedule lives in the optimizer state (`scale_by_warmup_cosine`), so runs that differ only in `lr`
    or `steps` share one compiled training step.
    """
    warmup_steps = max(1, int(warmup * steps))
    sched = scale_by_warmup_cosine(lr, max(steps, warmup_steps + 1), warmup_steps, final_lr * lr)
    if optimizer == "adam":
        tx = optax.chain(optax.scale_by_adam(), sched)
    elif optimizer == "adamw":
        tx = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(weight_decay), sched)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'adamw', got {optimizer!r}")
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def make_train_step(graphdef, loss_fn, out_sharding=None, compute_dtype=None):
    """A jitted `train_step(state, batch) -> (state, loss, aux)` over the split (model, optimizer) state.

    out_sharding: the sharding of every output (`parallel.replicated(mesh)` in `fit`). compute_dtype: None
    (float32), or e.g. jnp.bfloat16 to run the model's forward and backward pass in that type on float32
    parameters: the parameters and the batch's float arrays are cast inside the step, the loss and the
    gradients come back in float32, and BatchNorm statistics stay float32.
    """

    def low(model, batch):
        """loss_fn on a `compute_dtype` copy of the model; its new BatchNorm statistics go back in float32."""
        gdef, params, rest = nnx.split(model, nnx.Param, ...)
        m = nnx.merge(gdef, _cast_floats(params, compute_dtype), rest)
        loss, aux = loss_fn(m, _cast_floats(batch, compute_dtype))
        nnx.update(model, _cast_floats(nnx.state(m, nnx.Not(nnx.Param)), jnp.float32))
        return loss.astype(jnp.float32), jax.tree.map(lambda v: v.astype(jnp.float32), aux)

    grads_of = nnx.value_and_grad(loss_fn if compute_dtype is None else low, has_aux=True)

    def train_step(state, batch):
        model, opt = nnx.merge(graphdef, state)
        (loss, aux), grads = grads_of(model, batch)
        opt.update(model, grads)
        return nnx.state((model, opt)), loss, aux

    return jax.jit(train_step, out_shardings=out_sharding)


class _History:
    """The training history and the progress bar, fed with device scalars fetched in groups.

    Fetching every step's loss would make the host wait for the device each step; instead the step results
    wait in `pending` and are fetched every 20 steps (or before validation and checkpoints). "time" counts
    training seconds only: validation and saving are left out.
    """

    def __init__(self, history: dict, start: int, steps: int, desc: str, progress: bool):
        self.data = history
        self.pending: list = []
        self.elapsed = history["time"][-1] if history["time"] else 0.0
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=steps, initial=start, desc=desc, file=sys.stderr, mininterval=2.0, disable=not progress)

    def add(self, step, loss, aux) -> None:
        self.pending.append((step, loss, aux))

    def flush(self, images_per_step: int) -> None:
        if not self.pending:
            return
        jax.block_until_ready(self.pending[-1][1])
        now = time.perf_counter()
        for step, loss, aux in parallel.to_host(self.pending):
            self.data["step"].append(step)
            self.data["loss"].append(float(loss))
            for k, v in aux.items():
                self.data.setdefault(k, []).append(float(v))
        self.elapsed += now - self.t0
        self.data["time"].extend([self.elapsed] * len(self.pending))
        rate = len(self.pending) * images_per_step / max(now - self.t0, 1e-9)
        self.bar.update(len(self.pending))
        self.bar.set_postfix(loss=f"{self.data['loss'][-1]:.4g}", img_s=f"{rate:.0f}", refresh=False)
        self.pending.clear()
        self.restart_clock()

    def restart_clock(self) -> None:
        self.t0 = time.perf_counter()

    def add_validation(self, step: int, metrics: dict) -> None:
        self.data.setdefault("val_step", []).append(step)
        for k, v in metrics.items():
            self.data.setdefault(f"val_{k}", []).append(float(v))

    def arrays(self) -> dict:
        return _as_arrays(self.data)


def fit(
    model: nnx.Module,
    loss_fn,
    batches,
    steps: int,
    *,
    lr: float = 2e-3,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    warmup: float = 0.05,
    clip: float | None = None,
    ckpt_dir=None,
    ckpt_every: int = 500,
    validate=None,
    val_every: int | None = None,
    progress: bool = True,
    desc: str = "train",
    mesh=None,
    compute_dtype=None,
):
    """Train `model` in place for `steps` steps; returns (model, history). Used in chapters 2 and 3.

    Args:
      model: an nnx.Module; its parameters and BatchNorm statistics are updated in place.
      loss_fn: `loss_fn(model, batch) -> (scalar loss, dict of scalar aux metrics)`; jitted, so it must be pure.
      batches: `batches(step) -> dict of numpy arrays`; deterministic in `step`.
      steps: total optimizer steps (a resumed run continues up to this number).
      lr, optimizer, weight_decay, warmup, clip: see `make_optimizer`.
      ckpt_dir: folder for `checkpoint.msgpack` (None: no checkpoints). A finished run there is loaded
        and returned without training; an unfinished one is resumed.
      ckpt_every: steps between checkpoints (and one at the end).
      validate: optional `validate(model, step) -> dict of floats`, called every `val_every` steps and at the end;
        with `ckpt_dir`, the curve so far is written to `curve.json` there after each validation.
      progress: a text tqdm bar on stderr (mininterval 2 s) with the loss and images/s.
      mesh: the devices to train on (`parallel.data_mesh`; default every device). The batch size must be a
        multiple of the number of devices (a clear error says so). With several processes
        (`parallel.initialize`), `batches(step)` returns this process's rows (`parallel.host_rows`).
      compute_dtype: None (float32) or jnp.bfloat16 for mixed precision (see `make_train_step`).

    Returns history, a dict of numpy arrays: "step", "loss", "time" (cumulative training seconds), one entry
    per aux metric, and "val_step" plus "val_<name>" for each validation metric.
    """
    tx = make_optimizer(steps, lr, optimizer=optimizer, weight_decay=weight_decay, warmup=warmup, clip=clip)
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    mesh = parallel.data_mesh() if mesh is None else mesh
    ckpt = Path(ckpt_dir) / CKPT_NAME if ckpt_dir is not None else None
    history: dict[str, list] = {"step": [], "loss": [], "time": []}
    start = 0
    if ckpt is not None and ckpt.exists():  # resume (or return a finished run)
        state, start, history = load_checkpoint(ckpt, state)
    if jax.process_count() > 1:  # every process starts where process 0 does (its checkpoint is the one saved)
        start, state = parallel.from_process_zero((np.int32(start), parallel.to_host(state)))
        start = int(start)
    if start:
        nnx.update((model, opt), state)
        if start >= steps:
            return model, _as_arrays(history)

    state = parallel.replicate(state, mesh)
    log = _History(history, start, steps, desc, progress)
    train_step = make_train_step(graphdef, loss_fn, parallel.replicated(mesh), compute_dtype)
    sharded = lambda step: parallel.shard_batch(batches(step), mesh)  # noqa: E731
    curve = ckpt.parent / CURVE_NAME if ckpt is not None else None
    state = _train_loop(train_step, state, sharded, start, steps, log, ckpt, ckpt_every,
                        validate and (lambda step, state: _validate(model, opt, state, validate, step, log, curve)),
                        val_every)  # fmt: skip
    if validate is not None:
        _validate(model, opt, state, validate, steps, log, curve)
    nnx.update((model, opt), state)
    if ckpt is not None:
        _save(ckpt, state, steps, log.data)
    return model, log.arrays()


def _save(ckpt, state, step: int, history: dict) -> None:
    """Process 0 writes the checkpoint (plain host arrays, whatever the devices were)."""
    host = parallel.to_host(state)
    if jax.process_index() == 0:
        save_checkpoint(ckpt, host, step, history)


def _validate(model, opt, state, validate, step: int, log: _History, curve=None) -> None:
    """Score the model; with `curve` (a path), also write the validation curve so far there (JSON, atomically),
    so that a long run's curve can be read while it trains."""
    nnx.update((model, opt), state)
    log.add_validation(step, validate(model, step))
    if curve is not None and jax.process_index() == 0:
        atomic_write_json(curve, {k: v for k, v in log.data.items() if k.startswith("val_")})


def _train_loop(train_step, state, batches, start, steps, log: _History, ckpt, ckpt_every, run_validation, val_every):
    """Steps `start`..`steps`−1 with validation and checkpoints on their schedule; returns the final state.

    On Ctrl-C the state of the last finished step is saved (when checkpointing) before the interrupt goes on.
    """
    done, n_img = start, 0
    try:
        for step in range(start, steps):
            batch = batches(step)
            n_img = len(next(iter(batch.values())))
            state, loss, aux = train_step(state, batch)
            log.add(step, loss, aux)
            done = step + 1
            want_val = run_validation is not None and val_every and done % val_every == 0 and done < steps
            want_ckpt = ckpt is not None and done % ckpt_every == 0 and done < steps
            if len(log.pending) >= 20 or want_val or want_ckpt:
                log.flush(n_img)
            if want_val:
                run_validation(done, state)
            if want_ckpt:
                _save(ckpt, state, done, log.data)
            if want_val or want_ckpt:
                log.restart_clock()  # validation and saving do not count as training time
    except KeyboardInterrupt:
        if ckpt is not None:  # `state` is the result of the last finished step
            log.flush(n_img)
            _save(ckpt, state, done, log.data)
        log.bar.close()
        raise
    log.flush(n_img)
    log.bar.close()
    return state


def _as_arrays(history: dict) -> dict:
    return {k: np.asarray(v) for k, v in history.items()}
