"""Repository rules: clean notebooks, matching dependency lists, lint-clean code, a complete table of contents."""

import json
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from tests.harness import ROOT, chapters


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    dirty = [
        i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs or execution counts; strip them"


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_notebook_starts_with_a_parameters_cell_and_one_title(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, f"{nb.name}: no code cells"
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), f"{nb.name}: first code cell not tagged"
    src = "".join(first["source"])
    assert re.search(r"^PROFILE\s*=", src, re.M) and re.search(r"^SEED\s*=", src, re.M), f"{nb.name}: no PROFILE/SEED"
    titles = [ln for c in cells if c["cell_type"] == "markdown" for ln in "".join(c["source"]).splitlines()
              if ln.startswith("# ")]  # fmt: skip
    assert len(titles) == 1, f"{nb.name}: expected exactly one '# ' title, found {titles}"
    body = "".join("".join(c["source"]) for c in code)
    assert f'posekit.setup("{nb.stem}"' in body, f'{nb.name}: must call posekit.setup("{nb.stem}", PROFILE, SEED)'


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_notebook_code_fits_the_rendered_page(nb):
    """Code cells show about 88 columns on the page; ruff checks this too, but skips single-token lines."""
    cells = json.loads(nb.read_text())["cells"]
    long = [(i, ln) for i, c in enumerate(cells) if c["cell_type"] == "code"
            for ln in "".join(c["source"]).splitlines() if len(ln) > 88]  # fmt: skip
    assert not long, f"{nb.name}: code lines over 88 columns (cell, line): {long[:5]}"


_BOOKKEEPING = ("posekit.record", "posekit.glue")
_HIDDEN = {"remove-cell", "remove-input"}


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_bookkeeping_is_hidden_from_the_page(nb):
    """A statement that only records a number or glues words for the prose sits in a cell the book does not
    show (tagged remove-cell), so the page shows the code that teaches. Inside a loop that also computes,
    the odd record call may stay."""
    import ast

    cells = json.loads(nb.read_text())["cells"]
    shown = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "code" or _HIDDEN & set(c.get("metadata", {}).get("tags", [])):
            continue
        for st in ast.parse("".join(c["source"])).body:
            value = st.value if isinstance(st, (ast.Expr, ast.Assign)) else None
            if isinstance(value, ast.Call) and ast.unparse(value.func) in _BOOKKEEPING:
                shown.append((i, ast.unparse(st)[:60]))
    assert not shown, f"{nb.name}: record/glue statements shown on the page (cell, statement): {shown[:5]}"


@pytest.mark.parametrize("nb", chapters(), ids=lambda p: p.stem)
def test_chapters_carry_no_test_machinery(nb):
    """Tolerances live in tests/expected, benchmarks are imported as modules: no plumbing in a reader's view.

    The coding exercises' test cells are the exception: they are tests (the book runs them but does not show
    them, and `posekit assign` turns them into the autograder's)."""
    cells = json.loads(nb.read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"
                   and c.get("metadata", {}).get("exercise", {}).get("role") != "test")  # fmt: skip
    for needle in ("tol=", "importlib", "spec_from_file_location", "sys.path"):
        assert needle not in code, f"{nb.name}: {needle!r} in a code cell"


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    text = (ROOT / "environment.yml").read_text()
    for name, extra in project["optional-dependencies"].items():
        if name in ("gpu", "bench"):  # hardware- or benchmark-only: named in a comment, not installed by conda
            for r in extra:
                assert f'"{r}"' in text, f"environment.yml: the {name} extra's {r!r} is not mentioned"
            continue
        declared |= {_name(r) for r in extra}
    env = yaml.safe_load(text)
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    mirrored = {_name(r) for r in pip_section if not r.startswith("-")}
    assert declared == mirrored, (
        f"only in pyproject: {declared - mirrored}; only in environment.yml: {mirrored - declared}"
    )


def test_dependencies_are_ranges_not_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for e in project["optional-dependencies"].values() for r in e]
    pinned = [r for r in reqs if "==" in r]
    assert not pinned, f"exact pins in pyproject.toml: {pinned}"


def test_jupyter_book_is_the_offline_1x_line():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    jb = [r for r in project["optional-dependencies"]["book"] if _name(r) == "jupyter-book"]
    assert jb and "<2" in jb[0]


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert list(ROOT.glob(f + ".*")), f"_toc.yml names {f}, which does not exist"
    for nb in chapters():
        assert f"chapters/{nb.stem}" in files, f"{nb.name} is not in book/_toc.yml"


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "set -euo pipefail" in ci
    assert "make test" in ci and "make test" in readme and "make book" in readme
