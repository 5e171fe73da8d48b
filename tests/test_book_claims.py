"""Every number the book quotes from a lecture slide is the one cnnlib computes.

A claim marked as an erratum must really differ from its slide; every other claim must agree.
"""

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
