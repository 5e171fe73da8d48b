"""Kernels forked from the zygote (grading.zygote): each starts as clean as a new sandbox would.

A hostile kernel is run first and does its worst to the sandbox it shares with the next kernels
(files in every writable folder, a background process that outlives it, System V shared memory,
a folder it cannot be entered, signals and ptrace against the zygote); the next kernel, forked
from the same zygote, must find none of it. The tests run as root (CI) and, through
:func:`test_the_zygote_holds_for_an_ordinary_user`, as a throw-away ordinary user.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from grading import execute, sandbox, zygote
from grading.sandbox import Limits
from tests._as_user import run_as_ordinary_user

LIMITS = Limits(scratch_bytes=8 << 20, runtime_bytes=8 << 20, processes=32, memory=1 << 30)
pytestmark = pytest.mark.skipif(not Path(sandbox.BWRAP).exists(), reason="bubblewrap is not installed")


@pytest.fixture
def forks(tmp_path):
    """A zygote, as a grading process starts one; yields it and closes it."""
    made = zygote.start(tmp_path / "zygote", tmp_path / "runtime", LIMITS)
    yield made
    made.close()


async def start_kernel(made: zygote.Zygote):
    """A kernel forked from ``made`` as the grader starts one; its manager and a ready client."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager(kernel_dirs=[str(made.jupyter / "kernels")])
    km = AsyncKernelManager(kernel_name=sandbox.KERNEL_NAME, kernel_spec_manager=specs)
    execute.prepare(km, str(made.runtime), 1 << 20)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


def run_kernel(made: zygote.Zygote, code: str, files: dict[str, str] | None = None) -> str:
    """Fork a kernel with the submission's ``files``, run ``code`` in it, shut it down; its output."""
    for name, text in (files or {}).items():
        (made.submission / name).write_text(text)
        (made.submission / name).chmod(0o644)

    async def run() -> str:
        km, kc = await start_kernel(made)
        out: list[str] = []
        try:
            await kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
                m["content"].get("text", "") if m["msg_type"] == "stream" else
                "\n".join(m["content"].get("traceback", []))))
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
        return "".join(out)

    try:
        return asyncio.run(run())
    finally:
        made.reset()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


HOSTILE = r"""
import ctypes, json, os, signal, subprocess
from pathlib import Path
for folder in (os.environ["HOME"], "/tmp", "/dev/shm", "/tmp/.ipython"):
    os.makedirs(folder, exist_ok=True)
    Path(folder, "planted.py").write_text("raise SystemExit('planted')")
Path(os.environ["HOME"], "ipython_config.py").write_text("raise SystemExit('planted')")
os.makedirs("/tmp/.ipython/profile_default/startup", exist_ok=True)
Path("/tmp/.ipython/profile_default/startup/00-planted.py").write_text("PLANTED = True")
locked = Path("/tmp/locked/inner")
locked.mkdir(parents=True)
(locked / "f").write_text("x")
os.chmod(locked, 0)
os.chmod("/tmp/locked", 0)
from ipykernel.kernelapp import IPKernelApp
runtime = os.path.dirname(IPKernelApp.instance().connection_file)  # the grader's bind: it empties it
for top in ("/dev/shm", runtime):
    os.chdir(top)
    for _ in range(2500):  # past PATH_MAX, Python's recursion limit and the open-file limit
        os.mkdir("deep")
        os.chdir("deep")
    os.chmod(".", 0)
Path(runtime, "planted.py").write_text("x")
os.makedirs(f"{runtime}/locked/inner")
Path(runtime, "locked/inner/f").write_text("x")
os.chmod(f"{runtime}/locked/inner", 0)
os.chmod(f"{runtime}/locked", 0)
os.chdir(os.environ["HOME"])
subprocess.Popen(["sleep", "900"], start_new_session=True)
subprocess.Popen(["/bin/sh", "-c", "(sleep 900 &) ; exit 0"])  # a daemon: its parent is gone at once
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget(0, 4096, 0o1666)  # IPC_PRIVATE, IPC_CREAT | 0666
found = {"shm": shm}
def attempt(action):
    try:
        action()
        return "done"
    except OSError as error:
        return type(error).__name__
found["kill_1"] = attempt(lambda: os.kill(1, signal.SIGKILL))
found["stop_1"] = attempt(lambda: os.kill(1, signal.SIGSTOP))
found["int_1"] = attempt(lambda: os.kill(1, signal.SIGINT))
found["kill_all"] = attempt(lambda: os.kill(-1, signal.SIGKILL))
found["mem_1"] = attempt(lambda: open("/proc/1/mem", "rb").read(1))
found["environ_1"] = attempt(lambda: open("/proc/1/environ", "rb").read())
found["fd_1"] = attempt(lambda: os.listdir("/proc/1/fd"))
found["ptrace_1"] = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH: -1 when refused
found["uid"] = os.getuid()
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
found["caps"] = int(status["CapEff"], 16)
found["no_new_privs"] = status["NoNewPrivs"].strip()
print(json.dumps(found))
"""

LOOK = r"""
import json, os
def listing(folder):  # not into the grader's binds (a clone under /tmp binds its whole venv there)
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(top, d))]
        found += [os.path.join(top, name) for name in files + dirs]
    return sorted(found)
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
names = {p: open(f"/proc/{p}/comm").read().strip() for p in pids if os.path.exists(f"/proc/{p}/comm")}
import numpy
from ipykernel.kernelapp import IPKernelApp
runtime = os.path.dirname(IPKernelApp.instance().connection_file)
print(json.dumps({"home": listing(os.environ["HOME"]), "tmp": listing("/tmp"), "shm": listing("/dev/shm"),
                  "runtime": os.listdir(runtime),
                  "sysv": open("/proc/sysvipc/shm").read().splitlines()[1:],
                  "others": [n for p, n in names.items() if p not in (1, os.getpid()) and p != os.getppid()],
                  "planted": "PLANTED" in globals(), "cwd": os.getcwd(), "own": open("mine.txt").read(),
                  "random": numpy.random.randint(1 << 30), "pid": os.getpid()}))
"""


