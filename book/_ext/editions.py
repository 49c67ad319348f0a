"""Sphinx extension for the book's editions: one source (the English chapters), one edition per language.

What it adds to Sphinx's gettext workflow (`book/i18n.py` drives the builds):

- Notebook outputs and display math are not text to translate: they are marked untranslatable, so they stay out
  of the catalogues and both editions show the same executed outputs.
- A translated paragraph is parsed as MyST with the chapter's glue data, so ``{glue:text}`key``` in a Korean
  sentence pastes the same executed number (MyST-NB parses translated messages without the notebook's data).
  A glued *word* chosen by the code (``posekit.glue(name, "rises", ko="오른다")``) has a variant per language,
  stored under ``name__ko``; the Korean edition pastes that one.
- In a translated edition every message must have a translation that is not fuzzy: a missing one is a warning
  (an error under ``-W``), so an edited English paragraph cannot leave the other edition silently stale.
- A link to the same page in the other edition at the top of every page (`/` is English, `/ko/` Korean).
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from myst_nb.sphinx_ import Parser as NbParser
from myst_parser.parsers.sphinx_ import MystParser
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.i18n import docname_to_domain
from sphinx_exercise.nodes import exercise_subtitle, exercise_title, solution_title

logger = logging.getLogger(__name__)

SOURCE_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}
STATIC = Path(__file__).resolve().parent / "static"


def variant_key(key: str, language: str) -> str:
    """The glue key holding `key`'s text in `language` (``posekit.glue(..., ko=...)`` writes it)."""
    return f"{key}__{language}"


class _KeepRenderer(dict):
    """A document's attributes that remember the notebook renderer MyST-NB removes at the end of its parse."""

    kept = None

    def pop(self, key, *default):
        value = super().pop(key, *default)
        if key == "nb_renderer":
            self.kept = value
        return value


class EditionParser(NbParser):
    """MyST-NB's notebook parser, which also parses a translated message with its chapter's glue data.

    MyST-NB parses a translated message as plain MyST without the notebook's renderer (MyST-NB issue #587 was
    fixed that far), so ``{glue:text}`` in a translation finds no data; this keeps each chapter's renderer and
    hands it to the parse of that chapter's translated messages."""

    _renderers: dict[str, object] = {}

    def parse(self, inputstring: str, document: nodes.document) -> None:
        env = getattr(document.settings, "env", None) or self.env
        if document.current_source.endswith("<translated>"):
            renderer = self._renderers.get(env.docname)
            if renderer is not None:
                document["nb_renderer"] = renderer
            MystParser.parse(self, inputstring, document)
            document.attributes.pop("nb_renderer", None)
            if renderer is not None:
                _warn_untranslated_glue(inputstring, renderer.renderer.nb_client.glue_data, env, document)
            return
        language = env.config.language or SOURCE_LANGUAGE
        if language != SOURCE_LANGUAGE and env.config.nb_execution_mode != "off":
            _require_cached(inputstring, env)
        document.attributes = _KeepRenderer(document.attributes)
        try:
            super().parse(inputstring, document)
        finally:
            renderer, document.attributes = document.attributes.kept, dict(document.attributes)
        if renderer is None:
            return
        self._renderers[env.docname] = renderer
        if language != SOURCE_LANGUAGE:
            glue = renderer.renderer.nb_client.glue_data
            suffix = variant_key("", language)
            for key in [k for k in glue if k.endswith(suffix)]:
                glue[key[: -len(suffix)]] = glue[key]


def _require_cached(inputstring: str, env) -> None:
    """A translated edition shows the English build's executed outputs: it never executes a chapter itself."""
    import nbformat
    from jupyter_cache import get_cache

    if not str(env.doc2path(env.docname)).endswith(".ipynb"):
        return
    notebook = nbformat.reads(inputstring, as_version=4)
    try:
        get_cache(env.config.nb_execution_cache_path).match_cache_notebook(notebook)
    except KeyError:
        raise ExtensionError(f"{env.docname}: no executed outputs in {env.config.nb_execution_cache_path} for "
                             "this version of the chapter; build the English edition first (`make book`), the "
                             f"{env.config.language} edition reuses its outputs") from None  # fmt: skip


