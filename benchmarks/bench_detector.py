"""Speed of chapter 4's person detector (CenterNet) and of the top-down pipeline around it.

    python benchmarks/bench_detector.py            # tiny and small detectors at 128 and 256 px; pipeline 1-16 people
    python benchmarks/bench_detector.py --quick    # tiny at 128 px, fewer steps

Detector: train images/s through the jitted step of `posekit.train.fit` (CenterNet's loss on real targets
from `posekit.scenes.detector_batches`) and inference images/s through `posekit.detection.detect` (network and
decoding). Pipeline: `posekit.top_down.top_down` on scenes forced to K boxes per image (top-K = K, no score
threshold), untrained models (the work does not depend on the weights), milliseconds per image split into
detector, single-person model and post-processing. Prints markdown tables; runs unchanged on a GPU.
"""

from __future__ import annotations

import argparse
import time

import jax
from flax import nnx

from posekit import scenes
from posekit.detection import detect
from posekit.experiments import cost
from posekit.losses import detection_loss
from posekit.models import SimpleBaseline, flops, param_count
from posekit.models.centernet import CenterNet
from posekit.top_down import top_down


def detector_speed(variant: str, size: int, batch: int, steps: int, n_infer: int, data: dict) -> dict:
    """Train and inference images/s of `CenterNet(variant)` at size × size inputs."""
    model = CenterNet(variant, rngs=nnx.Rngs(0))
    b = scenes.detector_batches(data, size, batch, seed=0)(0)
    train = cost.train_speed(model, lambda m, x: detection_loss(m(x["images"], train=True), x), b, steps)
    images = data["images"][:n_infer]
    detect(model, images, input_size=size)  # compile
    t = time.perf_counter()
    detect(model, images, input_size=size)
    return {"params": param_count(model), "mflops": flops(model, (1, size, size, 3)) / 1e6, "train": train,
            "infer": len(images) / (time.perf_counter() - t)}  # fmt: skip


def pipeline_ms(people_counts, images, input_size=(128, 96), det_input: int = 128) -> list[dict]:
    """Milliseconds per image of the top-down pipeline with K boxes per image, split by stage."""
    det = CenterNet("tiny", rngs=nnx.Rngs(0))
    pose = SimpleBaseline("tiny", rngs=nnx.Rngs(0))
    kw = dict(detector=det, det_input=det_input, det_threshold=-1.0, input_size=input_size)
    rows = []
    for k in people_counts:
        top_down(images, pose, top_k=k, **kw)  # compile the shapes of this run
        t = {}
        top_down(images, pose, top_k=k, timings=t, **kw)
        rows.append({"people": k, **{s: 1000 * v / len(images) for s, v in t.items()}})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny detector at 128 px only, fewer steps")
    args = ap.parse_args(argv)
    data = scenes.validation_scenes("quick")
    cases = [("tiny", 128)] if args.quick else [("tiny", 128), ("tiny", 256), ("small", 128)]
    steps, n_infer = (5, 32) if args.quick else (20, 64)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), batch 16\n")
    print("| detector | input | params | MFLOPs/img | train img/s | inference img/s (with decoding) |")
    print("|---|---|---|---|---|---|")
    for variant, size in cases:
        r = detector_speed(variant, size, 16, steps, n_infer, data)
        print(f"| CenterNet {variant} | {size}×{size} | {r['params']:,} | {r['mflops']:.1f} | {r['train']:.0f} "
              f"| {r['infer']:.0f} |", flush=True)  # fmt: skip
    counts = [1, 4, 16] if args.quick else [1, 2, 4, 8, 16]
    print("\n| people per image | detector ms | single-person ms | post-processing ms | total ms |")
    print("|---|---|---|---|---|")
    for r in pipeline_ms(counts, data["images"][: 8 if args.quick else 32]):
        total = r["detector"] + r["pose"] + r["post"]
        print(f"| {r['people']} | {r['detector']:.1f} | {r['pose']:.1f} | {r['post']:.1f} | {total:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
