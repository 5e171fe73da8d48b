"""Output sizes of convolution and pooling layers: the lectures' (N + 2P - F)/S + 1."""

from __future__ import annotations

import numbers


def _formula(n: int, kernel_size: int, stride: int, padding: int, dilation: int) -> str:
    """The size formula with the numbers filled in, as the lectures write it."""
    f = f"{kernel_size}" if dilation == 1 else f"({dilation}*({kernel_size} - 1) + 1)"
    p = f" + 2*{padding}" if padding else ""
    return f"({n}{p} - {f})/{stride} + 1"


def conv_output_size(
    n: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    strict: bool = False,
) -> int:
    """Length of a convolution's (or pooling's) output along one axis.

    ``floor((n + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``, PyTorch's rule.
    With ``strict=True`` a stride that leaves input uncovered raises ``ValueError``
    (the lectures' "stride 3 doesn't fit" on a 7x7 input with a 3x3 kernel).

    >>> conv_output_size(7, 3, stride=2)
    3
    >>> conv_output_size(32, 5, padding=2)
    32
    """
    for name, value, minimum in (
        ("n", n, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    effective = dilation * (kernel_size - 1) + 1
    span = n + 2 * padding - effective
    formula = _formula(n, kernel_size, stride, padding, dilation)
    if span < 0:
        raise ValueError(
            f"kernel of size {effective} is larger than the padded input of size "
            f"{n + 2 * padding}: {formula} = {span / stride + 1:.2f} < 1"
        )
    if strict and span % stride:
        raise ValueError(
            f"{formula} = {span / stride + 1:.2f} is not an integer: "
            f"stride {stride} does not fit"
        )
    return span // stride + 1


def conv2d_macs(in_channels: int, out_channels: int, kernel_size, out_size, groups: int = 1) -> int:
    """Multiply-adds of one image through a 2D convolution: each of the
    ``H_out * W_out * C_out`` outputs is a dot product of ``C_in / groups * K_h * K_w`` terms.

    >>> conv2d_macs(3, 96, 11, 55)  # AlexNet's conv1
    105415200
    """
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    h_out, w_out = (out_size, out_size) if isinstance(out_size, int) else out_size
    return h_out * w_out * out_channels * (in_channels // groups) * k_h * k_w
