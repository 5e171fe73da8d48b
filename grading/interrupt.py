"""Ctrl-C and SIGTERM during a grading run: stop cleanly, never in the middle of a merge.

:class:`Stopper` turns SIGINT and SIGTERM into :class:`Interrupted` in the main thread, except
inside ``with stopper.held():`` (a merge), where the signal is remembered and raised when the
block ends. :func:`end_descendants` ends every process this one started (nbgrader subprocesses
run in sessions of their own, and their kernels in sessions of theirs, so a process group is not
enough): SIGTERM, a short grace, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager


class Interrupted(Exception):
    """The run was asked to stop (the signal number in ``args[0]``)."""


class Stopper:
    """Signal handlers for a run; ``held()`` defers them over a critical section."""

    def __init__(self):
        self.pending: int | None = None
        self.depth = 0
        self.previous = {}

    def _handle(self, number, frame):
        if self.depth:
            self.pending = number
        else:
            raise Interrupted(number)

    def __enter__(self):
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        return False

    @contextmanager
    def held(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            raise Interrupted(self.pending)


def children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this one), parents before children."""
    tree, found, queue = children(), [], [pid or os.getpid()]
    while queue:
        for child in tree.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _signal_all(pids: list[int], number: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, number)
        except (ProcessLookupError, PermissionError):
            pass


def end_descendants(grace: float = 3.0) -> int:
    """SIGTERM to every descendant, SIGKILL to those left after ``grace`` seconds; how many there were."""
    pids = descendants()
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p in descendants() for p in pids):
        time.sleep(0.1)
    # the snapshot too: a kernel whose nbgrader died is no longer below this process
    killed = [p for p in pids if is_running(p)] + descendants()
    _signal_all(killed, signal.SIGKILL)
    deadline = time.monotonic() + 10.0  # SIGKILL is not instant: wait until each one is gone
    while time.monotonic() < deadline and any(is_running(p) for p in killed):
        _reap()
        time.sleep(0.05)
    return len(pids)


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie has ended; only its exit status is left)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _reap() -> None:
    """Collect the exit status of this process's ended children, so they leave no zombie."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
