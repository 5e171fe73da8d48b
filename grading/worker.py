"""One submission graded in its own private course directory.

The private directory holds a copy of the gradebook with the assignments and no students, the
submission, an empty source folder, :mod:`grading._worker_config` as its ``nbgrader_config.py``
and the settings it reads, as data, in ``worker.json``. ``nbgrader autograde`` and ``generate_feedback`` run
there in a subprocess (a session of its own, killed as a group on a hard deadline). The result,
the scores read back from the private gradebook and messages for the student, is merged into
the real gradebook by the parent, one at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grading import intake, sandbox
from grading.cgroups import MemoryCgroup, PidsCgroup, enter
from grading.execute import STOPPED
from grading.sandbox import KERNEL_NAME, REPO, Limits

CONFIG = Path(__file__).with_name("_worker_config.py")  # the private course's nbgrader_config.py


@dataclass
class Job:
    """What a worker needs: the submission, the course and the gradebook template."""

    student: str
    assignment: str
    submission: Path
    course: Path
    template_db: Path
    notebooks: dict  # notebook name -> {"cells": [grade ids of graded and solution cells], "tests": [...]}
    work: Path
    limits: Limits = field(default_factory=Limits)


@dataclass
class Result:
    """A graded submission: scores per notebook and cell, messages, where the outputs are."""

    student: str
    assignment: str
    seconds: float = 0.0
    messages: list = field(default_factory=list)
    grades: dict = field(default_factory=dict)  # notebook -> grade id -> {auto_score, max_score, ...}
    timestamp: str | None = None
    autograded: Path | None = None
    feedback: Path | None = None
    log: str = ""
    failed: bool = False  # the grading machinery itself failed (not the student)


def nbgrader_env(extra: dict | None = None) -> dict:
    """The environment nbgrader runs in: this venv first on PATH (alembic), grading importable."""
    env = dict(os.environ)
    env.pop("JPY_PARENT_PID", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra or {})
    return env


def run_nbgrader(course: Path, args: list[str], env: dict | None = None, timeout: float = 900,
                 prefix: list[str] = ()):
    """``python -m nbgrader ARGS`` in ``course`` (after the command ``prefix``), in a session of its
    own; (returncode, log)."""
    process = subprocess.Popen([*prefix, sys.executable, "-m", "nbgrader", *args], cwd=course,
                               env=env or nbgrader_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        return -9, out + f"\n[grading] nbgrader killed after {timeout:.0f} s"
    return process.returncode, out


# What a notebook needs in order to change how its kernel runs the grader's calls. It earns nothing
# by itself (the comparisons happen outside the kernel), but such a notebook is worth a look.
KERNEL_HOOKS = ("input_transformers", "ast_transformers", "events.register", "register_magic",
                "set_custom_exc", "sys.setprofile", "sys.settrace", "__cnn_grading")


def review_flags(notebook, name: str, tests: list[str]) -> list[str]:
    """Messages naming the cells (not test cells) that hook into how the kernel runs code."""
    flags = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade_id") in tests:
            continue
        found = sorted({hook for hook in KERNEL_HOOKS if hook in cell.source})
        if found:
            flags.append(f"{name}, cell {index + 1}: flagged for the instructor's review: it changes how the "
                         f"kernel runs code ({', '.join(found)}).")
    return flags


def deduplicate(notebook) -> None:
    """Only the first cell with a grade id keeps its nbgrader metadata (later copies run ungraded)."""
    seen = set()
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in seen:
            del cell.metadata["nbgrader"]
        elif grade_id is not None:
            seen.add(grade_id)


def take_files(job: Job, target: Path, scratch: Path) -> tuple[list[str], list[str]]:
    """Copy the submission's own top-level regular files, under the caps of :mod:`grading.intake`, into
    ``target`` (the private course) and, for data files, ``scratch`` (the kernel's home); (names of
    the notebooks taken, messages)."""
    messages, notebooks = [], []
    budget, count = intake.TOTAL_BYTES, 0
    fd = os.open(job.submission, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name, is_folder in intake.entries(job.submission):
            problem = intake.unsafe_name(name)
            if is_folder:
                if not name.startswith("."):
                    messages.append(f"{intake.shown(name)}/ is a folder: only the files next to the notebook "
                                    "are taken; it was left out.")
                continue
            if problem or count >= intake.MAX_FILES:
                messages.append(f"{intake.shown(name)} was left out: " + (
                    problem or f"a submission may hold at most {intake.MAX_FILES} files"))
                continue
            is_notebook = name.endswith(".ipynb")
            targets = [target / name] + ([] if is_notebook else [scratch / name])
            size, why = intake.copy_file(fd, name, targets, budget)
            if why:
                messages.append(why + ".")
                continue
            budget, count = budget - size, count + 1
            if is_notebook:
                notebooks.append(name)
    finally:
        os.close(fd)
    return notebooks, messages


def check_notebook(job: Job, path: Path) -> list[str]:
    """Messages for one taken notebook (rewritten in place when a grade id is duplicated)."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # bad JSON, not a notebook, an invalid one
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        path.unlink()
        return [f"{path.name} could not be read as a notebook ({first}); it was not graded "
                "and scores 0. Resubmit the notebook saved by Jupyter."]
    ids = Counter(c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells)
    ids.pop(None, None)
    expected = job.notebooks[path.stem]
    messages = review_flags(notebook, path.name, expected["tests"])
    if any(n > 1 for n in ids.values()):
        deduplicate(notebook)  # nbgrader's DeduplicateIds keeps the last copy and then crashes
        nbformat.write(notebook, str(path))
    for grade_id in sorted(g for g, n in ids.items() if n > 1 and g in expected["cells"]):
        messages.append(f"{path.name}: cell {grade_id!r} appears {ids[grade_id]} times; "
                        "only the first copy was graded.")
    for grade_id in expected["tests"]:
        if grade_id not in ids:
            messages.append(f"{path.name}: test cell {grade_id!r} was deleted; the original was "
                            "put back and run.")
    for grade_id in expected["cells"]:
        if grade_id not in ids and grade_id not in expected["tests"]:
            messages.append(f"{path.name}: cell {grade_id!r} was deleted; its tests fail.")
    return messages


