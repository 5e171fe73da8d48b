"""cnnlib.testing, the graded notebooks' checker: right answers pass, each known mistake is named,
its pure-Python references agree with cnnlib's layers, and tampering gets no points."""

from __future__ import annotations

import builtins
import dis
import importlib
import inspect
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

import cnnlib.functional as F
import cnnlib.testing
from cnnlib.testing import Checker, GradingError, inputs
from cnnlib.testing import references as R
from cnnlib.testing import tensors as T

PACKAGE = Path(cnnlib.testing.__file__).parent


@pytest.fixture
def grader():
    return Checker()


# ---------------------------------------------------------------------------- student functions


def corr2d(x, k):
    h, w = x.shape
    kh, kw = k.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)
    return out


def conv2d(x, weight, bias, stride=1, padding=0):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    c_out, _, kh, kw = weight.shape
    h_out = (xp.shape[2] - kh) // stride + 1
    w_out = (xp.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], c_out, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(window, weight, axes=([1, 2, 3], [1, 2, 3]))
    return out if bias is None else out + bias[None, :, None, None]


def pool(reduce):
    def pool2d(x, kernel_size, stride=None):
        stride = kernel_size if stride is None else stride
        h_out = (x.shape[2] - kernel_size) // stride + 1
        w_out = (x.shape[3] - kernel_size) // stride + 1
        out = np.zeros((*x.shape[:2], h_out, w_out))
        for i in range(h_out):
            for j in range(w_out):
                window = x[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
                out[:, :, i, j] = reduce(window)
        return out
    return pool2d


max_pool2d = pool(lambda w: w.max(axis=(2, 3)))
avg_pool2d = pool(lambda w: w.mean(axis=(2, 3)))


def conv_output_size(n, f, stride=1, padding=0):
    span = n + 2 * padding - f
    if span < 0 or span % stride:
        raise ValueError("stride does not fit")
    return span // stride + 1


def conv2d_backward(grad_out, x, weight, stride=1, padding=0):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    grad_xp, grad_w = np.zeros_like(xp), np.zeros_like(weight)
    kh, kw = weight.shape[2:]
    for i in range(grad_out.shape[2]):
        for j in range(grad_out.shape[3]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            grad_w += np.tensordot(grad_out[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            grad_xp[:, :, rows, cols] += np.tensordot(grad_out[:, :, i, j], weight, axes=([1], [0]))
    h, w = x.shape[2:]
    return grad_xp[:, :, padding:padding + h, padding:padding + w], grad_w, grad_out.sum(axis=(0, 2, 3))


def mutating_corr2d(x, k):
    result = corr2d(x, k)
    x[0, 0] = 99.0
    return result


# ---------------------------------------------------------------------------- right answers pass


def test_right_answers_pass(grader):
    x = grader.array([[1, 2, 4, 3], [5, 6, 8, 7], [9, 10, 12, 11], [13, 14, 16, 2]])
    grader.check("corr2d", corr2d, x, grader.array([[1, -2], [-3, 4]]),
                 expected=[[6, 8, 2], [6, 8, 2], [6, 8, -50]])
    x, w, b = grader.randn(2, 3, 7, 7, seed=1), grader.randn(4, 3, 3, 3, seed=2), grader.randn(4, seed=3)
    grader.check("conv2d", conv2d, x, w, b, stride=2, padding=1)
    grader.check("max_pool2d", max_pool2d, grader.randn(2, 2, 7, 7, seed=4), 3, stride=2)
    grader.check("avg_pool2d", avg_pool2d, grader.randn(2, 2, 6, 6, seed=5), 2)
    grader.check("conv_output_size", conv_output_size, 7, 3, stride=2)
    grader.check("conv_output_size", conv_output_size, 7, 3, stride=3)  # both raise ValueError
    g = grader.randn(2, 4, 4, 4, seed=6)
    grader.check("conv2d_backward", conv2d_backward, g, x, w, stride=2, padding=1)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (3, 0), (1, 2)])
def test_the_pure_python_references_agree_with_cnnlib(grader, stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    x, w, b = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    tensor = lambda a: T._tensor(a.shape, a.reshape(-1).tolist())  # noqa: E731
    out = R._conv(tensor(x), tensor(w), tensor(b), (stride, stride), (padding,) * 4)
    np.testing.assert_allclose(np.reshape(out[1], out[0]), F.conv2d(x, w, b, stride, padding))
    g = rng.standard_normal(out[0])
    expected = F.conv2d_backward(g, x, w, stride, padding)
    grads = R._conv_backward(tensor(g), tensor(x), tensor(w), (stride,) * 2, (padding,) * 4)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(np.reshape(got[1], got[0]), want)
    for reduce, layer in ((max, F.max_pool2d), (R._mean, F.avg_pool2d)):
        pooled = R._pool(tensor(x), (3, 3), (stride, stride), reduce)
        np.testing.assert_allclose(np.reshape(pooled[1], pooled[0]), layer(x, 3, stride))
    wt = rng.standard_normal((3, 2, 3, 3))
    transposed = R._conv_transpose(tensor(x), tensor(wt), None, (stride,) * 2, (padding % 2,) * 2)
    np.testing.assert_allclose(np.reshape(transposed[1], transposed[0]),
                               F.conv_transpose2d(x, wt, stride=stride, padding=padding % 2))


def test_max_pool_backward_reference_agrees_with_cnnlib(grader):
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((2, 2, 7, 7)), rng.standard_normal((2, 2, 3, 3))
    tensor = lambda a: T._tensor(a.shape, a.reshape(-1).tolist())  # noqa: E731
    got = R._pool_backward(tensor(g), tensor(x), (3, 3), (2, 2), R._to_max)
    np.testing.assert_allclose(np.reshape(got[1], got[0]), F.max_pool2d_backward(g, x, 3, 2))


# ---------------------------------------------------------------------------- mistakes are named


def flipped_corr2d(x, k):
    return corr2d(x, k[::-1, ::-1])


def conv2d_without_bias(x, weight, bias, stride=1, padding=0):
    return conv2d(x, weight, None, stride, padding)


def conv2d_padding_top_left(x, weight, bias, stride=1, padding=0):
    x = np.pad(x, ((0, 0), (0, 0), (padding, 0), (padding, 0)))
    return conv2d(x, weight, bias, stride, 0)


def conv2d_ignoring_stride(x, weight, bias, stride=1, padding=0):
    return conv2d(x, weight, bias, 1, padding)


def conv2d_transposed_weight(x, weight, bias, stride=1, padding=0):
    return conv2d(x, weight.transpose(1, 0, 2, 3), bias, stride, padding)


def avg_pool_divided_by_k(x, kernel_size, stride=None):
    return avg_pool2d(x, kernel_size, stride) * kernel_size


def bias_grad_per_image(grad_out, x, weight, stride=1, padding=0):
    grad_x, grad_w, _ = conv2d_backward(grad_out, x, weight, stride, padding)
    return grad_x, grad_w, grad_out.sum(axis=(2, 3))


def max_pool_backward_whole_window(grad_out, x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    grad = np.zeros_like(x)
    for i in range(grad_out.shape[2]):
        for j in range(grad_out.shape[3]):
            grad[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += \
                grad_out[:, :, i, j][:, :, None, None]
    return grad


def conv_output_size_floor(n, f, stride=1, padding=0):
    return (n + 2 * padding - f) // stride + 1


def conv_output_size_without_padding(n, f, stride=1, padding=0):
    return (n - f) // stride + 1


def im2col_one_window_short(x, kernel_size, stride=1, padding=0):
    """The output size without its + 1: one row and one column of windows too few."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - kernel_size) // stride, (w + 2 * padding - kernel_size) // stride
    cols = np.empty((n, c * kernel_size * kernel_size, ho * wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
            cols[:, :, i * wo + j] = window.reshape(n, -1)
    return cols


def convolve2d_flipping_rows(x, k):
    return corr2d(x, k[::-1])


MISTAKE_CASES = [
    ("conv_output_size", conv_output_size_without_padding, lambda g: (32, 5), {"padding": 2},
     "the padding ignored"),
    ("im2col", im2col_one_window_short, lambda g: (g.randn(1, 2, 5, 5, seed=1), 3), {},
     "one row and column of windows too few"),
    ("convolve2d", convolve2d_flipping_rows, lambda g: (g.array([[1, 2, 3, 4]]), g.array([[1, 2, 3]])), {},
     "this kernel has one row: flipping the rows alone changes nothing"),
    ("corr2d", flipped_corr2d, lambda g: (g.randn(5, 6, seed=1), g.randn(2, 3, seed=2)), {},
     "a flipped kernel"),
    ("conv2d", conv2d_without_bias, lambda g: (g.randn(1, 2, 5, 5, seed=1), g.randn(3, 2, 3, 3, seed=2),
                                               g.randn(3, seed=3)), {}, "a missing bias"),
    ("conv2d", conv2d_padding_top_left, lambda g: (g.randn(1, 2, 6, 6, seed=1), g.randn(2, 2, 3, 3, seed=2),
                                                   g.randn(2, seed=3)), {"padding": 1},
     "padding on one side only (top and left)"),
    ("conv2d", conv2d_ignoring_stride, lambda g: (g.randn(1, 1, 7, 7, seed=1), g.randn(1, 1, 3, 3, seed=2),
                                                  g.randn(1, seed=3)), {"stride": 2}, "the stride ignored"),
    ("conv2d", conv2d_transposed_weight, lambda g: (g.randn(1, 3, 5, 5, seed=1), g.randn(3, 3, 3, 3, seed=2),
                                                    g.randn(3, seed=3)), {}, "a transposed weight"),
    ("avg_pool2d", avg_pool_divided_by_k, lambda g: (g.randn(1, 1, 4, 4, seed=1), 2), {},
     "the average's divisor"),
    ("conv_output_size", conv_output_size_floor, lambda g: (7, 3), {"stride": 3},
     "rounding down a stride that does not fit"),
    ("max_pool2d_backward", max_pool_backward_whole_window,
     lambda g: (g.randn(1, 2, 2, 2, seed=1), g.randn(1, 2, 4, 4, seed=2), 2), {},
     "the gradient sent to the whole window"),
]


@pytest.mark.parametrize("name, function, arguments, options, says", MISTAKE_CASES,
                         ids=[case[1].__name__ for case in MISTAKE_CASES])
def test_each_known_mistake_is_named(grader, name, function, arguments, options, says):
    with pytest.raises(GradingError) as failure:
        grader.check(name, function, *arguments(grader), **options)
    text = " ".join(str(failure.value).split())  # the details are wrapped to fit nbgrader validate
    assert says in text
    assert "formula" in text or "should raise" in text


def test_a_bias_gradient_not_summed_over_the_batch_is_named_by_its_shape(grader):
    g, x = grader.randn(3, 2, 3, 3, seed=1), grader.randn(3, 2, 5, 5, seed=2)
    w = grader.randn(2, 2, 3, 3, seed=3)
    with pytest.raises(GradingError) as failure:
        grader.check("conv2d_backward", bias_grad_per_image, g, x, w, part="grad_bias")
    message = " ".join(str(failure.value).split())
    assert "expected shape (2,), got shape (3, 2)" in message
    assert "a bias gradient not summed over the batch" in message


def test_values_report_the_first_difference(grader):
    def off_by_one(x, k):
        out = corr2d(x, k)
        out[1, 2] += 1
        return out
    with pytest.raises(GradingError) as failure:
        grader.check("corr2d", off_by_one, grader.randn(4, 5, seed=1), grader.randn(2, 2, seed=2))
    text = " ".join(str(failure.value).split())  # the details are wrapped to fit nbgrader validate
    assert "first difference at [1, 2]" in text
    assert "1 of 12 values differ" in text


def test_a_wrong_hand_computed_answer_is_a_grader_bug(grader):
    with pytest.raises(RuntimeError, match="grader bug"):
        grader.check("corr2d", corr2d, grader.array([[1, 2], [3, 4]]), grader.array([[1]]),
                     expected=[[1, 2], [3, 5]])


@pytest.mark.parametrize("returned, says", [
    (None, "forgot to return it?"), ([[1.0]], "wrap it in np.array"),
    (np.ma.masked_array([[1.0]]), "should be a NumPy array"),
])
def test_what_comes_back_must_be_a_plain_array(grader, returned, says):
    with pytest.raises(GradingError, match=says):
        grader.check("corr2d", lambda x, k: returned, grader.randn(2, 2), grader.randn(2, 2))


def test_exceptions_and_unfinished_work_are_reported(grader):
    def unfinished(x, k):
        raise NotImplementedError()

    def broken(x, k):
        return x[10, 10]
    with pytest.raises(GradingError, match="not implemented yet"):
        grader.check("corr2d", unfinished, grader.randn(2, 2), grader.randn(1, 1))
    with pytest.raises(GradingError, match="raised IndexError") as failure:
        grader.check("corr2d", broken, grader.randn(2, 2), grader.randn(1, 1))
    assert isinstance(failure.value.__cause__, IndexError)


def test_an_int_is_expected_from_conv_output_size(grader):
    with pytest.raises(GradingError, match="returned 5.0, a float instead of an int"):
        grader.check("conv_output_size", lambda n, f, stride=1, padding=0: 5.0, 7, 3)


def test_changing_an_input_in_place_fails(grader):
    with pytest.raises(GradingError, match=r"changed its argument x in place \(x\[0, 0\]"):
        grader.check("corr2d", mutating_corr2d, grader.randn(3, 3), grader.randn(2, 2))


def test_reshaping_an_input_in_place_fails_with_its_own_message(grader):
    """``x.shape = ...`` keeps every value: the message names the shape (a StopIteration escaped)."""
    def reshapes(x, k):
        x.shape = (x.size,)
        x.shape = (3, 3) if x.size == 9 else x.shape
        k.shape = (k.size, 1)
        return np.zeros((2, 2))

    with pytest.raises(GradingError, match=r"changed the shape of its argument k in place \(from \(2, 2\) "
                                           r"to \(4, 1\)\)"):
        grader.check("corr2d", reshapes, grader.randn(3, 3), grader.randn(2, 2))


def test_integer_arrays_arrive_as_integer_labels(grader):
    """A dataset's labels are int64, and index arrays: a test must pass them as such."""
    def accuracy(logits, labels):
        assert labels.dtype == np.int64 and logits.dtype == np.float64
        return float(np.mean(logits[np.arange(len(labels)), labels] == logits.max(axis=1)))

    grader.check("accuracy", accuracy, grader.array([[0, 1], [1, 0], [0, 1], [1, 0]]),
                 grader.labels([1, 0, 0, 0]), expected=0.75)
    grader.check("accuracy", accuracy, grader.randn(50, 10, seed=1), grader.randlabels(10, 50, seed=2))


def test_the_students_stderr_stays_out_of_the_cell(grader, capsys):
    def noisy(x, k):
        print("progress", file=sys.stderr)
        return corr2d(x, k)
    grader.check("corr2d", noisy, grader.randn(3, 3), grader.randn(2, 2))
    assert capsys.readouterr().err == ""


def test_speed_budget(grader):
    x, w, b = grader.randn(1, 2, 8, 8, seed=1), grader.randn(2, 2, 3, 3, seed=2), grader.randn(2, seed=3)
    grader.check_speed("conv2d_im2col", conv2d, x, w, b, padding=1, budget=5.0)
    with pytest.raises(GradingError, match="the budget is 0.00 s"):
        grader.check_speed("conv2d_im2col", conv2d, x, w, b, padding=1, budget=0.0)


def test_a_speed_answer_cached_on_the_public_inputs_fails_when_graded():
    """An attacker's audit: the answer computed in an earlier, untimed cell for the test cell's
    seeds, returned at once. Graded (with a secret), the timed inputs are changed by the secret."""
    x, w, b = (inputs.randn(1, 2, 8, 8, seed=1), inputs.randn(2, 2, 3, 3, seed=2), inputs.randn(2, seed=3))
    cached = conv2d(x, w, b, padding=1)

    def instant(x, weight, bias, stride=1, padding=0):
        return cached.copy()

    Checker().check_speed("conv2d_im2col", instant, x, w, b, padding=1, budget=5.0)  # a student's own run
    with pytest.raises(GradingError, match="conv2d_im2col: "):
        Checker(secret=b"term secret").check_speed("conv2d_im2col", instant, x, w, b, padding=1, budget=5.0)
    Checker(secret=b"term secret").check_speed("conv2d_im2col", conv2d, x, w, b, padding=1, budget=5.0)


def test_numerical_gradient_check(grader):
    def central(f, x, eps=1e-6):
        grad = np.zeros_like(x)
        for i in range(x.size):
            old = x.flat[i]
            x.flat[i] = old + eps
            plus = f(x)
            x.flat[i] = old - eps
            minus = f(x)
            x.flat[i] = old
            grad.flat[i] = (plus - minus) / (2 * eps)
        return grad

    def forward(f, x, eps=1e-6):
        grad, base = np.zeros_like(x), f(x)
        for i in range(x.size):
            old = x.flat[i]
            x.flat[i] = old + eps
            grad.flat[i] = (f(x) - base) / eps
            x.flat[i] = old
        return grad
    grader.check("numerical_gradient", central, grader.cubic(6, seed=1), grader.randn(2, 3, seed=2), eps=1e-3)
    with pytest.raises(GradingError, match="forward differences"):
        grader.check("numerical_gradient", forward, grader.cubic(6, seed=1), grader.randn(2, 3, seed=2),
                     eps=1e-3)
    # At the default eps (1e-6), forward differences are off by eps f''/2: a steep cubic shows it.
    steep = grader.cubic(5, seed=3, scale=100)
    grader.check("numerical_gradient", central, steep, grader.randn(5, seed=4))
    with pytest.raises(GradingError, match="forward differences"):
        grader.check("numerical_gradient", forward, steep, grader.randn(5, seed=4))

    def default_eps_1e_3(f, x, eps=1e-3):
        return central(f, x, eps)
    with pytest.raises(GradingError, match="numerical_gradient"):
        grader.check("numerical_gradient", default_eps_1e_3, steep, grader.randn(5, seed=4))


# ---------------------------------------------------------------------------- honesty


def test_replacing_numpy_comparisons_is_refused(grader, monkeypatch):
    monkeypatch.setattr(np, "allclose", lambda *args, **kwargs: True)
    with pytest.raises(GradingError, match="np.allclose is not NumPy's own function"):
        grader.check("corr2d", corr2d, grader.randn(3, 3), grader.randn(2, 2))


def test_replacing_numpy_testing_is_refused(grader, monkeypatch):
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *args, **kwargs: None)
    with pytest.raises(GradingError, match="np.testing.assert_allclose"):
        grader.check("corr2d", corr2d, grader.randn(3, 3), grader.randn(2, 2))


def test_genuine_numpy_comparisons_pass_after_use(grader):
    np.testing.assert_allclose(np.ones(3), np.ones(3))  # bytecode specialised by use stays genuine
    assert np.allclose(np.ones(3), np.ones(3))
    grader.check("corr2d", corr2d, grader.randn(3, 3), grader.randn(2, 2))


def test_replacing_the_graders_functions_is_refused(grader, monkeypatch):
    monkeypatch.setattr(cnnlib.testing, "check", lambda *args, **kwargs: None, raising=False)
    with pytest.raises(GradingError, match="cnnlib.testing.check has been replaced"):
        grader.check("corr2d", corr2d, grader.randn(3, 3), grader.randn(2, 2))


def test_replacing_a_builtin_is_refused_when_the_grader_loads(monkeypatch):
    loaded = {name: module for name, module in sys.modules.items() if name.startswith("cnnlib.testing")}
    monkeypatch.setattr(builtins, "abs", lambda value: 0)
    try:
        for name in loaded:
            del sys.modules[name]
        with pytest.raises(AssertionError, match="the builtin 'abs' has been replaced"):
            importlib.import_module("cnnlib.testing")
    finally:
        for name in [n for n in sys.modules if n.startswith("cnnlib.testing")]:
            del sys.modules[name]
        sys.modules.update(loaded)
        sys.modules["cnnlib"].testing = loaded["cnnlib.testing"]


def test_a_builtin_replaced_during_the_call_is_refused(grader):
    original = builtins.max

    def sneaky(x, k):
        builtins.max = lambda *args, **kwargs: 0
        return corr2d(x, k)
    try:
        with pytest.raises(GradingError, match="the builtin 'max' has been replaced"):
            grader.check("corr2d", sneaky, grader.randn(3, 3), grader.randn(2, 2))
    finally:
        builtins.max = original


def test_every_builtin_the_grader_uses_is_verified():
    from cnnlib.testing import integrity

    builtin = set()
    for path in sorted(PACKAGE.glob("*.py")):
        module = sys.modules[f"cnnlib.testing.{path.stem}" if path.stem != "__init__" else "cnnlib.testing"]
        used, stack = set(), [compile(path.read_text(), str(path), "exec")]
        while stack:
            code = stack.pop()
            used |= {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
            stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        builtin |= {name for name in used if hasattr(builtins, name) and name not in vars(module)}
    assert builtin <= set(integrity._BUILTIN_NAMES), sorted(builtin - set(integrity._BUILTIN_NAMES))


@pytest.mark.parametrize("cheat, says", [
    (lambda x, k: F.conv2d(x[None, None], k[None, None])[0, 0],
     "called conv2d (in cnnlib/functional/conv.py)"),
    (lambda x, k: scipy.signal.correlate2d(x, k, mode="valid"), "called correlate2d (in scipy/signal"),
    (lambda x, k: inspect.currentframe() and corr2d(x, k), "called sys._getframe"),
    (lambda x, k: sys._getframe(1).f_locals and corr2d(x, k), "called sys._getframe"),
])
def test_calling_a_reference_is_refused(grader, cheat, says):
    with pytest.raises(GradingError, match="Grading refused") as failure:
        grader.check("corr2d", cheat, grader.randn(4, 4), grader.randn(2, 2))
    assert says in str(failure.value)


def test_calling_torch_is_refused(grader):
    torch = pytest.importorskip("torch")

    def with_torch(x, k):
        out = torch.nn.functional.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None])
        return out[0, 0].numpy()
    with pytest.raises(GradingError, match="called torch"):
        grader.check("corr2d", with_torch, grader.randn(4, 4), grader.randn(2, 2))


def test_a_library_function_itself_is_refused(grader):
    with pytest.raises(GradingError, match="is the library function cnnlib.functional"):
        grader.check("conv2d", F.conv2d, grader.randn(1, 1, 3, 3), grader.randn(1, 1, 2, 2), grader.randn(1))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_reference_called_from_a_thread_is_refused(grader):
    def threaded(x, k):
        result = {}
        worker = threading.Thread(target=lambda: result.update(y=F.conv2d(x[None, None], k[None, None])))
        worker.start()
        worker.join()
        return result["y"][0, 0] if "y" in result else corr2d(x, k)
    with pytest.raises(GradingError, match="Grading refused: corr2d called conv2d"):
        grader.check("corr2d", threaded, grader.randn(4, 4), grader.randn(2, 2))


def test_switching_the_monitor_off_is_refused(grader):
    def quiet(x, k):
        try:
            sys.setprofile(None)
        except BaseException:  # the monitor raises inside the call; catching it does not help
            pass
        return F.conv2d(x[None, None], k[None, None])[0, 0]
    with pytest.raises(GradingError, match="Grading refused"):
        grader.check("corr2d", quiet, grader.randn(4, 4), grader.randn(2, 2))


def test_changing_the_graders_globals_through_a_traceback_is_refused(grader):
    from cnnlib.testing import monitor

    original = monitor._check_unchanged

    def sneaky(x, k):
        try:
            raise ValueError
        except ValueError as error:
            frame = error.__traceback__.tb_frame.f_back
        while frame is not None and "_check_unchanged" not in frame.f_globals:
            frame = frame.f_back
        frame.f_globals["_check_unchanged"] = lambda *args: None
        return np.zeros((1, 1))
    try:
        with pytest.raises(GradingError, match="grader's own functions were changed"):
            grader.check("corr2d", sneaky, grader.randn(4, 4), grader.randn(2, 2))
    finally:
        monitor._check_unchanged = original


def test_a_replaced_cnnlib_layer_is_refused_in_the_case_study(grader, monkeypatch):
    from cnnlib import nn

    monkeypatch.setattr(nn.Conv2d, "forward", lambda self, x: x)
    with pytest.raises(GradingError, match="cnnlib.nn.conv.Conv2d has been changed"):
        grader.check_lenet(lambda: nn.Sequential(nn.Conv2d(1, 6, 5)), "output")


def test_case_study_checks(grader):
    from cnnlib import nn

    def lenet():
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    for what in ("output", "parameters", "layers", "backward"):
        grader.check_lenet(lenet, what)

    def no_relu_after_c3():  # a student's audit: without activations it still learns the digits
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    with pytest.raises(GradingError, match="build_lenet: no ReLU after C3: a missing activation"):
        grader.check_lenet(no_relu_after_c3, "layers")

    def train_epoch(model, loss_fn, optimizer, batches):
        total, count = 0.0, 0
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
            total, count = total + loss * len(y), count + len(y)
        return total / count

    def unweighted(model, loss_fn, optimizer, batches):
        losses = []
        for x, y in batches:
            optimizer.zero_grad()
            losses.append(loss_fn(model(x), y))
            model.backward(loss_fn.backward())
            optimizer.step()
        return sum(losses) / len(losses)
    grader.check_train_epoch(train_epoch, "parameters")
    grader.check_train_epoch(train_epoch, "loss", lr=0.1, sizes=(3, 5, 1, 2))
    with pytest.raises(GradingError, match="the plain average of the batch losses"):
        grader.check_train_epoch(unweighted, "loss")


@pytest.mark.parametrize("layer", ["padding=1100", "transposed stride 60"])
def test_a_model_too_large_to_run_is_refused_before_it_runs(grader, layer):
    """Every setting of the model is within bounds, but the feature maps it would compute are not:
    the grader refuses it from the settings alone, before allocating anything."""
    from cnnlib import nn

    first = (nn.Conv2d(1, 6, 5, padding=1100) if layer == "padding=1100"
             else nn.ConvTranspose2d(1, 6, 5, stride=60))
    model = nn.Sequential(first, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))
    with pytest.raises(GradingError, match=r"build_lenet: a forward pass on 2 images would need a [\d,]+ MB"):
        grader.check_lenet(lambda: model, "output")


def test_a_huge_answer_is_refused_before_it_is_read(grader):
    """A 63 MB boolean array became 2.5 GB of Python floats in the checker, and the grading process
    ran out of memory: the student scored 0 on the whole assignment."""
    def huge(x, k):
        return np.zeros((8000, 8000), dtype=bool)

    with pytest.raises(GradingError, match=r"corr2d: an array of shape \(8000, 8000\) \(64,000,000 values\)"):
        grader.check("corr2d", huge, grader.randn(3, 3), grader.randn(2, 2))


def test_an_integer_output_array_is_named(grader):
    """A student's audit: np.zeros(shape, dtype=int) cuts every value to a whole number; the test
    failed with no word on why."""
    def int_corr2d(x, k):
        h, w = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
        out = np.zeros((h, w), dtype=int)
        for i in range(h):
            for j in range(w):
                out[i, j] = np.sum(x[i:i + k.shape[0], j:j + k.shape[1]] * k)
        return out

    with pytest.raises(GradingError, match="an array of int64 \\(whole numbers\\)"):
        grader.check("corr2d", int_corr2d, grader.randn(4, 4, seed=1), grader.randn(2, 2, seed=2))


def test_more_mistakes_from_a_students_audit_are_named(grader):
    """argmax for max in pooling, floor division in the average, a [p:-p] crop at p = 0."""
    def pool(x, kernel_size, reduce):
        n, c, h, w = x.shape
        out = np.zeros((n, c, h // kernel_size, w // kernel_size))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                window = x[:, :, i * kernel_size:(i + 1) * kernel_size, j * kernel_size:(j + 1) * kernel_size]
                out[:, :, i, j] = reduce(window.reshape(n, c, -1))
        return out

    def argmax_pool(x, kernel_size, stride=None):
        return pool(x, 2, lambda v: v.argmax(-1))

    def floor_pool(x, kernel_size, stride=None):
        return pool(x, 2, lambda v: v.sum(-1) // 4)

    x = grader.randn(1, 2, 4, 4, seed=1)
    with pytest.raises(GradingError, match="the position of the maximum"):
        grader.check("max_pool2d", argmax_pool, x, 2)
    with pytest.raises(GradingError, match="floor division"):
        grader.check("avg_pool2d", floor_pool, x, 2)

    def cropped(x, weight, bias=None, stride=1, padding=0):
        (n, _, h, w), (_, c_out, kh, kw) = x.shape, weight.shape
        full = np.zeros((n, c_out, (h - 1) * stride + kh, (w - 1) * stride + kw))
        for i in range(h):
            for j in range(w):
                full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.tensordot(
                    x[:, :, i, j], weight, axes=([1], [0]))
        return full[:, :, padding:-padding, padding:-padding]
    with pytest.raises(GradingError, match=r"a crop \[p:-p\], which is empty when p = 0"):
        grader.check("conv_transpose2d", cropped, grader.randn(1, 2, 3, 3, seed=1),
                     grader.randn(2, 1, 3, 3, seed=2), grader.randn(1, seed=3))
