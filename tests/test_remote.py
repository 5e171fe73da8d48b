"""The trusted half of grading, without a kernel: the wire format, the mailbox, test cells run here.

``grading.kernel_side.answer`` (what the kernel runs) is called in-process to play an honest
kernel; a lying kernel is played by hand-written replies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from test_testing import corr2d  # a student's right answer

from cnnlib import models, nn, optim
from grading import kernel_side, portable, remote
from grading.sandbox import MemoryCgroup

HEADER = "from cnnlib.testing import grader\n"  # as the notebooks' setup cell (the grader rebinds it)


def roundtrip(value):
    return portable.decode(portable.encode(value))


def test_plain_values_arrays_and_scalars_survive_the_trip():
    value = {"a": (1, 2.5, None, True, "text", float("inf")), 3: [np.arange(6).reshape(2, 3)],
             "scalar": np.float32(1.5), "dtype": np.dtype("float32"),
             "floats": tuple(float(i) for i in range(100))}
    back = roundtrip(value)
    assert back["a"][:5] == (1, 2.5, None, True, "text") and back["a"][5] == float("inf")
    assert back[3][0].__class__ is np.ndarray and (back[3][0] == value[3][0]).all()
    assert back["scalar"].__class__ is np.float32 and back["dtype"] == np.float32
    assert back["floats"] == value["floats"] and back["floats"].__class__ is tuple


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


def test_a_model_and_its_optimiser_travel_with_shared_parameters():
    model = lenet()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    new_model, new_optimizer = roundtrip((model, optimizer))
    assert new_model.__class__ is model.__class__
    assert new_optimizer.params[0] is next(new_model.parameters())
    x = np.random.default_rng(0).random((2, 1, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(new_model(x), model(x))
    sequential = roundtrip(nn.Sequential(nn.ReLU(), nn.Flatten()))
    assert [m.__class__.__name__ for m in sequential.children()] == ["ReLU", "Flatten"]


class Everything:
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value, name", [
    (Everything(), "Everything"), (np.array([object()]), "Unknown"),
    (np.ma.masked_array([1.0]), "MaskedArray"), (lambda: 1, "function"), (np.complex128(1j), "complex128"),
    (models.lenet5(), "NamedSequential")])  # cnnlib.models is not cnnlib.nn: it may not travel
def test_anything_else_arrives_as_an_opaque_stand_in(value, name):
    back = roundtrip(value)
    assert isinstance(back, portable.Opaque) and back != 1
    assert back.__class__.__name__ == name or name == "Unknown"


def forged(tree) -> bytes:
    import json
    import struct

    header = json.dumps({"tree": tree, "sizes": []}).encode()
    return portable.MAGIC + struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize("tree, says", [
    ({"t": "object", "cls": "os.system", "i": 0, "v": {}}, "may not travel"),
    ({"t": "object", "cls": "builtins.eval", "i": 0, "v": {}}, "may not travel"),
    ({"t": "object", "cls": "cnnlib.nn.conv.Conv2d", "i": 0, "v": {"forward": 1}}, "shadow a method"),
    ({"t": "object", "cls": "cnnlib.nn.conv.Conv2d", "i": 0, "v": {"__class__": 1}}, "shadow a method"),
    ({"t": "ref", "i": 7}, "bad object reference"),
    ({"t": "array", "i": 0}, "bad array reference"),
    ({"t": "nonsense"}, "unknown node type"),
])
def test_a_forged_message_cannot_name_code_or_shadow_methods(tree, says):
    with pytest.raises(portable.WireError, match=says):
        portable.decode(forged(tree))
    with pytest.raises(portable.WireError, match="not a grading message"):
        portable.decode(b"\x80\x04pickle")


def honest(namespace: dict):
    """A kernel that answers every request, as kernel_side does inside the sandbox."""
    return lambda request: roundtrip(kernel_side.answer(roundtrip(request), namespace))


CHECK = HEADER + "grader.check('corr2d', corr2d, grader.randn(5, 7, seed=3), grader.randn(3, 2, seed=4))\n"


def test_a_test_cell_run_here_passes_a_right_function_and_fails_a_wrong_one():
    assert remote.run_test_cell(CHECK, honest({"corr2d": corr2d})) is None
    failure = remote.run_test_cell(CHECK, honest({"corr2d": lambda x, k: corr2d(x, k[::-1, ::-1])}))
    assert failure.__class__.__name__ == "GradingError" and "flipped" in str(failure)


def test_a_lying_kernel_gets_no_points():
    def claims(value):
        return lambda request: {"value": value, "error": None, "objects": []}

    assert "should be a NumPy array, got Everything" in str(remote.run_test_cell(CHECK, claims(
        portable.opaque("Everything"))))
    assert "expected shape (3, 6)" in str(remote.run_test_cell(CHECK, claims(np.zeros((2, 2)))))
    assert "got no answer" in str(remote.run_test_cell(CHECK, lambda request: {"no_answer": ""}))
    refused = remote.run_test_cell(CHECK, lambda request: {"refused": "Grading refused: torch"})
    assert str(refused) == "Grading refused: torch"


def test_errors_keep_their_class_name_and_a_missing_function_is_a_name_error():
    def raises(x, k):
        raise NotImplementedError()

    assert "not implemented yet" in str(remote.run_test_cell(CHECK, honest({"corr2d": raises})))
    assert isinstance(remote.run_test_cell(CHECK, honest({})), NameError)
    error = remote.rebuild_error({"names": ["ShapeError", "ValueError", "Exception"], "message": "bad"})
    assert isinstance(error, ValueError) and error.__class__.__name__ == "ShapeError"


def test_plain_calls_and_asserts_in_a_test_cell_are_judged_here():
    cell = ("import numpy as np\n"
            "assert corr2d(np.ones((3, 3)), np.ones((2, 2))).tolist() == [[4.0, 4.0], [4.0, 4.0]]\n")
    assert remote.run_test_cell(cell, honest({"corr2d": corr2d})) is None
    assert isinstance(remote.run_test_cell(cell, honest({"corr2d": lambda x, k: x})), AssertionError)


def test_the_case_study_checks_see_the_model_the_kernel_built_and_trained():
    check = HEADER + "grader.check_lenet(build_lenet, 'layers')\n"
    assert remote.run_test_cell(check, honest({"build_lenet": lenet})) is None
    failure = remote.run_test_cell(check, honest({"build_lenet": models.lenet5}))
    assert "is the library function" in str(failure)  # the kernel's checks still refuse
    epoch = HEADER + "grader.check_train_epoch(train_epoch, 'parameters')\n"

    def train_epoch(model, loss_fn, optimizer, batches):
        for x, y in batches:
            optimizer.zero_grad()
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()

    assert remote.run_test_cell(epoch, honest({"train_epoch": train_epoch})) is None
    forgot = remote.run_test_cell(epoch, honest({"train_epoch": lambda model, loss, optimizer, batches: 0.0}))
    assert "did not change at all" in str(forgot)


def test_the_mailbox_never_follows_a_link_planted_by_the_kernel(tmp_path):
    box = remote.Mailbox(str(tmp_path))
    secret = tmp_path / "secret"
    secret.write_bytes(b"gradebook")
    os.symlink(secret, os.path.join(box.path, "request-1"))
    with pytest.raises(FileExistsError):
        box.post(b"data")  # never written through the link
    assert secret.read_bytes() == b"gradebook"
    os.symlink(secret, os.path.join(box.path, "reply-2"))
    assert box.collect(2, 1 << 20) is None
    os.mkfifo(os.path.join(box.path, "reply-3"))
    with pytest.raises(portable.WireError, match="not a file"):
        box.collect(3, 1 << 20)
    os.unlink(os.path.join(box.path, "reply-2"))
    number = box.post(b"request")
    with open(os.path.join(box.path, f"reply-{number}"), "wb") as handle:
        handle.write(b"x" * 100)
    with pytest.raises(portable.WireError, match="at most 10 bytes"):
        box.collect(number, 10)
    box.close()
    assert not os.path.exists(box.path) and secret.read_bytes() == b"gradebook"


def test_a_memory_cgroup_stops_a_process_group_at_its_limit():
    group = MemoryCgroup.create(64 << 20)
    if group is None:
        pytest.skip("this machine does not let us create a memory cgroup")
    try:
        hog = "import time; a = bytearray(300 << 20); a[::4096] = b'x' * len(a[::4096]); time.sleep(5)"
        process = subprocess.run(["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group.procs),
                                  sys.executable, "-c", hog], capture_output=True, timeout=60)
        assert process.returncode == -9
        assert group.oom_kills() >= 1
    finally:
        group.remove()
    assert not group.path.exists()


def test_a_model_with_absurd_settings_is_refused_before_the_grader_runs_it():
    def build_lenet():
        model = lenet()
        model.__dict__["0"].padding = (10 ** 6, 10 ** 6)
        return model

    check = HEADER + "grader.check_lenet(build_lenet, 'output')\n"
    failure = remote.run_test_cell(check, lambda request: {"value": build_lenet(), "error": None})
    assert "padding=(1000000, 1000000)" in str(failure)


def test_every_test_cell_uses_only_names_the_grader_can_supply():
    """A test cell runs in the grader, where a name it does not define is a function of the
    notebook: it may not read notebook variables (they do not exist outside the kernel)."""
    import ast
    import builtins
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.glob("solutions/*/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        answers = [ast.parse("".join(c["source"])) for c in cells
                   if c["metadata"].get("nbgrader", {}).get("solution")]
        functions = {node.name for tree in answers for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef)}
        for cell in cells:
            meta = cell["metadata"].get("nbgrader", {})
            if not meta.get("grade") or meta.get("solution") or cell["cell_type"] != "code":
                continue
            tree = ast.parse("".join(cell["source"]))
            bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            bound |= {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom | ast.Import)
                      for a in n.names}
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            free = used - bound - set(dir(builtins)) - {"grader"}  # the trusted checker, bound by the grader
            assert free <= functions, f"{path.name} {meta['grade_id']}: {sorted(free - functions)}"


def test_the_mailbox_fifos_stand_a_kernel_that_floods_or_replaces_them(tmp_path):
    """The kernel's serving loop hears of each request on the FIFO ``requests`` and announces each reply
    on ``replies``. What it writes there cannot hold the grader (a flood is read in bounded steps),
    answer another request, or grow the grader's memory; swapping the FIFOs for its own files
    changes nothing on the grader's side, which holds the ones it made before the kernel started."""
    box = remote.Mailbox(str(tmp_path))
    try:
        path = os.path.join(box.path, "requests")
        assert box.ask(1) and not box.answered(1)
        with open(path, "rb", buffering=0) as kernel_side:  # what the kernel's loop reads
            assert kernel_side.read(64) == b"1\n"
        with open(os.path.join(box.path, "replies"), "wb", buffering=0) as replies:
            replies.write(b"2\n" + b"x" * 50_000)  # another number, then a line without end (within the pipe)
            assert not box.answered(1)
            assert len(box.pending) <= 64
            replies.write(b"\n1\n")
            for _ in range(10):
                if box.answered(1):
                    break
            else:
                raise AssertionError("the reply to 1 was not seen")
        stop = threading.Event()

        def flood():
            with open(os.path.join(box.path, "replies"), "wb", buffering=0) as replies:
                while not stop.is_set():
                    replies.write(b"7\n" * 1000)

        flooder = threading.Thread(target=flood)
        flooder.start()
        try:
            started = time.monotonic()
            assert not box.answered(2)  # returns while the kernel goes on writing
            assert time.monotonic() - started < 5
        finally:
            stop.set()
            while flooder.is_alive():
                box.answered(2)  # let a write in progress finish
            flooder.join()
        for name in ("requests", "replies"):  # the kernel replaces both with files of its own
            os.unlink(os.path.join(box.path, name))
            with open(os.path.join(box.path, name), "wb") as planted:
                planted.write(b"5\n")
        assert box.ask(5) and not box.answered(5)
        box.end_loop()
    finally:
        box.close()
    assert not os.path.exists(box.path)
