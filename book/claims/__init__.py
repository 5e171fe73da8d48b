"""The lectures' numbers, each next to the cnnlib computation that checks it.

A chapter module (``ch04.py`` ...) lists ``CLAIMS``: what a slide says and how to compute it.
The chapters show the computed values in the text with ``lecture_values(...)`` (with their
arithmetic, and an erratum box where the slide's number is wrong) and compare them with the
slides in one collapsed table per section, ``lecture_table(...)``; both are called from cells
whose input the book hides. ``tests/test_book_claims.py``
recomputes every claim: a claim not marked as an erratum must agree with its slide, and one
marked as an erratum must really differ, so the book can neither hide nor invent an error.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Claim:
    """One number (or array, or shape) a lecture slide states.

    ``key``: short unique name, e.g. ``"alexnet_conv1_params"``. ``deck``: ``"000"`` .. ``"004"``.
    ``where``: the slide's title or topic. ``says``: the slide's value as printed.
    ``compute``: computes the value with cnnlib, taking no arguments.
    ``erratum``: a sentence explaining why the slide differs, or ``""`` when it is right.
    ``rounded``: the slide prints the value rounded to this many decimals, halves up as people
    round (None: exact).
    ``how``: optional, returns the arithmetic in the reader's terms, e.g. ``"64 · 5 · 5 · 3"``
    (built from the same numbers the computation uses; the tests evaluate it and compare).
    """

    key: str
    deck: str
    where: str
    says: Any
    compute: Callable[[], Any]
    erratum: str = ""
    rounded: int | None = None
    unit: str = ""
    extra: dict = field(default_factory=dict, compare=False)
    how: Callable[[], str] | None = None

    def computed(self) -> Any:
        return self.compute()

    def agrees(self) -> bool:
        """Does the computed value match what the slide prints (after the slide's rounding)?"""
        value = self.computed()
        if self.rounded is not None:
            scale = 10.0**self.rounded
            value = np.floor(np.asarray(value, dtype=float) * scale + 0.5) / scale
        try:
            return bool(np.array_equal(np.asarray(value), np.asarray(self.says)))
        except (TypeError, ValueError):
            return value == self.says


def _format(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.6g}"
    if isinstance(value, np.ndarray):  # on one line: it is shown as inline code
        return " ".join(np.array2string(value, separator=", ", max_line_width=10**6).split())
    return str(value)


def all_claims() -> list[Claim]:
    """Every claim of every chapter module in this package, keys unique."""
    claims: list[Claim] = []
    for module in pkgutil.iter_modules(__path__):
        claims += importlib.import_module(f"{__name__}.{module.name}").CLAIMS
    keys = [c.key for c in claims]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"claim keys must be unique, repeated: {duplicates}")
    return claims


def by_key(key: str) -> Claim:
    """The claim named ``key``."""
    for claim in all_claims():
        if claim.key == key:
            return claim
    raise KeyError(f"no claim named {key!r}")


# --- Rendering for the reader: the number in the text, the check in a collapsed table -------

def _latex_cell(value: Any) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return f"{int(value)}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return rf"\text{{{value}}}"


def _matrix(rows: np.ndarray | list) -> str:
    body = r" \\ ".join(" & ".join(_latex_cell(v) for v in row) for row in rows)
    return rf"$\left[\begin{{smallmatrix}}{body}\end{{smallmatrix}}\right]$"


def readable(value: Any) -> str:
    """A value as a reader writes it (Markdown): ``(32, 26, 26)`` -> ``32 × 26 × 26``, a list
    of numbers -> ``32, 28, 24``, a 2-D array or a table of rows -> a small matrix."""
    if isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value):
        return " × ".join(f"{int(v):,}" for v in value)
    if isinstance(value, (list, tuple, np.ndarray)):
        array = np.asarray(value, dtype=object)
        if array.ndim == 1:
            if len(array) and isinstance(value[0], tuple):  # a table: one tuple per row
                return _matrix([list(row) for row in value])
            return ", ".join(_format(v) for v in array)
        if array.ndim == 2:
            return _matrix(array.tolist())
    return _format(value)


def arithmetic(claim: Claim) -> str:
    """The claim's value in the reader's terms: ``"64 · 5 · 5 · 3 = **4,800** weights"``; without
    ``how``, what it is (the slide's topic) before it: ``"Max pooling (2x2, stride 2): **...**"``.
    A value the slide rounds is shown as the slide rounds it (``≈ 2.33``)."""
    unit = f" {claim.unit}" if claim.unit else ""
    computed = claim.computed()
    rounded = claim.rounded is not None and claim.rounded >= 0 and isinstance(computed, float | np.floating)
    if rounded:  # halves up, as ``agrees`` rounds (and people do), not Python's halves to even
        scale = 10.0**claim.rounded
        shown = f"{np.floor(float(computed) * scale + 0.5) / scale:,.{claim.rounded}f}"
    else:
        shown = readable(computed)
    value = f"**{shown}**{unit}"
    if claim.how:
        return f"{claim.how()} {'≈' if rounded else '='} {value}"
    return f"{claim.where}: {'≈ ' if rounded else ''}{value}"


def erratum_box(claim: Claim) -> str:
    """An admonition saying what the slide says and what the code computes (Markdown)."""
    unit = f" {claim.unit}" if claim.unit else ""
    note = claim.erratum or "The slide's value differs from the computed one."
    return (f":::{{admonition}} Erratum: deck {claim.deck}, {claim.where}\n:class: warning\n"
            f"The slide says {readable(claim.says)}{unit}; the code computes "
            f"{readable(claim.computed())}{unit}. {note}\n:::\n")


def lecture_values(*keys: str, erratum: bool = True):
    """Display the claims' values with their arithmetic, one per line, and an erratum box
    under each claim the slide gets wrong (to be used in a cell whose input is hidden)."""
    from IPython.display import Markdown

    claims = [by_key(key) for key in keys]
    lines = "\n\n".join(arithmetic(c) for c in claims)
    boxes = [erratum_box(c) for c in claims if erratum and not c.agrees()]
    return Markdown("\n\n".join([lines, *boxes]))


def table(*keys: str) -> str:
    """The collapsed "Checked against the lectures" table of the claims (Markdown)."""
    lines = ["| claim | deck | slide's value | computed value | |", "|---|---|---|---|---|"]
    for claim in (by_key(key) for key in keys):
        verdict = "agrees" if claim.agrees() else "**erratum**"
        shown, said = readable(claim.computed()), readable(claim.says)
        if claim.agrees() and claim.rounded is not None and shown != said:  # else the rounding is invisible
            verdict = f"agrees: the slide rounds {shown} to {said}"
        cells = [claim.where, claim.deck, readable(claim.says), readable(claim.computed()), verdict]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return (":::{admonition} Checked against the lectures\n:class: dropdown\n"
            + "\n".join(lines) + "\n:::\n")


def lecture_table(*keys: str):
    """Display ``table(*keys)`` in a notebook cell (to be used in a cell whose input is hidden)."""
    from IPython.display import Markdown

    return Markdown(table(*keys))
