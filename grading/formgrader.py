"""One way to autograde: nbgrader's own autograde (the formgrader's button, ``nbgrader autograde``)
is switched off by the course's configuration, with a message pointing to ``make grade``.

``nbgrader_config.py`` sets ``c.Autograde.exporter_class`` to :class:`SandboxOnlyExporter`. nbgrader
builds the exporter when an autograde starts, before it touches the gradebook or any folder, so a
refusal there leaves everything as it was. ``make grade``'s workers configure nbgrader with the
sandboxed kernel (:class:`grading.execute.SandboxExecute` among the autograde preprocessors); only
then does the exporter let the autograde go on.
"""

from __future__ import annotations

from nbconvert.exporters import NotebookExporter

MESSAGE = (
    "Autograding from the formgrader or with `nbgrader autograde` is switched off in this course: it would "
    "run the students' code outside the sandbox, with the test cells inside their kernels. Grade with "
    "`make grade` in the course folder (ASSIGNMENT=<name> STUDENT=<id> for one assignment or student; "
    "it regrades only what changed and keeps manual scores); the formgrader then shows its grades for "
    "manual grading.")


class AutogradeSwitchedOff(RuntimeError):
    """Raised when nbgrader's own autograde is started outside ``make grade``."""


def sandboxed(converter) -> bool:
    """Whether ``converter``'s autograde preprocessors run the kernel in ``make grade``'s sandbox."""
    steps = getattr(converter, "autograde_preprocessors", None)
    if steps is None:  # not an autograde (an exporter made for another converter)
        return True
    names = [step if isinstance(step, str) else getattr(step, "__name__", "") for step in steps]
    return any(name.rsplit(".", 1)[-1] == "SandboxExecute" for name in names)


class SandboxOnlyExporter(NotebookExporter):
    """nbgrader's notebook exporter, refusing to start an autograde that is not sandboxed."""

    def __init__(self, *args, **kwargs):
        if not sandboxed(kwargs.get("parent")):
            raise AutogradeSwitchedOff(MESSAGE)
        super().__init__(*args, **kwargs)
