"""Plotting helpers: one figure style for the whole book, poses drawn over images.

Every function takes an optional matplotlib ``ax`` and returns it, so chapters can
compose panels freely.
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from posekit.skeleton import COCO, KeypointSet

# Left limbs blue, right limbs orange, centre grey: the book's colour code everywhere.
LEFT, RIGHT, CENTRE = "#1f77b4", "#ff7f0e", "#7f7f7f"


def set_style() -> None:
    """The book's matplotlib style (called by posekit.setup)."""
    matplotlib.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (6.4, 4.0),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "axes.titlesize": 10,
            "legend.frameon": False,
            "image.interpolation": "nearest",
        }
    )


def side_colour(kset: KeypointSet, i: int, j: int | None = None) -> str:
    """Colour of a keypoint (or a link i-j) by body side.

    Used in chapters 1 and 6.
    """
    names = [kset.names[i]] + ([kset.names[j]] if j is not None else [])
    if all(n.startswith(("left", "l_")) for n in names):
        return LEFT
    if all(n.startswith(("right", "r_")) for n in names):
        return RIGHT
    return CENTRE


def draw_pose(
    ax,
    kpts,
    kset: KeypointSet = COCO,
    *,
    vis=None,
    lw: float = 2.0,
    ms: float = 4.0,
    alpha: float = 1.0,
    style: str = "-",
    show_occluded: bool = True,
    label: str | None = None,
    colour: str | None = None,
):
    """Draw one pose: keypoints (J, 2) or (J, 3) with COCO visibility in the third column.

    Joints with v = 0 are skipped; occluded joints (v = 1) are drawn hollow. Limbs are coloured by side
    (left, right, centre) unless `colour` is given, which draws the whole person in one colour (telling
    people apart in a multi-person scene, chapter 5).

    Used in the preface and chapters 1, 2, 3, 6 and 7.
    """
    kpts = np.asarray(kpts, dtype=float)
    if kpts.ndim != 2 or kpts.shape[0] != kset.num_joints or kpts.shape[1] not in (2, 3):
        raise ValueError(f"draw_pose: kpts must be ({kset.num_joints}, 2 or 3), got {kpts.shape}")
    if vis is None:
        vis = kpts[:, 2] if kpts.shape[1] == 3 else np.full(kset.num_joints, 2.0)
    vis = np.asarray(vis)
    for i, j in kset.links:
        if vis[i] > 0 and vis[j] > 0:
            c = colour or side_colour(kset, i, j)
            ax.plot(kpts[[i, j], 0], kpts[[i, j], 1], style, color=c, lw=lw, alpha=alpha)
    for i in range(kset.num_joints):
        if vis[i] == 0 or (vis[i] == 1 and not show_occluded):
            continue
        c = colour or side_colour(kset, i)
        face = c if vis[i] == 2 else "none"
        ax.plot(kpts[i, 0], kpts[i, 1], "o", ms=ms, mfc=face, mec=c, mew=1.2, alpha=alpha)
    if label:
        ax.plot([], [], style, color=colour or CENTRE, label=label)
    return ax


def show_image(ax, image, title: str | None = None):
    """Show an (H, W, 3) uint8 or float image without axes.

    Used in the preface and chapters 1, 2 and 3.
    """
    ax.imshow(np.asarray(image))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def grid(n: int, cols: int = 4, size: float = 2.2):
    """A figure with n image panels in rows of `cols`; returns (fig, flat list of axes).

    Used in the preface and chapters 1, 2 and 3.
    """
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    axes = list(axes.ravel())
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def draw_tolerance(ax, centres, radii, *, colour: str = "#2ca02c", alpha: float = 0.25, fill: bool = True, lw=1.0):
    """Draw tolerance circles: one per centre (K, 2), radius a scalar or (K,) in pixels.

    Used by the metric chapters to show "how far a prediction may land and still count".

    Used in chapters 6 and 7.
    """
    centres = np.asarray(centres, dtype=float).reshape(-1, 2)
    radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(centres),))
    for (x, y), r in zip(centres, radii):
        ax.add_patch(plt.Circle((x, y), r, color=colour, alpha=alpha, fill=fill, lw=lw))
    return ax


def draw_boxes(ax, boxes, *, colour: str = "w", ls: str = "-", lw: float = 1.2, scores=None, label: str | None = None):
    """Draw COCO boxes (K, 4) [x, y, w, h], optionally with their scores written at the top-left corner.

    Used in chapter 4.
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    for k, (x, y, w, h) in enumerate(boxes):
        ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, ec=colour, ls=ls, lw=lw))
        if scores is not None:
            ax.text(x, y, f"{float(scores[k]):.2f}", color=colour, fontsize=7, va="bottom")
    if label:
        ax.plot([], [], ls, color=colour, label=label)
    return ax
