"""Adaptive pooling: the output size is given, the windows follow from it (global pooling when 1).

Output row ``i`` of ``m`` pools input rows ``floor(i H / m)`` to ``ceil((i + 1) H / m)``
(``cnnlib.geometry.adaptive_pool_windows``), as PyTorch does; windows may overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _checks
from ..geometry import adaptive_pool_windows

OutputSize = int | None | tuple[int | None, int | None]


def _output_size(op: str, x: np.ndarray, output_size: OutputSize) -> tuple[int, int]:
    """``output_size`` as (H_out, W_out); None keeps the input's size along that axis."""
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    result = []
    for n, m in zip(x.shape[-2:], sizes):
        if m is None:
            m = n
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"{op}: output_size must hold ints (or None), got {output_size!r}")
        if m < 1:
            raise ValueError(f"{op}: output_size must be >= 1, got {output_size!r}")
        result.append(int(m))
    return result[0], result[1]


def _setup(op: str, x: np.ndarray, output_size: OutputSize):
    x4, unbatched = _checks.batched(x, "x", "(N, C, H, W)", op)
    out = _output_size(op, x4, output_size)
    rows, columns = (adaptive_pool_windows(n, m) for n, m in zip(x4.shape[2:], out))
    return x4, unbatched, out, rows, columns


def _grad(op: str, grad_out: object, x4: np.ndarray, out: tuple[int, int], unbatched: bool) -> np.ndarray:
    layout = "(C, H_out, W_out)" if unbatched else "(N, C, H_out, W_out)"
    grad_out = _checks.float_array(grad_out, "grad_out", layout, op)
    grad_out = grad_out[None] if unbatched else grad_out
    _checks.expect_shape(op, "grad_out", grad_out.shape, (*x4.shape[:2], *out), "the forward output's shape")
    _checks.same_dtype(op, grad_out=grad_out, x=x4)
    return grad_out


def _sum_windows(x: np.ndarray, windows: Sequence[tuple[int, int]], axis: int) -> np.ndarray:
    """Sum each [start, end) window along ``axis``: that axis becomes len(windows) long."""
    return np.stack([x[(slice(None),) * axis + (slice(a, b),)].sum(axis=axis) for a, b in windows], axis=axis)


def adaptive_avg_pool2d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    """Average pooling to a given output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) (no N if x had none);
    ``output_size=1`` is global average pooling.
    """
    x4, unbatched, out, rows, columns = _setup("adaptive_avg_pool2d", x, output_size)
    if out == (1, 1):
        result = x4.mean(axis=(2, 3), keepdims=True)
    else:
        area = np.outer([b - a for a, b in rows], [b - a for a, b in columns]).astype(x4.dtype)
        result = _sum_windows(_sum_windows(x4, rows, 2), columns, 3) / area
    return result[0] if unbatched else result


def adaptive_avg_pool2d_backward(grad_out: np.ndarray, x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    """Gradient of ``adaptive_avg_pool2d``: each output's gradient shared over its window.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) (or both without N) -> grad_x: like x
    """
    op = "adaptive_avg_pool2d_backward"
    x4, unbatched, out, rows, columns = _setup(op, x, output_size)
    grad_out = _grad(op, grad_out, x4, out, unbatched)
    area = np.outer([b - a for a, b in rows], [b - a for a, b in columns]).astype(x4.dtype)
    share = grad_out / area
    grad = np.zeros(x4.shape, x4.dtype)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(columns):
            grad[:, :, r0:r1, c0:c1] += share[:, :, i, j, None, None]
    return grad[0] if unbatched else grad


def _window_argmax(x4: np.ndarray, rows: list[tuple[int, int]], columns: list[tuple[int, int]]) -> np.ndarray:
    """Flat per-plane index of each window's first maximum (a NaN counts as the maximum)."""
    n, c, _, width = x4.shape
    indices = np.zeros((n, c, len(rows), len(columns)), np.int64)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(columns):
            window = x4[:, :, r0:r1, c0:c1].reshape(n, c, -1)
            at = np.argmax(window, axis=2)  # NumPy's argmax returns the first NaN, if any
            indices[:, :, i, j] = (r0 + at // (c1 - c0)) * width + c0 + at % (c1 - c0)
    return indices


def adaptive_max_pool2d(
    x: np.ndarray, output_size: OutputSize, return_indices: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max pooling to a given output size, as ``torch.nn.functional.adaptive_max_pool2d``.

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) (no N if x had none), and with
    ``return_indices`` the int64 flat per-plane indices of the maxima.
    """
    x4, unbatched, out, rows, columns = _setup("adaptive_max_pool2d", x, output_size)
    indices = _window_argmax(x4, rows, columns)
    flat = x4.reshape(*x4.shape[:2], -1)
    result = np.take_along_axis(flat, indices.reshape(*x4.shape[:2], -1), axis=2).reshape(indices.shape)
    if unbatched:
        result, indices = result[0], indices[0]
    return (result, indices) if return_indices else result


def adaptive_max_pool2d_backward(grad_out: np.ndarray, x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    """Gradient of ``adaptive_max_pool2d``: each output's gradient goes to its window's maximum.

    grad_out: (N, C, H_out, W_out), x: (N, C, H, W) (or both without N) -> grad_x: like x
    """
    op = "adaptive_max_pool2d_backward"
    x4, unbatched, out, rows, columns = _setup(op, x, output_size)
    grad_out = _grad(op, grad_out, x4, out, unbatched)
    indices = _window_argmax(x4, rows, columns)
    n, c = x4.shape[:2]
    grad = np.zeros((n * c, x4.shape[2] * x4.shape[3]), x4.dtype)
    np.add.at(grad, (np.arange(n * c)[:, None], indices.reshape(n * c, -1)), grad_out.reshape(n * c, -1))
    grad = grad.reshape(x4.shape)
    return grad[0] if unbatched else grad
