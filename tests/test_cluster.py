"""Grading on Dask: a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

A class of clean and hostile submissions is graded once on the embedded cluster (the reference)
and once on the external one, where one worker is killed with SIGKILL in mid-run: every
submission must land in the gradebook exactly once with the reference's scores, and the run must
say that a worker was lost. Also: the embedded cluster listens on 127.0.0.1 only, and a job that
keeps killing its worker, or its grading process, is given up with a message for that student.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grading import corpus, server
from grading.cgroups import remove_recorded
from grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
A = "01_convolution"
DASK = str(Path(sys.executable).with_name("dask"))
LIMITS = Limits(notebook_seconds=12)
pytestmark = pytest.mark.grading
KILL = "import os, signal\nos.kill(-1, signal.SIGKILL)\n"


def make_class(course: Path) -> list[str]:
    """Six right and seven other submissions (partial, blank, hostile); their student ids."""
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    (course / "solutions").mkdir()
    os.symlink(ROOT / "solutions" / A, course / "solutions" / A)
    flip = corpus.solved(A)["convolve2d"].replace("corr2d(x, k[::-1, ::-1])", "corr2d(x, k)")
    cases = {f"good_{i}": corpus.filled(A) for i in range(6)}
    cases.update({
        "partial_no_flip": corpus.filled(A, {"convolve2d": flip}),
        "blank": corpus.released(A),
        "kernel_dies": corpus.filled(A, {"convolve2d": "import os\nos._exit(1)\n"}),
        "infinite_loop": corpus.filled(A, {"convolve2d": "while True:\n    pass\n"}),
        "memory_hog": corpus.filled(A, prepend={"convolve2d": "_hog = bytearray(8 << 30)\n\n"}),
        "kills_everything": corpus.filled(A, {"convolve2d": KILL}),
    })
    for student, notebook in cases.items():
        corpus.write(notebook, course / "submitted" / student / A, A)
    bad = course / "submitted" / "bad_json" / A
    bad.mkdir(parents=True)
    (bad / f"{A}.ipynb").write_text("{ not json")
    return sorted([*cases, "bad_json"])


def scores(course: Path) -> dict[str, dict[str, float]]:
    """student -> grade id -> score, from the gradebook; each submission must be there exactly once."""
    from nbgrader.api import Gradebook

    found: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for submission in gradebook.find_assignment(A).submissions:
            assert submission.student.id not in found
            found[submission.student.id] = {g.name: g.score for nb in submission.notebooks for g in nb.grades}
    return found


def start(argv: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real scheduler and two single-threaded workers (no nanny: SIGKILL ends a worker for good)."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2",
           server.ROOT_ENV: str(folder)}  # a killed worker's grading folders go with the test's
    scheduler_file = folder / "scheduler.json"
    processes = [start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
                       folder / "scheduler.log", env)]
    try:
        deadline = time.monotonic() + 90
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = {}
        for name in ("w1", "w2"):
            workers[name] = start([DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--name", name,
                                   "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                   "--host", "127.0.0.1", "--local-directory", str(folder)],
                                  folder / f"{name}.log", env)
            processes.append(workers[name])
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address, workers
    finally:
        stop(processes)
        remove_recorded(folder)  # the cgroups of the killed workers' grading processes (nobody else can)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The class graded on one machine (the embedded cluster): the scores to match."""
    from grading.run import grade

    course = tmp_path_factory.mktemp("reference") / "course"
    students = make_class(course)
    results = grade(course, workers=2, limits=LIMITS, report=False, progress=False)
    assert sorted(r.student for r in results) == students
    return scores(course)


