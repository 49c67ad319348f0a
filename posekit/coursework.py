"""Coursework: the chapters' coding exercises as student notebooks, otter-grader autograders, and grading.

One source of truth: each chapter notebook holds its coding exercises, their solutions and their tests. The
cells are marked in their metadata under ``"exercise"``; nothing else marks them:

* ``{"role": "intro"}``: optional markdown before the setup; the student's copy gets `STUDENT_INTRO` instead.
* ``{"role": "setup"}``: one code cell that imports what the exercises need. The exercises start here, and a
  graded notebook runs only from here on (the chapter's cells above it are tagged ``otter_ignore``).
* ``{"role": "prompt", "name": "q", "points": 1}``: a markdown cell with a ``{exercise}`` directive.
* ``{"role": "solution", "name": "q", "mistake": "..."}``: the solution (a code cell tagged ``hide-input``,
  so the book shows it behind a toggle). Top-level functions keep their signature and docstring in the
  student's copy and lose their body; single-line assignments ``x = ...`` lose their right-hand side.
  ``mistake`` is a plausible wrong answer (a whole replacement cell); CI grades it to prove that the tests
  catch it. It never leaves this notebook.
* ``{"role": "test", "name": "q", "hidden": bool}``: a test cell (tagged ``remove-cell``: the book executes it,
  so every build checks the solutions, but does not show it). Public tests go to the student; hidden ones
  only into the autograder.

`assign` turns a chapter into otter-grader's master format (raw ``# BEGIN QUESTION`` cells and solution
markers) and calls ``otter assign``; `grade` runs ``otter run`` on a folder of returned notebooks and writes
a CSV with one row per student and question. otter-grader is an optional extra: ``pip install -e ".[teach]"``.

    posekit assign --out assignments                 # every chapter with exercises
    posekit grade submissions/ --autograders assignments/autograder --out scores.csv

Used in the preface ("For teachers").
"""

from __future__ import annotations

import ast
import builtins
import copy
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from posekit.io import atomic_replace_dir, atomic_write_text

ROLES = ("intro", "setup", "prompt", "solution", "test")
STUDENT_INTRO = """## Coding exercises

Write your answer in each cell that holds `...`, then run the `grader.check(...)` cell under it: it runs the
public tests of that exercise. Your teacher grades with more tests than these, so a passing check is a good
sign, not a guarantee. Run the cells from here down in order; the chapter above is there to read and rerun."""
STUDENT_INTRO_KO = """## 코딩 연습 문제

`...`가 있는 각 셀에 답을 쓰고, 그 아래의 `grader.check(...)` 셀을 실행하라. 그 연습 문제의 공개 테스트가 실행된다.
교사는 이보다 많은 테스트로 채점하므로, 검사를 통과했다는 것은 좋은 신호일 뿐 보장은 아니다. 여기서부터 아래로 셀을
차례로 실행하라. 위쪽의 장 본문은 읽고 다시 실행해 보라고 남겨 둔 것이다."""
WITHHELD = "*(The solution to this exercise is withheld from the student notebook.)*\n"
# The student notebook's own words, per language (the chapters' text comes from the book's catalogues).
STUDENT_WORDS = {
    "en": dict(intro=STUDENT_INTRO, withheld=WITHHELD, exercise="Exercise",
               points=lambda p: f"{p:g} {'point' if p == 1 else 'points'}"),
    "ko": dict(intro=STUDENT_INTRO_KO, withheld="*(이 연습 문제의 풀이는 학생용 노트북에서 빠져 있다.)*\n",
               exercise="연습 문제", points=lambda p: f"{p:g}점"),
}  # fmt: skip
LANGUAGES = tuple(STUDENT_WORDS)
BOOK_TAGS = ("hide-input", "remove-cell", "remove-input")
IGNORE_TAG = "otter_ignore"


@dataclass
class Exercise:
    """One coding exercise of a chapter: its cells (nbformat cells) and its points."""

    name: str
    points: float = 1.0
    prompt: dict | None = None
    solution: dict | None = None
    tests: list = field(default_factory=list)

    @property
    def mistake(self) -> str:
        return self.solution.metadata["exercise"]["mistake"]


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("exercise", {})


