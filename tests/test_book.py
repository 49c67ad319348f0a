"""The book builds from the quick-profile chapters with no Sphinx warning, in English and in Korean from the same
executed notebooks, and reads right in a real browser (typeset math, figures, Hangul in a font that has it, the
language switch, code that fits its column)."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.harness import ROOT, chapters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MATHJAX = ROOT / "book" / "_mathjax" / "mathjax" / "tex-svg.js"


@pytest.fixture(scope="module")
def built_book(run_chapter, tmp_path_factory):
    """Build the book (execution off) from the chapters the harness executed in the quick profile."""
    if not MATHJAX.exists():
        pytest.fail(f"{MATHJAX} is missing: `make test` fetches MathJax from the npm registry first")
    src = tmp_path_factory.mktemp("booksrc")
    shutil.copytree(ROOT / "book", src / "book", ignore=shutil.ignore_patterns("_build"))
    (src / "chapters").mkdir()
    for nb in chapters():
        executed, _, _ = run_chapter(nb, "quick")
        shutil.copy(executed, src / "chapters" / nb.name)
    config = yaml.safe_load((src / "book" / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (src / "book" / "_config.yml").write_text(yaml.safe_dump(config))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(src), "--config", str(src / "book/_config.yml"), "--toc",
           str(src / "book/_toc.yml"), "--path-output", str(src / "book"), "-W", "-n", "--keep-going"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=src)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jupyter-book build failed (warnings are errors):\n{log[-6000:]}"
    html = src / "book" / "_build" / "html"
    assert (html / "index.html").exists()
    # the Korean edition: the same executed notebooks, its text from book/locales/ko (warnings are errors, and a
    # message without a translation, or with a fuzzy one, is a warning)
    cmd = [sys.executable, str(src / "book" / "i18n.py"), "html", "--language", "ko", "--source", str(src),
           "--no-execute"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=src)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the Korean edition failed to build (warnings are errors):\n{log[-6000:]}"
    assert (html / "ko" / "index.html").exists()
    return html


def test_book_has_every_chapter_and_its_download(built_book):
    for nb in chapters():
        assert (built_book / "chapters" / f"{nb.stem}.html").exists(), f"{nb.stem}.html missing from the book"
        assert (built_book / "_sources" / "chapters" / nb.name).exists(), f"no .ipynb download for {nb.name}"


def test_no_page_loads_anything_from_a_cdn(built_book):
    for page in built_book.rglob("*.html"):
        text = page.read_text(errors="replace")
        for cdn in ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "mathjax.org/mathjax", "polyfill.io"):
            assert f'src="https://{cdn}' not in text, f"{page.name} loads a script from {cdn}"


@pytest.fixture(scope="module")
def server(built_book):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (make test and .ci/run do this)")
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        yield b
        b.close()


# Text of the page's article without code blocks: raw TeX must not survive typesetting there.
_ARTICLE_TEXT = """() => {
  const root = document.querySelector('article') || document.body;
  if (!root) return '';
  const main = root.cloneNode(true);
  main.querySelectorAll('pre, code, .highlight, mjx-container, script, style').forEach(e => e.remove());
  return main.innerText;
}"""
# Code cells whose lines do not fit the column: the reader would have to scroll sideways.
_OVERFLOWING_CODE = """() => Array.from(document.querySelectorAll('article div.cell_input pre'))
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => p.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '').slice(0, 100))"""
_BROKEN_IMAGES = """() => Array.from(document.images)
  .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))"""


def _pages(html: Path, edition: str = ""):
    # index.html is only a redirect to the cover page (checked in test_index_redirects_to_the_cover)
    yield f"{edition}book/intro.html"
    for nb in chapters():
        yield f"{edition}chapters/{nb.stem}.html"
    yield f"{edition}book/glossary.html"


EDITIONS = ("", "ko/")  # English at the root, Korean under ko/


def test_index_redirects_to_the_cover(built_book):
    assert "book/intro.html" in (built_book / "index.html").read_text()
    assert "book/intro.html" in (built_book / "ko" / "index.html").read_text()


def test_both_editions_have_every_page(built_book):
    for edition in EDITIONS:
        for rel in _pages(built_book, edition):
            assert (built_book / rel).exists(), f"{rel} missing from the book"


@pytest.mark.browser
@pytest.mark.parametrize("edition", EDITIONS, ids=["en", "ko"])
def test_pages_show_typeset_math_loaded_figures_and_no_errors(built_book, server, browser, edition):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    foreign = []
    page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else foreign.append(r.url))
    pages_with_math = 0
    for rel in _pages(built_book, edition):
        page.goto(f"{server}/{rel}", wait_until="load")
        page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        text = page.evaluate(_ARTICLE_TEXT)
        n_math = page.locator("mjx-container").count()
        if page.locator(".math").count():
            pages_with_math += 1
            assert n_math > 0, f"{rel}: math elements but MathJax typeset nothing"
        for raw in ("$$", "\\[", "\\(", "\\begin{"):
            assert raw not in text, f"{rel}: raw TeX {raw!r} left in the page text"
        broken = page.evaluate(_BROKEN_IMAGES)
        assert not broken, f"{rel}: images that did not load: {broken}"
        assert "Traceback (most recent call last)" not in page.content(), f"{rel}: an execution traceback"
        assert page.locator(".output.traceback, .output.error").count() == 0, f"{rel}: an error output"
        wide = page.evaluate(_OVERFLOWING_CODE)
        assert not wide, f"{rel}: code lines wider than their box at 1280 px (scroll sideways): {wide[:3]}"
    assert pages_with_math >= 2, "expected math on several pages"
    assert not foreign, f"the book requested addresses off this machine: {foreign[:5]}"
    page.close()


@pytest.mark.browser
def test_chapter_figures_are_present(built_book, server, browser):
    page = browser.new_page()
    for nb in chapters():
        page.goto(f"{server}/chapters/{nb.stem}.html", wait_until="load")
        n = page.locator("article img").count()
        assert n >= 1, f"{nb.stem}: no figure on the page"
    page.close()


@pytest.mark.browser
def test_exercise_solutions_are_hidden_until_opened(built_book, server, browser):
    page = browser.new_page()
    seen = 0
    for nb in chapters():
        page.goto(f"{server}/chapters/{nb.stem}.html", wait_until="load")
        # sphinx-exercise renders a dropdown solution as a togglebutton admonition, collapsed on load
        states = page.evaluate(
            "() => Array.from(document.querySelectorAll('.solution')).map(e => e.classList.contains('toggle-hidden'))"
        )
        seen += len(states)
        assert all(states), f"{nb.stem}: a solution is shown before the reader opens it"
    assert seen > 0, "no exercise solutions found in any chapter"
    page.close()


_HANGUL = "[\\uac00-\\ud7a3]"


def _fonts_rendering(page, selector: str) -> list[tuple[str, int]]:
    """(font family, glyphs) Chromium actually used to draw the first element matching `selector`."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return [(f["familyName"], f["glyphCount"]) for f in fonts]