def test_a_killed_worker_loses_nothing(tmp_path, dask_cluster, reference):
    """SIGKILL to one of two workers in mid-run: every submission graded exactly once, same scores."""
    from distributed import Client

    address, workers = dask_cluster
    course = tmp_path / "course"
    students = make_class(course)
    run = subprocess.Popen([sys.executable, "-m", "grading.run", "--course", str(course), "--no-report",
                            "--scheduler", address, "--timeout", str(LIMITS.notebook_seconds)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    killed = None
    try:
        with Client(address, timeout="60s") as client:
            deadline = time.monotonic() + 300
            while killed is None and time.monotonic() < deadline and run.poll() is None:
                merged = json.loads((course / "grading_results.json").read_text()) if (
                    course / "grading_results.json").exists() else []
                busy = {w: keys for w, keys in client.processing().items()
                        if any(str(k).startswith("grade-") for k in keys)}
                if len(merged) >= 2 and busy:
                    info = client.scheduler_info()["workers"]
                    name = info[next(iter(busy))]["name"]
                    os.kill(workers[name].pid, signal.SIGKILL)
                    killed = name
                time.sleep(0.3)
        out, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed, f"no worker was busy grading while the run lasted:\n{out[-3000:]}"
    assert run.returncode == 0, out[-4000:]
    assert "was lost during the run" in out, out[-3000:]
    assert f"{len(students)} submissions graded" in out, out[-3000:]
    assert scores(course) == reference
    records = json.loads((course / "grading_results.json").read_text())
    assert sorted(r["student"] for r in records) == students


def listening_sockets(before: set) -> list:
    """The addresses this process and its new children listen on, other than those in ``before``."""
    import psutil

    me = psutil.Process()
    ours = [me] + list(me.children(recursive=True))
    return [c.laddr for p in ours for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr not in before]


@pytest.mark.parametrize("processes", [False, True], ids=["worker threads (make grade)", "worker processes"])
def test_the_embedded_cluster_listens_on_loopback_only(processes):
    """make grade's cluster: scheduler and worker threads talk in-process, their HTTP servers listen on
    127.0.0.1; with worker processes, every server listens on 127.0.0.1."""
    from grading.cluster import Cluster

    before = set(listening_sockets(set()))  # the other tests' servers
    cluster = Cluster(2, processes=processes)
    try:
        listening = listening_sockets(before)
        assert len(cluster.workers()) == 2
        # threads: HTTP servers (scheduler, workers); processes: + scheduler, workers, nannies
        assert len(listening) >= (4 if processes else 3), listening
        assert {address.ip for address in listening} == {"127.0.0.1"}, listening
        assert cluster.address.startswith("tcp://127.0.0.1:" if processes else "inproc://")
        assert cluster.client.submit(sum, [1, 2]).result(timeout=60) == 3
    finally:
        cluster.close()


def test_a_job_that_keeps_killing_its_worker_is_given_up():
    """The scheduler gives a task up after its worker died ALLOWED_FAILURES + 1 times; that student gets
    a zero and a message, the run goes on (a cluster of worker processes, as a remote cluster has: make
    grade's own workers are threads, whose jobs only ever end grading processes)."""
    from grading.cluster import ALLOWED_FAILURES, Cluster
    from grading.jobs import Job

    cluster = Cluster(1, processes=True)
    try:
        job = Job("crasher", A, {}, [], b"", "", {})
        future = cluster.client.submit(os._exit, 1, pure=False)
        [(_, result)] = list(cluster.results({future: job}))
        assert result.student == "crasher" and result.grades == {}
        assert f"died {ALLOWED_FAILURES + 1} times" in result.messages[0]
        assert "given up" in result.messages[0]
        assert cluster.client.submit(sum, [1, 2]).result(timeout=60) == 3  # the cluster still works
    finally:
        cluster.close()


def test_a_job_that_keeps_ending_its_grading_process_is_given_up(monkeypatch):
    """server.run restarts a grading process that died and gives the job up after TRIES deaths."""
    from grading.jobs import Job

    deaths = []

    class Dying:
        def grade(self, job):
            deaths.append(job.student)
            raise server.Died("out of memory", "the log")

    monkeypatch.setattr(server, "process_for", lambda limits: Dying())
    result = server.run(Job("crasher", A, {}, [], b"", "", {}))
    assert deaths == ["crasher"] * server.TRIES
    assert "ended the grading process 3 times (out of memory)" in result.messages[0]
    assert "the log" in result.log


def corrupt_job(tmp_path: Path):
    """A job whose notebook is not JSON."""
    from grading.jobs import pack

    folder = tmp_path / "submitted" / "x" / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text("{ not json")
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    return pack("x", A, folder, tmp_path, b"", {A: {"cells": [], "tests": []}}, LIMITS)


def test_a_corrupt_notebook_is_a_message_not_a_crash(tmp_path):
    """A job graded in a real grading process: a notebook that is not JSON gets its message and a zero."""
    process = server.GradingProcess(LIMITS)
    try:
        result = process.grade(corrupt_job(tmp_path))
    finally:
        process.close()
    assert not result.failed and result.grades == {}
    assert "could not be read as a notebook" in result.messages[0]


def bound_files(pid: int) -> set[str]:
    """The files bound read-only into the sandboxes started below ``pid`` (their bwrap arguments)."""
    from grading.interrupt import descendants

    found = set()
    for child in descendants(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        found |= {argv[i + 1].decode() for i, arg in enumerate(argv[:-1]) if arg == b"--ro-bind"}
    return found


def test_the_grading_processes_of_a_run_share_one_font_list(tmp_path):
    """make grade's cluster builds matplotlib's font list for the kernels once; every grading process's
    zygote binds that one file (each would otherwise build its own: about a CPU-second each)."""
    server.use_root(str(tmp_path))
    processes = []
    try:
        processes = [server.GradingProcess(LIMITS) for _ in range(2)]
        shared = server.shared_fonts()
        assert shared is not None and shared.is_file() and shared.is_relative_to(tmp_path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(str(shared) in bound_files(p.process.pid)
                                                      for p in processes):
            time.sleep(0.2)
        assert all(str(shared) in bound_files(p.process.pid) for p in processes)
        assert not list(tmp_path.glob("cnn-grader-*/jobs/matplotlib")), "no grading process built its own"
    finally:
        for process in processes:
            process.close()
        server.use_root(None)
    assert server.shared_fonts() is None


@pytest.mark.parametrize("ask", [True, False], ids=["asked to end", "killed"])
def test_a_grading_process_leaves_no_cgroup_behind(tmp_path, ask):
    """After a job the grading process holds the next submission's kernel in cgroups of its own; ended
    (asked, or killed as when its worker dies), nothing of it is left under /sys/fs/cgroup."""
    process = server.GradingProcess(LIMITS)
    groups = [g.path for g in (process.group, process.counted) if g]
    try:
        process.grade(corrupt_job(tmp_path))
        below = [child for group in groups for child in group.iterdir() if child.is_dir()]
    finally:
        started = time.monotonic()
        process.close(ask=ask)
    if not groups:
        pytest.skip("this machine does not let us create cgroups")
    assert below, "the next kernel's cgroups are made below the grading process's"
    assert [g for g in groups + below if g.exists()] == []
    assert time.monotonic() - started < server.CLOSE_SECONDS + 1
