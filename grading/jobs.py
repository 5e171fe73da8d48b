"""A grading job is data in, data out, so that it can run on any machine of a cluster.

In (:class:`Job`): the submission's own files as bytes (taken by :func:`pack` under the caps of
:mod:`grading.intake`, on the machine that has them), the assignment's gradebook template (its
trusted test cells; no students), the course's ``nbgrader_config.py`` as text and the limits.
Out (:class:`Result`): scores and comments per cell, messages for the student, the autograded
notebooks and the feedback pages as bytes, the log and the time each step took. The parent writes
the returned files into its own folders (:func:`unpack`) and merges them into the gradebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grading import intake
from grading.sandbox import Limits


@dataclass
class Job:
    """Everything a worker needs to grade one submission, as data."""

    student: str
    assignment: str
    files: dict[str, bytes]  # the submission's own top-level files (notebooks and data)
    notes: list[str]  # what intake left out, and why
    template: bytes  # the gradebook template (SQLite): the assignments' cells, no students
    course_config: str  # the course's nbgrader_config.py, as text
    notebooks: dict  # notebook name -> {"cells": [grade ids of graded and solution cells], "tests": [...]}
    limits: Limits = field(default_factory=Limits)
    refused: str | None = None  # why the submission cannot be taken at all (a linked folder, a bad name)


@dataclass
class Result:
    """A graded submission: scores per notebook and cell, messages, the files made from it."""

    student: str
    assignment: str
    seconds: float = 0.0
    messages: list = field(default_factory=list)
    grades: dict = field(default_factory=dict)  # notebook -> grade id -> {auto_score, max_score, ...}
    timestamp: str | None = None
    files: dict = field(default_factory=dict)  # "autograded" / "feedback" -> file name -> bytes
    autograded: Path | None = None  # where unpack() wrote them, on the parent
    feedback: Path | None = None
    log: str = ""
    failed: bool = False  # the grading machinery itself failed (not the student)
    steps: dict = field(default_factory=dict)  # step -> seconds (kernel, cells, feedback, ...)
    worker: str = ""  # which worker process graded it
    manual: bool = False  # the gradebook holds manual scores or comments for it (set at the merge)


def take(folder: Path) -> tuple[dict[str, bytes], list[str]]:
    """The folder's own top-level regular files under the caps of :mod:`grading.intake`; (files, messages)."""
    files: dict[str, bytes] = {}
    messages: list[str] = []
    budget = intake.TOTAL_BYTES
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name, is_folder in intake.entries(folder):
            problem = intake.unsafe_name(name)
            if is_folder:
                if not name.startswith("."):
                    messages.append(f"{intake.shown(name)}/ is a folder: only the files next to the notebook "
                                    "are taken; it was left out.")
                continue
            if problem or len(files) >= intake.MAX_FILES:
                messages.append(f"{intake.shown(name)} was left out: " + (
                    problem or f"a submission may hold at most {intake.MAX_FILES} files"))
                continue
            data, why = intake.read_file(fd, name, budget)
            if why:
                messages.append(why + ".")
                continue
            budget -= len(data)
            files[name] = data
    finally:
        os.close(fd)
    return files, messages


def pack(student: str, assignment: str, folder: Path, course: Path, template: bytes, notebooks: dict,
         limits: Limits, timestamp: datetime | None = None) -> Job:
    """The job for the submission in ``folder``; never raises for what the folder holds.

    Its ``timestamp.txt`` is the submission time the run decided (``timestamp``, see
    :func:`grading.collection.submission_time`), not the student's file: nbgrader autograde
    failed on a file it could not parse, and the notebook scored 0."""
    job = Job(student, assignment, {}, [], template, (course / "nbgrader_config.py").read_text(), notebooks,
              limits)
    job.refused = intake.unsafe_name(student) or intake.unsafe_name(assignment)
    if job.refused:
        job.refused = f"not graded: {job.refused}; it scores 0."
        return job
    job.refused = intake.linked_folder(folder, course)
    if job.refused:
        return job
    try:
        job.files, job.notes = take(folder)
    except Exception as error:  # whatever the submission holds, it is this submission's zero
        job.refused = (f"The submission could not be taken in ({type(error).__name__}: "
                       f"{intake.shown(str(error))}); it scores 0.")
        return job
    job.files.pop("timestamp.txt", None)
    if timestamp is not None:
        job.files["timestamp.txt"] = f"{timestamp.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S.%f} UTC".encode()
    return job


def unpack(result: Result, where: Path) -> Result:
    """Write the result's files under ``where`` (``autograded/``, ``feedback/``); the result points there."""
    for kind, files in result.files.items():
        folder = where / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            if intake.unsafe_name(name) is None:
                (folder / name).write_bytes(data)
        setattr(result, kind, folder)
    result.files = {}
    return result
