"""Throughput of the synthetic people generator (`posekit.synth`): images per second, after warm-up.

    python benchmarks/bench_synth.py [--quick]

Prints a table (kind, size, batch, images/s, images per CPU-second). The first call of each shape
compiles the jax renderer; that
one-off cost is reported separately and left out of the throughput.
"""

from __future__ import annotations

import argparse
import os
import time

from posekit import synth


def bench(kind: str, size: int, batch: int, repeats: int) -> tuple[float, float, float]:
    """(seconds of the first, compiling call; images per wall-clock second and per CPU second (all threads)
    over `repeats` warm calls). On a shared machine the CPU-second rate is the steadier of the two."""
    fn = synth.render_single if kind == "single" else synth.render_scenes
    t0 = time.perf_counter()
    fn(batch, 0, size)
    first = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(repeats):
        fn(batch, 1, size, start=r * batch)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return first, batch * repeats / wall, batch * repeats / cpu


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller runs")
    args = ap.parse_args(argv)
    cases = [("single", 64, 1024), ("single", 128, 256), ("scene", 256, 128)]
    repeats = 2 if args.quick else 5
    if args.quick:
        cases = [("single", 64, 512), ("scene", 256, 64)]
    print(f"cores: {os.cpu_count()}, load average (1 min) before: {os.getloadavg()[0]:.2f}")
    print(f"{'kind':<8} {'size':>5} {'batch':>6} {'first call s':>13} {'images/s':>10} {'images/CPU-s':>13}")
    for kind, size, batch in cases:
        first, rate, per_cpu = bench(kind, size, batch, repeats)
        print(f"{kind:<8} {size:>5} {batch:>6} {first:>13.2f} {rate:>10.0f} {per_cpu:>13.0f}")


if __name__ == "__main__":
    main()
