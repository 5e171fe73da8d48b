"""A place for one submission's kernel: the private course folder, and the kernel's sandbox.

A :class:`Slot` is what one job needs: a folder of its own (the private course, Jupyter's and
IPython's configuration) and the kernel's side: the folder with the submission's files, the
runtime folder for the kernel's sockets and mailbox, the kernelspec and the memory cgroup. In a
sandbox these are the grading process's :class:`grading.zygote.Zygote`'s, which forks a fresh
kernel for the job (a kernel is never reused) and is cleaned after it (:meth:`Slot.close`).
Without the sandbox (``Limits.sandbox`` False, only to measure the sandbox's overhead) the slot
has its own folders and a plain kernelspec.
"""

from __future__ import annotations

from pathlib import Path

from grading import sandbox
from grading.intake import remove_tree
from grading.sandbox import Limits
from grading.zygote import Zygote


class Slot:
    """One job's folders; the kernel's come from ``zygote`` (None: a plain, unsandboxed kernel)."""

    def __init__(self, folder: Path, runtime: Path, limits: Limits, zygote: Zygote | None = None):
        self.folder, self.limits, self.zygote = folder, limits, zygote
        folder.mkdir(parents=True)
        if zygote is not None:
            self.scratch, self.runtime, self.jupyter = zygote.submission, zygote.runtime, zygote.jupyter
            self.memory = zygote.memory
            self._own = [folder]
        else:
            self.scratch, self.runtime, self.jupyter = folder / "scratch", runtime, folder / "jupyter"
            for path in (self.scratch, runtime):
                path.mkdir(parents=True)
            sandbox.write_kernelspec(self.jupyter, sandbox.plain_argv())
            self.memory = ""
            self._own = [folder, runtime]

    def close(self) -> None:
        """End the job's kernel if it still runs, clean the sandbox for the next one, remove the folders."""
        if self.zygote is not None:
            try:
                self.zygote.reset()
            except Exception:  # whatever went wrong, it forks nothing more: the next job starts a new one
                self.zygote.close()
        for path in self._own:
            remove_tree(path)
