"""Names that come from the file system: student ids checked before use, text made safe to print.

A student id is a folder name under ``submitted/``: whatever unzip or a student made of it. It
is used as a gradebook key, a path component, a CSV cell, an nbgrader exchange file name
(``student+assignment+timestamp``) and a word on the terminal, so it is checked once, up front,
against what all of these can hold; a folder that fails gets a message of its own and is never
passed to nbgrader.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 100
PUNCTUATION = "._-@"  # besides letters and digits; '+' and '*' are the exchange's separators


def id_problem(name: str) -> str | None:
    """Why ``name`` cannot be a student or assignment id (None when it can)."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_LENGTH:
        return f"the name is {len(name)} characters long (at most {MAX_LENGTH})"
    if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in name):  # os.fsdecode's stand-ins for undecodable bytes
        return "the name is not valid UTF-8 (a folder named in another encoding, e.g. Latin-1)"
    if name.startswith(("-", ".")):
        return f"the name starts with {name[0]!r} (it would read as an option or a hidden folder)"
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in PUNCTUATION)})
    if bad:
        shown = ", ".join(printable(repr(ch)) for ch in bad[:5])
        return (f"the name holds {shown}: only letters, digits and {' '.join(PUNCTUATION)} are allowed "
                "(no spaces, commas, control characters, '+' or '*')")
    return None


def printable(text: str, limit: int = 2000) -> str:
    """``text`` with every control or undecodable character shown as an escape, for a terminal."""
    out = []
    for ch in text[:limit]:
        if ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                       if 0xDC80 > ord(ch) or ord(ch) > 0xDCFF else f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(text) > limit else "")


def one_line(text: str, limit: int = 300) -> str:
    """``printable`` on one line (newlines and tabs shown as escapes too)."""
    return printable(text.replace("\n", "\\n").replace("\t", "\\t"), limit)


def plural(count: int, noun: str) -> str:
    """``1 submission``, ``2 submissions``."""
    return f"{count} {noun}{'s' * (count != 1)}"
