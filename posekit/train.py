"""The book's one training loop: optax, a jitted train step, progress, validation, checkpoints and resume.

    model, history = fit(model, loss_fn, batches, steps=2000, lr=2e-3, ckpt_dir=run_dir("heatmap", cfg))

* `loss_fn(model, batch) -> (loss, aux dict)` calls the model with `train=True`; `batches(step) -> dict` of
  numpy arrays, a pure function of the step (seed the data with `step_rng(seed, step)`), so a run is
  deterministic and an interrupted run resumes on exactly the batches it would have seen.
* The train step is a pure function under `jax.jit`: `nnx.split` once, `nnx.merge` at the top of the jitted
  function (the fastest pattern on CPU; graph-mode `nnx.jit` costs ~3 ms per step).
* Checkpoints (model + optimizer state + step + history) are one msgpack file written atomically every
  `ckpt_every` steps; `fit` resumes from it, and returns a finished run without training.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization
from tqdm import tqdm

from posekit.io import atomic_write_bytes

CKPT_NAME = "checkpoint.msgpack"


# --------------------------------------------------------------------------------------------------- losses
def _codec_layout(name: str, pred, target):
    """NHWC model output (B, h, w, J) → the codecs' (B, J, h, w), checked against the target's shape."""
    pred = jnp.transpose(pred, (0, 3, 1, 2))
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred (as B,J,h,w) {pred.shape} does not match target {target.shape}")
    return pred


def heatmap_loss(pred, target, weights):
    """Weighted heatmap MSE (SimpleBaseline's JointsMSELoss): mean over (B, J) of w_j · mean_hw (P − T)².

    pred: (B, h, w, J) as the models output it; target: (B, J, h, w) as `posekit.codecs.heatmap_targets`
    makes it; weights: (B, J), 0 for unlabelled joints (they get zero loss).
    """
    pred = _codec_layout("heatmap_loss", pred, target)
    per_joint = ((pred - target) ** 2).mean(axis=(2, 3))
    return (per_joint * weights).mean()


def heatmap_ce_loss(pred, target, weights):
    """Weighted spatial cross-entropy: each joint's map is a softmax over its h·w cells.

    The loss of Mask R-CNN's keypoint head (He et al. 2017), here with the Gaussian target normalized to sum
    to 1 instead of a one-hot cell: mean over (B, J) of w_j · (−Σ_hw T̃ log softmax(P)), T̃ = T / Σ_hw T.
    Unlike the MSE, every cell of the map gets a gradient that pushes probability towards the joint, so
    small models learn much faster; the outputs are logits (decode them with `logits=True`).
    pred: (B, h, w, J); target: (B, J, h, w); weights: (B, J), 0 for unlabelled joints.
    """
    pred = _codec_layout("heatmap_ce_loss", pred, target)
    b, j, h, w = pred.shape
    logp = jax.nn.log_softmax(pred.reshape(b, j, h * w), axis=-1)
    t = target.reshape(b, j, h * w)
    t = t / jnp.maximum(t.sum(-1, keepdims=True), 1e-12)
    return (-(t * logp).sum(-1) * weights).mean()


HEATMAP_LOSSES = {"mse": heatmap_loss, "ce": heatmap_ce_loss}


def regression_loss(pred, target, weights, kind: str = "l1"):
    """Weighted coordinate loss: mean over (B, J) of w_j · |p − t|₁ (kind="l1") or ‖p − t‖² (kind="l2").

    pred, target: (B, J, 2) normalized coordinates; weights: (B, J).
    """
    d = pred - target
    per_joint = jnp.abs(d).sum(-1) if kind == "l1" else (d**2).sum(-1)
    return (per_joint * weights).mean()


# ----------------------------------------------------------------------------------------------- utilities
def step_rng(seed: int, step: int) -> np.random.Generator:
    """The numpy generator for one step's data: a pure function of (seed, step)."""
    return np.random.default_rng([int(seed), int(step)])


def config_hash(config: dict) -> str:
    """Short stable hash of a JSON-able config (sorted keys)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def run_dir(name: str, config: dict) -> Path:
    """Checkpoint folder of a run: `posekit.cache_dir("runs", f"{name}-{config_hash(config)}")`.

    Two chapters that train the same config share the run (the second one just loads it).
    """
    from posekit.book import cache_dir

    return cache_dir("runs", f"{name}-{config_hash(config)}")


def make_optimizer(steps: int, lr: float = 2e-3, *, optimizer: str = "adam", weight_decay: float = 0.0,
                   warmup: float = 0.05, final_lr: float = 0.01, clip: float | None = None):  # fmt: skip
    """optax adam/adamw with a linear warmup over `warmup`·steps then cosine decay to `final_lr`·lr."""
    warmup_steps = max(1, int(warmup * steps))
    sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, max(steps, warmup_steps + 1), final_lr * lr)
    if optimizer == "adam":
        tx = optax.adam(sched)
    elif optimizer == "adamw":
        tx = optax.adamw(sched, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'adamw', got {optimizer!r}")
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def _to_numpy_tree(tree):
    return jax.tree.map(lambda a: np.asarray(a), tree)


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


def save_checkpoint(path, state: nnx.State, step: int, history: dict) -> None:
    """Write {state, step, history} to `path` atomically (msgpack, state flattened to string keys)."""
    payload = {
        "step": int(step),
        "state": _flat(nnx.to_pure_dict(state)),
        "history": {k: np.asarray(v) for k, v in history.items()},
    }
    atomic_write_bytes(path, serialization.msgpack_serialize(payload))


def _read(path) -> dict:
    return serialization.msgpack_restore(Path(path).read_bytes())


def load_checkpoint(path, state: nnx.State):
    """Read a checkpoint into `state` (updated in place); returns (state, step, history)."""
    payload = _read(path)
    nnx.replace_by_pure_dict(state, _unflat(nnx.to_pure_dict(state), payload["state"]))
    history = {k: np.asarray(v).tolist() for k, v in payload["history"].items()}
    return state, int(payload["step"]), history


_PREDICT_CACHE: dict = {}


def predict(model: nnx.Module, images, batch_size: int = 256, **kwargs) -> np.ndarray:
    """Run `model(x, train=False, **kwargs)` over `images` (N, H, W, 3) in batches; returns numpy outputs."""
    graphdef, state = nnx.split(model)
    key = (graphdef, tuple(sorted(kwargs.items())))
    if key not in _PREDICT_CACHE:

        def f(state, x):
            return nnx.merge(graphdef, state)(x, train=False, **kwargs)

        _PREDICT_CACHE[key] = jax.jit(f)
    f = _PREDICT_CACHE[key]
    images = np.asarray(images)
    outs = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        n = len(chunk)
        if n < batch_size and len(images) > batch_size:  # pad the last chunk: one compiled shape
            chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)])
        outs.append(np.asarray(f(state, jnp.asarray(chunk, jnp.float32)))[:n])
    return np.concatenate(outs)


# ------------------------------------------------------------------------------------------------ the loop
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
):
    """Train `model` in place for `steps` steps; returns (model, history).

    Args:
      model: an nnx.Module; its parameters and BatchNorm statistics are updated in place.
      loss_fn: `loss_fn(model, batch) -> (scalar loss, dict of scalar aux metrics)`; jitted, so it must be pure.
      batches: `batches(step) -> dict of numpy arrays`; deterministic in `step`.
      steps: total optimizer steps (a resumed run continues up to this number).
      lr, optimizer, weight_decay, warmup, clip: see `make_optimizer`.
      ckpt_dir: folder for `checkpoint.msgpack` (None: no checkpoints). A finished run there is loaded
        and returned without training; an unfinished one is resumed.
      ckpt_every: steps between checkpoints (and one at the end).
      validate: optional `validate(model, step) -> dict of floats`, called every `val_every` steps and at the end.
      progress: a text tqdm bar on stderr (mininterval 2 s) with the loss and images/s.

    Returns history, a dict of numpy arrays: "step", "loss", "time" (cumulative training seconds), one entry
    per aux metric, and "val_step" plus "val_<name>" for each validation metric.
    """
    tx = make_optimizer(steps, lr, optimizer=optimizer, weight_decay=weight_decay, warmup=warmup, clip=clip)
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    history: dict[str, list] = {"step": [], "loss": [], "time": []}
    start = 0
    ckpt = Path(ckpt_dir) / CKPT_NAME if ckpt_dir is not None else None
    if ckpt is not None and ckpt.exists():
        state, start, history = load_checkpoint(ckpt, state)
        nnx.update((model, opt), state)
        if start >= steps:
            return model, _as_arrays(history)

    @jax.jit
    def train_step(state, batch):
        model, opt = nnx.merge(graphdef, state)
        (loss, aux), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, batch)
        opt.update(model, grads)
        return nnx.state((model, opt)), loss, aux

    def run_validation(step):
        nnx.update((model, opt), state)
        metrics = validate(model, step)
        history.setdefault("val_step", []).append(step)
        for k, v in metrics.items():
            history.setdefault(f"val_{k}", []).append(float(v))
        return metrics

    bar = tqdm(total=steps, initial=start, desc=desc, file=sys.stderr, mininterval=2.0, disable=not progress)
    pending = []  # device scalars not yet fetched: fetching every step would make host and device take turns
    clock = {"elapsed": history["time"][-1] if history["time"] else 0.0, "t0": time.perf_counter()}

    def flush(n_img):
        if not pending:
            return
        jax.block_until_ready(pending[-1][1])
        now = time.perf_counter()
        for s, loss, aux in jax.device_get(pending):
            history["step"].append(s)
            history["loss"].append(float(loss))
            for k, v in aux.items():
                history.setdefault(k, []).append(float(v))
        clock["elapsed"] += now - clock["t0"]
        history["time"].extend([clock["elapsed"]] * len(pending))
        rate = len(pending) * n_img / max(now - clock["t0"], 1e-9)
        bar.update(len(pending))
        bar.set_postfix(loss=f"{history['loss'][-1]:.4g}", img_s=f"{rate:.0f}", refresh=False)
        pending.clear()
        clock["t0"] = time.perf_counter()

    done, n_img = start, 0
    try:
        for step in range(start, steps):
            batch = batches(step)
            n_img = len(next(iter(batch.values())))
            state, loss, aux = train_step(state, batch)
            pending.append((step, loss, aux))
            done = step + 1
            want_val = validate is not None and val_every and done % val_every == 0 and done < steps
            want_ckpt = ckpt is not None and done % ckpt_every == 0 and done < steps
            if len(pending) >= 20 or want_val or want_ckpt:
                flush(n_img)
            if want_val:
                run_validation(done)
            if want_ckpt:
                save_checkpoint(ckpt, state, done, history)
            if want_val or want_ckpt:
                clock["t0"] = time.perf_counter()  # validation and saving do not count as training time
    except KeyboardInterrupt:
        if ckpt is not None:  # `state` is the result of the last finished step
            flush(n_img)
            save_checkpoint(ckpt, state, done, history)
        bar.close()
        raise
    flush(n_img)
    bar.close()
    if validate is not None:
        run_validation(steps)
    nnx.update((model, opt), state)
    if ckpt is not None:
        save_checkpoint(ckpt, state, steps, history)
    return model, _as_arrays(history)


def _as_arrays(history: dict) -> dict:
    return {k: np.asarray(v) for k, v in history.items()}


def load_run(model: nnx.Module, ckpt_dir):
    """Load the model part of a run's checkpoint into `model` (any optimizer); returns (model, history, step)."""
    ckpt = Path(ckpt_dir) / CKPT_NAME
    if not ckpt.exists():
        raise FileNotFoundError(f"load_run: no checkpoint at {ckpt}")
    payload = _read(ckpt)
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, _unflat(nnx.to_pure_dict(state), payload["state"], prefix="[0]"))
    nnx.update(model, state)
    return model, _as_arrays({k: np.asarray(v).tolist() for k, v in payload["history"].items()}), int(payload["step"])


