"""The built book in a real browser (Debian's headless Chromium), offline.

Every page loads without a script error and without asking for anything outside the book,
every image loads, every formula is typeset by the bundled MathJax, every internal link
resolves, and search finds pages. Run after ``make book`` (``make test`` does both).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

# BOOK_HTML points the tests at another build (e.g. a chapter built alone).
HTML = Path(os.environ.get("BOOK_HTML", Path(__file__).resolve().parents[1] / "_build" / "html"))
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]

if not (HTML / "index.html").is_file():
    pytest.fail(f"no built book in {HTML}: run `make book` first", pytrace=False)


def book_pages() -> list[Path]:
    """Every HTML page Sphinx wrote for the book's content (not its generated indexes)."""
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p for p in HTML.rglob("*.html")
                  if p.name not in skip and not {"_static", "_sources", "_images"} & set(p.parts)
                  and not _is_redirect(p))


def _is_redirect(page: Path) -> bool:
    """jupyter-book writes index.html as a meta refresh to the root page."""
    return 'http-equiv="Refresh"' in page.read_text(encoding="utf-8")[:1000]


class _Anchors(HTMLParser):
    """Collects the ids a page defines and the hrefs/srcs it uses."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


@functools.cache
def parsed(page: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make browser` installs Debian's chromium", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


class PageLog:
    """What a page did while loading: errors, failed and outside requests."""

    def __init__(self, page, origin: str):
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("requestfailed", lambda r: self.errors.append(f"failed request: {r.url}"))
        page.on("request", lambda r: self._check(r.url, origin))

    def _check(self, url: str, origin: str) -> None:
        if not (url.startswith(origin) or url.startswith(("data:", "blob:", "about:"))):
            self.outside.append(url)


def _typeset(page) -> None:
    """Wait until MathJax (if the page loads it) has typeset everything."""
    page.wait_for_load_state("load")
    if page.evaluate("typeof window.MathJax !== 'undefined'"):
        page.wait_for_function("window.MathJax.startup && window.MathJax.startup.promise")
        page.evaluate("() => window.MathJax.startup.promise")


def _check_page(page, log: PageLog, name: str) -> None:
    _typeset(page)
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.getAttribute('src'))")
    assert not broken, f"{name}: images that did not load: {broken}"
    math = page.locator(".math").count()
    typeset = page.locator("mjx-container").count()
    assert typeset >= math, f"{name}: {math} formulas but only {typeset} typeset by MathJax"
    assert not page.locator("mjx-merror").count(), f"{name}: MathJax could not parse a formula"
    assert not log.errors, f"{name}: {log.errors}"
    assert not log.outside, f"{name}: requests outside the book (it must work offline): {log.outside}"


PAGES = book_pages()


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(HTML)) for p in PAGES])
def test_page_loads_offline_with_images_and_typeset_math(browser, server, path):
    page = browser.new_page()
    log = PageLog(page, server)
    page.goto(f"{server}/{path.relative_to(HTML).as_posix()}")
    _check_page(page, log, str(path.relative_to(HTML)))
    page.close()


def test_pages_work_opened_from_disk(browser):
    """A student may open the HTML files directly, without a server."""
    for path in PAGES:
        page = browser.new_page()
        log = PageLog(page, "file://")
        page.goto(path.as_uri())
        _check_page(page, log, f"file {path.name}")
        page.close()


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(HTML)) for p in PAGES])
def test_internal_links_resolve(path):
    for href in parsed(path).links:
        parts = urlsplit(href)
        if parts.scheme or href.startswith(("mailto:", "//")):
            continue
        target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        assert target.exists(), f"{path.name}: link {href!r} points to a missing {target}"
        if parts.fragment and target.suffix == ".html":
            assert parts.fragment in parsed(target).ids, f"{path.name}: no #{parts.fragment} in {target.name}"


def test_the_book_is_fully_offline_in_its_html():
    """No page references a CDN or any other site for scripts, styles or fonts."""
    outside = re.compile(r'<(?:script|link|img)[^>]+(?:src|href)="(https?:)?//', re.I)
    for path in PAGES:
        found = outside.search(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name} loads {found.group(0)}..."


def test_index_redirects_to_the_introduction(browser, server):
    page = browser.new_page()
    page.goto(f"{server}/index.html")
    page.wait_for_url("**/book/intro.html")
    assert "loops up" in page.title()
    page.close()


def test_search_finds_chapters(browser, server):
    page = browser.new_page()
    log = PageLog(page, server)
    page.goto(f"{server}/search.html?q=convolution")
    page.wait_for_selector("#search-results li", timeout=20_000)
    assert page.locator("#search-results li").count() >= 1
    assert not log.errors and not log.outside, (log.errors, log.outside)
    page.close()
