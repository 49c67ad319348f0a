"""Controlled mistakes: predictions made by perturbing ground truth.

The metric chapters teach PCP, PCK, OKS and AP before any model exists, so their
"predictions" are ground-truth keypoints damaged in one known way at a time.
Every function is pure: it takes keypoints ``(..., J, C)`` with C >= 2 (x, y in the
first two columns; extra columns such as visibility are copied unchanged) and
returns a new array of the same shape. Randomness comes only from the ``rng``
argument (a ``numpy.random.Generator``).
"""

from __future__ import annotations

import numpy as np

from posekit.cocoio import annotation_arrays, keypoint_results
from posekit.skeleton import KeypointSet


def _check(kpts, name: str = "kpts") -> np.ndarray:
    kpts = np.asarray(kpts, dtype=float)
    if kpts.ndim < 2 or kpts.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., J, C) with C >= 2, got {kpts.shape}")
    return kpts


def _per_person(value, kpts: np.ndarray, name: str) -> np.ndarray:
    """Broadcast a scalar or per-person value (...,) against keypoints (..., J)."""
    value = np.asarray(value, dtype=float)
    lead = kpts.shape[:-2]
    if value.ndim == 0:
        return np.broadcast_to(value, lead + (1,))
    if value.shape != lead:
        raise ValueError(f"{name} must be a scalar or have shape {lead} (one per person), got {value.shape}")
    return value[..., None]


def jitter(kpts, sigma, rng: np.random.Generator) -> np.ndarray:
    """Add isotropic Gaussian noise of std ``sigma`` px to every keypoint.

    Args:
      kpts: (..., J, C) keypoints.
      sigma: std in pixels, a scalar or one per person (...,); pass ``0.05 * bbox_size`` for noise
        relative to person size.
    Returns: (..., J, C), x and y perturbed, other columns unchanged.

    Used in chapters 6 and 7.
    """
    kpts = _check(kpts)
    s = _per_person(sigma, kpts, "sigma")
    if np.any(s < 0):
        raise ValueError(f"sigma must be >= 0, got min {s.min()}")
    out = kpts.copy()
    out[..., :2] += rng.normal(size=kpts.shape[:-1] + (2,)) * s[..., None]
    return out


def displace(kpts, dist, rng: np.random.Generator) -> np.ndarray:
    """Move every keypoint by exactly ``dist`` px in a uniformly random direction.

    A fixed error size makes "the same pixel error on a small and a large person" exact.
    Args: kpts (..., J, C); dist: scalar or per person (...,). Returns (..., J, C).

    Used in chapters 6 and 7.
    """
    kpts = _check(kpts)
    d = _per_person(dist, kpts, "dist")
    angle = rng.uniform(0.0, 2.0 * np.pi, size=kpts.shape[:-1])
    out = kpts.copy()
    out[..., 0] += d * np.cos(angle)
    out[..., 1] += d * np.sin(angle)
    return out


def swap_left_right(kpts, kset: KeypointSet, pairs=None) -> np.ndarray:
    """Swap left and right joints, the classic mistake of a model that confuses the two sides.

    Args:
      kpts: (..., J, C) keypoints of the set ``kset``.
      pairs: which flip pairs to swap, as (left, right) index tuples; default all of ``kset.flip_pairs``.
    Returns: (..., J, C) with the x, y of each swapped pair exchanged (visibility stays with the joint).

    Used in chapter 7.
    """
    kpts = _check(kpts)
    if kpts.shape[-2] != kset.num_joints:
        raise ValueError(f"kpts has {kpts.shape[-2]} joints, {kset.name} has {kset.num_joints}")
    pairs = kset.flip_pairs if pairs is None else pairs
    perm = np.arange(kset.num_joints)
    for a, b in pairs:
        if (a, b) not in kset.flip_pairs and (b, a) not in kset.flip_pairs:
            raise ValueError(f"({a}, {b}) is not a flip pair of {kset.name}; expected one of {kset.flip_pairs}")
        perm[a], perm[b] = b, a
    out = kpts.copy()
    out[..., :2] = kpts[..., perm, :2]
    return out


def drop(kpts, prob: float, rng: np.random.Generator, fill: float = 0.0) -> np.ndarray:
    """Make a model "miss" joints: each joint, with probability ``prob``, is predicted at (fill, fill).

    A missing prediction still has to be written somewhere in a COCO results file; models that
    found nothing typically output a corner of the image, which every metric scores as wrong.
    Returns: (..., J, C).

    Used in chapter 7.
    """
    kpts = _check(kpts)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    miss = rng.random(kpts.shape[:-1]) < prob
    out = kpts.copy()
    out[..., :2][miss] = fill
    return out


