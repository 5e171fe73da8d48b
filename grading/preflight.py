"""Before grading anyone: each assignment's own solution graded through the very same path.

The released notebook with the solutions filled in (as :func:`grading.corpus.filled` makes it) is
graded as a job (:mod:`grading.jobs`) on the run's cluster, with its limits, sandbox and gradebook
template. Anything short of full marks means the setup is broken (the kernel cannot import
``cnnlib``, a sandbox tool is missing, a test was changed so that the solution fails it): the run
grades nobody and says what failed, instead of giving the whole class zeros.

The checks are submitted first; the students' jobs are submitted right behind them and may run
beside them (a worker need not stand idle), but nothing is merged into the gradebook until the
checks have passed, and when they fail the students' jobs are cancelled.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from grading import corpus
from grading.jobs import Job, Result, pack, unpack
from grading.names import printable

STUDENT = "solution-check"


def totals(grades: dict) -> tuple[float, float]:
    """(score, max score) over every graded cell of a worker's result."""
    score = maximum = 0.0
    for cells in grades.values():
        for grade in cells.values():
            if "max_score" in grade:
                score += grade["auto_score"] or 0.0
                maximum += grade["max_score"]
    return score, maximum


def cell_errors(notebook: Path, cells: set[str]) -> list[str]:
    """'cell: Error: message' for the named cells' error outputs in a graded notebook."""
    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:
        return []  # not graded at all: the log says why
    found = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        for output in cell.get("outputs", []) if grade_id in cells else []:
            if output.get("output_type") == "error":
                found.append(f"{grade_id}: {output.get('ename')}: {str(output.get('evalue'))[:300]}")
    return found


def solution_job(course: Path, release: Path, assignment: str, template: bytes, notebooks: dict,
                 work: Path, limits) -> Job:
    """A job whose submission is the assignment's solution in the released notebook."""
    root = work / "root"
    root.mkdir(parents=True)
    (root / "solutions").symlink_to(course / "solutions")
    (root / "exercises").symlink_to(release)
    corpus.write(corpus.filled(assignment, root=root), work / "submission", assignment)
    return pack(STUDENT, assignment, work / "submission", course, template, notebooks, limits)


def check(job: Job, result: Result, work: Path) -> str | None:
    """None when the solution scored full marks; otherwise what went wrong."""
    unpack(result, work)
    score, maximum = totals(result.grades)
    if not result.failed and maximum > 0 and score >= maximum:
        return None
    lost = {name for cells in result.grades.values() for name, g in cells.items()
            if "max_score" in g and (g["auto_score"] or 0.0) < g["max_score"]}
    details = [e for name in job.notebooks for e in cell_errors(work / "autograded" / f"{name}.ipynb", lost)]
    lines = [f"{job.assignment}: its own solution scored {score:g} of {maximum:g} through the grading path."]
    lines += [f"  {m}" for m in result.messages + details[:8]]
    if result.failed or not result.grades or not details:
        lines.append("  log: " + result.log[-1500:].strip().replace("\n", "\n  "))
    return printable("\n".join(lines))


class Preflight:
    """The solution checks of every assignment in ``cells``, submitted to ``cluster`` at once (ahead of
    the students' jobs, which may run beside them); :meth:`problems` waits for their verdict."""

    def __init__(self, course: Path, release: Path, template: Path, cells: dict, work: Path, limits, cluster):
        data = template.read_bytes()
        self.cluster = cluster
        self.folders = {a: work / f"preflight-{i}" for i, a in enumerate(sorted(cells))}
        self.jobs = {cluster.submit(job, priority=1): job for job in (
            solution_job(course, release, a, data, cells[a], self.folders[a], limits) for a in sorted(cells))}

    def problems(self) -> list[str]:
        """What is wrong with the setup (empty: it is sound); the checks' folders are removed."""
        try:
            found = [check(job, result, self.folders[job.assignment] / "graded")
                     for future, result in self.cluster.results(self.jobs) for job in [self.jobs[future]]]
            return sorted(p for p in found if p)
        finally:
            for folder in self.folders.values():
                shutil.rmtree(folder, ignore_errors=True)