def read_chapter(path) -> nbformat.NotebookNode:
    """A chapter notebook, with a clear error when the file is missing or not a notebook."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such chapter notebook")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises several kinds for a malformed file
        raise ValueError(f"{path}: not a readable Jupyter notebook ({e})") from None


def exercises(nb, where: str = "notebook") -> list[Exercise]:
    """The coding exercises of a chapter, in order; checks that each is complete.

    Raises ValueError naming the exercise and what is missing: a prompt, a solution with a ``mistake``, a
    public test, or the setup cell before the first exercise.
    """
    found: dict[str, Exercise] = {}
    setup_seen = False
    for i, cell in enumerate(nb.cells):
        m = _meta(cell)
        if not m:
            continue
        role = m.get("role")
        if role not in ROLES:
            raise ValueError(f"{where}: cell {i}: exercise role must be one of {ROLES}, found {role!r}")
        if role in ("intro", "setup"):
            setup_seen = setup_seen or role == "setup"
            continue
        name = m.get("name")
        if not name or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"{where}: cell {i}: exercise name must be an identifier, found {name!r}")
        if not setup_seen:
            raise ValueError(f"{where}: cell {i}: exercise {name!r} comes before the exercise setup cell")
        ex = found.setdefault(name, Exercise(name))
        if role == "prompt":
            ex.prompt, ex.points = cell, float(m.get("points", 1))
        elif role == "solution":
            ex.solution = cell
        else:
            ex.tests.append(cell)
    for ex in found.values():
        missing = [w for w, ok in (("a prompt cell", ex.prompt), ("a solution cell", ex.solution),
                                   ("a public test", any(not _meta(t).get("hidden") for t in ex.tests)))
                   if not ok]  # fmt: skip
        if ex.solution is not None and not _meta(ex.solution).get("mistake"):
            missing.append("a 'mistake' (a wrong answer the tests must catch) in its solution's metadata")
        if missing:
            raise ValueError(f"{where}: exercise {ex.name!r} needs " + ", ".join(missing))
    return list(found.values())


# ---------------------------------------------------------------------------------------------------------
# The student's copy of a solution
# ---------------------------------------------------------------------------------------------------------


def mark_solution(source: str, where: str = "solution") -> str:
    """Otter solution markers for a solution cell: function bodies become a ``# BEGIN/END SOLUTION`` block
    (the signature and docstring stay), single-line assignments get ``# SOLUTION``; imports stay as they are.
    Anything else is an error, so no solution text can slip into the student's copy unmarked."""
    lines = source.splitlines()
    tree = ast.parse(source)
    out: list[str] = []
    pos = 0  # next line (0-based) of `lines` to copy
    for node in tree.body:
        start, end = node.lineno - 1, node.end_lineno
        out += lines[pos:start]
        if isinstance(node, ast.FunctionDef):
            body = node.body
            keep = body[0].end_lineno if _is_docstring(body[0]) else body[0].lineno - 1
            rest = body[1:] if _is_docstring(body[0]) else body
            if not rest:
                raise ValueError(f"{where}: function {node.name!r} has no body to hide")
            indent = " " * rest[0].col_offset
            out += lines[start:keep]
            out += [f"{indent}# BEGIN SOLUTION", *lines[keep:end], f"{indent}# END SOLUTION"]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and start == end - 1:
            out.append(lines[start] + "  # SOLUTION")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            out += lines[start:end]
        else:
            raise ValueError(
                f"{where}: line {start + 1}: a solution cell may hold functions, single-line assignments and "
                f"imports only, found {type(node).__name__}"
            )
        pos = end
    return "\n".join(out + lines[pos:])


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def solution_lines(source: str) -> list[str]:
    """The lines of a solution that the student must not see (stripped, non-trivial)."""
    marked = mark_solution(source).splitlines()
    hidden, inside = [], False
    for line in marked:
        s = line.strip()
        if s == "# BEGIN SOLUTION":
            inside = True
        elif s == "# END SOLUTION":
            inside = False
        elif inside:
            hidden.append(s)
        elif s.endswith("# SOLUTION"):
            hidden.append(s.removesuffix("# SOLUTION").split("=", 1)[1].strip())
    return [h for h in hidden if len(h) > 12 and not h.startswith("#")]


def test_function(source: str, name: str) -> str:
    """A test cell as otter's exception-based test: a function whose parameters are the names the cell reads
    from the notebook (otter passes them in from the student's globals)."""
    tree = ast.parse(source)
    stored, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
        elif isinstance(node, ast.alias):
            stored.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.Lambda):
            stored.update(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))
            if isinstance(node, ast.FunctionDef):
                stored.add(node.name)
    params = sorted(loaded - stored - set(dir(builtins)))
    body = "\n".join("    " + line if line.strip() else "" for line in source.strip().splitlines())
    return f"def {name}({', '.join(params)}):\n{body}"


