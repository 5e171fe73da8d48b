"""The loop versions: the lectures' formulas written out one output value at a time.

Slow and obviously correct; the book shows these first, and the tests check that the fast
vectorised layers agree with them. Arguments are checked by the fast versions' rules.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .correlate import conv_arguments
from .pooling import pool_arguments

Size = int | tuple[int, int]  # 3 or (3, 5): one number for both axes, or (H, W)


def conv2d_naive(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: Size = 1, padding: Size = 0
) -> np.ndarray:
    """``conv2d`` by seven nested loops' worth of indexing (dilation 1, groups 1).

    x: (N, C_in, H, W), weight: (C_out, C_in, K_h, K_w), bias: (C_out,) or None
    -> (N, C_out, H_out, W_out),
    ``out[n, o, y, x] = b[o] + sum_{c, i, j} w[o, c, i, j] x_pad[n, c, yS + i, xS + j]``
    """
    g = conv_arguments("conv2d_naive", x, weight, bias, stride, padding, 1, 1)
    (sh, sw), (ph, pw), (kh, kw) = g.stride, g.padding, g.kernel_size
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((g.batch, g.out_channels, *g.out_size), x.dtype)
    for n in range(g.batch):
        for o in range(g.out_channels):
            for y in range(g.out_size[0]):
                for x_ in range(g.out_size[1]):
                    window = xp[n, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]
                    out[n, o, y, x_] = np.sum(window * weight[o])
            if bias is not None:
                out[n, o] += bias[o]
    return out


def _pool_naive(
    op: str, reduce: Callable[..., np.ndarray], x: np.ndarray, kernel_size: Size, stride: Size | None,
    padding: Size, fill: float,
) -> np.ndarray:
    kernel, stride, padding, out_size = pool_arguments(op, x, kernel_size, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    out = np.zeros(x.shape[:2] + out_size, x.dtype)
    for y in range(out_size[0]):
        for x_ in range(out_size[1]):
            window = xp[:, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]
            out[:, :, y, x_] = reduce(window, axis=(2, 3))
    return out


def max_pool2d_naive(
    x: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0
) -> np.ndarray:
    """``max_pool2d`` window by window. x: (N, C, H, W) -> (N, C, H_out, W_out)"""
    return _pool_naive("max_pool2d_naive", np.max, x, kernel_size, stride, padding, -np.inf)


def avg_pool2d_naive(
    x: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0
) -> np.ndarray:
    """``avg_pool2d`` window by window (padding counts). x: (N, C, H, W) -> (N, C, H_out, W_out)"""
    return _pool_naive("avg_pool2d_naive", np.mean, x, kernel_size, stride, padding, 0)