# ------------------------------------------------------------------ the book's single-person recipe (ch. 2, 3)
def synthetic_single(num: int, seed: int, size: int = 64) -> dict:
    """`posekit.synth.render_single(num, seed, size)`, cached as an .npz under `cache_dir("data")`."""
    from posekit import synth
    from posekit.book import cache_dir

    path = cache_dir("data") / f"single-{num}-{seed}-{size}.npz"
    if path.exists():
        with np.load(path) as f:
            return dict(f)
    data = synth.render_single(num, seed, size)
    import io

    buf = io.BytesIO()
    np.savez(buf, **data)
    atomic_write_bytes(path, buf.getvalue())
    return data


def flip_batches(data: dict, batch_size: int, seed: int, flip: bool = True):
    """`batches(step)` over a fixed set: random images (with replacement) and random horizontal flips.

    data: "images" (N, S, S, 3) uint8, "keypoints" (N, J, 3) COCO order. Returns dict images (B, S, S, 3)
    float32 in [0, 1] and kpts (B, J, 3); a flip mirrors the image and swaps left/right joints.
    """
    from posekit.crop import flip_keypoints
    from posekit.skeleton import COCO

    images, kpts = data["images"], data["keypoints"]
    width = images.shape[2]

    def batches(step):
        rng = step_rng(seed, step)
        idx = rng.integers(0, len(images), batch_size)
        x, k = images[idx], kpts[idx]
        if flip:
            f = rng.random(batch_size) < 0.5
            x = np.where(f[:, None, None, None], x[:, :, ::-1], x)
            k = np.where(f[:, None, None], flip_keypoints(k, width, COCO), k)
        return {"images": x.astype(np.float32) / 255.0, "kpts": k.astype(np.float32)}

    return batches


