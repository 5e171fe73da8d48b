"""Every size relationship of convolution arithmetic, as plain functions of integers.

This module imports nothing else from ``cnnlib``: the layers, ``cnnlib.shapes``, the summary and
the book's pictures all take their sizes from here. Each function works along one axis (apply it
to H and W separately) and follows PyTorch's rules exactly; the tests compare them with the shapes
``torch.nn.functional`` returns over many random settings.

The relationships, in the order conv_arithmetic (Dumoulin and Visin) draws them, for input size
``n``, kernel ``k``, stride ``s``, padding ``p`` and dilation ``d``:

- no padding, unit stride: ``n - k + 1``;
- arbitrary padding: ``n + 2p - k + 1``;
- half ("same") padding: ``same_padding(k)`` keeps the size, ``n``;
- full padding: ``full_padding(k) = k - 1`` gives ``n + k - 1``;
- stride: ``floor((n + 2p - k) / s) + 1`` (``conv_leftover`` counts the rows no window reaches
  when the stride does not fit);
- dilation: the kernel spans ``effective_kernel_size(k, d) = d (k - 1) + 1``;
- transposed: ``conv_transpose_output_size = (n - 1) s - 2p + d (k - 1) + output_padding + 1``,
  which maps a convolution's output size back to its input size when ``output_padding`` is the
  leftover, and ``transposed_as_conv`` gives the equivalent direct convolution;
- pooling: ``pool_output_size`` (with ``ceil_mode``) and ``adaptive_pool_windows``.

>>> conv_output_size(5, 3), conv_output_size(5, 4, padding=2), conv_output_size(5, 3, stride=2, padding=1)
(3, 6, 3)
>>> conv_transpose_output_size(3, 3, stride=2, padding=1)
5
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

__all__ = [
    "effective_kernel_size", "conv_output_size", "conv_output_formula", "conv_leftover",
    "same_padding", "full_padding", "conv_transpose_output_size", "conv_transpose_output_formula",
    "transposed_as_conv", "TransposedAsConv", "pool_output_size", "adaptive_pool_windows",
    "conv2d_macs",
]


def _check_ints(**values: tuple[object, int]) -> None:
    """Each keyword is ``name=(value, minimum)``: refuse non-ints and values below the minimum."""
    for name, (value, minimum) in values.items():
        if type(value) is int and value >= minimum:  # the common case, first: every layer call runs this
            continue
        if type(value) is not int and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < minimum:  # type: ignore[operator]
            raise ValueError(f"{name} must be >= {minimum}, got {value}")


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """How many input positions a dilated kernel spans: ``d (k - 1) + 1``.

    >>> effective_kernel_size(3, dilation=2)
    5
    """
    _check_ints(kernel_size=(kernel_size, 1), dilation=(dilation, 1))
    return dilation * (kernel_size - 1) + 1


def conv_output_formula(
    n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> str:
    """The output-size formula with the numbers filled in, as the lectures write it.

    >>> conv_output_formula(7, 3, stride=2, padding=1)
    '(7 + 2*1 - 3)/2 + 1'
    """
    f = f"{kernel_size}" if dilation == 1 else f"({dilation}*({kernel_size} - 1) + 1)"
    p = f" + 2*{padding}" if padding else ""
    return f"({n}{p} - {f})/{stride} + 1"


def conv_leftover(n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Rows of the padded input (along one axis) after the last window: 0 when the stride fits.

    ``(n + 2p - d (k - 1) - 1) mod s``; a transposed convolution needs ``output_padding`` equal
    to this to give back the input's size.

    >>> conv_leftover(7, 3, stride=3)  # the lectures' "stride 3 doesn't fit"
    1
    """
    _check_ints(n=(n, 1), kernel_size=(kernel_size, 1), stride=(stride, 1), padding=(padding, 0),
                dilation=(dilation, 1))
    span = n + 2 * padding - effective_kernel_size(kernel_size, dilation)
    if span < 0:
        raise ValueError(f"kernel of size {effective_kernel_size(kernel_size, dilation)} is larger than "
                         f"the padded input of size {n + 2 * padding}")
    return span % stride


