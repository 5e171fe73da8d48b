"""``make grade``: grade the submissions under ``submitted/<student>/<assignment>/``.

1. The folders are checked (:mod:`grading.collection`: student ids, links, the submission time)
   and filtered (``--assignment``, ``--student``); by default only submissions whose files or
   whose assignment's tests changed since they were last graded are graded (:mod:`grading.select`,
   ``--force`` grades all); what is skipped is printed.
2. The gradebook is created or updated from ``solutions/`` (``nbgrader generate_assignment``
   into a throw-away release folder) while the cluster starts; a template copy with no students
   is made for workers.
3. Each assignment's own solution is graded first through the same path
   (:mod:`grading.preflight`), the students' jobs queued behind it; short of full marks,
   nobody is merged and the run exits 2.
4. Each submission becomes a job, data in and data out (:mod:`grading.jobs`), run on Dask
   (:mod:`grading.cluster`: an embedded ``LocalCluster`` of ``--workers`` worker threads,
   or the cluster at ``--scheduler``) in a worker's long-lived grading process
   (:mod:`grading.server`, :mod:`grading.worker`); the parent, the only writer of the gradebook,
   merges each result whole (:mod:`grading.merge`: manual scores, comments and extra credit kept;
   a feedback folder nbgrader can release). The feedback of submissions graded by hand before
   is rendered again from the gradebook (:mod:`grading.refresh`), so it keeps the manual work.
5. ``grades.csv`` (the csv module's quoting), ``grading_results.json`` (one record per
   submission) and ``grading_report.html``.

Ctrl-C or SIGTERM ends the kernels, removes the temporary folders and leaves every submission
merged whole or not at all (exit 130 / 143). The exit status is 1 when the grading machinery
failed on a submission, 2 when the setup is broken, never because of what a student submitted.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

from tqdm import tqdm

from grading import select
from grading.cgroups import remove_recorded
from grading.cluster import Cluster
from grading.collection import Submission, scan
from grading.db import DB_URL_HELP, build_template, course_url, export_csv
from grading.feedback import nbgrader_time
from grading.interrupt import Interrupted, Stopper, end_descendants
from grading.jobs import Job, Result, pack, unpack
from grading.merge import merge
from grading.names import one_line, plural, printable
from grading.refresh import refresh
from grading.sandbox import Limits
from grading.server import memory_folder, stop
from grading.worker import notebook_cells


class SetupError(RuntimeError):
    """The grading setup is broken (an assignment's own solution does not score full marks)."""


def say(message: str) -> None:
    print(f"[grading] {printable(message)}", file=sys.stderr, flush=True)


def record(result: Result, prints: dict) -> dict:
    return {"student": result.student, "assignment": result.assignment, "seconds": round(result.seconds, 2),
            "messages": result.messages, "failed": result.failed, "graded_at": nbgrader_time(None),
            "files": prints[(result.student, result.assignment)], "tests": prints[result.assignment]}


class UsageError(ValueError):
    """An ``--assignment`` or ``--student`` that names nothing there (a misspelt name): nothing graded."""


def choose(course: Path, known: set[str], assignments, students, force: bool):
    """(submissions to grade, fingerprints, records), printing what is refused or skipped."""
    found, rejected, skipped = scan(course, known)
    for note in skipped:
        say(f"skipped {note}")
    for bad in rejected:
        say(f"NOT GRADED {bad.student}/{bad.assignment}: {bad.message}")
    unknown = sorted(set(assignments or []) - known)
    if unknown:
        raise UsageError(f"no assignment {', '.join(map(repr, unknown))} in solutions/ "
                         f"(there: {', '.join(sorted(known)) or 'none'})")
    submitters = {s.student for s in found} | {r.student for r in rejected}
    absent = sorted(set(students or []) - submitters)
    if absent:
        hints = [f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)"
                                if (close := difflib.get_close_matches(name, submitters, 3)) else "")
                 for name in absent]
        raise UsageError(f"no submission from student {', '.join(hints)} under {course / 'submitted'}")
    chosen = select.wanted(found, assignments, students)
    prints = {a: select.fingerprint(course / "solutions" / a) for a in {s.assignment for s in chosen}}
    prints.update({(s.student, s.assignment): select.fingerprint(s.folder) for s in chosen})
    records = select.load(course)
    todo, unchanged = select.plan(chosen, records, prints, force)
    if unchanged:
        names = ", ".join(f"{s.student}/{s.assignment}" for s in unchanged[:20])
        more = f" and {len(unchanged) - 20} more" if len(unchanged) > 20 else ""
        say(f"unchanged since last graded, skipped (--force to regrade): {len(unchanged)}: {names}{more}")
    return todo, prints, records, rejected