def translate(kpts, shift) -> np.ndarray:
    """Shift whole poses by ``shift`` px: (2,) for all people or (..., 2) one per person.

    This is what a top-down model does when its person box is off: the whole skeleton moves.

    Used in chapter 7.
    """
    kpts = _check(kpts)
    shift = np.asarray(shift, dtype=float)
    if shift.shape != (2,) and shift.shape != kpts.shape[:-2] + (2,):
        raise ValueError(f"shift must be (2,) or {kpts.shape[:-2] + (2,)}, got {shift.shape}")
    out = kpts.copy()
    out[..., :2] += shift[..., None, :] if shift.ndim > 1 else shift
    return out


def scale_about_centre(kpts, factor) -> np.ndarray:
    """Scale poses about the mean of their labelled joints (v > 0 when C >= 3, else all joints).

    Turns one person into the same person seen smaller or larger; ``factor`` scalar or per person.
    Unlabelled joints (v = 0) keep their (0, 0) coordinates.

    Used in chapter 6.
    """
    kpts = _check(kpts)
    f = _per_person(factor, kpts, "factor")
    labelled = kpts[..., 2] > 0 if kpts.shape[-1] >= 3 else np.ones(kpts.shape[:-1], bool)
    count = np.maximum(labelled.sum(-1, keepdims=True), 1)
    centre = (kpts[..., :2] * labelled[..., None]).sum(-2, keepdims=True) / count[..., None]
    out = kpts.copy()
    out[..., :2] = np.where(labelled[..., None], centre + (kpts[..., :2] - centre) * f[..., None], kpts[..., :2])
    return out


def detections(
    coco: dict,
    rng: np.random.Generator,
    *,
    sigma: float = 0.0,
    miss: float = 0.0,
    false_per_image: float = 0.0,
    true_score=(0.5, 1.0),
    false_score=(0.0, 0.5),
) -> list[dict]:
    """A COCO keypoint results list made from a ground-truth COCO dict, with controlled mistakes.

    Every non-crowd person with labelled keypoints becomes one detection whose keypoints carry Gaussian
    jitter of std ``sigma * sqrt(area)`` px (sigma relative to the OKS scale s = sqrt(area)), unless it is
    missed (probability ``miss``). On top, Poisson(``false_per_image`` * #images) false detections: the
    pose of a random real person moved by 1-2 box sizes in a random direction, put in a random image.
    Scores are uniform in ``true_score`` / ``false_score`` (lo, hi): false detections ranked below the
    true ones hurt AP little, ranked above they hurt it a lot.
    Returns: [{"image_id", "category_id": 1, "keypoints": [x, y, 1] * J, "score"}, ...].

    Used in chapter 7.
    """
    if not 0.0 <= miss <= 1.0:
        raise ValueError(f"miss must be in [0, 1], got {miss}")
    if false_per_image < 0:
        raise ValueError(f"false_per_image must be >= 0, got {false_per_image}")
    arr = annotation_arrays(coco)
    keep = (arr["iscrowd"] == 0) & (arr["num_keypoints"] > 0)
    kp, areas, boxes, img = arr["keypoints"][keep], arr["areas"][keep], arr["bboxes"][keep], arr["image_ids"][keep]
    found = rng.random(len(kp)) >= miss
    pred = jitter(kp, sigma * np.sqrt(areas), rng)[found]
    scores = rng.uniform(*true_score, size=len(pred))
    img = img[found]
    n_false = rng.poisson(false_per_image * len(coco["images"])) if len(kp) else 0
    if n_false:
        src = rng.integers(0, len(kp), n_false)
        angle = rng.uniform(0.0, 2.0 * np.pi, n_false)
        dist = rng.uniform(1.0, 2.0, n_false) * np.maximum(boxes[src, 2], boxes[src, 3])
        shift = np.stack([np.cos(angle), np.sin(angle)], -1) * dist[:, None]
        pred = np.concatenate([pred, translate(kp[src], shift)])
        scores = np.concatenate([scores, rng.uniform(*false_score, size=n_false)])
        all_ids = np.array([im["id"] for im in coco["images"]], dtype=object)
        img = np.concatenate([img, all_ids[rng.integers(0, len(all_ids), n_false)]])
    return keypoint_results(img, pred[..., :2], scores)
