"""Coursework: every chapter's coding exercises, the student notebooks and the autograders (issue 17).

The three grading cases of every chapter run through otter-grader itself (`posekit assign`, then `posekit grade`
on a folder of returned notebooks): a fully solved notebook scores full marks, the untouched student notebook
scores zero on each question, and a notebook with one deliberately wrong answer loses exactly that question.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest

from posekit import cli, coursework

ROOT = Path(__file__).resolve().parents[1]
CONTENT = sorted(p for p in (ROOT / "chapters").glob("0[1-9]*.ipynb") if not p.name.endswith(".out.ipynb"))
CHAPTERS = coursework.chapters_with_exercises(ROOT / "chapters")
IDS = [p.stem for p in CHAPTERS]


def test_every_content_chapter_has_three_coding_exercises():
    assert CONTENT, "no content chapters found"
    counts = {p.stem: len(coursework.exercises(coursework.read_chapter(p), str(p))) for p in CONTENT}
    assert all(n >= 3 for n in counts.values()), counts


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_solutions_pass_and_every_mistake_is_caught(path):
    report = coursework.self_check(coursework.read_chapter(path), str(path))
    for name, r in report.items():
        assert not r["solution"], f"{path.stem}/{name}: the solution fails its tests: {r['solution']}"
        assert r["mistake"], f"{path.stem}/{name}: the tests do not catch the deliberate mistake"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_book_view_hides_solutions_and_tests(path):
    nb = coursework.read_chapter(path)
    for ex in coursework.exercises(nb, str(path)):
        assert "hide-input" in ex.solution.metadata.get("tags", []), f"{ex.name}: solution not behind a toggle"
        assert all("remove-cell" in t.metadata.get("tags", []) for t in ex.tests), f"{ex.name}: tests shown"
        assert ex.prompt.source.lstrip().startswith("```{exercise}"), f"{ex.name}: prompt is not an exercise"


# ------------------------------------------------------------------------------------------------------
# Through otter-grader: assign once, grade three returned notebooks per chapter
# ------------------------------------------------------------------------------------------------------


def _answer_cells(nb) -> list:
    return [c for c in nb.cells if "otter_answer_cell" in c.metadata.get("tags", [])]


def _returned(student_nb: Path, answers: list[str]):
    """The student notebook with each answer cell replaced by `answers[k]` (None keeps the placeholder)."""
    nb = nbformat.read(student_nb, as_version=4)
    cells = _answer_cells(nb)
    assert len(cells) == len(answers), f"{student_nb}: {len(cells)} answer cells for {len(answers)} exercises"
    for cell, answer in zip(cells, answers):
        if answer is not None:
            cell.source = answer
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coursework")
    made = coursework.assign(CHAPTERS, tmp / "assignments", quiet=True)
    subs = tmp / "submissions"
    wrong_question = {}
    for path in CHAPTERS:
        exs = coursework.exercises(coursework.read_chapter(path), str(path))
        student = made[path.stem]["student"]
        solved = [ex.solution.source for ex in exs]
        wrong = list(solved)
        wrong[-1] = exs[-1].mistake  # the last exercise: no later one builds on it
        wrong_question[path.stem] = exs[-1].name
        for who, answers in (("solved", solved), ("untouched", [None] * len(exs)), ("one_wrong", wrong)):
            (subs / who).mkdir(parents=True, exist_ok=True)
            # renamed on purpose: the chapter is read from the notebook, not from its file name
            nbformat.write(_returned(student, answers), subs / who / f"{who}-{path.stem}.ipynb")
    out = tmp / "scores.csv"
    assert cli.main(["grade", str(subs), "--autograders", str(tmp / "assignments" / "autograder"),
                     "--out", str(out), "--jobs", "2", "--quiet"]) == 0  # fmt: skip
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    scores = {(r["student"], r["assignment"], r["question"]): (float(r["score"]), float(r["possible"])) for r in rows}
    return {"made": made, "scores": scores, "rows": rows, "wrong_question": wrong_question}


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_grading_solved_untouched_and_one_wrong(graded, path):
    stem, scores = path.stem, graded["scores"]
    questions = graded["made"][stem]["questions"]
    for q, points in questions.items():
        assert scores[("solved", stem, q)] == (points, points), f"{stem}/{q}: a solved notebook lost points"
        assert scores[("untouched", stem, q)] == (0.0, points), f"{stem}/{q}: the untouched notebook scored"
        expected = 0.0 if q == graded["wrong_question"][stem] else points
        assert scores[("one_wrong", stem, q)] == (expected, points), f"{stem}/{q}: one wrong answer, wrong score"
    total = sum(questions.values())
    assert scores[("solved", stem, "total")] == (total, total)
    assert scores[("untouched", stem, "total")] == (0.0, total)


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_student_notebook_holds_no_solution_or_hidden_test(graded, path):
    made = graded["made"][path.stem]
    text = Path(made["student"]).read_text()
    student = nbformat.reads(text, as_version=4)
    chapter = coursework.read_chapter(path)
    exs = coursework.exercises(chapter, str(path))
    # lines a student may see anyway: the chapter's own code and the public tests
    seen = {s.strip() for c in chapter.cells if "exercise" not in c.metadata for s in c.source.splitlines()}
    seen |= {s.strip() for ex in exs for t in ex.tests if not t.metadata["exercise"].get("hidden")
             for s in t.source.splitlines()}  # fmt: skip
    for ex in exs:
        for line in coursework.solution_lines(ex.solution.source):
            assert json.dumps(line)[1:-1] not in text, f"{ex.name}: solution line left in: {line!r}"
        mistake = [s.strip() for s in ex.mistake.splitlines() if len(s.strip()) > 12 and not s.startswith("def ")]
        assert not any(json.dumps(m)[1:-1] in text for m in mistake), f"{ex.name}: the mistake leaked"
        for t in ex.tests:
            body = [s.strip() for s in t.source.splitlines()
                    if len(s.strip()) > 25 and s.strip() not in seen and not s.rstrip().endswith(("(", "["))]
            if t.metadata["exercise"].get("hidden"):
                leaked = [b for b in body if json.dumps(b)[1:-1] in text]
                assert not leaked, f"{ex.name}: hidden test lines leaked: {leaked}"
    assert "exercise" not in json.dumps([c.metadata for c in student.cells]), "chapter metadata leaked"
    # the chapter above the exercises is there to read, and grading skips it
    first = next(i for i, c in enumerate(student.cells) if "otter_answer_cell" in c.metadata.get("tags", []))
    setup = max(i for i, c in enumerate(student.cells[:first]) if c.cell_type == "code")
    body = student.cells[1:setup]
    assert body and all("otter_ignore" in c.metadata.get("tags", []) for c in body)
    assert "remove-cell" not in text and "hide-input" not in text
    assert "{solution}" not in text, "an open exercise's solution dropdown was left in"
    assert text.count("withheld from the student notebook") == json.dumps(
        [c.source for c in chapter.cells if c.cell_type == "markdown"]
    ).count("{solution}")


def test_grade_csv_has_a_row_per_student_and_question(graded):
    rows = graded["rows"]
    assert {r["student"] for r in rows} == {"solved", "untouched", "one_wrong"}
    n_questions = sum(len(d["questions"]) for d in graded["made"].values())
    assert len(rows) == 3 * (n_questions + len(CHAPTERS))  # every question, plus a total per notebook


# ------------------------------------------------------------------------------------------------------
# The pieces
# ------------------------------------------------------------------------------------------------------


def test_mark_solution_keeps_signature_and_docstring():
    src = 'import numpy as np\n\n\ndef f(x):\n    """Doc."""\n    y = x + 1\n    return y\n\n\nk = 3'
    marked = coursework.mark_solution(src)
    assert 'def f(x):\n    """Doc."""\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION' in marked
    assert marked.startswith("import numpy as np") and marked.endswith("k = 3  # SOLUTION")
    assert coursework.solution_lines(src) == []  # nothing long enough to count as a giveaway
    assert coursework.solution_lines("def g(a):\n    return a * 12345 + 678\n") == ["return a * 12345 + 678"]
    with pytest.raises(ValueError, match="functions, single-line assignments and imports only, found For"):
        coursework.mark_solution("for i in range(3):\n    pass")


def test_test_cells_become_functions_of_the_names_they_read():
    src = "import math\nh = head_size_of([[0, 0, 3, 4]])\nassert np.isclose(h, math.hypot(3, 4) * 0.6)\n"
    fn = coursework.test_function(src, "test_0")
    assert fn.startswith("def test_0(head_size_of, np):\n    import math\n")
    ns: dict = {}
    exec(fn, ns)
    import numpy as np

    ns["test_0"](lambda b: 0.6 * np.hypot(3, 4), np)  # passes
    with pytest.raises(AssertionError):
        ns["test_0"](lambda b: np.hypot(3, 4), np)


def _tiny_chapter(mistake: str | None = "def f(x):\n    return x", public: bool = True):
    meta = {"name": "f", "role": "solution"}
    if mistake:
        meta["mistake"] = mistake
    cells = [
        nbformat.v4.new_code_cell("import math", metadata={"exercise": {"role": "setup"}}),
        nbformat.v4.new_markdown_cell("```{exercise}\n:label: x\nWrite f.\n```",
                                      metadata={"exercise": {"name": "f", "role": "prompt", "points": 2}}),
        nbformat.v4.new_code_cell("def f(x):\n    return 2 * x", metadata={"exercise": meta}),
        nbformat.v4.new_code_cell("assert f(2) == 4", metadata={"exercise": {"name": "f", "role": "test",
                                                                            "hidden": not public}}),
    ]  # fmt: skip
    return nbformat.v4.new_notebook(cells=cells)


def test_incomplete_exercises_are_named():
    (ex,) = coursework.exercises(_tiny_chapter())
    assert ex.points == 2 and ex.mistake.startswith("def f")
    with pytest.raises(ValueError, match=r"ch\.ipynb: exercise 'f' needs a 'mistake'"):
        coursework.exercises(_tiny_chapter(mistake=None), "ch.ipynb")
    with pytest.raises(ValueError, match="exercise 'f' needs a public test"):
        coursework.exercises(_tiny_chapter(public=False))
    nb = _tiny_chapter()
    nb.cells = nb.cells[1:] + nb.cells[:1]
    with pytest.raises(ValueError, match="comes before the exercise setup cell"):
        coursework.exercises(nb)
    report = coursework.self_check(_tiny_chapter())
    assert report["f"]["solution"] == [] and report["f"]["mistake"][0].startswith("test 0: AssertionError")


def test_open_exercise_solutions_are_withheld():
    md = "Text.\n\n```{solution} ex-1\n:class: dropdown\nAnswer.\n\n~~~python\nx = 1\n~~~\n```\n\nAfter."
    out = coursework.withhold_solutions(md)
    assert "Answer" not in out and "x = 1" not in out and out.startswith("Text.") and out.endswith("After.")
    assert "withheld" in out


def test_prompt_becomes_plain_markdown():
    (ex,) = coursework.exercises(_tiny_chapter())
    md = coursework.prompt_markdown("```{exercise} A title\n:label: x\nWrite ~~~f~~~.\n```", ex)
    assert md == "**Exercise `f`: A title** (2 points)\n\nWrite ```f```."
    assert not re.search(r":label:|\{exercise\}", md)


def test_grade_errors_name_the_problem(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "nope"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "nope: no such folder of submissions" in capsys.readouterr().err
    (tmp_path / "subs").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "subs" / "x.ipynb")
    assert cli.main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "x.ipynb: not a student notebook of this book" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_korean_student_notebooks_have_the_same_code_and_the_same_autograder(graded, tmp_path):
    path = next(p for p in CHAPTERS if p.stem.startswith("06"))
    stem = path.stem
    made = coursework.assign([path], tmp_path / "ko", quiet=True, language="ko")
    en = nbformat.read(graded["made"][stem]["student"], as_version=4)
    ko = nbformat.read(made[stem]["student"], as_version=4)
    assert [c.cell_type for c in ko.cells] == [c.cell_type for c in en.cells]
    code = [[c.source for c in nb.cells if c.cell_type == "code"] for nb in (ko, en)]
    assert code[0] == code[1], "the Korean notebook's code differs from the English one"
    prose = [c.source for c in ko.cells if c.cell_type == "markdown" and re.search("[A-Za-z가-힣]", c.source)]
    korean = [s for s in prose if len(re.findall("[가-힣]", s)) > 0.3 * len(re.findall("[A-Za-z가-힣]", s))]
    assert len(korean) >= 0.9 * len(prose), [s[:80] for s in prose if s not in korean][:5]
    assert "**연습 문제 `" in json.dumps([c.source for c in ko.cells], ensure_ascii=False)
    # a solved Korean notebook earns full marks from the English autograder
    exs = coursework.exercises(coursework.read_chapter(path), str(path))
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_returned(made[stem]["student"], [ex.solution.source for ex in exs]), subs / f"ko-{stem}.ipynb")
    out = tmp_path / "scores.csv"
    autograders = Path(graded["made"][stem]["autograder"]).parent
    assert cli.main(["grade", str(subs), "--autograders", str(autograders), "--out", str(out), "--quiet"]) == 0
    with open(out, newline="") as f:
        rows = {r["question"]: (float(r["score"]), float(r["possible"])) for r in csv.DictReader(f)}
    total = sum(ex.points for ex in exs)
    assert rows["total"] == (total, total), rows


def test_a_chapter_without_its_translation_is_refused(tmp_path):
    path = next(p for p in CHAPTERS if p.stem.startswith("06"))
    with pytest.raises(FileNotFoundError, match="no 'ko' catalogue"):
        coursework.translated_chapter(coursework.read_chapter(path), "ko", tmp_path, str(path))
    with pytest.raises(ValueError, match="language"):
        coursework.translated_chapter(coursework.read_chapter(path), "fr", tmp_path, str(path))
