"""Assignment 4, backpropagation: conv2d_backward, max_pool2d_backward, numerical_gradient.

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

from cnnlib.testing.references import _conv_backward, _pool_backward, _to_max, _windows
from cnnlib.testing.spec import _REQUIRED, _pair, _Spec
from cnnlib.testing.spec_pooling import _pool_stride
from cnnlib.testing.tensors import _batch_item, _flip, _pad2d, _permute, _scale, _size, _tensor


def _backward_ref(a, **changes):
    v = {**a, **changes}
    p = _pair(v["padding"])
    return _conv_backward(v["grad_out"], v["x"], v["weight"], _pair(v["stride"]), (p[0], p[0], p[1], p[1]))


def _per_image(a, part):
    return [_backward_ref({**a, "grad_out": _batch_item(a["grad_out"], n), "x": _batch_item(a["x"], n)})[part]
            for n in range(a["x"][0][0])]


def _conv2d_backward_mistakes(a, part):
    w, batch = a["weight"], a["x"][0][0]
    p = _pair(a["padding"])
    if part == 0:
        yield "the kernel not flipped: dL/dx is the full correlation of dL/dout with the FLIPPED " \
              "kernel (or scatter each dL/dout value times the kernel back onto its window)", \
            lambda: _backward_ref(a, weight=_flip(w, (2, 3)))[0]
        if p != (0, 0):
            yield "the gradient of the padded input: crop P rows and columns from every side", \
                lambda: _pad2d(_backward_ref(a)[0], p[0], p[0], p[1], p[1])
        if w[0][0] == w[0][1]:
            yield "a transposed weight: weight[o, c] carries dL/dout[o] back to x[c]", \
                lambda: _backward_ref(a, weight=_permute(w, (1, 0, 2, 3)))[0]
    elif part == 1:
        if batch > 1:
            yield "dL/dweight not summed over the batch (only the first image)", lambda: _per_image(a, 1)[0]
            yield "dL/dweight not summed over the batch (only the last image)", lambda: _per_image(a, 1)[-1]
            yield "dL/dweight averaged over the batch: the loss's gradient sums every image's part", \
                lambda: _scale(_backward_ref(a)[1], 1 / batch)
        yield "a flipped dL/dweight: it is the correlation of x with dL/dout, not flipped", \
            lambda: _flip(_backward_ref(a)[1], (2, 3))
    else:
        if batch > 1:
            yield "a bias gradient not summed over the batch (one row per image): sum over N too", \
                lambda: _tensor((batch, w[0][0]), [v for g in _per_image(a, 2) for v in g[1]])
            yield "a bias gradient not summed over the batch (only the first image)", \
                lambda: _per_image(a, 2)[0]
            yield "a bias gradient averaged over the batch: sum over N, H_out and W_out", \
                lambda: _scale(_backward_ref(a)[2], 1 / batch)
        yield "a bias gradient averaged over positions: dL/dbias[o] sums dL/dout[:, o] everywhere", \
            lambda: _scale(_backward_ref(a)[2], 1 / _size(a["grad_out"][0][2:]))


def _max_backward_mistakes(a):
    g, x = a["grad_out"], a["x"]
    kernel, stride = _pool_stride(a)
    yield "the gradient sent to the whole window: only the window's maximum gets dL/dout, the " \
          "other positions get 0", \
        lambda: _pool_backward(g, x, kernel, stride, lambda c, v: [(i, v) for i, _ in c])
    yield "the gradient spread evenly over the window: that is average pooling's gradient", \
        lambda: _pool_backward(g, x, kernel, stride, lambda c, v: [(i, v / len(c)) for i, _ in c])

    def every_max(cells, value):
        best = max(v for _, v in cells)
        return [(i, value) for i, v in cells if v == best]
    yield "the gradient sent to every tied maximum: it goes to one position per window, the " \
          "first maximum in row-major order (as PyTorch)", \
        lambda: _pool_backward(g, x, kernel, stride, every_max)

    def overwrite():
        grad = [0.0] * len(x[1])
        for out_index, cells in _windows(x, kernel, stride):
            for index, amount in _to_max(cells, g[1][out_index]):
                grad[index] = amount
        return _tensor(x[0], grad)
    if stride[0] < kernel[0] or stride[1] < kernel[1]:
        yield "overwriting where windows overlap: add (+=) the gradients of every window a " \
              "position is the maximum of", overwrite



def _numerical_gradient_ref(a, kind="central"):
    objective, x, eps = a["f"], a["x"], a["eps"]
    values = list(x[1])
    grad = []
    for i in range(len(values)):
        original = values[i]
        values[i] = original + eps
        plus = objective.value(values)
        values[i] = original - eps
        minus = objective.value(values)
        values[i] = original
        here = objective.value(values)
        grad.append({"central": (plus - minus) / (2 * eps), "forward": (plus - here) / eps,
                     "eps": (plus - minus) / eps, "half": (plus - here) / (2 * eps)}[kind])
    return _tensor(x[0], grad)


def _numerical_gradient_mistakes(a):
    yield "forward differences (f(x + eps) - f(x))/eps: use central ones, " \
          "(f(x + eps) - f(x - eps))/(2 eps)", \
        lambda: _numerical_gradient_ref(a, "forward")
    yield "a divisor of eps: the central difference spans 2 eps, (f(x + eps) - f(x - eps))/(2 eps)", \
        lambda: _numerical_gradient_ref(a, "eps")
    yield "x[i] - eps not evaluated (x[i] was put back before the second call): subtract 2 eps " \
          "after adding eps, then restore x[i]", lambda: _numerical_gradient_ref(a, "half")


SPECS = {
    "conv2d_backward": _Spec(
        (("grad_out", _REQUIRED), ("x", _REQUIRED), ("weight", _REQUIRED), ("stride", 1), ("padding", 0)),
        _backward_ref,
        {"grad_x": "dL/dx[n, c] = full correlation of dL/dout[n, o] (dilated by S - 1 zeros) with the "
                   "flipped weight[o, c], summed over o, with the padding cropped",
         "grad_weight": "dL/dweight[o, c, m, q] = sum over n, i, j of dL/dout[n, o, i, j] * "
                        "x_pad[n, c, i*S + m, j*S + q]",
         "grad_bias": "dL/dbias[o] = sum of dL/dout[n, o, i, j] over n, i and j"},
        outputs=("grad_x", "grad_weight", "grad_bias"), mistakes=_conv2d_backward_mistakes,
        shape_formula=lambda a: "grad_x like x, grad_weight like weight, grad_bias (C_out,)"),
    "max_pool2d_backward": _Spec(
        (("grad_out", _REQUIRED), ("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None)),
        lambda a: _pool_backward(a["grad_out"], a["x"], *_pool_stride(a), _to_max),
        ("dL/dx gets dL/dout[n, c, i, j] at the position of its window's maximum (the first one, "
         "row by row, if tied), added up where windows overlap; 0 elsewhere"),
        mistakes=_max_backward_mistakes, shape_formula=lambda a: "the shape of x"),
    "numerical_gradient": _Spec(
        (("f", _REQUIRED), ("x", _REQUIRED), ("eps", 1e-6)), _numerical_gradient_ref,
        "grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), with x unchanged afterwards",
        mistakes=_numerical_gradient_mistakes, rtol=1e-6, atol=1e-6,
        shape_formula=lambda a: "the shape of x"),
}
