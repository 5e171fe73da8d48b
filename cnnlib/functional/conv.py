"""Convolution (cross-correlation, as in every deep-learning library), forward.

The forward pass is im2col plus one matrix product (``correlate``); float32 3x3 stride-1 layers
with many channels take Winograd's F(2x2, 3x3) instead (``winograd.py``, forward and backward;
``winograd_applies`` says where); a float32 batch too large for the caches goes in chunks of
images (``batch_threads.batch_chunk``). The backward pass
(``conv_backward``) is two more correlations, exactly as the lectures derive them:

- the weight gradient correlates the input with the output gradient (below);
- the input gradient is a transposed convolution of the output gradient, i.e. a full
  correlation of the (dilated, padded) output gradient with the flipped kernel.

``padding`` is an int, an (h, w) pair, ``"valid"`` (no padding) or ``"same"`` (output as large as
the input, stride 1 only; an even kernel gets its extra zero after the input, as in PyTorch).
Inputs may come without their batch axis, (C_in, H, W) for conv2d and (C_in, L) for conv1d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..geometry import same_padding
from . import winograd
from ._geometry import ConvGeometry
from .batch_threads import batch_chunk, batch_parts, over_batch, part_geometry
from .correlate import channels_last, conv_arguments, correlate
from .im2col import channels_last_cols, im2col, image_to_cols, kernels_from_channels_last

Padding = int | tuple[int, int] | str
Size = int | tuple[int, int]


@dataclass(frozen=True)
class ConvCall:
    """A checked conv2d call: the batched (and, for an uneven "same", padded) input and what to
    undo on the way out (the batch axis, the extra padding)."""

    x: np.ndarray
    geometry: ConvGeometry
    unbatched: bool
    pads: tuple[int, int, int, int] | None  # (top, bottom, left, right) applied to x, or None


def _string_padding(op: str, padding: str, kernel: tuple[int, ...], stride: Size, dilation: Size):
    """"valid"/"same" -> per-axis (before, after) zeros."""
    strides = _checks.pair(stride, "stride", minimum=1)
    dilations = _checks.pair(dilation, "dilation", minimum=1)
    try:
        return [same_padding(k, d, stride=s, padding=padding) for k, s, d in zip(kernel, strides, dilations)]
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None


def conv_call(
    op: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Size,
    padding: Padding, dilation: Size, groups: int, shown: tuple | None = None,
) -> ConvCall:
    """Check a conv2d call, batched or not, with int or string padding."""
    x, unbatched = _checks.batched(x, "x", "(N, C_in, H, W)", op)
    pads = None
    if isinstance(padding, str):
        _checks.float_array(weight, "weight", "(C_out, C_in / groups, K_h, K_w)", op)
        (top, bottom), (left, right) = _string_padding(op, padding, weight.shape[2:], stride, dilation)
        if top == bottom and left == right:
            padding = (top, left)
        else:
            pads, padding = (top, bottom, left, right), 0
            x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    g = conv_arguments(op, x, weight, bias, stride, padding, dilation, groups, shown)
    return ConvCall(x, g, unbatched, pads)


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1,
) -> np.ndarray:
    """2D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    x: (N, C_in, H, W) or (C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w),
    bias: (C_out,) or None -> out: (N, C_out, H_out, W_out) (no N if x had none), with
    ``H_out = floor((H + 2 P_h - D_h (K_h - 1) - 1) / S_h) + 1`` (likewise W_out).
    """
    call = conv_call("conv2d", x, weight, bias, stride, padding, dilation, groups)
    g = call.geometry
    parts, chunk = batch_parts(g, call.x.dtype), batch_chunk(g, call.x.dtype)
    if winograd.winograd_applies(g, call.x.dtype):
        out = winograd.winograd_conv2d(call.x, weight, bias, g.padding)
    elif parts > 1 or chunk < g.batch:
        # A small float32 layer on several BLAS threads: its batch in parts, on as many threads;
        # a float32 batch whose windows would not stay in the cache: in chunks, one after another.
        out = np.empty((g.batch, g.out_channels, *g.out_size), call.x.dtype)
        over_batch(lambda part: correlate(call.x[part], weight, bias, part_geometry(g, part), out[part]),
                   g.batch, parts, chunk)
    else:
        out = correlate(call.x, weight, bias, g)
    return out[0] if call.unbatched else out


def correlate_input_with_grad(
    x: np.ndarray, grad_out: np.ndarray, g: ConvGeometry,
) -> np.ndarray:
    """The weight gradient: the input correlated with the output gradient.

    x: (N, C_in, H, W), grad_out: (N, C_out, H_out, W_out) ->
    (C_out, C_in / groups, K_h, K_w),
    ``grad_weight[o, c, i, j]
      = sum_{n, y, x} grad_out[n, o, y, x] x_pad[n, c, yS + iD, xS + jD]``.
    """
    if channels_last(g):
        # One product per group over all N H_out W_out positions:
        # (C_out / G, P) @ (P, K_h K_w C_in / G).
        grads = np.ascontiguousarray(grad_out.transpose(1, 0, 2, 3))
        grads = grads.reshape(g.groups, g.out_channels // g.groups, -1)
        product = np.matmul(grads, channels_last_cols(x, g))
        return kernels_from_channels_last(product, g.in_channels // g.groups,
                                          g.kernel_size)
    cols = im2col(x, g)  # (N, G, C_in/G K_h K_w, positions)
    grads = image_to_cols(grad_out, g)  # (N, G, C_out/G, positions)
    n, groups, rows, positions = cols.shape
    if n * groups * grads.shape[2] * rows <= cols.size + grads.size:
        # Per image products are small next to the data: sum N of them.
        grad_weight = np.matmul(grads, cols.transpose(0, 1, 3, 2)).sum(axis=0)
    else:
        # Few positions per image (a late layer): lay the batch out along the
        # sum, one product.
        flat_grads = (grads.transpose(1, 2, 0, 3)
                      .reshape(groups, -1, n * positions))
        flat_cols = (cols.transpose(1, 0, 3, 2)
                     .reshape(groups, n * positions, rows))
        grad_weight = np.matmul(flat_grads, flat_cols)
    return grad_weight.reshape(g.out_channels, g.in_channels // g.groups,
                               *g.kernel_size)


def conv1d_call(
    op: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int | tuple[int],
    padding: int | tuple[int] | str, dilation: int | tuple[int], groups: int,
) -> tuple[ConvCall, np.ndarray]:
    """Check a 1D convolution's arguments and view it as a 2D one of height 1."""
    x3, unbatched = _checks.batched(x, "x", "(N, C_in, L)", op)
    _checks.float_array(weight, "weight", "(C_out, C_in / groups, K)", op)
    stride2 = (1, _checks.single(stride, "stride", minimum=1))
    padding2 = padding if isinstance(padding, str) else (0, _checks.single(padding, "padding", minimum=0))
    dilation2 = (1, _checks.single(dilation, "dilation", minimum=1))
    w2 = weight[:, :, None, :]
    call = conv_call(op, x3[:, :, None, :], w2, bias, stride2, padding2, dilation2, groups,
                     (x3.shape, weight.shape))
    return ConvCall(call.x, call.geometry, unbatched, call.pads), w2


def conv1d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: int = 1,
    padding: int | str = 0, dilation: int = 1, groups: int = 1,
) -> np.ndarray:
    """1D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    x: (N, C_in, L) or (C_in, L), weight: (C_out, C_in / groups, K), bias: (C_out,) or None
    -> out: (N, C_out, L_out) (no N if x had none), ``L_out = floor((L + 2P - D (K - 1) - 1) / S) + 1``.
    """
    call, w2 = conv1d_call("conv1d", x, weight, bias, stride, padding, dilation, groups)
    out = correlate(call.x, w2, bias, call.geometry)[:, :, 0, :]
    return out[0] if call.unbatched else out
