"""matplotlib's font list, built once per grading process instead of once per kernel.

On its first import matplotlib scans the system's fonts and writes ``fontlist-v*.json`` into its
configuration folder. A sandboxed kernel's ``MPLCONFIGDIR`` is in its fresh ``/tmp``, so every
kernel would rebuild it: about a quarter of a second of CPU per submission, and the warning
"Matplotlib is building the font cache" in the first cell that plots. :class:`FontList` builds it
on the host in the environment the kernel has (the same interpreter, ``PATH``, ``/etc/fonts``, an
empty home), and :func:`grading.sandbox.bwrap_argv` binds the file read-only into each kernel's
matplotlib folder. The file names only fonts the kernel can read (the kernel's own files, the
read-only ``/usr``); where it cannot be built the kernel builds its own, as before.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BUILD = ("import json, matplotlib.font_manager as m; "
         "print(json.dumps(m.fontManager._version))")  # importing the module builds and writes the list
SECONDS = 120.0


class FontList:
    """Build the font list into ``folder`` in the background; :meth:`path` waits for it."""

    def __init__(self, folder: Path, environment: dict[str, str]):
        self.folder = folder
        (folder / "home").mkdir(parents=True)
        env = {**environment, "HOME": str(folder / "home"), "MPLCONFIGDIR": str(folder)}
        self.process = subprocess.Popen([sys.executable, "-P", "-c", BUILD], env=env, cwd="/",
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.built: Path | None | bool = False

    def path(self) -> Path | None:
        """The font list file, or None where it could not be built (the kernel then builds its own)."""
        if self.built is False:
            try:
                out, _ = self.process.communicate(timeout=SECONDS)
                version = out.decode().strip().strip('"')
                found = self.folder / f"fontlist-v{version}.json"
                self.built = found if self.process.returncode == 0 and found.is_file() else None
            except (subprocess.TimeoutExpired, UnicodeDecodeError):
                self.process.kill()
                self.process.wait()
                self.built = None
            if self.built is not None:
                self.built.chmod(0o644)
        return self.built or None
