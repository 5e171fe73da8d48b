"""The feedback pages' formulas (grading.mathml): MathML from untrusted TeX, inside an allowlist."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from grading.mathml import ATTRIBUTES, ELEMENTS, mathml


class Tags(HTMLParser):
    """Every element and attribute of a fragment."""

    def __init__(self, fragment: str):
        super().__init__()
        self.elements, self.attributes = [], []
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        self.elements.append(tag)
        self.attributes += [name for name, _ in attrs]


def test_a_formula_becomes_mathml():
    out = mathml(r"\left\lfloor \frac{H + 2P - K}{S} \right\rfloor + 1", display=True)
    assert out.startswith('<math display="block">') and "<mfrac>" in out and "<mi>H</mi>" in out


def test_an_aligned_formula_is_a_table_of_rows_and_columns():
    out = mathml("\\begin{aligned}\ny &= a + b,\\\\\n&\\quad 0 \\le i < H.\n\\end{aligned}", display=True)
    tags = Tags(out)
    assert tags.elements.count("mtr") == 2 and tags.elements.count("mtd") == 4
    assert "&amp;" not in out and "<mi>&" not in out


def test_the_sanitisers_escaped_less_than_is_a_less_than():
    assert "<mo>&lt;</mo>" in mathml("i &lt; H", display=False)


@pytest.mark.parametrize("tex", [
    r"\text{<img src=x onerror=alert(1)>}", r"\text{<script>alert(1)</script>}",
    r"\href{javascript:alert(1)}{x}", r"\style{background:url(https://example.org)}{x}",
    r"\class{x}{y}", r"\color{red}{x}", r"x^{<svg onload=alert(1)>}", r"\frac{a", "}" * 5000,
    r"\mathrm{\unknown}", r"\begin{aligned} <b>x</b> & = 1 \end{aligned}"])
def test_hostile_tex_yields_only_allowlisted_markup(tex):
    out = mathml(tex, display=False)
    tags = Tags(out)
    assert set(tags.elements) <= ELEMENTS | {"code"}
    assert set(tags.attributes) <= ATTRIBUTES | {"class"}
    assert not re.search(r"<(?!/?(m[a-z]+|code)\b)", out), out  # no other tag, even malformed
    if tags.elements == ["code"]:  # shown as TeX, escaped
        assert out.startswith('<code class="tex">$') and "<" not in out[len('<code class="tex">'):-7]
