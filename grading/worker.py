"""One submission graded inside the long-lived grading process (:mod:`grading.server`).

nbgrader, nbconvert and the checker are imported once per process; each job gets a private course
folder (the gradebook template as its gradebook, the submission's files, an empty source folder),
its own kernel cgroups and kernelspec, and a folder of its own in the process's private runtime
tmpfs. ``Autograde`` and ``GenerateFeedback`` run in this process with nbgrader's configuration
built from the course's ``nbgrader_config.py`` and :func:`configure` (settings as data). What
comes back is data (:class:`grading.jobs.Result`): scores, messages, the autograded notebooks and
the feedback pages as bytes. ``nbgrader_env``/``run_nbgrader`` run the nbgrader command line for
the parent's own steps (``generate_assignment``, the feedback refresh).
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import nbformat

from grading import execute, intake
from grading.execute import STOPPED
from grading.jobs import Job, Result
from grading.sandbox import KERNEL_NAME, REPO, Limits
from grading.slot import Slot


def nbgrader_env(extra: dict | None = None) -> dict:
    """The environment nbgrader runs in: this venv first on PATH (alembic), grading importable."""
    env = dict(os.environ)
    env.pop("JPY_PARENT_PID", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra or {})
    return env


NBGRADER = ("import grading.db, nbgrader.api, runpy; "
            "nbgrader.api.get_alembic_version = grading.db.alembic_head; "
            "runpy.run_module('nbgrader', run_name='__main__', alter_sys=True)")


def run_nbgrader(course: Path, args: list[str], env: dict | None = None, timeout: float = 900,
                 prefix: list[str] = ()):
    """``python -m nbgrader ARGS`` in ``course`` (after the command ``prefix``), in a session of its
    own, with :mod:`grading` imported first (see its ``rfc3987_syntax``) and a new gradebook's schema
    revision read in-process (:func:`grading.db.alembic_head`); (returncode, log)."""
    process = subprocess.Popen([*prefix, sys.executable, "-c", NBGRADER, *args], cwd=course,
                               env=env or nbgrader_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        return -9, out + f"\n[grading] nbgrader killed after {timeout:.0f} s"
    return process.returncode, out


# What a notebook needs in order to change how its kernel runs the grader's calls, or the checker
# itself (``Checker``: the class behind ``grader``, whose replaced methods refuse every test). It
# earns nothing by itself (the comparisons happen outside the kernel), but such a notebook is worth
# a look.
KERNEL_HOOKS = ("input_transformers", "ast_transformers", "events.register", "register_magic",
                "set_custom_exc", "sys.setprofile", "sys.settrace", "__cnn_grading", "Checker")


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


ROLE_KEYS = ("grade", "solution", "task", "locked", "points")
# Only a changed flag is the student's doing: points differ too when the instructor changed them in
# solutions/ after the release, and every student was then told their notebook had been changed.
FLAG_KEYS = ("grade", "solution", "task", "locked")
KEPT_KEYS = ("checksum", "cell_type")  # nbgrader's own, repaired by OverwriteCells on known cells


def drop_malformed(notebook, name: str) -> list[str]:
    """Cells whose nbgrader metadata is not a mapping with a text grade id lose it (in place): the
    grader's own counting, flagging and nbgrader itself would fail on the whole submission."""
    messages = []
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is not None and not (isinstance(meta, dict) and isinstance(meta.get("grade_id", ""), str)):
            del cell.metadata["nbgrader"]
            messages.append(f"{name}, cell {index + 1}: its grading metadata is malformed; it ran ungraded.")
    return messages


