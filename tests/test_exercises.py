"""The graded notebooks: their structure, and real nbgrader runs on made-up submissions.

``solutions/`` holds nbgrader's source notebooks; ``exercises/`` is generated from them by
``make release``. The static tests read the notebooks. The ``grading`` tests copy
nbgrader_config.py, solutions/ and exercises/ into a fresh course directory per assignment,
create its gradebook from solutions/ with ``nbgrader generate_assignment``, and autograde, in
one ``nbgrader autograde`` run per assignment:

- the solutions, filled into the released notebook: full marks;
- the released notebook as it is: zero;
- typical mistakes, each made by editing one solution cell's source: the named test cell loses
  its points, with a message naming the mistake;
- tampering (replacing NumPy's comparisons or the grader, calling cnnlib's layers or torch):
  no points for the functions concerned.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from grading.worker import nbgrader_env, run_nbgrader

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").is_file())
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_cells(assignment: str) -> dict[str, str]:
    """grade_id -> source of each solution cell, without the BEGIN/END SOLUTION markers."""
    notebook = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    return {nbgrader_meta(c)["grade_id"]: MARKER.sub("", c.source)
            for c in notebook.cells if nbgrader_meta(c).get("solution")}


def graded_cells(assignment: str) -> dict:
    notebook = read(SOLUTIONS / assignment / f"{assignment}.ipynb")
    return {nbgrader_meta(c)["grade_id"]: c for c in notebook.cells if nbgrader_meta(c).get("grade")}


def function_of(test_id: str, functions) -> str:
    """The graded function a test cell checks: test_<function>_<what>."""
    matches = [f for f in functions if test_id == f"test_{f}" or test_id.startswith(f"test_{f}_")]
    assert matches, f"test cell {test_id} is not named test_<function>_..."
    return max(matches, key=len)


# ---------------------------------------------------------------------------- the notebooks


def test_assignments_are_the_ones_the_book_links_to():
    linked = re.findall(r"`exercises/([^/`]+)/([^/`]+)\.ipynb`", (ROOT / "book" / "AUTHORING.md").read_text())
    assert linked, "book/AUTHORING.md lists no graded notebook"
    assert sorted({a for a, _ in linked}) == ASSIGNMENTS
    for assignment, notebook in linked:
        assert assignment == notebook
        assert (EXERCISES / assignment / f"{notebook}.ipynb").is_file(), "run make release"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_solution_cell_defines_the_function_named_by_its_grade_id(assignment):
    for grade_id, source in solution_cells(assignment).items():
        definitions = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]
        assert [d.name for d in definitions] == [grade_id], f"{assignment}: cell {grade_id}"
        assert ast.get_docstring(definitions[0]), f"{grade_id} has no docstring"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_test_cell_has_points_a_one_line_docstring_and_a_function(assignment):
    functions = solution_cells(assignment)
    counts = dict.fromkeys(functions, 0)
    hidden = dict.fromkeys(functions, False)
    for grade_id, cell in graded_cells(assignment).items():
        meta = nbgrader_meta(cell)
        assert meta["locked"] and meta["points"] > 0, grade_id
        docstring = ast.get_docstring(ast.parse(cell.source))
        assert docstring and "\n" not in docstring, f"{grade_id}: needs a one-line docstring"
        function = function_of(grade_id, functions)
        assert docstring.startswith(f"{function}: "), grade_id
        counts[function] += 1
        hidden[function] |= "### BEGIN HIDDEN TESTS" in cell.source
    assert all(n >= 2 for n in counts.values()), f"several test cells per function: {counts}"
    assert all(hidden.values()), f"hidden tests for every function: {hidden}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_run_all_goes_past_a_failing_test(assignment):
    """Every code cell but the setup and the answers is tagged raises-exception (JupyterLab's Run
    All then goes on past it), and a hidden-test cell's docstring is no result for validate."""
    for cell in read(SOLUTIONS / assignment / f"{assignment}.ipynb").cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade_id") == "setup":
            continue
        assert "raises-exception" in cell.metadata.get("tags", []), (assignment, cell.source[:80])
        if "### BEGIN HIDDEN TESTS" in cell.source:
            assert cell.source.split("\n", 1)[0].endswith('""";'), (assignment, cell.source[:80])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_are_committed_without_outputs(assignment):
    for cell in read(SOLUTIONS / assignment / f"{assignment}.ipynb").cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_the_course_table_functions_are_graded():
    graded = {f for a in ASSIGNMENTS for f in solution_cells(a)}
    assert {"conv_output_size", "corr2d", "conv2d", "max_pool2d", "avg_pool2d", "conv2d_backward",
            "max_pool2d_backward"} <= graded


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(assignment):
    text = (EXERCISES / assignment / f"{assignment}.ipynb").read_text()
    for secret in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
        assert secret not in text


