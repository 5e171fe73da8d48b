"""nbgrader preprocessors for sandboxed grading.

:class:`SandboxExecute` is nbgrader's ``Execute`` with a wall-clock budget for the whole
notebook, a cap on output bytes, and graceful endings: when the kernel dies or the budget runs
out, the cell concerned and every later code cell get an error output saying so and are not
run, so the test cells that passed before keep their points (nbgrader's SaveAutoGrades scores
a test cell by its error outputs). Test cells (the gradebook's code, found by grade id, never the
submission's) are not sent to the kernel: :mod:`grading.remote` runs them here and calls the
student's functions in the kernel through a mailbox in its runtime folder; a failed check becomes
the cell's error output.

:class:`HideTests` runs before feedback is rendered: hidden test regions are removed from the
sources, tracebacks of test cells are cut to their last line, and any hidden test line quoted in
any output (a notebook can print the code it was sent) is redacted.
"""

from __future__ import annotations

import builtins
import json
import os
import queue
import re
import time
import uuid
from copy import deepcopy

import zmq
import zmq.asyncio
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Float, Integer, Unicode

from grading import portable, remote
from grading.sandbox import give_to_kernel
from grading.sanitize import sanitize_notebook

STOPPED = "GradingStopped"  # the ename of the outputs this module adds
TIMINGS: dict[str, float] = {}  # seconds of the last notebook run in this process: "kernel" start, "cells"
FAILED_RUNS: list[str] = []  # the grader's own failures in a run (worker.autograde marks the job failed)
OUTPUTS = {"stream", "error", "display_data", "update_display_data", "execute_result"}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?(### END HIDDEN TESTS|\Z)", re.DOTALL)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error(text: str, ename: str = STOPPED) -> NotebookNode:
    """An error output nbgrader counts as a failure, with a message for the student."""
    return NotebookNode(output_type="error", ename=ename, evalue=text, traceback=[f"{ename}: {text}"])


def prepare(km, runtime: str, max_reply_bytes: int):
    """Point the (not yet started) kernel manager ``km`` at IPC sockets in ``runtime``, files the kernel's
    user can read, and clients that refuse a message over ``max_reply_bytes``."""
    stem = os.path.join(runtime, f"kernel-{uuid.uuid4().hex[:12]}")
    km.transport = "ipc"
    km.connection_file = stem + ".json"
    km.ip = stem + "-ipc"
    give_to_kernel(runtime)  # the kernel makes its sockets there (uid 65534 as root)
    write = km.write_connection_file

    def write_for_the_kernel(**kwargs):
        written = write(**kwargs)
        give_to_kernel(km.connection_file)
        return written

    km.write_connection_file = write_for_the_kernel
    make_client = km.client

    def capped_client(**kwargs):  # one message from the kernel is never larger than the reply cap
        client = make_client(**kwargs)
        client.context.setsockopt(zmq.MAXMSGSIZE, max_reply_bytes)
        return client

    def fast_ready_client(**kwargs):
        client = capped_client(**kwargs)
        client.wait_for_ready = lambda timeout=None: ready(client, timeout)
        return client

    km.client = fast_ready_client
    return km


async def ready(client, timeout: float | None = None) -> None:
    """jupyter_client's ``wait_for_ready`` without its fixed waits (0.2 s to see IOPub connected, 0.2 s
    more to find it empty: a core idle at each kernel start): the kernel is ready when it answered
    ``kernel_info`` and the IOPub status of that request came through. Older IOPub messages may stay
    queued: every reader here matches messages to its own request."""
    deadline = time.monotonic() + (timeout or 60.0)
    sent: set[str] = set()  # a reply to any of them will do: one slower than a second used to be
    while time.monotonic() < deadline:  # skipped for ever (the next read found the previous reply)
        sent.add(client.kernel_info())
        try:
            reply = await client.get_shell_msg(timeout=1)
        except queue.Empty:
            reply = None
        asked = reply["parent_header"].get("msg_id") if reply is not None else None
        if asked in sent:
            end = time.monotonic() + 1
            while time.monotonic() < end:
                try:
                    message = await client.get_iopub_msg(timeout=max(0.01, end - time.monotonic()))
                except queue.Empty:
                    break
                if (message["parent_header"].get("msg_id") == asked and message["msg_type"] == "status"
                        and message["content"].get("execution_state") == "idle"):
                    client._handle_kernel_info_reply(reply)
                    return
        if not await ensure_async(client.parent.is_alive()):
            raise RuntimeError("Kernel died before replying to kernel_info")
    raise RuntimeError(f"Kernel didn't respond in {timeout} s")


def trusted_tests(db_url: str, assignment: str, notebook: str) -> dict[str, str]:
    """grade id -> source of the notebook's test cells, from the gradebook (never the submission)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gradebook:
        try:
            found = gradebook.find_notebook(notebook, assignment)
        except MissingEntry:
            return {}
        answers = {c.name for c in found.solution_cells}
        return {c.name: gradebook.find_source_cell(c.name, notebook, assignment).source
                for c in found.grade_cells if c.cell_type == "code" and c.name not in answers}


class SandboxExecute(Execute):
    """Execute with a notebook time budget, an output byte cap and graceful kernel death."""

    notebook_timeout = Float(600.0, help="wall-clock seconds for the whole notebook").tag(config=True)
    max_output_bytes = Integer(1 << 20, help="output bytes kept per notebook").tag(config=True)
    max_reply_bytes = Integer(64 << 20, help="bytes of one answer to the grader's calls, or one message"
                              ).tag(config=True)
    defer_hidden = Bool(True, help="run test cells with hidden tests after every other cell").tag(config=True)
    memory_cgroup = Unicode("", help="the kernel's memory cgroup folder, to name an out-of-memory kill"
                            ).tag(config=True)

    def create_kernel_manager(self):
        """The kernel talks over IPC sockets in the runtime folder (the sandbox has no network)."""
        return prepare(super().create_kernel_manager(), jupyter_runtime_dir(), self.max_reply_bytes)

    def preprocess(self, nb, resources=None, km=None):
        self._started = time.perf_counter()
        self._first_cell, self._threads_at_start = None, None
        self._oom_before = self._oom_kills()
        self._deadline = time.monotonic() + self.notebook_timeout
        self._stopped = None
        self._output_bytes = 0
        self._truncated = set()
        self._cell_timeout = self.timeout
        self.interrupt_on_timeout = False
        self._server = False
        self._loop, self._loop_outputs, self._loop_stuck = None, [], False  # the kernel's serving loop
        self._deferred, self._stopped_at, self._stopped_late = [], None, None
        info = (resources or {}).get("nbgrader", {})
        self._trusted = trusted_tests(info["db_url"], info["assignment"], info["notebook"]) if (
            "db_url" in info) else {}
        self._mailbox = remote.Mailbox(jupyter_runtime_dir()) if self._trusted else None
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            if self._mailbox is not None:
                self._mailbox.close()
            ran = self._first_cell or time.perf_counter()
            TIMINGS["kernel"] = TIMINGS.get("kernel", 0.0) + ran - self._started
            TIMINGS["cells"] = TIMINGS.get("cells", 0.0) + time.perf_counter() - ran
        return self._rescore_hidden(nb, resources), resources

    def _rescore_hidden(self, nb, resources):
        """When the notebook stopped early (kernel death, time limit), the hidden test cells before
        the stop, which waited for the end, get their scores from a second run in a fresh kernel:
        the notebook up to the stop, hidden cells in place. When one of the hidden cells stopped it
        (the student's function loops or dies on a hidden input), the hidden cells after it get
        theirs from a second run of the whole notebook with the hidden cells already scored left
        out. Only those cells' outputs are kept (they show pass or fail only), nothing of the
        second run's own cells. The second run has the notebook's whole limit (the hidden cells it
        scores never ran in the first, so no time they take is known): such a notebook may take
        up to twice the limit in all."""
        if self._stopped_late is not None:
            position = self._deferred.index(self._stopped_late)
            scored, pending = self._deferred[:position + 1], self._deferred[position + 1:]
            if pending:
                self._score_again(nb, resources, pending, scored, max(pending) + 1)
        early = [i for i in self._deferred if self._stopped_at is not None and i < self._stopped_at]
        if early:
            self._score_again(nb, resources, early, [], self._stopped_at)
        return nb

    def _score_again(self, nb, resources, cells: list[int], left_out: list[int], end: int) -> None:
        """The outputs of ``cells`` from a run of the notebook's cells before ``end`` in a fresh
        kernel, hidden cells in place, the cells ``left_out`` run as empty ones. A second run that
        fails (its kernel does not start) leaves those cells unscored, with a message, and keeps
        what the first run scored."""
        again = SandboxExecute(config=self.config)
        again.defer_hidden = False
        copy = deepcopy(nb)
        copy.cells = copy.cells[:end]
        for index in left_out:
            copy.cells[index].source = ""
            copy.cells[index].metadata.pop("nbgrader", None)  # not run as a test either
        try:
            copy, _ = again.preprocess(copy, deepcopy(resources))
        except Exception as failure:  # the first run's scores stand; these cells score 0 for now
            self.log.warning("the second run for the hidden tests failed: %s", failure)
            FAILED_RUNS.append(f"the second run for the hidden tests failed ({type(failure).__name__}: "
                               f"{str(failure)[:200]})")
            for index in cells:
                nb.cells[index].outputs = [error(
                    "the hidden tests of this cell could not be run again after the notebook stopped "
                    f"({type(failure).__name__}); they score 0")]
            return
        for index in cells:
            nb.cells[index].outputs = copy.cells[index].outputs

    def preprocess_cell(self, cell, resources, index):
        """Run a cell; test cells with hidden tests wait until after the last cell of the notebook, so
        nothing the notebook prints or raises after seeing a hidden input can reach its feedback."""
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if self.defer_hidden and cell.cell_type == "code" and HIDDEN.search(self._trusted.get(grade_id, "")):
            self._deferred.append(index)
        else:
            cell, resources = self._run_cell(cell, resources, index)
            if self._stopped and self._stopped_at is None:
                self._stopped_at = index
        if index == len(self.nb.cells) - 1:
            for later in self._deferred:
                self.nb.cells[later], resources = self._run_cell(self.nb.cells[later], resources, later)
                if self._stopped and self._stopped_at is None and self._stopped_late is None:
                    self._stopped_late = later  # a hidden cell stopped the notebook
        return cell, resources

    def _kernel_threads(self) -> int | None:
        """The kernel's thread count, read from outside the sandbox (None for a kernel not forked by a
        zygote, or one that cannot be read: every call then runs in a child of its own)."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return process.threads() if hasattr(process, "threads") else None

    def _run_cell(self, cell, resources, index):
        if self._first_cell is None:
            self._first_cell = time.perf_counter()  # the kernel is up
            self._threads_at_start = self._kernel_threads()  # before any cell of the notebook
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
        self.timeout = self._cell_budget(left)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        try:
            if grade_id in self._trusted:
                cell = self._trusted_cell(cell, self._trusted[grade_id], index)
                if self._loop_stuck:  # a call ran past its time: the kernel is still in it, nothing more runs
                    limit = "cell" if self.timeout < left - 1 else "notebook"
                    self._stopped = (f"an earlier cell ran past the {limit}'s time limit ({self.timeout} s); "
                                     "the cells before it keep their points")
                    cell.outputs = list(cell.outputs) + [error(
                        f"this cell ran past the {limit}'s time limit ({self.timeout} s) and was stopped")]
                return cell, resources
            return super().preprocess_cell(cell, resources, index)
        except CellTimeoutError:
            limit = "cell" if self.timeout < left - 1 else "notebook"
            self._stopped = (f"an earlier cell ran past the {limit}'s time limit ({self.timeout} s); "
                             "the cells before it keep their points")
            cell.outputs = list(cell.get("outputs", [])) + [error(
                f"this cell ran past the {limit}'s time limit ({self.timeout} s) and was stopped")]
        except DeadKernelError:
            cause = self._death_cause()
            self._stopped = (f"the kernel died in an earlier cell ({cause}); the cells before it keep "
                             "their points")
            cell.outputs = list(cell.get("outputs", [])) + [error(
                f"the kernel died while running this cell ({cause})")]
        finally:
            self.timeout = self._cell_timeout
        return cell, resources

    def _cell_budget(self, left: float) -> int:
        """Seconds one execution may take: the cell timeout, cut to what the notebook has ``left``."""
        return max(1, int(min(self._cell_timeout or left, left)))

    def _death_cause(self) -> str:
        """Why the kernel died, as far as the memory cgroup tells."""
        if self._oom_kills() > self._oom_before:  # the cgroup outlives one kernel: count this one's
            return "it used more memory than the limit and was stopped"
        return "out of memory, too many processes, or the code exited or crashed Python"

    def _oom_kills(self) -> int:
        from grading.sandbox import oom_killed

        return oom_killed(self.memory_cgroup) if self.memory_cgroup else 0

    def _trusted_cell(self, cell, source: str, index: int):
        """Run the gradebook's test code here; only calls of the student's functions go to the kernel."""
        failure = remote.run_test_cell(source, lambda request: self._call_kernel(request, index))
        cell.outputs = []
        if failure is not None:
            name = failure.__class__.__name__
            cell.outputs = [error(str(failure), name if name.isidentifier() else "Error")]
        cell.execution_count = None
        self._end_loop()  # a kernel that died or hangs meanwhile stops the notebook here, as a cell would
        return cell

    def _call_kernel(self, request: dict, index: int):
        """Send one request to the kernel; its decoded answer, or ``{"no_answer": why}``.

        The first call of a test cell starts the kernel's serving loop (one comm message); each call
        is then a request file and its number on a FIFO, the answer a reply file and its number back
        (:class:`grading.remote.Mailbox`). :meth:`_end_loop` ends the loop after the cell."""
        if not self._server:
            self._server = True
            self._probe(remote.setup_code(), index)
            self._comm = uuid.uuid4().hex
            self._message("comm_open", {"comm_id": self._comm, "target_name": remote.COMM_TARGET, "data": {}})
        now = self._kernel_threads()
        # the call gets a child of its own when the notebook started threads (or they cannot be counted)
        request = {**request, "alone": now is None or self._threads_at_start is None
                   or now > self._threads_at_start}
        number = self._mailbox.post(portable.encode(request))
        if self._loop is None:
            self._loop_outputs = []
            self._loop = self._send("comm_msg", {"comm_id": self._comm,
                                                 "data": {"folder": self._mailbox.path}})
        if not self._mailbox.ask(number):
            return {"no_answer": "it did not read the grader's requests"}
        answered = run_sync(self._async_answer)(number)
        try:
            data = self._mailbox.collect(number, self.max_reply_bytes) if answered else None
            if data is None:
                run_sync(self._async_error)()
                errors = [f"{o.get('ename')}: {o.get('evalue')}"[:300] for o in self._loop_outputs
                          if o.get("msg_type") == "error"]
                return {"no_answer": errors[-1] if errors else ""}
            return portable.decode(data)
        except (portable.WireError, ValueError) as problem:
            return {"no_answer": f"its answer could not be read ({problem})"}

    async def _async_answer(self, number: int) -> bool:
        """Wait, within the cell's budget, until the kernel announces its reply to ``number`` (True) or
        its loop ended without it (False), taking the loop's outputs as they come (counted against the
        output cap). CellTimeoutError and DeadKernelError as for a cell."""
        deadline = self._budget_deadline()
        poller = zmq.asyncio.Poller()  # wakes on the reply's number or on a message from the kernel
        poller.register(self._mailbox.replies, zmq.POLLIN)
        poller.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        while True:
            if self._mailbox.answered(number):
                return True
            if await self._take_outputs(self._loop, self._loop_outputs):  # the loop ended, no answer:
                self._loop = None  # the next call starts another
                return self._mailbox.answered(number)
            wait = deadline - time.monotonic()
            if wait <= 0:
                self._loop_stuck = True
                raise CellTimeoutError(f"a call of the notebook's functions ran past {self.timeout} s")
            if not await poller.poll(int(min(wait, 1.0) * 1000)):
                if not await ensure_async(self.km.is_alive()):
                    raise DeadKernelError("the kernel died")

    async def _async_error(self, seconds: float = 0.2) -> None:
        """No answer came: wait a moment for the error the kernel's loop showed (its IOPub messages may
        arrive after its reply's number)."""
        end = time.monotonic() + seconds
        while self._loop is not None and time.monotonic() < end and not any(
                o.get("msg_type") == "error" for o in self._loop_outputs):
            try:
                reply = await self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if self._collect(reply, self._loop, self._loop_outputs):
                self._loop = None

    async def _take_outputs(self, msg_id: str, outputs: list) -> bool:
        """The IOPub messages already here, without waiting: those of ``msg_id`` into ``outputs``
        (counted against the output cap); whether its idle status was among them."""
        while True:
            try:
                reply = await self.kc.get_iopub_msg(timeout=0)
            except queue.Empty:
                return False
            if self._collect(reply, msg_id, outputs):
                return True

    def _collect(self, reply: dict, msg_id: str, outputs: list) -> bool:
        """Keep ``reply`` in ``outputs`` when it is an output of ``msg_id``; whether it is the idle status
        that ends ``msg_id``."""
        if reply["parent_header"].get("msg_id") != msg_id:
            return False
        kind = reply["msg_type"]
        if kind == "status" and reply["content"].get("execution_state") == "idle":
            return True
        if kind in OUTPUTS:
            self._output_bytes += len(json.dumps(reply["content"], default=str))
            outputs.append({**reply["content"], "msg_type": kind})
        return False

    def _end_loop(self) -> None:
        """After a test cell: the kernel's serving loop returns and the kernel is idle again (not waited
        for when a call ran past its time: the kernel is still in it)."""
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        self._mailbox.end_loop()
        if not self._loop_stuck:
            run_sync(self._async_idle)(loop, self._loop_outputs)

    def _send(self, kind: str, content: dict) -> str:
        """Send a shell message of ``kind`` (a comm's); its id."""
        message = self.kc.session.msg(kind, content)
        self.kc.shell_channel.send(message)
        return message["header"]["msg_id"]

    def _budget_deadline(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise CellTimeoutError("the notebook's time limit was reached")
        self.timeout = self._cell_budget(left)
        return time.monotonic() + self.timeout

    def _message(self, kind: str, content: dict) -> list:
        """Send a shell message of ``kind`` (a comm's) and wait, within the cell's budget, until the
        kernel is idle again; its outputs' contents (with ``msg_type``), counted against the output cap
        as a cell's are. CellTimeoutError and DeadKernelError as for a cell."""
        outputs: list = []
        run_sync(self._async_idle)(self._send(kind, content), outputs)
        return outputs

    async def _async_idle(self, msg_id: str, outputs: list) -> None:
        deadline = self._budget_deadline()
        while True:
            wait = min(1.0, deadline - time.monotonic())
            if wait <= 0:
                raise CellTimeoutError(f"a call of the notebook's functions ran past {self.timeout} s")
            try:
                reply = await self.kc.get_iopub_msg(timeout=wait)
            except queue.Empty:
                if not await ensure_async(self.km.is_alive()):
                    raise DeadKernelError("the kernel died") from None
                continue
            if self._collect(reply, msg_id, outputs):
                return

    def _probe(self, code: str, index: int) -> list:
        """Execute ``code`` in the kernel as a hidden cell at ``index``; its outputs."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise CellTimeoutError("the notebook's time limit was reached")
        self.timeout = self._cell_budget(left)
        probe = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        original = self.nb.cells[index]
        try:
            self.execute_cell(probe, index, store_history=False)
        finally:
            self.nb.cells[index] = original
        return probe.outputs

    def process_message(self, msg, cell, cell_index):
        """Every output message (streams, errors, display data and its updates, results) counts
        against one cap per notebook; past it, errors keep only a short message (they score the
        cell) and everything else is dropped, with one note per cell."""
        kind = msg.get("msg_type")
        if kind not in OUTPUTS:
            return super().process_message(msg, cell, cell_index)
        self._output_bytes += len(json.dumps(msg.get("content", {}), default=str))
        if self._output_bytes <= self.max_output_bytes:
            return super().process_message(msg, cell, cell_index)
        if cell_index not in self._truncated:
            self._truncated.add(cell_index)
            cell.outputs.append(NotebookNode(output_type="stream", name="stderr", text=(
                f"... output truncated: the notebook printed more than {self.max_output_bytes} bytes ...\n")))
        if kind != "error":
            return None
        content = msg["content"]
        ename, evalue = str(content.get("ename", "Error"))[:100], str(content.get("evalue", ""))[:500]
        short = {**msg, "content": {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}}
        return super().process_message(short, cell, cell_index)


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
    """Keep hidden tests out of feedback and make the page inert (see :mod:`grading.sanitize`).

    A cell with hidden tests shows only whether it failed, with a builtin exception name at most:
    the message, the traceback and any output of the student's code are left out, since the
    student's function saw the hidden inputs and can spell them into any of them. (The hidden
    cells ran after every other cell, see :class:`SandboxExecute`, so no later output can carry
    them either.) Hidden test lines quoted anywhere else are redacted.
    """

    def preprocess(self, nb, resources):
        secrets = [line for cell in nb.cells for line in hidden_lines(cell.source)]
        for cell in nb.cells:
            if HIDDEN.search(cell.source):
                cell.source = HIDDEN.sub("# (hidden tests)", cell.source)
                failures = [o for o in cell.get("outputs", []) if o.output_type == "error"]
                cell.outputs = [hidden_failure(failures[0])] if failures else []
                continue
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [redact(ANSI.sub("", t), secrets) for t in output.traceback]
                    output.evalue = redact(output.evalue, secrets)
                elif output.output_type == "stream":
                    output.text = redact(output.text, secrets)
                for key, value in output.get("data", {}).items():
                    if isinstance(value, str) and key.startswith("text"):
                        output.data[key] = redact(value, secrets)
        return sanitize_notebook(nb), resources


def hidden_failure(output) -> NotebookNode:
    """The failure of a hidden test as feedback shows it: no message, a builtin exception name at most."""
    known = getattr(builtins, str(output.get("ename")), None)
    name = output.ename if isinstance(known, type) and issubclass(known, BaseException) else "Error"
    return error("a hidden test failed (its inputs and messages are not shown)", name)