_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`(?:[^`:]*::)?([^`:]+)[^`]*`")
_ENGLISH_PHRASE = re.compile(r"[A-Za-z]+ [a-z]{2,}|[a-z]{2,} [A-Za-z]+")


def glued_text(data: dict) -> str | None:
    """The text a glue entry pastes when it is a Python string, else None."""
    plain = data.get("data", {}).get("text/plain")
    if isinstance(plain, str) and plain[:1] in "'\"":
        return plain[1:-1]
    return None


def _warn_untranslated_glue(message: str, glue: dict, env, document) -> None:
    """A translated message that pastes English words glued by the code, with no variant in this language."""
    language = env.config.language
    for key in _GLUE_ROLE.findall(message):
        entry = glue.get(key)
        text = glued_text(entry) if entry else None
        if text and _ENGLISH_PHRASE.search(text) and variant_key(key, language) not in glue:
            logger.warning(f"glued English words in the {language} edition: {key} = {text[:60]!r}; give the "
                           f"chapter's glue call a translation (posekit.glue({key!r}, ..., {language}=...))",
                           location=(env.docname, None), type="editions", subtype="glue")  # fmt: skip


class MarkMessages(SphinxTransform):
    """Before Sphinx's Locale transform (priority 20): outputs and display math are not messages, and an
    exercise's title (sphinx-exercise leaves it without a source, which Sphinx reads as "not translatable") is."""

    default_priority = 15

    def apply(self, **kwargs) -> None:
        # sphinx-exercise's own words ("Exercise", "Solution"; it ships their translations) and a notebook's
        # metadata (papermill's, in an executed notebook: a field list, later docinfo) are not the book's text
        not_text = (exercise_title, solution_title, nodes.docinfo, nodes.field_list)
        for node in self.document.findall(lambda n: isinstance(n, not_text)):
            node["translatable"] = False
            for child in node.findall(nodes.field):
                for part in child.findall(nodes.Element):
                    part["translatable"] = False
        for node in self.document.findall(exercise_subtitle):
            if not node.source:
                node.source, node.line = self.document["source"], node.parent.line or 0
                node.rawsource = node.astext()
        for container in self.document.findall(nodes.container):
            if "cell_output" in container.get("classes", []):
                for node in container.findall(nodes.Element):
                    node["translatable"] = False
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False


class KeepExerciseTitles(SphinxPostTransform):
    """For the gettext builder: sphinx-exercise rebuilds an exercise's title after reading (priority 20), and the
    new title has no source; the subtitle's text is kept in a translatable inline so it reaches the catalogue."""

    default_priority = 19
    builders = ("gettext",)

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(exercise_subtitle)):
            if node.rawsource and node.children:
                wrapper = nodes.inline(node.rawsource, "", *node.children, translatable=True)
                wrapper.source, wrapper.line = node.source, node.line
                wrapper.uid = getattr(node, "uid", "")  # the gettext builder skips nodes without one
                node.children = [wrapper]
                wrapper.parent = node


def _page_catalogue(transform: SphinxTransform):
    """(translations, found, domain) of the page `transform` works on, in the build's language."""
    domain = docname_to_domain(transform.env.docname, transform.config.gettext_compact)
    dirs = [str(Path(transform.env.srcdir) / d) for d in transform.config.locale_dirs]
    catalog, found = init_locale(dirs, transform.config.language, domain)
    return catalog, found, domain


class TranslateTocCaptions(SphinxTransform):
    """The sidebar's part captions: sphinx-external-toc inserts the toctrees (priority 100) after Sphinx has
    translated the page (20); their captions are in the root page's catalogue, applied here."""

    default_priority = 101

    def apply(self, **kwargs) -> None:
        language = self.config.language or SOURCE_LANGUAGE
        toctrees = [n for n in self.document.findall(addnodes.toctree) if n.get("caption")]
        if language == SOURCE_LANGUAGE or not toctrees:
            return
        catalog, found, _ = _page_catalogue(self)
        if not found:
            return
        for node in toctrees:
            caption = catalog.gettext(node["caption"])
            if caption == node["caption"] and self.config.editions_require_translation:
                logger.warning(f"untranslated part caption ({language}): {caption!r}",
                               location=self.env.docname, type="editions", subtype="untranslated")  # fmt: skip
            node["caption"] = node["rawcaption"] = caption


class ReportUntranslated(SphinxTransform):
    """After the Locale transform: every message of a translated edition must have been translated."""

    default_priority = 21

    def apply(self, **kwargs) -> None:
        language = self.config.language or SOURCE_LANGUAGE
        if language == SOURCE_LANGUAGE or not self.config.editions_require_translation:
            return
        _, found, domain = _page_catalogue(self)
        if not found:
            logger.warning(f"no {language} catalogue for this page (book/locales/{language}/LC_MESSAGES/{domain}.po)",
                           location=self.env.docname, type="editions", subtype="untranslated")  # fmt: skip
            return
        missing = [n for n in self.document.findall(nodes.Element) if n.get("translated") is False]
        for node in missing:
            text = node.rawsource or node.astext()
            logger.warning(f"untranslated or fuzzy message ({language}): {text[:80]!r}",
                           location=node, type="editions", subtype="untranslated")  # fmt: skip


def _switch_html(pagename: str, language: str, languages: list[str]) -> str:
    depth = pagename.count("/")
    up = "../" * (depth + (0 if language == SOURCE_LANGUAGE else 1))
    links = []
    for other in languages:
        if other == language:
            continue
        href = f"{up}{'' if other == SOURCE_LANGUAGE else other + '/'}{pagename}.html"
        links.append(f'<a class="edition-link" href="{href}" hreflang="{other}" lang="{other}">'
                     f"{LANGUAGE_NAMES.get(other, other)}</a>")  # fmt: skip
    return f'<nav class="edition-switch" aria-label="Language / 언어">{" · ".join(links)}</nav>'


def add_switch(app, pagename, templatename, context, doctree) -> None:
    if doctree is None or "body" not in context:
        return
    language = app.config.language or SOURCE_LANGUAGE
    context["body"] = _switch_html(pagename, language, app.config.editions) + context["body"]


def add_static(app, config) -> None:
    config.html_static_path = list(config.html_static_path) + [str(STATIC)]


def setup(app):
    app.add_config_value("editions", [SOURCE_LANGUAGE, "ko"], "html")
    app.add_config_value("editions_require_translation", True, "env")
    app.add_source_parser(EditionParser, override=True)
    app.add_transform(MarkMessages)
    app.add_transform(ReportUntranslated)
    app.add_transform(TranslateTocCaptions)
    app.add_post_transform(KeepExerciseTitles)
    app.connect("config-inited", add_static)
    app.connect("html-page-context", add_switch)
    app.add_css_file("editions.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