def prompt_markdown(source: str, ex: Exercise, language: str = "en") -> str:
    """A ``{exercise}`` directive as plain Jupyter markdown (Jupyter does not render MyST directives)."""
    lines = source.strip().splitlines()
    if lines and lines[0].startswith("```{exercise}"):
        title = lines[0].removeprefix("```{exercise}").strip()
        body = [line for line in lines[1:] if not re.match(r":\w+:", line)]
        if body and body[-1].strip() == "```":
            body = body[:-1]
        words = STUDENT_WORDS[language]
        name = f"{words['exercise']} `{ex.name}`" + (f": {title}" if title else "")
        head = f"**{name}** ({words['points'](ex.points)})"
        return "\n".join([head, "", *body]).replace("~~~", "```")
    return source


# ---------------------------------------------------------------------------------------------------------
# The otter master notebook
# ---------------------------------------------------------------------------------------------------------


SOLUTION_BLOCK = re.compile(r"^(`{3,})\{solution\}.*?^\1[ \t]*$\n?", re.M | re.S)


def withhold_solutions(markdown: str, language: str = "en") -> str:
    """The open exercises' ``{solution}`` blocks of a markdown cell, replaced by a note for the student."""
    return SOLUTION_BLOCK.sub(STUDENT_WORDS[language]["withheld"].replace("\\", "\\\\"), markdown)


def _raw(text: str):
    return nbformat.v4.new_raw_cell(text)


def _plain(cell, *tags: str, language: str = "en"):
    """A copy of a chapter cell for the student: no book-only tags, no exercise metadata, no outputs."""
    c = copy.deepcopy(cell)
    c.metadata.pop("exercise", None)
    kept = [t for t in c.metadata.get("tags", []) if t not in BOOK_TAGS] + list(tags)
    if kept:
        c.metadata["tags"] = kept
    else:
        c.metadata.pop("tags", None)
    if c.cell_type == "code":
        c.outputs, c.execution_count = [], None
    elif c.cell_type == "markdown":
        c.source = withhold_solutions(c.source, language)
    return c


def translated_chapter(nb, language: str, locale_dir, where: str = "notebook"):
    """A copy of chapter `nb` whose Markdown cells are in `language` (from the book's catalogue of that chapter,
    `posekit.translation`); code cells are untouched. Raises when the catalogue lacks some of the text."""
    from posekit.translation import load_catalogue, translate_markdown

    if language not in LANGUAGES:
        raise ValueError(f"language: expected one of {LANGUAGES}, got {language!r}")
    out = copy.deepcopy(nb)
    if language == "en":
        return out
    messages = load_catalogue(locale_dir, language, Path(where).stem)
    missing = []
    for cell in out.cells:
        if cell.cell_type == "markdown":
            cell.source, more = translate_markdown(cell.source, messages)
            missing += more
    if missing:
        raise ValueError(f"{where}: {len(missing)} passages have no {language!r} translation in {locale_dir} "
                         f"(make catalogues, then translate), e.g. {missing[0][:80]!r}")  # fmt: skip
    return out


def master_notebook(nb, name: str, where: str = "notebook", language: str = "en"):
    """A chapter in otter-grader's master format (``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION`` ...).

    The chapter's own cells before the exercise setup stay, for the student to read and run, tagged
    ``otter_ignore`` so that grading runs only the exercises; the open exercises' solution dropdowns are
    withheld."""
    exs = {ex.name: ex for ex in exercises(nb, where)}
    config = (
        "# ASSIGNMENT CONFIG\n"
        f"name: {name}\n"
        "init_cell: true\n"
        "check_all_cell: true\n"
        "export_cell: false\n"
        "run_tests: false\n"
        "solutions_pdf: false\n"
        "tests:\n"
        "    files: false\n"
        "    ok_format: false\n"
    )
    cells = [_raw(config)]
    started, done = False, set()
    for cell in nb.cells:
        m = _meta(cell)
        if m.get("role") == "setup":
            started = True
        if m.get("role") == "intro":
            cells.append(_plain(cell, IGNORE_TAG, language=language))
            cells[-1].source = STUDENT_WORDS[language]["intro"]
            continue
        if not started:
            cells.append(_plain(cell, IGNORE_TAG, language=language))
            continue
        if m.get("role") in ("solution", "test"):
            continue  # written with their prompt
        if m.get("role") != "prompt":
            cells.append(_plain(cell, language=language))
            continue
        ex = exs[m["name"]]
        if ex.name in done:
            raise ValueError(f"{where}: exercise {ex.name!r} has two prompt cells")
        done.add(ex.name)
        cells += [_raw(f"# BEGIN QUESTION\nname: {ex.name}\npoints: {ex.points:g}"), _plain(ex.prompt)]
        cells[-1].source = prompt_markdown(ex.prompt.source, ex, language)
        sol = _plain(ex.solution)
        sol.source = mark_solution(ex.solution.source, f"{where}: exercise {ex.name!r}")
        cells += [_raw("# BEGIN SOLUTION"), sol, _raw("# END SOLUTION"), _raw("# BEGIN TESTS")]
        for k, t in enumerate(ex.tests):
            tc = _plain(t)
            tc.source = ("# HIDDEN\n" if _meta(t).get("hidden") else "") + test_function(t.source, f"test_{k}")
            cells.append(tc)
        cells += [_raw("# END TESTS"), _raw("# END QUESTION")]
    out = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    out.metadata.pop("papermill", None)
    return out


