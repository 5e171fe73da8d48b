"""A feedback folder nbgrader's exchange can deliver, built only from what the grader rendered.

``nbgrader release_feedback`` reads ``timestamp.txt`` and ``submission_secret.txt`` from every
``feedback/<student>/<assignment>/`` and stops the whole release at the first folder without
them; ``fetch_feedback`` hands a student ``<notebook>.html`` for each notebook *they submitted*,
by name. So each folder gets: the feedback page the grader rendered for every notebook it
graded, a page for every notebook of the assignment it could not grade and for every notebook
submitted under another name, and the two small files. The grading messages are a banner at the
top of every page (escaped; nothing else of the submission is copied).
"""

from __future__ import annotations

import html
import re
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

BANNER_ID = "cnn-grading-messages"
SECRET = re.compile(r"[0-9A-Za-z_=-]{1,512}")
BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)
PAGE = ("<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head><body>{banner}"
        "<main style='font-family:sans-serif;max-width:900px;margin:1em auto'><h1>{title}</h1>"
        "<p>{text}</p></main></body></html>")


def banner(assignment: str, messages: list[str]) -> str:
    """The messages as an HTML block (empty for none); every message escaped."""
    if not messages:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
    return (f"<div id='{BANNER_ID}' role='alert' style='font-family:sans-serif;background:#fff3cd;"
            f"border:2px solid #c69500;padding:0.6em 1.2em;margin:0 0 1em 0'>"
            f"<strong>{html.escape(assignment)}: messages from the grader</strong><ul>{items}</ul></div>")


def with_banner(page: str, block: str) -> str:
    """``page`` (nbconvert's HTML) with ``block`` right after its ``<body>`` tag."""
    match = BODY.search(page)
    if not block:
        return page
    if match is None:
        return block + page
    return page[:match.end()] + block + page[match.end():]


def submitted_notebooks(submission: Path) -> list[str]:
    """Stems of the notebooks a student submitted (top level, regular files, valid names only)."""
    from grading.names import id_problem

    try:
        entries = list(submission.iterdir())
    except OSError:
        return []
    return sorted(p.stem for p in entries if p.suffix == ".ipynb" and not p.is_symlink() and p.is_file()
                  and id_problem(p.stem) is None)


def read_secret(submission: Path) -> str | None:
    """The exchange's ``submission_secret.txt`` if it looks like one nbgrader wrote (else None)."""
    path = submission / "submission_secret.txt"
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 512:
            return None
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if SECRET.fullmatch(text) else None


def nbgrader_time(moment: datetime | None) -> str:
    """A time as nbgrader writes timestamp.txt (UTC)."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def assemble(target: Path, rendered: Path | None, assignment: str, notebooks: list[str],
             submitted: list[str], messages: list[str], timestamp: datetime | None,
             secret: str | None) -> list[str]:
    """Write the feedback folder ``target`` (emptied first); the notebook pages written."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    block = banner(assignment, messages)
    pages = []
    for name in sorted(set(notebooks) | set(submitted)):
        source = rendered / f"{name}.html" if rendered is not None else None
        if source is not None and source.is_file() and not source.is_symlink():
            page = with_banner(source.read_text(encoding="utf-8", errors="replace"), block)
        else:
            text = (f"{html.escape(name)}.ipynb could not be graded; the messages above say why."
                    if name in notebooks else
                    f"{html.escape(name)}.ipynb is not a notebook of {html.escape(assignment)}; "
                    "it was not graded.")
            page = PAGE.format(title=html.escape(f"{assignment}: {name}"), banner=block, text=text)
        (target / f"{name}.html").write_text(page, encoding="utf-8")
        pages.append(name)
    (target / "timestamp.txt").write_text(nbgrader_time(timestamp))
    # Without the exchange's secret the student cannot fetch this page, but the release goes on.
    (target / "submission_secret.txt").write_text(secret or secrets.token_hex(64))
    return pages