def merge_one(course: Path, result: Result, submission: Submission, notebooks: list[str], url: str) -> None:
    """Merge; a merge that fails becomes the submission's message and a zero."""
    try:
        result.manual = merge(course, result, submission, notebooks, url=url)
    except Interrupted:
        raise
    except Exception as error:
        result.failed = True
        result.messages.append(f"grading failed while merging: {type(error).__name__}: {error}")
        result.grades, result.autograded, result.feedback = {}, None, None
        try:
            merge(course, result, submission, notebooks, url=url)  # a zero, with the message in its feedback
        except Exception as again:
            result.messages.append(f"and the zero could not be recorded: {type(again).__name__}: {again}")


def jobs_for(course: Path, todo: list[Submission], template: Path, cells: dict,
             limits: Limits) -> Iterator[Job]:
    """The jobs (data) for ``todo``, taken from the submission folders one at a time."""
    data = template.read_bytes()
    for sub in todo:
        yield pack(sub.student, sub.assignment, sub.folder, course, data, cells[sub.assignment], limits,
                   sub.timestamp)


def grade_all(course, todo, work, cluster, stopper, limits, check_setup, progress, prints, records, url,
              template):
    """Preflight, the jobs and the merges; the results in merge order."""
    cells = {a: notebook_cells(template, a) for a in sorted({s.assignment for s in todo})}
    checks = None
    if check_setup:
        from grading.preflight import Preflight
        say("grading each assignment's own solution first (a broken setup grades nobody)")
        checks = Preflight(course, work / "release", template, cells, work, limits, cluster)
    # the submission time is set at the merge, from the collection (the worker's copy is the student's)
    jobs, submissions = {}, {}
    for number, (sub, job) in enumerate(zip(todo, jobs_for(course, todo, template, cells, limits))):
        future = cluster.submit(job, priority=-number)  # in order: Dask orders one batch by its keys
        jobs[future], submissions[future] = job, sub
    problems = checks.problems() if checks is not None else []
    if problems:  # nothing of the students' was merged; their jobs are dropped
        cluster.cancel(list(jobs))
        raise SetupError("\n".join(problems))
    results = []
    with tqdm(total=len(jobs), unit="submission", disable=not progress, file=sys.stderr) as bar:
        for number, (future, result) in enumerate(cluster.results(jobs)):
            submission = submissions[future]
            unpack(result, work / f"{number:04d}")
            result.messages = submission.notes + result.messages
            merging = time.perf_counter()
            with stopper.held():
                merge_one(course, result, submission, list(cells[submission.assignment]), url)
                records[(result.student, result.assignment)] = record(result, prints)
                select.save(course, records)
            shutil.rmtree(work / f"{number:04d}", ignore_errors=True)
            result.steps["merge"] = time.perf_counter() - merging
            results.append(result)
            bar.set_postfix_str(one_line(f"{result.student}/{result.assignment}", 60))
            bar.update()
    for worker in cluster.lost():
        say(f"grading worker {worker} was lost during the run; the submissions it was grading were graded "
            "again on the other workers")
    return results


