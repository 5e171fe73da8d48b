"""The backward passes of the convolutions: each is the other kind of convolution.

conv2d's input gradient is the transposed convolution of the output gradient and its weight
gradient correlates the input with the output gradient; conv_transpose2d's are the other way
round (its input gradient is an ordinary convolution).
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _checks
from . import winograd
from ._windows import pad_or_crop
from .batch_threads import batch_chunk, batch_parts, over_batch, part_geometry
from .conv import Padding, Size, conv1d_call, conv_call, correlate_input_with_grad
from .conv_transpose import scatter_kind, transpose_arguments, transposed_conv
from .correlate import check_grad_out, conv_arguments, correlate
from .folded import folded_weight_grad, little_plane_junk, moved_rows, plane_weight_grad, planes_of

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


def conv2d_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: Size = 1, padding: Padding = 0,
    dilation: Size = 1, groups: int = 1,
) -> Grads:
    """Gradients of ``conv2d`` with respect to its input, weight and bias.

    grad_out: (N, C_out, H_out, W_out), x: (N, C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w)
    (or both without N) -> grad_x: like x, grad_weight: like weight, grad_bias: (C_out,)
    """
    op = "conv2d_backward"
    call = conv_call(op, x, weight, None, stride, padding, dilation, groups)
    g = call.geometry
    layout = "(C_out, H_out, W_out)" if call.unbatched else "(N, C_out, H_out, W_out)"
    expected = (g.out_channels, *g.out_size) if call.unbatched else (g.batch, g.out_channels, *g.out_size)
    grad_out = check_grad_out(op, grad_out, expected, call.x.dtype, layout)
    grad_out = grad_out[None] if call.unbatched else grad_out
    if winograd.winograd_applies(g, call.x.dtype):
        grad_x, grad_weight = winograd.winograd_conv2d_backward(grad_out, call.x, weight, g.padding)
    else:
        # A small float32 layer on several BLAS threads: its batch in parts, on as many threads;
        # a float32 batch whose windows would not stay in the cache: in chunks (``batch_chunk``).
        def both(part: slice) -> tuple[np.ndarray, np.ndarray]:
            part_g = part_geometry(g, part)
            kind = scatter_kind(part_g, call.x.dtype, with_weight_grad=True)
            if kind == "rows":
                # The output gradient moved once per kernel column serves both products.
                moved = moved_rows(grad_out[part], part_g)
                return (transposed_conv(grad_out[part], weight, part_g, moved, kind),
                        folded_weight_grad(call.x[part], moved, part_g))
            if kind == "planes" and call.x.dtype == np.float32 and little_plane_junk(part_g):
                # So do the output gradient's planes (float64 keeps im2col's order of summation).
                planes = planes_of(grad_out[part], part_g)
                return (transposed_conv(grad_out[part], weight, part_g, planes, kind),
                        plane_weight_grad(call.x[part], planes, part_g))
            return (transposed_conv(grad_out[part], weight, part_g, kind=kind),
                    correlate_input_with_grad(call.x[part], grad_out[part], part_g))

        parts = over_batch(both, g.batch, batch_parts(g, call.x.dtype), batch_chunk(g, call.x.dtype))
        grad_x = parts[0][0] if len(parts) == 1 else np.concatenate([gx for gx, _ in parts])
        grad_weight = functools.reduce(np.add, (gw for _, gw in parts))
    if call.pads is not None:
        top, bottom, left, right = call.pads
        grad_x = pad_or_crop(grad_x, -top, -bottom, -left, -right)
    return grad_x[0] if call.unbatched else grad_x, grad_weight, grad_out.sum(axis=(0, 2, 3))


def conv1d_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: int = 1, padding: int | str = 0,
    dilation: int = 1, groups: int = 1,
) -> Grads:
    """Gradients of ``conv1d``: grad_out: (N, C_out, L_out) or (C_out, L_out)
    -> (grad_x like x, grad_weight like weight, grad_bias: (C_out,))."""
    op = "conv1d_backward"
    call, w2 = conv1d_call(op, x, weight, None, stride, padding, dilation, groups)
    g = call.geometry
    layout = "(C_out, L_out)" if call.unbatched else "(N, C_out, L_out)"
    expected = (g.out_channels, g.out_size[1]) if call.unbatched else (g.batch, g.out_channels, g.out_size[1])
    grad_out = check_grad_out(op, grad_out, expected, call.x.dtype, layout)
    grad_out = (grad_out[None] if call.unbatched else grad_out)[:, :, None, :]
    grad_x = transposed_conv(grad_out, w2, g)
    if call.pads is not None:
        grad_x = pad_or_crop(grad_x, 0, 0, -call.pads[2], -call.pads[3])
    grad_weight = correlate_input_with_grad(call.x, grad_out, g)[:, :, 0, :]
    grad_x = grad_x[:, :, 0, :]
    return grad_x[0] if call.unbatched else grad_x, grad_weight, grad_out.sum(axis=(0, 2, 3))


def conv_transpose2d_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: Size = 1, padding: Size = 0,
    output_padding: Size = 0, groups: int = 1, dilation: Size = 1,
) -> Grads:
    """Gradients of ``conv_transpose2d``: its backward pass is an ordinary convolution.

    grad_out: (N, C_out, H_out, W_out), x: (N, C_in, H, W), weight: (C_in, C_out / groups, K_h, K_w)
    (or both without N) -> grad_x: like x, grad_weight: like weight, grad_bias: (C_out,)
    """
    op = "conv_transpose2d_backward"
    x4, unbatched = _checks.batched(x, "x", "(N, C_in, H, W)", op)
    t = transpose_arguments(op, x4, weight, None, stride, padding, output_padding, groups, dilation)
    layout = "(C_out, H_out, W_out)" if unbatched else "(N, C_out, H_out, W_out)"
    expected = (t.in_channels, *t.in_size) if unbatched else (t.batch, t.in_channels, *t.in_size)
    grad_out = check_grad_out(op, grad_out, expected, x4.dtype, layout)
    grad_out = grad_out[None] if unbatched else grad_out
    g = conv_arguments(op, grad_out, weight, None, stride, padding, dilation, groups)
    grad_x = correlate(grad_out, weight, None, g)[:, :, : x4.shape[2], : x4.shape[3]]
    # With output_padding >= stride the conv's output is longer than x: those rows carry no x.
    x_full = pad_or_crop(x4, 0, g.out_size[0] - x4.shape[2], 0, g.out_size[1] - x4.shape[3])
    grad_weight = correlate_input_with_grad(grad_out, x_full, g)
    return grad_x[0] if unbatched else grad_x, grad_weight, grad_out.sum(axis=(0, 2, 3))
