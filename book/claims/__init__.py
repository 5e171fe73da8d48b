"""The lectures' numbers, each next to the cnnlib computation that checks it.

A chapter module (``ch04.py`` ...) lists ``CLAIMS``: what a slide says and how to compute it.
The chapters display them with ``show(...)``, which prints the computed value and, where the
slide's number is wrong, an erratum box saying what the slide says. ``tests/test_book_claims.py``
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


def markdown(claim: Claim) -> str:
    """The claim as Markdown: the computed value, and an erratum box where the slide is wrong."""
    unit = f" {claim.unit}" if claim.unit else ""
    text = f"**Computed:** `{_format(claim.computed())}`{unit} (deck {claim.deck}, *{claim.where}*)"
    if claim.agrees():
        return text + f"; the slide agrees: `{_format(claim.says)}`."
    note = claim.erratum or "The slide's value differs from the computed one."
    return text + (
        f"\n\n:::{{admonition}} Erratum: deck {claim.deck}, {claim.where}\n:class: warning\n"
        f"The slide says `{_format(claim.says)}`{unit}; the code computes "
        f"`{_format(claim.computed())}`{unit}. {note}\n:::\n"
    )


def show(claim: Claim):
    """Display ``markdown(claim)`` in a notebook cell (rendered by the book)."""
    from IPython.display import Markdown

    return Markdown(markdown(claim))


def show_claims(*keys: str) -> None:
    """Display the claims named ``keys`` in a notebook cell, as one block of Markdown."""
    from IPython.display import Markdown, display

    display(Markdown("\n\n".join(markdown(by_key(key)) for key in keys)))


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