# ---------------------------------------------------------------------------- submissions


@dataclass(frozen=True)
class Mistake:
    """A typical mistake: edits (old -> new, every occurrence) to one solution cell."""

    name: str
    assignment: str
    function: str
    edits: tuple[tuple[str, str], ...]
    cell: str  # the test cell that must lose its points
    says: str  # ... with this in its message


@dataclass(frozen=True)
class Tampering:
    """Code prepended to (or replacing) solution cells; ``zeroed`` functions must get nothing."""

    name: str
    assignment: str
    sources: dict = field(hash=False)  # function -> (mode, code), mode "prepend" or "replace"
    zeroed: tuple[str, ...]
    says: str
    intact: tuple[str, ...] = ()  # functions that must keep full marks


MISTAKES = [
    Mistake("corr2d_flipped_kernel", "01_convolution", "corr2d",
            (("np.sum(x[i:i + kh, j:j + kw] * k)", "np.sum(x[i:i + kh, j:j + kw] * k[::-1, ::-1])"),),
            "test_corr2d_lecture_example", "a flipped kernel"),
    Mistake("convolve2d_no_flip", "01_convolution", "convolve2d",
            (("corr2d(x, k[::-1, ::-1])", "corr2d(x, k)"),), "test_convolve2d_1d_example", "no flip"),
    Mistake("conv_output_size_floor", "01_convolution", "conv_output_size",
            (("if span % stride:", "if False:"),), "test_conv_output_size_does_not_fit",
            "rounding down a stride that does not fit"),
    Mistake("conv_output_size_no_plus_one", "01_convolution", "conv_output_size",
            (("return span // stride + 1", "return span // stride"),), "test_conv_output_size_strides",
            "without the + 1"),
    Mistake("pad2d_one_side", "02_channels_stride_padding", "pad2d",
            (("out[:, :, padding:padding + h, padding:padding + w] = x", "out[:, :, :h, :w] = x"),),
            "test_pad2d_values", "all the padding on one side"),
    Mistake("conv2d_missing_bias", "02_channels_stride_padding", "conv2d",
            (("out += bias[None, :, None, None]", "pass"),), "test_conv2d_bias", "a missing bias"),
    Mistake("conv2d_flipped_kernel", "02_channels_stride_padding", "conv2d",
            (("np.tensordot(window, weight,", "np.tensordot(window, weight[:, :, ::-1, ::-1],"),),
             "test_conv2d_deck_004", "a flipped kernel"),
    Mistake("conv2d_padding_one_side", "02_channels_stride_padding", "conv2d",
            (("xp = pad2d(x, padding)", "xp = pad2d(x, padding)[:, :, :h + padding, :w + padding]"),
             ("+ 2 * padding - kh", "+ padding - kh"), ("+ 2 * padding - kw", "+ padding - kw")),
            "test_conv2d_padding", "padding on one side only"),
    Mistake("conv2d_stride_ignored", "02_channels_stride_padding", "conv2d",
            (("// stride + 1", "+ 1"), ("i * stride:i * stride + kh", "i:i + kh"),
             ("j * stride:j * stride + kw", "j:j + kw")), "test_conv2d_stride", "the stride ignored"),
    Mistake("conv_params_no_bias", "02_channels_stride_padding", "conv_params",
            (("kernel_size * kernel_size + 1)", "kernel_size * kernel_size)"),), "test_conv_params_lecture",
            "the biases forgotten"),
    Mistake("max_pool2d_default_stride_1", "03_pooling", "max_pool2d",
            (("stride = kernel_size if stride is None", "stride = 1 if stride is None"),),
            "test_max_pool2d_deck_001", "the stride ignored (or a default stride of 1)"),
    Mistake("max_pool2d_starts_at_zero", "03_pooling", "max_pool2d",
            (("window.max(axis=(2, 3))", "np.maximum(window.max(axis=(2, 3)), 0)"),),
            "test_max_pool2d_negative", "the maximum started at 0"),
    Mistake("avg_pool2d_divisor", "03_pooling", "avg_pool2d",
            (("/ (kernel_size * kernel_size)", "/ kernel_size"),), "test_avg_pool2d_deck_004",
            "the average's divisor"),
    Mistake("conv2d_backward_bias_not_summed_over_batch", "04_backprop", "conv2d_backward",
            (("grad_out.sum(axis=(0, 2, 3))", "grad_out.sum(axis=(2, 3))"),),
            "test_conv2d_backward_grad_bias",
            "a bias gradient not summed over the batch"),
    Mistake("conv2d_backward_kernel_not_flipped", "04_backprop", "conv2d_backward",
            (("np.tensordot(g, weight, axes", "np.tensordot(g, weight[:, :, ::-1, ::-1], axes"),),
            "test_conv2d_backward_grad_x", "the kernel not flipped"),
    Mistake("max_pool2d_backward_whole_window", "04_backprop", "max_pool2d_backward",
            (("grad_x[a, b, r + m, s + q] += grad_out[a, b, i, j]",
              "grad_x[a, b, r:r + kernel_size, s:s + kernel_size] += grad_out[a, b, i, j]"),),
            "test_max_pool2d_backward_deck_001", "the gradient sent to the whole window"),
    Mistake("numerical_gradient_forward_difference", "04_backprop", "numerical_gradient",
            (("flat[i] = original - eps\n        minus = f(x)", "flat[i] = original\n        minus = f(x)"),
             ("(plus - minus) / (2 * eps)", "(plus - minus) / eps")),
            "test_numerical_gradient_default_eps", "forward differences"),
    Mistake("conv_transpose2d_flipped_kernel", "05_everything_is_a_convolution", "conv_transpose2d",
            (("tensordot(x[:, :, i, j], weight,", "tensordot(x[:, :, i, j], weight[:, :, ::-1, ::-1],"),),
            "test_conv_transpose2d_deck_004", "a flipped kernel"),
    Mistake("dilate_kernel_d_zeros", "05_everything_is_a_convolution", "dilate_kernel",
            (("dilation * (kh - 1) + 1, dilation * (kw - 1) + 1", "(dilation + 1) * (kh - 1) + 1, "
              "(dilation + 1) * (kw - 1) + 1"), ("::dilation, ::dilation", "::dilation + 1, ::dilation + 1")),
            "test_dilate_kernel_values", "D zeros between taps"),
    Mistake("separable_mults_no_pointwise", "05_everything_is_a_convolution", "separable_mults",
            (("return standard, depthwise + pointwise", "return standard, depthwise"),),
            "test_separable_mults_deck_002", "the pointwise (1x1) step forgotten"),
    Mistake("linear_as_conv_hwc_order", "05_everything_is_a_convolution", "linear_as_conv",
            (("weight.reshape(weight.shape[0], *in_shape)",
              "weight.reshape(weight.shape[0], in_shape[1], in_shape[2], in_shape[0])"
              ".transpose(0, 3, 1, 2)"),),
            "test_linear_as_conv_values", "(H, W, C) order"),
    Mistake("build_lenet_missing_pool", "06_case_study", "build_lenet",
            (("nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),", "nn.Conv2d(1, 6, 5), nn.ReLU(),"),),
            "test_build_lenet_layers", "a missing pooling layer"),
    Mistake("accuracy_count_not_fraction", "06_case_study", "accuracy",
            (("np.mean(", "np.sum("),), "test_accuracy_example", "a count instead of a fraction"),
    Mistake("train_epoch_no_zero_grad", "06_case_study", "train_epoch",
            (("optimizer.zero_grad()", "pass"),), "test_train_epoch_parameters",
            "a missing optimizer.zero_grad()"),
    Mistake("train_lenet_one_epoch", "06_case_study", "train_lenet",
            (("epochs=7", "epochs=1"),), "test_train_lenet", "the target is 93%"),
    Mistake("im2col_channel_last", "07_making_convolution_fast", "im2col",
            (("return cols.reshape(", "return cols.transpose(0, 2, 3, 1, 4, 5).reshape("),),
            "test_im2col_channels", "rows ordered (kernel row, kernel column, channel)"),
    Mistake("conv2d_im2col_missing_bias", "07_making_convolution_fast", "conv2d_im2col",
            (("out += bias[None, :, None, None]", "pass"),), "test_conv2d_im2col_values", "a missing bias"),
]

