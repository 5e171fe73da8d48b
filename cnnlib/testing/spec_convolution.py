"""Assignment 1, the convolution operation: corr2d, convolve2d, conv_output_size.

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

from cnnlib.testing.references import _conv, _Raises
from cnnlib.testing.spec import _REQUIRED, _Spec
from cnnlib.testing.tensors import _crop, _flip, _permute, _reshape


def _corr2d(x, k, flip=False):
    if flip:
        k = _flip(k, (0, 1))
    out = _conv(_reshape(x, (1, 1, *x[0])), _reshape(k, (1, 1, *k[0])), None)
    return _reshape(out, out[0][2:])


def _conv_output_size(n, f, stride=1, padding=0):
    span = n + 2 * padding - f
    formula = f"({n} + 2*{padding} - {f})/{stride} + 1 = {span / stride + 1:.4g}"
    if span < 0:
        raise _Raises(ValueError, "the kernel is larger than the input",
                      f"{formula} < 1: the kernel is larger than the padded input")
    if span % stride:
        raise _Raises(ValueError, f"stride {stride} does not fit",
                      f"{formula} is not a whole number: stride {stride} does not fit")
    return span // stride + 1


def _corr2d_mistakes(a):
    x, k = a["x"], a["k"]
    yield "a flipped kernel: that is a true convolution; corr2d slides k over x as it is", \
        lambda: _corr2d(x, k, flip=True)
    yield "the kernel transposed (k.T): k[m, n] multiplies x[i + m, j + n], rows with rows", \
        lambda: _corr2d(x, _permute(k, (1, 0)))
    yield "one row and column too few: the kernel fits H - K_h + 1 times along H, not H - K_h", \
        lambda: _crop(_corr2d(x, k), 0, 1, 0, 1)


def _convolve2d_mistakes(a):
    x, k = a["x"], a["k"]
    shape, alone = k[0], None
    if len(shape) == 2 and 1 in shape:
        alone = "the rows" if shape[0] == 1 else "the columns"
    note = f" (this kernel has one {alone[4:-1]}: flipping {alone} alone changes nothing)" if alone else ""
    yield "no flip: that is cross-correlation (corr2d); a true convolution flips k first, " \
        f"k[::-1, ::-1]{note}", lambda: _corr2d(x, k)
    yield "the kernel flipped upside down only (k[::-1]): flip both axes, k[::-1, ::-1]", \
        lambda: _corr2d(x, _flip(k, (0,)))
    yield "the kernel flipped left to right only (k[:, ::-1]): flip both axes, k[::-1, ::-1]", \
        lambda: _corr2d(x, _flip(k, (1,)))
    yield "the kernel transposed (k.T) instead of flipped (rotated by 180 degrees, k[::-1, ::-1])", \
        lambda: _corr2d(x, _permute(k, (1, 0)))


def _conv_output_size_mistakes(a):
    n, f, s, p = a["n"], a["f"], a["stride"], a["padding"]
    yield "rounding down a stride that does not fit (floor, //): the lectures' rule raises ValueError " \
          "when (N + 2P - F) is not a multiple of S", lambda: (n + 2 * p - f) // s + 1
    yield "the formula without the + 1: (N + 2P - F)/S + 1 counts the first position too", \
        lambda: (n + 2 * p - f) // s
    if p:
        yield "padding added on one side only: (N + 2P - F)/S + 1 pads both sides", \
            lambda: (n + p - f) // s + 1
        yield "the padding ignored: (N + 2P - F)/S + 1 adds the P zeros on both sides", \
            lambda: (n - f) // s + 1
    yield "rounding up: a window may not hang over the edge", lambda: -((f - n - 2 * p) // s) + 1
    if s > 1:
        yield "the stride ignored: divide N + 2P - F by S", lambda: n + 2 * p - f + 1


SPECS = {
    "corr2d": _Spec(
        (("x", _REQUIRED), ("k", _REQUIRED)), lambda a: _corr2d(a["x"], a["k"]),
        "y[i, j] = sum over m, n of x[i + m, j + n] * k[m, n], for i < H - K_h + 1 and j < W - K_w + 1",
        mistakes=_corr2d_mistakes,
        shape_formula=lambda a: f"(H - K_h + 1, W - K_w + 1) = ({a['x'][0][0]} - {a['k'][0][0]} + 1, "
                                f"{a['x'][0][1]} - {a['k'][0][1]} + 1)"),
    "convolve2d": _Spec(
        (("x", _REQUIRED), ("k", _REQUIRED)), lambda a: _corr2d(a["x"], a["k"], flip=True),
        "y[i, j] = sum over m, n of x[i + m, j + n] * k[K_h - 1 - m, K_w - 1 - n] (the kernel flipped)",
        mistakes=_convolve2d_mistakes,
        shape_formula=lambda a: f"(H - K_h + 1, W - K_w + 1) = ({a['x'][0][0]} - {a['k'][0][0]} + 1, "
                                f"{a['x'][0][1]} - {a['k'][0][1]} + 1)"),
    "conv_output_size": _Spec(
        (("n", _REQUIRED), ("f", _REQUIRED), ("stride", 1), ("padding", 0)),
        lambda a: _conv_output_size(a["n"], a["f"], a["stride"], a["padding"]),
        "(N + 2P - F)/S + 1, which must be a whole number", kind="int",
        mistakes=_conv_output_size_mistakes),
}
