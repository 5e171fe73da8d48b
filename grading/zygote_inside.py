"""The zygote's program: it runs inside the sandbox, as the student, and forks one kernel at a time.

Sent as text to ``python -P -c SOURCE PRELOAD`` (:mod:`grading.zygote`); only the standard library
and what the kernels import are on its path. It imports once what every kernel needs (``PRELOAD``:
NumPy, matplotlib's pyplot, ``cnnlib``; ipykernel and IPython), then answers one JSON line per request on its
standard input, one JSON line per event on its standard output:

- ``{"fork": argv}``: a fresh process is forked from this one; it copies the submission's files
  into the home folder and runs ``ipykernel`` with ``argv``. Answer ``{"started": pid}``.
- ``{"kill": true}``: the kernel and everything it started are killed.
- When the kernel has ended (by itself, or killed), every process left in the sandbox is killed
  and reaped, the writable folders are emptied and System V IPC objects removed, and only then
  ``{"exited": code}`` is sent (POSIX message queues and key rings, which outlive processes too,
  are refused by the sandbox's seccomp filter, :mod:`grading.seccomp`). Nothing a kernel leaves
  behind reaches the next one; if the
  folders cannot be emptied, the zygote exits instead (and the grader starts a new sandbox).
- End of input: everything is killed and the zygote exits.

The zygote is the sandbox's process 1: no process inside can kill or stop it (only signals it
handles reach it, and it handles none), and anything a kernel leaves running is reparented to it,
so it can wait until all of it is dead. It is not dumpable: a kernel, which runs as the same user,
cannot ptrace it, or read or write its memory through ``/proc``. A kernel is never reused: each
one is a new process, started from the zygote's state before any submission ran.
"""

import ctypes
import json
import os
import select
import shutil
import signal
import sys

HOME, SUBMISSION = "/home/student", "/tmp/.submission"
WRITABLE = (HOME, "/tmp", "/dev/shm")  # the sandbox's tmpfs folders (the grader empties its own binds)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
IPC_RMID = 0

libc = ctypes.CDLL(None, use_errno=True)


class Channel:
    """The grader's requests and the zygote's events: its standard input and output, moved to
    descriptors of their own (which a kernel closes first thing); 0 and 1 become /dev/null and the log."""

    def __init__(self):
        self.replies = os.fdopen(os.dup(1), "w", buffering=1)
        self.requests = os.dup(0)
        self.pending = b""
        os.dup2(os.open(os.devnull, os.O_RDWR), 0)
        os.dup2(2, 1)  # anything printed goes to the grader's log, never into the events

    def fds(self) -> tuple:
        return self.replies.fileno(), self.requests

    def send(self, **event) -> None:
        self.replies.write(json.dumps(event) + "\n")

    def waiting(self) -> bool:
        """A request was read already (select cannot see it)."""
        return b"\n" in self.pending

    def read(self):
        """The next request, or None at the end of input (read unbuffered: select must see what is left)."""
        while b"\n" not in self.pending:
            chunk = os.read(self.requests, 65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)


def prepare(preload: str) -> None:
    """Protect this process, then import what every kernel needs (``preload``: the course's imports)."""
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # bubblewrap's end is ours (and the sandbox's)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as process 1, only signals it handles reach it from inside
    sys.modules["debugpy"] = None  # ipykernel's debugger (0.2 s of imports a kernel) is not offered
    exec(preload, {})
    import sqlite3  # noqa: F401  (IPython's history, kept in memory)

    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401
    import IPython.core.debugger  # noqa: F401


def copy_in() -> None:
    """The submission's own regular files into the home folder (links are not followed)."""
    for name in os.listdir(SUBMISSION):
        source = os.path.join(SUBMISSION, name)
        if os.path.isfile(source) and not os.path.islink(source):
            shutil.copyfile(source, os.path.join(HOME, name))