def grade(course: Path, workers: int | None = None, limits: Limits | None = None, report: bool = True,
          progress: bool = True, assignments: list[str] | None = None, students: list[str] | None = None,
          force: bool = False, check_setup: bool = True, db_url: str | None = None,
          scheduler: str | None = None) -> list[Result]:
    """Grade the chosen submissions of the course; the results of this run, in merge order.

    ``db_url``: the course's gradebook (default ``$NBGRADER_DB_URL``, else ``gradebook.db`` in the course).
    ``scheduler``: a Dask scheduler's address (default ``$DASK_SCHEDULER_ADDRESS``, else an embedded
    ``LocalCluster`` of ``workers`` worker threads, each with its grading process).
    """
    from grading import speedups

    speedups.install()  # the merges open the gradebook once per submission
    course = course.resolve()
    url = course_url(course, db_url)
    known = {p.name for p in (course / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()}
    todo, prints, records, rejected = choose(course, known, assignments, students, force)
    if not todo:
        say(f"nothing to grade under {course / 'submitted'} (try `make demo-class`, or --force)")
        if records:  # graded before: the export and the report follow the gradebook's manual grades
            export_csv(course, url)
            if report:
                from grading.report import write_report
                write_report(course, [], rejected, url=url)
        return []
    main = threading.current_thread() is threading.main_thread()
    work = Path(tempfile.mkdtemp(prefix="cnn-grade-"))
    memory = Path(tempfile.mkdtemp(prefix="cnn-grade-", dir=memory_folder()))  # the embedded workers' files
    cluster, finished = None, False
    try:
        with Stopper() if main else nullcontext(Stopper()) as stopper:
            limits = limits or Limits()
            assignments = sorted({s.assignment for s in todo})
            say(f"{plural(len(todo), 'submission')} to grade; updating the gradebook from "
                f"solutions/ ({', '.join(assignments)}) while the grading workers start")
            with ThreadPoolExecutor(1, thread_name_prefix="gradebook") as side:  # beside the cluster's start
                template = side.submit(build_template, course, assignments, work, url)
                cluster = Cluster(max(1, workers or os.cpu_count() or 1), scheduler, str(memory))
                cluster.warm_up(limits)  # the workers start their grading processes meanwhile
                say(f"{len(cluster.workers())} workers ({cluster.where()})")
                template = template.result()
            results = grade_all(course, todo, work, cluster, stopper, limits, check_setup, progress, prints,
                                records, url, template)
            finished = True
    finally:
        if not finished:
            stop()  # this process's grading processes (the embedded workers are its threads), none restarted
            end_descendants(grace=1.0)  # whatever else it started
        if cluster is not None:
            cluster.close()
        remove_recorded(memory)  # the cgroups of grading processes that could not remove their own
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(memory, ignore_errors=True)
    export_csv(course, url)
    with_manual_feedback(course, results, url)
    review = manual_scores_to_review(results, url)
    if review:
        say(f"{len(review)} manual scores stand where the regrade now gives another automatic score "
            "(the manual score counts until it is changed; the formgrader lists these cells as needing "
            "review):\n  " + "\n  ".join(review))
    if report:
        from grading.report import write_report
        write_report(course, results, rejected, url=url)
    return results


def with_manual_feedback(course: Path, results: list[Result], url: str) -> None:
    """The feedback pages of the submissions the instructor had graded by hand, or late ones, rendered
    again from the gradebook (:func:`grading.refresh.refresh`): the worker rendered them from the
    automatic scores alone, and a regrade must not take the manual scores, comments and late
    penalty out of them."""
    manual: dict[str, list[str]] = {}
    for result in results:
        if result.manual and not result.failed:
            manual.setdefault(result.assignment, []).append(result.student)
    for assignment, students in sorted(manual.items()):
        missed: list[str] = []
        try:
            done = refresh(course, assignment, students, url, missed)
        except Exception as error:  # the grades are merged; only the pages lack the manual work
            say(f"the feedback of {', '.join(students)} for {assignment} lacks the manual scores, "
                f"comments and late penalties ({type(error).__name__}: {one_line(str(error), 300)}); "
                f"run `python -m grading.refresh --assignment {assignment}` before releasing it")
            continue
        say(f"feedback of {assignment} rendered again with the manual scores, comments and late "
            f"penalties: {', '.join(done)}")
        if missed:
            say(f"nbgrader rendered no feedback page for {', '.join(missed)} ({assignment}): their pages "
                "lack the manual scores, comments and late penalties")


def manual_scores_to_review(results: list[Result], url: str) -> list[str]:
    """The cells of this run's regraded submissions whose manual score differs from their new
    automatic score, one line each: a student who fixed a failing test keeps the TA's partial
    credit until someone looks."""
    from nbgrader.api import Gradebook, MissingEntry

    lines = []
    with Gradebook(url) as gradebook:
        for result in results:
            if not result.manual or result.failed:
                continue
            try:
                submission = gradebook.find_submission(result.assignment, result.student)
            except MissingEntry:
                continue
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.manual_score is not None and grade.auto_score is not None \
                            and grade.manual_score != grade.auto_score:
                        lines.append(f"{result.student}/{result.assignment} {grade.name}: manual "
                                     f"{grade.manual_score:g}, automatic now {grade.auto_score:g} "
                                     f"of {grade.max_score:g}")
    return lines


def zero_scores(results: list[Result]) -> list[str]:
    """This run's submissions that earned nothing, each with the grader's last message (the cause)."""
    lines = []
    for result in results:
        earned = sum(cell.get("auto_score") or 0
                     for cells in result.grades.values() for cell in cells.values())
        if not result.failed and earned == 0:
            why = one_line(result.messages[-1], 160) if result.messages else "no test passed"
            lines.append(f"{result.student}/{result.assignment}: {why}")
    return lines


def names(values: list[str] | None) -> list[str] | None:
    """``--student a --student b,c`` -> [a, b, c]."""
    return [n for v in values for n in v.split(",") if n] if values else None


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (nbgrader_config.py)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GRADE_WORKERS", 0)) or None,
                        help="workers of the embedded cluster, each with a grading process "
                        "(default: all cores; env GRADE_WORKERS)")
    parser.add_argument("--scheduler", default=None,
                        help="a Dask scheduler to send the jobs to, e.g. tcp://HOST:8786 "
                        "(default: $DASK_SCHEDULER_ADDRESS, else an embedded cluster on 127.0.0.1)")
    parser.add_argument("--assignment", action="append", help="only this assignment (repeat, or a,b)")
    parser.add_argument("--student", action="append", help="only this student (repeat, or a,b)")
    parser.add_argument("--force", action="store_true", help="regrade even submissions that did not change")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="wall-clock seconds per notebook run (one that stops early, its kernel dead "
                        "or out of time, runs a second time up to the stop, with the same limit, to score "
                        "the hidden tests before it: at most twice this in all)")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="memory per kernel (address space; a cgroup where the machine allows)")
    parser.add_argument("--db-url", default=None, help=DB_URL_HELP)
    parser.add_argument("--no-report", action="store_true", help="do not write grading_report.html")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    limits = Limits(notebook_seconds=args.timeout, memory=args.memory_mb << 20)
    start = time.perf_counter()
    try:
        results = grade(args.course, args.workers, limits, report=not args.no_report,
                        assignments=names(args.assignment), students=names(args.student), force=args.force,
                        db_url=args.db_url, scheduler=args.scheduler)
    except SetupError as error:
        say(f"REFUSING TO GRADE: the setup is broken; nothing was graded.\n{error}")
        return 2
    except UsageError as error:
        say(f"nothing graded: {error}")
        return 2
    except Interrupted as stop:
        say(f"stopped by {signal.Signals(stop.args[0]).name}: kernels ended, temporary folders removed; "
            "every submission merged so far is complete; run again to grade the rest")
        return 128 + stop.args[0]
    zeros = zero_scores(results)
    if zeros:
        say(f"{plural(len(zeros), 'submission')} earned no points from the tests:\n  "
            + "\n  ".join(zeros))
    failed = [r for r in results if r.failed]
    for result in failed:
        say(f"FAILED {result.student}/{result.assignment}: {result.messages[-1]}\n{result.log[-3000:]}")
    seconds = time.perf_counter() - start
    say(f"{plural(len(results), 'submission')} graded in {seconds:.1f} s; "
        f"grades.csv, feedback/, grading_report.html in {args.course.resolve()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