def heatmap_loss_fn(input_size: int, heatmap_size: int, sigma: float = 1.0, kind: str = "mse"):
    """`loss_fn(model, batch)` for heatmap models: Gaussian targets made inside the jitted step.

    kind: "mse" (`heatmap_loss`, SimpleBaseline's) or "ce" (`heatmap_ce_loss`, a spatial softmax).
    """
    from posekit import codecs

    if kind not in HEATMAP_LOSSES:
        raise ValueError(f"heatmap loss kind must be one of {list(HEATMAP_LOSSES)}, got {kind!r}")
    f = HEATMAP_LOSSES[kind]

    def loss_fn(model, batch):
        target, weights = codecs.heatmap_targets(
            batch["kpts"], (input_size, input_size), (heatmap_size, heatmap_size), sigma
        )
        return f(model(batch["images"], train=True), target, weights), {}

    return loss_fn


def regression_loss_fn(input_size: int, kind: str = "l1"):
    """`loss_fn(model, batch)` for regression models: normalized targets (`codecs.regression_targets`)."""
    from posekit import codecs

    def loss_fn(model, batch):
        target, weights = codecs.regression_targets(batch["kpts"], (input_size, input_size))
        return regression_loss(model(batch["images"], train=True), target, weights, kind), {}

    return loss_fn


