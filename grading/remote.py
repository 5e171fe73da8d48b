"""Test cells run by the grader, outside the student's kernel: only the student's functions run inside.

A test cell is instructor code (taken from the gradebook, never from the submission), e.g.::

    grader.check("corr2d", corr2d, grader.randn(4, 4, seed=1), grader.randn(2, 2, seed=2))

:func:`run_test_cell` executes it here, in the grading process, with ``grader`` bound to a
:class:`cnnlib.testing.Checker` whose ``call`` (:func:`remote_call`, the one place a check calls
the student's function) sends the frozen arguments to the kernel and turns the answer back into
an :class:`cnnlib.testing.Outcome`. Every other step,
the reference answer, the comparison, the diagnosis of the mistake, the timing, runs here. A name
the cell does not define (``corr2d``) is a :class:`Remote` function of the notebook; calling one
directly (``assert corr2d(x, k).shape == (3, 3)``) is a plain remote call, also judged here.

So nothing a notebook does to its own kernel (replaced ``np.testing`` functions, an input
transformer that blanks or rewrites cells, a result object equal to everything) changes what
these comparisons see: the kernel can only send back data (see :mod:`grading.portable`), and
data is right or wrong on its own.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cnnlib.data  # noqa: F401  (the case study's checks look these up in sys.modules)
import cnnlib.nn  # noqa: F401
import cnnlib.optim  # noqa: F401
from cnnlib.testing import Checker, GradingError, Outcome
from grading import portable
from grading.sandbox import give_to_kernel

KERNEL_SOURCE = Path(__file__).with_name("kernel_side.py")
PORTABLE_SOURCE = Path(__file__).with_name("portable.py")
COMM_TARGET = "cnn-grading"  # the comm the grader's calls arrive on, one comm message each

Call = Callable[[dict], "dict | None"]  # request -> the kernel's decoded reply ({"no_answer": why} if none)


def setup_code() -> str:
    """The cell that installs the kernel's half (:mod:`grading.kernel_side`) as the handler of the
    :data:`COMM_TARGET` comm: a comm message ``{"folder"}`` starts :func:`grading.kernel_side.serve_loop`,
    which answers the calls of one test cell, each announced on a FIFO (a cell per call cost about
    5 ms of the kernel's CPU, a comm message about 2.4 ms: ipykernel passes each message through
    three threads); whatever it raises is shown as an error output of that message."""
    return (
        "def __cnn_grading_setup__(portable_source, server_source):\n"
        "    import types\n"
        "    from IPython import get_ipython\n"
        "    portable = types.ModuleType('cnn_grading_portable')\n"
        "    exec(compile(portable_source, 'grading/portable.py', 'exec'), portable.__dict__)\n"
        "    server = types.ModuleType('cnn_grading_server')\n"
        "    server.portable = portable\n"
        "    exec(compile(server_source, 'grading/kernel_side.py', 'exec'), server.__dict__)\n"
        "    shell = get_ipython()\n"
        "    def on_msg(msg):\n"
        "        try:\n"
        "            server.serve_loop(msg['content']['data']['folder'])\n"
        "        except BaseException:\n"
        "            shell.showtraceback()\n"
        "    shell.kernel.comm_manager.register_target(\n"
        f"        {COMM_TARGET!r}, lambda comm, _: comm.on_msg(on_msg))\n"
        f"__cnn_grading_setup__({PORTABLE_SOURCE.read_text()!r}, {KERNEL_SOURCE.read_text()!r})\n"
        "del __cnn_grading_setup__\n")


class Mailbox:
    """A folder the kernel can reach (inside its runtime folder) for requests and replies.

    The kernel can write there too, so this side never follows a link: the folder is held open
    by descriptor, requests are created exclusively, replies must be regular files under a size
    limit. Large arguments (a batch of images) travel here instead of inside the code sent to the
    kernel, which IPython would have to parse.
    """

    def __init__(self, parent: str):
        self.path = tempfile.mkdtemp(prefix="grading-", dir=parent)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        give_to_kernel(self.path, self.fd)
        self.count = 0
        # made and opened before the kernel starts, so nothing can stand in for them; each end is held
        # open for reading and writing here, so neither side's open or read waits for the other
        self.requests, self.replies = (self._fifo(name) for name in ("requests", "replies"))
        self.pending = b""

    def _fifo(self, name: str) -> int:
        os.mkfifo(name, 0o600, dir_fd=self.fd)
        fd = os.open(name, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=self.fd)
        give_to_kernel("", fd)
        return fd

    def ask(self, number: int) -> bool:
        """Announce request ``number`` to the kernel's loop; False when the FIFO is full (it is not
        reading)."""
        try:
            return os.write(self.requests, b"%d\n" % number) > 0
        except BlockingIOError:
            return False

    def end_loop(self) -> None:
        """Tell the kernel's loop to return (its test cell is over)."""
        try:
            os.write(self.requests, b"end\n")
        except BlockingIOError:
            pass

    def answered(self, number: int) -> bool:
        """Whether the kernel announced its reply to ``number`` (reading what it wrote so far, without
        waiting; other numbers and anything past a short line are dropped)."""
        for _ in range(16):  # a kernel writing without end does not hold this side here
            try:
                chunk = os.read(self.replies, 4096)
            except BlockingIOError:
                return False
            lines = (self.pending + chunk).split(b"\n")
            self.pending = lines.pop()[-64:]
            if b"%d" % number in lines:
                return True
        return False

    def post(self, data: bytes) -> int:
        """Write a request; its number."""
        self.count += 1
        fd = os.open(f"request-{self.count}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                     dir_fd=self.fd)
        with os.fdopen(fd, "wb") as handle:
            give_to_kernel("", handle.fileno())
            handle.write(data)
        return self.count

    def collect(self, number: int, limit: int) -> bytes | None:
        """The reply to request ``number``, None when there is none; WireError when it is not a file."""
        try:
            fd = os.open(f"reply-{number}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.fd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                raise portable.WireError(f"the reply is not a file of at most {limit} bytes")
            data = handle.read(limit + 1)
        for name in (f"request-{number}", f"reply-{number}"):
            try:
                os.unlink(name, dir_fd=self.fd)
            except OSError:
                pass
        return data

    def close(self) -> None:
        for fd in (self.requests, self.replies, self.fd):
            os.close(fd)
        shutil.rmtree(self.path, ignore_errors=True)


def no_answer(name: str, said: str = "") -> str:
    return (f"the grader called {name} in your notebook's kernel and got no answer: something in the "
            "notebook blocked or rewrote the call (an input transformer, a replaced display or "
            "print?). Graded notebooks must leave the way the kernel runs code alone."
            + (f" The kernel said: {said}" if said else ""))


def rebuild_error(info) -> BaseException | None:
    """An exception of the kernel's exception class name, derived from the nearest builtin one."""
    if info is None:
        return None
    names = [n for n in info.get("names", []) if n.__class__ is str] or ["Exception"]
    base = Exception
    for name in names:
        candidate = getattr(builtins, name, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseException):
            base = candidate
            break
    kind = base if names[0] == base.__name__ or not names[0].isidentifier() else type(names[0], (base,), {})
    return kind(str(info.get("message", "")))


class Remote:
    """A function of the student's notebook, called in the student's kernel."""

    def __init__(self, name: str, call: Call):
        self.name, self._call = name, call

    def __repr__(self) -> str:
        return f"<notebook function {self.name}>"

    def request(self, spec: str | None, args: tuple, kwargs: dict) -> dict:
        reply = self._call({"function": self.name, "spec": spec, "args": args, "kwargs": kwargs})
        if reply is None or reply.__class__ is not dict or "no_answer" in reply:
            raise AssertionError(no_answer(self.name, str((reply or {}).get("no_answer", ""))))
        if reply.get("missing"):
            raise NameError(f"name {self.name!r} is not defined")
        return reply

    def __call__(self, *args, **kwargs):
        reply = self.request(None, args, kwargs)
        error = rebuild_error(reply.get("error"))
        if error is not None:
            raise error
        return reply.get("value")


def remote_call(name, function, frozen_args, frozen_kwargs) -> Outcome:
    """The trusted checker's ``call``: run the student's function in the kernel, judge here."""
    __tracebackhide__ = True
    if not isinstance(function, Remote):
        raise GradingError(f"{name}: not a function of your notebook")
    start = time.perf_counter()
    try:
        reply = function.request(name, frozen_args, frozen_kwargs)
    except AssertionError as error:
        raise GradingError(str(error)) from None
    seconds = time.perf_counter() - start  # measured here, round trip included
    if "refused" in reply:
        raise GradingError(str(reply["refused"]))
    outcome = Outcome(reply.get("value"), rebuild_error(reply.get("error")), seconds)
    returned = reply.get("objects") or []
    handed = [value for kind, value in frozen_args if kind == "object"]
    for original, new in zip(handed, returned):  # the model and optimiser as the call left them
        if type(new) is type(original) and hasattr(original, "__dict__"):
            original.__dict__.clear()
            original.__dict__.update(new.__dict__)
    return outcome


SECRET = os.urandom(32)  # this run's: hidden tests' seeds and the speed check's positions


class _Namespace(dict):
    """The test cell's globals: names it does not define are the notebook's functions."""

    def __init__(self, call: Call):
        super().__init__(__builtins__=builtins, __name__="__test_cell__")
        self._call = call

    def __missing__(self, key):
        if key in builtins.__dict__:
            raise KeyError(key)
        value = self[key] = Remote(key, self._call)
        return value


def run_test_cell(source: str, call: Call) -> BaseException | None:
    """Run a test cell's code here; the exception that failed it, or None when it passed.

    ``grader`` is the trusted checker (:class:`cnnlib.testing.Checker` calling the kernel, with
    this run's secret), also when the cell imports ``grader`` itself. Statements run one at a
    time; those between the hidden-test markers draw their seeds from the secret.
    """
    namespace = _Namespace(call)
    trusted = Checker(call=remote_call, secret=SECRET)
    dict.__setitem__(namespace, "grader", trusted)
    hidden = hidden_lines(source)
    try:
        tree = ast.parse(source)
        for statement in tree.body:
            code = compile(ast.Module([statement], []), "<test cell>", "exec")
            with trusted.hidden_tests() if statement.lineno in hidden else contextlib.nullcontext():
                exec(code, namespace)
            if dict.get(namespace, "grader") is not trusted:  # `from cnnlib.testing import grader`
                dict.__setitem__(namespace, "grader", trusted)
    except BaseException as error:  # a failed check, or anything the cell raised
        return error
    return None


def hidden_lines(source: str) -> set[int]:
    """The line numbers between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``."""
    lines, inside = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        marker = line.strip()
        inside = (inside or marker == "### BEGIN HIDDEN TESTS") and marker != "### END HIDDEN TESTS"
        if inside:
            lines.add(number)
    return lines
