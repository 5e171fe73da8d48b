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
from pathlib import Path

RECORDS = "grading_results.json"
CONTENT_BYTES = 64 << 20  # files larger than this are fingerprinted by size and modification time


def fingerprint(folder: Path) -> str:
    """SHA-256 over the relative names, kinds, sizes and (up to a cap) contents under ``folder``."""
    digest = hashlib.sha256()
    for base, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            path = os.path.join(base, name)
            relative = os.path.relpath(path, folder).encode("utf-8", "surrogateescape")
            info = os.lstat(path)
            digest.update(b"\0" + relative + f"\0{info.st_mode:o}\0{info.st_size}".encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode("utf-8", "surrogateescape"))
            elif info.st_size > CONTENT_BYTES:
                digest.update(str(info.st_mtime_ns).encode())
            elif os.path.isfile(path):
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
