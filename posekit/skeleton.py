"""Keypoint sets: names, skeleton links, flip pairs, OKS sigmas and PCP limbs.

One source of truth for every chapter. Indices are 0-based and follow each
dataset's own order (COCO person_keypoints, MPII human pose).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeypointSet:
    """A dataset's keypoint definition.

    Attributes:
      name: short identifier ("coco", "mpii").
      names: keypoint names in dataset order, length J.
      links: skeleton edges as (i, j) index pairs, for drawing.
      flip_pairs: (left, right) index pairs swapped by a horizontal flip.
      sigmas: per-keypoint OKS sigmas, shape (J,), or None when the dataset has none.
      limbs: named (i, j) pairs that PCP scores ("left_upper_arm": (5, 7), ...).
      torso: (i, j) pair whose distance is the torso diameter used by PCK/PDJ.
    """

    name: str
    names: tuple[str, ...]
    links: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: np.ndarray | None
    limbs: dict[str, tuple[int, int]]
    torso: tuple[int, int]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of a keypoint by name; raises ValueError naming the valid names."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"{self.name}: unknown keypoint {name!r}; expected one of {list(self.names)}") from None

    def flip_permutation(self) -> np.ndarray:
        """Index array `p` such that `kpts[..., p, :]` swaps every left/right pair."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# fmt: off
# COCO's JSON stores the skeleton 1-based; here it is 0-based.
COCO_LINKS = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
COCO_LIMBS = {
    "left_upper_arm": (5, 7), "right_upper_arm": (6, 8), "left_lower_arm": (7, 9), "right_lower_arm": (8, 10),
    "left_upper_leg": (11, 13), "right_upper_leg": (12, 14), "left_lower_leg": (13, 15), "right_lower_leg": (14, 16),
}
# fmt: on

COCO = KeypointSet(
    name="coco",
    names=COCO_NAMES,
    links=COCO_LINKS,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=np.array(
        [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
    )
    / 10.0,
    limbs=COCO_LIMBS,
    # Torso diameter: left shoulder to right hip (the DeepPose/PCK convention for COCO-style sets).
    torso=(5, 12),
)

MPII_NAMES = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip

# fmt: off
MPII_LINKS = (
    (0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
)
MPII_LIMBS = {
    "left_upper_arm": (13, 14), "right_upper_arm": (12, 11), "left_lower_arm": (14, 15), "right_lower_arm": (11, 10),
    "left_upper_leg": (3, 4), "right_upper_leg": (2, 1), "left_lower_leg": (4, 5), "right_lower_leg": (1, 0),
    "head": (8, 9),
}
# fmt: on

MPII = KeypointSet(
    name="mpii",
    names=MPII_NAMES,
    links=MPII_LINKS,
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    sigmas=None,  # MPII defines no OKS sigmas; pass your own to OKS-based metrics.
    limbs=MPII_LIMBS,
    torso=(13, 2),  # left shoulder to right hip
)

# MPII's head size for PCKh: this factor times the diagonal of the annotated head box.
MPII_HEAD_SIZE_FACTOR = 0.6

KEYPOINT_SETS = {"coco": COCO, "mpii": MPII}


def get(name: str) -> KeypointSet:
    """Look up a keypoint set by name ("coco" or "mpii")."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint set {name!r}; expected one of {sorted(KEYPOINT_SETS)}") from None
