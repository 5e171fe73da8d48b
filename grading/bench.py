"""Timings for the report: grading time per notebook, the sandbox's overhead, parallel speedup.

``python -m grading.bench [--students N]`` grades N copies of the solved 01_convolution in a
throw-away course three ways: sandboxed with one worker, unsandboxed with one worker, sandboxed
with all cores, and prints seconds per notebook (wall-clock of the run divided by N, and the
mean worker time of one submission) for each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from grading import corpus
from grading.run import grade
from grading.sandbox import Limits

A = "01_convolution"


def course_with(students: int, root: Path) -> Path:
    course = root / "course"
    course.mkdir()
    shutil.copy(corpus.ROOT / "nbgrader_config.py", course)
    shutil.copytree(corpus.ROOT / "solutions" / A, course / "solutions" / A)
    notebook = corpus.filled(A)
    for i in range(students):
        corpus.write(notebook, course / "submitted" / f"student_{i:02d}" / A, A)
    return course


def measure(students: int, workers: int, sandbox: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="cnn-bench-"))
    try:
        course = course_with(students, root)
        start = time.perf_counter()
        results = grade(course, workers, Limits(sandbox=sandbox), report=False, progress=False)
        wall = time.perf_counter() - start
        assert all(not r.messages for r in results), [r.messages for r in results]
        return {"workers": workers, "sandbox": sandbox, "wall_s": wall, "per_notebook_s": wall / students,
                "mean_submission_s": sum(r.seconds for r in results) / len(results)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=6)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = [measure(args.students, 1, True), measure(args.students, 1, False),
            measure(args.students, cores, True)]
    for row in rows:
        print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    sandboxed, plain, parallel = rows
    overhead = sandboxed["mean_submission_s"] - plain["mean_submission_s"]
    print(f"sandbox overhead per notebook: {overhead:+.2f} s; "
          f"speedup with {cores} workers: {sandboxed['wall_s'] / parallel['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
