"""``python -m grading.run`` refusing a broken setup, and stopped by SIGTERM half-way.

A changed test that the assignment's own solution fails: nothing is graded, the exit status is 2
and the output names the cell. A run stopped by SIGTERM while kernels are running: it exits
143 within seconds, ends every process it started, removes its temporary folder, and every
submission in the gradebook is there whole (each with all its grades), matching the records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grading import corpus

ROOT = Path(__file__).resolve().parents[1]
A = "01_convolution"
pytestmark = [pytest.mark.grading, pytest.mark.slow]


def course_with(tmp: Path, solution=None) -> Path:
    course = tmp / "course"
    (course / "solutions" / A).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    nbformat.write(solution or nbformat.read(str(ROOT / "solutions" / A / f"{A}.ipynb"), as_version=4),
                   str(course / "solutions" / A / f"{A}.ipynb"))
    return course


def start(course: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.Popen([sys.executable, "-m", "grading.run", "--course", str(course), "--workers", "2",
                             *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_a_changed_test_that_the_solution_fails_stops_the_run(tmp_path):
    solution = nbformat.read(str(ROOT / "solutions" / A / f"{A}.ipynb"), as_version=4)
    cell = next(c for c in solution.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "test_corr2d_lecture_example")
    cell.source = cell.source.replace("[6, 8, -50]]", "[6, 8, -49]]")  # an instructor's typo
    course = course_with(tmp_path, solution)
    corpus.write(corpus.filled(A), course / "submitted" / "ada" / A, A)
    process = start(course)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 2, out[-3000:]
    assert "REFUSING TO GRADE" in out and "of 16 through the grading path" in out
    assert "test_corr2d_lecture_example" in out
    assert not (course / "feedback").exists() and not (course / "grades.csv").exists()
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assert gradebook.find_assignment(A).submissions == []


def work_folder(pid: int) -> Path | None:
    """A temporary folder of the run (``cnn-grade-*``, ``cnn-grader-*``), from the working directory or
    the command line of one of its processes."""
    try:
        places = [os.readlink(f"/proc/{pid}/cwd")]
        places += Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    for place in places:
        parts = Path(place).parts if place.startswith("/") else ()
        found = [i for i, part in enumerate(parts) if part.startswith("cnn-grade")]
        if found:
            return Path(*parts[:found[0] + 1])
    return None


def is_running(pid: int) -> bool:
    from grading.interrupt import is_running
    return is_running(pid)


def descendants_of(pid: int) -> list[int]:
    from grading.interrupt import descendants
    return descendants(pid)


def own_cgroups() -> set[Path]:
    """The cgroups make grade's processes and kernels make, wherever they are."""
    return set(Path("/sys/fs/cgroup").glob("**/cnn-grade-*"))


def test_sigterm_mid_run_leaves_nothing_half_done(tmp_path):
    course = course_with(tmp_path)
    corpus.write(corpus.filled(A), course / "submitted" / "ada" / A, A)
    for student in ("slow_1", "slow_2", "slow_3"):  # still running when the signal comes
        corpus.write(corpus.filled(A, {"convolve2d": "while True:\n    pass\n"}),
                     course / "submitted" / student / A, A)
    before = own_cgroups()
    process = start(course, "--timeout", "120")
    deadline = time.monotonic() + 240
    while not (course / "grading_results.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (course / "grading_results.json").exists(), process.communicate()[0][-3000:]
    time.sleep(2)
    running = descendants_of(process.pid)
    assert running  # kernels and nbgrader are at work
    folders = {work_folder(pid) for pid in running} - {None}
    assert folders, "the run's temporary folder was found"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "stopped by SIGTERM" in out
    assert [p for p in running if is_running(p)] == []
    assert [f for f in folders if f.exists()] == []
    assert own_cgroups() <= before, "the run's cgroups (its grading processes' and kernels') are removed"
    records = json.loads((course / "grading_results.json").read_text())
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submissions = gradebook.find_assignment(A).submissions
        assert sorted(s.student.id for s in submissions) == sorted(r["student"] for r in records)
        for submission in submissions:
            grades = submission.notebooks[0].grades
            assert len(grades) == 13 and all(g.auto_score is not None for g in grades)
    assert "ada" in {r["student"] for r in records}
