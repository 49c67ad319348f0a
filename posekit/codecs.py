"""Heatmap and regression targets, and decoding them back to coordinates.

Grid convention (used by every function here and by `posekit.crop`):

* Integer coordinates are pixel centres: input pixel column ``i`` has its centre at ``x = i`` and
  covers ``[i - 0.5, i + 0.5]``; an input of width ``W`` spans ``[-0.5, W - 0.5]``.
* A heatmap of width ``w`` for an input of width ``W`` has stride ``s = W / w``. Heatmap cell ``u``
  covers the ``s`` input pixels under it, so its centre sits at

      x = (u + 0.5) * s - 0.5          u = (x + 0.5) / s - 0.5

  (and the same for y with ``H / h``). Both grids span the same extent: ``u = -0.5`` is ``x = -0.5``.
  This is exact under a horizontal flip (``x -> W - 1 - x`` maps to ``u -> w - 1 - u``), so flipped
  heatmaps need no 1-pixel correction (see `flip_back`).
* Regression targets normalize the same extent to ``[0, 1]``: ``t = (x + 0.5) / W``.

Codecs:

* `heatmap_targets`: a Gaussian of std ``sigma`` (heatmap pixels), peak 1 at the sub-pixel keypoint
  position (UDP-style unbiased centre, Huang et al. CVPR 2020; not truncated), as in SimpleBaseline
  (Xiao et al. ECCV 2018). Written once for numpy and jax.numpy: it runs on numpy batches and inside a
  jitted train step.
* `decode_argmax`: argmax, then a quarter-pixel shift toward the higher neighbour (the MSRA decoder).
* `decode_dark`: DARK (Zhang et al. CVPR 2020): blur, log, second-order Taylor expansion at the argmax.
* `soft_argmax`: integral regression (Sun et al. ECCV 2018): the expected coordinate under a softmax.
* `regression_targets` / `decode_regression`: normalized coordinates for DeepPose-style regression.
* `flip_back`: undo a horizontal flip on heatmaps for flip testing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from posekit.skeleton import KeypointSet

# A keypoint's Gaussian counts as on the map when its 3-sigma square reaches a cell centre.
GAUSSIAN_RADIUS = 3.0


def _xp(*arrays):
    """jax.numpy when any input is a jax array (or a tracer inside jit), numpy otherwise."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _check_size(name: str, size) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height), found {size!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"{name} must be positive (width, height), found {size!r}")
    return w, h


def _check_last(name: str, array, sizes: tuple[int, ...]) -> None:
    if array.ndim < 1 or array.shape[-1] not in sizes:
        raise ValueError(f"{name} must have shape (..., {'|'.join(map(str, sizes))}), found {tuple(array.shape)}")


def _check_heatmaps(heatmaps) -> None:
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must have shape (N, J, h, w), found {tuple(heatmaps.shape)}")


def input_hw(size) -> tuple[int, int]:
    """A model input size given as S (square) or (H, W) → (H, W), checked (models, data and recipes)."""
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
    if len(hw) != 2 or min(hw) < 16:
        raise ValueError(f"size: expected an int S or (H, W), each >= 16, found {size!r}")
    return hw


def input_to_heatmap(coords, input_size, heatmap_size):
    """Input pixel coordinates -> heatmap cell coordinates: ``u = (x + 0.5) * w / W - 0.5``.

    coords: (..., 2) or (..., 3); columns beyond x, y are returned unchanged.
    input_size, heatmap_size: (width, height).
    """
    return _regrid(coords, _check_size("input_size", input_size), _check_size("heatmap_size", heatmap_size))


def heatmap_to_input(coords, input_size, heatmap_size):
    """Heatmap cell coordinates -> input pixel coordinates: ``x = (u + 0.5) * W / w - 0.5``.

    coords: (..., 2) or (..., 3); columns beyond x, y are returned unchanged.
    input_size, heatmap_size: (width, height).

    Used in chapter 3.
    """
    return _regrid(coords, _check_size("heatmap_size", heatmap_size), _check_size("input_size", input_size))


