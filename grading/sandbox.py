"""The sandbox a student's kernel runs in: bubblewrap on an allowlist, unprivileged, with limits.

:func:`bwrap_argv` is the command line. Grading runs the zygote of :mod:`grading.zygote` in it,
which forks each kernel inside (same sandbox, same limits); with its default arguments it runs
``ipykernel_launcher`` itself (a kernel on its own, as the sandbox's tests probe it):

- **Allowlist file system.** The root is an empty read-only tmpfs; only ``/usr`` (with the
  ``/bin``, ``/lib`` links), the Python installation (the venv and its base interpreter), the
  grader's ``cnnlib`` package (at ``/opt/course/cnnlib``, first on ``PYTHONPATH``) and a
  synthetic ``/etc`` (``ld.so.cache``, ``fonts``, a ``passwd``/``group`` naming only the
  student) are bound in, read-only. Writable: ``/home/student``, ``/tmp`` and ``/dev/shm``, each
  a tmpfs of a fixed size, and the runtime folder for the IPC sockets and the mailbox (itself a
  size-capped tmpfs that only the grading process sees, see :func:`runtime_wrapper`). Nothing
  else of the host: no ``/srv``, ``/home``, ``/root``, ``/var``, course or exchange.
- **Unprivileged.** As root, bwrap keeps only ``CAP_SETUID``/``CAP_SETGID``/``CAP_SETPCAP`` for
  ``setpriv``, which becomes uid/gid 65534 (``nobody``) with no groups, an empty bounding set and
  ``no_new_privs`` before anything of the student's runs; as an ordinary user, bwrap maps the user
  to 65534 in a user namespace of its own. Either way: no capabilities, ``/proc/sys`` read-only
  to it, a minimal ``/dev`` (null, zero, full, random, urandom, tty), no network, its own PID
  namespace (everything it starts dies with it), and a seccomp filter refusing the system calls
  of POSIX message queues and key rings, which outlive every process (:mod:`grading.seccomp`).
- **Limits.** ``prlimit`` on address space, file size, open files and core dumps; the number of
  processes and threads through a ``pids`` cgroup where the machine allows (root ignores
  ``RLIMIT_NPROC``), else ``RLIMIT_NPROC``; memory of all its processes and tmpfs pages through a
  memory cgroup where the machine allows (see :mod:`grading.cgroups`).
- **Clean start.** The kernel starts in ``/`` with Python's ``-P`` (no script folder or current
  folder on ``sys.path``), so files next to the notebook (``ipykernel_launcher.py``, ``numpy.py``,
  an ``ipython_config.py``) cannot replace what it imports; its first line then changes to
  ``/home/student``, where the submission's own files were copied, so relative paths still work.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from grading.cgroups import Cgroup, MemoryCgroup, PidsCgroup, enter, oom_killed  # noqa: F401  (re-exported)
from grading.seccomp import write_filter

BWRAP = "/usr/bin/bwrap"
PRLIMIT = "/usr/bin/prlimit"
SETPRIV = "/usr/bin/setpriv"
KERNEL_NAME = "cnn-sandbox"
HOME = "/home/student"
UID = GID = 65534  # the student inside the sandbox (and, when grading as root, on the host)
REPO = Path(__file__).resolve().parents[1]
LIBRARY = "/opt/course"  # the grader's own cnnlib, read-only, first on the kernel's PYTHONPATH


@dataclass(frozen=True)
class Limits:
    """Per-notebook limits; sizes in bytes, times in seconds."""

    notebook_seconds: float = 600.0
    memory: int = 2 << 30
    processes: int = 64  # processes and threads of the kernel together
    output_bytes: int = 1 << 20
    file_bytes: int = 64 << 20
    scratch_bytes: int = 256 << 20  # each of /home/student, /tmp and /dev/shm
    runtime_bytes: int = 96 << 20  # the runtime folder: sockets and the mailbox (largest reply 64 MB)
    grader_memory: int = 1536 << 20  # the grading process itself (nbgrader and the trusted checks)
    open_files: int = 256
    sandbox: bool = True  # False only to measure the sandbox's overhead


def as_root() -> bool:
    return os.geteuid() == 0


def plain_argv() -> list[str]:
    """The unsandboxed kernel (for measuring the sandbox's overhead only)."""
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.hist_file=:memory:"]


def _real(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


def readonly_paths() -> list[str]:
    """What the kernel needs to read, at the same paths: /usr, the venv, the base Python."""
    return sorted({"/usr", _real(sys.prefix), _real(sys.base_prefix)}, key=len)


def _ancestors(paths: list[str]) -> list[str]:
    found = set()
    for path in paths:
        found.update(str(p) for p in Path(path).parents if str(p) != "/")
    return sorted(found, key=lambda p: (p.count("/"), p))


def write_etc(folder: Path) -> Path:
    """A synthetic ``/etc`` for the sandbox in ``folder``: only the student, root and nobody exist."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(f"root:x:0:0::/:/usr/sbin/nologin\n"
                                   f"student:x:{UID}:{GID}::{HOME}:/bin/sh\n")
    (folder / "group").write_text(f"root:x:0:\nstudent:x:{GID}:\n")
    (folder / "hostname").write_text("sandbox\n")
    for name in ("passwd", "group", "hostname"):
        (folder / name).chmod(0o644)
    folder.chmod(0o755)
    return folder


def _filesystem(scratch: Path, runtime: Path, etc: Path, limits: Limits,
                fonts: Path | None = None) -> list[str]:
    """bwrap arguments for the allowlist file system (in mount order); ``fonts``: matplotlib's font
    list (:mod:`grading.fonts`), bound read-only into the kernel's matplotlib folder.

    The writable tmpfs mounts come first, the read-only binds after them: the repository, its venv
    or the runtime folder may lie under ``/tmp`` (a clone in ``mktemp -d``), and a bind made
    before the ``/tmp`` tmpfs would be hidden by it.
    """
    readonly = readonly_paths()
    argv = []
    for folder in _ancestors([HOME]):
        argv += ["--perms", "0755", "--dir", folder]
    for link in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        if os.path.islink(f"/{link}") and os.path.isdir(f"/usr/{link}"):
            argv += ["--symlink", f"usr/{link}", f"/{link}"]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    writable = (HOME, "/tmp", "/dev/shm")
    for path in writable:
        argv += ["--size", str(limits.scratch_bytes), "--perms", "01777", "--tmpfs", path]
    if fonts is not None:
        argv += ["--perms", "01777", "--dir", ENV["MPLCONFIGDIR"],
                 "--ro-bind", str(fonts), f"{ENV['MPLCONFIGDIR']}/{fonts.name}"]
    inside = [p for p in readonly if p != "/usr"] + ["/etc/x", f"{LIBRARY}/cnnlib", _real(runtime)]
    # A bind's folders inside a writable tmpfs (a clone under /tmp) would belong to the student
    # when bwrap maps the grader to 65534: each such tree is a tmpfs of its own, read-only below.
    covers = sorted({_top_below(path, writable) for path in inside} - {None})
    for top in covers:
        argv += ["--size", "65536", "--perms", "0755", "--tmpfs", top]
    for folder in _ancestors(inside):
        if folder not in writable and folder not in covers and folder not in ("/dev", "/proc"):
            argv += ["--perms", "0755", "--dir", folder]
    for path in readonly:
        argv += ["--ro-bind", path, path]
    argv += ["--ro-bind", str(library()), f"{LIBRARY}/cnnlib"]
    for name in ("passwd", "group", "hostname"):
        argv += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    for shared in ("/etc/ld.so.cache", "/etc/fonts"):  # the dynamic linker's cache; fontconfig (matplotlib)
        argv += ["--ro-bind-try", shared, shared]
    argv += ["--ro-bind", _real(scratch), SUBMISSION, "--bind", _real(runtime), _real(runtime)]
    for top in covers:
        argv += ["--remount-ro", top]
    return argv + ["--remount-ro", "/"]


def library() -> Path:
    """The grader's ``cnnlib`` folder, bound read-only into every kernel."""
    return Path(find_spec("cnnlib").origin).resolve().parent


def compile_library() -> None:
    """Write the bytecode of :func:`library` (as the grader): a kernel may not write it, so without it
    every kernel compiles each module of ``cnnlib`` again as it starts (about 0.1 s of CPU)."""
    import compileall

    compileall.compile_dir(str(library()), quiet=2)


def _top_below(path: str, mounts: tuple[str, ...]) -> str | None:
    """The first folder of ``path`` below one of ``mounts`` (``/tmp/clone`` for ``/tmp/clone/.venv``)."""
    for mount in mounts:
        if path.startswith(mount + "/"):
            return mount + "/" + path[len(mount) + 1:].split("/")[0]
    return None


def _identity() -> tuple[list[str], list[str]]:
    """bwrap's options and the command prefix that make the kernel uid/gid 65534 with no capabilities."""
    if as_root():  # no user namespace (it would map 65534 to root): setpriv becomes nobody instead
        keep = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        become = [SETPRIV, f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--inh-caps=-all",
                  "--bounding-set=-all", "--no-new-privs", "--"]
        return ["--cap-drop", "ALL", *keep], become
    return ["--unshare-user", "--uid", str(UID), "--gid", str(GID), "--cap-drop", "ALL"], []


SECCOMP_FD = 9  # the filter's file (grading.seccomp), opened by the shell that execs bwrap
SUBMISSION = "/tmp/.submission"  # the submission's own files, copied into the tmpfs home at start
COPY_IN = f'cp {SUBMISSION}/* {SUBMISSION}/.[!.]* {HOME}/ 2>/dev/null; exec "$@"'
ENV = {"PYTHONPATH": LIBRARY, "HOME": HOME, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
       "PYTHONNOUSERSITE": "1",
       "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp/.matplotlib",
       "IPYTHONDIR": "/tmp/.ipython", "MPLBACKEND": "agg", "OMP_NUM_THREADS": "1",
       "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NBGRADER_EXECUTION": "autograde"}


# What every notebook of the course imports, imported once by the zygote that forks the kernels (see
# grading.zygote) and left in sys.modules only, not in the student's namespace.
PRELOAD = "import numpy as _n, matplotlib.pyplot as _p, cnnlib.nn as _c; del _n, _p, _c"


def kernel_env() -> dict[str, str]:
    """The kernel's whole environment (bwrap clears the rest)."""
    return {**ENV, "PATH": f"{Path(interpreter()).parent}:/usr/bin:/bin"}


def interpreter() -> str:
    """This Python as the kernel sees it: its folder with links resolved, since the sandbox binds
    real paths (a venv linked in from elsewhere), but not the file itself (a venv's ``python`` is
    a link to the base interpreter; the venv is found from the folder the link is in)."""
    return os.path.join(_real(os.path.dirname(sys.executable)), os.path.basename(sys.executable))


def bwrap_argv(scratch: Path, runtime: Path, etc: Path, limits: Limits,
               groups: list[Cgroup] = (), fonts: Path | None = None,
               python: list[str] | None = None, init: bool = False) -> list[str]:
    """The kernel's command line; ``{connection_file}`` is filled in by jupyter_client.

    ``scratch``: a host folder with the submission's own regular files; the kernel sees a copy of
    them in its size-limited ``/home/student``. ``etc``: from :func:`write_etc`. ``groups``: the
    cgroups (memory, pids) to start it in; without a pids cgroup ``RLIMIT_NPROC`` stands in.
    ``fonts``: matplotlib's font list built for the kernels (:class:`grading.fonts.FontList`), or None.
    ``python``: the interpreter's arguments after ``-P`` (default: ipykernel, as below; the zygote's
    program, :mod:`grading.zygote`). ``init``: the command is the PID namespace's process 1 (the
    zygote: no process inside can kill or stop it), not a child of bubblewrap's.
    """
    options, become = _identity()
    seccomp = write_filter(etc.parent / "seccomp.bpf")  # read by bwrap from fd 9, opened just before it
    argv = enter(list(groups)) + ["/bin/sh", "-c", 'exec 9< "$1" && shift && exec "$@"', "sh", str(seccomp)]
    argv += [BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--seccomp", str(SECCOMP_FD),
             *options]
    if init:
        argv.append("--as-pid-1")
    argv += _filesystem(scratch, runtime, etc, limits, fonts) + ["--chdir", "/", "--clearenv"]
    for key, value in kernel_env().items():
        argv += ["--setenv", key, value]
    nproc = [] if any(isinstance(g, PidsCgroup) for g in groups) else [f"--nproc={limits.processes}"]
    argv += ["--", *become, "/bin/sh", "-c", COPY_IN, "sh", PRLIMIT, f"--as={limits.memory}", *nproc,
             f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--core=0",
             interpreter(), "-P", *(python or IPYKERNEL)]
    return argv


FIRST_LINE = f"import os as _os; _os.chdir({HOME!r}); del _os"  # the kernel's first line: its folder
IPYKERNEL = ["-m", "ipykernel_launcher", "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:",
             "--IPKernelApp.ignore_cwd=True", f"--IPKernelApp.exec_lines={FIRST_LINE}; {PRELOAD}"]


def runtime_wrapper(runtime: Path, limits: Limits) -> list[str]:
    """An argv prefix giving a command (the grading process) a private, size-capped tmpfs at ``runtime``.

    The kernel must be able to write there (its IPC sockets, its answers), so the folder is a
    tmpfs of ``Limits.runtime_bytes`` mounted in a mount namespace of the grading process alone
    (bwrap, in a user namespace when not root); it disappears with that process.
    """
    return [BWRAP, "--dev-bind", "/", "/", "--size", str(limits.runtime_bytes), "--perms", "0700",
            "--tmpfs", _real(runtime), "--die-with-parent", "--"]


def give_to_kernel(path: str, fd: int | None = None) -> None:
    """Let the kernel (uid 65534 when grading as root) use a file or folder the grader made."""
    if as_root():
        if fd is not None:
            os.fchown(fd, UID, GID)
        else:
            os.chown(path, UID, GID)


def write_kernelspec(jupyter_path: Path, argv: list[str], provisioner: dict | None = None) -> Path:
    """Write the wrapping kernelspec under ``jupyter_path/kernels`` (``provisioner``: jupyter_client's
    ``kernel_provisioner`` stanza, see :mod:`grading.zygote`); returns its folder."""
    folder = jupyter_path / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"debugger": False, **({"kernel_provisioner": provisioner} if provisioner else {})}
    spec = {"argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python",
            "interrupt_mode": "message", "env": {}, "metadata": metadata}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return folder