def precheck(job: Job, private: Path, scratch: Path) -> list[str]:
    """Copy the submission into the private course; messages for what is wrong with it."""
    target = private / "submitted" / job.student / job.assignment
    target.mkdir(parents=True)
    linked = intake.linked_folder(job.submission, job.course)
    if linked:
        return [linked]
    submitted, messages = take_files(job, target, scratch)
    for name in submitted:
        if name[:-6] in job.notebooks:
            messages += check_notebook(job, target / name)
        else:
            (target / name).unlink()
    for name in job.notebooks:
        if f"{name}.ipynb" not in submitted:
            others = [intake.shown(n) for n in submitted if n[:-6] not in job.notebooks]
            found = f" (found {', '.join(others)}: notebooks must keep their names)" if others else ""
            messages.append(f"{name}.ipynb was not submitted{found}; it scores 0.")
    return messages


def stopped_messages(notebook_path: Path) -> list[str]:
    """Messages for the cells the sandbox stopped or skipped."""
    try:
        notebook = nbformat.read(str(notebook_path), as_version=4)
    except Exception:
        return []
    messages = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == STOPPED:
                if not output.evalue.startswith("not run"):
                    messages.append(f"{notebook_path.name}, cell {index + 1}: {output.evalue}.")
    return messages


def read_grades(db: Path, job: Job, result: Result) -> None:
    """Scores and comments of the submission, from the private gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{db}") as gradebook:
        try:
            submission = gradebook.find_submission(job.assignment, job.student)
        except MissingEntry:
            return
        result.timestamp = submission.timestamp.isoformat() if submission.timestamp else None
        for notebook in submission.notebooks:
            cells = result.grades.setdefault(notebook.name, {})
            for grade in notebook.grades:
                cells[grade.name] = {"auto_score": grade.auto_score, "manual_score": grade.manual_score,
                                     "extra_credit": grade.extra_credit, "max_score": grade.max_score,
                                     "needs_manual_grade": grade.needs_manual_grade}
            for comment in notebook.comments:
                cells.setdefault(comment.name, {})["auto_comment"] = comment.auto_comment


def confine(job: Job, scratch: Path, runtime: Path, jupyter: Path) -> tuple[list, list[str]]:
    """Write the kernelspec; (the cgroups made, to remove afterwards; the prefix for nbgrader's command).

    The kernel gets a memory and a pids cgroup where the machine allows; the grading process (nbgrader
    and the trusted checks) gets a memory cgroup, or else an address-space limit, and a private
    size-capped tmpfs at ``runtime``.
    """
    limits = job.limits
    if not limits.sandbox:
        sandbox.write_kernelspec(jupyter, sandbox.plain_argv())
        return [], []
    kernel = [g for g in (MemoryCgroup.create(limits.memory), PidsCgroup.create(limits.processes)) if g]
    grader = MemoryCgroup.create(limits.grader_memory)
    etc = sandbox.write_etc(job.work / "etc")
    sandbox.write_kernelspec(jupyter, sandbox.bwrap_argv(scratch, runtime, etc, limits, kernel))
    scratch.chmod(0o755)  # the kernel's user copies the files from there
    backstop = [] if grader else [sandbox.PRLIMIT, f"--as={max(limits.memory, 2 * limits.grader_memory)}"]
    prefix = enter([grader] if grader else []) + sandbox.runtime_wrapper(runtime, limits) + backstop
    return kernel + ([grader] if grader else []), prefix


def autograde(job: Job, private: Path, env: dict, prefix: list[str], result: Result) -> None:
    """``nbgrader autograde`` and ``generate_feedback`` in the private course; results into ``result``."""
    hard = job.limits.notebook_seconds * max(1, len(job.notebooks)) + 120
    code, log = run_nbgrader(private, ["autograde", job.assignment, "--student", job.student, "--force"],
                             env, timeout=hard, prefix=prefix)
    result.log += log
    autograded = private / "autograded" / job.student / job.assignment
    for name in job.notebooks:
        result.messages += stopped_messages(autograded / f"{name}.ipynb")
    if code != 0:
        graded = any((autograded / f"{n}.ipynb").is_file() for n in job.notebooks)
        if not graded and any((private / "submitted" / job.student / job.assignment).glob("*.ipynb")):
            result.messages.append("The notebook could not be graded (nbgrader failed on it"
                                   f"{', out of memory' if code == -9 else ''}); it scores 0.")
    if autograded.is_dir():
        result.autograded = autograded
        code, log = run_nbgrader(private, ["generate_feedback", job.assignment, "--student",
                                           job.student, "--force"], env, timeout=600, prefix=prefix)
        result.log += log
        feedback = private / "feedback" / job.student / job.assignment
        result.feedback = feedback if feedback.is_dir() else None


def grade_submission(job: Job) -> Result:
    """Autograde one submission in a private course directory; never raises for a student's fault."""
    start = time.perf_counter()
    result = Result(job.student, job.assignment)
    private, scratch, runtime, jupyter = (job.work / n for n in ("course", "scratch", "runtime", "jupyter"))
    groups = []
    try:
        for folder in (private / "source" / job.assignment, scratch, runtime, jupyter):
            folder.mkdir(parents=True)
        problem = intake.unsafe_name(job.student) or intake.unsafe_name(job.assignment)
        try:
            result.messages += [f"not graded: {problem}; it scores 0."] if problem else precheck(job, private,
                                                                                               scratch)
        except Exception as error:  # whatever the submission holds, it is this submission's zero
            problem = f"{type(error).__name__}: {intake.shown(str(error))}"
            result.messages.append(f"The submission could not be taken in ({problem}); it scores 0.")
        if problem:
            return finished(result, start)
        shutil.copy(job.template_db, private / "gradebook.db")
        groups, prefix = confine(job, scratch, runtime, jupyter)
        memory = next((str(g.path) for g in groups if isinstance(g, MemoryCgroup)), "")
        shutil.copy(CONFIG, private / "nbgrader_config.py")
        (private / "worker.json").write_text(json.dumps({
            "course_config": str(job.course / "nbgrader_config.py"), "root": str(private),
            "db": str(private / "gradebook.db"), "kernel": KERNEL_NAME, "cgroup": memory,
            "seconds": job.limits.notebook_seconds, "output_bytes": job.limits.output_bytes}))
        env = nbgrader_env({"JUPYTER_PATH": str(jupyter), "JUPYTER_RUNTIME_DIR": str(runtime),
                            "JUPYTER_CONFIG_DIR": str(job.work / "config"),
                            "IPYTHONDIR": str(job.work / "ipython")})
        autograde(job, private, env, prefix, result)
        read_grades(private / "gradebook.db", job, result)
    except Exception as error:  # the machinery failed: reported, the run goes on
        result.failed = True
        result.messages.append(f"grading failed: {type(error).__name__}: {intake.shown(str(error))}")
    finally:
        for group in groups:
            group.remove()
    return finished(result, start)


def finished(result: Result, start: float) -> Result:
    result.seconds = time.perf_counter() - start
    return result


def notebook_cells(gradebook_db: Path, assignment: str) -> dict:
    """For each notebook of an assignment: its graded/solution cell ids and its test cell ids."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{gradebook_db}") as gradebook:
        notebooks = {}
        for notebook in gradebook.find_assignment(assignment).notebooks:
            tests = [c.name for c in notebook.grade_cells if c.cell_type == "code"]
            cells = tests + [c.name for c in notebook.solution_cells]
            notebooks[notebook.name] = {"cells": sorted(set(cells)), "tests": sorted(tests)}
        return notebooks


def describe(result: Result) -> str:
    return json.dumps({"student": result.student, "assignment": result.assignment,
                       "messages": result.messages}, indent=1)