def _regrid(coords, src_size, dst_size):
    xp = _xp(coords)
    coords = xp.asarray(coords)
    _check_last("coords", coords, (2, 3))
    ratio = xp.asarray([dst_size[0] / src_size[0], dst_size[1] / src_size[1]], dtype=coords.dtype)
    if not xp.issubdtype(coords.dtype, xp.floating):
        coords = coords.astype(np.float32)
        ratio = ratio.astype(np.float32)
    xy = (coords[..., :2] + 0.5) * ratio - 0.5
    return xp.concatenate([xy, coords[..., 2:]], axis=-1)


def heatmap_targets(kpts, input_size, heatmap_size, sigma: float = 1.0):
    """Gaussian heatmap targets and per-keypoint loss weights (SimpleBaseline/MSRA, unbiased centre).

    kpts: (N, J, 3) [x, y, v] in input pixels. input_size, heatmap_size: (width, height); pass them as
    static arguments under ``jax.jit``. sigma: Gaussian std in heatmap pixels.

    Returns heatmaps (N, J, h, w) float32 with ``exp(-((u - mu_x)^2 + (v - mu_y)^2) / (2 sigma^2))``, where
    ``mu = input_to_heatmap(x, y)``, and weights (N, J) float32: 1, or 0 when ``v == 0`` or when the
    3-sigma square around ``mu`` contains no cell centre (the Gaussian is off the map). A weight-0
    keypoint gets an all-zero map. numpy in -> numpy out; jax in (or traced) -> jax out.

    Used in chapter 3.
    """
    xp = _xp(kpts)
    kpts = xp.asarray(kpts)
    if kpts.ndim != 3 or kpts.shape[-1] != 3:
        raise ValueError(f"kpts must have shape (N, J, 3), found {tuple(kpts.shape)}")
    w, h = _check_size("heatmap_size", heatmap_size)
    kpts = kpts.astype(np.float32)
    mu = input_to_heatmap(kpts[..., :2], input_size, heatmap_size)  # (N, J, 2)
    mx, my = mu[..., 0], mu[..., 1]
    reach = GAUSSIAN_RADIUS * sigma
    on_map = (mx >= -reach) & (mx <= w - 1 + reach) & (my >= -reach) & (my <= h - 1 + reach)
    weights = ((kpts[..., 2] > 0) & on_map).astype(np.float32)
    us = xp.arange(w, dtype=np.float32)
    vs = xp.arange(h, dtype=np.float32)
    # Separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2).
    gx = xp.exp(-((us - mx[..., None]) ** 2) / (2.0 * sigma**2))  # (N, J, w)
    gy = xp.exp(-((vs - my[..., None]) ** 2) / (2.0 * sigma**2))  # (N, J, h)
    heatmaps = gy[..., :, None] * gx[..., None, :] * weights[..., None, None]
    return heatmaps.astype(np.float32), weights