TAMPERING = [
    Tampering("numpy_comparisons_replaced", "01_convolution", {
        "corr2d": ("prepend", "np.allclose = lambda *args, **kwargs: True\n"
                              "np.testing.assert_allclose = lambda *args, **kwargs: None\n")},
        zeroed=("corr2d", "convolve2d", "conv_output_size"), says="np.allclose is not NumPy's own function"),
    Tampering("grader_functions_replaced", "01_convolution", {
        "corr2d": ("replace", "import cnnlib.testing\n"
                              "cnnlib.testing.check = lambda *args, **kwargs: None\n"
                              "cnnlib.testing.GradingError = Warning\n\n"
                              "def corr2d(x, k):\n    return np.zeros((x.shape[0] - k.shape[0] + 1, "
                              "x.shape[1] - k.shape[1] + 1))\n")},
        zeroed=("corr2d", "convolve2d", "conv_output_size"),
        says="Grading refused: cnnlib.testing.GradingError has been replaced"),
    Tampering("reference_layers_called", "01_convolution", {
        "corr2d": ("replace", "import cnnlib.functional\n\ndef corr2d(x, k):\n"
                              "    return cnnlib.functional.conv2d(x[None, None], k[None, None])[0, 0]\n"),
        "conv_output_size": ("replace", "from cnnlib.shapes import conv_output_size as _size\n\n"
                                        "def conv_output_size(n, f, stride=1, padding=0):\n"
                                        "    return _size(n, f, stride, padding, strict=True)\n")},
        # convolve2d calls corr2d, so it reaches cnnlib too.
        zeroed=("corr2d", "convolve2d", "conv_output_size"), says="Grading refused: corr2d called conv2d"),
    Tampering("torch_called", "02_channels_stride_padding", {
        "conv2d": ("replace", "def conv2d(x, weight, bias, stride=1, padding=0):\n    import torch\n"
                              "    return torch.nn.functional.conv2d(\n"
                              "        torch.from_numpy(x), torch.from_numpy(weight),\n"
                              "        torch.from_numpy(bias), stride=stride, padding=padding).numpy()\n")},
        zeroed=("conv2d",), says="Grading refused: conv2d called torch", intact=("pad2d", "conv_params")),
    Tampering("builtins_replaced", "03_pooling", {
        "max_pool2d": ("prepend", "import builtins\nbuiltins.abs = lambda value: 0\n")},
        zeroed=("max_pool2d", "avg_pool2d"), says="the builtin 'abs' has been replaced"),
    Tampering("reference_backward_called", "04_backprop", {
        "conv2d_backward": ("replace", "import cnnlib.functional as _F\n\n"
                                       "def conv2d_backward(grad_out, x, weight, stride=1, padding=0):\n"
                                       "    return _F.conv2d_backward(grad_out, x, weight, stride,\n"
                                       "                              padding)\n"),
        "max_pool2d_backward": ("replace", "from cnnlib.functional import max_pool2d_backward\n")},
        zeroed=("conv2d_backward", "max_pool2d_backward"), says="Grading refused: conv2d_backward called",
        intact=("numerical_gradient",)),
    Tampering("reference_transpose_called", "05_everything_is_a_convolution", {
        "conv_transpose2d": ("replace", "def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):\n"
                                        "    import cnnlib.functional as F\n"
                                        "    return F.conv_transpose2d(x, weight, bias, stride, padding)\n")},
        zeroed=("conv_transpose2d",), says="Grading refused: conv_transpose2d called",
        intact=("dilate_kernel", "separable_mults", "linear_as_conv")),
    Tampering("ready_made_lenet", "06_case_study", {
        "build_lenet": ("replace",
                        "from cnnlib import models\n\ndef build_lenet():\n    return models.lenet5()\n")},
        zeroed=("build_lenet", "train_lenet"), says="Grading refused: build_lenet called lenet5",
        intact=("accuracy", "train_epoch")),
    Tampering("monitor_switched_off", "07_making_convolution_fast", {
        "conv2d_im2col": ("replace", "import sys\nimport cnnlib.functional as _F\n\n"
                                     "def conv2d_im2col(x, weight, bias, stride=1, padding=0):\n"
                                     "    sys.setprofile(None)\n"
                                     "    return _F.conv2d(x, weight, bias, stride, padding)\n")},
        zeroed=("conv2d_im2col",), says="Grading refused: conv2d_im2col called sys.setprofile",
        intact=("im2col",)),
]


