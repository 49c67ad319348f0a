"""Re-run chapters and store their recorded numbers as the expected values (after an intended change).

    python -m tests.refresh_expected --profile quick [chapters/03_heatmap.ipynb ...]
    python -m tests.refresh_expected --profile standard --from-results .cache/results   # reuse `make book`'s run

Tolerances are the tests' decision, kept in ``tests/expected/<chapter>.json``: a refresh keeps each number's
stored tolerance; a number new to this profile takes the other profile's tolerance for the same name, or
none (exact), and is listed so that a developer sets one by hand where the number may vary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from posekit.io import atomic_write_json
from tests.harness import EXPECTED_DIR, PROFILES, chapters, execute


def store(chapter: str, profile: str, values: dict) -> list[str]:
    """Write `values` as the chapter's expected numbers for `profile`; returns the names left without a tolerance."""
    path = EXPECTED_DIR / f"{chapter}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    old = data.get(profile, {})
    others = [data.get(p, {}) for p in PROFILES if p != profile]
    out, untolerated = {}, []
    for name, v in sorted(values.items()):
        tol = old.get(name, {}).get("tol")
        if name not in old:
            tol = next((o[name].get("tol") for o in others if name in o), None)
        if tol is None and isinstance(v["value"], float):
            untolerated.append(name)
        out[name] = {"value": v["value"], "tol": tol}
    data[profile] = out
    atomic_write_json(path, data, sort_keys=True)
    return untolerated


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=list(PROFILES))
    ap.add_argument("--from-results", type=Path, default=None,
                    help="take the numbers from this folder (e.g. .cache/results after `make book`)")  # fmt: skip
    ap.add_argument("notebooks", nargs="*", type=Path, help="chapters to refresh (default: all)")
    args = ap.parse_args(argv)
    todo = [nb.resolve() for nb in args.notebooks] or chapters()
    with tempfile.TemporaryDirectory() as tmp:
        for nb in todo:
            if not nb.exists():
                print(f"refresh_expected: no such notebook {nb}", file=sys.stderr)
                return 2
            if args.from_results is not None:
                results = args.from_results / f"{nb.stem}.{args.profile}.json"
                if not results.exists():
                    print(f"refresh_expected: {results} not found (run the chapter first)", file=sys.stderr)
                    return 2
                values, how = json.loads(results.read_text())["values"], f"from {results}"
            else:
                _, values, seconds = execute(nb, Path(tmp) / "out", args.profile, Path(tmp) / "results")
                how = f"{seconds:.0f} s"
            loose = store(nb.stem, args.profile, values)
            print(f"{nb.stem} [{args.profile}]: {len(values)} values stored ({how})")
            if loose:
                print(f"  no tolerance yet (exact to 1e-6): {', '.join(loose)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
