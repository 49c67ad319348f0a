"""The preface's table of the full profile (`posekit.profiles.FULL`) agrees with the chapters' settings cells."""

from __future__ import annotations

import ast
import json

import pytest

from posekit import profiles
from tests.harness import ROOT


def _full_values(chapter: str) -> dict:
    """{NAME: value} of every `NAME = ctx.pick(..., full=...)` in a chapter's code cells."""
    cells = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())["cells"]
    found = {}
    for c in cells:
        if c["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(c["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            named = isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            if named and isinstance(node.value, ast.Call) and getattr(node.value.func, "attr", "") == "pick":
                full = next((k.value for k in node.value.keywords if k.arg == "full"), None)
                if full is not None:
                    try:
                        found[node.targets[0].id] = eval(compile(ast.Expression(full), "<full>", "eval"), {})
                    except NameError:
                        pass  # depends on another setting (e.g. SEED)
    return found


@pytest.mark.parametrize("row", profiles.FULL, ids=lambda r: f"{r[0]}-{r[1]}")
def test_full_profile_table_mirrors_the_chapter(row):
    chapter, _, _, _, size, steps, batch = row
    values = _full_values(chapter)
    for name, value in (steps, batch):
        if name.isupper():  # a settings variable of the chapter (lower case: a library default)
            assert values.get(name) == value, f"{chapter}: {name} is {values.get(name)!r}, the table says {value!r}"
    sizes = [v for k, v in values.items() if k in ("SIZE", "CROP", "DET_INPUT", "INPUT")]
    assert any(tuple(s) == size if isinstance(s, tuple) else (s, s) == size for s in sizes), (chapter, sizes, size)


def test_full_profile_rows_without_estimates_are_cheap():
    rows = profiles.rows(estimate=False)
    assert len(rows) == len(profiles.FULL) and all(len(r) == 6 for r in rows)
