"""Max and average pooling, forward and backward, with every argument of PyTorch's.

Both slide a K_h x K_w window with stride S (by default S = K, no overlap) and summarise it:
max pooling keeps the largest value and routes the gradient back to that one position;
average pooling divides by K_h K_w (padding counts, as PyTorch's default) and spreads the
gradient evenly over the window. Neither has parameters. ``ceil_mode`` rounds the output size
up (the last window may hang over the edge), max pooling takes a ``dilation`` and can return
the argmax as PyTorch's flat per-plane ``indices`` (for ``max_unpool2d``), average pooling can
leave the padding out of the mean (``count_include_pad=False``) or divide by a fixed
``divisor_override``. Inputs may come without their batch axis, (C, H, W).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..geometry import pool_output_size
from ._masked import masked_gradient
from ._windows import pad2d, windows2d
from .im2col import add_windows

Size = int | tuple[int, int]


@dataclass(frozen=True)
class PoolCall:
    """A checked pooling call: the batched input and the window geometry as (h, w) pairs."""

    x: np.ndarray
    unbatched: bool
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out: tuple[int, int]

    def overhang(self) -> tuple[int, int]:
        """Rows and columns the last (ceil-mode) window reaches past the padded input."""
        return tuple(  # type: ignore[return-value]
            max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p)) for o, s, d, k, n, p in zip(
                self.out, self.stride, self.dilation, self.kernel, self.x.shape[2:], self.padding))

    def windows(self, fill: float) -> np.ndarray:
        """Every window of the padded input: (N, C, H, W) -> (N, C, K_h, K_w, H_out, W_out)."""
        padded = pad2d(self.x, self.padding, fill, self.overhang())
        return windows2d(padded, self.kernel, self.out, self.stride, self.dilation)

    def back(self, per_offset: np.ndarray) -> np.ndarray:
        """Window values added back onto the input positions they came from (unbatched again)."""
        grad = add_windows(per_offset, self.x.shape[2:], self.stride, self.dilation, self.padding)
        return grad[0] if self.unbatched else grad

    def result(self, out: np.ndarray) -> np.ndarray:
        return out[0] if self.unbatched else out


def pool_call(
    op: str, x: np.ndarray, kernel_size: Size, stride: Size | None, padding: Size, dilation: Size = 1,
    ceil_mode: bool = False,
) -> PoolCall:
    """Check a pooling call, batched (N, C, H, W) or not (C, H, W), and work out its output size."""
    x, unbatched = _checks.batched(x, "x", "(N, C, H, W)", op)
    kernel = _checks.pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else _checks.pair(stride, "stride", minimum=1)
    padding = _checks.pair(padding, "padding", minimum=0)
    dilation = _checks.pair(dilation, "dilation", minimum=1)
    out = []
    for axis, args in zip("HW", zip(x.shape[2:], kernel, stride, padding, dilation)):
        try:
            out.append(pool_output_size(*args, ceil_mode=bool(ceil_mode)))
        except ValueError as error:
            raise ValueError(f"{op}: input of shape {x.shape}, along {axis}: {error}") from None
    return PoolCall(x, unbatched, kernel, stride, padding, dilation, (out[0], out[1]))


def pool_arguments(
    op: str, x: np.ndarray, kernel_size: Size, stride: Size | None, padding: Size
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, padding, (H_out, W_out)) of a plain pooling call (the naive loops')."""
    call = pool_call(op, x, kernel_size, stride, padding)
    return call.kernel, call.stride, call.padding, call.out


def _check_grad_out(op: str, grad_out: object, call: PoolCall) -> np.ndarray:
    expected = (*call.x.shape[:2], *call.out)
    layout = "(C, H_out, W_out)" if call.unbatched else "(N, C, H_out, W_out)"
    grad_out = _checks.float_array(grad_out, "grad_out", layout, op)
    grad_out = grad_out[None] if call.unbatched else grad_out
    _checks.expect_shape(op, "grad_out", grad_out.shape, expected, "the forward output's shape")
    _checks.same_dtype(op, grad_out=grad_out, x=call.x)
    return grad_out


