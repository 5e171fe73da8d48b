"""Make the book work with no internet and no console errors.

- MathJax 3 is served from the book itself. The files come from the ``django-static-mathjax``
  package (installed by requirements.txt); its browser build (``es5/``) is staged next to the
  output and Sphinx's ``mathjax_path`` points at it, so it lands in ``_static/mathjax/``.
- sphinx-thebe (live code through a Binder server, which this book does not use) is switched
  off: jupyter-book loads it always, and it declares its script variables twice per page.
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


def _drop_thebe(app) -> None:
    for event, listeners in app.events.listeners.items():
        app.events.listeners[event] = [
            listener for listener in listeners
            if not getattr(listener.handler, "__module__", "").startswith("sphinx_thebe")
        ]


def setup(app):
    app.connect("config-inited", _configure, priority=900)
    app.connect("builder-inited", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
