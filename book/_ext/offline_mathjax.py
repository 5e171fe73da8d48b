"""Serve MathJax 3 from the book itself, so formulas typeset with no internet.

The files come from the ``django-static-mathjax`` package (installed by requirements.txt);
this extension stages its browser build (``es5/``) next to the output and points Sphinx's
``mathjax_path`` at it, so it lands in ``_static/mathjax/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mathjax


def _es5() -> Path:
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-svg.js").is_file():
        raise FileNotFoundError(f"MathJax's tex-svg.js not found in {es5}: reinstall django-static-mathjax")
    return es5


def _configure(app, config) -> None:
    staging = Path(app.outdir).parent / "mathjax_static"
    target = staging / "mathjax"
    if not (target / "tex-svg.js").is_file():
        shutil.copytree(_es5(), target, dirs_exist_ok=True)
    config.html_static_path = [*config.html_static_path, str(staging)]
    # SVG output needs no web fonts: one self-contained script.
    config.mathjax_path = "mathjax/tex-svg.js"


def setup(app):
    app.connect("config-inited", _configure, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
