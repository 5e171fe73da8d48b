"""``make grade``: grade every submission under ``submitted/<student>/<assignment>/``.

1. The gradebook is created or updated from ``solutions/`` (``nbgrader generate_assignment``
   into a throw-away release folder, so ``exercises/`` is untouched) for every assignment that
   has submissions; a template copy with the assignments and no students is made for workers.
2. Each submission is graded by :func:`grading.worker.grade_submission` in a private course
   folder, ``--workers`` at a time (default: all cores), with a tqdm progress bar.
3. The parent merges each result into the real gradebook, one at a time (no concurrent writers),
   and copies ``autograded/`` and ``feedback/`` (with a page of messages for the student).
4. ``grades.csv`` is nbgrader's CSV export; ``grading_report.html`` the report.

The exit status is non-zero only when the run itself fails (the gradebook cannot be built, a
worker crashed), never because of what a student submitted.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from grading.sandbox import Limits
from grading.worker import Job, Result, grade_submission, notebook_cells, run_nbgrader

NOTES = "grading_messages.html"


def submissions(course: Path, assignments: set[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(student, assignment) pairs to grade, and messages for folders that are not assignments."""
    pairs, skipped = [], []
    root = course / "submitted"
    for student in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            if folder.name in assignments:
                pairs.append((student.name, folder.name))
            else:
                skipped.append(f"{student.name}/{folder.name}: no assignment of that name in solutions/")
    return pairs, skipped


def build_gradebook(course: Path, assignments: list[str], work: Path) -> Path:
    """Create or update the gradebook from solutions/; return a template without students."""
    from nbgrader.api import Gradebook

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


def merge(course: Path, result: Result) -> None:
    """Replace the student's submission in the real gradebook with the worker's result."""
    from nbgrader.api import Gradebook, MissingEntry

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes from nbgrader's add_submission
        gradebook.update_or_create_student(result.student)
        try:
            gradebook.remove_submission(result.assignment, result.student)
        except MissingEntry:
            pass
        submission = gradebook.add_submission(result.assignment, result.student)
        if result.timestamp:
            from datetime import datetime
            submission.timestamp = datetime.fromisoformat(result.timestamp)
        for notebook in submission.notebooks:
            cells = result.grades.get(notebook.name, {})
            for grade in notebook.grades:
                saved = cells.get(grade.name)
                if saved is None:  # not graded (missing or unreadable notebook): 0
                    grade.auto_score, grade.needs_manual_grade = 0.0, False
                    continue
                grade.auto_score = saved["auto_score"]
                grade.manual_score = saved["manual_score"]
                grade.extra_credit = saved["extra_credit"]
                grade.needs_manual_grade = saved["needs_manual_grade"]
            for comment in notebook.comments:
                comment.auto_comment = cells.get(comment.name, {}).get("auto_comment")
        gradebook.db.commit()
    for kind, source in (("autograded", result.autograded), ("feedback", result.feedback)):
        target = course / kind / result.student / result.assignment
        if target.exists():
            shutil.rmtree(target)
        if source is not None:
            shutil.copytree(source, target)
    if result.messages:
        target = course / "feedback" / result.student / result.assignment
        target.mkdir(parents=True, exist_ok=True)
        items = "".join(f"<li>{html.escape(m)}</li>" for m in result.messages)
        (target / NOTES).write_text(
            f"<!doctype html><meta charset=utf-8><title>Grading messages</title>"
            f"<h1>{html.escape(result.assignment)}: grading messages</h1><ul>{items}</ul>")


def export_csv(course: Path) -> Path:
    code, log = run_nbgrader(course, ["export", "--to", str(course / "grades.csv")])
    if code != 0:
        raise RuntimeError(f"nbgrader export failed:\n{log}")
    return course / "grades.csv"


def grade(course: Path, workers: int | None = None, limits: Limits | None = None,
          report: bool = True, progress: bool = True) -> list[Result]:
    """Grade every submission of the course; the results, in merge order."""
    course = course.resolve()
    limits = limits or Limits()
    known = {p.name for p in (course / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()}
    pairs, skipped = submissions(course, known)
    for message in skipped:
        print(f"[grading] skipped {message}", file=sys.stderr)
    assignments = sorted({a for _, a in pairs})
    if not pairs:
        print(f"[grading] nothing to grade under {course / 'submitted'} (try `make demo-class`)")
        return []
    work = Path(tempfile.mkdtemp(prefix="cnn-grade-"))
    results: list[Result] = []
    try:
        template = build_gradebook(course, assignments, work)
        cells = {a: notebook_cells(template, a) for a in assignments}
        jobs = [Job(s, a, course / "submitted" / s / a, course, template, cells[a], work / f"{i:04d}", limits)
                for i, (s, a) in enumerate(pairs)]
        workers = max(1, workers or os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool, \
                tqdm(total=len(jobs), unit="submission", disable=not progress, file=sys.stderr) as bar:
            futures = [pool.submit(grade_submission, job) for job in jobs]
            for future in as_completed(futures):
                result = future.result()
                merge(course, result)
                shutil.rmtree(work / f"{jobs[futures.index(future)].work.name}", ignore_errors=True)
                results.append(result)
                bar.set_postfix_str(f"{result.student}/{result.assignment}")
                bar.update()
        export_csv(course)
        (course / "grading_results.json").write_text(json.dumps(
            [{"student": r.student, "assignment": r.assignment, "seconds": round(r.seconds, 2),
              "messages": r.messages, "failed": r.failed} for r in results], indent=1))
        if report:
            from grading.report import write_report
            write_report(course, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (nbgrader_config.py)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GRADE_WORKERS", 0)) or None,
                        help="parallel submissions (default: all cores; env GRADE_WORKERS)")
    parser.add_argument("--timeout", type=float, default=600.0, help="wall-clock seconds per notebook")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="memory per kernel (address space; a cgroup where the machine allows)")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    limits = Limits(notebook_seconds=args.timeout, memory=args.memory_mb << 20)
    start = time.perf_counter()
    results = grade(args.course, args.workers, limits, report=not args.no_report)
    failed = [r for r in results if r.failed]
    for result in failed:
        print(f"[grading] FAILED {result.student}/{result.assignment}: {result.messages[-1]}\n"
              f"{result.log[-3000:]}", file=sys.stderr)
    print(f"[grading] {len(results)} submissions graded in {time.perf_counter() - start:.1f} s; "
          f"grades.csv, feedback/, grading_report.html in {args.course.resolve()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
