"""The long-lived grading process: nbgrader and the checker imported once, one submission at a time.

``python -m grading.server ROOT RUNTIME`` reads jobs (:class:`grading.jobs.Job`) from its standard
input and writes results (:class:`grading.jobs.Result`) to its standard output, each as a frame
(8-byte length, then a pickle), and grades each job with :func:`grading.worker.grade_job`. The
first frame it reads is the :class:`grading.sandbox.Limits` of the jobs to come and the kernels'
font list (or None: it builds its own), so that its zygote starts before the first job arrives.

:class:`GradingProcess` starts one and confines it as the nbgrader subprocesses were confined
before: a memory cgroup of ``Limits.grader_memory`` (else an address-space limit) and a private
size-capped tmpfs at ``RUNTIME`` (the kernels' sockets and mailboxes), so the trusted checks
that decode the kernel's answers cannot take the machine with them. Its own process group, so a
stuck or killed one takes its kernels along.

:func:`run` is what a Dask worker (or any thread) calls for a job: it keeps one grading process per
thread, restarts it when it dies and gives a job up, with a message for the student, when the job
has ended the grading process :data:`TRIES` times. :func:`stop` (a run stopped half-way) ends every
grading process of this process and lets no new one start until :func:`resume`: the embedded
cluster's workers are threads of the run itself, and one whose grading process was killed would
otherwise start another.
"""

from __future__ import annotations

import os
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grading import sandbox
from grading.cgroups import MemoryCgroup, PidsCgroup, enter, record
from grading.jobs import Job, Result
from grading.sandbox import Limits

TRIES = 3  # a job that ends its grading process this many times is given up
START_SECONDS = 120.0  # for the grading process to import nbgrader and say it is ready
CLOSE_SECONDS = 3.0  # for a grading process asked to end to shut its waiting kernel down
HEADER = struct.Struct(">Q")
MAX_FRAME = 512 << 20  # a result: two notebooks and their pages at most, each capped well below
READY = b"ready"
ROOT_ENV = "CNN_GRADE_ROOT"  # where grading processes make their folders (a remote worker's setting)
ROOT: str | None = None  # the same for this process (set by make grade for its embedded cluster: use_root)
SHARED_FONTS = "--shared-fonts"  # argument of a grading process told the font list comes with its limits


class Stopping(RuntimeError):
    """The run is stopping: no grading process starts any more."""


class Died(RuntimeError):
    """The grading process ended (killed, out of memory) or ran past the job's deadline."""

    def __init__(self, why: str, log: str = ""):
        super().__init__(why)
        self.log = log  # the end of the grading process's own log, for the instructor


def write_frame(stream, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exactly(fd: int, size: int, deadline: float) -> bytes:
    chunks, left = [], size
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], min(wait, 86400.0))[0]:
            if wait <= 86400.0:
                raise TimeoutError
            continue
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float = float("inf")) -> bytes:
    """One frame from the file descriptor ``fd``; EOFError when it closed, TimeoutError past ``deadline``."""
    (size,) = HEADER.unpack(_read_exactly(fd, HEADER.size, deadline))
    if size > MAX_FRAME:
        raise EOFError(f"a frame of {size} bytes")
    return _read_exactly(fd, size, deadline)


def server_env() -> dict:
    """The grading process's environment: nbgrader's, without the course gradebook's URL (a job grades
    into its private copy; the URL may hold a password)."""
    from grading.db import ENV
    from grading.worker import nbgrader_env

    env = nbgrader_env({"NBFORMAT_VALIDATOR": "fastjsonschema"})
    env.pop(ENV, None)
    return env


