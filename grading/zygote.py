"""Kernels forked from a sandboxed zygote: a fresh process per submission without importing everything again.

Starting a sandboxed kernel costs about 1.2 CPU-seconds, nearly all of it imports (ipykernel and
IPython, NumPy, matplotlib's pyplot, ``cnnlib``): most of the CPU a solved notebook needs. A
:class:`Zygote` is one sandbox (the same bubblewrap allowlist, user, limits and namespaces as a
kernel's, :func:`grading.sandbox.bwrap_argv`) whose program (:mod:`grading.zygote_inside`)
imports all that once, then forks one kernel per submission, one at a time. After each kernel it
kills and reaps whatever that kernel left running, empties the sandbox's writable folders and
removes System V IPC objects; the grader empties its own two binds (the submission's files and
the runtime folder with the sockets and mailbox). Only then is the next kernel forked, from the
zygote's state before any submission ran. The zygote is the sandbox's process 1 (a kernel cannot
kill or stop it) and cannot be traced or read by a kernel (it is not dumpable); should it end
anyway, the job's kernel ends with it and the next job gets a new zygote.

Jupyter's side: the kernelspec names the :class:`ZygoteProvisioner` (registered under
:data:`PROVISIONER`) with the zygote's id, so every kernel manager made from it, nbclient's and a
rescoring run's alike, forks from that zygote; the kernelspec's ``argv`` is only ipykernel's
arguments and starts nothing by itself.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from importlib.metadata import EntryPoint
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Unicode

from grading import sandbox
from grading.cgroups import MemoryCgroup, PidsCgroup
from grading.intake import remove_tree
from grading.sandbox import KERNEL_NAME, Limits

PROVISIONER = "cnn-zygote"
READY_SECONDS = 60.0  # for the zygote's imports
EXIT_SECONDS = 10.0  # for a kernel killed, and the sandbox cleaned after it
RUNNING: dict[str, Zygote] = {}  # this process's zygotes by id, for the provisioner


class ZygoteGone(RuntimeError):
    """The zygote ended (a kernel killed it, or it could not clean up): start a new one."""


class Zygote:
    """One sandbox whose program forks the kernels, one at a time; ``folder`` is the grader's, ``runtime``
    the folder for the kernels' sockets and mailbox (bound in at the same path)."""

    def __init__(self, folder: Path, runtime: Path, limits: Limits, fonts: Path | None = None):
        self.folder, self.runtime, self.limits = folder, runtime, limits
        self.id = folder.name
        self.submission = folder / "submission"  # the current submission's files, read-only inside
        self.jupyter = folder / "jupyter"
        for path in (self.submission, runtime):
            path.mkdir(parents=True)
        self.submission.chmod(0o755)
        sandbox.give_to_kernel(str(runtime))
        self.groups = [g for g in (MemoryCgroup.create(limits.memory),
                                   PidsCgroup.create(limits.processes + 1)) if g]  # + the zygote
        self.memory = next((str(g.path) for g in self.groups if isinstance(g, MemoryCgroup)), "")
        etc = sandbox.write_etc(folder / "etc")
        source = (Path(__file__).parent / "zygote_inside.py").read_text()
        argv = sandbox.bwrap_argv(self.submission, runtime, etc, limits, self.groups, fonts,
                                  ["-c", source, sandbox.PRELOAD], init=True)
        sandbox.write_kernelspec(self.jupyter, KERNEL_ARGV, {"provisioner_name": PROVISIONER,
                                                             "config": {"zygote": self.id}})
        self.events: queue.Queue = queue.Queue()
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/")
        threading.Thread(target=self._read, daemon=True, name=f"zygote-{self.id}").start()
        self.ready = False
        self.child: ForkedKernel | None = None
        RUNNING[self.id] = self

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                break
        self.events.put(None)

    def _next(self, seconds: float) -> dict:
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            self.close()
            raise ZygoteGone(f"the kernels' zygote did not answer within {seconds:g} s") from None
        if event is None:
            self.process.wait()
            raise ZygoteGone(f"the kernels' zygote ended (exit status {self.process.returncode})")
        return event

    def _send(self, **request) -> None:
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise ZygoteGone("the kernels' zygote ended") from None

    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self, argv: list[str]) -> ForkedKernel:
        """Start a kernel with ipykernel's ``argv``; the previous one must have ended (:meth:`reset`)."""
        if self.child is not None:
            raise RuntimeError("a kernel of this zygote is still running")
        if not self.ready:
            if self._next(READY_SECONDS) != {"ready": True}:
                raise ZygoteGone("the kernels' zygote did not start")
            self.ready = True
        self._send(fork=argv)
        self.child = ForkedKernel(self, self._next(READY_SECONDS)["started"])
        return self.child

    def reset(self) -> None:
        """End the current kernel (if any), wait until the sandbox is clean, and empty the grader's binds."""
        if self.child is not None:
            self.child.kill()
            self.child.wait()
        for folder in (self.submission, self.runtime):
            if not folder.is_dir():  # closed (it ended, or did not clean up in time)
                continue
            for entry in folder.iterdir():  # the kernel could write in the runtime folder: any depth, locked
                remove_tree(entry)
            if any(folder.iterdir()):
                raise ZygoteGone(f"{folder} could not be emptied for the next kernel")

    def close(self) -> None:
        """End the zygote and every kernel; remove its cgroups and folders."""
        RUNNING.pop(self.id, None)
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        for group in self.groups:
            group.remove()
        remove_tree(self.folder)
        remove_tree(self.runtime)


