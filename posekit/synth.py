"""Synthetic people in the COCO-17 keypoint format: single-person crops and multi-person scenes.

The book cannot download COCO or MPII, so it renders its own people:

1. a 3D skeleton with sampled body proportions (limb lengths, shoulder and hip widths, head size, girth)
   and a sampled pose from `POSE_NAMES`, each pose a box of joint angles;
2. a global rotation: yaw uniform in [0, 2π) (0 = facing the camera, π = seen from the back), a little
   pitch and roll; orthographic projection, so side views collapse the shoulders and hips;
3. a body of shaded capsules (head and hair spheres, torso, limbs, hands, feet) in skin, shirt, trouser,
   hair and shoe colours, z-buffered over a textured background with distractor shapes
   (`posekit.render`), plus mild noise;
4. labels from the render: a keypoint is visible (v = 2) when its pixel belongs to the person's mask and
   no surface there lies more than a part's thickness in front of the joint (a depth test against the
   z-buffer); a hidden joint inside the image is labelled but not visible (v = 1: an arm behind the torso,
   another person or an object in front); outside the image: v = 0 and x = y = 0, as COCO does. The face
   follows COCO's annotators (`FACE_LABELS`): the nose, eyes and ears are points on the surface, labelled
   only where they are seen, so a hidden one (the far ear of a profile, the face of a person seen from the
   back) is not labelled (v = 0). `face_labels="all"` keeps them as v = 1 (the book's earlier convention).
   `area` is the person's visible mask pixel count (what OKS uses as s²); `bbox` is the mask's extent;
   `head_boxes` the head's extent (x1, y1, x2, y2) for PCKh.

Coordinates are pixels with pixel centres at integers; a mask pixel (i, j) covers [i − ½, i + ½] ×
[j − ½, j + ½], so the bbox of a mask is [min_x − ½, min_y − ½, width, height] and contains every pixel centre
of the mask.

Determinism: everything is drawn from `numpy.random.default_rng([seed, kind, block])` for fixed blocks of
`BLOCK_SINGLE` crops or `BLOCK_SCENE` scenes, so image i depends only on (seed, i, arguments): rendering
1000 crops in chunks (`start=`) gives the same bytes as one call.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from posekit import cocoio
from posekit import render as R
from posekit.io import atomic_replace_dir

POSE_NAMES: tuple[str, ...] = (
    "standing",
    "walking",
    "reaching",
    "arms_raised",
    "crouching",
    "sitting",
    "arms_out",
    "bending",
    "lunging",
    "waving",
)

BLOCK_SINGLE = 64  # crops drawn from one random stream
BLOCK_SCENE = 8  # scenes drawn from one random stream
# Scene person sizes: the person's extent (the larger side of its box) over the image side is log-normal
# (median, sigma), clipped to a range; a scene keeps people while the sum of squared extents fits the budget.
_SIZE_MEDIAN, _SIZE_SIGMA, _SIZE_RANGE = 0.68, 0.65, (0.08, 1.6)
_SCENE_BUDGET = 2.0

# ----------------------------------------------------------------------------------------------------------------
# Poses: boxes of joint angles (radians). A limb direction is (θ, φ): θ the angle from straight down,
# φ the azimuth around the vertical (0 forward, π/2 out to the limb's side, π backward, < 0 across the body).
# "A"/"O" are the active and the other arm, "L"/"T" the leg on the active arm's side and the other leg;
# the active side is left or right at random.
_ARM = {"ua_t": (0.05, 0.35), "ua_p": (0.6, 1.7), "fa_t": (0.05, 0.6), "fa_p": (-0.3, 0.8)}
_LEG = {"th_t": (0.0, 0.15), "th_p": (0.6, 1.7), "sh_t": (0.0, 0.1), "sh_p": (0.0, 3.1)}
_BODY = {
    "torso_pitch": (-0.05, 0.12),
    "torso_roll": (-0.06, 0.06),
    "torso_twist": (-0.2, 0.2),
    "head_pitch": (-0.25, 0.3),
    "head_yaw": (-0.5, 0.5),
}
_RAISED = {"ua_t": (2.3, 3.0), "ua_p": (0.3, 1.5), "fa_t": (2.3, 3.1), "fa_p": (-0.5, 1.2)}
_OUT = {"ua_t": (1.25, 1.85), "ua_p": (1.2, 1.9), "fa_t": (1.1, 2.1), "fa_p": (1.0, 2.0)}
_CROUCH_ARM = {"ua_t": (0.3, 1.1), "ua_p": (-0.3, 0.5), "fa_t": (0.8, 1.7), "fa_p": (-0.5, 0.3)}
_CROUCH_LEG = {"th_t": (1.0, 1.7), "th_p": (0.0, 0.6), "sh_t": (0.0, 0.5), "sh_p": (2.6, 3.6)}
_SIT_ARM = {"ua_t": (0.1, 0.5), "ua_p": (-0.2, 0.5), "fa_t": (0.9, 1.5), "fa_p": (-0.5, 0.2)}
_SIT_LEG = {"th_t": (1.3, 1.75), "th_p": (-0.1, 0.35), "sh_t": (0.0, 0.45), "sh_p": (-0.6, 0.6)}
_BEND_ARM = {"ua_t": (0.7, 1.5), "ua_p": (-0.25, 0.25), "fa_t": (0.7, 1.6), "fa_p": (-0.3, 0.3)}
_POSES = {
    "standing": {},
    "walking": {
        "torso_pitch": (0.0, 0.15),
        "A": {"ua_t": (0.15, 0.5), "ua_p": (-0.25, 0.3), "fa_t": (0.4, 1.0), "fa_p": (-0.4, 0.2)},
        "O": {"ua_t": (0.15, 0.45), "ua_p": (2.8, 3.4), "fa_t": (0.1, 0.45), "fa_p": (2.6, 3.5)},
        "L": {"th_t": (0.15, 0.4), "th_p": (2.9, 3.4), "sh_t": (0.4, 1.0), "sh_p": (2.9, 3.4)},
        "T": {"th_t": (0.2, 0.5), "th_p": (-0.15, 0.15), "sh_t": (0.0, 0.3), "sh_p": (-0.3, 0.3)},
    },
    "reaching": {
        "torso_pitch": (0.0, 0.4),
        "A": {"ua_t": (1.1, 1.9), "ua_p": (-0.3, 1.0), "fa_t": (1.1, 2.0), "fa_p": (-0.3, 1.0)},
    },
    "arms_raised": {"torso_pitch": (-0.1, 0.1), "A": _RAISED, "O": _RAISED},
    "crouching": {"torso_pitch": (0.3, 0.8), "A": _CROUCH_ARM, "O": _CROUCH_ARM, "L": _CROUCH_LEG, "T": _CROUCH_LEG},
    "sitting": {"torso_pitch": (-0.15, 0.2), "A": _SIT_ARM, "O": _SIT_ARM, "L": _SIT_LEG, "T": _SIT_LEG},
    "arms_out": {"A": _OUT, "O": _OUT},
    "bending": {"torso_pitch": (0.8, 1.4), "head_pitch": (-0.6, 0.0), "A": _BEND_ARM, "O": _BEND_ARM},
    "lunging": {
        "torso_pitch": (-0.1, 0.25),
        "L": {"th_t": (0.9, 1.4), "th_p": (-0.15, 0.25), "sh_t": (0.0, 0.35), "sh_p": (-0.4, 0.4)},
        "T": {"th_t": (0.35, 0.7), "th_p": (2.9, 3.4), "sh_t": (0.5, 1.2), "sh_p": (2.9, 3.4)},
    },
    "waving": {"A": {"ua_t": (1.7, 2.6), "ua_p": (0.9, 1.8), "fa_t": (2.5, 3.1), "fa_p": (-0.2, 1.6)}},
}


def _pose_tables() -> dict[str, np.ndarray]:
    """(P, 2) [lo, hi] per angle name, rows in POSE_NAMES order."""
    names = list(_BODY) + [f"{g}_{k}" for g in "AO" for k in _ARM] + [f"{g}_{k}" for g in "LT" for k in _LEG]
    tab = {n: np.zeros((len(POSE_NAMES), 2)) for n in names}
    for p, pose in enumerate(POSE_NAMES):
        spec = _POSES[pose]
        for n in _BODY:
            tab[n][p] = spec.get(n, _BODY[n])
        for g, base in (("A", _ARM), ("O", _ARM), ("L", _LEG), ("T", _LEG)):
            for k in base:
                tab[f"{g}_{k}"][p] = spec.get(g, {}).get(k, base[k])
    return tab


_TABLES = _pose_tables()

# ----------------------------------------------------------------------------------------------------------------
# Body: named 3D points (17 COCO keypoints, then helpers) and capsules between them.
_HEAD_C, _HAIR_C, _NECK, _CHEST_BOT, _CHEST_TOP, _LTIP, _RTIP, _LHEEL, _RHEEL, _LTOE, _RTOE, _CHIN = range(17, 29)
_NUM_POINTS = 29
# (start point, end point, colour group); groups: 0 skin, 1 hair, 2 shirt, 3 upper sleeve, 4 lower sleeve,
# 5 trousers, 6 lower leg, 7 shoes.
_CAPSULES = (
    (_CHIN, _HEAD_C, 0),  # 0 head
    (_HAIR_C, _HAIR_C, 1),  # 1 hair
    (_NECK, _HEAD_C, 0),  # 2 neck
    (_CHEST_BOT, _CHEST_TOP, 2),  # 3 chest
    (11, 5, 2),  # 4 left flank
    (12, 6, 2),  # 5 right flank
    (5, 6, 2),  # 6 shoulders
    (11, 12, 5),  # 7 pelvis
    (5, 7, 3),  # 8 left upper arm
    (6, 8, 3),  # 9
    (7, 9, 4),  # 10 left forearm
    (8, 10, 4),  # 11
    (9, _LTIP, 0),  # 12 left hand
    (10, _RTIP, 0),  # 13
    (11, 13, 5),  # 14 left thigh
    (12, 14, 5),  # 15
    (13, 15, 6),  # 16 left shin
    (14, 16, 6),  # 17
    (_LHEEL, _LTOE, 7),  # 18 left foot
    (_RHEEL, _RTOE, 7),  # 19
)
K_PERSON = len(_CAPSULES)
_CAP_A = np.array([c[0] for c in _CAPSULES])
_CAP_B = np.array([c[1] for c in _CAPSULES])
_CAP_GROUP = np.array([c[2] for c in _CAPSULES])
# Radii (start, end) in units of body height, before the girth factor; head and hair use the head radius.
_RADII = np.array(
    [
        [1.0, 1.0], [1.0, 1.0], [0.028, 0.028], [0.075, 0.085], [0.05, 0.05], [0.05, 0.05], [0.045, 0.045],
        [0.06, 0.06], [0.04, 0.032], [0.04, 0.032], [0.032, 0.024], [0.032, 0.024], [0.024, 0.02], [0.024, 0.02],
        [0.065, 0.048], [0.065, 0.048], [0.045, 0.032], [0.045, 0.032], [0.028, 0.025], [0.028, 0.025],
    ]
)  # fmt: skip
_HEAD_CAPS = np.array([0, 1])
# Depth tolerance of each keypoint's visibility test, in units of body height × girth (about 1.5 × the
# thickest part at that joint); face keypoints use 0.6 × head radius instead.
_KP_TOL = np.array([0, 0, 0, 0, 0, 0.075, 0.075, 0.05, 0.05, 0.036, 0.036, 0.095, 0.095, 0.07, 0.07, 0.05, 0.05])


def _rot_x(a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a):
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _apply(Rm, v):
    """Rotate vectors v (N, 3) or (N, M, 3) by Rm (N, 3, 3)."""
    return np.einsum("nij,n...j->n...i", Rm, v)


def _limb_dir(theta, phi, side):
    """Unit direction (N, 3) in the body frame (x = the person's left, y = up, z = forward)."""
    st = np.sin(theta)
    return np.stack([side * st * np.sin(phi), -np.cos(theta), st * np.cos(phi)], -1)


def _uniform(rng, lohi, n):
    lo, hi = lohi[..., 0], lohi[..., 1]
    return lo + (hi - lo) * rng.random(n)


def _sample_people(rng: np.random.Generator, n: int, pose=None, yaw=None) -> dict:
    """Body proportions, pose angles, rotation and colours of n people (all arrays have first axis n)."""
    if pose is None:
        pose_idx = rng.integers(0, len(POSE_NAMES), n)
    else:
        pose_idx = np.full(n, _pose_index(pose))
    p = {"pose": pose_idx}
    u = lambda lo, hi: rng.uniform(lo, hi, n)
    p.update(
        head_r=0.062 * u(0.88, 1.12),
        neck_len=0.045 * u(0.8, 1.2),
        torso_len=0.29 * u(0.92, 1.08),
        sh_half=0.115 * u(0.85, 1.15),
        hip_half=0.06 * u(0.85, 1.2),
        ua_len=0.17 * u(0.9, 1.1),
        fa_len=0.145 * u(0.9, 1.1),
        hand_len=0.055 * u(0.85, 1.15),
        th_len=0.245 * u(0.92, 1.08),
        sh_len=0.24 * u(0.92, 1.08),
        foot_len=0.075 * u(0.85, 1.15),
        girth=u(0.8, 1.3),
    )
    for name, tab in _TABLES.items():
        p[name] = _uniform(rng, tab[pose_idx], n)
    p["active_left"] = rng.random(n) < 0.5
    if yaw is None:
        p["yaw"] = rng.uniform(0.0, 2 * np.pi, n)
    else:
        p["yaw"] = np.broadcast_to(np.asarray(yaw, float) % (2 * np.pi), (n,)).copy()
        rng.uniform(size=n)  # keep the random stream aligned with the yaw=None case
    p["pitch"] = u(-0.1, 0.35)
    p["roll"] = u(-0.12, 0.12)
    # Colours per group: skin, hair, shirt, upper sleeve, lower sleeve, trousers, lower leg, shoes.
    t = rng.random((n, 1))
    skin = (1 - t) * np.array([238, 198, 170]) + t * np.array([88, 56, 40]) + rng.normal(0, 8, (n, 3))
    hair_tab = np.array([[25, 20, 20], [70, 45, 30], [120, 80, 40], [205, 175, 115], [150, 150, 150], [150, 65, 30]])
    hair = hair_tab[rng.integers(0, len(hair_tab), n)] + rng.normal(0, 6, (n, 3))
    shirt = rng.uniform(15, 240, (n, 3))
    jeans = rng.random((n, 1)) < 0.3
    trousers = np.where(jeans, np.array([50, 70, 120]) + rng.normal(0, 15, (n, 3)), rng.uniform(15, 170, (n, 3)))
    upper = np.where(rng.random((n, 1)) < 0.1, skin, shirt)
    lower = np.where(rng.random((n, 1)) < 0.45, shirt, skin)
    shin = np.where(rng.random((n, 1)) < 0.25, skin, trousers)
    shoes = rng.uniform(10, 90, (n, 1)) * np.array([1.0, 0.9, 0.8]) + rng.normal(0, 5, (n, 3))
    p["colours"] = np.clip(np.stack([skin, hair, shirt, upper, lower, trousers, shin, shoes], 1), 0, 255)
    return p


def _pose_index(pose) -> int:
    if isinstance(pose, (int, np.integer)):
        if not 0 <= pose < len(POSE_NAMES):
            raise ValueError(f"pose index must be in [0, {len(POSE_NAMES)}), got {pose}")
        return int(pose)
    if pose not in POSE_NAMES:
        raise ValueError(f"unknown pose {pose!r}; expected one of {POSE_NAMES}")
    return POSE_NAMES.index(pose)


def _skeleton(p: dict) -> np.ndarray:
    """3D points (N, 29, 3) in the camera frame (x right, y down, z = depth away from the camera), height 1."""
    n = p["yaw"].shape[0]
    P = np.zeros((n, _NUM_POINTS, 3))
    ex = np.array([1.0, 0, 0])
    ey = np.array([0, 1.0, 0])
    left = np.where(p["active_left"], 1.0, -1.0)  # side of the active arm: +1 left
    sides = {"A": left, "O": -left, "L": left, "T": -left}
    # Legs hang from the pelvis (body frame).
    hips = {1.0: 11, -1.0: 12}
    for g in "LT":
        s = sides[g]
        hip = s[:, None] * p["hip_half"][:, None] * ex
        d_th = _limb_dir(p[f"{g}_th_t"], p[f"{g}_th_p"], s)
        d_sh = _limb_dir(p[f"{g}_sh_t"], p[f"{g}_sh_p"], s)
        knee = hip + p["th_len"][:, None] * d_th
        ankle = knee + p["sh_len"][:, None] * d_sh
        fwd = np.stack([s * 0.15, np.full(n, -0.2), np.ones(n)], -1)
        fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
        for sign in (1.0, -1.0):
            m = s == sign
            hi = hips[sign]
            P[m, hi], P[m, hi + 2], P[m, hi + 4] = hip[m], knee[m], ankle[m]
            heel, toe = (_LHEEL, _LTOE) if sign > 0 else (_RHEEL, _RTOE)
            P[m, heel] = ankle[m] - 0.02 * fwd[m] - 0.025 * ey
            P[m, toe] = ankle[m] + p["foot_len"][m, None] * fwd[m] - 0.025 * ey
    # Torso, arms and head in the torso frame.
    Rt = _rot_z(p["torso_roll"]) @ _rot_x(p["torso_pitch"]) @ _rot_y(p["torso_twist"])
    tl = p["torso_len"][:, None]
    P[:, _CHEST_BOT] = _apply(Rt, 0.05 * ey + 0 * tl)
    P[:, _CHEST_TOP] = _apply(Rt, (tl - 0.035) * ey)
    P[:, _NECK] = _apply(Rt, (tl - 0.01) * ey)
    shoulders = {1.0: 5, -1.0: 6}
    for g in "AO":
        s = sides[g]
        sh = _apply(Rt, s[:, None] * p["sh_half"][:, None] * ex + (tl - 0.015) * ey)
        d_ua = _apply(Rt, _limb_dir(p[f"{g}_ua_t"], p[f"{g}_ua_p"], s))
        d_fa = _apply(Rt, _limb_dir(p[f"{g}_fa_t"], p[f"{g}_fa_p"], s))
        elbow = sh + p["ua_len"][:, None] * d_ua
        wrist = elbow + p["fa_len"][:, None] * d_fa
        tip = wrist + p["hand_len"][:, None] * d_fa
        for sign in (1.0, -1.0):
            m = s == sign
            si = shoulders[sign]
            P[m, si], P[m, si + 2], P[m, si + 4] = sh[m], elbow[m], wrist[m]
            P[m, _LTIP if sign > 0 else _RTIP] = tip[m]
    Rh = Rt @ _rot_x(p["head_pitch"]) @ _rot_y(p["head_yaw"])
    r = p["head_r"][:, None]
    head_c = P[:, _NECK] + _apply(Rt, p["neck_len"][:, None] * ey) + _apply(Rh, r * ey)
    P[:, _HEAD_C] = head_c
    P[:, _CHIN] = head_c + _apply(Rh, r * np.array([0.0, -0.3, 0.12]))
    P[:, _HAIR_C] = head_c + _apply(Rh, r * np.array([0.0, 0.1, -0.15]))
    face = {
        0: (0.0, -0.15, 1.0, 1.03),
        1: (0.38, 0.18, 0.9, 1.0),
        2: (-0.38, 0.18, 0.9, 1.0),
        3: (1.0, 0.05, -0.1, 1.0),
        4: (-1.0, 0.05, -0.1, 1.0),
    }
    for j, (x, y, z, scale) in face.items():
        v = np.array([x, y, z])
        P[:, j] = head_c + _apply(Rh, r * scale * v / np.linalg.norm(v))
    # Global rotation: yaw about the body's vertical axis, then camera pitch and roll.
    Rg = _rot_z(p["roll"]) @ _rot_x(p["pitch"]) @ _rot_y(p["yaw"])
    P = _apply(Rg, P)
    # Body frame (x left, y up, z forward) -> camera (x right, y down, depth away): facing the camera at yaw 0.
    return P * np.array([1.0, -1.0, -1.0])


def _capsule_geometry(P: np.ndarray, p: dict):
    """Capsule ends (N, K, 3) and radii (N, K, 2) at height 1, and the keypoint depth tolerances (N, 17)."""
    A = P[:, _CAP_A]
    B = P[:, _CAP_B]
    rad = _RADII[None] * p["girth"][:, None, None]
    rad[:, 0] = p["head_r"][:, None]
    rad[:, 1] = 1.03 * p["head_r"][:, None]
    rad[:, 12:14] = _RADII[None, 12:14] * np.sqrt(p["girth"])[:, None, None]
    tol = _KP_TOL[None] * p["girth"][:, None]
    tol[:, :5] = 0.6 * p["head_r"][:, None]
    return A, B, rad, tol


def _extent(A, B, rad):
    """Tight 2D bounds (N, 4) [x0, y0, x1, y1] of capsules."""
    rmax = rad.max(-1)
    x0 = np.minimum(A[..., 0], B[..., 0]) - rmax
    x1 = np.maximum(A[..., 0], B[..., 0]) + rmax
    y0 = np.minimum(A[..., 1], B[..., 1]) - rmax
    y1 = np.maximum(A[..., 1], B[..., 1]) + rmax
    return np.stack([x0.min(1), y0.min(1), x1.max(1), y1.max(1)], -1)


def _light(rng, n):
    L = np.stack([rng.uniform(-0.8, 0.8, n), rng.uniform(-1.0, -0.1, n), rng.uniform(-1.0, -0.4, n)], -1)
    return L / np.linalg.norm(L, axis=-1, keepdims=True)


def _distractors(rng, n, k, S):
    """k random capsules per image (N, k, ...): clutter behind the person, sometimes in front."""
    A = rng.uniform(-0.1 * S, 1.1 * S, (n, k, 3))
    ang = rng.uniform(0, 2 * np.pi, (n, k))
    length = rng.uniform(0, 0.45 * S, (n, k))
    B = A + np.stack([np.cos(ang) * length, np.sin(ang) * length, np.zeros((n, k))], -1)
    front = rng.random((n, k)) < 0.12
    rad = rng.uniform(0.03, 0.14, (n, k, 1)) * S * rng.uniform(0.6, 1.4, (n, k, 2))
    rad = np.where(front[..., None], rad * 0.5, rad)
    rad *= (rng.random((n, k)) < 0.85)[..., None]
    depth = np.where(front, -1e4, 1e4)
    A[..., 2] = depth
    B[..., 2] = depth
    t = rng.random((n, k, 1))
    skin = (1 - t) * np.array([238, 198, 170]) + t * np.array([88, 56, 40])
    col = np.where(rng.random((n, k, 1)) < 0.3, skin, rng.uniform(0, 255, (n, k, 3)))
    return A, B, rad, col


FACE_LABELS = ("seen", "all")  # the face keypoints' labelling rules: COCO's (the default), or every one inside
FACE = slice(0, 5)  # nose, eyes, ears: COCO's surface keypoints


def face_rule(v: np.ndarray, face_labels: str) -> np.ndarray:
    """Visibility (..., 17) under a face labelling rule: "seen" (COCO's practice: a hidden nose, eye or ear is
    not labelled, v 1 → 0; hidden joints keep v = 1) or "all" (unchanged)."""
    if face_labels not in FACE_LABELS:
        raise ValueError(f"face_labels must be one of {FACE_LABELS}, got {face_labels!r}")
    v = np.array(v, copy=True)
    if face_labels == "seen":
        v[..., FACE] = np.where(v[..., FACE] == 1, 0, v[..., FACE])
    return v


def _visibility(kp, kp_depth, tol, lab, zb, owner_ok=None):
    """COCO visibility (N, 17) from the render: 0 outside the image, 2 when the joint's pixel is the person's and
    the surface there is at most `tol` in front of the joint, else 1.

    kp: (N, 17, 2) pixels; kp_depth, tol: (N, 17); lab: (N, S, S) with values < K_PERSON on the person;
    zb: (N, S, S) depth buffer.
    """
    n, S = lab.shape[0], lab.shape[1]
    ix = np.floor(kp[..., 0] + 0.5).astype(np.int64)
    iy = np.floor(kp[..., 1] + 0.5).astype(np.int64)
    inside = (ix >= 0) & (ix < S) & (iy >= 0) & (iy < S)
    cx, cy = np.clip(ix, 0, S - 1), np.clip(iy, 0, S - 1)
    rows = np.arange(n)[:, None]
    on_person = lab[rows, cy, cx] < K_PERSON
    front_ok = kp_depth <= zb[rows, cy, cx] + tol
    vis = np.where(inside, np.where(on_person & front_ok, 2, 1), 0)
    return vis


def _mask_boxes(mask):
    """COCO xywh boxes (N, 4) and areas (N,) of masks (N, S, S); pixel centres at integers."""
    rows = mask.any(2)
    cols = mask.any(1)
    S = mask.shape[1]
    area = mask.sum((1, 2)).astype(np.float32)
    y0 = rows.argmax(1)
    y1 = S - 1 - rows[:, ::-1].argmax(1)
    x0 = cols.argmax(1)
    x1 = S - 1 - cols[:, ::-1].argmax(1)
    box = np.stack([x0 - 0.5, y0 - 0.5, x1 - x0 + 1, y1 - y0 + 1], -1).astype(np.float32)
    box[area == 0] = 0
    return box, area


def _check_common(num, seed, size, min_size):
    if not isinstance(num, (int, np.integer)) or num <= 0:
        raise ValueError(f"num must be a positive integer, got {num!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(size, (int, np.integer)) or size < min_size or size % 4:
        raise ValueError(f"size must be a multiple of 4 and >= {min_size}, got {size!r}")


# ----------------------------------------------------------------------------------------------------------------
def _single_block(seed: int, block: int, size: int, pose, yaw, distractors: int, truncation: float):
    """Parameters of one block of BLOCK_SINGLE crops (numpy, float32)."""
    rng = np.random.default_rng([seed, 1, block])
    n, S = BLOCK_SINGLE, size
    p = _sample_people(rng, n, pose=pose, yaw=yaw)
    P = _skeleton(p)
    A, B, rad, tol = _capsule_geometry(P, p)
    ext = _extent(A, B, rad)
    span = np.maximum(ext[:, 2] - ext[:, 0], ext[:, 3] - ext[:, 1])
    trunc = rng.random(n) < truncation
    zoom = np.where(trunc, rng.uniform(1.0, 1.5, n), rng.uniform(0.72, 1.0, n))
    shift = np.where(trunc[:, None], rng.uniform(-0.22, 0.22, (n, 2)), rng.uniform(-0.06, 0.06, (n, 2)))
    scale = S * zoom / span
    centre = 0.5 * (ext[:, :2] + ext[:, 2:])
    off = (S - 1) / 2 + shift * S - centre * scale[:, None]
    to_px = lambda X: np.concatenate(
        [X[..., :2] * scale[:, None, None] + off[:, None], X[..., 2:] * scale[:, None, None]], -1
    )
    A, B, P = to_px(A), to_px(B), to_px(P)
    rad = rad * scale[:, None, None]
    dA, dB, drad, dcol = _distractors(rng, n, distractors, S)
    cols = p["colours"][:, _CAP_GROUP]
    return {
        "A": np.concatenate([A, dA], 1).astype(np.float32),
        "B": np.concatenate([B, dB], 1).astype(np.float32),
        "R": np.concatenate([rad, drad], 1).astype(np.float32),
        "colours": np.concatenate([cols, dcol], 1).astype(np.float32),
        "light": _light(rng, n).astype(np.float32),
        "noise_seed": rng.integers(0, 2**32, n, dtype=np.uint32),
        "noise_amp": rng.uniform(1.0, 6.0, n).astype(np.float32),
        "bg": R.sample_background(rng, n),
        "kp": P[:, :17].astype(np.float32),
        "tol": (tol * scale[:, None]).astype(np.float32),
        "pose": p["pose"],
        "yaw": p["yaw"].astype(np.float32),
    }


def _concat(parts: list[dict]) -> dict:
    out = {}
    for k in parts[0]:
        if isinstance(parts[0][k], dict):
            out[k] = _concat([q[k] for q in parts])
        else:
            out[k] = np.concatenate([q[k] for q in parts], 0)
    return out


def _slice(tree: dict, a: int, b: int) -> dict:
    return {k: (_slice(v, a, b) if isinstance(v, dict) else v[a:b]) for k, v in tree.items()}


def render_single(
    num: int,
    seed: int,
    size: int = 64,
    *,
    start: int = 0,
    pose=None,
    yaw=None,
    distractors: int = 4,
    truncation: float = 0.15,
    face_labels: str = "seen",
    return_masks: bool = False,
) -> dict:
    """Render `num` single-person crops (images start..start+num−1 of the stream `seed`).

    Knobs: pose (name or index from POSE_NAMES, None = random), yaw (radians, None = uniform in [0, 2π)),
    distractors (clutter capsules per crop), truncation (probability of a zoomed or shifted crop that cuts the
    person at the border), face_labels (`FACE_LABELS`: "seen", COCO's practice, or "all"), return_masks (add
    "masks" (N, S, S) bool).
    Returns "images" (N, S, S, 3) uint8, "keypoints" (N, 17, 3) float32 [x, y, v], "bboxes" (N, 4) COCO xywh,
    "areas" (N,), "head_boxes" (N, 4) [x1, y1, x2, y2], "yaw" (N,) radians, "pose" (N,) int.

    Used in the preface and chapters 1, 6 and 7.
    """
    _check_common(num, seed, size, 32)
    face_rule(np.zeros(17), face_labels)
    if pose is not None:
        _pose_index(pose)
    b0, b1 = start // BLOCK_SINGLE, (start + num - 1) // BLOCK_SINGLE + 1
    params = _concat([_single_block(seed, b, size, pose, yaw, distractors, truncation) for b in range(b0, b1)])
    params = _slice(params, start - b0 * BLOCK_SINGLE, start - b0 * BLOCK_SINGLE + num)
    zb, lab, rgb = R.raster(params["A"], params["B"], params["R"], params["colours"], params["light"], size)
    fg = lab < params["A"].shape[1]
    images = R.finish_batched(rgb, fg, params["noise_seed"], params["noise_amp"], params["bg"], size)
    kp = params["kp"]
    vis = face_rule(_visibility(kp[..., :2], kp[..., 2], params["tol"], lab, zb), face_labels)
    xy = np.where(vis[..., None] > 0, kp[..., :2], 0.0)
    keypoints = np.concatenate([xy, vis[..., None]], -1).astype(np.float32)
    mask = lab < K_PERSON
    bboxes, areas = _mask_boxes(mask)
    head = _extent(params["A"][:, _HEAD_CAPS], params["B"][:, _HEAD_CAPS], params["R"][:, _HEAD_CAPS])
    out = {
        "images": images,
        "keypoints": keypoints,
        "bboxes": bboxes,
        "areas": areas,
        "head_boxes": head.astype(np.float32),
        "yaw": params["yaw"],
        "pose": params["pose"].astype(np.int64),
    }
    if return_masks:
        out["masks"] = mask
    return out


# ----------------------------------------------------------------------------------------------------------------
def _scene_block(seed: int, block: int, S: int, max_people: int, distractors: int, crowd_prob: float) -> list[dict]:
    """Capsules and labels of one block of BLOCK_SCENE scenes, in scene pixels (one dict per scene).

    Steps, in the order they draw from the block's random stream: how many people (and crowd members) each
    scene holds and how large they are; the people themselves; where each goes and how near it is; the
    clutter, light, noise and background; then one dict per scene.
    """
    rng = np.random.default_rng([seed, 2, block])
    n = BLOCK_SCENE
    counts, crowd_counts, height = _scene_people(rng, n, max_people, crowd_prob, S)
    total = int(counts.sum() + crowd_counts.sum())
    p = _sample_people(rng, total)
    P = _skeleton(p)
    A, B, rad, tol = _capsule_geometry(P, p)
    scene_of = np.concatenate([np.repeat(np.arange(n), counts), np.repeat(np.arange(n), crowd_counts)])
    is_crowd = np.arange(total) >= counts.sum()
    to_px = _placement(rng, n, S, A, B, rad, height, scene_of, is_crowd)
    A, B, P = to_px(A), to_px(B), to_px(P)
    scale = to_px.scale
    rad = np.maximum(rad * scale[:, None, None], 0.75)  # thinner than a pixel would leave gaps
    tol = tol * scale[:, None]
    cols = p["colours"][:, _CAP_GROUP]
    dA, dB, drad, dcol = _distractors(rng, n, distractors, S)
    drad *= 0.3
    dA[..., 2] *= 100.0  # far behind (or in front of) every person
    dB[..., 2] *= 100.0
    light = _light(rng, n)
    noise_amp = rng.uniform(1.0, 6.0, n).astype(np.float32)
    noise_seed = rng.integers(0, 2**32, n, dtype=np.uint32)
    bg = R.sample_background(rng, n)
    scenes = []
    for s in range(n):
        people = np.flatnonzero((scene_of == s) & ~is_crowd)
        crowd = np.flatnonzero((scene_of == s) & is_crowd)
        members = np.concatenate([people, crowd])
        owner = np.concatenate(
            [
                np.repeat(np.arange(people.size), K_PERSON),
                np.full(crowd.size * K_PERSON, people.size),
                -np.ones(distractors),
            ]
        ).astype(np.int64)
        scenes.append(
            {
                "A": np.concatenate([A[members].reshape(-1, 3), dA[s]]),
                "B": np.concatenate([B[members].reshape(-1, 3), dB[s]]),
                "R": np.concatenate([rad[members].reshape(-1, 2), drad[s]]),
                "colours": np.concatenate([cols[members].reshape(-1, 3), dcol[s]]),
                "owner": owner,
                "light": light[s],
                "noise_seed": noise_seed[s],
                "noise_amp": noise_amp[s],
                "bg": {k: v[s] for k, v in bg.items()},
                "kp": P[people, :17],
                "tol": tol[people],
                "head": _extent(A[people][:, _HEAD_CAPS], B[people][:, _HEAD_CAPS], rad[people][:, _HEAD_CAPS]),
                "pose": p["pose"][people],
                "yaw": p["yaw"][people],
                "crowd": bool(crowd.size),
            }
        )
    return scenes


def _scene_people(rng, n: int, max_people: int, crowd_prob: float, S: int):
    """People per scene, crowd members per scene, and each person's extent in pixels (0 for crowd members).

    Person sizes first (extent as a fraction of the image side, log-normal like COCO's mostly medium and
    large people), then how many of the 1..max_people drawn slots fit: a person is kept while the scene's
    summed squared sizes stay within _SCENE_BUDGET, so scenes with a near (large) person hold few people.
    A crowd is 4-10 small people, annotated later as one iscrowd region.
    """
    wanted = rng.integers(1, max_people + 1, n)
    frac = np.clip(np.exp(rng.normal(np.log(_SIZE_MEDIAN), _SIZE_SIGMA, (n, max_people))), *_SIZE_RANGE)
    slot_used = np.cumsum(frac**2, 1)
    kept = (np.arange(max_people) < wanted[:, None]) & ((slot_used <= _SCENE_BUDGET) | (np.arange(max_people) == 0))
    kept = np.cumprod(kept, 1).astype(bool)  # a prefix of the slots
    counts = kept.sum(1)
    has_crowd = rng.random(n) < crowd_prob
    crowd_counts = np.where(has_crowd, rng.integers(4, 11, n), 0)
    height = np.zeros(int(counts.sum() + crowd_counts.sum()))
    height[: counts.sum()] = S * frac[kept]
    return counts, crowd_counts, height


def _placement(rng, n: int, S: int, A, B, rad, height, scene_of, is_crowd):
    """Where each person goes, how large and how near: a function mapping body points (P, k, 3) to scene pixels.

    Person extents from `height`; small people anywhere, large ones nearer the middle (all may be cut by the
    border; the largest are always cut, like close-ups); crowd members packed into one box per scene; most
    heads kept inside the picture; far (small) people painted behind near (large) ones, crowds behind everyone.
    The function's `scale` attribute is each person's pixels per body unit.
    """
    total = len(height)
    ext = _extent(A, B, rad)
    span = np.maximum(ext[:, 2] - ext[:, 0], ext[:, 3] - ext[:, 1])
    spread = np.clip(1.25 - 0.55 * height / S, 0.4, 1.1)
    pos = (0.5 + spread[:, None] * rng.uniform(-0.5, 0.5, (total, 2))) * S
    crowd_box = np.zeros((n, 4))
    crowd_box[:, :2] = rng.uniform(0.05, 0.6, (n, 2)) * S
    crowd_box[:, 2:] = crowd_box[:, :2] + rng.uniform(0.15, 0.35, (n, 2)) * S * np.array([1.0, 0.6])
    cb = crowd_box[scene_of]
    height = np.where(is_crowd, S * rng.uniform(0.06, 0.11, total), height)
    pos = np.where(is_crowd[:, None], cb[:, :2] + rng.random((total, 2)) * (cb[:, 2:] - cb[:, :2]), pos)
    scale = height / span
    # Most people keep their head in the picture (close-ups lose their legs, as in photos): the top of the
    # box is lowered to at most 6% of the image above the border.
    top = pos[:, 1] - 0.5 * (ext[:, 3] - ext[:, 1]) * scale
    lift = np.maximum(-rng.uniform(0.0, 0.06, total) * S - top, 0.0)
    pos[:, 1] += np.where((rng.random(total) < 0.9) & ~is_crowd, lift, 0.0)
    near = scale * span / S + rng.normal(0, 0.08, total)
    depth_off = np.zeros(total)
    for s in range(n):
        idx = np.flatnonzero((scene_of == s) & ~is_crowd)
        depth_off[idx[np.argsort(near[idx], kind="stable")]] = -4.0 * S * np.arange(idx.size)
    depth_off[is_crowd] = 4.0 * S
    off = pos - 0.5 * (ext[:, :2] + ext[:, 2:]) * scale[:, None]

    def to_px(X):
        xy = X[..., :2] * scale[:, None, None] + off[:, None]
        return np.concatenate([xy, X[..., 2:] * scale[:, None, None] + depth_off[:, None, None]], -1)

    to_px.scale = scale
    return to_px


def _scene_labels(sc: dict, lab: np.ndarray, zb: np.ndarray, K: int, return_masks: bool, face_labels: str) -> dict:
    """Annotations of one rendered scene from its label and depth buffers (S, S)."""
    S = lab.shape[0]
    owner_of = np.concatenate([sc["owner"], np.full(K + 1 - sc["owner"].size, -1)])
    owner = owner_of[lab]
    n_people = sc["kp"].shape[0]
    n_ann = n_people + int(sc["crowd"])
    areas = np.bincount(owner[owner >= 0], minlength=n_ann)[:n_ann].astype(np.float32)
    masks = owner[None] == np.arange(n_ann)[:, None, None]
    bboxes, _ = _mask_boxes(masks)
    kp = sc["kp"]
    ix = np.floor(kp[..., 0] + 0.5).astype(np.int64)
    iy = np.floor(kp[..., 1] + 0.5).astype(np.int64)
    inside = (ix >= 0) & (ix < S) & (iy >= 0) & (iy < S)
    cx, cy = np.clip(ix, 0, S - 1), np.clip(iy, 0, S - 1)
    mine = owner[cy, cx] == np.arange(n_people)[:, None]
    front_ok = kp[..., 2] <= zb[cy, cx] + sc["tol"]
    v = face_rule(np.where(inside, np.where(mine & front_ok, 2, 1), 0), face_labels)
    kps = np.zeros((n_ann, 17, 3), np.float32)
    kps[:n_people, :, :2] = np.where(v[..., None] > 0, kp[..., :2], 0)
    kps[:n_people, :, 2] = v
    heads = np.zeros((n_ann, 4), np.float32)
    heads[:n_people] = sc["head"]
    iscrowd = (np.arange(n_ann) >= n_people).astype(np.int64)
    poses = np.concatenate([sc["pose"], np.full(n_ann - n_people, -1)]).astype(np.int64)
    yaws = np.concatenate([sc["yaw"], np.zeros(n_ann - n_people)]).astype(np.float32)
    keep = areas > 0  # people hidden behind others or outside the image are not annotated
    out = {
        "keypoints": kps[keep], "bboxes": bboxes[keep], "areas": areas[keep], "head_boxes": heads[keep],
        "iscrowd": iscrowd[keep], "pose": poses[keep], "yaw": yaws[keep],
    }  # fmt: skip
    if return_masks:
        out["masks"] = masks[keep]
    return out


def render_scenes(
    num: int,
    seed: int,
    size: int = 256,
    max_people: int = 6,
    *,
    start: int = 0,
    distractors: int = 8,
    crowd_prob: float = 0.0,
    face_labels: str = "seen",
    return_masks: bool = False,
) -> dict:
    """Render `num` multi-person scenes (scenes start..start+num−1 of the stream `seed`).

    Each scene has 1..max_people people whose extent is log-normal around 68% of the image side (8% to 160%;
    at size 256 about 20% small, 55% medium, 25% large people by COCO's sqrt(area) bins 32 and 96 px), fewer
    people when they are large, anywhere but mostly with the head inside (so some, and every close-up, are cut
    by the border), painted far (small) to near (large) so they overlap; `distractors`
    clutter capsules; with probability `crowd_prob` a group of small people annotated as one iscrowd=1 region.
    People left with no visible pixel are dropped. face_labels: as in `render_single`.
    Returns "images" (N, S, S, 3) uint8 and "people": N dicts with "keypoints" (P, 17, 3), "bboxes" (P, 4),
    "areas" (P,), "head_boxes" (P, 4), "iscrowd" (P,), "pose" (P,) (−1 for a crowd), "yaw" (P,), and with
    `return_masks` "masks" (P, S, S) bool (each person's visible pixels).

    Used in chapters 1, 3 and 7.
    """
    _check_common(num, seed, size, 64)
    if not isinstance(max_people, (int, np.integer)) or max_people < 1:
        raise ValueError(f"max_people must be a positive integer, got {max_people!r}")
    if not 0.0 <= crowd_prob <= 1.0:
        raise ValueError(f"crowd_prob must be in [0, 1], got {crowd_prob!r}")
    face_rule(np.zeros(17), face_labels)
    b0, b1 = start // BLOCK_SCENE, (start + num - 1) // BLOCK_SCENE + 1
    scenes = []
    for b in range(b0, b1):
        scenes += _scene_block(seed, b, size, max_people, distractors, crowd_prob)
    scenes = scenes[start - b0 * BLOCK_SCENE : start - b0 * BLOCK_SCENE + num]
    K = max(sc["A"].shape[0] for sc in scenes)
    pad = lambda key, w: np.stack([np.concatenate([sc[key], np.zeros((K - sc[key].shape[0], w))]) for sc in scenes])
    A, B, Rr, C = pad("A", 3), pad("B", 3), pad("R", 2), pad("colours", 3)
    zb, lab, rgb = R.raster(A, B, Rr, C, np.stack([sc["light"] for sc in scenes]), size)
    bg = {k: np.stack([sc["bg"][k] for sc in scenes]) for k in scenes[0]["bg"]}
    seeds = np.array([sc["noise_seed"] for sc in scenes], np.uint32)
    amps = np.array([sc["noise_amp"] for sc in scenes], np.float32)
    images = R.finish_batched(rgb, lab < K, seeds, amps, bg, size, chunk=32)
    people = [_scene_labels(sc, lab[i], zb[i], K, return_masks, face_labels) for i, sc in enumerate(scenes)]
    return {"images": images, "people": people}


# ----------------------------------------------------------------------------------------------------------------
def to_coco(batch: dict, kind: str, file_names=None, *, first_image_id: int = 1) -> dict:
    """A COCO person_keypoints dict (images, annotations, categories) for a `render_single`/`render_scenes` batch.

    Image ids count from `first_image_id`; file names default to "000000.png", ... (image id − 1). Keypoints,
    boxes are rounded to 0.01 px; each non-crowd annotation also carries "head_box" [x1, y1, x2, y2] for PCKh.

    Used in chapters 3 and 7.
    """
    if kind not in ("single", "scene"):
        raise ValueError(f"kind must be 'single' or 'scene', got {kind!r}")
    if "images" in batch:
        n, h, w = batch["images"].shape[:3]
    else:
        n = len(batch["keypoints"]) if kind == "single" else len(batch["people"])
        h = w = int(batch["size"])
    if file_names is None:
        file_names = [f"{first_image_id - 1 + i:06d}.png" for i in range(n)]
    if len(file_names) != n:
        raise ValueError(f"file_names must have one name per image ({n}), got {len(file_names)}")
    images = [
        {"id": first_image_id + i, "file_name": str(file_names[i]), "width": int(w), "height": int(h)} for i in range(n)
    ]
    people = (
        [{k: batch[k][i : i + 1] for k in ("keypoints", "bboxes", "areas", "head_boxes")} for i in range(n)]
        if kind == "single"
        else batch["people"]
    )
    anns = []
    for i, pp in enumerate(people):
        crowd = pp.get("iscrowd", np.zeros(len(pp["areas"]), int))
        for j in range(len(pp["areas"])):
            head = {} if crowd[j] else {"head_box": np.asarray(pp["head_boxes"][j])}
            anns.append(cocoio.annotation(first_image_id + i, pp["keypoints"][j], ann_id=len(anns) + 1,
                                          bbox=pp["bboxes"][j], area=pp["areas"][j], iscrowd=crowd[j], decimals=2,
                                          **head))  # fmt: skip
    info = {"description": f"posekit synthetic people ({kind})", "version": "1"}
    return cocoio.dataset(images, anns, info=info)


def _renumber(coco: dict, ann_offset: int) -> dict:
    for a in coco["annotations"]:
        a["id"] += ann_offset
    return coco


def write_dataset(
    out_dir, kind: str, num_images: int, seed: int, size: int | None = None, progress: bool = True, **knobs
) -> Path:
    """Render a dataset to `out_dir`: annotations.json (COCO person_keypoints) and images/000000.png, ...

    Written into a temporary sibling folder and moved into place at the end (`posekit.io.atomic_replace_dir`),
    so an interrupted run never leaves a complete-looking dataset. Knobs go to render_single / render_scenes.

    Used in chapter 1.
    """
    from PIL import Image
    from tqdm import tqdm


    if kind not in ("single", "scene"):
        raise ValueError(f"kind must be 'single' or 'scene', got {kind!r}")
    if size is None:
        size = 64 if kind == "single" else 256
    _check_common(num_images, seed, size, 32 if kind == "single" else 64)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output path {str(out_dir)!r} exists and is a file, expected a folder")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    except OSError as e:  # name the folder the user asked for, not our temporary one
        raise OSError(f"cannot write {out_dir}: {e.strerror or e}") from None
    try:
        (tmp / "images").mkdir()
        chunk = 512 if kind == "single" else 64
        images, anns = [], []
        bar = tqdm(total=num_images, desc=f"posekit synth {kind}", unit="img", file=sys.stderr, disable=not progress)
        for c in range(0, num_images, chunk):
            m = min(chunk, num_images - c)
            if kind == "single":
                batch = render_single(m, seed, size, start=c, **knobs)
            else:
                batch = render_scenes(m, seed, size, start=c, **knobs)
            for i in range(m):
                Image.fromarray(batch["images"][i]).save(tmp / "images" / f"{c + i:06d}.png", compress_level=6)
            part = _renumber(to_coco(batch, kind, first_image_id=c + 1), len(anns))
            images += part["images"]
            anns += part["annotations"]
            bar.update(m)
        bar.close()
        info = {"description": f"posekit synthetic people ({kind}), seed {seed}, size {size}", "version": "1"}
        cocoio.save_coco(cocoio.dataset(images, anns, info=info), tmp / "annotations.json")
        atomic_replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