def memory_folder() -> str | None:
    """``/dev/shm`` where it is a writable tmpfs (a job's private gradebook commits without fsync,
    its files never touch the disk; the pages count against the grading process's memory cgroup),
    else None (the system's temporary folder)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


class GradingProcess:
    """One confined ``python -m grading.server``, started and waited for."""

    def __init__(self, limits: Limits):
        self.limits = limits
        where = ROOT or os.environ.get(ROOT_ENV) or memory_folder()
        self.root = Path(tempfile.mkdtemp(prefix="cnn-grader-", dir=where))
        runtime = self.root / "runtime"
        runtime.mkdir()
        self.group = MemoryCgroup.create(limits.grader_memory) if limits.sandbox else None
        # uncapped: the kernels' pids cgroups are made below it, so none outlives a killed grading process
        self.counted = PidsCgroup.create(None) if limits.sandbox else None
        prefix: list[str] = []
        if limits.sandbox:
            backstop = [] if self.group else [sandbox.PRLIMIT,
                                              f"--as={max(limits.memory, 2 * limits.grader_memory)}"]
            groups = [g for g in (self.group, self.counted) if g]
            record(groups, self.root)  # for the run to remove should this process's worker be killed
            prefix = enter(groups) + sandbox.runtime_wrapper(runtime, limits) + backstop
        self.log = open(self.root / "server.log", "wb")
        self.closing = threading.Lock()
        self.closed = False
        self.process = None
        fonts = _fonts is not None  # this run's font list, shared by its grading processes (embedded cluster)
        with _lock:  # registered as it starts: stop() ends it even before it is ready
            if not _stopping.is_set():
                self.process = subprocess.Popen(
                    [*prefix, sys.executable, "-m", "grading.server", str(self.root / "jobs"), str(runtime),
                     *([SHARED_FONTS] if fonts else [])],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                    env=server_env(),
                    start_new_session=True, cwd="/")
                _all.append(self)
        if self.process is None:
            self.close()
            raise Stopping("the run is stopping")
        try:
            if read_frame(self.process.stdout.fileno(), time.monotonic() + START_SECONDS) != READY:
                raise EOFError
            # it starts its zygote at once (the font list has been built meanwhile)
            write_frame(self.process.stdin, pickle.dumps((limits, shared_fonts() if fonts else None)))
        except (EOFError, TimeoutError, OSError, ValueError):  # ValueError: closed by stop()
            why = self.log_tail()
            self.close()
            raise RuntimeError(f"the grading process did not start: {why}") from None

    def log_tail(self) -> str:
        """The end of its log ("" once closed)."""
        try:
            self.log.flush()
            return (self.root / "server.log").read_bytes()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def grade(self, job: Job) -> Result:
        """Grade ``job``; :class:`Died` when the process ended or ran past the job's hard deadline."""
        hard = job.limits.notebook_seconds * max(1, len(job.notebooks)) + 120
        try:
            write_frame(self.process.stdin, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            return pickle.loads(read_frame(self.process.stdout.fileno(), time.monotonic() + hard))
        except TimeoutError:
            log = self.log_tail()
            self.close(ask=False)
            raise Died(f"it ran past the hard limit of {hard:.0f} s", log) from None
        except (EOFError, OSError, ValueError):  # ValueError: its pipes closed by stop()
            oom, log = (self.group.oom_kills() if self.group else 0), self.log_tail()
            self.close()
            raise Died("out of memory" if oom else "the grading process ended", log) from None

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, ask: bool = True) -> None:
        """End the process and its kernels; remove its cgroups and folders.

        A healthy process is asked first (``ask``) (its input closed: it shuts the next job's kernel down and
        removes that slot's cgroups); one that has not ended within :data:`CLOSE_SECONDS` is killed
        with its process group, and the cgroups left below its own are removed with them. Safe to call
        again, and from another thread (:func:`stop`)."""
        with self.closing:
            if self.closed:
                return
            self.closed = True
            if self.process is not None:
                self._end(ask)
            try:
                self.log.close()
            except OSError:
                pass
            for group in (self.group, self.counted):
                if group:
                    group.remove()
            shutil.rmtree(self.root, ignore_errors=True)
        with _lock:
            if self in _all:
                _all.remove(self)

    def _end(self, ask: bool) -> None:
        try:
            self.process.stdin.close()
            if ask:
                self.process.wait(CLOSE_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        try:
            self.process.stdout.close()
        except OSError:
            pass


_local = threading.local()
_all: list[GradingProcess] = []  # started by this process and not closed yet
_lock = threading.Lock()  # over _all and _stopping
_stopping = threading.Event()
_fonts = None  # FontList | None: the kernels' font list of this process's grading processes (use_root)


def use_root(folder: str | None) -> None:
    """Grading processes of this process make their folders in ``folder`` (None: ``$CNN_GRADE_ROOT``,
    else :func:`memory_folder`), and share one font list built there now, in the background
    (:class:`grading.fonts.FontList`: about a CPU-second each grading process would spend)."""
    global ROOT, _fonts
    from grading.fonts import FontList

    ROOT = folder
    _fonts = FontList(Path(tempfile.mkdtemp(prefix="fonts-", dir=folder)) / "matplotlib",
                      sandbox.kernel_env()) if folder else None


def shared_fonts() -> Path | None:
    """The font list shared by this process's grading processes (waiting until it is built); None where
    there is none (each grading process builds its own) or it could not be built (each kernel does)."""
    fonts = _fonts
    return fonts.path() if fonts is not None else None


def process_for(limits: Limits) -> GradingProcess:
    """This thread's grading process for ``limits`` (started, or restarted when it died)."""
    current = getattr(_local, "process", None)
    if current is not None and (current.limits != limits or not current.alive()):
        current.close()
        current = None
    if current is None:
        current = _local.process = GradingProcess(limits)
    return current


def close_all(ask: bool = True) -> None:
    """End every grading process this process started (at the end of a run)."""
    with _lock:
        started = list(_all)
    closing = [threading.Thread(target=process.close, args=(ask,)) for process in started]  # each may wait
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join()


def stop() -> None:
    """A run stops half-way: kill every grading process of this process (with its kernels), and start
    none until :func:`resume` (a job of a worker thread whose grading process this kills gets a zero
    nobody reads)."""
    with _lock:
        _stopping.set()
    close_all(ask=False)


def resume() -> None:
    """Grading processes may start again (a new run in this process)."""
    _stopping.clear()


def warm_up(limits: Limits) -> str:
    """Start this thread's grading process ahead of the first job (while the parent builds the gradebook)."""
    return process_for(limits).root.name


def run(job: Job) -> Result:
    """Grade ``job`` in this thread's grading process; a job that ends it :data:`TRIES` times is given up."""
    deaths, logs = [], []
    for _ in range(TRIES):
        try:
            return process_for(job.limits).grade(job)
        except Stopping:
            return Result(job.student, job.assignment, failed=True, messages=["the run was stopped"])
        except Died as why:
            deaths.append(str(why))
            logs.append(why.log)
    result = Result(job.student, job.assignment, worker=socket.gethostname(), log="\n---\n".join(logs))
    why = "; ".join(dict.fromkeys(deaths))
    result.messages.append(f"The submission could not be graded: grading it ended the grading process "
                           f"{TRIES} times ({why}); it was given up and scores 0.")
    return result


def serve(root: Path, runtime: Path, shared_fonts: bool = False) -> None:
    """The loop of the grading process (this module run as a program). ``shared_fonts``: the kernels'
    font list comes with the limits (built once by the run), else this process builds its own."""
    from grading.fonts import FontList

    own = None if shared_fonts else FontList(root / "matplotlib", sandbox.kernel_env())  # built meanwhile
    fonts: Path | None = None
    sandbox.compile_library()
    import nbgrader.converters  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401

    from grading import speedups

    speedups.install()

    from grading import zygote
    from grading.slot import Slot
    from grading.worker import grade_job  # nbgrader, nbconvert, the checker: imported once, here

    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by accident goes to the log, never into the frames
    write_frame(replies, READY)
    requests = sys.stdin.buffer.fileno()
    name = f"{socket.gethostname()}:{os.getpid()}"
    numbers = iter(range(1, sys.maxsize))
    current: zygote.Zygote | None = None  # forks this process's kernels, one per job

    def zygote_for(limits: Limits) -> zygote.Zygote:
        nonlocal current
        if current is not None and (current.limits != limits or not current.alive()):
            current.close()
            current = None
        if current is None:
            name = f"zygote-{next(numbers)}"
            current = zygote.start(root / name, runtime / name, limits, own.path() if own else fonts)
        return current

    try:
        while True:
            try:
                job = pickle.loads(read_frame(requests))
            except EOFError:
                return
            if isinstance(job, tuple):  # sent at the start: the zygote imports before the first job comes
                limits, fonts = job
                if limits.sandbox:
                    zygote_for(limits)
                continue
            number = next(numbers)
            folder, private = root / f"{number:05d}", runtime / f"{number:05d}"
            slot = Slot(folder, private, job.limits, zygote_for(job.limits) if job.limits.sandbox else None)
            result = grade_job(job, slot)
            result.worker = name
            write_frame(replies, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        if current is not None:
            current.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), SHARED_FONTS in sys.argv[3:])
