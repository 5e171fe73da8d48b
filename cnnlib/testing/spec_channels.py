"""Assignment 2, channels, stride and padding: pad2d, conv2d, conv_params.

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

from cnnlib.testing.references import _conv
from cnnlib.testing.spec import _REQUIRED, _pair, _size_text, _Spec
from cnnlib.testing.tensors import _flip, _pad2d, _permute, _scale


def _pad2d_mistakes(a):
    x, p = a["x"], a["padding"]
    yield "padding on one side only (top and left): P zeros go on every side", \
        lambda: _pad2d(x, p, 0, p, 0)
    yield "padding on one side only (bottom and right): P zeros go on every side", \
        lambda: _pad2d(x, 0, p, 0, p)
    yield "all the padding on one side (2P at the bottom and right): P go on every side", \
        lambda: _pad2d(x, 0, 2 * p, 0, 2 * p)
    yield "only the rows padded (H): pad W as well", lambda: _pad2d(x, p, p, 0, 0)
    yield "only the columns padded (W): pad H as well", lambda: _pad2d(x, 0, 0, p, p)


def _conv2d_ref(a, **changes):
    v = {**a, **changes}
    s, p = _pair(v["stride"]), _pair(v["padding"])
    pads = v.get("pads") or (p[0], p[0], p[1], p[1])
    return _conv(v["x"], v["weight"], v["bias"], s, pads)


def _conv2d_mistakes(a):
    x, w, b = a["x"], a["weight"], a["bias"]
    p = _pair(a["padding"])
    yield "a flipped kernel: conv layers compute cross-correlation, the kernel is not flipped", \
        lambda: _conv2d_ref(a, weight=_flip(w, (2, 3)))
    if b is not None:
        yield "a missing bias: add bias[o] to every value of output channel o", \
            lambda: _conv2d_ref(a, bias=None)
        yield "the bias added once per input channel (C_in times): add it once per output value", \
            lambda: _conv2d_ref(a, bias=_scale(b, x[0][1]))
    if p != (0, 0):
        yield "padding on one side only (top and left): P zeros go on every side", \
            lambda: _conv2d_ref(a, pads=(p[0], 0, p[1], 0))
        yield "padding on one side only (bottom and right): P zeros go on every side", \
            lambda: _conv2d_ref(a, pads=(0, p[0], 0, p[1]))
        yield "all the padding on one side (2P at the bottom and right): P go on every side", \
            lambda: _conv2d_ref(a, pads=(0, 2 * p[0], 0, 2 * p[1]))
        yield "the padding ignored: zero-pad x by P on every side first", \
            lambda: _conv2d_ref(a, padding=0)
    if _pair(a["stride"]) != (1, 1):
        yield "the stride ignored: the window moves S pixels at a time", \
            lambda: _conv2d_ref(a, stride=1)
    if w[0][0] == w[0][1]:
        yield "a transposed weight: weight[o, c] connects input channel c to output channel o " \
              "(weight is (C_out, C_in, K_h, K_w))", lambda: _conv2d_ref(a, weight=_permute(w, (1, 0, 2, 3)))
    if w[0][2] == w[0][3]:
        yield "each kernel transposed (weight[o, c].T): weight[o, c, m, n] multiplies x_pad[n, c, " \
              "i S + m, j S + n]", lambda: _conv2d_ref(a, weight=_permute(w, (0, 1, 3, 2)))


_CONV2D_FORMULA = ("out[n, o, i, j] = bias[o] + sum over c, m, q of "
                   "weight[o, c, m, q] * x_pad[n, c, i*S + m, j*S + q]")


def _conv_params_mistakes(a):
    c_in, c_out, k = a["in_channels"], a["out_channels"], a["kernel_size"]
    yield "the biases forgotten: each of the C_out filters has one bias", lambda: c_out * c_in * k * k
    yield "the input channels forgotten: each filter spans all C_in channels (C_in x K x K weights)", \
        lambda: c_out * (k * k + 1)
    yield "one bias per input channel: there is one bias per filter (output channel)", \
        lambda: c_out * c_in * k * k + c_in


SPECS = {
    "pad2d": _Spec(
        (("x", _REQUIRED), ("padding", _REQUIRED)),
        lambda a: _pad2d(a["x"], *(a["padding"],) * 4),
        "x_pad[..., i + P, j + P] = x[..., i, j], zeros in the P rows and columns on every side",
        mistakes=_pad2d_mistakes,
        shape_formula=lambda a: f"(..., H + 2P, W + 2P) with P = {a['padding']}"),
    "conv2d": _Spec(
        (("x", _REQUIRED), ("weight", _REQUIRED), ("bias", _REQUIRED), ("stride", 1), ("padding", 0)),
        _conv2d_ref, _CONV2D_FORMULA, mistakes=_conv2d_mistakes,
        shape_formula=lambda a: f"(N, C_out, H_out, W_out) with {_size_text(a)}"),
    "conv_params": _Spec(
        (("in_channels", _REQUIRED), ("out_channels", _REQUIRED), ("kernel_size", _REQUIRED)),
        lambda a: a["out_channels"] * (a["in_channels"] * a["kernel_size"] ** 2 + 1),
        "C_out * (C_in * K * K + 1): C_out filters of C_in x K x K weights, plus one bias each",
        kind="int", mistakes=_conv_params_mistakes),
}
