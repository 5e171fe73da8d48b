"""What a reader sees on each page of the built book (Debian's headless Chromium): the text reads
as a textbook, not as the audit of the slides behind it.

The checking machinery stays out of sight: no helper name (``show_claims``, ``by_key``,
``glue``, ``lecture_values``...) and no claim key (``ch01_fc_dot_length``) in the visible text,
and no raw Python repr of a list or tuple of strings (``[('3x3x3x32', '224x224x3'), ...]``),
of a list of tuples, or of a NumPy scalar or array (``array(...)``, ``np.float64(...)``) in the
prose or in any output; code a reader sees (cells, inline code) is Python and is not judged by
that rule.
Text inside a collapsed dropdown or hidden code toggle is not visible and is not checked.
Run after ``make book`` (``make test`` does both).
"""

from __future__ import annotations

import re

import pytest
from test_book_browser import HTML, PAGES, _typeset, browser, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.book

HELPERS = re.compile(r"\b(show_claims|show|by_key|glue|lecture_values|lecture_table|all_claims)\("
                     r"|\{glue|\bby_key\b|\bshow_claims\b|\bch\d\d_[a-z0-9]+_[a-z0-9_]+\b")
STRING = r"""(?:'[^'\n]*'|"[^"\n]*")"""
REPR_ANYWHERE = re.compile(
    rf"[\[(]\s*{STRING}\s*,"          # a list or tuple of strings
    r"|\[\s*\(|\(\s*\("                 # a list of tuples, a tuple of tuples
    r"|\barray\(|\bnp\.(?:float|int)\d+\(")  # NumPy reprs

VISIBLE_TEXT = """() => {
  const root = document.querySelector('main') || document.body;
  const prose = [], output = [], source = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!el || el.closest('script, style, mjx-container, .headerlink')) continue;
    if (!el.checkVisibility({checkVisibilityCSS: true})) continue;  // collapsed or hidden
    if (!el.closest('pre, code')) prose.push(node.textContent);
    else (el.closest('.cell_output') ? output : source).push(node.textContent);
  }
  return {prose: prose.join(' '), output: output.join(' '), source: source.join(' ')};
}"""


def visible_text(browser, server, path) -> dict:  # noqa: F811 (fixtures)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/{path.relative_to(HTML).as_posix()}")
    _typeset(page)
    text = page.evaluate(VISIBLE_TEXT)
    page.close()
    return text


def _context(text: str, match: re.Match) -> str:
    return " ".join(text[max(0, match.start() - 60): match.end() + 60].split())


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(HTML)) for p in PAGES])
def test_visible_text_has_no_helper_names_or_python_reprs(browser, server, path):  # noqa: F811
    text = visible_text(browser, server, path)
    everything = "\n".join(text.values())
    shown = text["prose"] + "\n" + text["output"]
    problems = [f"helper name: ...{_context(everything, m)}..." for m in HELPERS.finditer(everything)]
    problems += [f"Python repr: ...{_context(shown, m)}..." for m in REPR_ANYWHERE.finditer(shown)]
    assert not problems, f"{path.name}:\n" + "\n".join(problems[:15])


def test_the_checker_sees_what_a_reader_sees(browser, server):  # noqa: F811
    """The check finds a repr in a Markdown output and ignores one inside a closed dropdown."""
    page = browser.new_page()
    page.set_content("<main><p>the table is [('3x3', '224')]</p>"
                     "<details><summary>more</summary><p>by_key('x')</p></details>"
                     "<div class='cell_output'><pre>(1, 3, 32, 32)</pre></div>"
                     "<pre>print('a', 1)</pre><p>call <code>f('a', 1)</code></p></main>")
    text = page.evaluate(VISIBLE_TEXT)
    page.close()
    assert REPR_ANYWHERE.search(text["prose"])
    assert not HELPERS.search("\n".join(text.values()))
    assert text["output"] == "(1, 3, 32, 32)" and text["source"] == "print('a', 1) f('a', 1)"
