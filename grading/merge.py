"""One graded submission merged into the course: gradebook, ``autograded/`` and ``feedback/``.

The merge keeps what the instructor did, as ``nbgrader autograde`` does: manual scores, manual
comments and extra credit stay; only the automatic scores and comments change, and a cell with a
manual score is marked for review again. The gradebook changes are one transaction; the folders
are built beside their targets and swapped in after the commit; the caller holds off signals
meanwhile (:mod:`grading.interrupt`), so a submission is merged whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

from grading import feedback
from grading.db import course_url


def _new_submission(gradebook, assignment: str, student: str):
    """A submission with every grade and comment empty, added to the session but not committed (as
    nbgrader's ``add_submission`` builds it, which commits at once)."""
    from nbgrader.api import Comment, Grade, MissingEntry, Student, SubmittedAssignment, SubmittedNotebook

    try:
        owner = gradebook.find_student(student)
    except MissingEntry:
        owner = Student(id=student)
        gradebook.db.add(owner)
    submission = SubmittedAssignment(assignment=gradebook.find_assignment(assignment), student=owner)
    for notebook in submission.assignment.notebooks:
        submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
        for cell in notebook.grade_cells:
            Grade(cell_id=cell.id, notebook=submitted)
        for cell in notebook.solution_cells:
            Comment(cell_id=cell.id, notebook=submitted)
        for cell in notebook.task_cells:
            Comment(cell_id=cell.id, notebook=submitted)
            Grade(cell_id=cell.id, notebook=submitted)
    gradebook.db.add(submission)
    gradebook.db.flush()
    return submission


def _locked(gradebook, assignment: str, student: str):
    """The existing submission (None if there is none), its grades and comments read afresh and locked
    until the commit: another grader's write (the formgrader's manual score) lands before this read or
    waits for the commit (PostgreSQL's ``SELECT ... FOR UPDATE``; SQLite locks the whole file)."""
    from nbgrader.api import Comment, Grade, MissingEntry

    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return None
    notebooks = [notebook.id for notebook in submission.notebooks]
    for model in (Grade, Comment):
        gradebook.db.query(model).filter(model.notebook_id.in_(notebooks)).order_by(model.id) \
            .with_for_update(of=model).populate_existing().all()
    return submission


def _apply(submission, grades: dict) -> None:
    """Automatic scores and comments from the worker; the instructor's fields untouched (the ORM's
    UPDATE names only the columns set here, so a manual score written meanwhile stays)."""
    for notebook in submission.notebooks:
        cells = grades.get(notebook.name, {})
        for grade in notebook.grades:
            saved = cells.get(grade.name)
            grade.auto_score = saved["auto_score"] if saved else 0.0  # not graded (missing, unreadable): 0
            needs = bool(saved and saved["needs_manual_grade"])
            grade.needs_manual_grade = needs or grade.manual_score is not None
        for comment in notebook.comments:
            comment.auto_comment = cells.get(comment.name, {}).get("auto_comment")


def has_manual_work(submission) -> bool:
    """Did the instructor score, credit or comment on any cell of this submission by hand?"""
    return any(grade.manual_score is not None or grade.extra_credit
               for notebook in submission.notebooks for grade in notebook.grades) \
        or any(comment.manual_comment for notebook in submission.notebooks for comment in notebook.comments)


def merge_scores(course: Path, result, timestamp: datetime | None, url: str | None = None) -> bool:
    """The result's automatic scores into the real gradebook (``url``, default the course's), in one
    transaction that creates the submission if it is new, with nbgrader's late penalty; whether it
    holds manual work (``has_manual_work``) or a late penalty: then its feedback page must be
    rendered from the gradebook."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(url or course_url(course)) as gradebook:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes
        try:
            submission = (_locked(gradebook, result.assignment, result.student)
                          or _new_submission(gradebook, result.assignment, result.student))
            _apply(submission, result.grades)
            if timestamp is not None:
                submission.timestamp = timestamp.astimezone(timezone.utc).replace(tzinfo=None)
            gradebook.db.flush()
            for notebook in submission.notebooks:  # a column property: read again after the flush
                gradebook.db.expire(notebook, ["score"])
            late = assign_late_penalties(course, submission)
            manual = has_manual_work(submission)
            gradebook.db.commit()
            return manual or late
        except BaseException:
            gradebook.db.rollback()
            raise


def late_preprocessor(course: Path):
    """nbgrader's ``AssignLatePenalties`` configured by the course's ``nbgrader_config.py`` (its
    ``LateSubmissionPlugin.penalty_method``, or its own ``AssignLatePenalties.plugin_class``)."""
    from nbgrader.preprocessors import AssignLatePenalties

    from grading.worker import config_from

    path = course / "nbgrader_config.py"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    preprocessor = AssignLatePenalties(config=config_from(text, str(path)))
    preprocessor.init_plugin()
    return preprocessor


def assign_late_penalties(course: Path, submission) -> bool:
    """Each notebook's late penalty, from the submission's time and the assignment's due date, as
    nbgrader's autograde assigns it, in the course's gradebook (its due dates and extensions are
    the instructor's; a grading process has a copy); whether there is one. Without a due date,
    or with ``penalty_method = "none"`` (nbgrader's default), nothing is taken off."""
    late = submission.total_seconds_late
    preprocessor = late_preprocessor(course) if late > 0 else None
    penalised = False
    for notebook in submission.notebooks:
        notebook.late_submission_penalty = None
        if preprocessor is not None:
            penalty = preprocessor.plugin_inst.late_submission_penalty(submission.student.id, notebook.score,
                                                                       late)
            if penalty is not None:
                notebook.late_submission_penalty = preprocessor._check_late_penalty(notebook, penalty)
                penalised = penalised or notebook.late_submission_penalty > 0
    return penalised


def _staged(target: Path) -> Path:
    staging = target.with_name(f".{target.name}.merging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    return staging


def _swap(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def stage_files(course: Path, result, submission, notebooks: list[str]) -> dict[Path, Path]:
    """Build the new autograded and feedback folders next to their targets; {staging: target}."""
    student, assignment = result.student, result.assignment
    graded = course / "autograded" / student / assignment
    staged = {}
    staging = _staged(graded)
    if result.autograded is not None and Path(result.autograded).is_dir():
        shutil.copytree(result.autograded, staging, symlinks=True)
        staged[staging] = graded
    target = course / "feedback" / student / assignment
    staging = _staged(target)
    feedback.assemble(staging, result.feedback, assignment, notebooks,
                      feedback.submitted_notebooks(submission.folder), result.messages,
                      submission.timestamp, feedback.read_secret(submission.folder))
    staged[staging] = target
    return staged


def merge(course: Path, result, submission, notebooks: list[str], url: str | None = None) -> bool:
    """Files staged, gradebook committed, files swapped in; a stale autograded copy removed.
    Whether the submission holds manual work (its feedback page, rendered from the automatic
    scores, then needs :func:`grading.refresh.refresh`)."""
    staged = stage_files(course, result, submission, notebooks)
    try:
        manual = merge_scores(course, result, submission.timestamp, url)
    except BaseException:
        for staging in staged:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    graded = course / "autograded" / result.student / result.assignment
    if graded not in staged.values() and graded.exists():
        shutil.rmtree(graded)
    for staging, target in staged.items():
        _swap(staging, target)
    return manual