def set_roles(notebook, name: str, roles: dict) -> list[str]:
    """Every cell's nbgrader metadata as the assignment's source has it (in place); messages for
    the cells changed.

    nbgrader drops the grade id of a cell the gradebook does not know (one copied from another
    assignment's notebook, or made up) but keeps its other flags, and then fails on the whole
    notebook; so does a known cell whose flags disagree with the gradebook (a solution cell
    marked as graded), or whose metadata has an old schema version or a key nbgrader's schema
    does not allow. Either way the student's every point was lost. Such a cell now runs
    ungraded, or with the metadata the source gives it: its grade id, schema version 3, its
    flags and points, and nbgrader's checksum and cell type if they are text."""
    messages = []
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id")
        role = roles.get(grade_id)
        if role is None:
            del cell.metadata["nbgrader"]
            if any(meta.get(k) for k in ("grade", "solution", "task")):
                messages.append(f"{name}, cell {index + 1}: it is marked as a graded cell "
                                f"({str(grade_id)[:80]!r}) that this notebook does not have (copied from "
                                "another notebook?); it ran ungraded.")
            continue
        if any(bool(meta.get(key)) != bool(role.get(key)) for key in FLAG_KEYS):
            messages.append(f"{name}, cell {index + 1}: the grading metadata of cell {grade_id!r} was "
                            "changed; the assignment's own was put back.")
        kept = {key: meta[key] for key in KEPT_KEYS if isinstance(meta.get(key), str)}
        cell.metadata["nbgrader"] = nbformat.NotebookNode(
            {"grade_id": grade_id, "schema_version": 3, **kept, **role})
    return messages


