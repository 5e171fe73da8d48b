"""What ``nbgrader collect`` left in ``submitted/``: which folders are submissions, and when each came in.

Every student folder name is checked (:func:`grading.names.id_problem`) before anything uses it; a
folder that is a symbolic link is refused. The submission time is not the student's word: a
``timestamp.txt`` inside the folder is what ``nbgrader submit`` wrote, but a student writing to the
exchange by hand can write any time there. Where the exchange's inbound record of the submission is
at hand, its change time (set by the kernel when the student's files arrived, which no user can set
back) is a lower bound: a claimed time earlier than it is replaced by it, with a message.
"""

from __future__ import annotations

import hashlib
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


HASHED = 64 << 20  # a record's file larger than this is not read: its record does not match


def _contents(folder: Path) -> dict[str, str] | None:
    """Name -> SHA-256 of the notebooks and ``timestamp.txt`` directly in ``folder`` (None if one
    cannot be read or is too large)."""
    digests = {}
    try:
        for entry in os.scandir(folder):
            if entry.name.endswith(".ipynb") or entry.name == "timestamp.txt":
                if not entry.is_file(follow_symlinks=False) or entry.stat().st_size > HASHED:
                    return None
                with open(entry.path, "rb") as handle:
                    digests[entry.name] = hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None
    return digests


def _changed(record: str) -> float:
    """When the record or any entry in it last changed (a file rewritten in place changes its own
    time, not its folder's)."""
    times = [os.stat(record, follow_symlinks=False).st_ctime]
    try:
        times += [entry.stat(follow_symlinks=False).st_ctime for entry in os.scandir(record)]
    except OSError:  # a record its student made unreadable: its folder's time, and it matches nothing
        pass
    return max(times)


def arrival(inbound: Path | None, student: str, assignment: str,
            submitted: Path | None = None) -> datetime | None:
    """When the exchange's record that was collected into ``submitted`` last changed, it or a file
    in it (None if no record).

    The record is the one whose notebooks and ``timestamp.txt`` are the submitted folder's (a
    student may submit again after collect, or collect may take the last record before the due
    date); when none matches, the one ``nbgrader collect`` takes by default, whose name holds the
    latest time. Neither the name nor ``timestamp.txt`` alone identifies it: the inbound folder is
    writable by every student."""
    from nbgrader.utils import parse_utc

    if inbound is None:
        return None
    prefix = f"{student}+{assignment}+"
    wanted = _contents(submitted) if submitted is not None else None
    named, matching = [], []
    try:
        for entry in os.scandir(inbound):
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                when = parse_utc(entry.name[len(prefix):].split("+")[0]).replace(tzinfo=None)
            except (ValueError, OverflowError, TypeError):
                continue
            changed = _changed(entry.path)
            named.append((when, changed))
            if wanted and _contents(Path(entry.path)) == wanted:
                matching.append(changed)
    except OSError:
        return None
    if matching:
        return datetime.fromtimestamp(max(matching), timezone.utc)
    return datetime.fromtimestamp(max(named)[1], timezone.utc) if named else None


def submission_time(folder: Path, student: str, assignment: str, inbound: Path | None):
    """(time, notes): the claimed time, raised to the exchange's arrival time when that is later;
    the arrival time when ``timestamp.txt`` is missing or unreadable."""
    text, claimed = claimed_time(folder)
    arrived = arrival(inbound, student, assignment, folder)
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
