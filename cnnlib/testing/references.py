"""Reference answers by plain Python loops over tuple tensors: no NumPy arithmetic, no cnnlib layer.

The forward, backward and transposed convolutions share one window iterator, :func:`window_taps`.
"""

from cnnlib.testing.tensors import _tensor


class _Raises(Exception):
    """The reference raises: the student's function must raise ``error`` too."""

    def __init__(self, error, short: str, reason: str):
        super().__init__(reason)
        self.error, self.short, self.reason = error, short, reason


class _NotApplicable(Exception):
    """A mistake that does not apply to these inputs (e.g. swapping equal-sized axes)."""


def _out_size(n: int, k: int, s: int, pad_total: int) -> int:
    size = (n + pad_total - k) // s + 1
    if size < 1:
        raise _NotApplicable()
    return size


def window_taps(small, large, kernel, stride, corner=(0, 0), dilation=(1, 1)) -> list:
    """Every tap of a kernel sliding with ``stride`` over a padded grid, as (i, j, m, q, r, c).

    (i, j) is a position of the ``small`` grid (a conv's output, a transposed conv's input),
    (m, q) a kernel offset, and (r, c) = (i S_h + m D_h - top, j S_w + q D_w - left) the position of
    the ``large`` grid it touches (a conv's input); taps landing in the padding are left out.
    Shared by the forward, backward and transposed convolutions below.
    """
    (ho, wo), (h, w), (kh, kw) = small, large, kernel
    (sh, sw), (top, left), (dh, dw) = stride, corner, dilation
    taps = []
    for i in range(ho):
        for m in range(kh):
            r = i * sh + m * dh - top
            if 0 <= r < h:
                for j in range(wo):
                    for q in range(kw):
                        c = j * sw + q * dw - left
                        if 0 <= c < w:
                            taps.append((i, j, m, q, r, c))
    return taps