# Solutions that call another graded function: a mistake there may cost these points too.
DEPENDENT = {"corr2d": {"convolve2d"}, "pad2d": {"conv2d"}, "build_lenet": {"train_lenet"},
             "train_epoch": {"train_lenet"}, "im2col": {"conv2d_im2col"}}


def apply_edits(source: str, edits) -> str:
    for old, new in edits:
        assert old in source, f"the mistake no longer applies: {old!r} is not in the solution; update it"
        source = source.replace(old, new)
    return source


def submissions(assignment: str) -> dict[str, object]:
    """student id -> notebook, all built from the released notebook and the solution cells."""
    released = read(EXERCISES / assignment / f"{assignment}.ipynb")
    solved = solution_cells(assignment)

    def filled(changes: dict[str, str]):
        notebook = copy.deepcopy(released)
        for cell in notebook.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if nbgrader_meta(cell).get("solution"):
                cell.source = changes.get(grade_id, solved[grade_id])
        return notebook

    result = {"release": released, "solution": filled({})}
    for mistake in MISTAKES:
        if mistake.assignment == assignment:
            result[f"mistake-{mistake.name}"] = filled(
                {mistake.function: apply_edits(solved[mistake.function], mistake.edits)})
    for tampering in TAMPERING:
        if tampering.assignment == assignment:
            result[f"tamper-{tampering.name}"] = filled({
                function: code + solved[function] if mode == "prepend" else code
                for function, (mode, code) in tampering.sources.items()})
    return result


