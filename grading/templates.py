"""nbconvert's HTML exporter for feedback pages, made cheaper for a process that renders many.

- nbgrader makes a new exporter for every ``GenerateFeedback``, and each new exporter compiles its
  Jinja templates again (the feedback page extends nbconvert's classic templates). Every
  :class:`FeedbackExporter` of the grading process shares one in-memory Jinja bytecode cache; a
  template is found by its name and the checksum of its source, so an edited one is compiled afresh.
- ``HTMLExporter`` parses each finished page again with BeautifulSoup's pure-Python parser, embedded
  stylesheets and all, to give images without alternative text a placeholder one and lab-template
  cells a ``tabindex``: more than half of the page's time. The feedback template is nbgrader's
  classic-based one (no lab cells), and the placeholder is added here to the ``<img>`` tags that
  lack one, so the page is the same without the second parse.
- Pygments highlighting was about two thirds of rendering a page, and most code cells are the same
  in every student's notebook (given code, test cells): highlighted code is kept per process, by
  source, language and the cell metadata the highlighter reads (:class:`RememberedHighlight`).
- Formulas are MathML (:mod:`grading.mathml`) and ``mathjax.html.j2`` is replaced by an empty macro
  (``grading/feedback_templates/``): nbgrader's page loaded MathJax from a CDN, so offline its
  formulas showed as raw TeX.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from jinja2 import BytecodeCache, ChoiceLoader, FileSystemLoader, pass_context
from jinja2.bccache import Bucket
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

from grading.mathml import mathml

OVERRIDES = Path(__file__).parent / "feedback_templates"  # found before nbconvert's and nbgrader's
NO_ALT = re.compile(r"<img(?![^>]*\balt=)", re.IGNORECASE)
ALT = '<img alt="No description has been provided for this image"'  # nbconvert's own placeholder


class MemoryBytecodeCache(BytecodeCache):
    """Compiled templates in a dict, for the life of the process."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED = MemoryBytecodeCache()
HIGHLIGHTED: dict[tuple, str] = {}  # (lexer, source, language, metadata) -> HTML, for the process
HIGHLIGHTED_MAX = 4096


class RememberedHighlight(Highlight2HTML):
    """``Highlight2HTML`` remembering what it highlighted (:data:`HIGHLIGHTED`, emptied when full)."""

    def __call__(self, source, language=None, metadata=None):
        key = (self.pygments_lexer, source, language, json.dumps(metadata or {}, sort_keys=True, default=str))
        html = HIGHLIGHTED.get(key)
        if html is None:
            if len(HIGHLIGHTED) >= HIGHLIGHTED_MAX:
                HIGHLIGHTED.clear()
            html = HIGHLIGHTED[key] = super().__call__(source, language, metadata)
        return html


class MathMLRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer with formulas as MathML instead of TeX left for MathJax."""

    def block_math(self, body: str) -> str:
        return mathml(body, display=True)

    def inline_math(self, body: str) -> str:
        return mathml(body, display=False)

    def latex_environment(self, name: str, body: str) -> str:
        return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)


class FeedbackExporter(HTMLExporter):
    """``HTMLExporter`` compiling its templates once per process (``GenerateFeedback.exporter_class``)."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.loader = ChoiceLoader([FileSystemLoader(str(OVERRIDES)), environment.loader])
        environment.bytecode_cache = COMPILED
        return environment

    @pass_context
    def markdown2html(self, context, source):
        """``HTMLExporter.markdown2html`` with :class:`MathMLRenderer`."""
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)

    def from_notebook_node(self, nb, resources=None, **kw):
        """``HTMLExporter.from_notebook_node`` (its filters, its resources) without the second parse."""
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name", None))
        highlight = self.filters.get("highlight_code", RememberedHighlight(pygments_lexer=lexer, parent=self))
        self.register_filter("highlight_code", highlight)
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return NO_ALT.sub(ALT, page), resources