def multi_person_targets(kpts, input_size, heatmap_size, sigma: float = 2.0, max_people: int = 30):
    """Bottom-up targets of one image: every person's Gaussians on one map per joint, and the joints' cells.

    kpts: (P, J, 3) [x, y, v] in input pixels (all people of the image). Returns heatmaps (J, h, w) float32, the
    maximum over people of `heatmap_targets` (as Associative Embedding and HigherHRNet draw them), and joints
    (max_people, J, 3) float32: each person's cell (x, y rounded to the nearest cell centre) and a weight, 1
    for a labelled joint whose cell is on the map, else 0 (people beyond `max_people` are dropped; rows after
    the last person are zero), the input of `posekit.losses.ae_loss`. Used in chapter 5.
    """
    kpts = np.asarray(kpts, np.float32)
    if kpts.ndim != 3 or kpts.shape[-1] != 3:
        raise ValueError(f"multi_person_targets: kpts must have shape (P, J, 3), found {kpts.shape}")
    J = kpts.shape[1]
    w, h = _check_size("heatmap_size", heatmap_size)
    kpts = kpts[:max_people]
    if len(kpts):
        maps, _ = heatmap_targets(kpts, input_size, heatmap_size, sigma)
        heat = maps.max(0)
    else:
        heat = np.zeros((J, h, w), np.float32)
    cells = np.floor(np.asarray(input_to_heatmap(kpts[..., :2], input_size, heatmap_size)) + 0.5)
    on = (cells[..., 0] >= 0) & (cells[..., 0] < w) & (cells[..., 1] >= 0) & (cells[..., 1] < h)
    joints = np.zeros((max_people, J, 3), np.float32)
    joints[: len(kpts), :, :2] = np.where(on[..., None], cells, 0)
    joints[: len(kpts), :, 2] = (kpts[..., 2] > 0) & on
    return heat.astype(np.float32), joints


def _shift_toward_neighbour(heatmaps: np.ndarray, ys: np.ndarray, xs: np.ndarray, shift: float):
    """Offsets (N, J, 2) of ``shift`` toward the higher neighbour on each axis; 0 on border cells."""
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n * j, h, w)
    r = np.arange(n * j)
    y, x = ys.reshape(-1), xs.reshape(-1)
    xi = (x > 0) & (x < w - 1)
    yi = (y > 0) & (y < h - 1)
    dx = flat[r, y, np.minimum(x + 1, w - 1)] - flat[r, y, np.maximum(x - 1, 0)]
    dy = flat[r, np.minimum(y + 1, h - 1), x] - flat[r, np.maximum(y - 1, 0), x]
    off = np.stack([np.sign(dx) * xi, np.sign(dy) * yi], axis=-1) * shift
    return off.reshape(n, j, 2)


def _argmax(heatmaps: np.ndarray):
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, h * w)
    idx = flat.argmax(axis=-1)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    return idx // w, idx % w, maxvals


