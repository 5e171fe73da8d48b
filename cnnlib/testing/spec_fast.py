"""Assignment 7, making convolution fast: im2col, conv2d_im2col, and conv2d_im2col's speed check.

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

import os
import random

from cnnlib.testing import spec_channels
from cnnlib.testing.arguments import _bind, _describe_call, _freeze
from cnnlib.testing.compare import _close, _result
from cnnlib.testing.errors import GradingError
from cnnlib.testing.outcome import judge
from cnnlib.testing.references import _conv, _im2col, _out_size
from cnnlib.testing.spec import _REQUIRED, _pair, _size_text, _Spec
from cnnlib.testing.tensors import (
    _batch_item,
    _crop,
    _format_number,
    _permute,
    _reshape,
    _size,
    _unravel,
    _window,
)


def _im2col_ref(a, **changes):
    v = {**a, **changes}
    return _im2col(v["x"], _pair(v["kernel_size"]), _pair(v["stride"]), _pair(v["padding"]))


def _im2col_mistakes(a):
    x = a["x"]
    kh, kw = _pair(a["kernel_size"])
    cols = _im2col_ref(a)
    n, rows, positions = cols[0]
    c = x[0][1]
    if c > 1:
        yield "rows ordered (kernel row, kernel column, channel): row index is c*K_h*K_w + m*K_w + q", \
            lambda: _reshape(_permute(_reshape(cols, (n, c, kh * kw, positions)), (0, 2, 1, 3)), cols[0])
    yield "the matrix transposed: (N, positions, C*K_h*K_w); columns are positions", \
        lambda: _permute(cols, (0, 2, 1))
    ho, wo = _out_size(x[0][2], kh, _pair(a["stride"])[0], 2 * _pair(a["padding"])[0]), None
    wo = positions // ho
    if ho > 1 and wo > 1:
        yield "positions in column-major order: column index is i*W_out + j (row of the output first)", \
            lambda: _reshape(_permute(_reshape(cols, (n, rows, ho, wo)), (0, 1, 3, 2)), cols[0])
        fewer = (n, rows, (ho - 1) * (wo - 1))
        yield "one row and column of windows too few: H_out = (H + 2P - K_h) // S + 1, the + 1 " \
              "counts the first window", \
            lambda: _reshape(_crop(_reshape(cols, (n, rows, ho, wo)), 0, 1, 0, 1), fewer)
    if _pair(a["padding"]) != (0, 0):
        yield "the padding ignored: zero-pad x by P on every side first", lambda: _im2col_ref(a, padding=0)
    if _pair(a["stride"]) != (1, 1):
        yield "the stride ignored: windows start every S pixels", lambda: _im2col_ref(a, stride=1)


SPECS = {
    "im2col": _Spec(
        (("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", 1), ("padding", 0)), _im2col_ref,
        ("cols[n, c*K_h*K_w + m*K_w + q, i*W_out + j] = x_pad[n, c, i*S + m, j*S + q]: one column per "
         "output position, one row per (channel, kernel offset)"),
        mistakes=_im2col_mistakes,
        shape_formula=lambda a: f"(N, C*K_h*K_w, H_out*W_out) with {_size_text(a)}"),
    "conv2d_im2col": spec_channels.SPECS["conv2d"],  # the same layer, computed another way
}


def _unseen(frozen: tuple, secret, position: int | str) -> tuple:
    """With a ``secret`` (grading), an array argument of the same shape drawn afresh from it: the
    timed call gets inputs no earlier cell could compute an answer for (a result cached on the test
    cell's public seeds earned the speed points in a function taking seconds; a scaled and shifted
    copy of them would leave a bilinear convolution easy to adapt from earlier results)."""
    kind, value = frozen
    if secret is None or kind != "array":
        return frozen
    rng = random.Random(repr((secret, position)))
    shape, values = value
    return kind, (shape, tuple(round(rng.gauss(0.0, 1.0), 6) for _ in values))


def check_speed(call, secret, name: str, function, args: tuple, kwargs: dict, budget: float,
                samples: int) -> None:
    """Run ``function`` once on large inputs: within ``budget`` seconds, the right shape, the right
    sum over every output map (so every position counts), and the right values at ``samples``
    positions drawn from ``secret`` (fresh random ones without a secret). With a secret the
    inputs are also changed by it (:func:`_unseen`)."""
    __tracebackhide__ = True
    spec = SPECS[name]
    frozen_args = tuple(_unseen(_freeze(v), secret, i) for i, v in enumerate(args))
    frozen_kwargs = {k: _unseen(_freeze(v), secret, k) for k, v in kwargs.items()}
    described = _describe_call(name, spec, frozen_args, frozen_kwargs)
    outcome = call(name, function, frozen_args, frozen_kwargs)
    if outcome.error is not None:
        judge(spec, name, described, outcome, None, None, {})
    got = _result(outcome.value, spec, name)
    a = _bind(spec, name, tuple(v for _, v in frozen_args), {k: v for k, (_, v) in frozen_kwargs.items()})
    (batch, _, h, w), (outs, _, kh, kw) = a["x"][0], a["weight"][0]
    (sh, sw), (ph, pw) = _pair(a["stride"]), _pair(a["padding"])
    shape = (batch, outs, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    if got[0] != shape:
        raise GradingError(f"{name}: shape {got[0]}, expected {shape}\n  call: {described}\n"
                           f"  expected shape {shape}, got shape {got[0]}\n  shape: {spec.shape_formula(a)}")
    _check_map_sums(name, a, got, shape)
    rng = random.Random(secret if secret is not None else os.urandom(16))
    for index in sorted(rng.sample(range(_size(shape)), min(samples, _size(shape)))):
        n, o, i, j = _unravel(index, shape)
        patch = _window(a["x"], n, i * sh - ph, j * sw - pw, kh, kw)
        value = _conv(patch, _batch_item(a["weight"], o), None)[1][0] + (
            a["bias"][1][o] if a["bias"] is not None else 0.0)
        if not _close(got[1][index], value, spec.rtol, spec.atol):
            raise GradingError(f"{name}: [{n}, {o}, {i}, {j}] is {_format_number(got[1][index])}, expected "
                               f"{_format_number(value)}\n  call: {described}\n  formula: {spec.formula}")
    if outcome.seconds > budget:
        raise GradingError(
            f"{name}: took {outcome.seconds:.2f} s, the budget is {budget:.2f} s\n  {described} took "
            f"{outcome.seconds:.2f} s; the budget is {budget:.2f} s. Replace the loops over output "
            "positions by one matrix product (im2col, then weight.reshape(C_out, -1) @ cols).")


def _window_sums(x, kernel, stride, padding, out_hw) -> list:
    """sums[n][c][m][q] = sum over output positions (i, j) of x_pad[n, c, i S + m, j S + q]."""
    (batch, channels, h, w), xs = x
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_hw
    sums = []
    for n in range(batch):
        per_channel = []
        for c in range(channels):
            base = (n * channels + c) * h * w
            rows = [xs[base + r * w:base + (r + 1) * w] for r in range(h)]
            grid = [[0.0] * kw for _ in range(kh)]
            for m in range(kh):
                for i in range(ho):
                    r = i * sh + m - ph
                    if not 0 <= r < h:
                        continue
                    for q in range(kw):
                        first = q - pw  # column of j = 0; columns inside the image only
                        skip = 0 if first >= 0 else (-first + sw - 1) // sw
                        start, stop = first + skip * sw, (wo - 1) * sw + q - pw + 1
                        grid[m][q] += sum(rows[r][start:min(stop, w):sw])
            per_channel.append(grid)
        sums.append(per_channel)
    return sums


def _check_map_sums(name: str, a: dict, got, shape) -> None:
    """Every output map's sum against the reference's: a position left out (or wrong) shows."""
    __tracebackhide__ = True
    batch, outs, ho, wo = shape
    (_, channels, kh, kw), ws = a["weight"]
    sums = _window_sums(a["x"], (kh, kw), _pair(a["stride"]), _pair(a["padding"]), (ho, wo))
    for n in range(batch):
        for o in range(outs):
            expected = (a["bias"][1][o] * ho * wo) if a["bias"] is not None else 0.0
            for c in range(channels):
                w0 = (o * channels + c) * kh * kw
                expected += sum(ws[w0 + m * kw + q] * sums[n][c][m][q] for m in range(kh) for q in range(kw))
            values = got[1][(n * outs + o) * ho * wo:(n * outs + o + 1) * ho * wo]
            total = sum(values)
            if not _close(total, expected, 1e-7, 1e-6 * (1.0 + sum(v if v >= 0 else -v for v in values))):
                raise GradingError(
                    f"{name}: output map [{n}, {o}] sums to {total:.6g}, expected {expected:.6g}\n"
                    "  every output position is checked (through each map's sum): some are wrong or "
                    "not computed")
