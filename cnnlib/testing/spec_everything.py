"""Assignment 5, everything is a convolution: conv_transpose2d, separable_mults,
linear_as_conv, dilate_kernel.

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

from cnnlib.testing.references import _conv_transpose, _Raises
from cnnlib.testing.spec import _REQUIRED, _pair, _Spec
from cnnlib.testing.tensors import _flip, _pad2d, _permute, _reshape, _size, _tensor


def _transpose_ref(a, **changes):
    v = {**a, **changes}
    return _conv_transpose(v["x"], v["weight"], v["bias"], _pair(v["stride"]), _pair(v["padding"]))


def _transpose_mistakes(a):
    w = a["weight"]
    yield "a flipped kernel: each input value adds value * weight[c, o] (unflipped) onto its window", \
        lambda: _transpose_ref(a, weight=_flip(w, (2, 3)))
    if w[0][0] == w[0][1]:
        yield "a transposed weight: conv_transpose2d's weight is (C_in, C_out, K_h, K_w), as PyTorch", \
            lambda: _transpose_ref(a, weight=_permute(w, (1, 0, 2, 3)))
    if _pair(a["stride"]) != (1, 1):
        yield "the stride ignored: input pixel (i, j) lands at (i S, j S) of the output", \
            lambda: _transpose_ref(a, stride=1)
    if a["bias"] is not None:
        yield "a missing bias", lambda: _transpose_ref(a, bias=None)
    if _pair(a["padding"]) != (0, 0):
        yield "the padding ignored (nothing cropped): conv_transpose2d's padding removes P rows and " \
              "columns from each side of the full output", lambda: _transpose_ref(a, padding=0)
    else:
        yield "a crop [p:-p], which is empty when p = 0 (-0 is 0): crop with [p:H_full - p]", \
            lambda: _tensor(_transpose_ref(a)[0][:2] + (0, 0), ())


def _separable(a):
    h, w, c_in, c_out, k = (a[n] for n in ("h_out", "w_out", "in_channels", "out_channels", "kernel_size"))
    return h * w * c_out * c_in * k * k, h * w * c_in * k * k + h * w * c_in * c_out


def _separable_mistakes(a):
    h, w, c_in, c_out, k = (a[n] for n in ("h_out", "w_out", "in_channels", "out_channels", "kernel_size"))
    standard = h * w * c_out * c_in * k * k
    yield "the pointwise (1x1) step forgotten: C_out filters of 1x1xC_in follow the depthwise step", \
        lambda: (standard, h * w * c_in * k * k)
    yield "the depthwise step forgotten: C_in filters of KxKx1 come first", \
        lambda: (standard, h * w * c_in * c_out)
    yield "a depthwise step with C_out filters: it has one KxK filter per INPUT channel", \
        lambda: (standard, h * w * c_out * k * k + h * w * c_in * c_out)
    yield "the input channels forgotten in the standard count: each filter is K x K x C_in", \
        lambda: (h * w * c_out * k * k, _separable(a)[1])


def _linear_as_conv(a):
    weight, bias, shape = a["weight"], a["bias"], tuple(a["in_shape"])
    if weight[0][1] != _size(shape):
        raise _Raises(ValueError, f"{weight[0][1]} weight columns do not fit C*H*W = {_size(shape)}",
                      f"weight has {weight[0][1]} columns but C*H*W = {_size(shape)}")
    return _reshape(weight, (weight[0][0], *shape)), bias


def _linear_as_conv_mistakes(a, part):
    weight, shape = a["weight"], tuple(a["in_shape"])
    c, h, w = shape
    if part == 0:
        yield "a reshape in (H, W, C) order: flatten() lists x[c, i, j] with c slowest, then i, then j", \
            lambda: _permute(_reshape(weight, (weight[0][0], h, w, c)), (0, 3, 1, 2))
        yield "rows and columns swapped (reshaped to (F, C, W, H))", \
            lambda: _permute(_reshape(weight, (weight[0][0], c, w, h)), (0, 1, 3, 2))


def _dilate(a, step_of):
    weight, d = a["weight"], a["dilation"]
    o, c, kh, kw = weight[0]
    step = step_of(d)
    hh, ww = step * (kh - 1) + 1, step * (kw - 1) + 1
    out = [0.0] * (o * c * hh * ww)
    for oc in range(o * c):
        for m in range(kh):
            for q in range(kw):
                out[(oc * hh + m * step) * ww + q * step] = weight[1][(oc * kh + m) * kw + q]
    return _tensor((o, c, hh, ww), out)


def _dilate_mistakes(a):
    d = a["dilation"]
    yield f"D zeros between taps: dilation D = {d} puts D - 1 = {d - 1} zeros between neighbours", \
        lambda: _dilate(a, lambda d: d + 1)
    weight = a["weight"]

    def trailing():
        core = _dilate(a, lambda d: d)
        return _pad2d(core, 0, d - 1, 0, d - 1)
    if weight[0][2] > 1 and d > 1:
        yield "zeros after the last tap too: the dilated kernel is D (K - 1) + 1 wide", trailing


SPECS = {
    "conv_transpose2d": _Spec(
        (("x", _REQUIRED), ("weight", _REQUIRED), ("bias", None), ("stride", 1), ("padding", 0)),
        _transpose_ref,
        "out[n, o, i*S + m - P, j*S + q - P] += x[n, c, i, j] * weight[c, o, m, q], plus bias[o]",
        mistakes=_transpose_mistakes,
        shape_formula=lambda a: "(N, C_out, (H - 1) S - 2P + K_h, (W - 1) S - 2P + K_w)"),
    "separable_mults": _Spec(
        (("h_out", _REQUIRED), ("w_out", _REQUIRED), ("in_channels", _REQUIRED), ("out_channels", _REQUIRED),
         ("kernel_size", _REQUIRED)), _separable,
        ("standard: H_out W_out C_out (K K C_in); depthwise separable: H_out W_out C_in (K K) "
         "+ H_out W_out C_out C_in"), kind="ints", mistakes=_separable_mistakes),
    "linear_as_conv": _Spec(
        (("weight", _REQUIRED), ("bias", _REQUIRED), ("in_shape", _REQUIRED)), _linear_as_conv,
        ("conv_weight[f, c, i, j] = weight[f, c*H*W + i*W + j] (flatten order), conv_bias = bias: "
         "one C x H x W filter per output feature"),
        outputs=("conv_weight", "conv_bias"), mistakes=_linear_as_conv_mistakes,
        shape_formula=lambda a: "conv_weight (F, C, H, W), conv_bias (F,)"),
    "dilate_kernel": _Spec(
        (("weight", _REQUIRED), ("dilation", _REQUIRED)), lambda a: _dilate(a, lambda d: d),
        "dilated[o, c, m*D, q*D] = weight[o, c, m, q], zeros elsewhere",
        mistakes=_dilate_mistakes,
        shape_formula=lambda a: f"(C_out, C_in, D (K_h - 1) + 1, D (K_w - 1) + 1) with D = {a['dilation']}"),
}
