"""Which submissions a run grades: filters, and only what changed since it was last graded.

``grading_results.json`` keeps one record per graded submission: its messages and time, and two
fingerprints, one of the submission's files and one of the assignment's source folder
(``solutions/<assignment>/``, where the tests live). A submission is regraded when either
fingerprint differs from its record, when it has no record, when its last grading failed, or
with ``--force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

RECORDS = "grading_results.json"
CONTENT_BYTES = 64 << 20  # files larger than this are fingerprinted by size and modification time
MAX_ENTRIES, MAX_DEPTH = 100_000, 64  # beyond these, a marker stands for the rest


def _entries(folder: Path):
    """(relative name, lstat) of everything under ``folder``, without following links, iteratively
    (a student's tree may be thousands deep), at most MAX_ENTRIES and MAX_DEPTH levels."""
    stack, seen = [(folder, b"", 0)], 0
    while stack:
        path, prefix, depth = stack.pop()
        try:
            children = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            continue
        for entry in children:
            seen += 1
            if seen > MAX_ENTRIES:
                yield prefix + b"\0too-many", None
                return
            name = prefix + b"/" + os.fsencode(entry.name)
            info = entry.stat(follow_symlinks=False)
            yield name, info
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 >= MAX_DEPTH:
                    yield name + b"\0too-deep", None
                else:
                    stack.append((entry.path, name, depth + 1))


def fingerprint(folder: Path) -> str:
    """SHA-256 over the relative names, kinds, sizes and (up to a cap) contents under ``folder``."""
    digest = hashlib.sha256()
    for name, info in _entries(folder):
        digest.update(b"\0" + name)
        if info is None:
            continue
        digest.update(f"\0{info.st_mode:o}\0{info.st_size}".encode())
        path = os.path.join(folder, os.fsdecode(name[1:]))
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.fsencode(os.readlink(path)))
        elif stat.S_ISREG(info.st_mode) and info.st_size > CONTENT_BYTES:
            digest.update(str(info.st_mtime_ns).encode())
        elif stat.S_ISREG(info.st_mode):
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def load(course: Path) -> dict[tuple[str, str], dict]:
    """The records of earlier runs, by (student, assignment); empty when there are none or unreadable."""
    try:
        records = json.loads((course / RECORDS).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(records, list):
        return {}
    return {(r["student"], r["assignment"]): r for r in records
            if isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("student", "assignment"))}


def save(course: Path, records: dict[tuple[str, str], dict]) -> None:
    """Write all records (atomically: a new file renamed over the old)."""
    path = course / RECORDS
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps([records[k] for k in sorted(records)], indent=1))
    os.replace(partial, path)


def wanted(items, assignments: list[str] | None, students: list[str] | None):
    """The items (with ``.student``, ``.assignment``) that pass ``--assignment`` / ``--student``."""
    return [i for i in items
            if (not assignments or i.assignment in assignments) and (not students or i.student in students)]


def plan(items, records: dict, prints: dict, force: bool):
    """Split ``items`` (with ``.student``, ``.assignment``) into (to grade, unchanged)."""
    todo, unchanged = [], []
    for item in items:
        record = records.get((item.student, item.assignment))
        same = (record is not None and not record.get("failed")
                and record.get("files") == prints[(item.student, item.assignment)]
                and record.get("tests") == prints[item.assignment])
        (unchanged if same and not force else todo).append(item)
    return todo, unchanged
