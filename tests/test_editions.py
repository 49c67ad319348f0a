"""The Korean edition stays in step with the English source: every message translated (none fuzzy), the markup
of each translation intact, glued words translated, and the language switch pointing at the same page."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.harness import ROOT


def _load(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


i18n = _load("book_i18n", ROOT / "book" / "i18n.py")
editions = _load("book_editions_ext", ROOT / "book" / "_ext" / "editions.py")


@pytest.fixture(scope="module")
def english_messages(tmp_path_factory):
    """Every English message of the book as it is now (Sphinx's gettext builder, a few seconds)."""
    out = tmp_path_factory.mktemp("gettext")
    cmd = [sys.executable, str(ROOT / "book" / "i18n.py"), "gettext", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(list(out.rglob("*.pot"))) >= 12, sorted(out.rglob("*.pot"))
    return out


def test_every_english_message_has_a_korean_translation(english_messages):
    problems = i18n.check(i18n.LOCALES, ("ko",), english_messages)
    assert not problems, (
        f"{len(problems)} messages of the Korean edition are missing, fuzzy or broken; after editing a chapter run "
        "`make catalogues` and translate what it marks:\n" + "\n".join(problems[:20])
    )


def test_the_catalogues_hold_the_whole_book(english_messages):
    from babel.messages.pofile import read_po

    n = 0
    for po in (i18n.LOCALES / "ko" / "LC_MESSAGES").rglob("*.po"):
        with po.open("rb") as f:
            n += sum(1 for m in read_po(f) if m.id and m.string)
    assert n >= 700, f"only {n} translated messages"


def _po(tmp_path, entries):
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(locale="ko")
    for msgid, msgstr, flags in entries:
        catalog.add(msgid, msgstr, flags=flags)
    path = tmp_path / "x.po"
    with path.open("wb") as f:
        write_po(f, catalog, width=0)
    return path


def test_catalogue_problems_finds_untranslated_fuzzy_and_broken_markup(tmp_path):
    path = _po(tmp_path, [
        ("The AP is {glue:text}`ap:.3f`.", "AP는 {glue:text}`ap:.3f`이다.", ()),
        ("Two people.", "", ()),
        ("Three people.", "세 사람.", ("fuzzy",)),
        ("The map $h \\times w$ of `codecs.x`.", "`codecs.x`의 맵 $h \\times w$.", ()),
        ("Its PCK is {glue:text}`pck:.2f`.", "PCK는 {glue:text}`pck:.3f`이다.", ()),
        ("See {cite:p}`sun2018`.", "{cite:p}`sun2018`을 보라.", ()),
        ("Math $a$ here.", "수식 여기.", ()),
    ])  # fmt: skip
    problems = i18n.catalogue_problems(path)
    assert len(problems) == 4, problems
    assert "untranslated" in problems[0] and "fuzzy" in problems[1]
    assert "pck:.2f" in problems[2] and "$a$" in problems[3]


def test_markup_keeps_roles_code_math_and_link_targets_apart():
    text = "A {glue:text}`k:.1%` and `code` with $x^2$ and [the paper](https://a.b/c) and $$y$$."
    assert i18n.markup(text) == sorted(["{glue:text}`k:.1%`", "`code`", "$x^2$", "$$y$$", "https://a.b/c"])
    # a cross-reference's link text may be translated, its target may not
    assert i18n.markup("See {doc}`the preface </ch/00>`.") == i18n.markup("{doc}`머리말 </ch/00>`을 보라.")
    assert i18n.markup("See {doc}`the preface </ch/00>`.") != i18n.markup("{doc}`머리말 </ch/01>`을 보라.")


def test_language_switch_points_at_the_same_page():
    en = editions._switch_html("chapters/03_heatmap", "en", ["en", "ko"])
    ko = editions._switch_html("chapters/03_heatmap", "ko", ["en", "ko"])
    assert 'href="../ko/chapters/03_heatmap.html"' in en and "한국어" in en
    assert 'href="../../chapters/03_heatmap.html"' in ko and "English" in ko
    assert 'href="ko/index.html"' in editions._switch_html("index", "en", ["en", "ko"])


@pytest.mark.parametrize("text, english", [
    ("still rising", True), ("HRNet leads by more", True), ("the single-person model", True),
    ("HRNet", False), ("lite", False), ("0.532", False), ("아직 오르는 중", False), ("AMD EPYC", False),
])  # fmt: skip
def test_glued_english_words_are_told_from_names_and_numbers(text, english):
    assert bool(editions._ENGLISH_PHRASE.search(text)) is english


def test_glue_takes_a_korean_variant_as_text():
    import posekit

    posekit.glue("x_word", "rises", ko="오른다")  # outside a notebook: nothing to glue, no error
    with pytest.raises(TypeError, match="ko="):
        posekit.glue("x_word", "rises", ko=3)
    from posekit.book import translation_key

    assert translation_key("x_word", "ko") == editions.variant_key("x_word", "ko") == "x_word__ko"


def test_translate_markdown_replaces_each_block_and_keeps_the_layout():
    from posekit.translation import translate_markdown

    english = """(label)=
## The peak

A heatmap's peak is the joint,
found by `argmax`.

- first item that runs
  over two lines
- second item

| metric | unit |
|---|---|
| PCK | joint |

```{exercise} The PCKh normalizer
:label: ex-1
Write `f(x)`.
```

```{solution} ex-1
:class: dropdown
Use numpy.
```"""
    messages = {
        "The peak": "최댓값",
        "A heatmap's peak is the joint, found by `argmax`.": "히트맵의 최댓값이 관절이며, `argmax`로 찾는다.",
        "first item that runs over two lines": "두 줄에 걸친 첫 항목",
        "second item": "둘째 항목",
        "metric": "평가 지표", "unit": "단위", "PCK": "PCK", "joint": "관절",
        "The PCKh normalizer": "PCKh의 정규화 기준", "Write `f(x)`.": "`f(x)`를 작성하라.",
    }  # fmt: skip
    korean, missing = translate_markdown(english, messages)
    assert missing == ["Use numpy."]
    assert korean.splitlines()[:2] == ["(label)=", "## 최댓값"]
    assert "히트맵의 최댓값이 관절이며, `argmax`로 찾는다." in korean
    assert "- 두 줄에 걸친 첫 항목\n- 둘째 항목" in korean
    assert "| 평가 지표 | 단위 |\n|---|---|\n| PCK | 관절 |" in korean
    assert "```{exercise} PCKh의 정규화 기준\n:label: ex-1\n`f(x)`를 작성하라.\n```" in korean
    assert "```{solution} ex-1\n:class: dropdown\nUse numpy.\n```" in korean
