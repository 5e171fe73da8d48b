"""The book's own static files (``book/_static``): its stylesheet and the convolution explorer.

``book.css`` makes wide equations, code and animations scroll inside their own box at a phone's
width and keeps figures on white in dark mode; ``explorer.js`` turns every
``<div class="conv-explorer">`` into the interactive output-size explorer. Both are plain
files served with the book: nothing is fetched from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "_static"


def _configure(app, config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app):
    app.connect("config-inited", _configure)
    app.add_css_file("book.css")
    app.add_js_file("explorer.js", loading_method="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
