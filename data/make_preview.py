"""Render data/preview.png, the picture on the README's first screen.

.venv/bin/python data/make_preview.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from posekit import io, skeleton, synth, viz  # noqa: E402

OUT = Path(__file__).with_name("preview.png")


def main() -> None:
    viz.set_style()
    people = synth.render_single(6, seed=7, size=128)
    fig, axes = viz.grid(6, cols=6, size=1.6)
    for ax, image, kpts in zip(axes, people["images"], people["keypoints"]):
        viz.show_image(ax, image)
        viz.draw_pose(ax, kpts, skeleton.COCO, lw=1.5, ms=3)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.04)
    tmp = OUT.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    io.atomic_write_bytes(OUT, tmp.read_bytes())
    tmp.unlink()


if __name__ == "__main__":
    main()