def decode_argmax(heatmaps, shift: float = 0.25):
    """Argmax decoding with a sub-pixel shift toward the higher neighbour (MSRA/SimpleBaseline).

    heatmaps: (N, J, h, w). Returns coords (N, J, 2) [u, v] in heatmap pixels and maxvals (N, J).
    On each axis the argmax moves by ``shift * sign(f(x+1) - f(x-1))``; cells on the map border have
    one neighbour only and are not shifted. Error for an exact Gaussian target: at most 0.25 heatmap px
    per axis at interior cells, at most 0.5 at border cells (measured in tests/test_codecs.py).

    Used in chapter 3.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    _check_heatmaps(heatmaps)
    ys, xs, maxvals = _argmax(heatmaps)
    coords = np.stack([xs, ys], axis=-1).astype(np.float32)
    if shift:
        coords += _shift_toward_neighbour(heatmaps, ys, xs, shift)
    return coords, maxvals


def dark_blur_sigma(kernel: int) -> float:
    """Std of the Gaussian blur used by DARK for an odd ``kernel`` size (OpenCV's rule for sigma = 0)."""
    if kernel < 3 or kernel % 2 == 0:
        raise ValueError(f"kernel must be an odd integer >= 3, found {kernel!r}")
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def _blur(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian blur over (h, w) with zero padding, rescaled to keep each map's maximum (as DARK does)."""
    sigma = dark_blur_sigma(kernel)
    r = (kernel - 1) // 2
    k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).astype(np.float32)
    out = ndimage.convolve1d(heatmaps, k, axis=-1, mode="constant")
    out = ndimage.convolve1d(out, k, axis=-2, mode="constant")
    peak_in = heatmaps.max(axis=(-2, -1), keepdims=True)
    peak_out = out.max(axis=(-2, -1), keepdims=True)
    return out * np.where(peak_out > 0, peak_in / np.maximum(peak_out, 1e-12), 0.0)


def decode_dark(heatmaps, kernel: int = 11, border: int = 3):
    """DARK decoding (Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020).

    heatmaps: (N, J, h, w). Returns coords (N, J, 2) heatmap px and maxvals (N, J) (of the input maps).

    Steps: blur each map with a Gaussian (std from ``kernel``, `dark_blur_sigma`, zero padding), take
    ``L = log(max(blurred, 1e-10))``, and at the argmax ``m`` refine by a second-order Taylor expansion:
    ``offset = -H^{-1} grad L(m)`` with central differences. A Gaussian's log is exactly quadratic, so
    the refinement is exact for an unblurred, untruncated Gaussian. Falls back to `decode_argmax`
    (quarter shift) where the argmax is on the border ring, the Hessian is not negative definite, or the
    offset exceeds 1 px on either axis.

    border: argmax cells closer than this many cells to the map edge also fall back. The zero-padded
    blur flattens a peak cut by the edge and biases the Taylor step inward; measured for exact targets
    with sigma = 2 and kernel 11 (tests/test_codecs.py), the DARK error per axis is 0.82 px at the second
    cell from the edge, 0.37 at the third, 0.11 at the fourth and < 0.05 from the fifth on, against
    <= 0.25 px for the quarter shift. Use ``border=1`` for plain DARK (mmpose's choice).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    _check_heatmaps(heatmaps)
    n, j, h, w = heatmaps.shape
    fallback, maxvals = decode_argmax(heatmaps)
    ys, xs, _ = _argmax(heatmaps)
    if border < 1:
        raise ValueError(f"border must be >= 1 (central differences need both neighbours), found {border!r}")
    if h < 3 or w < 3:
        return fallback, maxvals
    logs = np.log(np.maximum(_blur(heatmaps, kernel), 1e-10)).astype(np.float64)
    flat = logs.reshape(n * j, h, w)
    r = np.arange(n * j)
    y = np.clip(ys.reshape(-1), 1, h - 2)
    x = np.clip(xs.reshape(-1), 1, w - 2)

    def f(dy, dx):
        return flat[r, y + dy, x + dx]

    gx = 0.5 * (f(0, 1) - f(0, -1))
    gy = 0.5 * (f(1, 0) - f(-1, 0))
    hxx = f(0, 1) - 2 * f(0, 0) + f(0, -1)
    hyy = f(1, 0) - 2 * f(0, 0) + f(-1, 0)
    hxy = 0.25 * (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1))
    det = hxx * hyy - hxy**2
    ok = (hxx < 0) & (det > 0)
    safe = np.where(ok, det, 1.0)
    # offset = -H^{-1} g with H^{-1} = [[hyy, -hxy], [-hxy, hxx]] / det.
    ox = -(hyy * gx - hxy * gy) / safe
    oy = -(-hxy * gx + hxx * gy) / safe
    y0, x0 = ys.reshape(-1), xs.reshape(-1)
    interior = (y0 >= border) & (y0 <= h - 1 - border) & (x0 >= border) & (x0 <= w - 1 - border)
    ok &= interior & (np.abs(ox) <= 1) & (np.abs(oy) <= 1)
    refined = np.stack([x + ox, y + oy], axis=-1).astype(np.float32).reshape(n, j, 2)
    return np.where(ok.reshape(n, j, 1), refined, fallback), maxvals


DECODERS = ("argmax", "dark")


def decode_heatmaps(heatmaps, decoder: str = "argmax", sigma: float = 1.0):
    """(N, J, h, w) heatmaps → (coords (N, J, 2) in heatmap pixels, maxvals (N, J)) by `decoder`: "argmax"
    (`decode_argmax`, the quarter-cell shift) or "dark" (`decode_dark`, its blur sized from the targets' std
    `sigma` by `dark_kernel`, as the DARK paper does)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if decoder == "argmax":
        return decode_argmax(heatmaps)
    return decode_dark(heatmaps, kernel=dark_kernel(sigma))


def soft_argmax(heatmaps, beta: float = 1.0):
    """Integral regression (Sun et al., "Integral Human Pose Regression", ECCV 2018).

    heatmaps: (N, J, h, w) logits. Returns coords (N, J, 2) in heatmap px: the expected (u, v) under
    ``softmax(beta * heatmaps)`` over each map. Differentiable; numpy in -> numpy out, jax in -> jax out.
    """
    xp = _xp(heatmaps)
    heatmaps = xp.asarray(heatmaps)
    _check_heatmaps(heatmaps)
    n, j, h, w = heatmaps.shape
    logits = beta * heatmaps.reshape(n, j, h * w).astype(np.float32)
    logits = logits - logits.max(axis=-1, keepdims=True)
    p = xp.exp(logits)
    p = (p / p.sum(axis=-1, keepdims=True)).reshape(n, j, h, w)
    u = (p.sum(axis=-2) * xp.arange(w, dtype=np.float32)).sum(axis=-1)
    v = (p.sum(axis=-1) * xp.arange(h, dtype=np.float32)).sum(axis=-1)
    return xp.stack([u, v], axis=-1)


def regression_targets(kpts, input_size):
    """Normalized regression targets ``t = (x + 0.5) / W`` (DeepPose-style) and weights.

    kpts: (N, J, 3) input pixels. Returns targets (N, J, 2) (0 and 1 are the crop's outer edges) and
    weights (N, J) float32: 1 when ``v > 0`` and the keypoint lies inside the crop, else 0.

    Used in chapter 2.
    """
    xp = _xp(kpts)
    kpts = xp.asarray(kpts)
    if kpts.ndim != 3 or kpts.shape[-1] != 3:
        raise ValueError(f"kpts must have shape (N, J, 3), found {tuple(kpts.shape)}")
    W, H = _check_size("input_size", input_size)
    size = xp.asarray([W, H], dtype=np.float32)
    t = (kpts[..., :2].astype(np.float32) + 0.5) / size
    inside = ((t >= 0) & (t <= 1)).all(axis=-1)
    return t, ((kpts[..., 2] > 0) & inside).astype(np.float32)


def decode_regression(pred, input_size):
    """Normalized predictions (N, J, 2) -> input pixels: ``x = t * W - 0.5`` (inverse of `regression_targets`)."""
    xp = _xp(pred)
    pred = xp.asarray(pred)
    _check_last("pred", pred, (2,))
    W, H = _check_size("input_size", input_size)
    return pred.astype(np.float32) * xp.asarray([W, H], dtype=np.float32) - 0.5


def simcc_targets(kpts, input_size, split: float = 2.0, sigma: float = 1.0):
    """SimCC targets (Li et al., "SimCC: a Simple Coordinate Classification Perspective", ECCV 2022).

    Each axis of the input is cut into bins of 1/`split` pixel: W·k bins for x, H·k for y (k = split).
    Bin i covers normalized coordinates t ∈ [i / (W·k), (i + 1) / (W·k)), so its centre is the input pixel
    x = (i + ½) / k − ½ (the convention of `regression_targets`: a mirror image maps bin i to W·k − 1 − i
    exactly). The target of a joint is a Gaussian over the bins ("label smoothing"), std `sigma` input
    pixels (sigma·k bins), normalized to sum to 1.

    kpts: (N, J, 3) input pixels. Returns target_x (N, J, W·k), target_y (N, J, H·k) and weights (N, J)
    (those of `regression_targets`: 0 for unlabelled joints and joints outside the crop).
    numpy in -> numpy out, jax in -> jax out. Used in chapter 3.
    """
    xp = _xp(kpts)
    if split < 1:
        raise ValueError(f"simcc_targets: split must be >= 1, found {split!r}")
    if sigma <= 0:
        raise ValueError(f"simcc_targets: sigma must be > 0, found {sigma!r}")
    t, weights = regression_targets(kpts, input_size)
    W, H = _check_size("input_size", input_size)
    out = []
    for axis, n in ((0, int(round(W * split))), (1, int(round(H * split)))):
        centre = t[..., axis : axis + 1] * n - 0.5  # (N, J, 1) in bins
        bins = xp.arange(n, dtype=np.float32)
        g = xp.exp(-((bins - centre) ** 2) / (2 * (sigma * split) ** 2))
        out.append(g / xp.maximum(g.sum(-1, keepdims=True), 1e-12))
    return out[0], out[1], weights


def decode_simcc(prob_x, prob_y, split: float = 2.0):
    """SimCC vectors → input pixels (N, J, 2): the argmax bin of each axis, at its centre (see `simcc_targets`).

    prob_x: (N, J, W·k), prob_y: (N, J, H·k): logits or probabilities (the argmax is the same).
    Returns (coords, maxvals): maxvals (N, J) is the smaller of the two axes' maxima.
    """
    prob_x, prob_y = np.asarray(prob_x), np.asarray(prob_y)
    if prob_x.ndim != 3 or prob_y.ndim != 3 or prob_x.shape[:2] != prob_y.shape[:2]:
        raise ValueError(f"decode_simcc: expected (N, J, W·k) and (N, J, H·k), found {prob_x.shape}, {prob_y.shape}")
    x = (np.argmax(prob_x, axis=-1) + 0.5) / split - 0.5
    y = (np.argmax(prob_y, axis=-1) + 0.5) / split - 0.5
    maxvals = np.minimum(prob_x.max(-1), prob_y.max(-1))
    return np.stack([x, y], axis=-1).astype(np.float32), maxvals


def dark_kernel(sigma: float) -> int:
    """The DARK blur kernel for heatmaps made with Gaussian std `sigma` (heatmap pixels): the odd size 6σ − 1.

    The DARK paper's code and mmpose blur σ = 2 maps with an 11×11 kernel and σ = 3 maps with 17×17; this is
    that rule, so a σ = 1 map (the book's 16×16 heatmaps) gets a 5×5 kernel, never less than 3.
    """
    if sigma <= 0:
        raise ValueError(f"dark_kernel: sigma must be > 0, found {sigma!r}")
    k = max(3, int(round(6 * sigma - 1)))
    return k if k % 2 else k + 1


def flip_back(heatmaps, kset: KeypointSet, shift: bool = False):
    """Heatmaps of a horizontally flipped input, mapped back to the original frame.

    heatmaps: (N, J, h, w). Flips the last axis and swaps left/right channels (``kset.flip_pairs``). Flip
    test: average ``flip_back(model(flip(image)))`` with ``model(image)``.

    shift: also move the flipped maps 1 px to the right (copying column 0), as SimpleBaseline does. Its
    grid maps x to ``x / stride`` and flips images as ``x -> W - x``, which misaligns flipped maps by about
    a pixel. Under this module's convention (``x -> W - 1 - x`` is exactly ``u -> w - 1 - u``) the plain
    flip is exact and ``shift=True`` adds a 1 px bias; it exists to reproduce the paper's recipe.
    """
    xp = _xp(heatmaps)
    heatmaps = xp.asarray(heatmaps)
    _check_heatmaps(heatmaps)
    if heatmaps.shape[1] != kset.num_joints:
        raise ValueError(f"heatmaps have {heatmaps.shape[1]} channels, {kset.name} has {kset.num_joints} joints")
    out = xp.flip(heatmaps, axis=-1)[:, kset.flip_permutation()]
    if shift:
        out = xp.concatenate([out[..., :1], out[..., :-1]], axis=-1)
    return out
