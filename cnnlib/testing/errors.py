"""What a failed check raises: a short first line (what failed and how), the details below it.

Jupyter shows a :class:`GradingError` as its message alone (``_render_traceback_``): no frame of
the checker, and, when the student's own code raised, the student's frames and exception.
``nbgrader validate`` cuts lines at 90 characters, so the first line is kept under :data:`WIDTH`.
"""

from __future__ import annotations

import traceback

WIDTH = 80


def _fit(message: str) -> str:
    """The first line cut to :data:`WIDTH` (then repeated whole below it); the details as they are
    (Jupyter shows them whole; ``nbgrader validate`` cuts them, but not the first line)."""
    first, _, rest = message.partition("\n")
    lines = [first] if len(first) <= WIDTH else [first[:WIDTH - 1] + "…", "  " + first]
    return "\n".join(lines + ([rest] if rest else []))


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
                lines += "".join(traceback.format_list(frames)).rstrip("\n").splitlines()
                lines.append(f"{cause.__class__.__name__}: {cause}"[:WIDTH * 4])
        return lines


def _is_checker(filename: str) -> bool:
    return filename.startswith(_PACKAGE)


_PACKAGE = __file__.rpartition("/")[0] + "/" if "/" in __file__ else __file__.rpartition("\\")[0] + "\\"


def refuse(what: str) -> GradingError:
    return GradingError(
        f"Grading refused: {what}.\n  The tests give no points while the notebook changes the tools "
        "they rely on; restart the kernel, remove that code, and run the notebook again.")
