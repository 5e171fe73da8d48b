"""A notebook made inert before it is rendered as a feedback page (HTML a student and instructor open),
and before its autograded copy reaches ``autograded/``, which the formgrader renders in the
instructor's browser, logged in to the instructor's Jupyter server (:func:`sanitize_autograded`).

Everything in a submitted notebook is the student's: markdown cells (raw HTML, ``javascript:``
links), outputs (``text/html``, ``image/svg+xml``, ``application/javascript``, widget state), cell
and notebook metadata (which nbconvert's templates write into attributes unescaped). So:

- markdown cells: every ``<`` that could open a tag (followed by a letter, ``/``, ``!`` or ``?``,
  as CommonMark's raw HTML and autolinks need) becomes ``&lt;``, so there is no raw HTML and no
  autolink, while ``a < b`` and ``i <= n`` stay as written (an escaped ``&lt;`` showed as such
  in code spans and formulas); and a link or image
  whose URL has a scheme other than http(s), mailto or attachment points to ``#`` instead;
- outputs keep only ``text/plain``, ``image/png`` and ``image/jpeg`` (what nbconvert writes as
  escaped text or a base64 ``<img>``), without metadata; one without any of them says so;
- cells keep only their nbgrader metadata (when its values are plain names and numbers), the
  notebook only its language name; attachments only PNG/JPEG;
- a cell's ``comment`` (the instructor's, which nbgrader's ``GetGrades`` writes from the gradebook
  and the page renders as Markdown) is kept whatever its characters, made inert as markdown
  cells are and cut at ``COMMENT_CHARS``: "Nice work! Don't forget the flip (see ch. 2)." is
  an ordinary comment, not a name.
"""

from __future__ import annotations

import html
import re

from nbformat.notebooknode import NotebookNode

SAFE_DATA = ("text/plain", "image/png", "image/jpeg")
SAFE_SCHEMES = ("http", "https", "mailto", "attachment")
INLINE = re.compile(r"(\]\(\s*)([^)\s]*)")  # [text](url  or  ![alt](url
REFERENCE = re.compile(r"^([ \t]{0,3}\[[^\]]+\]:[ \t]*)(\S+)", re.MULTILINE)  # [label]: url
SCHEME = re.compile(r"^([^/?#]*?):")
TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
PLAIN = re.compile(r"^[\w .,:+-]{0,200}$")
COMMENT_CHARS = 20_000


def safe_url(url: str) -> str:
    """``url`` when it is relative or has an allowed scheme (as a browser would read it), else ``#``."""
    probe = re.sub(r"[\x00-\x20\\]", "", html.unescape(html.unescape(url)))
    scheme = SCHEME.match(probe)
    return url if scheme is None or scheme.group(1).lower() in SAFE_SCHEMES else "#"


def safe_markdown(source: str) -> str:
    """Markdown that renders to no HTML of its own and no script URL."""
    source = TAG_START.sub("&lt;", source)
    source = INLINE.sub(lambda m: m.group(1) + safe_url(m.group(2)), source)
    return REFERENCE.sub(lambda m: m.group(1) + safe_url(m.group(2)), source)


def safe_output(output: NotebookNode) -> NotebookNode:
    """Rich outputs reduced to plain text and raster images."""
    if "data" in output:
        data = {k: v for k, v in output.data.items() if k in SAFE_DATA and isinstance(v, str | list)}
        if not data:
            data = {"text/plain": f"[an output of type {', '.join(sorted(output.data))[:200]} is not shown]"}
        output.data = NotebookNode(data)
        output.metadata = NotebookNode()
    return output


def _plain(value) -> bool:
    return isinstance(value, bool | int | float) or (isinstance(value, str) and bool(PLAIN.match(value)))


def sanitize_notebook(nb: NotebookNode) -> NotebookNode:
    """Make ``nb`` safe to render to HTML (in place; returned too)."""
    nb.metadata = NotebookNode(language_info=NotebookNode(name="python"))
    for index, cell in enumerate(nb.cells):
        grading = cell.metadata.get("nbgrader", {})
        grading = grading if isinstance(grading, dict) else {}
        kept = {k: v for k, v in grading.items() if _plain(k) and _plain(v)}
        if isinstance(grading.get("comment"), str):
            kept["comment"] = safe_markdown(grading["comment"][:COMMENT_CHARS])
        cell.metadata = NotebookNode(nbgrader=NotebookNode(kept)) if kept else NotebookNode()
        if "id" in cell:
            cell.id = f"cell-{index}"
        if "attachments" in cell:
            cell.attachments = NotebookNode({
                name: NotebookNode({k: v for k, v in item.items() if k in SAFE_DATA[1:]})
                for name, item in cell.attachments.items() if PLAIN.match(name) and isinstance(item, dict)})
        if cell.cell_type == "markdown":
            cell.source = safe_markdown(cell.source)
        elif cell.cell_type == "raw":
            cell.cell_type, cell.source = "markdown", safe_markdown(cell.source)
        for output in cell.get("outputs", []):
            safe_output(output)
    return nb


def sanitize_autograded(nb: NotebookNode) -> NotebookNode:
    """:func:`sanitize_notebook`, keeping the notebook's kernelspec when its values are plain: the
    autograded copy, for the formgrader and for an instructor who opens it."""
    kernelspec = nb.metadata.get("kernelspec", {})
    sanitize_notebook(nb)
    if isinstance(kernelspec, dict) and kernelspec and all(_plain(k) and _plain(v)
                                                           for k, v in kernelspec.items()):
        nb.metadata.kernelspec = NotebookNode(kernelspec)
    return nb
