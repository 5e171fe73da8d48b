"""The feedback pages' exporter (grading.templates): nbconvert's page, made cheaper.

It skips ``HTMLExporter``'s second parse of the finished page with BeautifulSoup; what that parse
added for these pages (a placeholder alternative text on images without one) it adds itself, so a
student reads the same page.
"""

from __future__ import annotations

import copy
import html
import re

import nbformat
from nbconvert.exporters import HTMLExporter

from grading.templates import COMPILED, HIGHLIGHTED, FeedbackExporter

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell('# Stride\nA "kernel" moves by $S$ & stops.'),
                nbformat.v4.new_code_cell("plt.imshow(x)", outputs=[nbformat.v4.new_output(
                    "display_data", data={"image/png": PIXEL, "text/plain": "<Figure>"})]),
                nbformat.v4.new_code_cell("print(1 < 2)", outputs=[nbformat.v4.new_output(
                    "stream", name="stdout", text="True\n")])]
    return nb


def nbgraders_exporter() -> FeedbackExporter:
    """The exporter configured as ``GenerateFeedback`` configures it: nbgrader's feedback template."""
    from nbgrader.converters import GenerateFeedback

    return FeedbackExporter(config=GenerateFeedback().config)


def text(page: str) -> str:
    """What a reader sees: the page without tags, entities decoded, white space collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_the_page_reads_as_nbconverts_and_images_keep_their_placeholder_text():
    ours, _ = FeedbackExporter(template_name="classic").from_notebook_node(notebook())
    theirs, _ = HTMLExporter(template_name="classic").from_notebook_node(notebook())
    assert text(ours) == text(theirs).replace("$S$", "S")  # the formula is MathML (below)
    assert "A \"kernel\" moves by S & stops." in text(ours) and "True" in text(ours)
    assert '<math display="inline"><mrow><mi>S</mi></mrow></math>' in ours
    images = re.findall(r"<img[^>]*>", ours)
    assert len(images) == 1 and 'alt="No description has been provided for this image"' in images[0]


def test_templates_are_compiled_once_per_process():
    FeedbackExporter(template_name="classic").from_notebook_node(notebook())
    compiled = dict(COMPILED.compiled)
    assert compiled, "the templates' bytecode is kept"
    FeedbackExporter(template_name="classic").from_notebook_node(notebook())
    assert COMPILED.compiled.keys() == compiled.keys()


def test_highlighted_code_is_remembered_and_stays_exact():
    """The second page takes the first page's highlighted cells from memory and is the same page; a
    changed cell is highlighted afresh."""
    HIGHLIGHTED.clear()
    nb = notebook()
    first, _ = FeedbackExporter(template_name="classic").from_notebook_node(copy.deepcopy(nb))
    assert len(HIGHLIGHTED) == 2  # the two code cells
    second, _ = FeedbackExporter(template_name="classic").from_notebook_node(copy.deepcopy(nb))
    assert second == first and len(HIGHLIGHTED) == 2
    changed = notebook()
    changed.cells[2].source = "print(3 > 4)"
    third, _ = FeedbackExporter(template_name="classic").from_notebook_node(changed)
    plain, _ = HTMLExporter(template_name="classic").from_notebook_node(changed)
    assert len(HIGHLIGHTED) == 3 and text(third) == text(plain).replace("$S$", "S") and "3" in text(third)


def test_the_page_loads_no_mathjax_and_draws_its_formulas_as_mathml():
    """nbgrader's template loaded MathJax from cdnjs: offline, the formulas were raw TeX."""
    nb = notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "Output size:\n$$\\left\\lfloor \\frac{H + 2P - K}{S} \\right\\rfloor + 1$$\n"
        "and $0 \\le i &lt; H$ (the sanitiser's escape)."))
    for cell in nb.cells:
        cell.metadata.nbgrader = {"grade_id": f"cell-{id(cell)}", "grade": False, "solution": False}
    resources = {"nbgrader": {"notebook": "stride", "score": 0, "max_score": 0, "late_penalty": 0}}
    page, _ = nbgraders_exporter().from_notebook_node(nb, resources=resources)
    assert "<script" not in page  # nothing to load, from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//|url\(["']?(https?:)?//|@import""", page)
    assert '<math display="block">' in page and "<mfrac>" in page and "<mo>&lt;</mo>" in page
    assert "$" not in text(page)
