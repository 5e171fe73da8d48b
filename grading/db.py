"""The course's gradebook: where it lives (SQLite by default, or any SQLAlchemy URL such as
PostgreSQL) and the parent's whole-gradebook steps (the template for workers, ``grades.csv``).

The URL is chosen once per run: ``--db-url``, else ``$NBGRADER_DB_URL``, else the course's
``gradebook.db`` (SQLite). Workers never see it: each grades into a private SQLite copy of the
template and the parent, the only writer, merges the result into the course's gradebook.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

CSV_KEYS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
            "raw_score", "late_submission_penalty", "score", "max_score"]


def course_url(course: Path, db_url: str | None = None) -> str:
    """The gradebook's SQLAlchemy URL: ``db_url``, else ``$NBGRADER_DB_URL``, else SQLite in the course."""
    default = f"sqlite:///{Path(course).resolve() / 'gradebook.db'}"
    return db_url or os.environ.get("NBGRADER_DB_URL") or default


def build_template(course: Path, assignments: list[str], work: Path, url: str | None = None) -> Path:
    """Create or update the gradebook from solutions/; return a template (SQLite) without students."""
    from nbgrader.api import Gradebook

    from grading.worker import run_nbgrader

    for assignment in assignments:
        code, log = run_nbgrader(course, ["generate_assignment", assignment, "--force",
                                          f"--CourseDirectory.release_directory={work / 'release'}"])
        if code != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{log}")
    template = work / "template.db"
    shutil.copy(course / "gradebook.db", template)
    with Gradebook(f"sqlite:///{template}") as gradebook:
        for student in list(gradebook.students):
            gradebook.remove_student(student.id)
    return template


def export_csv(course: Path, url: str | None = None) -> Path:
    """grades.csv from the gradebook, every cell quoted as the csv module needs."""
    from nbgrader.api import Gradebook, MissingEntry

    path, partial = course / "grades.csv", course / "grades.csv.partial"
    with Gradebook(url or course_url(course)) as gradebook, \
            open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_KEYS)
        for assignment in gradebook.assignments:
            for student in gradebook.students:
                try:
                    sub = gradebook.find_submission(assignment.name, student.id)
                    got = (sub.timestamp, sub.score, sub.late_submission_penalty)
                except MissingEntry:
                    got = (None, 0.0, 0.0)
                writer.writerow([assignment.name, assignment.duedate, got[0], student.id, student.last_name,
                                 student.first_name, student.email, got[1], got[2], got[1] - got[2],
                                 assignment.max_score])
    os.replace(partial, path)
    return path
