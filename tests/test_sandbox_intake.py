"""What crosses into the grader from a submission folder and back out as a feedback page.

:mod:`grading.intake` (files taken under caps, never through a link; names checked; trees of
any depth removed) and :mod:`grading.sanitize` (a notebook made inert before it is rendered).
"""

from __future__ import annotations

import html
import os
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from grading import intake
from grading.sanitize import safe_url, sanitize_notebook


def take(folder: Path, target: Path) -> tuple[list[str], list[str]]:
    """(names copied, messages) for every entry of ``folder``, as the worker takes them."""
    copied, messages, budget = [], [], intake.TOTAL_BYTES
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, is_folder in intake.entries(folder):
            if is_folder or intake.unsafe_name(name):
                messages.append(intake.unsafe_name(name) or f"{name} is a folder")
                continue
            size, why = intake.copy_file(fd, name, [target / name], budget)
            budget -= size
            (messages if why else copied).append(why or name)
    finally:
        os.close(fd)
    return copied, messages


def test_only_regular_files_under_the_caps_are_taken(tmp_path):
    folder, target = tmp_path / "submission", tmp_path / "taken"
    folder.mkdir()
    target.mkdir()
    (folder / "data.csv").write_text("1,2\n")
    with open(folder / "sparse.bin", "wb") as handle:  # 1 GB apparent, nothing allocated
        handle.truncate(1 << 30)
    with open(folder / "dense.bin", "wb") as handle:
        handle.write(b"x" * (intake.FILE_BYTES + 1))
    (tmp_path / "secret").write_text("another student's work")
    os.symlink(tmp_path / "secret", folder / "link.txt")
    os.mkfifo(folder / "pipe")
    os.mkdir(folder / "nested")
    bad = os.fsencode(folder) + b"/L\x94sung.ipynb"
    with open(bad, "wb") as handle:
        handle.write(b"{}")
    copied, messages = take(folder, target)
    assert copied == ["data.csv"]
    assert sorted(p.name for p in target.iterdir()) == ["data.csv"]
    said = "\n".join(messages)
    for expected in ("sparse.bin takes 1073741824 bytes", "dense.bin takes", "link.txt is a link",
                     "pipe is not a regular file", "nested is a folder",
                     "'L\ufffdsung.ipynb' is not valid UTF-8"):
        assert expected in said, said
    assert all(c.isprintable() for c in said.replace("\n", ""))


@pytest.mark.parametrize("name, problem", [
    ("--help", "may not start with '-'"), ("a\x1b[31mred", "control characters"), ("..", "may not"),
    (os.fsdecode(b"M\xfcller"), "not valid UTF-8"), ("ok_name-1.ipynb", None)])
def test_names_are_checked_before_use(name, problem):
    found = intake.unsafe_name(name)
    assert (found is None) if problem is None else (problem in found)
    assert "\x1b" not in intake.shown(name)


def test_a_linked_submission_folder_is_refused(tmp_path):
    course = tmp_path / "course"
    (course / "solutions" / "01").mkdir(parents=True)
    (course / "submitted" / "mallory").mkdir(parents=True)
    os.symlink(course / "solutions" / "01", course / "submitted" / "mallory" / "01")
    assert "is a link" in intake.linked_folder(course / "submitted" / "mallory" / "01", course)
    os.symlink(course / "submitted" / "mallory", course / "submitted" / "eve")
    assert "is a link" in intake.linked_folder(course / "submitted" / "eve" / "01", course)
    (course / "submitted" / "ada" / "01").mkdir(parents=True)
    assert intake.linked_folder(course / "submitted" / "ada" / "01", course) is None


