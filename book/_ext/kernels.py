"""The book's execution kernels behave the same whoever runs the build.

- Figures: a caller's ``MPLBACKEND`` (``Agg`` is common on servers) is inherited by the kernel
  and replaces the inline backend, so no figure is displayed and every ``{numref}`` to a figure
  is undefined. The build sets the inline backend explicitly for its kernels, and points
  ``MATPLOTLIBRC`` at ``book/_ext/matplotlibrc`` (opaque white figures, legible in dark mode)
  instead of the caller's own matplotlib settings.
- Transport: kernels talk to the build over IPC sockets in Jupyter's runtime folder (as
  ``make grade``'s kernels do) instead of TCP on localhost, which each kernel reports with a
  warning ("Kernel is running over TCP without encryption") in the build log.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

INLINE = "module://matplotlib_inline.backend_inline"
RCFILE = Path(__file__).resolve().parent / "matplotlibrc"


def _ipc_kernel_managers() -> None:
    """Every kernel nbclient starts in this process uses IPC sockets with absolute paths."""
    from jupyter_core.paths import jupyter_runtime_dir
    from nbclient import NotebookClient

    original = NotebookClient.create_kernel_manager
    if getattr(original, "book_ipc", False):
        return

    def create_kernel_manager(self):
        km = original(self)
        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        stem = os.path.join(runtime, f"book-kernel-{uuid.uuid4().hex[:12]}")
        km.transport = "ipc"
        km.connection_file = stem + ".json"
        km.ip = stem + "-ipc"  # absolute: the kernel runs in the chapter's folder
        return km

    create_kernel_manager.book_ipc = True
    NotebookClient.create_kernel_manager = create_kernel_manager


def _configure(app, config) -> None:
    os.environ["MPLBACKEND"] = INLINE
    os.environ["MATPLOTLIBRC"] = str(RCFILE)
    _ipc_kernel_managers()


def setup(app):
    app.connect("config-inited", _configure)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
