"""Grading speed: seconds per notebook, where they go, the scheduler's cost and a projection.

``python -m grading.bench [--students 30] [--workers 1,2] [--case-study 4] [--noop 500]``
(``make bench`` runs it) grades N copies of the solved 01_convolution in a throw-away course with
the sandbox on, through the same path as ``make grade`` (embedded Dask cluster, one long-lived
grading process per worker), once per worker count, and prints:

- wall seconds per notebook (the run's wall time, cluster start, template and preflight included,
  divided by N), and the CPU seconds per notebook of every process of the run (a ``cpuacct``
  cgroup of the benchmark's own, where the machine gives one): on a loaded machine the CPU
  figure moves far less than the wall time, and wall time can be no less than CPU / cores;
- per submission, the median seconds of each step: kernel start, cells, nbgrader's own work,
  feedback, merge (the parent's), and the job's time in its worker;
- the solved case study (06_case_study, which trains a network in a test cell) the same way;
- the scheduler's cost per job: ``--noop`` no-op jobs through the same Dask client;
- a projection for 5,000 notebooks on 16 cores and on 8 machines of 16 cores.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from grading import corpus
from grading.run import grade
from grading.sandbox import Limits

A = "01_convolution"
STEPS = ("kernel", "cells", "nbgrader", "feedback", "merge")


def course_with(students: int, root: Path, assignment: str = A) -> Path:
    course = root / "course"
    course.mkdir()
    shutil.copy(corpus.ROOT / "nbgrader_config.py", course)
    shutil.copytree(corpus.ROOT / "solutions" / assignment, course / "solutions" / assignment)
    notebook = corpus.filled(assignment)
    for i in range(students):
        corpus.write(notebook, course / "submitted" / f"student_{i:02d}" / assignment, assignment)
    return course


@contextmanager
def cpu_meter() -> Iterator[Callable[[], float]]:
    """A function giving the CPU seconds used since by this process and every process it starts
    (nan where the machine gives none): this process runs in a cpuacct cgroup of its own (cgroup
    v1, where the kernels' memory and pids cgroups do not take them out of it)."""
    from grading.cgroups import Cgroup

    group = Cgroup.create("cpuacct", {})
    if group is None:
        yield lambda: math.nan
        return
    group.procs.write_text(str(os.getpid()))
    try:
        yield lambda: int((group.path / "cpuacct.usage").read_text()) / 1e9
    finally:  # this process and any it left running (multiprocessing's resource tracker) move back
        for pid in [os.getpid(), *group.procs.read_text().split()]:
            try:
                (group.path.parent / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass
        try:
            group.path.rmdir()
        except OSError:
            pass


def measure(students: int, workers: int, sandbox: bool = True, assignment: str = A) -> dict:
    """Grade ``students`` solved copies with ``workers`` workers; timings (seconds)."""
    root = Path(tempfile.mkdtemp(prefix="cnn-bench-"))
    try:
        course = course_with(students, root, assignment)
        with cpu_meter() as used:
            start = time.perf_counter()
            results = grade(course, workers, Limits(sandbox=sandbox), report=False, progress=False)
            wall, cpu = time.perf_counter() - start, used()
        problems = [(r.student, r.messages) for r in results if r.messages or r.failed]
        assert not problems, problems
        row = {"assignment": assignment, "workers": workers, "sandbox": sandbox, "students": students,
               "load": os.getloadavg()[0], "wall_s": wall, "per_notebook_s": wall / students,
               "cpu_per_notebook_s": cpu / students,
               "job_s": statistics.median(r.seconds for r in results)}
        row.update({f"{s}_s": statistics.median(r.steps.get(s, 0.0) for r in results) for s in STEPS})
        return row
    finally:
        shutil.rmtree(root, ignore_errors=True)


def noop(value: int) -> int:
    return value


def scheduler_cost(jobs: int, workers: int) -> float:
    """Seconds per job of the Dask path alone: ``jobs`` no-op tasks through the embedded cluster."""
    from grading.cluster import Cluster

    cluster = Cluster(workers)
    try:
        cluster.client.submit(noop, -1).result()
        start = time.perf_counter()
        futures = [cluster.client.submit(noop, i, pure=False) for i in range(jobs)]
        cluster.client.gather(futures)
        return (time.perf_counter() - start) / jobs
    finally:
        cluster.close()


def projection(cpu_seconds: float, scheduler_s: float, notebooks: int = 5000) -> list[str]:
    """Hours for ``notebooks`` at ``cpu_seconds`` of one core each, on 16 cores and on 8 x 16 cores."""
    lines = []
    for machines in (1, 8):
        cores = 16 * machines
        hours = (notebooks * cpu_seconds / cores + notebooks * scheduler_s) / 3600
        lines.append(f"{notebooks} notebooks on {machines} x 16 cores: {hours * 60:.1f} min "
                     f"({cpu_seconds:.2f} core-s a notebook, {scheduler_s * 1000:.1f} ms of scheduler a job)")
    return lines


def show(row: dict) -> str:
    return " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--case-study", type=int, default=4, help="solved 06_case_study copies (0: skip)")
    parser.add_argument("--noop", type=int, default=500, help="no-op jobs for the scheduler's cost (0: skip)")
    args = parser.parse_args()
    rows = [measure(args.students, int(w)) for w in args.workers.split(",")]
    if args.case_study:
        rows.append(measure(args.case_study, 2, assignment="06_case_study"))
    for row in rows:
        print(show(row), flush=True)
    if args.noop:
        cost = scheduler_cost(args.noop, 2)
        print(f"scheduler: {cost * 1000:.2f} ms per no-op job ({args.noop} jobs, 2 workers)")
        busiest = max((r for r in rows if r["assignment"] == A), key=lambda r: r["workers"])
        core_s = busiest["cpu_per_notebook_s"]
        if math.isnan(core_s):  # no cgroup: every worker's core counted busy
            core_s = busiest["per_notebook_s"] * busiest["workers"]
        for line in projection(core_s, cost):
            print(line)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
