"""Input checks shared by the metrics: arrays of the documented shapes, or a ValueError naming the input."""

from __future__ import annotations

import numpy as np

from posekit.skeleton import COCO


def _as_pred(pred, name="pred") -> np.ndarray:
    p = np.asarray(pred, dtype=float)
    if p.ndim != 3 or p.shape[-1] not in (2, 3):
        raise ValueError(f"{name}: expected shape (N, J, 2) or (N, J, 3), found {p.shape}")
    if not np.all(np.isfinite(p[..., :2])):
        raise ValueError(f"{name}: coordinates must be finite, found NaN or inf")
    return p[..., :2]


def _as_gt(gt, name="gt") -> np.ndarray:
    g = np.asarray(gt, dtype=float)
    if g.ndim != 3 or g.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape (N, J, 3) [x, y, v], found {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"{name}: values must be finite, found NaN or inf")
    return g


def _pair(pred, gt):
    p, g = _as_pred(pred), _as_gt(gt)
    if p.shape[:2] != g.shape[:2]:
        raise ValueError(f"pred and gt: expected the same (N, J), found pred {p.shape[:2]} and gt {g.shape[:2]}")
    return p, g


def _as_norm(norm, n: int, name="norm") -> np.ndarray:
    s = np.asarray(norm, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), found {s.shape}")
    if np.any(np.isnan(s)):
        raise ValueError(f"{name}: found NaN; use 0 to exclude a sample")
    return s


def _as_boxes(boxes, name="bboxes") -> np.ndarray:
    b = np.asarray(boxes, dtype=float)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4), found {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: values must be finite, found NaN or inf")
    return b


def resolve_sigmas(sigmas, num_joints: int) -> np.ndarray:
    """OKS sigmas (J,): the given ones, or COCO's 17 when `sigmas` is None and J == 17; else ValueError."""
    if sigmas is None:
        if num_joints != COCO.num_joints:
            raise ValueError(
                f"sigmas: None is only allowed for the {COCO.num_joints} COCO keypoints; "
                f"found J={num_joints}: pass one sigma per keypoint"
            )
        return COCO.sigmas.astype(float)
    s = np.asarray(sigmas, dtype=float).reshape(-1)
    if s.shape != (num_joints,):
        raise ValueError(f"sigmas: expected {num_joints} values (one per keypoint), found {s.shape[0]}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sigmas: expected finite positive values, found {s.tolist()}")
    return s