# ipykernel's arguments, as after ``python -m ipykernel_launcher`` (see sandbox.bwrap_argv)
KERNEL_ARGV = ["ipykernel_launcher", "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:",
               "--IPKernelApp.ignore_cwd=True", "--IPKernelApp.parent_handle=1",  # the zygote is process 1
               f"--IPKernelApp.exec_lines={sandbox.FIRST_LINE}"]


def host_pid(outer: int, sandbox_pid: int) -> int | None:
    """The host's pid of the process that is ``sandbox_pid`` in the PID namespace of the sandbox whose
    bwrap is ``outer`` (its ``NSpid`` ends with it), searched among ``outer``'s descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    todo = list(parents.get(outer, []))
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/status") as handle:
                nspid = next((line.split()[1:] for line in handle if line.startswith("NSpid:")), [])
        except OSError:
            continue
        if len(nspid) >= 2 and nspid[-1] == str(sandbox_pid):
            return pid
        todo += parents.get(pid, [])
    return None


class ForkedKernel:
    """The part of :class:`subprocess.Popen` jupyter_client uses, for a kernel forked by the zygote."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid = zygote, pid
        self.returncode: int | None = None
        self._host: int | None = None

    def threads(self) -> int | None:
        """How many threads the kernel runs, read from outside the sandbox (the host's ``/proc``), so
        that nothing in the notebook can change the count; None when it cannot be read."""
        if self._host is None:
            self._host = host_pid(self.zygote.process.pid, self.pid)
        try:
            return len(os.listdir(f"/proc/{self._host}/task")) if self._host else None
        except OSError:
            return None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                event = self.zygote.events.get_nowait()
            except queue.Empty:
                return None
            self._ended(event)
        return self.returncode

    def _ended(self, event: dict | None) -> None:
        self.returncode = event["exited"] if event and "exited" in event else -signal.SIGKILL
        self.zygote.child = None
        if event is None:
            self.zygote.events.put(None)  # the zygote is gone: later readers learn it too

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (EXIT_SECONDS if timeout is None else timeout)
        while self.returncode is None:
            try:
                self._ended(self.zygote.events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                self.zygote.close()  # it did not clean up in time: nothing of it is used again
                self._ended(None)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                self.zygote._send(kill=True)
            except ZygoteGone:
                pass

    terminate = kill

    def send_signal(self, signum: int) -> None:
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.kill()


class ZygoteProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, forking the kernel from the zygote named in the kernelspec."""

    zygote = Unicode("", config=True, help="the id of the zygote in RUNNING")

    async def launch_kernel(self, cmd: list[str], **kwargs):
        zygote = RUNNING.get(self.zygote)
        if zygote is None or not zygote.alive():
            raise ZygoteGone("the kernels' zygote is not running")
        self.process = zygote.fork(cmd[1:])
        self.pid, self.pgid = self.process.pid, None
        self.cwd = "/"
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        if self.process:
            self.process.send_signal(signum)


def register() -> None:
    """Make :class:`ZygoteProvisioner` known to jupyter_client under :data:`PROVISIONER` in this process."""
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    KernelProvisionerFactory.instance().provisioners[PROVISIONER] = EntryPoint(
        PROVISIONER, f"{__name__}:ZygoteProvisioner", "jupyter_client.kernel_provisioners")


def start(folder: Path, runtime: Path, limits: Limits, fonts: Path | None = None) -> Zygote:
    """A zygote for ``limits`` (its imports run in the background: the first fork waits for them)."""
    register()
    return Zygote(folder, runtime, limits, fonts)


__all__ = ["KERNEL_NAME", "ForkedKernel", "Zygote", "ZygoteGone", "ZygoteProvisioner", "start"]
