"""Inference: batched prediction, the flip test and decoding a model's output to input-pixel keypoints.

    out = predict(model, images)              # a PoseOutput of numpy arrays
    kpts = predict_keypoints(model, images)   # (N, J, 2) in input pixels, whatever the model returns

The model's `PoseOutput` says what it returned (coordinates, or heatmaps that are logits or Gaussian maps);
`predict_keypoints` reads it, so a caller never says what kind of model it holds.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from scipy.special import log_softmax

from posekit import codecs, parallel
from posekit.models.output import PoseOutput
from posekit.skeleton import COCO, KeypointSet

_COMPILED: dict = {}  # (graphdef, kwargs) → jitted forward pass: one compilation per model structure

DECODERS = codecs.DECODERS


def _forward(model: nnx.Module, kwargs: dict):
    graphdef, state = nnx.split(model)
    key = (graphdef, tuple(sorted(kwargs.items())))
    if key not in _COMPILED:

        def f(state, x):
            return nnx.merge(graphdef, state)(x, train=False, **kwargs)

        _COMPILED[key] = jax.jit(f)
    return _COMPILED[key], state


def as_float_images(images) -> np.ndarray:
    """(N, H, W, 3) uint8 in [0, 255] or float in [0, 1] → float32 in [0, 1]."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images: expected shape (N, H, W, 3), found {x.shape}")
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def predict(model: nnx.Module, images, batch_size: int = 256, mesh=None, **kwargs) -> PoseOutput:
    """Run `model(x, train=False, **kwargs)` over float `images` (N, H, W, 3) in batches. Used in chapter 3.

    Returns the model's PoseOutput with numpy arrays. Batches are padded to `batch_size` (or, for fewer
    images, to the next power of two), so that calls with any number of images share a few compiled shapes.
    Like training, each batch is split over every device (`posekit.parallel`; the padding rounds it up to a
    multiple of the device count) with the model replicated; `mesh` picks other devices.
    """
    f, state = _forward(model, kwargs)
    mesh = parallel.data_mesh() if mesh is None else mesh
    state = parallel.replicate(state, mesh)
    n_dev = mesh.devices.size
    images = np.asarray(images)
    outs = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        n = len(chunk)
        size = batch_size if len(images) > batch_size else min(batch_size, 1 << max(n - 1, 0).bit_length())
        size = -(-size // n_dev) * n_dev
        if n < size:  # pad to a few compiled shapes: the batch size, or a power of two below it
            chunk = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), chunk.dtype)])
        x = jax.device_put(chunk.astype(np.float32), parallel.batch_sharding(mesh))
        out = f(state, x)
        outs.append(jax.tree.map(lambda a, n=n: np.asarray(a)[:n], out))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outs)


def spatial_softmax(heatmaps) -> np.ndarray:
    """Softmax over the (h, w) cells of each map: (N, J, h, w) logits → probabilities summing to 1 per map."""
    hm = np.asarray(heatmaps, np.float64)
    e = np.exp(hm - hm.max(axis=(-2, -1), keepdims=True))
    return (e / e.sum(axis=(-2, -1), keepdims=True)).astype(np.float32)


def heatmaps_for_decoding(out: PoseOutput) -> np.ndarray:
    """A heatmap model's maps as (N, J, h, w), positive and peaked as the decoders need them.

    Logit maps become probabilities (a spatial softmax); Gaussian maps are used as they are. Used in chapter 3.
    """
    if out.heatmaps is None:
        raise ValueError("heatmaps_for_decoding: the output has no heatmaps (a coordinate model)")
    hm = np.transpose(np.asarray(out.heatmaps), (0, 3, 1, 2))  # (N, h, w, J) → (N, J, h, w)
    return spatial_softmax(hm) if out.heatmap_kind == "logits" else hm


def _mean_of_probabilities(a, b, axis):
    """Logits whose softmax over `axis` is the mean of softmax(a) and softmax(b): log ½(p_a + p_b)."""
    la = log_softmax(np.asarray(a, np.float64), axis=axis)
    lb = log_softmax(np.asarray(b, np.float64), axis=axis)
    return (np.logaddexp(la, lb) - np.log(2)).astype(np.float32)


def flip_averaged(model: nnx.Module, x: np.ndarray, batch_size: int = 256, kset: KeypointSet = COCO) -> PoseOutput:
    """The average of the model's output on `x` and on its mirror image mapped back (left/right swapped).

    What is averaged is what the output means: probabilities for logit heatmaps and SimCC vectors (returned
    as the logits log ½(p + p′), so the output stays logits), Gaussian maps as they are, coordinates after
    mirroring t → 1 − t (t = (x + ½) / W, so a mirror image maps t to 1 − t exactly, SimCC bin i to
    W·k − 1 − i).
    """
    out = predict(model, x, batch_size)
    mirrored = predict(model, x[:, :, ::-1], batch_size)
    perm = kset.flip_permutation()
    new = {}
    if out.heatmaps is not None:
        back = np.transpose(np.asarray(codecs.flip_back(np.transpose(mirrored.heatmaps, (0, 3, 1, 2)), kset)),
                            (0, 2, 3, 1))  # fmt: skip
        if out.heatmap_kind == "logits":
            b, h, w, j = back.shape
            flat = _mean_of_probabilities(out.heatmaps.reshape(b, h * w, j), back.reshape(b, h * w, j), axis=1)
            new["heatmaps"] = flat.reshape(b, h, w, j)
        else:
            new["heatmaps"] = 0.5 * (out.heatmaps + back)
    if out.coords is not None:
        fl = mirrored.coords[:, perm].copy()
        fl[..., 0] = 1.0 - fl[..., 0]
        new["coords"] = 0.5 * (out.coords + fl)
    if out.simcc_x is not None:
        new["simcc_x"] = _mean_of_probabilities(out.simcc_x, mirrored.simcc_x[:, perm, ::-1], axis=-1)
        new["simcc_y"] = _mean_of_probabilities(out.simcc_y, mirrored.simcc_y[:, perm], axis=-1)
    return out.replace(**new)


def predict_keypoints(model, images, *, decoder: str = "argmax", flip_test: bool = False, batch_size: int = 256,
                      kset: KeypointSet = COCO, sigma: float = 1.0):  # fmt: skip
    """Keypoints (N, J, 2) in input pixels from any model of the book. Used in chapters 2 and 3.

    images: (N, S, S, 3) uint8 or float in [0, 1]. decoder: "argmax" or "dark" (heatmaps only; logit maps
    are turned into probabilities first, as DARK needs positive, peaked maps). flip_test: average with the
    mirror image (`flip_averaged`, left/right pairs of `kset`). What is decoded is what the model is trained
    on: SimCC vectors (`codecs.decode_simcc`), else coordinates (`codecs.decode_regression`; an integral
    model's coordinates, not its maps), else heatmaps. sigma: the std (heatmap pixels) the maps were trained
    with; DARK blurs with a kernel sized from it (`codecs.dark_kernel`), as the DARK paper does.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    x = as_float_images(images)
    size = (x.shape[2], x.shape[1])
    out = flip_averaged(model, x, batch_size, kset) if flip_test else predict(model, x, batch_size)
    if out.simcc_x is not None:
        return codecs.decode_simcc(out.simcc_x, out.simcc_y, out.simcc_split)[0]
    if out.coords is not None:
        return np.asarray(codecs.decode_regression(out.coords, size))
    hm = heatmaps_for_decoding(out)
    coords, _ = codecs.decode_heatmaps(hm, decoder, sigma)
    return np.asarray(codecs.heatmap_to_input(coords, size, (hm.shape[3], hm.shape[2])))