# ---------------------------------------------------------------------------- nbgrader runs


@dataclass
class Graded:
    """One assignment's autograde: per student, per test cell, (score, max score, message)."""

    seconds: float = 0.0
    cells: dict = field(default_factory=dict)
    fresh_release: dict = field(default_factory=dict)
    log: str = ""


def nbgrader(course: Path, *args: str) -> str:
    """Run ``nbgrader ARGS`` in ``course`` as ``make grade`` does; its output, or fail the test."""
    # This environment's python3 kernel first, before any kernel a user installed elsewhere.
    jupyter_path = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "share" / "jupyter"),
                                                 os.environ.get("JUPYTER_PATH")]))
    code, log = run_nbgrader(course, list(args), nbgrader_env({"JUPYTER_PATH": jupyter_path}))
    assert code == 0, f"nbgrader {' '.join(args)} failed:\n{log}"
    return log


def error_text(cell) -> str:
    parts = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    return ANSI.sub("", "\n".join("\n".join(o.traceback) for o in parts))


def autograde(assignment: str, root: Path) -> Graded:
    import time

    from nbgrader.api import Gradebook

    course = root / assignment
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / assignment, course / folder / assignment)
    start = time.perf_counter()
    log = nbgrader(course, "generate_assignment", assignment, "--force",
                   "--CourseDirectory.release_directory=fresh_release")
    for student, notebook in submissions(assignment).items():
        path = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, str(path))
    # nbgrader's own autograde (test cells in the student's kernel, as `nbgrader validate` runs them):
    # the course switches it off for real grading, which `make grade` does in its sandbox.
    log += nbgrader(course, "autograde", assignment,
                    "--Autograde.exporter_class=nbconvert.exporters.NotebookExporter")
    graded = Graded(seconds=time.perf_counter() - start, log=log)
    for path in (course / "fresh_release" / assignment).iterdir():
        graded.fresh_release[path.name] = json.loads(path.read_text())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in submissions(assignment):
            notebook = read(course / "autograded" / student / assignment / f"{assignment}.ipynb")
            messages = {nbgrader_meta(c).get("grade_id"): error_text(c) for c in notebook.cells}
            graded.cells[student] = {}
            for grade_id in graded_cells(assignment):
                grade = gradebook.find_grade(grade_id, assignment, assignment, student)
                graded.cells[student][grade_id] = (grade.score, grade.max_score, messages.get(grade_id, ""))
    return graded


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict[str, Graded]:
    """Every assignment autograded, two at a time (the case study, the slowest, first)."""
    root = tmp_path_factory.mktemp("courses")
    order = sorted(ASSIGNMENTS, key=lambda a: a != "06_case_study")
    workers = max(1, min(len(order), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) as pool:
        results = dict(zip(order, pool.map(lambda a: autograde(a, root), order)))
    report = ", ".join(f"{a} {results[a].seconds:.0f} s" for a in ASSIGNMENTS)
    print(f"\nautograde: {report}")
    return results


def scores_by_function(cells: dict, assignment: str) -> dict[str, tuple[float, float]]:
    functions = solution_cells(assignment)
    totals = {f: [0.0, 0.0] for f in functions}
    for grade_id, (score, max_score, _) in cells.items():
        total = totals[function_of(grade_id, functions)]
        total[0] += score
        total[1] += max_score
    return {f: (s, m) for f, (s, m) in totals.items()}


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_what_nbgrader_generates(graded, assignment):
    committed = {p.name: json.loads(p.read_text()) for p in (EXERCISES / assignment).iterdir()}
    assert committed == graded[assignment].fresh_release, "exercises/ is stale: run make release"


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_score_full_marks(graded, assignment):
    cells = graded[assignment].cells["solution"]
    failed = {g: message[-1500:] for g, (score, max_score, message) in cells.items() if score != max_score}
    assert not failed, failed


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_score_zero(graded, assignment):
    cells = graded[assignment].cells["release"]
    assert {g: score for g, (score, _, _) in cells.items() if score != 0} == {}
    unexplained = {g: message[-500:] for g, (_, _, message) in cells.items()
                   if "is not implemented yet" not in message}
    assert unexplained == {}


@pytest.mark.grading
@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_typical_mistakes_lose_points_with_a_message_naming_them(graded, mistake):
    cells = graded[mistake.assignment].cells[f"mistake-{mistake.name}"]
    score, max_score, message = cells[mistake.cell]
    assert score == 0 and max_score > 0, f"{mistake.cell} passed"
    assert mistake.says in " ".join(message.split()), message[-2000:]  # details are wrapped
    by_function = scores_by_function(cells, mistake.assignment)
    lost = by_function[mistake.function]
    assert lost[0] < lost[1]
    # The function's own cells that pass still earn their points: credit is partial.
    full = scores_by_function(graded[mistake.assignment].cells["solution"], mistake.assignment)
    others = {f: s for f, s in by_function.items() if f != mistake.function and s != full[f]}
    dependent = DEPENDENT.get(mistake.function, set())
    assert set(others) <= dependent, f"a mistake in {mistake.function} cost points elsewhere: {others}"


@pytest.mark.grading
@pytest.mark.parametrize("tampering", TAMPERING, ids=[t.name for t in TAMPERING])
def test_tampering_gets_no_points(graded, tampering):
    cells = graded[tampering.assignment].cells[f"tamper-{tampering.name}"]
    by_function = scores_by_function(cells, tampering.assignment)
    for function in tampering.zeroed:
        assert by_function[function][0] == 0, f"{function} earned {by_function[function]}"
    for function in tampering.intact:
        assert by_function[function][0] == by_function[function][1], f"{function} lost points"
    messages = "\n".join(message for _, _, message in cells.values())
    assert tampering.says in " ".join(messages.split()), messages[-3000:]
