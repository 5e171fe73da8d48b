"""grading.speedups: nbgrader in a grading process compiles its SQL and checks its schemas once, with
the same results and the same errors."""

from __future__ import annotations

import subprocess
import sys

from grading.sandbox import REPO

SCRIPT = r"""
import sys, tempfile
from pathlib import Path
from jsonschema import ValidationError
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator
import nbgrader.api
from grading import speedups
from grading.db import alembic_head

nbgrader.api.get_alembic_version = alembic_head  # as in the grading process

folder = Path(tempfile.mkdtemp())

def grades(name):
    with Gradebook(f"sqlite:///{folder / name}") as gradebook:
        gradebook.add_assignment("a")
        gradebook.add_student("s")
        gradebook.update_or_create_notebook("n", "a")
        gradebook.update_or_create_grade_cell("g", "n", "a", max_score=3, cell_type="code")
        gradebook.add_submission("a", "s")
        grade = gradebook.find_grade("g", "n", "a", "s")
        grade.auto_score = {"one.db": 1, "two.db": 2}[name]
        gradebook.db.commit()
        engine = gradebook.engine
    with Gradebook(f"sqlite:///{folder / name}") as gradebook:
        return gradebook.find_grade("g", "n", "a", "s").score, engine

def problem(metadata):
    cell = new_code_cell("x = 1", metadata={"nbgrader": metadata})
    try:
        MetadataValidator().validate_nb(new_notebook(cells=[cell]))
    except ValidationError as error:
        return error.message
    return None

base = {"schema_version": 3, "solution": False, "locked": False, "grade_id": "g"}
bad = [{**base, "grade": "yes"}, {**base, "grade": True, "points": "x"},
       {**base, "grade": False, "solution": True}]
before = [problem(m) for m in bad]
speedups.install()
after = [problem(m) for m in bad]
assert before == after and before[0] and before[1] and before[2] is None, (before, after)
(one, first), (two, second) = grades("one.db"), grades("two.db")
assert (one, two) == (1, 2), (one, two)  # each engine still reads its own file
assert first.dialect is second.dialect and first._compiled_cache is second._compiled_cache
assert len(first._compiled_cache) > 0
print("ok")
"""


def test_shared_sql_and_schema_checks_give_the_same_results():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
