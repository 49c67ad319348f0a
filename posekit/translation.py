"""The book's text in another language, from its message catalogues (coursework in Korean).

The Korean edition of the book keeps its text in gettext catalogues, one per page
(``book/locales/ko/LC_MESSAGES/chapters/<chapter>.po``), made by Sphinx from the English chapters: each message
is one paragraph, heading, list item, table cell or exercise title, in its MyST source. `translate_markdown`
applies such a catalogue to a notebook's Markdown cell: every block whose text is a message is replaced by its
translation and everything else (code, math blocks, directive options, layout) stays as it is, so a student
notebook in Korean has the same cells, code and tests as the English one.

    messages = load_catalogue("book/locales", "ko", "06_metrics_parts_and_keypoints")
    korean, missing = translate_markdown(english, messages)
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

_OPTION = re.compile(r"^:[\w-]+:.*$")


def _parser() -> MarkdownIt:
    # the block structure MyST sees (myst-parser builds on the same markdown-it plugins)
    md = MarkdownIt("commonmark").enable("table")
    for plugin in (dollarmath_plugin, colon_fence_plugin, deflist_plugin, myst_block_plugin, myst_role_plugin):
        md = md.use(plugin)
    return md


def load_catalogue(locale_dir, language: str, page: str) -> dict[str, str]:
    """{English message: translation} of one page (``chapters/<page>``), translated and not fuzzy entries only."""
    from babel.messages.pofile import read_po

    stem = Path(page).stem
    path = Path(locale_dir) / language / "LC_MESSAGES" / "chapters" / f"{stem}.po"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {language!r} catalogue for {stem} (make catalogues, then translate)")
    with path.open("rb") as f:
        catalog = read_po(f)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


def message_id(text: str) -> str:
    """The catalogue key of a block's text, as Sphinx writes it (line breaks become spaces)."""
    return text.replace("\n", " ").strip()


def translate_markdown(text: str, messages: dict[str, str]) -> tuple[str, list[str]]:
    """`text` with each block found in `messages` translated; returns (text, English blocks not found)."""
    out, missing, cursor = text, [], 0
    tokens = _parser().parse(text)
    for tok in tokens:
        if tok.type == "inline" and tok.content.strip():
            key = message_id(tok.content)
            pattern = r"\n[ \t>]*".join(re.escape(line.strip()) for line in tok.content.split("\n"))
            m = re.compile(pattern).search(out, cursor)
            if m is None:
                continue
            if key not in messages:
                missing.append(key)
                cursor = m.end()
                continue
            out = out[: m.start()] + messages[key] + out[m.end() :]
            cursor = m.start() + len(messages[key])
        elif tok.type in ("fence", "colon_fence") and tok.info.startswith("{"):
            # a directive (exercise, note, ...): its title and its body are messages too
            name, _, title = tok.info.partition("}")
            title = title.strip()
            start = out.find(tok.info, cursor)
            if start < 0:
                continue
            is_label = name == "{solution" or re.fullmatch(r"[\w.:/-]+", title) is not None
            if title and not is_label:  # an exercise's title is text; a solution's argument is a label
                if title in messages:
                    out = out[:start] + name + "} " + messages[title] + out[start + len(tok.info) :]
                else:
                    missing.append(title)
            lines = tok.content.split("\n")
            n_opt = 0
            while n_opt < len(lines) and _OPTION.match(lines[n_opt]):
                n_opt += 1
            body = "\n".join(lines[n_opt:])
            new_body, more = translate_markdown(body, messages)
            missing += more
            at = out.find(body, start)
            if at < 0:
                continue
            out = out[:at] + new_body + out[at + len(body) :]
            cursor = at + len(new_body)
    return out, missing