def _reduce_windows(ufunc: np.ufunc, windows: np.ndarray) -> np.ndarray:
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


def _first_maximum_masks(
    windows: np.ndarray, best: np.ndarray
) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
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


def _argmax_indices(call: PoolCall, windows: np.ndarray, best: np.ndarray) -> np.ndarray:
    """PyTorch's indices: each maximum's flat position ``row * W + column`` in its input plane."""
    indices = np.zeros(best.shape, np.int64)
    (sh, sw), (dh, dw), (ph, pw) = call.stride, call.dilation, call.padding
    width = call.x.shape[3]
    for (i, j), is_max in _first_maximum_masks(windows, best):
        rows = np.arange(call.out[0]) * sh + i * dh - ph
        columns = np.arange(call.out[1]) * sw + j * dw - pw
        np.copyto(indices, rows[:, None] * width + columns[None, :], where=is_max)
    return indices


def max_pool2d(
    x: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1,
    ceil_mode: bool = False, return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) (no N if x had none),
    ``H_out = floor((H + 2P - D (K - 1) - 1) / S) + 1`` (ceil with ``ceil_mode``); the stride
    defaults to the kernel size and padding is with -inf. With ``return_indices`` also the
    int64 indices of the maxima, flat in each (H, W) plane, of the output's shape.
    """
    call = pool_call("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    windows = call.windows(-np.inf)
    # np.maximum lets a NaN win, as PyTorch's max pooling does.
    best = _reduce_windows(np.maximum, windows)
    if return_indices:
        return call.result(best), call.result(_argmax_indices(call, windows, best))
    return call.result(best)


def max_pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel_size: Size,
    stride: Size | None = None, padding: Size = 0, dilation: Size = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of ``max_pool2d``: each window's gradient goes to its maximum,
    the rest get 0.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) (or both without N) ->
    grad_x: like x
    """
    op = "max_pool2d_backward"
    call = pool_call(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    grad_out = _check_grad_out(op, grad_out, call)
    windows = call.windows(-np.inf)
    best = _reduce_windows(np.maximum, windows)
    per_offset = np.empty(windows.shape, call.x.dtype)
    for (i, j), is_max in _first_maximum_masks(windows, best):
        masked_gradient(grad_out, is_max, out=per_offset[:, :, i, j])
    return call.back(per_offset)


def _avg_divisor(call: PoolCall, count_include_pad: bool, divisor_override: int | None):
    """What each window's sum is divided by: K_h K_w, or per window (N, C broadcast) where the
    padding does not count or a ceil-mode window hangs over the padded input."""
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)):
            raise TypeError(f"divisor_override must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("divisor_override must not be zero")
        return call.x.dtype.type(divisor_override)
    if count_include_pad and call.overhang() == (0, 0):
        return call.x.dtype.type(call.kernel[0] * call.kernel[1])
    counts = []
    for o, s, k, n, p in zip(call.out, call.stride, call.kernel, call.x.shape[2:], call.padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)  # the overhang past the padding never counts
        counts.append(end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
    return (counts[0][:, None] * counts[1][None, :]).astype(call.x.dtype)


def avg_pool2d(
    x: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
) -> np.ndarray:
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` (zero padding counts in the mean
    unless ``count_include_pad=False``; ``divisor_override`` replaces the window's size).

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``
    """
    call = pool_call("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    total = _reduce_windows(np.add, call.windows(0))
    return call.result(total / _avg_divisor(call, count_include_pad, divisor_override))


def avg_pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel_size: Size,
    stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of ``avg_pool2d``: each window's gradient is shared equally,
    1 / (K_h K_w) each (or 1 / the window's divisor).

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) (or both without N) ->
    grad_x: like x
    """
    op = "avg_pool2d_backward"
    call = pool_call(op, x, kernel_size, stride, padding, 1, ceil_mode)
    grad_out = _check_grad_out(op, grad_out, call)
    share = grad_out / _avg_divisor(call, count_include_pad, divisor_override)
    per_offset = np.broadcast_to(share[:, :, None, None],
                                 (*grad_out.shape[:2], *call.kernel, *call.out))
    return call.back(per_offset)
