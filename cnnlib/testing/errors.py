"""What a failed check raises: a short first line (what failed and how), the details below it.

Jupyter shows a :class:`GradingError` as its message alone (``_render_traceback_``): no frame of
the checker, and, when the student's own code raised, the student's frames and exception.
``nbgrader validate`` cuts lines past 87 characters (83 of the message, after its indent), so the
first line is kept under :data:`WIDTH` and longer detail lines are wrapped at :data:`DETAIL_WIDTH`
(on a phone's width Jupyter wraps them anyway).
"""

from __future__ import annotations

import textwrap
import traceback

WIDTH = 80
DETAIL_WIDTH = 82
DETAIL_CHARS = 2000  # the most of one detail line shown (a returned string may be megabytes)


def _wrapped(line: str) -> list[str]:
    """A detail line in lines of at most :data:`DETAIL_WIDTH`, continued two spaces further in
    (cut to :data:`DETAIL_CHARS` first: textwrap takes quadratic time on a long word)."""
    if len(line) <= DETAIL_WIDTH:
        return [line]
    if len(line) > DETAIL_CHARS:
        line = line[:DETAIL_CHARS] + " …"
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(line, DETAIL_WIDTH, subsequent_indent=indent + "  ", break_on_hyphens=False)


def _fit(message: str) -> str:
    """The first line cut to :data:`WIDTH` (then repeated whole below it); the details wrapped so
    that ``nbgrader validate`` shows them whole."""
    first, _, rest = message.partition("\n")
    lines = [first] if len(first) <= WIDTH else [first[:WIDTH - 1] + "…", "  " + first]
    lines += rest.split("\n") if rest else []
    return "\n".join(wrapped for line in lines for wrapped in _wrapped(line))


class GradingError(AssertionError):
    """A check failed: the first line says what failed and how, the next lines why."""

    def __init__(self, message: str = ""):
        super().__init__(_fit(str(message)))

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error: the message, then the student's own frames if any."""
        first, _, rest = str(self).partition("\n")
        lines = [f"\x1b[1;31m{first}\x1b[0m", *rest.splitlines()]
        cause = self.__cause__
        if cause is not None and cause.__traceback__ is not None:
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if not _is_checker(f.filename)]
            if frames:
                lines.append("Where your code raised it (most recent call last):")
                for frame in frames:
                    lines.append(f"  {_cell_name(frame.filename)}, line {frame.lineno}, in {frame.name}")
                    if frame.line:
                        lines.append(f"    {frame.line}")
                lines.append(f"{cause.__class__.__name__}: {cause}"[:WIDTH * 4])
        return lines[:1] + [wrapped for line in lines[1:] for wrapped in _wrapped(line)]


def _cell_name(filename: str) -> str:
    """``Cell In[5]`` for a notebook cell's code, as IPython's own tracebacks name it (not the
    kernel's temporary file); other files as they are."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        named = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # no IPython, or an older one
        named = None
    return f"{named[0]} {named[1]}" if named else f'File "{filename}"'


def _is_checker(filename: str) -> bool:
    return filename.startswith(_PACKAGE)


_PACKAGE = __file__.rpartition("/")[0] + "/" if "/" in __file__ else __file__.rpartition("\\")[0] + "\\"


def refuse(what: str) -> GradingError:
    return GradingError(
        f"Grading refused: {what}.\n  The tests give no points while the notebook changes the tools "
        "they rely on; restart the kernel, remove that code, and run the notebook again.")
