"""The top-down crop pipeline: person box -> affine crop (with augmentation) -> and back.

Conventions (the same as `posekit.codecs`): integer coordinates are pixel centres, so an image of width
``W`` spans ``[-0.5, W - 0.5]``. A crop is described by a ``center`` (x, y) and a ``scale`` (w, h) in
image pixels: the (rotated) rectangle of that size around the centre is mapped onto the whole output
of size ``output_size = (W_out, H_out)``, its outer edges onto the output's outer edges:

    crop = S R (p - center) + ((W_out - 1) / 2, (H_out - 1) / 2),    S = diag(W_out / w, H_out / h)

with ``R = [[cos a, sin a], [-sin a, cos a]]`` so that a positive ``rotation_deg`` turns the person
counter-clockwise as displayed (y points down). A horizontal flip is part of the matrix: ``x -> W_out - 1 - x``
after the crop. Keypoints move with `transform_points`; the left/right joint labels are swapped
separately (`flip_keypoints`, `crop_batch`).

Affine matrices are (N, 2, 3) arrays ``[A | t]`` acting on column vectors ``[x, y, 1]``.
"""

from __future__ import annotations

import numpy as np

from posekit.codecs import _check_size
from posekit.skeleton import KeypointSet


def _check_matrices(matrices) -> np.ndarray:
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3):
        raise ValueError(f"matrices must have shape (N, 2, 3), found {matrices.shape}")
    return matrices


def box_to_center_scale(bboxes, aspect_ratio: float, padding: float = 1.25):
    """Person boxes -> crop centre and scale (SimpleBaseline's box handling, in pixels).

    bboxes: (N, 4) COCO [x, y, w, h]. aspect_ratio: width / height of the model input.
    The box is grown along one axis until ``w / h == aspect_ratio`` (it stays inside), then both sides
    are multiplied by ``padding``. Returns center (N, 2) = box centre ``(x + w / 2, y + h / 2)`` and
    scale (N, 2) [w, h].
    """
    bboxes = np.asarray(bboxes, dtype=np.float64)
    if bboxes.ndim != 2 or bboxes.shape[1] != 4:
        raise ValueError(f"bboxes must have shape (N, 4) [x, y, w, h], found {bboxes.shape}")
    if not aspect_ratio > 0:
        raise ValueError(f"aspect_ratio must be > 0 (input width / height), found {aspect_ratio!r}")
    x, y, w, h = bboxes.T
    center = np.stack([x + w / 2, y + h / 2], axis=-1)
    wider = w > aspect_ratio * h
    w2 = np.where(wider, w, h * aspect_ratio)
    h2 = np.where(wider, w / aspect_ratio, h)
    return center, np.stack([w2, h2], axis=-1) * padding


def affine_matrix(center, scale, rotation_deg, output_size, inverse: bool = False, flip=None):
    """Image -> crop affine matrices (N, 2, 3) (see the module docstring for the formula).

    center, scale: (N, 2) image pixels. rotation_deg: (N,) or scalar, counter-clockwise as displayed.
    output_size: (W_out, H_out). flip: optional (N,) bool, mirror the crop horizontally
    (``x -> W_out - 1 - x``). inverse: return the crop -> image matrices instead.
    """
    out_w, out_h = _check_size("output_size", output_size)
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if center.ndim != 2 or center.shape[1] != 2 or scale.shape != center.shape:
        raise ValueError(f"center and scale must both have shape (N, 2), found {center.shape} and {scale.shape}")
    if not np.all(scale > 0):
        raise ValueError(f"scale must be > 0, found min {scale.min() if scale.size else None}")
    n = len(center)
    a = np.deg2rad(np.broadcast_to(np.asarray(rotation_deg, dtype=np.float64), (n,)))
    cos, sin = np.cos(a), np.sin(a)
    sx, sy = out_w / scale[:, 0], out_h / scale[:, 1]
    mx = np.ones(n) if flip is None else np.where(np.broadcast_to(np.asarray(flip, dtype=bool), (n,)), -1.0, 1.0)
    # A = M S R, with M the optional mirror diag(-1, 1).
    A = np.empty((n, 2, 2))
    A[:, 0, 0], A[:, 0, 1] = mx * sx * cos, mx * sx * sin
    A[:, 1, 0], A[:, 1, 1] = -sy * sin, sy * cos
    half = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    t = half - np.einsum("nij,nj->ni", A, center)
    mats = np.concatenate([A, t[:, :, None]], axis=-1)
    return invert_affine(mats) if inverse else mats


def invert_affine(matrices) -> np.ndarray:
    """Inverse of (N, 2, 3) affine matrices: ``[A | t] -> [A^-1 | -A^-1 t]``."""
    matrices = _check_matrices(matrices)
    A_inv = np.linalg.inv(matrices[:, :, :2])
    t_inv = -np.einsum("nij,nj->ni", A_inv, matrices[:, :, 2])
    return np.concatenate([A_inv, t_inv[:, :, None]], axis=-1)