def check_notebook(job: Job, path: Path) -> list[str]:
    """Messages for one taken notebook (rewritten in place: malformed, duplicated or unknown grade
    ids and changed flags put right)."""
    try:
        notebook = nbformat.read(str(path), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # bad JSON, not a notebook, an invalid one
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        path.unlink()
        return [f"{path.name} could not be read as a notebook ({first}); it was not graded "
                "and scores 0. Resubmit the notebook saved by Jupyter."]
    messages = drop_malformed(notebook, path.name)
    ids = Counter(c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells)
    ids.pop(None, None)
    expected = job.notebooks[path.stem]
    if any(n > 1 for n in ids.values()):
        deduplicate(notebook)  # nbgrader's DeduplicateIds keeps the last copy and then crashes
    if "roles" in expected:  # (a job from a parent that sends no roles keeps the metadata as it is)
        messages += set_roles(notebook, path.name, expected["roles"])
    # after the clean-up: a cell carrying a copy of a test cell's id is no longer taken for the test
    messages = review_flags(notebook, path.name, expected["tests"]) + messages
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


def precheck(job: Job, private: Path, scratch: Path) -> list[str]:
    """Write the job's files into the private course (notebooks) and the kernel's home (data files);
    messages for what is wrong with the submission."""
    target = private / "submitted" / job.student / job.assignment
    target.mkdir(parents=True)
    messages = list(job.notes)
    for name, data in job.files.items():
        is_notebook = name.endswith(".ipynb")
        if is_notebook and name[:-6] not in job.notebooks:
            continue
        for path in [target / name] + ([] if is_notebook else [scratch / name]):
            path.write_bytes(data)
            path.chmod(0o644)
        if is_notebook:
            messages += check_notebook(job, target / name)
    submitted = [n for n in job.files if n.endswith(".ipynb")]
    others = [intake.shown(n) for n in submitted if n[:-6] not in job.notebooks]
    missing = [name for name in job.notebooks if f"{name}.ipynb" not in submitted]
    for name in missing:
        found = f" (found {', '.join(others)}: notebooks must keep their names)" if others else ""
        messages.append(f"{name}.ipynb was not submitted{found}; it scores 0.")
    if others and not missing:
        graded = ", ".join(f"{name}.ipynb" for name in job.notebooks)
        messages.append(f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not graded: only "
                        f"{graded} {'is' if len(job.notebooks) == 1 else 'are'} (work done in a copy "
                        "must be moved into it).")
    return messages


def config_from(course_config: str, where: str):
    """The traitlets Config that an ``nbgrader_config.py`` (its text; ``where``: its name in tracebacks)
    builds (the instructor's file: trusted)."""
    from traitlets.config import Config

    c = Config()
    exec(compile(course_config, where, "exec"), {"get_config": lambda: c, "__file__": where})
    return c


def configure(course_config: str, private: Path, limits: Limits, cgroup: str):
    """nbgrader's configuration for one job: the course's ``nbgrader_config.py`` (text), then the private
    course folder, the sandboxed kernel (its ``limits``, its memory ``cgroup`` folder or "") and the
    preprocessors of :mod:`grading.execute`."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader import preprocessors as nbgrader

    from grading.execute import HideTests, SandboxExecute
    from grading.templates import FeedbackExporter

    c = config_from(course_config, str(private / "course_config.py"))
    c.CourseDirectory.root = str(private)
    c.CourseDirectory.db_url = f"sqlite:///{private / 'gradebook.db'}"
    c.CourseDirectory.source_directory = "source"
    c.Autograde.autograde_preprocessors = [
        SandboxExecute, nbgrader.IgnorePattern, ClearMetadataPreprocessor, nbgrader.LimitOutput,
        nbgrader.SaveAutoGrades, nbgrader.AssignLatePenalties, nbgrader.CheckCellMetadata]
    c.GenerateFeedback.preprocessors = [nbgrader.GetGrades, HideTests, CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.exporter_class = FeedbackExporter
    c.Execute.kernel_name = KERNEL_NAME
    c.Execute.extra_arguments = []
    c.SandboxExecute.notebook_timeout = float(limits.notebook_seconds)
    c.SandboxExecute.max_output_bytes = int(limits.output_bytes)
    c.SandboxExecute.memory_cgroup = cgroup
    c.KernelManager.transport = "ipc"
    c.Exporter.optimistic_validation = True  # the notebook is validated once, after the last preprocessor
    c.Autograde.create_student = True
    return c


@contextmanager
def environment(values: dict):
    """``os.environ`` with ``values`` for the duration (the job's Jupyter folders)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_converter(kind, config, assignment: str, student: str = "*") -> tuple[bool, str]:
    """nbgrader's ``kind`` converter (Autograde, GenerateFeedback, GenerateAssignment) in this process,
    ``force``d as on the command line; (succeeded, its log). Its log goes only there (a logger of its
    own): in the run, nbgrader's warnings would otherwise reach the instructor's terminal."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    log = logging.getLogger(f"grading.nbgrader.{threading.get_ident()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    converter = kind(coursedir=coursedir, config=config, log=log)
    converter.force = True
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    log.addHandler(handler)
    try:
        converter.start()
        return True, buffer.getvalue()
    except (Exception, SystemExit):  # nbgrader's failures (NbGraderException) and anything below them
        return False, buffer.getvalue() + traceback.format_exc()
    finally:
        log.removeHandler(handler)


EXCEPTION_LINE = re.compile(r"^\s*[\w.]*(Error|Exception|Exit|Interrupt)\b:?.*$")


def cause(log: str) -> str:
    """The first exception a converter's log names other than nbgrader's own summary of it (for
    "Kernel didn't respond in 60 s", not "Please see the above traceback"), else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    named = [line for line in lines if EXCEPTION_LINE.match(line) and "NbGraderException" not in line]
    return (named or lines[-1:] or ["no log"])[0]


def keep_only_notebooks(folder: Path, notebooks: list[str]) -> None:
    """Remove from an autograded folder every file but the assignment's notebooks and
    ``timestamp.txt``: nbgrader copies the student's other files there, and the formgrader serves
    that folder on the instructor's own server (a student's ``derivation.html``, linked from the
    notebook, would run its script with the instructor's session)."""
    wanted = {f"{name}.ipynb" for name in notebooks} | {"timestamp.txt"}
    for entry in folder.iterdir():
        if entry.name in wanted and entry.is_file() and not entry.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            intake.remove_tree(entry)
        else:
            entry.unlink()


def make_inert(path: Path) -> None:
    """Rewrite an autograded notebook with nothing in it that runs when the formgrader shows it to the
    instructor (the student's HTML, script and widget outputs, raw HTML in Markdown; see
    :func:`grading.sanitize.sanitize_autograded`)."""
    import nbformat

    from grading.sanitize import sanitize_autograded

    if path.is_file():
        notebook = sanitize_autograded(nbformat.read(str(path), as_version=4))
        mode = path.stat().st_mode
        path.chmod(mode | 0o200)  # nbgrader leaves it read-only (as root that did not matter)
        try:
            nbformat.write(notebook, str(path))
        finally:
            path.chmod(mode)


def read_files(folder: Path) -> dict[str, bytes]:
    """The regular files directly in ``folder`` (made by nbgrader here), as bytes."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}


def autograde(job: Job, private: Path, config, result: Result) -> None:
    """Autograde and feedback for the job's submission in the private course; results into ``result``."""
    from nbgrader.converters import Autograde, GenerateFeedback

    start = time.perf_counter()
    execute.TIMINGS.clear()
    execute.FAILED_RUNS.clear()
    done, log = run_converter(Autograde, config, job.assignment, job.student)
    result.log += log
    result.steps.update(execute.TIMINGS)
    result.steps["nbgrader"] = time.perf_counter() - start - sum(execute.TIMINGS.values())
    autograded = private / "autograded" / job.student / job.assignment
    for name in job.notebooks:
        result.messages += stopped_messages(autograded / f"{name}.ipynb")
    graded = any((autograded / f"{n}.ipynb").is_file() for n in job.notebooks)
    submitted = private / "submitted" / job.student / job.assignment
    if execute.FAILED_RUNS:  # scored what it could; graded again on the next make grade
        result.failed = True
        result.messages += [f"{problem}; its hidden tests score 0 until the next make grade grades it again."
                            for problem in execute.FAILED_RUNS]
    if not done and not graded and any(submitted.glob("*.ipynb")):
        # Nothing a submission holds makes nbgrader fail any more (precheck puts its notebooks right):
        # this is the grader's failure (a kernel that did not start on a loaded machine). Marked
        # failed, it is printed with its log, makes make grade exit 1 and is graded again next run.
        result.failed = True
        result.messages.append(f"The notebook could not be graded: the grader failed on it "
                               f"({intake.shown(cause(log))[:200]}); it scores 0 until the next make grade "
                               "grades it again.")
    if autograded.is_dir():
        keep_only_notebooks(autograded, job.notebooks)
        for name in job.notebooks:
            make_inert(autograded / f"{name}.ipynb")
        result.files["autograded"] = read_files(autograded)
        start = time.perf_counter()
        done, log = run_converter(GenerateFeedback, config, job.assignment, job.student)
        result.log += log
        result.steps["feedback"] = time.perf_counter() - start
        result.files["feedback"] = read_files(private / "feedback" / job.student / job.assignment)


def grade_job(job: Job, slot: Slot) -> Result:
    """Grade one job in this process, in ``slot`` (its folders and its kernel's sandbox; closed
    afterwards); never raises for a student's fault."""
    start = time.perf_counter()
    result = Result(job.student, job.assignment)
    private = slot.folder / "course"
    try:
        if job.refused:
            result.messages.append(job.refused)
            return finished(result, start)
        (private / "source" / job.assignment).mkdir(parents=True)
        try:
            result.messages += precheck(job, private, slot.scratch)
        except Exception as error:  # whatever the submission holds, it is this submission's zero
            problem = f"{type(error).__name__}: {intake.shown(str(error))}"
            result.messages.append(f"The submission could not be taken in ({problem}); it scores 0.")
            return finished(result, start)
        (private / "gradebook.db").write_bytes(job.template)
        config = configure(job.course_config, private, job.limits, slot.memory)
        with environment({"JUPYTER_PATH": str(slot.jupyter), "JUPYTER_RUNTIME_DIR": str(slot.runtime),
                          "JUPYTER_CONFIG_DIR": str(slot.folder / "config"),
                          "IPYTHONDIR": str(slot.folder / "ipython")}):
            autograde(job, private, config, result)
        read_grades(private / "gradebook.db", job, result)
    except Exception as error:  # the machinery failed: reported, the run goes on
        result.failed = True
        result.log += traceback.format_exc()
        result.messages.append(f"grading failed: {type(error).__name__}: {intake.shown(str(error))}")
    finally:
        slot.close()
    return finished(result, start)


def finished(result: Result, start: float) -> Result:
    result.seconds = time.perf_counter() - start
    return result


def notebook_cells(gradebook_db: Path, assignment: str) -> dict:
    """For each notebook of an assignment: its graded/solution cell ids, its test cell ids and each
    cell's role (``grade``, ``solution``, ``task``, ``locked``, ``points``) as the source has it."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{gradebook_db}") as gradebook:
        notebooks = {}
        for notebook in gradebook.find_assignment(assignment).notebooks:
            tests = [c.name for c in notebook.grade_cells if c.cell_type == "code"]
            cells = tests + [c.name for c in notebook.solution_cells]
            points = {c.name: float(c.max_score) for c in [*notebook.grade_cells, *notebook.task_cells]}
            graded = {c.name for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name for c in notebook.task_cells}
            roles = {c.name: {"grade": c.name in graded, "solution": c.name in solutions,
                              "task": c.name in tasks, "locked": bool(c.locked)}
                     for c in notebook.source_cells}
            for name, role in roles.items():
                if name in points:
                    role["points"] = points[name]
            notebooks[notebook.name] = {"cells": sorted(set(cells)), "tests": sorted(tests), "roles": roles}
        return notebooks