def conv_output_size(
    n: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    strict: bool = False,
) -> int:
    """Length of a convolution's (or pooling's) output along one axis.

    ``floor((n + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``, PyTorch's rule.
    ``padding`` may also be ``"valid"`` (0) or ``"same"`` (output size ``n``; stride 1 only, as
    in PyTorch). With ``strict=True`` a stride that leaves input uncovered raises ``ValueError``
    (the lectures' "stride 3 doesn't fit" on a 7x7 input with a 3x3 kernel).

    >>> conv_output_size(7, 3, stride=2)
    3
    >>> conv_output_size(32, 5, padding=2)
    32
    >>> conv_output_size(32, 4, padding="same")
    32
    """
    if isinstance(padding, str):
        before, after = same_padding(kernel_size, dilation, stride=stride, padding=padding)
        _check_ints(n=(n, 1))
        span = n + before + after - effective_kernel_size(kernel_size, dilation)
        if span < 0:
            raise ValueError(f"kernel of size {effective_kernel_size(kernel_size, dilation)} is larger "
                             f"than the input of size {n} with padding={padding!r}")
        return span // stride + 1
    _check_ints(n=(n, 1), kernel_size=(kernel_size, 1), stride=(stride, 1), padding=(padding, 0),
                dilation=(dilation, 1))
    effective = dilation * (kernel_size - 1) + 1
    span = n + 2 * padding - effective
    if span >= 0 and not (strict and span % stride):
        return span // stride + 1
    formula = conv_output_formula(n, kernel_size, stride, padding, dilation)
    if span < 0:
        raise ValueError(
            f"kernel of size {effective} is larger than the padded input of size "
            f"{n + 2 * padding}: {formula} = {span / stride + 1:.2f} < 1"
        )
    raise ValueError(f"{formula} = {span / stride + 1:.2f} is not an integer: stride {stride} does not fit")


def same_padding(
    kernel_size: int, dilation: int = 1, *, stride: int = 1, padding: str = "same"
) -> tuple[int, int]:
    """Zeros before and after the input for ``padding="same"`` (or ``"valid"``): (before, after).

    "same" pads ``d (k - 1)`` in total, the odd one out after the input, as PyTorch splits it:
    an odd kernel gets ``(k - 1) / 2`` on both sides (the lectures' half padding), an even one
    one more after than before. PyTorch refuses "same" with a stride > 1, and so does this.

    >>> same_padding(3), same_padding(4), same_padding(3, dilation=2), same_padding(5, padding="valid")
    ((1, 1), (1, 2), (2, 2), (0, 0))
    """
    _check_ints(kernel_size=(kernel_size, 1), dilation=(dilation, 1), stride=(stride, 1))
    if padding == "valid":
        return 0, 0
    if padding != "same":
        raise ValueError(f"padding as a string must be 'same' or 'valid', got {padding!r}")
    if stride != 1:
        raise ValueError(f"padding='same' is not supported for strided convolutions (stride={stride}): "
                         "the output size n / s would need fractional padding, as PyTorch says")
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


