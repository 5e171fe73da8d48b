"""matplotlib animations as HTML players that work offline and describe themselves.

``to_jshtml`` writes a self-contained player (frames as PNGs in JavaScript), but its buttons load
icons from a CDN, its frame image has no alt text and its slider no label. ``jshtml`` fixes the
three, so the book stays offline and a screen reader knows what the animation shows.
"""

from __future__ import annotations

import html as _html
import re

from IPython.display import HTML

ICONS = {"fa-minus": "&minus;", "fa-fast-backward": "|&#9664;&#9664;",
         "fa-step-backward": "|&#9664;", "fa-play fa-flip-horizontal": "&#9664;",
         "fa-pause": "||", "fa-play": "&#9654;", "fa-step-forward": "&#9654;|",
         "fa-fast-forward": "&#9654;&#9654;|", "fa-plus": "+"}


def offline(page: str) -> str:
    """matplotlib's player loads its icons from a CDN: use plain characters instead."""
    page = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", page)
    for name, text in ICONS.items():
        page = page.replace(f'<i class="fa {name}"></i>', text)
    return page


def describe(page: str, alt: str) -> str:
    """The frame image gets ``alt`` as its description, the slider a label."""
    alt = _html.escape(alt, quote=True)
    page, images = re.subn(r'<img id="(_anim_img\w+)"', rf'<img id="\1" alt="{alt}"', page)
    page, sliders = re.subn(r'<input id="(_anim_slider\w+)" type="range"',
                            r'<input id="\1" type="range" aria-label="animation frame"', page)
    if images != 1 or sliders != 1:
        raise ValueError(f"unexpected player HTML: {images} frame images, {sliders} sliders")
    return page


def jshtml(anim, alt: str, default_mode: str = "once") -> HTML:
    """The animation as an offline HTML player whose frame image says ``alt``.

    ``anim``: a ``matplotlib.animation.Animation``; its figure is closed afterwards.
    """
    import matplotlib.pyplot as plt

    page = describe(offline(anim.to_jshtml(default_mode=default_mode)), alt)
    plt.close(anim._fig)
    return HTML(page)
