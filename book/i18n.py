"""The book's editions: English (the source) and Korean (the same pages, their text from message catalogues).

jupyter-book 1.x has no language option, so this drives Sphinx the way `jupyter-book build` does (the same
configuration from `book/_config.yml` and `book/_toc.yml`, through `jupyter_book.sphinx.build_sphinx`) and adds
Sphinx's own internationalisation settings. The chapters are executed once, by the English build; the other
editions read the executed notebooks from the same jupyter-cache, or, with `--no-execute`, from a source tree
whose notebooks already hold their outputs (the tests' quick-profile build).

    python book/i18n.py html --language ko          # book/_build/html/ko/ (after `make book`)
    python book/i18n.py gettext                     # book/_build/gettext/*.pot: every English message
    python book/i18n.py update                      # merge the .pot files into book/locales/ko/*.po
    python book/i18n.py check                       # every message translated, none fuzzy, markup kept

After editing a chapter's text: `make catalogues`, translate the entries it marks (new, or fuzzy: the English
changed), then `make book`. `tests/test_editions.py` fails while any message is untranslated or fuzzy.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
LOCALES = BOOK / "locales"
LANGUAGES = {"en": "English", "ko": "한국어"}  # the source language first
TRANSLATED = ("ko",)


def _config_path(source: Path) -> Path:
    return source / "book" / "_config.yml"


def build(
    builder: str,
    out: Path,
    *,
    language: str = "en",
    source: Path = ROOT,
    execute: bool = True,
    strict: bool = True,
    quiet: bool = False,
) -> int:
    """Run Sphinx on `source` (the repository, or a copy of it) as `jupyter-book build` does; returns its exit
    status. `language` other than English reads its text from `book/locales/<language>`; `execute=False` turns
    notebook execution off (their stored outputs are used)."""
    from jupyter_book.sphinx import build_sphinx

    if language not in LANGUAGES:
        raise SystemExit(f"--language: expected one of {sorted(LANGUAGES)}, got {language!r}")
    overrides = {
        "external_toc_path": str(source / "book" / "_toc.yml"),
        "latex_individualpages": False,
        "language": language,  # the rest of the i18n settings are in book/_config.yml
    }
    if strict:
        overrides["nitpicky"] = True
    if not execute:
        overrides["nb_execution_mode"] = "off"
    if builder == "gettext":  # messages come from the text alone: no outputs, so no glued values to paste
        overrides["suppress_warnings"] = ["mystnb.unknown_mime_type", "mystnb.glue"]
    doctrees = source / "book" / "_build" / f".doctrees-{builder}-{language}"  # never inside the HTML
    return build_sphinx(
        str(source),
        str(out),
        noconfig=True,
        path_config=str(_config_path(source)),
        confoverrides=overrides,
        builder=builder,
        doctreedir=str(doctrees),
        warningiserror=strict,
        keep_going=True,
        quiet=quiet,
    )


def update(pot_dir: Path, locale_dir: Path, languages=TRANSLATED) -> int:
    """Merge the extracted English messages into each language's catalogues (sphinx-intl: new messages come
    in untranslated, changed ones are marked fuzzy with the old translation kept as a starting point)."""
    from sphinx_intl.basic import update as intl_update

    if not any(pot_dir.rglob("*.pot")):
        raise SystemExit(f"{pot_dir}: no .pot files; run `python book/i18n.py gettext` first")
    status = intl_update(str(locale_dir), str(pot_dir), tuple(languages), line_width=0, jobs=1)
    print(", ".join(f"{k} {v}" for k, v in status.items()))
    return 0


# Markup that a translation must keep exactly: MyST roles with their targets (glue keys, citations,
# cross-references), inline code, math and link targets. Their order may change with the language.
_MARKUP = [
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # {glue:text}`key:.3f`, {cite:p}`sun2018`, {numref}`fig-x`
    re.compile(r"(?<![{\w])`[^`]+`"),  # `posekit.codecs`
    re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S),  # $J \\times h$
    re.compile(r"\]\(([^)]+)\)"),  # [text](target)
]


_LINK_TEXT = re.compile(r"(\{(?:doc|ref|numref|term)\}`)[^`<]*<([^`>]+)>`")


def markup(text: str) -> list[str]:
    """The pieces of `text` that a translation must carry over unchanged, sorted. A cross-reference's link text
    may be translated ({doc}`용어집 </book/glossary>`): only its target must stay."""
    found = []
    text = _LINK_TEXT.sub(r"\1<\2>`", text)
    for pattern in _MARKUP:
        found += pattern.findall(text)
        text = pattern.sub(" ", text)
    return sorted(found)


def catalogue_problems(po_path: Path) -> list[str]:
    """What is wrong with one catalogue: untranslated or fuzzy messages, and translations that lost or changed
    markup (a glue key, a citation, inline code or math). Obsolete entries (English text that is gone) are fine."""
    from babel.messages.pofile import read_po

    with po_path.open("rb") as f:
        catalog = read_po(f)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        head = f"{po_path}: {message.id[:60]!r}"
        if not message.string:
            problems.append(f"{head}: untranslated")
        elif message.fuzzy:
            problems.append(f"{head}: fuzzy (the English changed; check the translation, then drop the fuzzy flag)")
        elif markup(message.id) != markup(message.string):
            lost = sorted(set(markup(message.id)) ^ set(markup(message.string)))
            problems.append(f"{head}: markup differs in the translation: {lost[:4]}")
    return problems


def check(locale_dir: Path = LOCALES, languages=TRANSLATED, pot_dir: Path | None = None) -> list[str]:
    """Every catalogue of every language complete and well-formed; with `pot_dir` (a fresh `gettext` build),
    also every English message present in its catalogue."""
    from babel.messages.pofile import read_po

    problems = []
    for language in languages:
        root = locale_dir / language / "LC_MESSAGES"
        if not root.is_dir():
            problems.append(f"{root}: missing (run `python book/i18n.py update`)")
            continue
        for po in sorted(root.rglob("*.po")):
            problems += catalogue_problems(po)
        if pot_dir is None:
            continue
        for pot in sorted(pot_dir.rglob("*.pot")):
            po = root / pot.relative_to(pot_dir).with_suffix(".po")
            if not po.exists():
                problems.append(f"{po}: missing for {pot.name} (run `python book/i18n.py update`)")
                continue
            with pot.open("rb") as f:
                wanted = {m.id for m in read_po(f) if m.id}
            with po.open("rb") as f:
                have = {m.id for m in read_po(f) if m.id and m.string and not m.fuzzy}
            for msg in sorted(wanted - have):
                problems.append(f"{po}: {msg[:60]!r}: new English text without a translation")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_html = sub.add_parser("html", help="build one edition's HTML")
    p_html.add_argument("--language", default="ko", help=f"one of {sorted(LANGUAGES)}")
    p_html.add_argument("--source", type=Path, default=ROOT)
    p_html.add_argument("--out", type=Path, default=None)
    p_html.add_argument("--no-execute", action="store_true")
    p_gettext = sub.add_parser("gettext", help="extract every English message into book/_build/gettext/")
    p_gettext.add_argument("--source", type=Path, default=ROOT)
    p_gettext.add_argument("--out", type=Path, default=None, help="default: book/_build/gettext")
    sub.add_parser("update", help="merge the extracted messages into the catalogues")
    sub.add_parser("check", help="every message translated, none fuzzy, markup kept")
    args = parser.parse_args(argv)

    if args.cmd == "html":
        out = args.out or args.source / "book" / "_build" / "html" / ("" if args.language == "en" else args.language)
        return build("html", out, language=args.language, source=args.source, execute=not args.no_execute)
    if args.cmd == "gettext":
        out = args.out or args.source / "book" / "_build" / "gettext"
        return build("gettext", out, source=args.source, execute=False, strict=False, quiet=True)
    if args.cmd == "update":
        return update(BOOK / "_build" / "gettext", LOCALES, TRANSLATED)
    if args.cmd == "check":
        pot_dir = BOOK / "_build" / "gettext"
        problems = check(LOCALES, TRANSLATED, pot_dir if pot_dir.is_dir() else None)
        for p in problems:
            print(p)
        print(f"{len(problems)} problems")
        return 1 if problems else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
