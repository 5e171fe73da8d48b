"""Every number the book quotes from a lecture slide is the one cnnlib computes.

A claim marked as an erratum must really differ from its slide; every other claim must agree.
"""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))

from claims import all_claims  # noqa: E402

CLAIMS = all_claims()


def test_the_book_quotes_lecture_numbers():
    assert len(CLAIMS) >= 20, "each chapter should check the lecture numbers it quotes"


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.key for c in CLAIMS])
def test_claim_matches_the_slide_unless_marked_as_an_erratum(claim):
    if claim.erratum:
        assert not claim.agrees(), (
            f"{claim.key}: marked as an erratum, but cnnlib computes the slide's value {claim.says}"
        )
    else:
        assert claim.agrees(), (
            f"{claim.key} (deck {claim.deck}, {claim.where}): the slide says {claim.says}, "
            f"cnnlib computes {claim.computed()}; fix the code or mark the claim as an erratum"
        )


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.key for c in CLAIMS])
def test_claim_values_are_written_as_a_reader_writes_them(claim):
    """The book shows a claim's values in prose and tables: never as a Python repr."""
    from claims import arithmetic, readable

    for value in (claim.says, claim.computed()):
        text = readable(value)
        assert not re.search(r"^[\[(]|\(\s*\d+\s*,|'|\barray\(|np\.", text), (claim.key, text)
    if claim.how:
        shown = arithmetic(claim)
        expression = claim.how().replace("·", "*").replace("×", "*").replace(",", "")
        assert eval(expression, {"__builtins__": {}}) == claim.computed(), (claim.key, shown)


def test_lecture_table_is_one_collapsed_table_with_a_verdict_per_claim():
    from claims import table

    keys = [c.key for c in CLAIMS[:5]] + [next(c.key for c in CLAIMS if c.erratum)]
    text = table(*keys)
    assert text.startswith(":::{admonition} Checked against the lectures\n:class: dropdown\n")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(keys) + 1                      # a header and one row per claim
    assert rows[-1].endswith("| **erratum** |")
    assert not any(key in text for key in keys)           # no claim keys on the page
