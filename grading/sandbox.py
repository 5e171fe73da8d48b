"""The sandbox a student's kernel runs in: bubblewrap plus resource limits.

The kernel is started through a kernelspec whose argv wraps ``ipykernel_launcher`` in
``bwrap``: the whole file system read-only, the course folder, the repository, ``/tmp`` and the
home folders hidden behind empty tmpfs, only the Python installation, ``cnnlib`` and one scratch
folder (read-write, seen as ``/home/student``) put back; no network, its own PID namespace (the
kernel is PID 1's child, so everything it starts dies with it), and ``prlimit`` limits on
memory (address space), processes, file size and open files. The kernel talks to nbgrader over
IPC sockets in a runtime folder that is also bound in.

The scratch folder is a tmpfs of ``Limits.scratch_bytes`` (the submission's data files are copied
in when the kernel starts), so the total written is capped, not only each file. Where the
machine lets us create a memory cgroup (cgroup v1, or v2 with the memory controller delegated),
the kernel and everything it starts share one memory limit (``Limits.memory``: resident memory
and tmpfs pages of all its processes together); the address-space ``prlimit`` stays as a per
process backstop everywhere.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
PRLIMIT = "/usr/bin/prlimit"
KERNEL_NAME = "cnn-sandbox"
HOME = "/home/student"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Limits:
    """Per-notebook limits; sizes in bytes, times in seconds."""

    notebook_seconds: float = 600.0
    memory: int = 2 << 30
    processes: int = 64
    output_bytes: int = 1 << 20
    file_bytes: int = 64 << 20
    scratch_bytes: int = 256 << 20
    open_files: int = 256
    sandbox: bool = True  # False only to measure the sandbox's overhead


def plain_argv() -> list[str]:
    """The unsandboxed kernel (for measuring the sandbox's overhead only)."""
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.hist_file=:memory:"]


def _real(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


SCRATCH_TMPFS = ("/tmp", "/var/tmp", "/dev/shm")  # writable, private, size-limited, gone afterwards


def hidden_paths(course: Path) -> list[str]:
    """Folders replaced by an empty tmpfs inside the sandbox (read-only except SCRATCH_TMPFS)."""
    paths = [REPO, course, Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"),
             Path("/root"), Path("/home"), Path("/run"), Path("/dev/shm")]
    seen: list[str] = []
    for path in paths:
        real = _real(path)
        if Path(real).is_dir() and real not in seen:
            seen.append(real)
    return sorted(seen, key=len)  # parents first, so a later tmpfs does not hide an earlier one


def readonly_paths() -> list[str]:
    """What the kernel needs: the venv, the base Python, cnnlib (an editable install)."""
    cnnlib = Path(find_spec("cnnlib").origin).resolve().parent
    paths = {_real(sys.prefix), _real(sys.base_prefix), str(cnnlib)}
    return sorted(paths, key=len)


SUBMISSION = "/tmp/.submission"  # the submission's data files, copied into the scratch tmpfs at start
COPY_IN = f'cp -R {SUBMISSION}/. {HOME}/ 2>/dev/null; exec "$@"'


def bwrap_argv(course: Path, scratch: Path, runtime: Path, limits: Limits,
               cgroup: MemoryCgroup | None = None) -> list[str]:
    """The kernel's command line; ``{connection_file}`` is filled in by jupyter_client.

    ``scratch``: a host folder with the submission's data files; the kernel sees a copy of them
    in its own size-limited ``/home/student``. ``cgroup``: the memory cgroup to start it in.
    """
    argv = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup.procs)] if cgroup else []
    argv += [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    hidden = hidden_paths(course)
    for path in hidden:
        argv += ["--size", str(limits.file_bytes), "--tmpfs", path]
    for path in readonly_paths():
        argv += ["--ro-bind", path, path]
    argv += ["--size", str(limits.scratch_bytes), "--tmpfs", HOME, "--ro-bind", _real(scratch), SUBMISSION,
             "--bind", _real(runtime), _real(runtime)]
    for path in hidden:
        if path not in SCRATCH_TMPFS:
            argv += ["--remount-ro", path]
    argv += ["--chdir", HOME, "--clearenv"]
    env = {"HOME": HOME, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "MPLCONFIGDIR": f"{HOME}/.matplotlib", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "agg",
           "PYTHONDONTWRITEBYTECODE": "1", "NBGRADER_EXECUTION": "autograde"}
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--", "/bin/sh", "-c", COPY_IN, "sh", PRLIMIT, f"--as={limits.memory}",
             f"--nproc={limits.processes}", f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}",
             "--core=0",
             sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
             "--HistoryManager.hist_file=:memory:"]
    return argv


def write_kernelspec(jupyter_path: Path, argv: list[str]) -> Path:
    """Write the wrapping kernelspec under ``jupyter_path/kernels``; returns its folder."""
    folder = jupyter_path / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python",
            "interrupt_mode": "message", "env": {}, "metadata": {"debugger": False}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return folder


class MemoryCgroup:
    """A memory cgroup of our own for one kernel: created under ours, removed afterwards."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version
        self.procs = path / "cgroup.procs"

    @staticmethod
    def _parent() -> tuple[Path, int] | None:
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                return Path("/sys/fs/cgroup/memory") / path.lstrip("/"), 1
        for line in lines:
            if line.startswith("0::") and Path("/sys/fs/cgroup/cgroup.controllers").is_file():
                return Path("/sys/fs/cgroup") / line[3:].lstrip("/"), 2
        return None

    @classmethod
    def create(cls, limit: int) -> MemoryCgroup | None:
        """A cgroup limited to ``limit`` bytes, or None where the machine does not allow one."""
        parent = cls._parent()
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
            if version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit))
                _try_write(path / "memory.memsw.limit_in_bytes", str(limit))  # no swapping past it
            else:
                (path / "memory.max").write_text(str(limit))
                _try_write(path / "memory.swap.max", "0")
        except OSError:
            group.remove()
            return None
        return group

    def oom_kills(self) -> int:
        return oom_killed(str(self.path))

    def remove(self) -> None:
        """Kill whatever is left in it and remove it."""
        for _ in range(50):
            try:
                pids = [int(p) for p in self.procs.read_text().split()]
            except OSError:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def _try_write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError:
        pass


def oom_killed(folder: str) -> int:
    """How many processes the kernel's memory cgroup killed for memory (0 when unknown)."""
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
