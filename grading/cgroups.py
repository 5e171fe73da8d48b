"""Control groups of our own for one kernel (memory, process count) or one grading process.

Where the machine lets us create a cgroup (cgroup v1 with the controller mounted under
``/sys/fs/cgroup/<controller>``, or v2 with the controller delegated to us, usually only as root),
a process and everything it starts share one limit: resident memory and tmpfs pages together
(``memory``), or processes and threads together (``pids``: unlike ``RLIMIT_NPROC`` it binds for
root and is not shared with every other process of the same uid on the host). Elsewhere
:meth:`Cgroup.create` returns None and the callers fall back to ``prlimit``.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _parent(controller: str) -> tuple[Path, int] | None:
    """The folder of our own cgroup for ``controller`` and the cgroup version, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return ROOT / controller / path.lstrip("/"), 1
    for line in lines:
        if line.startswith("0::") and (ROOT / "cgroup.controllers").is_file():
            folder = ROOT / line[3:].lstrip("/")
            try:
                if controller in (folder / "cgroup.subtree_control").read_text().split():
                    return folder, 2
            except OSError:
                return None
    return None


def _try_write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError:
        pass


class Cgroup:
    """One cgroup created under ours for one controller, removed (its processes killed) afterwards."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version
        self.procs = path / "cgroup.procs"

    @classmethod
    def create(cls, controller: str, settings: dict[str, str], optional: dict[str, str] | None = None):
        """A new cgroup with ``settings`` written (``optional`` ones where the kernel has them); None
        where the machine does not let us make one."""
        parent = _parent(controller)
        if parent is None:
            return None
        folder, version = parent
        path = folder / f"cnn-grade-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
        except OSError:
            return None
        group = cls(path, version)
        try:
            for name, value in settings.items():
                (path / name).write_text(value)
        except OSError:
            group.remove()
            return None
        for name, value in (optional or {}).items():
            _try_write(path / name, value)
        return group

    def remove(self) -> None:
        """Kill whatever is left in it and in the cgroups below it (the kernels' of a grading process
        that was killed), and remove them all, deepest first."""
        remove_all(self.path)


def remove_all(path: Path) -> None:
    """Kill the processes of the cgroup at ``path`` and of every cgroup below it; remove them all."""
    for folder in sorted(_tree(path), key=lambda f: len(f.parts), reverse=True):
        _remove(folder)


LIST = "cgroups"  # in a grading process's folder: the cgroups it was started in, a path a line


def record(groups: list[Cgroup], folder: Path) -> None:
    """Write the paths of ``groups`` into ``folder`` (see :func:`remove_recorded`)."""
    (folder / LIST).write_text("".join(f"{g.path}\n" for g in groups))


def remove_recorded(folder: Path) -> None:
    """Remove the cgroups recorded in the folders directly below ``folder``, and every cgroup below them:
    a grading process whose worker was killed, or a run stopped by a signal, leaves its own and its
    kernels' behind (nobody is left to remove them). Only our own cgroups are taken."""
    for listing in folder.glob(f"*/{LIST}"):
        try:
            paths = [Path(line) for line in listing.read_text().split()]
        except OSError:
            continue
        for path in paths:
            if path.is_relative_to(ROOT) and path.name.startswith("cnn-grade-") and path.is_dir():
                remove_all(path)


def _tree(path: Path) -> list[Path]:
    """``path`` and every cgroup folder below it."""
    found = [path]
    try:
        found += [sub for child in path.iterdir() if child.is_dir() for sub in _tree(child)]
    except OSError:
        pass
    return found


def _remove(folder: Path) -> None:
    """Kill the processes of one cgroup (no child cgroups left) and remove it; it empties within a few
    tenths of a second of the kill (an exiting process stays in it until its memory is freed)."""
    for _ in range(50):
        try:
            pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            folder.rmdir()
            return
        except OSError:
            time.sleep(0.1)


class MemoryCgroup(Cgroup):
    """Resident memory, page cache and tmpfs pages of a group of processes, capped; no swap past it."""

    @classmethod
    def create(cls, limit: int) -> MemoryCgroup | None:  # type: ignore[override]
        if _parent("memory") is None:
            return None
        if _parent("memory")[1] == 1:
            return super().create("memory", {"memory.limit_in_bytes": str(limit)},
                                  {"memory.memsw.limit_in_bytes": str(limit)})
        return super().create("memory", {"memory.max": str(limit)}, {"memory.swap.max": "0"})

    def oom_kills(self) -> int:
        return oom_killed(str(self.path))


class PidsCgroup(Cgroup):
    """Processes and threads of a group of processes, counted together and capped."""

    @classmethod
    def create(cls, limit: int | None) -> PidsCgroup | None:  # type: ignore[override]
        """Capped at ``limit``; None: not capped (a parent that collects its processes' own cgroups)."""
        return super().create("pids", {"pids.max": "max" if limit is None else str(limit)})


def enter(groups: list[Cgroup]) -> list[str]:
    """An argv prefix that moves the command into ``groups`` before it starts (``[]`` for none)."""
    if not groups:
        return []
    script = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(groups)))
    procs = [str(g.procs) for g in groups]
    return ["/bin/sh", "-c", f'{script} && shift {len(groups)} && exec "$@"', "sh", *procs]


def oom_killed(folder: str) -> int:
    """How many processes the memory cgroup in ``folder`` killed for memory (0 when unknown)."""
    path = Path(folder)
    for name in ("memory.events", "memory.oom_control"):
        try:
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    try:  # older v1 kernels: no oom_kill counter, but failcnt counts hits of the limit
        return int((path / "memory.failcnt").read_text()) and 1
    except (OSError, ValueError):
        return 0
