"""Inference: batched prediction, the flip test and decoding a model's output to input-pixel keypoints.

    out = predict(model, images)              # a PoseOutput of numpy arrays
    kpts = predict_keypoints(model, images)   # (N, J, 2) in input pixels, whatever the model returns

The model's `PoseOutput` says what it returned (coordinates, or heatmaps that are logits or Gaussian maps);
`predict_keypoints` reads it, so a caller never says what kind of model it holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from posekit import codecs
from posekit.models.output import PoseOutput
from posekit.skeleton import COCO, KeypointSet

_COMPILED: dict = {}  # (graphdef, kwargs) → jitted forward pass: one compilation per model structure

DECODERS = ("argmax", "dark")


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


def predict(model: nnx.Module, images, batch_size: int = 256, **kwargs) -> PoseOutput:
    """Run `model(x, train=False, **kwargs)` over float `images` (N, H, W, 3) in batches. Used in chapter 3.

    Returns the model's PoseOutput with numpy arrays (the last batch is padded to one compiled shape).
    """
    f, state = _forward(model, kwargs)
    images = np.asarray(images)
    outs = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        n = len(chunk)
        if n < batch_size and len(images) > batch_size:  # pad the last chunk: one compiled shape
            chunk = np.concatenate([chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)])
        out = f(state, jnp.asarray(chunk, jnp.float32))
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


def flip_averaged(model: nnx.Module, x: np.ndarray, batch_size: int = 256, kset: KeypointSet = COCO) -> PoseOutput:
    """The average of the model's output on `x` and on its mirror image mapped back (left/right swapped).

    Heatmaps are averaged as the model returns them (logits average as logits), coordinates after mirroring
    t → 1 − t (t = (x + ½) / W, so a mirror image maps t to 1 − t exactly).
    """
    out = predict(model, x, batch_size)
    mirrored = predict(model, x[:, :, ::-1], batch_size)
    heatmaps = coords = None
    if out.heatmaps is not None:
        back = np.asarray(codecs.flip_back(np.transpose(mirrored.heatmaps, (0, 3, 1, 2)), kset))
        heatmaps = 0.5 * (out.heatmaps + np.transpose(back, (0, 2, 3, 1)))
    if out.coords is not None:
        fl = mirrored.coords[:, kset.flip_permutation()].copy()
        fl[..., 0] = 1.0 - fl[..., 0]
        coords = 0.5 * (out.coords + fl)
    return out.replace(heatmaps=heatmaps, coords=coords)


def predict_keypoints(model, images, *, decoder: str = "argmax", flip_test: bool = False, batch_size: int = 256,
                      kset: KeypointSet = COCO):  # fmt: skip
    """Keypoints (N, J, 2) in input pixels from any model of the book. Used in chapters 2 and 3.

    images: (N, S, S, 3) uint8 or float in [0, 1]. decoder: "argmax" or "dark" (heatmaps only; logit maps
    are turned into probabilities first, as DARK needs positive, peaked maps). flip_test: average with the
    mirror image (`flip_averaged`, left/right pairs of `kset`). A model returning coordinates is decoded
    with `codecs.decode_regression`.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    x = as_float_images(images)
    size = (x.shape[2], x.shape[1])
    out = flip_averaged(model, x, batch_size, kset) if flip_test else predict(model, x, batch_size)
    if out.heatmaps is None:
        return np.asarray(codecs.decode_regression(out.coords, size))
    hm = heatmaps_for_decoding(out)
    decode = codecs.decode_argmax if decoder == "argmax" else codecs.decode_dark
    coords, _ = decode(hm)
    return np.asarray(codecs.heatmap_to_input(coords, size, (hm.shape[3], hm.shape[2])))
