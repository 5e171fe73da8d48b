"""Assignment 3, pooling: max_pool2d, avg_pool2d.

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

import math

from cnnlib.testing.references import _mean, _pool
from cnnlib.testing.spec import _REQUIRED, _pair, _size_text, _Spec


def _pool_stride(a):
    kernel = _pair(a["kernel_size"])
    return kernel, kernel if a["stride"] is None else _pair(a["stride"])


def _max_pool_mistakes(a):
    x = a["x"]
    kernel, stride = _pool_stride(a)
    if stride != (1, 1):
        yield "the stride ignored (or a default stride of 1): stride=None means stride = kernel_size", \
            lambda: _pool(x, kernel, (1, 1), max)
    yield "the maximum started at 0: a window of negative values has a negative maximum " \
          "(start from the window's first value, or -inf)", \
        lambda: _pool(x, kernel, stride, lambda v: max(0.0, *v))
    yield "the average instead of the maximum", lambda: _pool(x, kernel, stride, _mean)
    yield "the minimum instead of the maximum", lambda: _pool(x, kernel, stride, min)
    yield "the position of the maximum (argmax) instead of its value: use max", \
        lambda: _pool(x, kernel, stride, lambda v: float(v.index(max(v))))


def _avg_pool_mistakes(a):
    x = a["x"]
    kernel, stride = _pool_stride(a)
    k = kernel[0] * kernel[1]
    if stride != (1, 1):
        yield "the stride ignored (or a default stride of 1): stride=None means stride = kernel_size", \
            lambda: _pool(x, kernel, (1, 1), _mean)
    yield f"the average's divisor: divide each window's sum by K_h*K_w = {k}, not by K = {kernel[0]}", \
        lambda: _pool(x, kernel, stride, lambda v: sum(v) / kernel[0])
    yield f"the average's divisor: the sum is not divided by the window's K_h*K_w = {k} values", \
        lambda: _pool(x, kernel, stride, sum)
    yield f"the average's divisor: divide by K_h*K_w = {k}, not by K_h*K_w - 1", \
        lambda: _pool(x, kernel, stride, lambda v: sum(v) / (len(v) - 1))
    yield "the maximum instead of the average", lambda: _pool(x, kernel, stride, max)
    yield f"floor division: sum // {k} drops the fraction; divide with /", \
        lambda: _pool(x, kernel, stride, lambda v: float(math.floor(sum(v) / len(v))))


SPECS = {
    "max_pool2d": _Spec(
        (("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None)),
        lambda a: _pool(a["x"], *_pool_stride(a), max),
        "out[n, c, i, j] = max over the K x K window of x starting at (i*S, j*S); S = K by default",
        mistakes=_max_pool_mistakes,
        shape_formula=lambda a: f"(N, C, H_out, W_out) with {_size_text(a)}"),
    "avg_pool2d": _Spec(
        (("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None)),
        lambda a: _pool(a["x"], *_pool_stride(a), _mean),
        "out[n, c, i, j] = (sum over the K_h x K_w window at (i*S, j*S)) / (K_h * K_w); S = K by default",
        mistakes=_avg_pool_mistakes,
        shape_formula=lambda a: f"(N, C, H_out, W_out) with {_size_text(a)}"),
}
