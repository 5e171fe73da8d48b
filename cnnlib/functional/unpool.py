"""``max_unpool2d``: put each pooled maximum back where ``max_pool2d(..., return_indices=True)``
found it, zeros elsewhere (the "unpooling" of segmentation networks), and its backward."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _checks

Size = int | tuple[int, int]


def _output_size(op: str, x4: np.ndarray, kernel_size: Size, stride: Size | None, padding: Size,
                 output_size: Sequence[int] | None) -> tuple[int, int]:
    """PyTorch's rule: by default ``(H - 1) S - 2P + K``; a given size must lie strictly within
    a stride of that."""
    kernel = _checks.pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else _checks.pair(stride, "stride", minimum=1)
    padding = _checks.pair(padding, "padding", minimum=0)
    default = [(n - 1) * s - 2 * p + k for n, s, p, k in zip(x4.shape[2:], stride, padding, kernel)]
    if output_size is None:
        size = default
    else:
        size = [int(v) for v in output_size][-2:]
        if len(list(output_size)) not in (2, 3, 4):
            raise ValueError(f"{op}: output_size must be (H, W), optionally with N, C first, "
                             f"got {output_size!r}")
        for axis, m, d, s in zip("HW", size, default, stride):
            if not d - s < m < d + s:
                raise ValueError(f"{op}: output_size {tuple(output_size)} along {axis} must lie between "
                                 f"{d - s} and {d + s} (exclusive): (H - 1) S - 2P + K = {d}, stride {s}")
    if min(size) < 1:
        raise ValueError(f"{op}: output size {tuple(size)} is not positive for x of shape {x4.shape}")
    return size[0], size[1]


def _check_indices(op: str, indices: object, x4: np.ndarray, unbatched: bool, plane: int) -> np.ndarray:
    if not isinstance(indices, np.ndarray) or not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{op}: indices must be an integer NumPy array (max_pool2d's return_indices)")
    indices = indices[None] if unbatched else indices
    _checks.expect_shape(op, "indices", indices.shape, x4.shape, "x's shape")
    bad = (indices < 0) | (indices >= plane)
    if bad.any():
        raise ValueError(f"{op}: indices must lie in [0, H_out W_out) = [0, {plane}), got {indices[bad][0]}")
    return indices


def max_unpool2d(
    x: np.ndarray, indices: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
    output_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Inverse of max pooling, as ``torch.nn.functional.max_unpool2d``.

    x, indices: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) zeros with
    ``out[n, c].flat[indices[n, c, y, x]] = x[n, c, y, x]``, ``H_out = (H - 1) S - 2P + K``.
    """
    op = "max_unpool2d"
    x4, unbatched = _checks.batched(x, "x", "(N, C, H, W)", op)
    h_out, w_out = _output_size(op, x4, kernel_size, stride, padding, output_size)
    indices = _check_indices(op, indices, x4, unbatched, h_out * w_out)
    n, c = x4.shape[:2]
    out = np.zeros((n * c, h_out * w_out), x4.dtype)
    out[np.arange(n * c)[:, None], indices.reshape(n * c, -1)] = x4.reshape(n * c, -1)
    out = out.reshape(n, c, h_out, w_out)
    return out[0] if unbatched else out


def max_unpool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, indices: np.ndarray, kernel_size: Size, stride: Size | None = None,
    padding: Size = 0, output_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Gradient of ``max_unpool2d`` with respect to x: the output gradient read at the indices.

    grad_out: (N, C, H_out, W_out), x and indices: (N, C, H, W) (or all without N) -> grad_x: like x
    """
    op = "max_unpool2d_backward"
    x4, unbatched = _checks.batched(x, "x", "(N, C, H, W)", op)
    size = _output_size(op, x4, kernel_size, stride, padding, output_size)
    indices = _check_indices(op, indices, x4, unbatched, size[0] * size[1])
    layout = "(C, H_out, W_out)" if unbatched else "(N, C, H_out, W_out)"
    _checks.float_array(grad_out, "grad_out", layout, op)
    grad4 = grad_out[None] if unbatched else grad_out
    _checks.expect_shape(op, "grad_out", grad4.shape, (*x4.shape[:2], *size), "the forward output's shape")
    n, c = x4.shape[:2]
    grad = np.take_along_axis(grad4.reshape(n, c, -1), indices.reshape(n, c, -1), axis=2).reshape(x4.shape)
    return grad[0] if unbatched else grad
