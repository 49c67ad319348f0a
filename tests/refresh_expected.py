"""Re-run chapters and store their recorded numbers as the expected values (after an intended change).

    python -m tests.refresh_expected --profile quick [chapters/03_heatmap.ipynb ...]

Tolerances come from each ``posekit.record(..., tol=...)`` call.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from posekit.io import atomic_write_json
from tests.harness import EXPECTED_DIR, chapters, execute


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=["quick", "standard", "full"])
    ap.add_argument("notebooks", nargs="*", type=Path, help="chapters to refresh (default: all)")
    args = ap.parse_args(argv)
    todo = args.notebooks or chapters()
    with tempfile.TemporaryDirectory() as tmp:
        for nb in todo:
            nb = nb.resolve()
            if not nb.exists():
                print(f"refresh_expected: no such notebook {nb}", file=sys.stderr)
                return 2
            _, values, seconds = execute(nb, Path(tmp) / "out", args.profile, Path(tmp) / "results")
            path = EXPECTED_DIR / f"{nb.stem}.json"
            data = json.loads(path.read_text()) if path.exists() else {}
            data[args.profile] = {k: {"value": v["value"], "tol": v["tol"]} for k, v in sorted(values.items())}
            atomic_write_json(path, data, sort_keys=True)
            print(
                f"{nb.stem} [{args.profile}]: {len(values)} values stored in {path.relative_to(Path.cwd())} "
                f"({seconds:.0f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
