"""TeX to MathML for the feedback pages, so that their formulas need no script and no network.

nbgrader's feedback template loads MathJax from a CDN: on a JupyterHub with no internet the
notebook's formulas showed as raw TeX, and every page asked a third party for a script. The pages
now carry MathML, which browsers draw themselves (Chromium 109+, Firefox, Safari).

The TeX comes from the student's notebook, so it is untrusted: ``latex2mathml`` passes some of it
through (``\\text{<img ...>}`` as markup, ``\\href{javascript:...}``, ``\\style{...}``). Its output
is therefore parsed as XML and rebuilt from an allowlist of MathML elements and attributes; anything
else, or any TeX it cannot convert, is shown as TeX in a ``<code>`` element, escaped.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert

ELEMENTS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup mfrac msqrt mroot munder mover munderover "
    "mtable mtr mtd mstyle mpadded mphantom menclose".split())
ATTRIBUTES = frozenset(
    "display mathvariant stretchy fence separator lspace rspace width height depth linethickness "
    "columnalign rowalign rowspacing columnspacing accent accentunder movablelimits minsize maxsize "
    "symmetric largeop form linebreak scriptlevel displaystyle notation".split())
VALUE = re.compile(r"[\w .%-]{0,40}\Z")
MAX_TEX = 4000  # longer formulas stay TeX
ALIGNED = re.compile(r"\\begin\{(aligned|align\*?|gathered)\}(.*)\\end\{\1\}\Z", re.DOTALL)


class Refused(ValueError):
    """Markup outside the allowlist."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _rebuilt(element: ET.Element) -> ET.Element:
    """A copy of ``element`` with local names and allowed attributes only (raises :class:`Refused`)."""
    name = _local(element.tag)
    if name not in ELEMENTS:
        raise Refused(name)
    copy = ET.Element(name, {key: value for key, value in element.attrib.items()
                             if key in ATTRIBUTES and VALUE.match(value)})
    copy.text, copy.tail = element.text, element.tail
    copy.extend(_rebuilt(child) for child in element)
    return copy


def _inner(tex: str) -> ET.Element:
    """The ``<mrow>`` that latex2mathml makes of ``tex``, checked."""
    return _rebuilt(ET.fromstring(convert(tex)))[0]


def _table(body: str) -> ET.Element:
    """An ``aligned`` environment as an ``<mtable>``: rows at ``\\\\``, columns at ``&`` (right, left)."""
    table = ET.Element("mtable", {"columnalign": "right left", "rowspacing": "0.4em"})
    for line in re.split(r"\\\\", body):
        if not line.strip():
            continue
        row = ET.SubElement(table, "mtr")
        for cell in re.split(r"(?<!\\)&", line):
            ET.SubElement(row, "mtd", {"displaystyle": "true"}).append(
                _inner(cell) if cell.strip() else ET.Element("mrow"))
    return table


def mathml(tex: str, display: bool) -> str:
    """``tex`` (from a Markdown cell, its ``<`` escaped by the sanitiser) as MathML, or as escaped TeX
    in ``<code class="tex">`` when it cannot be converted safely."""
    source = tex.replace("&lt;", "<").strip()
    try:
        if len(source) > MAX_TEX:
            raise Refused("too long")
        aligned = ALIGNED.match(source)
        math = ET.Element("math", {"display": "block" if display else "inline"})
        math.append(_table(aligned.group(2)) if aligned else _inner(source))
        return ET.tostring(math, encoding="unicode")
    except Exception:  # latex2mathml's own errors, bad XML, markup outside the allowlist
        delimiter = "$$" if display else "$"
        return f'<code class="tex">{html.escape(delimiter + source + delimiter)}</code>'
