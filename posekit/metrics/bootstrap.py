"""How much of an AP difference the choice of validation images could make: a paired bootstrap over images.

Two pipelines scored on the same images differ by some AP. Drawing the images again with replacement (the same
draw for both) and scoring both on each draw shows how far that difference moves with the sample of images: the
percentile interval of the redrawn differences. It measures the images' sampling noise only: a second training
seed of a model would move its AP too, and that spread is not in the interval.

COCO's AP is not a mean over images (it ranks every detection of every image together), so each draw is scored
by the full evaluator (`coco_eval`) on a resampled copy of the ground truth and the results
(`posekit.cocoio.resample_images`), about 10 ms per draw and pipeline for 400 scenes. Used in chapter 5.
"""

from __future__ import annotations

import numpy as np

from posekit.cocoio import resample_images
from posekit.metrics.coco import coco_eval


def paired_ap_difference(gt: dict, results_a: list, results_b: list, *, draws: int = 1000, level: float = 0.9,
                         seed: int = 0, area_range=None, stat: str = "AP") -> dict:  # fmt: skip
    """`stat` of `results_b` minus that of `results_a` on the images of `gt`, with a paired bootstrap interval.

    Each of `draws` draws takes as many images as `gt` has, with replacement, and scores both results lists on
    them (`coco_eval`, `area_range` as there). Returns {"difference": on all images, "low", "high": the
    (1 - level) / 2 and (1 + level) / 2 quantiles of the draws' differences, "level", "draws",
    "samples": the draws' differences (draws,)}.
    """
    if int(draws) != draws or draws < 2:
        raise ValueError(f"draws: expected a whole number of at least 2, got {draws!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected a coverage between 0 and 1 (e.g. 0.9), got {level!r}")
    ids = [img["id"] for img in gt["images"]]
    if not ids:
        raise ValueError("gt: expected ground truth with at least one image, found none")

    def score(g, res):
        return float(coco_eval(g, res, area_range=area_range)[stat])

    rng = np.random.default_rng(seed)
    samples = np.empty(int(draws))
    for k in range(int(draws)):
        g, a, b = resample_images(gt, rng.choice(ids, len(ids)), results_a, results_b)
        samples[k] = score(g, b) - score(g, a)
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": score(gt, results_b) - score(gt, results_a), "low": float(low), "high": float(high),
            "level": float(level), "draws": int(draws), "samples": samples}  # fmt: skip
