"""Max and average pooling, forward and backward.

Both slide a K_h x K_w window with stride S (by default S = K, no overlap) and summarise it:
max pooling keeps the largest value and routes the gradient back to that one position;
average pooling divides by K_h K_w (padding counts, as PyTorch's default) and spreads the
gradient evenly over the window. Neither has parameters.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ._geometry import output_size
from ._windows import pad2d


def _pool_geometry(op, x, kernel_size, stride, padding):
    """Check a pooling call: (kernel, stride, padding, (H_out, W_out))."""
    _checks.float_array(x, "x", "(N, C, H, W)", op)
    kernel = _checks.pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else _checks.pair(stride, "stride", minimum=1)
    padding = _checks.pair(padding, "padding", minimum=0)
    for axis, k, p in zip("HW", kernel, padding):
        if 2 * p > k:
            raise ValueError(
                f"{op}: padding must be at most half the kernel size, got padding={p} "
                f"for kernel_size={k} along {axis}"
            )
    out = output_size(op, x.shape[2:], kernel, stride, padding, (1, 1), x.shape)
    return kernel, stride, padding, out


def _offsets(kernel, stride, out):
    """For each kernel offset (i, j): the slice of the padded input that offset sees."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, (..., slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))


def _check_grad_out(op, grad_out, x, out):
    _checks.float_array(grad_out, "grad_out", "(N, C, H_out, W_out)", op)
    expected = (*x.shape[:2], *out)
    _checks.expect_shape(op, "grad_out", grad_out.shape, expected, "the forward output's shape")
    _checks.same_dtype(op, grad_out=grad_out, x=x)


def _argmax_windows(xp, kernel, stride, out):
    """Max of each window and the offset (i K_w + j) where it sits; the first one on ties."""
    best = np.full(xp.shape[:2] + out, -np.inf, xp.dtype)
    where = np.zeros(best.shape, np.intp)
    for k, window in _offsets(kernel, stride, out):
        candidate = xp[window]
        better = (candidate > best) | np.isnan(candidate)  # NaN wins, as in PyTorch
        np.copyto(best, candidate, where=better)
        where[better] = k
    return best, where


def max_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    x: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``;
    the stride defaults to the kernel size and padding is with -inf.
    """
    kernel, stride, padding, out = _pool_geometry("max_pool2d", x, kernel_size, stride, padding)
    return _argmax_windows(pad2d(x, padding, -np.inf), kernel, stride, out)[0]


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Gradient of ``max_pool2d``: each window's gradient goes to its maximum, the rest get 0.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) -> grad_x: (N, C, H, W)
    """
    op = "max_pool2d_backward"
    kernel, stride, padding, out = _pool_geometry(op, x, kernel_size, stride, padding)
    _check_grad_out(op, grad_out, x, out)
    _, where = _argmax_windows(pad2d(x, padding, -np.inf), kernel, stride, out)
    grad_xp = np.zeros(pad2d(x, padding).shape, x.dtype)
    for k, window in _offsets(kernel, stride, out):
        grad_xp[window] += np.where(where == k, grad_out, 0)
    return _unpad(grad_xp, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` (zero padding counts in the mean).

    x: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``
    """
    kernel, stride, padding, out = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding)
    xp = pad2d(x, padding)
    total = np.zeros(x.shape[:2] + out, x.dtype)
    for _, window in _offsets(kernel, stride, out):
        total += xp[window]
    return total / x.dtype.type(kernel[0] * kernel[1])


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Gradient of ``avg_pool2d``: each window's gradient is shared equally, 1 / (K_h K_w) each.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) -> grad_x: (N, C, H, W)
    """
    op = "avg_pool2d_backward"
    kernel, stride, padding, out = _pool_geometry(op, x, kernel_size, stride, padding)
    _check_grad_out(op, grad_out, x, out)
    share = grad_out / x.dtype.type(kernel[0] * kernel[1])
    grad_xp = np.zeros(pad2d(x, padding).shape, x.dtype)
    for _, window in _offsets(kernel, stride, out):
        grad_xp[window] += share
    return _unpad(grad_xp, padding)


def _unpad(xp: np.ndarray, padding) -> np.ndarray:
    ph, pw = padding
    return xp[..., ph : xp.shape[-2] - ph, pw : xp.shape[-1] - pw]
