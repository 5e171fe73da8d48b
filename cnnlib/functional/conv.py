"""Convolution (cross-correlation, as in every deep-learning library) forward and backward.

The forward pass is im2col plus one matrix product. The backward pass is two more
correlations, exactly as the lectures derive them:

- the weight gradient correlates the input with the output gradient;
- the input gradient is a transposed convolution of the output gradient, i.e. a full
  correlation of the (dilated, padded) output gradient with the flipped kernel.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ._geometry import ConvGeometry, conv_geometry
from .im2col import cols_to_image, im2col, image_to_cols


def _geometry(op, x, weight, bias, stride, padding, dilation, groups, shown=None) -> ConvGeometry:
    _checks.float_array(x, "x", "(N, C_in, H, W)", op)
    _checks.float_array(weight, "weight", "(C_out, C_in / groups, K_h, K_w)", op)
    return conv_geometry(
        op, x, weight, bias,
        _checks.pair(stride, "stride", minimum=1),
        _checks.pair(padding, "padding", minimum=0),
        _checks.pair(dilation, "dilation", minimum=1),
        groups, shown=shown,
    )


def _conv2d(x, weight, bias, g: ConvGeometry) -> np.ndarray:
    """out[n, o] = bias[o] + sum over the group's channels c and offsets (i, j) of
    weight[o, c, i, j] * x_pad[n, c, y S + i D, x S + j D]: one matrix product per group."""
    kernels = weight.reshape(g.groups, g.out_channels // g.groups, -1)
    out = cols_to_image(np.matmul(kernels, im2col(x, g)), g, g.out_channels)
    if bias is not None:
        out += bias[:, None, None]
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """2D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    x: (N, C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w), bias: (C_out,) or None
    -> out: (N, C_out, H_out, W_out) with
    ``H_out = floor((H + 2 P_h - D_h (K_h - 1) - 1) / S_h) + 1`` (likewise W_out).
    """
    g = _geometry("conv2d", x, weight, bias, stride, padding, dilation, groups)
    return _conv2d(x, weight, bias, g)


def correlate_input_with_grad(x: np.ndarray, grad_out: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The weight gradient: the input correlated with the output gradient.

    x: (N, C_in, H, W), grad_out: (N, C_out, H_out, W_out) -> (C_out, C_in / groups, K_h, K_w),
    ``grad_weight[o, c, i, j] = sum_{n, y, x} grad_out[n, o, y, x] x_pad[n, c, yS + iD, xS + jD]``.
    """
    cols = im2col(x, g)  # (N, G, C_in/G K_h K_w, positions)
    grads = image_to_cols(grad_out, g)  # (N, G, C_out/G, positions)
    n, groups, rows, positions = cols.shape
    if n * groups * grads.shape[2] * rows <= cols.size + grads.size:
        # Per image products are small next to the data: sum N of them.
        grad_weight = np.matmul(grads, cols.transpose(0, 1, 3, 2)).sum(axis=0)
    else:
        # Few positions per image (a late layer): lay the batch out along the sum, one product.
        flat_grads = grads.transpose(1, 2, 0, 3).reshape(groups, -1, n * positions)
        flat_cols = cols.transpose(1, 0, 3, 2).reshape(groups, n * positions, rows)
        grad_weight = np.matmul(flat_grads, flat_cols)
    return grad_weight.reshape(g.out_channels, g.in_channels // g.groups, *g.kernel_size)


def _check_grad_out(op: str, grad_out, g: ConvGeometry, dtype) -> None:
    _checks.float_array(grad_out, "grad_out", "(N, C_out, H_out, W_out)", op)
    expected = (g.batch, g.out_channels, *g.out_size)
    _checks.expect_shape(op, "grad_out", grad_out.shape, expected, "the forward output's shape")
    if grad_out.dtype != dtype:
        raise TypeError(f"{op}: grad_out is {grad_out.dtype} but x is {dtype}")


def _conv2d_backward(grad_out, x, weight, g: ConvGeometry):
    from .conv_transpose import transposed_conv  # conv's backward is the transposed conv

    grad_x = transposed_conv(grad_out, weight, g)
    grad_weight = correlate_input_with_grad(x, grad_out, g)
    grad_bias = grad_out.sum(axis=(0, 2, 3))
    return grad_x, grad_weight, grad_bias


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of ``conv2d`` with respect to its input, weight and bias.

    grad_out: (N, C_out, H_out, W_out), x: (N, C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w)
    -> grad_x: (N, C_in, H, W), grad_weight: like weight, grad_bias: (C_out,)
    """
    g = _geometry("conv2d_backward", x, weight, None, stride, padding, dilation, groups)
    _check_grad_out("conv2d_backward", grad_out, g, x.dtype)
    return _conv2d_backward(grad_out, x, weight, g)


def _as_2d(op, x, weight, bias, stride, padding, dilation, groups):
    """Check a 1D convolution's arguments and view it as a 2D one of height 1."""
    _checks.float_array(x, "x", "(N, C_in, L)", op)
    _checks.float_array(weight, "weight", "(C_out, C_in / groups, K)", op)
    stride = (1, _checks.single(stride, "stride", minimum=1))
    padding = (0, _checks.single(padding, "padding", minimum=0))
    dilation = (1, _checks.single(dilation, "dilation", minimum=1))
    x2, w2 = x[:, :, None, :], weight[:, :, None, :]
    g = _geometry(op, x2, w2, bias, stride, padding, dilation, groups, (x.shape, weight.shape))
    return x2, w2, g


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """1D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    x: (N, C_in, L), weight: (C_out, C_in / groups, K), bias: (C_out,) or None
    -> out: (N, C_out, L_out), ``L_out = floor((L + 2P - D (K - 1) - 1) / S) + 1``.
    """
    x2, w2, g = _as_2d("conv1d", x, weight, bias, stride, padding, dilation, groups)
    return _conv2d(x2, w2, bias, g)[:, :, 0, :]


def conv1d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of ``conv1d``: grad_out: (N, C_out, L_out) -> (grad_x, grad_weight, grad_bias)."""
    x2, w2, g = _as_2d("conv1d_backward", x, weight, None, stride, padding, dilation, groups)
    _checks.float_array(grad_out, "grad_out", "(N, C_out, L_out)", "conv1d_backward")
    _check_grad_out("conv1d_backward", grad_out[:, :, None, :], g, x.dtype)
    grad_x, grad_weight, grad_bias = _conv2d_backward(grad_out[:, :, None, :], x2, w2, g)
    return grad_x[:, :, 0, :], grad_weight[:, :, 0, :], grad_bias
