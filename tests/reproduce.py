"""Did I reproduce the book? Compare the numbers the last build recorded with the stored expected values.

    make reproduce                 # after `make book`: the standard profile
    python -m tests.reproduce --profile quick --results .cache/results

Prints one row per number: chapter, name, expected, got, tolerance and whether it is within it. Exit code 1
when a number is outside its tolerance or missing, 0 when everything reproduced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.harness import PROFILES, _close, chapters, expected_for


def rows(profile: str, results_dir: Path) -> list[tuple]:
    out = []
    for nb in chapters():
        expected = expected_for(nb.stem, profile)
        path = results_dir / f"{nb.stem}.{profile}.json"
        got = json.loads(path.read_text())["values"] if path.exists() else {}
        for name, exp in sorted(expected.items()):
            if name not in got:
                out.append((nb.stem, name, exp["value"], None, exp.get("tol"), "missing"))
                continue
            ok = _close(exp["value"], got[name]["value"], exp.get("tol"))
            out.append((nb.stem, name, exp["value"], got[name]["value"], exp.get("tol"), "ok" if ok else "OFF"))
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="standard", choices=list(PROFILES))
    ap.add_argument("--results", type=Path, default=None, help="results folder (default: .cache/results)")
    args = ap.parse_args(argv)
    from posekit.book import results_dir

    folder = args.results or results_dir()
    table = rows(args.profile, folder)
    if not table:
        print(f"no expected {args.profile} values stored in tests/expected/")
        return 1
    widths = [max(len(_fmt(r[i])) for r in table + [("chapter", "name", "expected", "got", "tol", "")]) for i in
              range(6)]  # fmt: skip
    head = ("chapter", "name", "expected", "got", "tol", "")
    print("  ".join(str(h).ljust(w) for h, w in zip(head, widths)))
    for r in table:
        print("  ".join(_fmt(c).ljust(w) for c, w in zip(r, widths)))
    bad = [r for r in table if r[5] != "ok"]
    ran = {r[0] for r in table if r[5] != "missing"}
    print(f"\n{len(table) - len(bad)} of {len(table)} numbers reproduced ({args.profile} profile, results in {folder}, "
          f"{len(ran)} chapters ran)")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
