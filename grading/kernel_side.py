"""The half of a trusted check that runs in the student's kernel: call the function, send back.

:mod:`grading.remote` sends this file's text to the kernel once per notebook, after
:mod:`grading.portable`'s (bound here as ``portable``). :func:`serve_loop` then runs for each test
cell and answers each call the checker makes, in a child process forked for it when the notebook
started threads (:func:`dispatch`, :func:`serve_alone`): :func:`serve` decodes the request, looks the
student's function up in the notebook's namespace, calls it (for a checker call, through
:func:`cnnlib.testing.call_locally`: the call monitor that refuses cnnlib's layers, torch and
scipy, fresh copies of the inputs, and the check that inputs are left unchanged) and writes the
encoded answer next to the request.

Nothing here is trusted: a notebook can rewrite or block these requests. The grader only
believes values, and compares them itself, outside this kernel.
"""

from __future__ import annotations

import os
import signal

import cnnlib.nn  # noqa: F401  (the classes a request may carry must be importable by name)
import cnnlib.optim  # noqa: F401

if "portable" not in globals():  # in the kernel, the setup code binds grading.portable's source first
    from grading import portable
_MISSING = object()


def describe_error(error: BaseException | None) -> dict | None:
    if error is None:
        return None
    return {"names": [c.__name__ for c in error.__class__.__mro__], "message": str(error)[:4000]}


class ValueCannotTravel:
    """Stands for a result the wire format cannot carry (too deeply nested, too many parts)."""


def answer(request: dict, namespace: dict) -> dict:
    function = namespace.get(request["function"], _MISSING)
    if function is _MISSING:
        return {"missing": True}
    if request["spec"] is None:  # a plain call from a test cell
        try:
            return {"value": function(*request["args"], **request["kwargs"]), "error": None}
        except BaseException as error:  # the student's code may raise anything
            return {"value": None, "error": describe_error(error)}
    from cnnlib.testing import GradingError, call_locally

    args = request["args"]
    try:
        outcome = call_locally(request["spec"], function, args, request["kwargs"])
        reply = {"value": outcome.value, "error": describe_error(outcome.error)}
    except GradingError as error:
        reply = {"refused": str(error)}
    reply["objects"] = [value for kind, value in args if kind == "object"]  # as the call left them
    return reply


def serve_loop(folder: str) -> None:
    """Answer the grader's requests until it writes ``end``: each is a number N and a newline on the
    FIFO ``requests`` in ``folder``; N and a newline go back on the FIFO ``replies`` once ``reply-N``
    is written (or could not be: the error is shown as an output of the message that started this)."""
    from IPython import get_ipython

    shell = get_ipython()
    with open(f"{folder}/requests", "rb", buffering=0) as requests, \
            open(f"{folder}/replies", "wb", buffering=0) as replies:
        pending = b""
        while True:
            chunk = requests.read(4096)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line == b"end":
                    return
                try:
                    dispatch(folder, int(line))
                except BaseException:
                    shell.showtraceback()
                replies.write(line + b"\n")


def dispatch(folder: str, number: int) -> None:
    """Answer request ``number``: in a child of its own when the grader asks for one (``alone``: the
    kernel runs more threads than it did before the notebook's first cell, which the grader counts
    from outside the sandbox), else here (a fork of a kernel with NumPy and matplotlib loaded costs
    about 30 ms, and most notebooks start no thread)."""
    request = read_request(folder, number)
    if request.get("alone", True):
        serve_alone(folder, number, request)
    else:
        serve(folder, number, request)


def serve_alone(folder: str, number: int, request: dict) -> None:
    """:func:`serve` in a child forked for the call: a fork copies only the calling thread, so a
    thread the notebook started in an earlier cell cannot compute the answer for the student's
    function (it would run outside the call monitor, which watches the calling thread and the
    threads started during the call), and nothing the call changes reaches a later call.

    The child's output goes nowhere (ipykernel's streams and display go through threads and ZeroMQ
    sockets that are the parent's alone). A child that dies without a reply gets one written here:
    the error says how it ended."""
    import io
    import sys

    try:
        pid = os.fork()
    except BlockingIOError:  # the notebook's own processes fill the sandbox's process limit
        end_other_processes()
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sys.stdout = sys.stderr = io.StringIO()
            serve(folder, number, request)
            code = 0
        finally:
            os._exit(code)
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:  # the grader interrupts a call past its time
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    if not os.path.exists(f"{folder}/reply-{number}"):
        write_reply(folder, number, {"value": None, "error": describe_error(ended(status))})


def end_other_processes() -> None:
    """End every process of the sandbox but this kernel (and its process 1, which no signal
    reaches), and reap this kernel's own children: a notebook that forked up to the limit (a fork
    bomb sleeping in its children) would otherwise leave no room for the call's child."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except OSError:
            return


def ended(status: int) -> BaseException:
    """What a child that wrote no reply died of, as the error of the call."""
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return MemoryError("the call was killed (SIGKILL), most likely for using more memory than "
                           "the grading allows")
    if os.WIFSIGNALED(status):
        return RuntimeError(f"the call died of signal {signal.Signals(os.WTERMSIG(status)).name}")
    return RuntimeError(f"the call ended its process (exit status {os.WEXITSTATUS(status)}) before "
                        "it answered")


def serve(folder: str, number: int, request: dict) -> None:
    """Answer ``request`` (``request-N`` in ``folder``, decoded): write ``reply-N``."""
    from IPython import get_ipython

    write_reply(folder, number, answer(request, get_ipython().user_ns))


def read_request(folder: str, number: int) -> dict:
    """``request-N`` in ``folder``, decoded."""
    with open(f"{folder}/request-{number}", "rb") as handle:
        return portable.decode(handle.read())


def write_reply(folder: str, number: int, reply: dict) -> None:
    try:
        data = portable.encode(reply)
    except (portable.WireError, RecursionError):
        data = portable.encode({**reply, "value": ValueCannotTravel(), "objects": []})
    with open(f"{folder}/reply-{number}", "wb") as handle:
        handle.write(data)