def _conv(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """out[n, o, i, j] = b[o] + sum_{c, m, q} w[o, c, m, q] x_pad[n, c, i S + m D, j S + q D]."""
    (batch, channels, h, wd), xs = x
    (outs, channels_w, kh, kw), ws = w
    if channels_w != channels:
        raise _NotApplicable()
    top, bottom, left, right = pads
    (sh, sw), (dh, dw) = stride, dilation
    ho = _out_size(h, dh * (kh - 1) + 1, sh, top + bottom)
    wo = _out_size(wd, dw * (kw - 1) + 1, sw, left + right)
    taps = window_taps((ho, wo), (h, wd), (kh, kw), stride, (top, left), dilation)
    out = [0.0] * (batch * outs * ho * wo)
    for n in range(batch):
        for o in range(outs):
            at = (n * outs + o) * ho * wo
            for c in range(channels):
                x0, w0 = (n * channels + c) * h * wd, (o * channels + c) * kh * kw
                for i, j, m, q, r, col in taps:
                    out[at + i * wo + j] += xs[x0 + r * wd + col] * ws[w0 + m * kw + q]
            bias = b[1][o] if b is not None else 0.0
            for k in range(at, at + ho * wo):
                out[k] += bias
    return _tensor((batch, outs, ho, wo), out)


def _conv_backward(g, x, w, stride=(1, 1), pads=(0, 0, 0, 0)):
    """Gradients of ``_conv`` by scattering every output gradient back along its window."""
    (batch, channels, h, wd), xs = x
    (outs, _, kh, kw), ws = w
    (_, _, ho, wo), gs = g
    taps = window_taps((ho, wo), (h, wd), (kh, kw), stride, (pads[0], pads[2]))
    gx, gw, gb = [0.0] * len(xs), [0.0] * len(ws), [0.0] * outs
    for n in range(batch):
        for o in range(outs):
            at = (n * outs + o) * ho * wo
            gb[o] += sum(gs[at:at + ho * wo])
            for c in range(channels):
                x0, w0 = (n * channels + c) * h * wd, (o * channels + c) * kh * kw
                for i, j, m, q, r, col in taps:
                    v = gs[at + i * wo + j]
                    gx[x0 + r * wd + col] += v * ws[w0 + m * kw + q]
                    gw[w0 + m * kw + q] += v * xs[x0 + r * wd + col]
    return _tensor(x[0], gx), _tensor(w[0], gw), _tensor((outs,), gb)


def _conv_transpose(x, w, b, stride=(1, 1), padding=(0, 0)):
    """out[n, o, i S + m - P, j S + q - P] += x[n, c, i, j] w[c, o, m, q] (the scatter)."""
    (batch, channels, h, wd), xs = x
    (channels_w, outs, kh, kw), ws = w
    if channels_w != channels:
        raise _NotApplicable()
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = (h - 1) * sh - 2 * ph + kh, (wd - 1) * sw - 2 * pw + kw
    if ho < 1 or wo < 1:
        raise _NotApplicable()
    taps = window_taps((h, wd), (ho, wo), (kh, kw), stride, padding)
    out = [0.0] * (batch * outs * ho * wo)
    for n in range(batch):
        for c in range(channels):
            x0 = (n * channels + c) * h * wd
            for o in range(outs):
                at, w0 = (n * outs + o) * ho * wo, (c * outs + o) * kh * kw
                for i, j, m, q, r, col in taps:
                    out[at + r * wo + col] += xs[x0 + i * wd + j] * ws[w0 + m * kw + q]
    if b is not None:
        for k in range(len(out)):
            out[k] += b[1][(k // (ho * wo)) % outs]
    return _tensor((batch, outs, ho, wo), out)


def _windows(x, kernel, stride):
    """Each pooling window's values, row by row: yields (output index, [(input index, value)])."""
    (batch, channels, h, w), xs = x
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = _out_size(h, kh, sh, 0), _out_size(w, kw, sw, 0)
    for nc in range(batch * channels):
        for i in range(ho):
            for j in range(wo):
                cells = []
                for m in range(kh):
                    for q in range(kw):
                        index = (nc * h + i * sh + m) * w + j * sw + q
                        cells.append((index, xs[index]))
                yield (nc * ho + i) * wo + j, cells
    return ho, wo


def _pool_shape(x, kernel, stride):
    (batch, channels, h, w) = x[0]
    return (batch, channels, _out_size(h, kernel[0], stride[0], 0), _out_size(w, kernel[1], stride[1], 0))


def _pool(x, kernel, stride, reduce):
    return _tensor(_pool_shape(x, kernel, stride),
                   [reduce([v for _, v in cells]) for _, cells in _windows(x, kernel, stride)])


def _mean(values) -> float:
    return sum(values) / len(values)


def _pool_backward(g, x, kernel, stride, share):
    """Add ``share(cells, gradient)`` (a list of (input index, amount)) into grad_x per window."""
    grad = [0.0] * len(x[1])
    for out_index, cells in _windows(x, kernel, stride):
        for index, amount in share(cells, g[1][out_index]):
            grad[index] += amount
    return _tensor(x[0], grad)


def _to_max(cells, value):
    best = max(v for _, v in cells)
    return [(next(i for i, v in cells if v == best), value)]


def _im2col(x, kernel, stride, padding):
    """cols[n, (c, m, q), (i, j)] = x_pad[n, c, i S + m, j S + q]."""
    (batch, channels, h, w), xs = x
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = _out_size(h, kh, sh, 2 * ph), _out_size(w, kw, sw, 2 * pw)
    out = []
    for n in range(batch):
        for c in range(channels):
            for m in range(kh):
                for q in range(kw):
                    for i in range(ho):
                        for j in range(wo):
                            r, col = i * sh + m - ph, j * sw + q - pw
                            inside = 0 <= r < h and 0 <= col < w
                            out.append(xs[((n * channels + c) * h + r) * w + col] if inside else 0.0)
    return _tensor((batch, channels * kh * kw, ho * wo), out)