def predict_keypoints(
    model, images, *, decoder: str = "argmax", flip_test: bool = False, logits: bool = False, batch_size: int = 256
):
    """Keypoints (N, J, 2) in input pixels from a heatmap model (output (B, h, w, J)) or a regression model.

    images: (N, S, S, 3) uint8 or float in [0, 1]. decoder: "argmax" or "dark" (heatmaps only).
    flip_test: average the heatmaps (or coordinates) of the image and of its mirror image, flipped back.
    logits: the model's maps are spatial logits (trained with `heatmap_ce_loss`); they are turned into
      probabilities (a softmax over each map) before decoding, as DARK needs positive, peaked maps.
    """
    from posekit import codecs
    from posekit.skeleton import COCO

    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    size = (x.shape[2], x.shape[1])
    out = predict(model, x, batch_size)
    if out.ndim == 3:  # regression: (N, J, 2) normalized coordinates
        if flip_test:
            fl = predict(model, x[:, :, ::-1], batch_size)[:, COCO.flip_permutation()]
            fl[..., 0] = 1.0 - fl[..., 0]  # t = (x + 0.5) / W mirrors to 1 − t
            out = 0.5 * (out + fl)
        return np.asarray(codecs.decode_regression(out, size))
    hm = np.transpose(out, (0, 3, 1, 2))  # (N, h, w, J) → (N, J, h, w)
    if flip_test:
        hm_f = np.transpose(predict(model, x[:, :, ::-1], batch_size), (0, 3, 1, 2))
        hm = 0.5 * (hm + np.asarray(codecs.flip_back(hm_f, COCO)))
    if logits:
        hm = spatial_softmax(hm)
    if decoder == "argmax":
        coords, _ = codecs.decode_argmax(hm)
    elif decoder == "dark":
        coords, _ = codecs.decode_dark(hm)
    else:
        raise ValueError(f"decoder must be 'argmax' or 'dark', got {decoder!r}")
    return np.asarray(codecs.heatmap_to_input(coords, size, (hm.shape[3], hm.shape[2])))


