"""The loop versions: the lectures' formulas written out one output value at a time.

Slow and obviously correct; the book shows these first, and the tests check that the fast
vectorised layers agree with them. Arguments are checked by the fast versions' rules.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._windows import pad2d
from .conv import conv_call
from .pooling import pool_call

Size = int | tuple[int, int]  # 3 or (3, 5): one number for both axes, or (H, W)
Padding = int | tuple[int, int] | str  # also "valid" (none) or "same" (output as large as the input)


def conv2d_naive(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
    stride: Size = 1, padding: Padding = 0, dilation: Size = 1, groups: int = 1,
) -> np.ndarray:
    """``conv2d`` by seven nested loops' worth of indexing, with conv2d's
    arguments.

    x: (N, C_in, H, W) or (C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w),
    bias: (C_out,) or None -> (N, C_out, H_out, W_out) (no N if x had none),
    ``out[n, o, y, x]
      = b[o] + sum_{c, i, j} w[o, c, i, j] x_pad[n, c0 + c, yS + iD, xS + jD]``
    with ``c0`` the first input channel of output channel o's group.
    """
    call = conv_call("conv2d_naive", x, weight, bias, stride, padding,
                     dilation, groups)
    # "same"/"valid" are ints by now (an uneven "same" padded call.x)
    g = call.geometry
    (sh, sw), (ph, pw), (dh, dw), (kh, kw) = (g.stride, g.padding,
                                              g.dilation, g.kernel_size)
    xp = np.pad(call.x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    per_group_in, per_group_out = (g.in_channels // g.groups,
                                   g.out_channels // g.groups)
    out = np.zeros((g.batch, g.out_channels, *g.out_size), call.x.dtype)
    for n in range(g.batch):
        for o in range(g.out_channels):
            c0 = o // per_group_out * per_group_in
            for y in range(g.out_size[0]):
                for x_ in range(g.out_size[1]):
                    window = xp[n, c0 : c0 + per_group_in,
                                y * sh : y * sh + dh * (kh - 1) + 1 : dh,
                                x_ * sw : x_ * sw + dw * (kw - 1) + 1 : dw]
                    out[n, o, y, x_] = np.sum(window * weight[o])
            if bias is not None:
                out[n, o] += bias[o]
    return out[0] if call.unbatched else out


def _pool_naive(
    op: str, reduce: Callable[..., np.ndarray], x: np.ndarray, kernel_size: Size,
    stride: Size | None, padding: Size, fill: float, dilation: Size = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    call = pool_call(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (dh, dw) = call.kernel, call.stride, call.dilation
    # ``fill`` around the input, and past its bottom and right where a ceil-mode
    # window hangs over.
    xp = pad2d(call.x, call.padding, fill, extra=call.overhang())
    out = np.zeros(call.x.shape[:2] + call.out, call.x.dtype)
    for y in range(call.out[0]):
        for x_ in range(call.out[1]):
            window = xp[:, :, y * sh : y * sh + dh * (kh - 1) + 1 : dh,
                        x_ * sw : x_ * sw + dw * (kw - 1) + 1 : dw]
            out[:, :, y, x_] = reduce(window, axis=(2, 3))
    return call.result(out)


def max_pool2d_naive(
    x: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """``max_pool2d`` window by window. x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out)"""
    return _pool_naive("max_pool2d_naive", np.max, x, kernel_size, stride, padding, -np.inf, dilation,
                       ceil_mode)


def avg_pool2d_naive(
    x: np.ndarray, kernel_size: Size, stride: Size | None = None, padding: Size = 0
) -> np.ndarray:
    """``avg_pool2d`` window by window (padding counts). x: (N, C, H, W) or (C, H, W)
    -> (N, C, H_out, W_out)"""
    return _pool_naive("avg_pool2d_naive", np.mean, x, kernel_size, stride, padding, 0)