def kernel(argv: list, channel: Channel) -> None:
    """In the forked process: run ipykernel as ``python -m ipykernel_launcher argv`` would; never returns."""
    code = 1
    try:
        for fd in channel.fds():
            os.close(fd)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # as any process: the zygote's own stays off
        for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        os.setsid()
        copy_in()
        import numpy

        numpy.random.seed()  # noqa: NPY002  (the legacy global state, as in a fresh process: not the zygote's)
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def kill_all() -> None:
    """Kill every process of the sandbox but this one (process 1: all are its descendants); reap them."""
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def remove_tree(path: str) -> None:
    """Remove the folder ``path`` and everything in it, however deep (a kernel can nest folders far past
    the path length limit, Python's recursion limit and its open-file limit) and however locked (the
    kernel, the same user, may have taken its own permissions away). It goes down and up with
    ``chdir``, holding only the names on the way down; mount points are left alone."""
    def enter(name: str) -> None:
        try:
            os.chmod(name, 0o700)
        except OSError:
            pass
        os.chdir(name)

    os.chdir(os.path.dirname(path))
    names = [os.path.basename(path)]
    try:
        enter(names[0])
        while names:  # here: the folder names[-1]
            below = None
            with os.scandir(".") as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.name)
                    elif os.stat(entry.name, follow_symlinks=False).st_dev == os.stat(".").st_dev:
                        below = entry.name
                        break
            if below is not None:
                enter(below)
                names.append(below)
            else:
                os.chdir("..")
                os.rmdir(names.pop())
    finally:
        os.chdir("/")  # a kernel is forked with the zygote's folder


def empty(folder: str) -> None:
    """Remove everything in ``folder`` except mount points (the grader's read-only binds)."""
    try:
        os.chmod(folder, 0o1777)
    except OSError:
        pass
    for entry in os.scandir(folder):
        path = entry.path
        if os.path.ismount(path):
            continue
        if entry.is_dir(follow_symlinks=False):
            try:
                os.chmod(path, 0o700)
            except OSError:
                pass
            if any(os.path.ismount(os.path.join(path, name)) for name in os.listdir(path)):
                empty(path)
            else:
                remove_tree(path)
        else:
            os.unlink(path)


def leftovers(folder: str) -> list:
    """What is in ``folder`` that is not a mount point or a folder holding one."""
    found = []
    for entry in os.scandir(folder):
        if os.path.ismount(entry.path):
            continue
        if entry.is_dir(follow_symlinks=False) and any(
                os.path.ismount(os.path.join(entry.path, n)) for n in os.listdir(entry.path)):
            found += leftovers(entry.path)
        else:
            found.append(entry.path)
    return found


def remove_ipc() -> None:
    """Remove the System V shared memory, semaphores and message queues of this IPC namespace."""
    for kind, remove in (("shm", lambda i: libc.shmctl(i, IPC_RMID, None)),
                         ("sem", lambda i: libc.semctl(i, 0, IPC_RMID)),
                         ("msg", lambda i: libc.msgctl(i, IPC_RMID, None))):
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            remove(int(line.split()[1]))


def clean() -> None:
    """After a kernel (and before the first: what the imports wrote): nothing of it runs, and nothing
    it wrote is left for the next one."""
    kill_all()
    remove_ipc()
    for folder in WRITABLE:
        empty(folder)
    left = [path for folder in WRITABLE for path in leftovers(folder)]
    if left:
        sys.stderr.write(f"zygote: could not empty {left[:5]}; exiting\n")
        sys.exit(3)


def serve(channel: Channel) -> None:
    if len(os.listdir("/proc/self/task")) != 1:  # a fork copies only the calling thread
        sys.exit("zygote: a thread was started while importing; cannot fork safely")
    clean()
    channel.send(ready=True)
    while True:
        request = channel.read()
        if request is None:
            return
        if "fork" not in request:
            continue
        child = os.fork()
        if child == 0:
            kernel(request["fork"], channel)
        channel.send(started=child)
        watch = os.pidfd_open(child)
        code = None
        while code is None:
            ready = [channel.requests] if channel.waiting() else select.select(
                [channel.requests, watch], [], [])[0]
            if watch not in ready:
                request = channel.read()
                if request is not None and "kill" not in request:
                    continue
                os.kill(child, signal.SIGKILL)  # killed, or the grader is gone
            _, status = os.waitpid(child, 0)
            code = os.waitstatus_to_exitcode(status)
        os.close(watch)
        clean()
        channel.send(exited=code)


if __name__ == "__main__":  # python -P -c SOURCE PRELOAD, in the sandbox
    events = Channel()
    prepare(sys.argv[1])
    try:
        serve(events)
    finally:
        kill_all()