def transform_points(points, matrices) -> np.ndarray:
    """Apply per-row affine matrices to points: (N, J, 2|3) -> same shape; a v column is left untouched."""
    points = np.asarray(points)
    matrices = _check_matrices(matrices)
    if points.ndim != 3 or points.shape[-1] not in (2, 3) or len(points) != len(matrices):
        raise ValueError(f"points must have shape (N={len(matrices)}, J, 2|3), found {points.shape}")
    xy = np.einsum("nij,nkj->nki", matrices[:, :, :2], points[..., :2]) + matrices[:, None, :, 2]
    out = points.astype(np.result_type(points.dtype, np.float32), copy=True)
    out[..., :2] = xy
    return out


def _stack_images(images):
    """(N, H, W[, C]) array, or a list of N images of any sizes -> zero-padded stack and true sizes (N, 2)."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), found {images.shape}")
        n, h, w = images.shape[:3]
        return images, np.tile([w, h], (n, 1))
    images = [np.asarray(im) for im in images]
    if not images:
        raise ValueError("images is an empty list")
    ndims = {im.ndim for im in images}
    chans = {im.shape[2:] for im in images}
    if len(ndims) != 1 or ndims.pop() not in (2, 3) or len(chans) != 1:
        raise ValueError(f"images must all be (H, W) or all (H, W, C), found shapes {[im.shape for im in images]}")
    hmax = max(im.shape[0] for im in images)
    wmax = max(im.shape[1] for im in images)
    stack = np.zeros((len(images), hmax, wmax) + images[0].shape[2:], dtype=images[0].dtype)
    for i, im in enumerate(images):
        stack[i, : im.shape[0], : im.shape[1]] = im
    return stack, np.array([[im.shape[1], im.shape[0]] for im in images])


def warp_images(images, matrices, output_size) -> np.ndarray:
    """Affine crops by bilinear sampling with zero padding (vectorized numpy, no OpenCV).

    images: (N, H, W) / (N, H, W, C) array, or a list of N images of different sizes; a single image
    (a length-1 array or list) is shared by all N matrices.
    matrices: (N, 2, 3) image -> crop. output_size: (W_out, H_out).
    Returns crops (N, H_out, W_out[, C]) with the input dtype (integers are rounded and clipped).
    Each output pixel centre is mapped back to the image; the four neighbouring pixels are blended,
    pixels outside the image count as 0.
    """
    out_w, out_h = _check_size("output_size", output_size)
    stack, sizes = _stack_images(images)
    inv = invert_affine(matrices)
    n = len(inv)
    if len(stack) not in (1, n):
        raise ValueError(f"got {len(stack)} images but {n} matrices; pass one image per matrix, or a single image")
    if len(stack) == 1:  # many crops (people) from one image
        sizes = np.repeat(sizes, n, axis=0)
    hs, ws = stack.shape[1:3]
    gy, gx = np.meshgrid(np.arange(out_h, dtype=np.float64), np.arange(out_w, dtype=np.float64), indexing="ij")
    sx = inv[:, 0, 0, None, None] * gx + inv[:, 0, 1, None, None] * gy + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * gx + inv[:, 1, 1, None, None] * gy + inv[:, 1, 2, None, None]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0).astype(np.float32), (sy - y0).astype(np.float32)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    flat = stack.reshape(len(stack) * hs * ws, -1)
    base = (np.arange(n) * hs * ws * (len(stack) > 1))[:, None, None]
    wlim, hlim = sizes[:, 0, None, None], sizes[:, 1, None, None]
    out = np.zeros((n, out_h, out_w, flat.shape[1]), dtype=np.float32)
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        xi, yi = x0 + dx, y0 + dy
        valid = (xi >= 0) & (xi < wlim) & (yi >= 0) & (yi < hlim)
        idx = base + np.clip(yi, 0, hs - 1) * ws + np.clip(xi, 0, ws - 1)
        out += (wgt * valid)[..., None] * np.take(flat, idx, axis=0)
    out = out.reshape((n, out_h, out_w) + stack.shape[3:])
    if np.issubdtype(stack.dtype, np.integer):
        info = np.iinfo(stack.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(stack.dtype)
    return out.astype(stack.dtype)


def random_augment(
    rng: np.random.Generator,
    n: int,
    scale_range: tuple[float, float] = (0.75, 1.25),
    rotation_std: float = 30.0,
    rotation_prob: float = 0.6,
    flip_prob: float = 0.5,
    shift_range: float = 0.0,
) -> dict[str, np.ndarray]:
    """Random top-down augmentation parameters for n crops (SimpleBaseline's recipe).

    Returns a dict of arrays: "scale" (n,) uniform in scale_range, multiplies the crop size (> 1 zooms
    out); "rotation" (n,) degrees, normal with std rotation_std clipped to +-2 std, applied with
    probability rotation_prob (else 0); "flip" (n,) bool with probability flip_prob; "shift" (n, 2) moves
    the centre by a uniform fraction in [-shift_range, shift_range] of the crop size.

    Used in chapter 3.
    """
    lo, hi = scale_range
    if not 0 < lo <= hi:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, found {scale_range!r}")
    scale = rng.uniform(lo, hi, n)
    rot = np.clip(rng.normal(0.0, rotation_std, n), -2 * rotation_std, 2 * rotation_std)
    rot = np.where(rng.random(n) < rotation_prob, rot, 0.0)
    flip = rng.random(n) < flip_prob
    shift = rng.uniform(-shift_range, shift_range, (n, 2))
    return {"scale": scale, "rotation": rot, "flip": flip, "shift": shift}


def flip_keypoints(kpts, width: float, kset: KeypointSet) -> np.ndarray:
    """Horizontal flip of keypoints: ``x -> width - 1 - x`` and left/right joints swapped.

    kpts: (N, J, 3). Unlabelled keypoints (v == 0) keep x = y = 0 (the COCO convention).
    """
    kpts = np.asarray(kpts)
    if kpts.ndim != 3 or kpts.shape[-1] != 3 or kpts.shape[1] != kset.num_joints:
        raise ValueError(f"kpts must have shape (N, {kset.num_joints}, 3) for {kset.name}, found {kpts.shape}")
    out = kpts.astype(np.result_type(kpts.dtype, np.float32), copy=True)
    out[..., 0] = np.where(out[..., 2] > 0, width - 1 - out[..., 0], 0.0)
    return out[:, kset.flip_permutation()]


def crop_batch(images, bboxes, keypoints, output_size, augment=None, kset: KeypointSet | None = None, padding=1.25):
    """Top-down crops of N people with their keypoints: the whole pipeline in one call.

    images: (N, H, W[, C]) or a list of N images (one per person), or a single image ``[image]`` shared by all.
    bboxes: (N, 4) COCO boxes. keypoints: (N, J, 3) image pixels, or None. output_size: (W_out, H_out).
    augment: None or a `random_augment` dict ("scale", "rotation", "flip", optional "shift").
    kset: needed when any crop is flipped (to swap left/right joints).

    Returns crops (N, H_out, W_out[, C]), kpts_in_crop (N, J, 3) (None if keypoints is None; v is kept,
    v == 0 stays at x = y = 0, points may fall outside the crop) and matrices (N, 2, 3) image -> crop.

    Used in chapter 3.
    """
    out_w, out_h = _check_size("output_size", output_size)
    center, scale = box_to_center_scale(bboxes, out_w / out_h, padding)
    n = len(center)
    rotation, flip = np.zeros(n), np.zeros(n, dtype=bool)
    if augment is not None:
        scale = scale * np.asarray(augment["scale"], dtype=np.float64).reshape(n, 1)
        rotation = np.asarray(augment["rotation"], dtype=np.float64).reshape(n)
        flip = np.asarray(augment["flip"], dtype=bool).reshape(n)
        if "shift" in augment:
            center = center + np.asarray(augment["shift"], dtype=np.float64).reshape(n, 2) * scale
    if flip.any() and kset is None:
        raise ValueError("crop_batch: augment flips some crops, so kset is needed to swap left/right joints")
    mats = affine_matrix(center, scale, rotation, (out_w, out_h), flip=flip)
    crops = warp_images(images, mats, (out_w, out_h))
    if keypoints is None:
        return crops, None, mats
    keypoints = np.asarray(keypoints)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3 or len(keypoints) != n:
        raise ValueError(f"keypoints must have shape (N={n}, J, 3), found {keypoints.shape}")
    kp = transform_points(keypoints, mats)
    kp[..., :2] = np.where(keypoints[..., 2:] > 0, kp[..., :2], 0.0)
    if flip.any():
        kp[flip] = kp[flip][:, kset.flip_permutation()]
    return crops, kp, mats


def inside_crop(kpts, width: int, height: int) -> np.ndarray:
    """(N, J) bool: whether each keypoint (N, J, 2|3) lies on the W × H crop (pixel centres 0..W−1, ±½ pixel).

    Used in chapters 2-4 to unlabel joints that a crop cuts off.
    """
    k = np.asarray(kpts)
    return (k[..., 0] >= -0.5) & (k[..., 0] <= width - 0.5) & (k[..., 1] >= -0.5) & (k[..., 1] <= height - 0.5)


def crop_to_image(kpts_in_crop, matrices, kset: KeypointSet | None = None) -> np.ndarray:
    """Crop coordinates -> image coordinates, the exact inverse of the crop (N, J, 2|3) -> same shape.

    matrices: (N, 2, 3) image -> crop, as returned by `crop_batch`. With ``kset``, rows whose matrix
    mirrors (negative determinant, a flipped crop) also get their left/right joints swapped back, which
    undoes `crop_batch` completely; without it only the geometry is inverted. Points with a v column and
    v == 0 stay at x = y = 0.

    Used in chapter 3.
    """
    matrices = _check_matrices(matrices)
    out = transform_points(kpts_in_crop, invert_affine(matrices))
    if out.shape[-1] == 3:
        out[..., :2] = np.where(out[..., 2:] > 0, out[..., :2], 0.0)
    if kset is not None:
        flipped = np.linalg.det(matrices[:, :, :2]) < 0
        out[flipped] = out[flipped][:, kset.flip_permutation()]
    return out
