"""The one computation under every convolution: checking its arguments and correlating.

``conv_arguments`` checks a (batched, 4D) conv2d call and works out its geometry; ``correlate``
is im2col (channels last where that copies faster, see ``im2col.py``) plus one matrix product
per group, or for a small float32 layer with few input channels the product over the input's
rows with the kernel folded in (``folded.py``). ``conv2d``, the transposed convolution and both
backward passes are built from these two.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ._geometry import ConvGeometry, conv_geometry
from .folded import folded_correlate, folds
from .im2col import channels_last_cols, channels_last_kernels, cols_to_image, im2col, little_junk, to_nchw


def conv_arguments(
    op: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: object,
    padding: object, dilation: object, groups: int, shown: tuple | None = None,
) -> ConvGeometry:
    """Check a batched conv2d call (padding as ints) and return its geometry.

    x: (N, C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w), bias: (C_out,) or None.
    """
    _checks.float_array(x, "x", "(N, C_in, H, W)", op)
    _checks.float_array(weight, "weight", "(C_out, C_in / groups, K_h, K_w)", op)
    return conv_geometry(
        op, x, weight, bias,
        _checks.pair(stride, "stride", minimum=1),
        _checks.pair(padding, "padding", minimum=0),
        _checks.pair(dilation, "dilation", minimum=1),
        groups, shown=shown,
    )


def channels_last(g: ConvGeometry) -> bool:
    """Build the columns channels last (``channels_last_cols``) when each window row is a run of
    at least 16 values (64 bytes of float32) in that layout; with fewer channels (LeNet's C1,
    an RGB input) the flat runs of ``im2col`` copy faster."""
    return g.in_channels // g.groups * g.kernel_size[1] >= 16


def correlate(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, g: ConvGeometry,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """out[n, o] = bias[o] + sum over the group's channels c and offsets (i, j) of
    weight[o, c, i, j] * x_pad[n, c, y S + i D, x S + j D]: one matrix product per group.
    Written into ``out`` (C-contiguous) if given.

    x: (N, C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w) -> (N, C_out, H_out, W_out)
    """
    if folds(g, x.dtype):
        return folded_correlate(x, weight, bias, g, out)
    if channels_last(g) and not little_junk(g):
        cols = channels_last_cols(x, g)  # (groups, N H_out W_out, K_h K_w C_in / groups)
        # The product comes out channels last, (groups, N H_out W_out, C_out / groups): OpenBLAS
        # runs this orientation 1.3-2.3 times faster than kernels @ cols.T (which would come out
        # channel-major) at these shapes, more than the transposing copy to NCHW costs (1 thread,
        # 2026-12-07: 32 kernels of 144 over 4,096 windows 0.44 + 0.08 ms against 0.73; 16 over
        # 11,264 0.73 + 0.12 against 1.72; 64 of 288 over 4,096 1.57 + 0.18 against 2.26).
        product = np.matmul(cols, channels_last_kernels(weight, g.groups).transpose(0, 2, 1))
        return to_nchw(product, g, bias, out)
    kernels = weight.reshape(g.groups, g.out_channels // g.groups, -1)
    return cols_to_image(np.matmul(kernels, im2col(x, g)), g, g.out_channels, bias, out)


def check_grad_out(op: str, grad_out: object, expected: tuple, dtype: np.dtype, layout: str) -> np.ndarray:
    """``grad_out`` must be an array of the forward output's shape (``layout``) and x's dtype."""
    grad_out = _checks.float_array(grad_out, "grad_out", layout, op)
    _checks.expect_shape(op, "grad_out", grad_out.shape, expected, "the forward output's shape")
    if grad_out.dtype != dtype:
        raise TypeError(f"{op}: grad_out is {grad_out.dtype} but x is {dtype}")
    return grad_out
