"""The book's chapters: their shape, and that the build executed each one as it is now.

``make book`` executes every chapter (errors fail the build); these tests check what it left:
an execution record in the jupyter-cache for each chapter's current code, rendered outputs,
every glued number resolved, and the chapter endings the course promises. (A cell that raises
fails the build, unless it is tagged ``raises-exception`` to show an error on purpose.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
CACHE = ROOT / "_build" / ".jupyter_cache"


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    return [f for f in files if f.startswith("book/ch")]   # the notation page is no chapter


CHAPTERS = chapters()


def test_every_chapter_of_the_course_is_in_the_table_of_contents():
    assert len(CHAPTERS) == 10
    for chapter in CHAPTERS:
        assert (ROOT / f"{chapter}.md").is_file(), f"{chapter}.md is listed in _toc.yml but missing"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_is_a_jupytext_notebook_that_uses_cnnlib(chapter):
    text = (ROOT / f"{chapter}.md").read_text()
    assert text.startswith("---\njupytext:"), f"{chapter}: no jupytext header"
    assert "format_name: myst" in text.split("---")[1]
    assert re.search(r"^(import cnnlib|from cnnlib)", text, re.M), f"{chapter} does not import cnnlib"


CODE_LINE_LIMIT = 80


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_code_lines_fit_the_page(chapter):
    """Every line of every code cell is at most 80 characters, so the book shows it unwrapped."""
    import jupytext

    notebook = jupytext.read(ROOT / f"{chapter}.md")
    long_lines = [
        f"{chapter}: code cell {cell_number}, line {line_number}: {len(line)} characters: {line}"
        for cell_number, cell in enumerate(notebook.cells, start=1)
        if cell.cell_type == "code"
        for line_number, line in enumerate(cell.source.splitlines(), start=1)
        if len(line) > CODE_LINE_LIMIT
    ]
    assert not long_lines, f"code lines over {CODE_LINE_LIMIT} characters:\n" + "\n".join(long_lines)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ends_with_summary_exercises_and_its_graded_notebook(chapter):
    text = (ROOT / f"{chapter}.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[-3:] == ["Summary", "Exercises", "Graded notebook"], headings[-3:]
    assert ":class: dropdown" in text.split("## Exercises")[1], f"{chapter}: no hidden solutions"
    links = re.findall(r"<\.\./(exercises/[^>]+\.ipynb)>", text)
    assert links, f"{chapter}: no link to its graded notebook"
    for link in links:
        assert (ROOT / link).is_file(), f"{chapter} links to {link}, which does not exist"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_was_executed_as_it_is_now(chapter):
    """The jupyter-cache holds an execution of exactly the chapter's current code cells."""
    import jupytext
    from jupyter_cache import get_cache

    if not CACHE.is_dir():
        pytest.fail(f"no execution cache at {CACHE}: run `make book` first", pytrace=False)
    notebook = jupytext.read(ROOT / f"{chapter}.md")
    record = get_cache(CACHE).match_cache_notebook(notebook)  # raises KeyError when absent
    assert record.pk


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_shows_outputs_and_resolved_numbers(chapter):
    page = HTML / f"{chapter}.html"
    assert page.is_file(), f"{page} missing: run `make book` first"
    html = page.read_text(encoding="utf-8")
    assert "cell_output" in html, f"{chapter}: no cell outputs rendered"
    assert "{glue" not in html, f"{chapter}: an unresolved glue reference"


@pytest.mark.parametrize("number, chapter", list(enumerate(CHAPTERS, start=1)))
def test_chapters_are_numbered_as_the_text_refers_to_them(number, chapter):
    """`numbered: true` in _toc.yml: chapter 7's page is titled "7. ...", as "chapter 7" in the
    text says, and its figures are numbered "Fig. 7.1" and so on."""
    html = (HTML / f"{chapter}.html").read_text(encoding="utf-8")
    title = re.search(r'<h1><span class="section-number">(\d+)\. </span>', html)
    assert title and int(title.group(1)) == number, f"{chapter}: the page title is not numbered {number}"
    figures = re.findall(r'caption-number">Fig\. ([\d.]+)', html)
    assert all(f.startswith(f"{number}.") for f in figures), (chapter, figures)


def test_notation_page_maps_every_deck():
    text = (ROOT / "book" / "notation.md").read_text()
    for deck in ("000", "001", "002", "003", "004"):
        assert f"deck {deck}" in text, f"the notation page does not map deck {deck}'s letters"
