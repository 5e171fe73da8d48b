"""Alt text for the book's figures: a screen reader says what each figure shows.

A chapter's figure is the output of a code cell, captioned through the cell's metadata
(``mystnb: figure: caption``). An image may carry its own description (``mystnb: image: alt``);
one that has none gets its figure's caption, first sentence, as its alt text, instead of
no description at all. Images outside a figure must describe themselves: the browser test
(tests/test_book_reader.py) fails on any image left without alt text.
"""

from __future__ import annotations

import re

from docutils import nodes


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def _describe(app, doctree) -> None:
    for image in doctree.findall(nodes.image):
        alt = (image.get("alt") or "").strip()
        if alt and not alt.endswith((".png", ".svg", ".jpg")):
            continue
        figure = image.parent
        while figure is not None and not isinstance(figure, nodes.figure):
            figure = figure.parent
        captions = list(figure.findall(nodes.caption)) if figure is not None else []
        if captions:
            image["alt"] = _first_sentence(captions[0].astext())


def setup(app):
    app.connect("doctree-resolved", lambda app, doctree, docname: _describe(app, doctree))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