def spatial_softmax(heatmaps) -> np.ndarray:
    """Softmax over the (h, w) cells of each map: (N, J, h, w) logits → probabilities summing to 1 per map."""
    hm = np.asarray(heatmaps, np.float64)
    e = np.exp(hm - hm.max(axis=(-2, -1), keepdims=True))
    return (e / e.sum(axis=(-2, -1), keepdims=True)).astype(np.float32)


def pck_bbox(pred, data: dict, thr: float = 0.1) -> float:
    """Mean PCK@thr with the bbox size max(w, h) as normalizer (`posekit.metrics.pck`)."""
    from posekit import metrics

    return float(metrics.pck(pred, data["keypoints"], metrics.bbox_size(data["bboxes"]), thr)["mean"])


def build_model(kind: str, variant: str = "tiny", num_joints: int = 17, seed: int = 0, **kwargs):
    """A model by family name: "regression" (RegressionPose), "simplebaseline" (SimpleBaseline), "hrnet" (HRNet)."""
    from posekit.models import HRNet, RegressionPose, SimpleBaseline

    classes = {"regression": RegressionPose, "simplebaseline": SimpleBaseline, "hrnet": HRNet}
    if kind not in classes:
        raise ValueError(f"kind must be one of {list(classes)}, got {kind!r}")
    return classes[kind](variant, num_joints, rngs=nnx.Rngs(seed), **kwargs)


def single_person_run(
    kind: str,
    variant: str = "tiny",
    *,
    steps: int,
    train_size: int,
    val: dict | None = None,
    seed: int = 0,
    size: int = 64,
    sigma: float = 1.0,
    loss: str = "ce",
    lr: float = 6e-3,
    batch_size: int = 32,
    progress: bool = True,
    **model_kwargs,
):
    """Train (or load, if a finished run with the same config exists) one model of chapters 2-3.

    Data: `synthetic_single(train_size, seed, size)` with random flips. Heatmap models: Gaussian targets of
    std `sigma` (heatmap px) at the model's output stride, `loss` "ce" (`heatmap_ce_loss`, the default: it
    learns several times faster on a CPU budget) or "mse" (`heatmap_loss`). Regression models: L1 on
    normalized coordinates (`loss` and `sigma` are ignored). Adam, warmup-cosine schedule peaking at `lr`.
    `val`: a dataset (as `synthetic_single` returns) scored with PCK@0.1 (bbox) 6 times during training.
    Returns (model, history); the run lives in `run_dir(f"single-{kind}", config)`.
    """
    heat = kind != "regression"
    cfg = dict(kind=kind, variant=variant, steps=steps, train_size=train_size, seed=seed, size=size, lr=lr,
               batch_size=batch_size, **model_kwargs)  # fmt: skip
    cfg["sigma"], cfg["loss"] = (sigma, loss) if heat else (None, "l1")
    if val is not None:
        cfg["val"] = [int(len(val["images"])), float(val["keypoints"].sum())]
    data = synthetic_single(train_size, seed, size)
    model = build_model(kind, variant, seed=seed, **model_kwargs)
    if heat:
        loss_fn = heatmap_loss_fn(size, size // model.output_stride, sigma, loss)
    else:
        loss_fn = regression_loss_fn(size)

    def validate(m, step):
        return {"pck": pck_bbox(predict_keypoints(m, val["images"], logits=heat and loss == "ce"), val)}

    return fit(
        model, loss_fn, flip_batches(data, batch_size, seed), steps, lr=lr,
        ckpt_dir=run_dir(f"single-{kind}", cfg), ckpt_every=max(steps // 4, 50),
        validate=validate if val is not None else None, val_every=max(steps // 6, 1),
        progress=progress, desc=f"{kind}-{variant}",
    )  # fmt: skip
