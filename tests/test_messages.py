"""What a student reads when a check fails: a first line under 80 characters that names the function
and what is wrong, the details below it, and no frame of the checker.

The audit feeds every graded function answers of every wrong type; the notebook tests execute each
released assignment with typical mistakes filled in, in a real kernel and through
``nbgrader validate``, and read the failing test cells as a student sees them.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from cnnlib.testing import Checker, GradingError
from cnnlib.testing.specs import SPECS
from grading.worker import nbgrader_env

sys.path.insert(0, str(Path(__file__).parent))
from test_testing import corr2d  # noqa: E402  (a student's right answer)

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WIDTH = 80
g = Checker()

# Valid arguments for every graded function, and what a right answer looks like (its kind).
ARGUMENTS = {
    "corr2d": (g.randn(4, 4, seed=1), g.randn(2, 2, seed=2)),
    "convolve2d": (g.randn(4, 4, seed=1), g.randn(2, 2, seed=2)),
    "conv_output_size": (7, 3),
    "pad2d": (g.randn(1, 1, 3, 3, seed=1), 1),
    "conv2d": (g.randn(1, 2, 5, 5, seed=1), g.randn(3, 2, 3, 3, seed=2), g.randn(3, seed=3)),
    "conv2d_im2col": (g.randn(1, 2, 5, 5, seed=1), g.randn(3, 2, 3, 3, seed=2), g.randn(3, seed=3)),
    "conv_params": (3, 8, 3),
    "max_pool2d": (g.randn(1, 1, 4, 4, seed=1), 2),
    "avg_pool2d": (g.randn(1, 1, 4, 4, seed=1), 2),
    "conv2d_backward": (g.randn(1, 3, 3, 3, seed=1), g.randn(1, 2, 5, 5, seed=2),
                        g.randn(3, 2, 3, 3, seed=3)),
    "max_pool2d_backward": (g.randn(1, 1, 2, 2, seed=1), g.randn(1, 1, 4, 4, seed=2), 2),
    "numerical_gradient": (g.cubic(4, seed=1), g.randn(2, 2, seed=2)),
    "conv_transpose2d": (g.randn(1, 2, 3, 3, seed=1), g.randn(2, 3, 2, 2, seed=2)),
    "separable_mults": (8, 8, 3, 16, 3),
    "linear_as_conv": (g.randn(4, 12, seed=1), g.randn(4, seed=2), (3, 2, 2)),
    "dilate_kernel": (g.randn(2, 2, 3, 3, seed=1), 2),
    "im2col": (g.randn(1, 2, 4, 4, seed=1), 2),
    "accuracy": (g.array([[2, 1, 0], [0, 3, 1], [1, 0, 5], [4, 0, 0]]), g.array([0, 1, 1, 0])),
}

# Wrong answers per kind of result: (what is returned, what the message must say).
WRONG = {
    "array": [(None, "None instead of a NumPy array (forgot to return it?)"),
              ([[1.0, 2.0]], "a list instead of a NumPy array (wrap it in np.array"),
              (np.array([1j]), "an array of dtype complex128 instead of numbers"),
              (np.array(["a"]), "an array of dtype <U1 instead of numbers"),
              (2.5, "a float instead of a NumPy array"), ("text", "a str instead of a NumPy array")],
    "int": [(5.0, "returned 5.0, a float instead of an int"), (None, "returned None, expected an int"),
            (True, "returned True, a bool instead of an int"), ("5", "returned a str, expected an int"),
            (np.array([5]), "returned an array of shape (1,), expected an int")],
    "float": [(None, "returned None, expected a number"), ("0.5", "returned a str, expected a number"),
              (np.array([0.5, 0.5]), "returned an array of shape (2,), not a single number")],
    "ints": [([1, 2], "returned a list, expected a tuple of two ints"), (None, "returned None"),
             ((1.0, 2.0), "a float instead of an int")],
    "outputs": [(None, "returned None, expected a tuple ("),
                (np.zeros(3), "returned an array of shape (3,), expected a tuple")],
}


def first_line(error: BaseException) -> str:
    return ANSI.sub("", str(error)).partition("\n")[0]


def failure(name: str, returned, *args, **kwargs) -> GradingError:
    with pytest.raises(GradingError) as caught:
        g.check(name, lambda *a, **k: returned, *(args or ARGUMENTS[name]), **kwargs)
    return caught.value


def kind_of(name: str) -> str:
    spec = SPECS[name]
    return "outputs" if spec.outputs else spec.kind


def test_every_graded_function_has_arguments_here():
    assert set(ARGUMENTS) == set(SPECS)


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_a_wrong_type_of_answer_is_named_on_the_first_line(name):
    for returned, says in WRONG[kind_of(name)]:
        error = failure(name, returned)
        line = first_line(error)
        assert line.startswith(f"{name}") and len(line) <= WIDTH, line
        assert says in line, (returned, line)


def test_a_part_of_a_tuple_of_the_wrong_type_is_named():
    x, w = ARGUMENTS["conv2d_backward"][1:]
    line = first_line(failure("conv2d_backward", (None, np.zeros_like(w), np.zeros(3))))
    assert line == "conv2d_backward grad_x: None instead of a NumPy array (forgot to return it?)"


def test_a_count_instead_of_a_fraction_is_named():
    for count in (3, np.int64(3), 3.0):
        line = first_line(failure("accuracy", count))
        assert line == "accuracy: returned 3, expected 0.75: a count instead of a fraction", line


def test_a_float_where_a_value_error_is_expected_says_the_stride_does_not_fit():
    error = failure("conv_output_size", 2.0, 7, 3, stride=3)
    assert first_line(error) == "conv_output_size: stride 3 does not fit, a ValueError was expected"
    assert "returned 2.0" in str(error) and "rounding down" in str(error)
    error = failure("conv_output_size", 1, 3, 5)
    expected = "conv_output_size: the kernel is larger than the input, a ValueError was expected"
    assert first_line(error) == expected


def raises_inside(x, k):
    return x[10, 10]


# One function per kind of message: (function, check arguments, first line's start, a phrase).
KINDS = [
    (lambda x, k: corr2d(x, k)[:-1, :-1],
     "corr2d: shape (3, 3), expected (4, 4): one row and column too few"),
    (lambda x, k: corr2d(x, k[::-1, ::-1]), "corr2d: [0, 0] is"),
    (lambda x, k: corr2d(x, k).tolist(), "corr2d: a list instead of a NumPy array"),
    (lambda x, k: None, "corr2d: None instead of a NumPy array"),
    (raises_inside, "corr2d: raised IndexError: index 10 is out of bounds"),
    (lambda x, k: (_ for _ in ()).throw(NotImplementedError()), "corr2d is not implemented yet"),
    (lambda x, k: x.__setitem__((0, 0), 9.0) or corr2d(x, k), "corr2d: changed its argument x in place"),
    (lambda x, k: __import__("cnnlib.functional").functional.conv2d(x[None, None], k[None, None])[0, 0],
     "Grading refused: corr2d called conv2d"),
]


@pytest.mark.parametrize("function, starts", KINDS, ids=[k[1][:40] for k in KINDS])
def test_every_message_kind_is_short_first_and_shows_no_checker_frame(function, starts):
    with pytest.raises(GradingError) as caught:
        g.check("corr2d", function, g.randn(5, 5, seed=1), g.randn(2, 2, seed=2))
    shown = [ANSI.sub("", line) for line in caught.value._render_traceback_()]
    assert shown[0].startswith(starts) and len(shown[0]) <= WIDTH, shown[0]
    assert not any("cnnlib/testing" in line for line in shown), shown
    if function is raises_inside:  # the student's own frame and error are shown
        assert any("raises_inside" in line for line in shown) and shown[-1].startswith("IndexError")


def test_the_speed_check_sees_every_output_position():
    x, w, b = g.randn(1, 2, 9, 9, seed=1), g.randn(3, 2, 3, 3, seed=2), g.randn(3, seed=3)

    def conv(x, weight, bias, stride=1, padding=0):
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        out = np.zeros((x.shape[0], weight.shape[0], xp.shape[2] - 2, xp.shape[3] - 2))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                window = xp[:, :, i:i + 3, j:j + 3]
                out[:, :, i, j] = np.tensordot(window, weight, axes=([1, 2, 3], [1, 2, 3]))
        return out + bias[None, :, None, None]

    def one_position_wrong(x, weight, bias, stride=1, padding=0):
        out = conv(x, weight, bias, stride, padding)
        out[0, 2, 8, 8] += 1.0  # a position no fixed sample would look at
        return out

    Checker().check_speed("conv2d_im2col", conv, x, w, b, padding=1, budget=5.0)
    with pytest.raises(GradingError, match=r"conv2d_im2col: output map \[0, 2\] sums to"):
        Checker().check_speed("conv2d_im2col", one_position_wrong, x, w, b, padding=1, budget=5.0)


def test_hidden_seeds_come_from_the_secret_only_in_hidden_tests():
    plain, first, second = Checker(), Checker(secret=b"run 1"), Checker(secret=b"run 2")
    assert (first.randn(3, seed=1) == plain.randn(3, seed=1)).all()  # visible tests: the seeds as written
    with first.hidden_tests(), second.hidden_tests():
        a, b = first.randn(3, seed=1), second.randn(3, seed=1)
        assert (a == first.randn(3, seed=1)).all() and not (a == b).all()
        assert not (a == plain.randn(3, seed=1)).all()


def test_hidden_tests_run_by_the_grader_draw_their_inputs_from_the_run_secret():
    from grading import kernel_side, portable, remote

    seen = []

    def spy(x, k):
        seen.append(x.copy())
        return corr2d(x, k)

    def honest(request):
        answer = kernel_side.answer(portable.decode(portable.encode(request)), {"corr2d": spy})
        return portable.decode(portable.encode(answer))

    check = 'grader.check("corr2d", corr2d, grader.randn(3, 3, seed=1), grader.randn(2, 2, seed=2))\n'
    cell = (f'"""corr2d: one visible, one hidden."""\n{check}'
            f"### BEGIN HIDDEN TESTS\n{check}### END HIDDEN TESTS\n")
    assert remote.run_test_cell(cell, honest) is None
    visible, hidden = seen
    assert (visible == Checker().randn(3, 3, seed=1)).all() and not (hidden == visible).all()


# ---------------------------------------------------------------------------- as a student sees them
# Per assignment, typical mistakes (from tests/test_exercises.py) filled into the released notebook.

from test_exercises import MISTAKES, apply_edits, solution_cells  # noqa: E402

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
# The case study's training is replaced by a model that is never trained: it fails in seconds.
UNTRAINED = "def train_lenet(x_train, y_train):\n    return build_lenet()\n"


def with_mistakes(assignment: str):
    released = nbformat.read(str(ROOT / "exercises" / assignment / f"{assignment}.ipynb"), as_version=4)
    solved = solution_cells(assignment)
    changes = {}
    for mistake in MISTAKES:
        if mistake.assignment == assignment and mistake.function not in changes:
            changes[mistake.function] = apply_edits(solved[mistake.function], mistake.edits)
    if assignment == "06_case_study":
        changes["train_lenet"] = UNTRAINED
    notebook = copy.deepcopy(released)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = changes.get(grade_id, solved[grade_id])
    return notebook, set(changes)


def run_as_student(assignment: str, folder: Path) -> tuple:
    notebook, functions = with_mistakes(assignment)
    folder.mkdir()
    path = folder / f"{assignment}.ipynb"
    nbformat.write(notebook, str(path))
    # As *Run All* in JupyterLab: a cell that raises stops the run unless it is tagged
    # raises-exception (every test cell and every cell that calls the student's functions is).
    client = NotebookClient(copy.deepcopy(notebook), timeout=300, allow_errors=False, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    executed = client.execute()
    validate = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)], cwd=folder,
                              env=nbgrader_env(), capture_output=True, text=True, timeout=600)
    return executed, functions, validate.stdout + validate.stderr


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("students")
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(lambda a: run_as_student(a, root / a), ASSIGNMENTS)))


def failing_cells(notebook) -> dict[str, list[str]]:
    found = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if meta.get("grade") and errors:
            found[meta["grade_id"]] = [ANSI.sub("", line) for line in errors[0].traceback]
    return found


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_failing_test_cells_read_well_in_the_notebook(students, assignment):
    executed, functions, _ = students[assignment]
    failing = failing_cells(executed)
    assert failing, "no test cell failed"
    for grade_id, lines in failing.items():
        function = next(f for f in sorted(functions, key=len, reverse=True)
                        if grade_id.startswith(f"test_{f}"))
        assert lines[0].startswith(function) or lines[0].startswith("Grading refused"), (grade_id, lines[0])
        assert len(lines[0]) <= 90, lines[0]
        assert not any("cnnlib/testing" in line or "Traceback" in line for line in lines), lines
        assert not any("ipykernel_" in line for line in lines), lines  # a cell is "Cell In[n]"


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_summary_lists_every_test_cell_after_a_failure(students, assignment):
    executed, _, _ = students[assignment]
    summary = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    tests = [c.metadata["nbgrader"]["grade_id"] for c in executed.cells
             if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    listed = [line.split()[2] for line in summary.splitlines() if line[:4] in ("pass", "FAIL", "skip")]
    assert listed == tests, summary
    failing = failing_cells(executed)
    lines = summary.splitlines()
    for line, below in zip(lines, lines[1:]):
        if line.startswith("FAIL"):
            grade_id, message = line.split()[2], below.strip()
            assert below.startswith("       ") and line.split()[2:] == [grade_id], (line, below)
            shown = failing[grade_id][0]
            assert shown in message or message in shown, (line, shown)


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_shows_each_failures_first_line_whole(students, assignment):
    executed, _, validated = students[assignment]
    assert "The following cell failed" in validated, validated[-2000:]
    for grade_id, lines in failing_cells(executed).items():
        assert f"    {lines[0]}\n" in validated, (grade_id, lines[0])
    assert "cnnlib/testing" not in validated


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_cuts_no_line_of_a_message(students, assignment):
    """nbgrader validate cuts lines past 90 characters with "...": the details are wrapped before."""
    _, _, validated = students[assignment]
    errors = [block.split("=" * 20)[0] for block in validated.split("The error was:")[1:]]
    assert errors
    for block in errors:
        assert not [line for line in block.splitlines() if line.endswith("...")], block


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_warns_about_no_test_cell(students, assignment):
    """A hidden-test cell shows nothing in the student's copy: no docstring as its result, which
    nbgrader validate would read as a score ("cannot be converted to a float")."""
    executed, _, validated = students[assignment]
    assert "cannot be converted to a float" not in validated, validated[-3000:]
    for cell in executed.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            assert not [o for o in cell.outputs if o.output_type == "execute_result"], cell.source


def test_the_summary_says_to_run_a_cell_whose_function_is_not_defined_yet(tmp_path, capsys):
    """Run only the summary (or Run All stopped early): a graded function the notebook defines
    but the kernel has not seen is not "not defined" but "run its cell"."""
    from cnnlib.testing.summary import summary

    def cell(source, **nbgrader):
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": nbgrader})

    notebook = nbformat.v4.new_notebook(cells=[
        cell("def corr2d(x, k):\n    return x\n", solution=True, grade_id="corr2d"),
        cell('"""corr2d: shape."""\ngrader.check("corr2d", corr2d, grader.randn(3, 3, seed=1), '
             'grader.randn(2, 2, seed=2))\n', grade=True, grade_id="test_corr2d_shape", points=1),
        cell('"""other: shape."""\nother(1)\n', grade=True, grade_id="test_other", points=1)])
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, str(path))
    rows = summary(Checker(), str(path))
    assert [(r[0], r[1]) for r in rows] == [("test_corr2d_shape", False), ("test_other", False)]
    assert rows[0][3].startswith("corr2d is not defined in the kernel yet: run the cell where you wrote it")
    assert rows[1][3] == "name 'other' is not defined"  # not one of the notebook's answers
    assert "run the cell where you wrote it" in capsys.readouterr().out


def test_the_checker_is_importable_from_anywhere(tmp_path):
    code = "from cnnlib.testing import grader, Checker; print(type(grader))"
    out = subprocess.run([sys.executable, "-c", code],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Checker" in out.stdout, out.stderr
