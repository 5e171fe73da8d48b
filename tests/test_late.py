"""Late submissions: nbgrader's late penalty, as the course's ``nbgrader_config.py`` sets it.

An instructor sets a due date in the gradebook (``nbgrader db assignment add A --duedate ...``)
and a policy (``c.LateSubmissionPlugin.penalty_method = "zero"``). ``make grade`` must then take
the penalty off in the course's gradebook, ``grades.csv`` and the student's feedback page, as
``nbgrader autograde`` would.
"""

from __future__ import annotations

import csv
import html
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grading import corpus

ROOT = Path(__file__).resolve().parents[1]
A = "01_convolution"
pytestmark = pytest.mark.grading


def test_a_late_submission_loses_what_the_course_says(tmp_path):
    from grading.run import grade

    course = tmp_path / "course"
    course.mkdir()
    policy = '\nc.LateSubmissionPlugin.penalty_method = "zero"\n'
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + policy)
    shutil.copytree(ROOT / "solutions" / A, course / "solutions" / A)
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # nbgrader db runs alembic
    done = subprocess.run([sys.executable, "-m", "nbgrader", "db", "assignment", "add", A,
                           "--duedate=2026-03-02 12:00:00 UTC"], cwd=course, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PATH": path})
    assert done.returncode == 0, done.stderr
    for student, stamp in (("on_time", "2026-03-02 11:59:00.000000 UTC"),
                           ("late", "2026-03-03 09:00:00.000000 UTC"),
                           ("garbled", "the day before the deadline")):  # nbgrader failed on it: 0
        corpus.write(corpus.filled(A), course / "submitted" / student / A, A)
        (course / "submitted" / student / A / "timestamp.txt").write_text(stamp)
    grade(course, workers=1, progress=False, report=False)
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    points = {s: [float(rows[s][k]) for k in ("raw_score", "late_submission_penalty", "score")] for s in rows}
    assert points == {"on_time": [16.0, 0.0, 16.0], "late": [16.0, 16.0, 0.0], "garbled": [16.0, 0.0, 16.0]}
    page = html.unescape((course / "feedback" / "late" / A / f"{A}.html").read_text())
    assert "Late submission penalty (Score: -16.0)" in page  # rendered again from the gradebook
    assert "<script src=" not in page  # ... by the same exporter as the grader's pages
    on_time = html.unescape((course / "feedback" / "on_time" / A / f"{A}.html").read_text())
    assert "late submission penalty" not in on_time.lower()
