"""What ``nbgrader collect`` left in ``submitted/``: which folders are submissions, and when each came in.

Every student folder name is checked (:func:`grading.names.id_problem`) before anything uses it; a
folder that is a symbolic link is refused. The submission time is not the student's word: a
``timestamp.txt`` inside the folder is what ``nbgrader submit`` wrote, but a student writing to the
exchange by hand can write any time there. Where the exchange's inbound record of the submission is
at hand, its change time (set by the kernel when the student's files arrived, which no user can set
back) is a lower bound: a claimed time earlier than it is replaced by it, with a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from grading.names import id_problem, one_line

SLACK = timedelta(minutes=2)  # between submit's clock reading and its last write into the inbound folder


@dataclass
class Submission:
    """One ``submitted/<student>/<assignment>/`` folder, checked."""

    student: str
    assignment: str
    folder: Path
    timestamp: datetime | None = None
    notes: list[str] = field(default_factory=list)  # about the timestamp, for the student and instructor


@dataclass
class Rejected:
    """A folder that cannot be graded as it is named; shown (escaped) in the output and the report."""

    student: str  # printable form of the folder name
    assignment: str
    message: str


def exchange_inbound(course: Path) -> Path | None:
    """``<Exchange.root>/<course_id>/inbound`` from the course's nbgrader_config.py, if it exists."""
    from traitlets.config.loader import PyFileConfigLoader

    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    except Exception:
        return None
    root = config.get("Exchange", {}).get("root", "/srv/nbgrader/exchange")
    course_id = config.get("CourseDirectory", {}).get("course_id", "")
    inbound = Path(root) / course_id / "inbound"
    return inbound if course_id and inbound.is_dir() else None


def claimed_time(folder: Path) -> tuple[str | None, datetime | None]:
    """The text of ``timestamp.txt`` (a regular file of at most 100 bytes) and its parsed time."""
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 100:
            return None, None
        text = path.read_text(encoding="ascii").strip()
        return text, parse_utc(text).replace(tzinfo=timezone.utc)
    except (OSError, UnicodeDecodeError, ValueError, OverflowError, TypeError):
        return None, None


def arrival(inbound: Path | None, student: str, assignment: str) -> datetime | None:
    """When the exchange's record that ``nbgrader collect`` takes last changed: of the records
    ``student+assignment+<time>+...``, the one whose name holds the latest time (None if none).

    The record is found by its name's time, as collect finds it, not by what ``timestamp.txt``
    says: the inbound folder is writable by every student, so a record's name and its
    ``timestamp.txt`` may disagree, and a record may have no ``timestamp.txt`` at all."""
    from nbgrader.utils import parse_utc

    if inbound is None:
        return None
    prefix = f"{student}+{assignment}+"
    records = []
    try:
        for entry in os.scandir(inbound):
            if not entry.name.startswith(prefix):
                continue
            try:
                named = parse_utc(entry.name[len(prefix):].split("+")[0])
            except (ValueError, OverflowError, TypeError):
                continue
            records.append((named.replace(tzinfo=None), entry.stat(follow_symlinks=False).st_ctime))
    except OSError:
        return None
    return datetime.fromtimestamp(max(records)[1], timezone.utc) if records else None


def submission_time(folder: Path, student: str, assignment: str, inbound: Path | None):
    """(time, notes): the claimed time, raised to the exchange's arrival time when that is later;
    the arrival time when ``timestamp.txt`` is missing or unreadable."""
    text, claimed = claimed_time(folder)
    arrived = arrival(inbound, student, assignment)
    if claimed is None:
        if arrived is None:
            return None, []
        return arrived, [f"timestamp.txt is missing or unreadable; the time the submission reached the "
                         f"exchange, {arrived:%Y-%m-%d %H:%M:%S} UTC, is used."]
    if arrived is not None and arrived - claimed > SLACK:
        return arrived, [f"timestamp.txt says {one_line(text)}, but the submission reached the exchange at "
                         f"{arrived:%Y-%m-%d %H:%M:%S} UTC; that time is used."]
    return claimed, []


def scan(course: Path, assignments: set[str]) -> tuple[list[Submission], list[Rejected], list[str]]:
    """Submissions to consider, folders refused (per student), and notes on folders skipped."""
    root = course / "submitted"
    found, rejected, skipped = [], [], []
    inbound = exchange_inbound(course)
    students = sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else []
    for entry in students:
        if not entry.is_dir(follow_symlinks=False):
            if entry.is_symlink():
                rejected.append(Rejected(one_line(entry.name), "*", "the student folder is a symbolic link"))
            continue
        problem = id_problem(entry.name)
        if problem:
            rejected.append(Rejected(one_line(entry.name), "*", f"cannot grade this folder: {problem}"))
            continue
        for folder in sorted(Path(entry.path).iterdir()):
            name = folder.name
            if name not in assignments:
                if folder.is_dir():
                    skipped.append(f"{entry.name}/{one_line(name)}: no assignment of that name in solutions/")
            elif folder.is_symlink() or not folder.is_dir():
                rejected.append(Rejected(entry.name, name, "not a folder (a link or a file)"))
            else:
                time, notes = submission_time(folder, entry.name, name, inbound)
                found.append(Submission(entry.name, name, folder, time, notes))
    return found, rejected, skipped
