"""A place for one submission's kernel, and its sandboxed kernel started before the submission arrives.

A :class:`Slot` is what one job's kernel needs: a folder (the private course, the kernel's scratch
folder, its kernelspec and ``/etc``), a runtime folder for its sockets and mailbox, and its memory
and pids cgroups. The grading process (:mod:`grading.server`) makes the next job's slot while it
grades the current one and starts that slot's kernel at once (:meth:`Slot.start`), so the next
submission does not wait for Python, ipykernel and the sandbox to come up. A kernel is never
reused: each slot's kernel serves one submission (whose files it copies in before the first cell,
:data:`grading.execute.COPY_IN`) and is shut down with it.

Kernels are started from one long-lived thread (:data:`STARTER`): bubblewrap's
``--die-with-parent`` is tied to the thread that started it, so a kernel started from a thread
that then ended would be killed at once.
"""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from grading import execute, sandbox
from grading.cgroups import MemoryCgroup, PidsCgroup
from grading.sandbox import KERNEL_NAME, Limits

STARTER = ThreadPoolExecutor(1, thread_name_prefix="kernel-starter")


class Slot:
    """One job's folders, cgroups and kernelspec; optionally its kernel, started ahead."""

    def __init__(self, folder: Path, runtime: Path, limits: Limits, fonts: Path | None = None):
        self.folder, self.runtime, self.limits = folder, runtime, limits
        self.scratch = folder / "scratch"
        self.jupyter = folder / "jupyter"
        for path in (self.scratch, runtime):
            path.mkdir(parents=True)
        self.groups = confine(limits, self.scratch, runtime, folder, fonts)
        self.memory = next((str(g.path) for g in self.groups if isinstance(g, MemoryCgroup)), "")
        self.started: Future | None = None

    def start(self) -> Slot:
        """Start this slot's kernel now, in the background."""
        self.started = STARTER.submit(self._start)
        return self

    def _start(self):
        from jupyter_client import AsyncKernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager(kernel_dirs=[str(self.jupyter / "kernels")])
        km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        execute.prepare(km, str(self.runtime), execute.SandboxExecute.max_reply_bytes.default_value)
        asyncio.run(km.start_kernel(extra_arguments=[]))
        return km

    def take(self):
        """The kernel manager of the kernel started ahead, or None (not started, or it failed to start:
        the job then starts its own the usual way)."""
        started, self.started = self.started, None
        if started is None:
            return None
        try:
            return started.result()
        except Exception:
            return None

    def close(self) -> None:
        """Shut down a kernel nobody took; remove the cgroups and the folders."""
        km = self.take()
        if km is not None:
            discard(km)
        for group in self.groups:
            group.remove()
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


def discard(km) -> None:
    """Shut down a started kernel that was never used."""
    STARTER.submit(asyncio.run, km.shutdown_kernel(now=True)).result()


def confine(limits: Limits, scratch: Path, runtime: Path, folder: Path, fonts: Path | None = None) -> list:
    """Write the kernelspec under ``folder / "jupyter"`` (``fonts``: matplotlib's font list for the
    kernel, see :mod:`grading.fonts`); the kernel's cgroups (memory, pids) where the machine allows,
    to remove afterwards."""
    jupyter = folder / "jupyter"
    if not limits.sandbox:
        sandbox.write_kernelspec(jupyter, sandbox.plain_argv())
        return []
    groups = [g for g in (MemoryCgroup.create(limits.memory), PidsCgroup.create(limits.processes)) if g]
    etc = sandbox.write_etc(folder / "etc")
    sandbox.write_kernelspec(jupyter, sandbox.bwrap_argv(scratch, runtime, etc, limits, groups, fonts))
    scratch.chmod(0o755)  # the kernel's user copies the files from there
    return groups