def test_a_tree_of_any_depth_is_removed_without_following_links(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("kept")
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir("deep", dir_fd=fd)
    for _ in range(3000):  # deeper than Python's recursion limit and than PATH_MAX
        inner = os.open("deep" if _ == 0 else "d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
        os.mkdir("d", dir_fd=fd)
    os.symlink(keep, "link", dir_fd=fd)
    os.symlink(tmp_path, "up", dir_fd=fd)
    os.close(fd)
    intake.remove_tree(tmp_path / "deep")
    assert not (tmp_path / "deep").exists() and keep.read_text() == "kept"


HOSTILE_MARKDOWN = """# Answer
<script>window.pwned = 'markdown script'</script>
<img src=x onerror="window.pwned = 'img onerror'">
[click](javascript:window.pwned='link') [tab](java\tscript:alert(1)) ![i](JaVaScRiPt:alert(1))
[ref]: javascript:window.pwned='reference'
<svg onload="window.pwned='svg'"></svg> [fine](https://example.org/page) $a < b$
"""


def hostile_notebook():
    notebook = new_notebook(cells=[new_markdown_cell(HOSTILE_MARKDOWN),
                                   new_raw_cell("<script>window.pwned=1</script>"),
                                   new_code_cell("display(...)")])
    widgets = {"application/vnd.jupyter.widget-state+json": {"state": {}, "x": "</script><script>1"}}
    notebook.metadata = {"widgets": widgets, "title": "<script>window.pwned='title'</script>"}
    notebook.cells[2].outputs = [
        new_output("display_data", {"text/html": "<script>window.pwned='html output'</script>",
                                    "text/plain": "<HTML object>"}),
        new_output("display_data", {"image/svg+xml": "<svg onload=\"window.pwned='svg output'\"/>"}),
        new_output("display_data", {"application/javascript": "window.pwned = 'javascript output'"}),
        new_output("display_data", {"image/png": "iVBORw0KGgo="},
                   metadata={"image/png": {"width": "1 onerror=window.pwned=1"}}),
        new_output("stream", name="stdout", text="<script>window.pwned='stream'</script>")]
    notebook.cells[2].metadata = {"tags": ['"><script>window.pwned=1</script>'],
                                  "nbgrader": {"grade_id": "<b>x</b>", "points": 1}}
    return notebook


class Audit(HTMLParser):
    """Script elements, event handler attributes and script URLs in a page."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.urls, self._in_script = [], [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            raster = tag == "img" and (value or "").startswith(("data:image/png;", "data:image/jpeg;"))
            if name in ("href", "src", "action", "formaction", "xlink:href") and value and not raster and \
                    safe_url(value) == "#" and value != "#":
                self.urls.append(value)

    def handle_endtag(self, tag):
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def render(notebook) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(notebook))
    return body


def test_a_sanitised_notebook_renders_no_script_of_its_own():
    page = render(sanitize_notebook(hostile_notebook()))
    audit = Audit()
    audit.feed(page)
    template = Audit()
    template.feed(render(new_notebook()))
    assert audit.scripts == template.scripts  # only the template's own (MathJax, require)
    assert audit.handlers == [] and audit.urls == []
    assert "pwned" not in "".join(audit.scripts)
    text = html.unescape(page)
    assert "https://example.org/page" in page and "# Answer" not in text  # markdown still renders
    assert "<HTML object>" in text and "not shown" in text


def test_the_unsanitised_notebook_would_have_run_script():
    """The audit above can fail: the same notebook rendered as it came has all of these."""
    audit = Audit()
    audit.feed(render(hostile_notebook()))
    assert any("pwned" in s for s in audit.scripts) and audit.handlers and audit.urls


def test_a_less_than_that_opens_no_tag_reads_as_written():
    """An instructor's comment or a notebook's Markdown with a comparison: only a ``<`` that could
    open a tag is escaped (it showed as "&lt;" in code spans and formulas)."""
    from nbformat.v4 import new_markdown_cell, new_notebook

    source = "Check `a < b` and `i <= n`, $x_i < 3$; <b>not bold</b> <!-- x --> <https://example.org>"
    page = render(sanitize_notebook(new_notebook(cells=[new_markdown_cell(source)])))
    assert "<code>a &lt; b</code>" in page and "<code>i &lt;= n</code>" in page and "&amp;lt;" not in page
    text = html.unescape(page)
    assert "<b>not bold</b>" in text and "<!-- x -->" in text  # shown as text, not markup
    audit = Audit()
    audit.feed(page)
    assert "<b>not bold</b>" not in page and not audit.handlers
