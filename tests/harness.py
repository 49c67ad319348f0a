"""The chapter regression harness: execute a chapter with papermill, compare its recorded numbers.

Expected values live in ``tests/expected/<chapter>.json``::

    {"quick": {"pck_heatmap": {"value": 0.93, "tol": 0.03}, ...}, "standard": {...}}

``tol`` is an absolute tolerance; ``null`` means exact for ints/strings and 1e-6 relative for floats.
Refresh them after an intended change with ``make expected PROFILE=quick``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS_DIR = ROOT / "chapters"
EXPECTED_DIR = ROOT / "tests" / "expected"
QUICK_BUDGET_S = 90.0  # a single-person chapter's quick profile on 2 cores
MULTI_PERSON_BUDGET_S = 120.0  # a multi-person chapter's (they train a detector or a bottom-up model too)
MULTI_PERSON = ("04_top_down", "05_bottom_up", "05b_top_down_vs_bottom_up")


def quick_budget(stem: str) -> float:
    """Seconds a chapter's quick profile may take on 2 cores."""
    return MULTI_PERSON_BUDGET_S if stem in MULTI_PERSON else QUICK_BUDGET_S
PROFILES = ("quick", "standard", "full")


def chapters() -> list[Path]:
    return sorted(p for p in CHAPTERS_DIR.glob("*.ipynb") if not p.name.endswith(".out.ipynb"))


def execute(nb: Path, out_dir: Path, profile: str, results_dir: Path, parameters: dict | None = None):
    """Run one chapter with papermill; returns (executed notebook path, recorded values, seconds)."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    os.environ["POSEKIT_RESULTS"] = str(results_dir)  # the kernel inherits the environment
    out = out_dir / nb.name
    params = {"PROFILE": profile, **(parameters or {})}
    t0 = time.perf_counter()
    papermill.execute_notebook(
        str(nb), str(out), parameters=params, cwd=str(nb.parent), kernel_name="python3", progress_bar=False
    )
    seconds = time.perf_counter() - t0
    results_file = results_dir / f"{nb.stem}.{profile}.json"
    if not results_file.exists():
        raise AssertionError(f"{nb.name}: ran but wrote no results file {results_file} (did it call posekit.setup?)")
    values = json.loads(results_file.read_text())["values"]
    return out, values, seconds


def expected_for(chapter: str, profile: str) -> dict:
    path = EXPECTED_DIR / f"{chapter}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get(profile, {})


def _close(expected, actual, tol) -> bool:
    if isinstance(expected, bool) or isinstance(expected, str) or isinstance(actual, (str, bool)):
        return expected == actual
    if tol is None:
        if isinstance(expected, int) and isinstance(actual, int):
            return expected == actual
        return math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-12)
    return abs(actual - expected) <= tol


def compare(chapter: str, profile: str, recorded: dict, expected: dict) -> list[str]:
    """Messages naming the chapter, the number, the expected and the actual value; empty when all agree."""
    problems = []
    if not expected:
        problems.append(
            f"{chapter} [{profile}]: no expected values stored in tests/expected/{chapter}.json; "
            f"run `make expected PROFILE={profile}`"
        )
    for name, exp in expected.items():
        if name not in recorded:
            problems.append(
                f"{chapter} [{profile}]: {name} expected {exp['value']!r} but the chapter did not record it"
            )
            continue
        actual = recorded[name]["value"]
        tol = exp.get("tol")
        if not _close(exp["value"], actual, tol):
            how = "exactly" if tol is None else f"within ±{tol}"
            problems.append(f"{chapter} [{profile}]: {name} expected {exp['value']!r} {how}, got {actual!r}")
    for name in sorted(set(recorded) - set(expected)):
        if expected:
            problems.append(
                f"{chapter} [{profile}]: {name} = {recorded[name]['value']!r} is recorded but has no expected "
                f"value; run `make expected PROFILE={profile}`"
            )
    return problems
