"""The library's listings in the book fit their box at a desktop's width.

The chapters show cnnlib's own functions with ``literalinclude`` (``:pyobject:``). At 1280 px the
article is 752 px wide between the two sidebars; a code block there holds 82 columns
(``book/_static/book.css``). A listing with longer lines scrolled sideways, its ends hidden.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = 82
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n((?::\w+:.*\n)*)")


def listings() -> list[tuple[str, Path, str]]:
    """(chapter, file, object) for every ``literalinclude`` with ``:pyobject:``."""
    found = []
    for chapter in sorted((ROOT / "book").glob("ch*.md")):
        for match in INCLUDE.finditer(chapter.read_text(encoding="utf-8")):
            name = re.search(r":pyobject: (\S+)", match.group(2))
            if name:
                found.append((chapter.name, (chapter.parent / match.group(1)).resolve(), name.group(1)))
    return found


def object_lines(path: Path, name: str) -> list[str]:
    """The source lines ``literalinclude`` shows for ``name`` (its decorators included)."""
    source = path.read_text(encoding="utf-8")
    node = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name)
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return source.splitlines()[start - 1:node.end_lineno]


def test_the_book_includes_library_listings():
    assert len(listings()) >= 15


@pytest.mark.parametrize("chapter, path, name", listings(),
                         ids=[f"{c}:{n}" for c, _, n in listings()])
def test_a_listing_fits_in_82_columns(chapter, path, name):
    long = [f"{len(line)}: {line}" for line in object_lines(path, name) if len(line) > COLUMNS]
    assert not long, f"{chapter} shows {name} from {path.name} with lines over {COLUMNS} columns:\n" + \
        "\n".join(long)


@pytest.mark.book
def test_82_columns_fit_a_code_block_at_1280_px():
    """The CSS promise the test above relies on, measured in Chromium on a built chapter."""
    from playwright.sync_api import sync_playwright
    from test_book_browser import CHROMIUM, FLAGS, HTML

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((HTML / "book" / "ch02_convolution.html").as_uri())
        room = page.evaluate("""() => {
            const pre = [...document.querySelectorAll('.bd-article div.highlight pre')]
                .find(e => e.clientWidth > 0);
            const probe = document.createElement('span');
            probe.textContent = 'x'.repeat(100);
            pre.appendChild(probe);
            const style = getComputedStyle(pre);
            const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            const columns = inner / (probe.getBoundingClientRect().width / 100);
            probe.remove();
            return columns;
        }""")
        browser.close()
    assert room >= COLUMNS, f"a code block holds {room:.1f} columns at 1280 px"