# ---------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------


def _otter() -> str:
    exe = Path(sys.executable).with_name("otter")
    if not exe.exists() and not shutil.which("otter"):
        raise OSError('otter-grader is not installed: pip install -e ".[teach]" (or: pip install "otter-grader>=7,<8")')
    return str(exe) if exe.exists() else "otter"


def chapters_with_exercises(chapter_dir="chapters") -> list[Path]:
    """The chapter notebooks that hold coding exercises, in book order."""
    paths = sorted(Path(chapter_dir).glob("[0-9]*.ipynb"))
    return [p for p in paths if not p.name.endswith(".out.ipynb") and exercises(read_chapter(p), str(p))]


def assign(chapters, out, quiet: bool = False, language: str = "en", locale_dir=None) -> dict[str, dict]:
    """Write, for each chapter, ``out/student/<chapter>.ipynb`` (hand out), ``out/solutions/<chapter>.ipynb``
    and ``out/autograder/<chapter>.zip`` (keep: hidden tests). ``out`` is replaced only once every chapter
    is done. Returns {chapter: {"student", "solutions", "autograder", "questions": {name: points}}}.

    `language` "ko" writes the notebooks' text in Korean, from the book's catalogues (`locale_dir`, default
    ``book/locales`` beside the chapters' folder): the code, the tests and so the autograders are the same."""
    out = Path(out)
    otter = _otter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    made: dict[str, dict] = {}
    try:
        for d in ("student", "solutions", "autograder"):
            (tmp / d).mkdir()
        for path in map(Path, chapters):
            nb = read_chapter(path)
            stem = path.stem
            locales = Path(locale_dir) if locale_dir else path.resolve().parent.parent / "book" / "locales"
            text = translated_chapter(nb, language, locales, str(path))
            master = master_notebook(text, stem, str(path), language)
            work = tmp / ".work" / stem
            work.mkdir(parents=True)
            nbformat.write(master, work / f"{stem}.ipynb")
            run = subprocess.run([otter, "assign", "--no-pdfs", f"{stem}.ipynb", "dist"], cwd=work,
                                 capture_output=True, text=True)  # fmt: skip
            if run.returncode:
                raise ValueError(f"{path}: otter assign failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
            dist = work / "dist"
            shutil.copy(dist / "student" / f"{stem}.ipynb", tmp / "student" / f"{stem}.ipynb")
            shutil.copy(dist / "autograder" / f"{stem}.ipynb", tmp / "solutions" / f"{stem}.ipynb")
            (zip_path,) = (dist / "autograder").glob("*.zip")
            shutil.copy(zip_path, tmp / "autograder" / f"{stem}.zip")
            made[stem] = {"questions": {ex.name: ex.points for ex in exercises(nb, str(path))}}
            if not quiet:
                print(f"{stem}: {len(made[stem]['questions'])} questions")
        shutil.rmtree(tmp / ".work")
        atomic_replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    for stem, d in made.items():
        d.update(student=out / "student" / f"{stem}.ipynb", solutions=out / "solutions" / f"{stem}.ipynb",
                 autograder=out / "autograder" / f"{stem}.zip")  # fmt: skip
    return made


def assignment_of(notebook) -> str:
    """The assignment (chapter) a returned notebook belongs to, from the metadata otter assign wrote."""
    nb = read_chapter(notebook)
    name = nb.metadata.get("otter", {}).get("assignment_name")
    if not name:
        raise ValueError(f"{notebook}: not a student notebook of this book (no otter assignment name in it)")
    return name


def grade_one(notebook, autograder) -> dict[str, tuple[float, float]]:
    """Grade one notebook with ``otter run`` (no Docker): {question: (score, possible)}.

    Runs as a subprocess, so that several notebooks can be graded at once (`grade`'s ``jobs``)."""
    with tempfile.TemporaryDirectory(prefix="posekit-grade-") as out:
        run = subprocess.run([_otter(), "run", "-a", str(autograder), str(notebook), "-o", out, "--no-logo"],
                             capture_output=True, text=True)  # fmt: skip
        results = Path(out) / "results.json"
        if run.returncode or not results.is_file():
            raise ValueError(f"{notebook}: otter run failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        tests = json.loads(results.read_text())["tests"]
    return {t["name"]: (float(t["score"]), float(t["max_score"])) for t in tests if "score" in t}


def grade(submissions, autograders, out_csv, jobs: int = 1, quiet: bool = False) -> list[dict]:
    """Grade every notebook under ``submissions`` and write a CSV: student, assignment, question, score,
    possible (one row per question, plus a ``total`` row per notebook).

    The student is the notebook's folder below ``submissions`` (``submissions/alice/ch06.ipynb``), or its
    file name when it lies directly in ``submissions``. The chapter comes from the notebook itself, so
    renamed files are graded against the right autograder. ``jobs`` notebooks are graded at once."""
    submissions, autograders = Path(submissions), Path(autograders)
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions}: no such folder of submissions")
    notebooks = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise ValueError(f"{submissions}: no .ipynb files to grade")
    work = []
    for nb_path in notebooks:
        rel = nb_path.relative_to(submissions)
        name = assignment_of(nb_path)
        bundle = autograders / f"{name}.zip"
        if not bundle.is_file():
            raise FileNotFoundError(f"{nb_path}: belongs to {name!r}, but {bundle} does not exist (make assignments)")
        work.append((rel, rel.parts[0] if len(rel.parts) > 1 else nb_path.stem, name, nb_path, bundle))
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        graded = list(pool.map(lambda w: grade_one(w[3], w[4]), work))
    rows = []
    for (rel, student, name, _, _), scores in zip(work, graded):
        for q, (s, p) in scores.items():
            rows.append({"student": student, "assignment": name, "question": q, "score": s, "possible": p})
        total = [sum(v[i] for v in scores.values()) for i in (0, 1)]
        rows.append({"student": student, "assignment": name, "question": "total", "score": total[0],
                     "possible": total[1]})  # fmt: skip
        if not quiet:
            print(f"{rel}: {total[0]:g} / {total[1]:g}")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["student", "assignment", "question", "score", "possible"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_csv, buf.getvalue())
    return rows


def _run_tests(ex: Exercise, namespace: dict) -> list[str]:
    """Run an exercise's tests in `namespace`; the failures as 'test k: ErrorType: message'."""
    failures = []
    for k, t in enumerate(ex.tests):
        try:
            exec(compile(t.source, f"<{ex.name} test {k}>", "exec"), dict(namespace))
        except Exception as e:  # any exception fails a test, as in otter
            failures.append(f"test {k}: {type(e).__name__}: {e}")
    return failures


def self_check(nb, where: str = "notebook") -> dict[str, dict[str, list[str]]]:
    """Run each exercise in-process on its solution and on its mistake (after the setup cell).

    Returns {name: {"solution": failures, "mistake": failures}}; a sound exercise has no solution failures
    and at least one mistake failure. Each exercise runs after the solutions of the ones before it. Used by
    the tests; much faster than grading through otter."""
    setup = next(c for c in nb.cells if _meta(c).get("role") == "setup")
    base: dict = {"__name__": "__exercises__"}
    exec(compile(setup.source, f"<{where} setup>", "exec"), base)
    report = {}
    for ex in exercises(nb, where):  # later exercises may use earlier answers, so the solutions accumulate
        out = {}
        for kind, source in (("mistake", ex.mistake), ("solution", ex.solution.source)):
            ns = dict(base)
            exec(compile(source, f"<{ex.name} {kind}>", "exec"), ns)
            out[kind] = _run_tests(ex, ns)
        base = ns
        report[ex.name] = out
    return report