@pytest.mark.browser
def test_korean_pages_are_korean_in_a_font_with_hangul(built_book, server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for rel in _pages(built_book, "ko/"):
        page.goto(f"{server}/{rel}", wait_until="load")
        assert page.evaluate("() => document.documentElement.lang") == "ko", f"{rel}: <html lang> is not ko"
        text = page.evaluate(_ARTICLE_TEXT)
        hangul = len(re.findall(_HANGUL, text))
        assert hangul > 0.2 * len(re.findall("[A-Za-z\\uac00-\\ud7a3]", text)), f"{rel}: little Korean text"
    # the first paragraph of a chapter: its Hangul is drawn with a font that has Hangul (not boxes)
    page.goto(f"{server}/ko/chapters/03_heatmap.html", wait_until="load")
    fonts = _fonts_rendering(page, "article section p")
    cjk = [name for name, glyphs in fonts if glyphs and re.search("CJK|KR|Nanum|Gothic|Hangul", name)]
    assert cjk, f"Hangul drawn without a Korean font (install fonts-noto-cjk): {fonts}"
    page.close()


@pytest.mark.browser
def test_language_switch_lands_on_the_same_page_in_the_other_edition(built_book, server, browser):
    page = browser.new_page()
    for nb in chapters()[:3] + chapters()[-1:]:
        page.goto(f"{server}/chapters/{nb.stem}.html", wait_until="load")
        page.click(".edition-switch a[hreflang=ko]")
        page.wait_for_load_state("load")
        assert page.url == f"{server}/ko/chapters/{nb.stem}.html"
        page.click(".edition-switch a[hreflang=en]")
        page.wait_for_load_state("load")
        assert page.url == f"{server}/chapters/{nb.stem}.html"
    page.goto(f"{server}/ko/book/intro.html", wait_until="load")
    page.click(".edition-switch a[hreflang=en]")
    page.wait_for_load_state("load")
    assert page.url == f"{server}/book/intro.html"
    page.close()
