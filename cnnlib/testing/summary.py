"""``grader.summary()``: every test cell of the running notebook, run without stopping at the first
failure: a line each (pass or fail, points, grade id), then the first line of the message below it,
indented, so that it reads at a phone's width too.

Every test cell is tagged ``raises-exception``, so *Run All* goes on past a failing one; this
runs them all again and lists them (a function whose cell has not run yet is named as such). It
reads the test cells from the notebook file (``__session__``, set by Jupyter, or the one
notebook in the kernel's folder) and runs them in the notebook's namespace. Hidden tests are
not in a student's copy: they run when the notebook is graded. Under nbgrader (validate,
autograde) it does nothing: nbgrader runs every test cell itself.
"""

from __future__ import annotations

import json
import os
import re

DEFINED = re.compile(r"^def (\w+)", re.MULTILINE)


def summary(checker, notebook: str | None = None) -> list[tuple[str, bool, float, str]]:
    """(grade id, passed, points, first line of the message) per test cell; printed too."""
    if os.environ.get("NBGRADER_EXECUTION"):
        print("grader.summary(): nbgrader runs every test cell itself; nothing to do here.")
        return []
    namespace = _namespace()
    path = _notebook_path(notebook, namespace)
    if path is None:
        print("grader.summary(): which notebook? Save it, then call grader.summary('name.ipynb').")
        return []
    with open(path, encoding="utf-8") as handle:
        cells = json.load(handle)["cells"]
    namespace.setdefault("grader", checker)
    graded = {name for cell in cells if _is_solution(cell) for name in DEFINED.findall(_source(cell))}
    rows = [_run_cell(cell, namespace, graded) for cell in cells if _is_test(cell)]
    earned = sum(points for _, passed, points, _ in rows if passed)
    total = sum(points for _, _, points, _ in rows)
    for grade_id, passed, points, first in rows:
        mark = "skip" if not points else "pass" if passed else "FAIL"
        score = f"{points if passed else 0:g}/{points:g}" if points else "hidden"
        print(f"{mark} {score:>6} {grade_id}" + (f"\n       {first}" if first and not passed else ""))
    print(f"{earned:g} of {total:g} points from the tests you can see; hidden tests run when the "
          "notebook is graded.")
    return rows


def _namespace() -> dict:
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _notebook_path(notebook: str | None, namespace: dict) -> str | None:
    candidates = [notebook] if notebook else []
    session = namespace.get("__session__")
    if session.__class__ is str and session.endswith(".ipynb"):
        candidates += [session, os.path.basename(session)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    if notebook:
        return None
    found = sorted(name for name in os.listdir(".") if name.endswith(".ipynb"))
    return found[0] if len(found) == 1 else None


def _is_test(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def _is_solution(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("solution"))


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if cell["source"].__class__ is list else cell["source"]


def _run_cell(cell: dict, namespace: dict, graded: set[str]) -> tuple[str, bool, float, str]:
    """Run one test cell; ``graded``: the functions the notebook's answer cells define (a test
    that finds one undefined says to run its cell, not that the name is wrong)."""
    meta = cell["metadata"]["nbgrader"]
    source = _source(cell)
    grade_id, points = meta.get("grade_id", "?"), float(meta.get("points", 0))
    code = compile(source, f"<test cell {grade_id}>", "exec")
    if not any(name != "__doc__" for name in code.co_names):
        return grade_id, True, 0.0, "they run when the notebook is graded"
    try:
        exec(code, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # a failed check, or anything else the cell raised
        first = str(error).partition("\n")[0] or error.__class__.__name__
        missing = getattr(error, "name", None) if error.__class__ is NameError else None
        if missing in graded:
            first = (f"{missing} is not defined in the kernel yet: run the cell where you wrote it "
                     "(or Restart Kernel and Run All Cells), then this summary again")
        return grade_id, False, points, first
    return grade_id, True, points, ""
