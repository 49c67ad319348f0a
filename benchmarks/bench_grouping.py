"""Speed of chapter 5's bottom-up models and of associative-embedding grouping as the people grow.

    python benchmarks/bench_grouping.py            # lite 1/4 and 1/2 models at 128 and 256 px; 1-16 people
    python benchmarks/bench_grouping.py --quick    # 128 px only, fewer steps and images

Models: train images/s through the jitted step of `posekit.train.fit` (`posekit.losses.bottomup_loss` on
real targets from `posekit.scenes.bottomup_batches`) and inference images/s of the network with the flip
test (`posekit.bottom_up.network_maps`, no grouping). Grouping: `posekit.grouping.group` on *perfect* maps
(every true person's Gaussians and a distinct tag per person, as `analysis.bottom_up.perfect_maps_ap` draws
them) of `posekit.scenes.people_grid` images holding exactly K people, so the time measures the algorithm, not
a model's false candidates: milliseconds per image with and without refinement. Prints markdown tables; runs
unchanged on a GPU.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from flax import nnx

from posekit import scenes
from posekit.analysis.bottom_up import perfect_maps
from posekit.bottom_up import network_maps
from posekit.experiments import cost
from posekit.grouping import group
from posekit.losses import bottomup_loss
from posekit.models import flops, param_count
from posekit.models.bottom_up import AssociativeEmbedding


def model_speed(higher: bool, size: int, batch: int, steps: int, n_infer: int, data: dict) -> dict:
    """Train and inference (flip test) images/s of `AssociativeEmbedding("lite", higher)` at size × size."""
    model = AssociativeEmbedding("lite", higher=higher, heatmap_prior=0.1, rngs=nnx.Rngs(0))
    b = scenes.bottomup_batches(data, size, batch, seed=0, higher=higher)(0)
    train = cost.train_speed(model, lambda m, x: bottomup_loss(m(x["images"], train=True), x), b, steps)
    images = data["images"][:n_infer]
    network_maps(model, images, input_size=size, flip_test=True)  # compile
    t = time.perf_counter()
    network_maps(model, images, input_size=size, flip_test=True)
    return {"params": param_count(model), "mflops": flops(model, (1, size, size, 3)) / 1e6, "train": train,
            "infer": len(images) / (time.perf_counter() - t)}  # fmt: skip


def grouping_ms(people_counts, num_images: int, size: int = 128, stride: int = 2) -> list[dict]:
    """Milliseconds per image of `group` on perfect maps of K-people images, with and without refinement."""
    rows = []
    for k in people_counts:
        grid = scenes.people_grid(k, num_images, seed=k)
        scale = size / grid["images"].shape[1]
        kps = [p["keypoints"] * [scale, scale, 1] for p in scenes.people(grid, include_crowd=False)]
        maps = [perfect_maps(kp, input_size=size, stride=stride) for kp in kps]
        row = {"people": k}
        for refine in (True, False):
            t = time.perf_counter()
            found = [len(group(h, tg, refine=refine)[0]) for h, tg in maps]
            row["refine" if refine else "plain"] = 1000 * (time.perf_counter() - t) / len(maps)
        row["found"] = float(np.mean(found))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128 px only, fewer steps and images")
    args = ap.parse_args(argv)
    data = scenes.validation_scenes("quick")
    sizes = [128] if args.quick else [128, 256]
    steps, n_infer = (3, 16) if args.quick else (10, 64)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), batch 16\n")
    print("| model | input | params | MFLOPs/img | train img/s | inference img/s (flip test) |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        for higher in (False, True):
            r = model_speed(higher, size, 16, steps, n_infer, data)
            name = "HigherHRNet-lite (1/4 + 1/2)" if higher else "AE HRNet-lite (1/4)"
            print(f"| {name} | {size}×{size} | {r['params']:,} | {r['mflops']:.0f} | {r['train']:.0f} "
                  f"| {r['infer']:.0f} |", flush=True)  # fmt: skip
    counts = [1, 4, 16] if args.quick else [1, 2, 4, 8, 16]
    print("\n| people per image | people found | grouping ms (with refinement) | grouping ms (without) |")
    print("|---|---|---|---|")
    for r in grouping_ms(counts, 4 if args.quick else 16):
        print(f"| {r['people']} | {r['found']:.1f} | {r['refine']:.1f} | {r['plain']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
