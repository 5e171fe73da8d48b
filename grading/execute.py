"""nbgrader preprocessors for sandboxed grading.

:class:`SandboxExecute` is nbgrader's ``Execute`` with a wall-clock budget for the whole
notebook, a cap on output bytes, and graceful endings: when the kernel dies or the budget runs
out, the cell concerned and every later code cell get an error output saying so and are not
run, so the test cells that passed before keep their points (nbgrader's SaveAutoGrades scores
a test cell by its error outputs).

:class:`HideTests` runs before feedback is rendered: hidden test regions are removed from the
sources, tracebacks of test cells are cut to their last line, and any hidden test line quoted in
any output (a notebook can print the code it was sent) is redacted.
"""

from __future__ import annotations

import os
import re
import time
import uuid

from jupyter_core.paths import jupyter_runtime_dir
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float, Integer

STOPPED = "GradingStopped"  # the ename of the outputs this module adds
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?(### END HIDDEN TESTS|\Z)", re.DOTALL)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error(text: str) -> NotebookNode:
    """An error output nbgrader counts as a failure, with a message for the student."""
    return NotebookNode(output_type="error", ename=STOPPED, evalue=text,
                        traceback=[f"{STOPPED}: {text}"])


class SandboxExecute(Execute):
    """Execute with a notebook time budget, an output byte cap and graceful kernel death."""

    notebook_timeout = Float(600.0, help="wall-clock seconds for the whole notebook").tag(config=True)
    max_output_bytes = Integer(1 << 20, help="output bytes kept per notebook").tag(config=True)

    def create_kernel_manager(self):
        """The kernel talks over IPC sockets in the runtime folder (the sandbox has no network)."""
        km = super().create_kernel_manager()
        stem = os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4().hex[:12]}")
        km.transport = "ipc"
        km.connection_file = stem + ".json"
        km.ip = stem + "-ipc"
        return km

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._stopped = None
        self._output_bytes = 0
        self._truncated = set()
        self._cell_timeout = self.timeout
        self.interrupt_on_timeout = False
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._stopped:
            cell.outputs = [error(f"not run: {self._stopped}")]
            return cell, resources
        left = self._deadline - time.monotonic()
        if left <= 0:
            self._stopped = (f"the notebook's time limit ({self.notebook_timeout:g} s) was reached "
                             "before this cell")
            cell.outputs = [error(f"not run: {self._stopped}")]
            return cell, resources
        self.timeout = max(1, int(min(self._cell_timeout or left, left)))
        try:
            return super().preprocess_cell(cell, resources, index)
        except CellTimeoutError:
            limit = "cell" if self.timeout < left - 1 else "notebook"
            self._stopped = (f"an earlier cell ran past the {limit}'s time limit ({self.timeout} s); "
                             "the cells before it keep their points")
            cell.outputs = list(cell.get("outputs", [])) + [error(
                f"this cell ran past the {limit}'s time limit ({self.timeout} s) and was stopped")]
        except DeadKernelError:
            self._stopped = ("the kernel died in an earlier cell (out of memory, too many processes, "
                             "or the code exited); the cells before it keep their points")
            cell.outputs = list(cell.get("outputs", [])) + [error(
                "the kernel died while running this cell (out of memory, too many processes, or the "
                "code exited or crashed Python)")]
        finally:
            self.timeout = self._cell_timeout
        return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        size = len(str(msg.get("content", "")).encode("utf-8", "replace"))
        self._output_bytes += size
        if self._output_bytes > self.max_output_bytes and msg["msg_type"] != "error":
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(NotebookNode(output_type="stream", name="stderr", text=(
                    f"... output truncated: the notebook printed more than {self.max_output_bytes} "
                    "bytes ...\n")))
            return None
        return super().output(outs, msg, display_id, cell_index)


def hidden_lines(source: str) -> list[str]:
    """The non-trivial lines inside hidden test regions of a cell's source."""
    lines = []
    for region in HIDDEN.finditer(source):
        for line in region.group(0).splitlines():
            line = line.strip()
            if len(line) >= 8 and "HIDDEN TESTS" not in line:
                lines.append(line)
    return lines


def redact(text: str, lines: list[str]) -> str:
    for line in lines:
        text = text.replace(line, "[hidden test]")
    return text


class HideTests(NbGraderPreprocessor):
    """Keep hidden tests out of feedback: sources, tracebacks and any output quoting them."""

    def preprocess(self, nb, resources):
        secrets = [line for cell in nb.cells for line in hidden_lines(cell.source)]
        for cell in nb.cells:
            had_hidden = bool(HIDDEN.search(cell.source))
            if had_hidden:
                cell.source = HIDDEN.sub("# (hidden tests)", cell.source)
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    if had_hidden:
                        output.traceback = [f"{output.ename}: {ANSI.sub('', output.evalue)}"]
                    output.traceback = [redact(ANSI.sub("", t), secrets) for t in output.traceback]
                    output.evalue = redact(output.evalue, secrets)
                elif output.output_type == "stream":
                    output.text = redact(output.text, secrets)
                for key, value in output.get("data", {}).items():
                    if isinstance(value, str) and key.startswith("text"):
                        output.data[key] = redact(value, secrets)
        return nb, resources
