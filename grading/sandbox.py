"""The sandbox a student's kernel runs in: bubblewrap plus resource limits.

The kernel is started through a kernelspec whose argv wraps ``ipykernel_launcher`` in
``bwrap``: the whole file system read-only, the course folder, the repository, ``/tmp`` and the
home folders hidden behind empty tmpfs, only the Python installation, ``cnnlib`` and one scratch
folder (read-write, seen as ``/home/student``) put back; no network, its own PID namespace (the
kernel is PID 1's child, so everything it starts dies with it), and ``prlimit`` limits on
memory (address space), processes, file size and open files. The kernel talks to nbgrader over
IPC sockets in a runtime folder that is also bound in.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
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


def bwrap_argv(course: Path, scratch: Path, runtime: Path, limits: Limits) -> list[str]:
    """The kernel's command line; ``{connection_file}`` is filled in by jupyter_client."""
    argv = [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    hidden = hidden_paths(course)
    for path in hidden:
        argv += ["--size", str(limits.file_bytes), "--tmpfs", path]
    for path in readonly_paths():
        argv += ["--ro-bind", path, path]
    argv += ["--bind", _real(scratch), HOME, "--bind", _real(runtime), _real(runtime)]
    for path in hidden:
        if path not in SCRATCH_TMPFS:
            argv += ["--remount-ro", path]
    argv += ["--chdir", HOME, "--clearenv"]
    env = {"HOME": HOME, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "MPLCONFIGDIR": f"{HOME}/.matplotlib", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "agg",
           "PYTHONDONTWRITEBYTECODE": "1"}
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--", PRLIMIT, f"--as={limits.memory}", f"--nproc={limits.processes}",
             f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--core=0",
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