def test_nothing_a_kernel_leaves_reaches_the_next(forks):
    hostile = last_json(run_kernel(forks, HOSTILE))
    assert hostile["uid"] == 65534 and hostile["caps"] == 0 and hostile["no_new_privs"] == "1"
    assert hostile["shm"] >= 0  # it did leave a segment
    for attack in ("mem_1", "environ_1", "fd_1"):  # the zygote's memory and files: not the kernel's
        assert hostile[attack] == "PermissionError", (attack, hostile)
    assert hostile["ptrace_1"] == -1
    process = forks.process
    first = last_json(run_kernel(forks, LOOK, {"mine.txt": "second"}))
    assert forks.process is process and forks.alive()  # signals did not reach process 1
    assert first["home"] == [os.path.join(sandbox.HOME, "mine.txt")]
    left = [p for p in first["tmp"] + first["shm"] + first["runtime"]
            if "planted" in p or "locked" in p or "deep" in p]
    assert left == [], left
    assert first["shm"] == [] and first["sysv"] == []
    assert first["others"] == [], first["others"]  # the sleeps, the daemon: all gone
    assert not first["planted"] and first["cwd"] == sandbox.HOME and first["own"] == "second"
    second = last_json(run_kernel(forks, LOOK, {"mine.txt": "third"}))
    assert second["own"] == "third" and second["random"] != first["random"]  # a fresh seed each
    assert second["pid"] != first["pid"]  # a new process every time


def test_a_kernel_cannot_reach_the_zygote_s_requests(forks):
    """The kernel holds none of the zygote's pipes: it cannot ask for forks or read the events."""
    code = ("import os, json\n"
            "links = []\n"
            "for fd in os.listdir('/proc/self/fd'):\n"
            "    try:\n"
            "        links.append(os.readlink(f'/proc/self/fd/{fd}'))\n"
            "    except OSError:\n"
            "        pass  # the listing's own\n"
            "print(json.dumps(links))")
    links = json.loads(run_kernel(forks, code).strip().splitlines()[-1])
    ours = {os.readlink(f"/proc/self/fd/{stream.fileno()}") for stream in (forks.process.stdin,
                                                                            forks.process.stdout)}
    assert len(ours) == 2 and not set(links) & ours, links  # a pipe's two ends share one inode
    assert sum(link.startswith("pipe:") for link in links) <= 6  # ipykernel's own output pipes only


def test_a_killed_kernel_is_cleaned_up_before_the_next_one(forks):
    """A kernel that never returns is killed with what it started; the next fork still works."""

    async def start_and_leave():
        _, kc = await start_kernel(forks)
        kc.execute("import subprocess, time\nsubprocess.Popen(['sleep', '900'])\ntime.sleep(900)")
        await asyncio.sleep(1)
        kc.stop_channels()

    asyncio.run(start_and_leave())
    forks.reset()  # as a job's slot is closed: the kernel still runs, and is killed
    after = last_json(run_kernel(forks, LOOK, {"mine.txt": "next"}))
    assert after["others"] == [] and after["own"] == "next"


def test_a_fork_while_a_kernel_runs_is_refused(forks):
    kernel = forks.fork(zygote.KERNEL_ARGV[1:])
    with pytest.raises(RuntimeError, match="still running"):
        forks.fork(zygote.KERNEL_ARGV[1:])
    # the grader counts the kernel's threads from outside the sandbox (grading.execute: a call gets a
    # child of its own once the notebook has started threads)
    assert kernel.threads() is not None and kernel.threads() >= 1
    kernel.kill()
    assert kernel.wait() == -9


def test_a_class_is_graded_end_to_end_through_forked_kernels(tmp_path):
    """make grade's whole path, root or not: template, worker threads, grading process, zygote, forked
    kernels, the serving loop's FIFOs, merge. A solved notebook gets full marks, one with a wrong
    convolve2d loses exactly that function's checks, each with the checker's message."""
    from grading import corpus
    from grading.bench import A, course_with
    from grading.preflight import totals
    from grading.run import grade

    course = course_with(1, tmp_path)  # student_00: solved
    wrong = corpus.solved(A)["convolve2d"].replace("corr2d(x, k[::-1, ::-1])", "corr2d(x, k)")
    corpus.write(corpus.filled(A, {"convolve2d": wrong}), course / "submitted" / "no_flip" / A, A)
    results = {r.student: r for r in grade(course, 1, Limits(notebook_seconds=120), report=False,
                                              progress=False)}
    score, full = totals(results["student_00"].grades)
    assert score == full > 0 and not results["student_00"].messages
    lost = {g for g, c in results["no_flip"].grades[A].items()
            if "max_score" in c and (c["auto_score"] or 0) < c["max_score"]}
    assert lost and all(g.startswith("test_convolve2d") for g in lost), lost
    page = (course / "autograded" / "no_flip" / A / f"{A}.ipynb").read_text()
    assert ": no flip" in page  # the checker, outside the kernel, names the mistake


def test_the_zygote_holds_for_an_ordinary_user():
    """This file again, as a throw-away user (a user namespace instead of setpriv)."""
    run_as_ordinary_user(Path(__file__), "not ordinary_user")

