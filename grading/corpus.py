"""Submissions made from ``solutions/``: right, partly right, blank and hostile ones.

Used by ``tests/test_grade.py`` (the hostile corpus) and to build the shipped demo class.
Each case is a function ``(course, folder) -> None`` that writes one submission folder.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def released(assignment: str, root: Path = ROOT):
    return nbformat.read(str(root / "exercises" / assignment / f"{assignment}.ipynb"), as_version=4)


def solved(assignment: str, root: Path = ROOT) -> dict[str, str]:
    notebook = nbformat.read(str(root / "solutions" / assignment / f"{assignment}.ipynb"), as_version=4)
    return {_meta(c)["grade_id"]: MARKER.sub("", c.source)
            for c in notebook.cells if _meta(c).get("solution")}


def filled(assignment: str, overrides: dict | None = None, prepend: dict | None = None, root: Path = ROOT):
    """The released notebook with the solutions filled in; ``overrides`` replace, ``prepend`` adds."""
    notebook = copy.deepcopy(released(assignment, root))
    answers = solved(assignment, root)
    for cell in notebook.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id in answers:
            answer = (overrides or {}).get(grade_id, answers[grade_id])
            cell.source = (prepend or {}).get(grade_id, "") + answer
    return notebook


def write(notebook, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(folder / f"{name}.ipynb"))


def cells_with(notebook, grade_id: str) -> list:
    """The notebook's cells carrying ``grade_id`` (the original first, then any copies)."""
    return [c for c in notebook.cells if _meta(c).get("grade_id") == grade_id]


def without(notebook, grade_id: str):
    notebook.cells = [c for c in notebook.cells if _meta(c).get("grade_id") != grade_id]
    return notebook


def duplicated(notebook, grade_id: str):
    cells = []
    for cell in notebook.cells:
        cells.append(cell)
        if _meta(cell).get("grade_id") == grade_id:
            cells.append(copy.deepcopy(cell))
    notebook.cells = cells
    return notebook
