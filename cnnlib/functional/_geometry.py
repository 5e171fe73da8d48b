"""Checking a convolution's arguments once, for the forward, backward and transposed layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..geometry import conv_output_size


@dataclass(frozen=True)
class ConvGeometry:
    """Everything a 2D convolution needs to know besides the numbers themselves."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_size: tuple[int, int]
    kernel_size: tuple[int, int]
    out_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]


def output_size(
    op: str,
    n: tuple[int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    shape: tuple[int, ...],
) -> tuple[int, int]:
    """``conv_output_size`` along H and W, with the layer's name and the input's shape in errors."""
    sizes = []
    for axis, args in zip("HW", zip(n, kernel_size, stride, padding, dilation)):
        try:
            sizes.append(conv_output_size(*args))
        except ValueError as error:
            raise ValueError(f"{op}: input of shape {shape}, along {axis}: {error}") from None
    return sizes[0], sizes[1]


def conv_geometry(
    op: str,
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    *,
    shown: tuple | None = None,
) -> ConvGeometry:
    """Check a conv2d call and work out its output size.

    x: (N, C_in, H, W), weight: (C_out, C_in / groups, K_h, K_w), bias: (C_out,) or None.
    ``shown`` holds the shapes the caller passed (conv1d's 3D ones), for error messages.
    """
    x_shape, w_shape = shown or (x.shape, weight.shape)
    groups = _checks.positive_int(groups, "groups", op)
    n, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both C_in={c_in} (x of shape {x_shape}) "
            f"and C_out={c_out} (weight of shape {w_shape})"
        )
    if c_per_group * groups != c_in:
        raise ValueError(
            f"{op}: weight of shape {w_shape} expects C_in = {c_per_group} x groups "
            f"= {c_per_group * groups} input channels, but x of shape {x_shape} has {c_in}"
        )
    if bias is not None:
        _checks.float_array(bias, "bias", "(C_out,)", op)
        _checks.expect_shape(op, "bias", bias.shape, (c_out,), "one bias per output channel")
    _checks.same_dtype(op, x=x, weight=weight, bias=bias)
    kernel = (kh, kw)
    out = output_size(op, (h, w), kernel, stride, padding, dilation, x_shape)
    return ConvGeometry(n, c_in, c_out, groups, (h, w), kernel, out, stride, padding, dilation)
