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
from ._windows import pad2d, windows2d
from .im2col import add_windows


def pool_arguments(op, x, kernel_size, stride, padding):
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


def _check_grad_out(op, grad_out, x, out):
    _checks.float_array(grad_out, "grad_out", "(N, C, H_out, W_out)", op)
    expected = (*x.shape[:2], *out)
    _checks.expect_shape(op, "grad_out", grad_out.shape, expected, "the forward output's shape")
    _checks.same_dtype(op, grad_out=grad_out, x=x)


def _windows(x, kernel, stride, padding, out, fill):
    """A view of every window of the padded input: (N, C, H, W) -> (N, C, K_h, K_w, H_out, W_out)."""
    return windows2d(pad2d(x, padding, fill), kernel, out, stride)


def _reduce_windows(ufunc, windows):
    """Combine each window's K_h K_w values with ``ufunc`` (np.maximum or np.add), one kernel
    offset at a time: (N, C, K_h, K_w, H_out, W_out) -> (N, C, H_out, W_out).

    (NumPy's own reductions over two strided axes are many times slower than this loop.)
    """
    kh, kw = windows.shape[2:4]
    result = windows[:, :, 0, 0].copy()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                ufunc(result, windows[:, :, i, j], out=result)
    return result


def _first_maximum_masks(windows, best):
    """For each kernel offset, where that offset holds its window's maximum, first one only.

    Ties go to the first offset in row-major order and a NaN counts as the maximum, as in
    PyTorch. Yields ``((i, j), mask)`` with masks of shape (N, C, H_out, W_out).
    """
    nan_best = np.isnan(best)
    taken = np.zeros(best.shape, bool)
    for i in range(windows.shape[2]):
        for j in range(windows.shape[3]):
            values = windows[:, :, i, j]
            hit = values == best
            if nan_best.any():
                hit |= np.isnan(values) & nan_best
            hit &= ~taken
            taken |= hit
            yield (i, j), hit


def max_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    x: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``;
    the stride defaults to the kernel size and padding is with -inf.
    """
    kernel, stride, padding, out = pool_arguments("max_pool2d", x, kernel_size, stride, padding)
    # np.maximum lets a NaN win, as PyTorch's max pooling does.
    return _reduce_windows(np.maximum, _windows(x, kernel, stride, padding, out, -np.inf))


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Gradient of ``max_pool2d``: each window's gradient goes to its maximum, the rest get 0.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) -> grad_x: (N, C, H, W)
    """
    op = "max_pool2d_backward"
    kernel, stride, padding, out = pool_arguments(op, x, kernel_size, stride, padding)
    _check_grad_out(op, grad_out, x, out)
    windows = _windows(x, kernel, stride, padding, out, -np.inf)
    best = _reduce_windows(np.maximum, windows)
    per_offset = np.zeros(windows.shape, x.dtype)
    for (i, j), is_max in _first_maximum_masks(windows, best):
        np.copyto(per_offset[:, :, i, j], grad_out, where=is_max)
    return add_windows(per_offset, x.shape[2:], stride, (1, 1), padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` (zero padding counts in the mean).

    x: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``
    """
    kernel, stride, padding, out = pool_arguments("avg_pool2d", x, kernel_size, stride, padding)
    total = _reduce_windows(np.add, _windows(x, kernel, stride, padding, out, 0))
    return total / x.dtype.type(kernel[0] * kernel[1])


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Gradient of ``avg_pool2d``: each window's gradient is shared equally, 1 / (K_h K_w) each.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) -> grad_x: (N, C, H, W)
    """
    op = "avg_pool2d_backward"
    kernel, stride, padding, out = pool_arguments(op, x, kernel_size, stride, padding)
    _check_grad_out(op, grad_out, x, out)
    share = grad_out / x.dtype.type(kernel[0] * kernel[1])
    per_offset = np.broadcast_to(share[:, :, None, None], (*grad_out.shape[:2], *kernel, *out))
    return add_windows(per_offset, x.shape[2:], stride, (1, 1), padding)