def full_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding at which every window overlapping the input at all is computed: ``d (k - 1)``.

    With it a unit-stride convolution's output is ``n + d (k - 1)`` long (``n + k - 1``).

    >>> full_padding(3)
    2
    """
    return effective_kernel_size(kernel_size, dilation) - 1


def conv_transpose_output_size(
    n: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Length of a transposed convolution's output along one axis, PyTorch's rule:
    ``(n - 1) s - 2p + d (k - 1) + output_padding + 1``.

    ``output_padding`` must be smaller than the stride or the dilation (PyTorch's rule); it
    picks which of the input sizes that a strided convolution maps to ``n`` comes back.

    >>> conv_transpose_output_size(2, 3)  # the transpose of 4 -> 2 (no padding, unit stride)
    4
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)  # 6 -> 3 and back
    6
    """
    _check_ints(n=(n, 1), kernel_size=(kernel_size, 1), stride=(stride, 1), padding=(padding, 0),
                output_padding=(output_padding, 0), dilation=(dilation, 1))
    if output_padding >= max(stride, dilation):
        raise ValueError(f"output_padding must be smaller than either stride or dilation, got "
                         f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    size = (n - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if size < 1:
        raise ValueError(
            f"{conv_transpose_output_formula(n, kernel_size, stride, padding, output_padding, dilation)}"
            f" = {size} is not positive: padding {padding} is too large"
        )
    return size


def conv_transpose_output_formula(
    n: int, kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
    dilation: int = 1,
) -> str:
    """The transposed output-size formula with the numbers filled in.

    >>> conv_transpose_output_formula(3, 3, stride=2, padding=1, output_padding=1)
    '(3 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1'
    """
    return f"({n} - 1)*{stride} - 2*{padding} + {dilation}*({kernel_size} - 1) + {output_padding} + 1"


@dataclass(frozen=True)
class TransposedAsConv:
    """A transposed convolution drawn as a direct one (conv_arithmetic's pictures).

    Insert ``zeros_between = s - 1`` zeros between the ``n`` inputs (``stretched_size`` long),
    pad ``pad_before`` zeros before and ``pad_after`` after (a negative amount crops), and slide
    the same kernel with stride 1 and the same dilation: the result is ``out_size`` long.
    """

    stretched_size: int
    zeros_between: int
    pad_before: int
    pad_after: int
    out_size: int


def transposed_as_conv(
    n: int, kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
    dilation: int = 1,
) -> TransposedAsConv:
    """The direct convolution equivalent to a transposed one along one axis.

    ``pad_before = d (k - 1) - p`` (conv_arithmetic's ``p' = k - p - 1``), ``pad_after`` the
    same plus ``output_padding``.

    >>> transposed_as_conv(2, 3, stride=2)
    TransposedAsConv(stretched_size=3, zeros_between=1, pad_before=2, pad_after=2, out_size=5)
    """
    out = conv_transpose_output_size(n, kernel_size, stride, padding, output_padding, dilation)
    before = dilation * (kernel_size - 1) - padding
    return TransposedAsConv((n - 1) * stride + 1, stride - 1, before, before + output_padding, out)


def pool_output_size(
    n: int,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Length of a max or average pooling's output along one axis, PyTorch's rule.

    As ``conv_output_size`` (the stride defaults to the kernel size), but padding may be at
    most half the kernel size, and with ``ceil_mode=True`` the division rounds up (a window
    may then hang over the end), except that the last window must start inside the input or
    the left padding.

    >>> pool_output_size(5, 2), pool_output_size(5, 2, ceil_mode=True)
    (2, 3)
    """
    stride = kernel_size if stride is None else stride
    _check_ints(n=(n, 1), kernel_size=(kernel_size, 1), stride=(stride, 1), padding=(padding, 0),
                dilation=(dilation, 1))
    if 2 * padding > kernel_size:
        raise ValueError(f"padding must be at most half the kernel size, got padding={padding} "
                         f"for kernel_size={kernel_size}")
    span = n + 2 * padding - effective_kernel_size(kernel_size, dilation)
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + padding:  # the last window would start in the padding
        out -= 1
    if out < 1:
        raise ValueError(f"kernel of size {effective_kernel_size(kernel_size, dilation)} is larger than "
                         f"the padded input of size {n + 2 * padding}: the output would be empty")
    return out


def adaptive_pool_windows(n: int, out_size: int) -> list[tuple[int, int]]:
    """Where each output of an adaptive pooling looks: ``[start, end)`` along one axis.

    Output ``i`` covers ``floor(i n / m)`` to ``ceil((i + 1) n / m)``, as PyTorch's
    ``adaptive_avg_pool2d``; windows may overlap when ``m`` does not divide ``n``.

    >>> adaptive_pool_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    _check_ints(n=(n, 1), out_size=(out_size, 1))
    return [((i * n) // out_size, -(-((i + 1) * n) // out_size)) for i in range(out_size)]


def conv2d_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    out_size: int | tuple[int, int],
    groups: int = 1,
) -> int:
    """Multiply-adds of one image through a 2D convolution: each of the
    ``H_out * W_out * C_out`` outputs is a dot product of ``C_in / groups * K_h * K_w`` terms.

    >>> conv2d_macs(3, 96, 11, 55)  # AlexNet's conv1
    105415200
    """
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    h_out, w_out = (out_size, out_size) if isinstance(out_size, int) else out_size
    return math.prod((h_out, w_out, out_channels, in_channels // groups, k_h, k_w))
