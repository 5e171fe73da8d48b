"""The book as one PDF (``make pdf``, run by ``make test``): every chapter in it, in order, with
its figures and typeset formulas, and a bookmark per chapter.

BOOK_PDF points the tests at another file.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
PDF = Path(os.environ.get("BOOK_PDF", ROOT / "_build" / "pdf" / "book.pdf"))
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from pdf import toc_pages  # noqa: E402


def _titles() -> list[str]:
    """Each page's ``# Title`` from its source, in table-of-contents order."""
    titles = []
    for name in toc_pages():
        text = (ROOT / f"{name}.md").read_text(encoding="utf-8")
        titles.append(re.search(r"^# (.+)$", text, re.M).group(1).strip())
    return titles


@pytest.fixture(scope="module")
def book():
    from pypdf import PdfReader

    if not PDF.is_file():
        pytest.fail(f"no PDF at {PDF}: run `make pdf`", pytrace=False)
    reader = PdfReader(PDF)
    starts = [reader.get_destination_page_number(item) for item in reader.outline]
    return reader, starts


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("\u2019", "'").strip()


def _image_count(page) -> int:
    """Image XObjects a page draws (without decoding them)."""
    resources = page.get("/Resources") or {}
    objects = resources.get("/XObject") or {}
    return sum(1 for ref in objects.values() if ref.get_object().get("/Subtype") == "/Image")


def test_pdf_starts_each_chapter_with_its_title_in_order_with_a_bookmark(book):
    reader, starts = book
    titles = _titles()
    assert len(reader.pages) >= 5 * len(titles), f"only {len(reader.pages)} pages"
    bookmarks = [_plain(item.title) for item in reader.outline]
    assert len(bookmarks) == len(titles), bookmarks
    for bookmark, title in zip(bookmarks, titles):  # a numbered chapter's bookmark: "3. Title"
        assert bookmark.endswith(_plain(title)), (bookmark, title)
    assert starts == sorted(starts) and len(set(starts)) == len(starts), starts
    for title, first in zip(titles, starts):
        assert _plain(title) in _plain(reader.pages[first].extract_text()), (title, first)


def test_pdf_has_figures_and_typeset_math(book):
    reader, starts = book
    images = [_image_count(page) for page in reader.pages]
    assert sum(images) >= 30, f"only {sum(images)} images in the PDF"
    ends = starts[1:] + [len(reader.pages)]
    for name, first, end in zip(toc_pages(), starts, ends):
        html = (HTML / f"{name}.html").read_text(encoding="utf-8")
        if "<img" in html:
            assert sum(images[first:end]) > 0, f"{name} has figures on the web, none in the PDF"
    text = " ".join(reader.pages[i].extract_text() for i in range(starts[2], starts[2] + 4))
    assert "\\frac" not in text and "$$" not in text, "a formula was printed as TeX source"
