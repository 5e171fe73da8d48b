"""``python -m grading.refresh --assignment A``: feedback with the formgrader's manual scores and comments.

``make grade``'s workers render feedback from their automatic scores (``make grade`` then calls
this for the submissions it regraded that hold manual work). After manual grading, this renders
the pages again from the real gradebook (``nbgrader generate_feedback`` into a throw-away folder,
with the course's preprocessors, which keep hidden tests out) and rebuilds each feedback folder
with :func:`grading.feedback.assemble`: the grader's banner, ``timestamp.txt``, the exchange's
secret and a page for every notebook, so ``nbgrader release_feedback`` delivers it as before.
The gradebook is the one ``make grade`` uses: ``--db-url``, else ``$NBGRADER_DB_URL``, else the
course's ``gradebook.db`` (:func:`grading.db.course_url`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from grading import feedback, select
from grading.collection import scan
from grading.db import DB_URL_HELP, course_url, export_csv, notebook_names, run_nbgrader_on
from grading.names import printable

SCRATCH = ".feedback-refresh"


def refresh(course: Path, assignment: str, students: list[str] | None = None,
            db_url: str | None = None, missed: list[str] | None = None) -> list[str]:
    """Rebuild the feedback folders of ``assignment`` from the gradebook ``db_url`` (default:
    :func:`grading.db.course_url`); the students whose folders were rebuilt. A student with a
    graded notebook nbgrader rendered no page for keeps the folder as it was and is added to
    ``missed`` (one whose notebook could not be graded gets the page saying so, as before)."""
    course = course.resolve()
    url = course_url(course, db_url)
    records = select.load(course)
    scratch = course / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    only = [f"--student={students[0]}"] if students and len(students) == 1 else []  # else all, then pick
    try:
        code, log = run_nbgrader_on(course, ["generate_feedback", assignment, "--force", *only,
                                             f"--CourseDirectory.feedback_directory={SCRATCH}"], url)
        if code != 0 and not scratch.is_dir():
            raise RuntimeError(f"nbgrader generate_feedback failed:\n{log[-3000:]}")
        notebooks = notebook_names(url, assignment)
        found, _, _ = scan(course, {assignment})
        done = []
        for sub in select.wanted(found, [assignment], students):
            record = records.get((sub.student, assignment))
            if record is None:  # never graded by make grade: nothing to refresh
                continue
            target, rendered = (course / name / sub.student / assignment for name in ("feedback", SCRATCH))
            graded = course / "autograded" / sub.student / assignment
            if any((graded / f"{name}.ipynb").is_file() and not (rendered / f"{name}.html").is_file()
                   for name in notebooks):
                if missed is not None:  # nbgrader failed on a graded notebook: the grader's pages stay
                    missed.append(sub.student)
                continue
            feedback.assemble(target, rendered, assignment, notebooks,
                              feedback.submitted_notebooks(sub.folder), record.get("messages", []),
                              sub.timestamp, feedback.read_secret(sub.folder))
            done.append(sub.student)
        return done
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=Path.cwd())
    parser.add_argument("--assignment", required=True)
    parser.add_argument("--student", action="append", help="only this student (repeat, or a,b)")
    parser.add_argument("--db-url", default=None, help=DB_URL_HELP)
    args = parser.parse_args(argv)
    students = [n for v in args.student for n in v.split(",")] if args.student else None
    missed: list[str] = []
    done = refresh(args.course, args.assignment, students, args.db_url, missed)
    print(printable(f"[grading] feedback rebuilt for {len(done)} submissions of {args.assignment}: "
                    f"{', '.join(done)}"), file=sys.stderr)
    csv = export_csv(args.course.resolve(), course_url(args.course.resolve(), args.db_url))
    print(printable(f"[grading] {csv} written from the gradebook (manual grades included)"), file=sys.stderr)
    if missed:
        print(printable(f"[grading] nbgrader rendered no page for {', '.join(missed)}: their feedback is "
                        "as make grade left it"), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
