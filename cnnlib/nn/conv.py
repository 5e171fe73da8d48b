"""Convolution layers: ``Conv2d`` and ``ConvTranspose2d``, thin wrappers of ``cnnlib.functional``.

Each keeps its ``weight`` and ``bias`` parameters and the forward's input, and hands the
arithmetic to ``conv2d`` / ``conv2d_backward`` (or their transposed twins).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .. import _checks
from .. import functional as F
from ..geometry import same_padding
from . import init
from .module import Module, Parameter, check_dtype

Size = int | tuple[int, int]
Padding = int | tuple[int, int] | str
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _channels(layer: str, in_channels: int, out_channels: int, groups: int) -> tuple[int, int, int]:
    """Check the channel counts and that ``groups`` divides both, as PyTorch does."""
    in_channels = _checks.single(in_channels, "in_channels", minimum=1)
    out_channels = _checks.single(out_channels, "out_channels", minimum=1)
    groups = _checks.single(groups, "groups", minimum=1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{layer}: groups={groups} must divide both in_channels={in_channels} "
            f"and out_channels={out_channels}"
        )
    return in_channels, out_channels, groups


class _ConvBase(Module):
    """What both convolutions share: the geometry, kept as (h, w) pairs like PyTorch's."""

    in_channels: int
    out_channels: int
    groups: int
    weight: Parameter
    bias: Parameter | None
    output_padding: tuple[int, int]
    padding_mode: str

    def _geometry(self, kernel_size: Size, stride: Size, padding: Padding, dilation: Size) -> None:
        self.kernel_size = _checks.pair(kernel_size, "kernel_size", minimum=1)
        self.stride = _checks.pair(stride, "stride", minimum=1)
        self.dilation = _checks.pair(dilation, "dilation", minimum=1)
        if isinstance(padding, str):  # kept as the string, as PyTorch does
            layer = type(self).__name__
            if layer != "Conv2d":
                raise TypeError(f"{layer}: padding must be an int or a pair of ints, got {padding!r}")
            try:
                sides = [same_padding(k, d, stride=s, padding=padding)
                         for k, s, d in zip(self.kernel_size, self.stride, self.dilation)]
            except ValueError as error:
                raise ValueError(f"{layer}: {error}") from None
            self.padding: tuple[int, int] | str = padding
        else:
            self.padding = _checks.pair(padding, "padding", minimum=0)
            sides = [(p, p) for p in self.padding]
        # F.pad's order: the last axis first, (left, right, top, bottom).
        self._reversed_padding_repeated_twice = (*sides[1], *sides[0])

    def _accumulate(self, grad_weight: np.ndarray, grad_bias: np.ndarray) -> None:
        self.weight.grad += grad_weight
        if self.bias is not None:
            self.bias.grad += grad_bias

    def _bias_data(self):
        return None if self.bias is None else self.bias.data

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += f", stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if getattr(self, "padding_mode", "zeros") != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvBase):
    """2D convolution layer, as ``torch.nn.Conv2d``.

    x: (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, H_out, W_out) (no N if x had none),
    ``H_out = floor((H + 2P - D(K-1) - 1)/S) + 1``; ``padding`` may be ``"same"`` or ``"valid"``,
    and ``padding_mode`` ``"zeros"`` (default), ``"reflect"``, ``"replicate"`` or ``"circular"``
    (then the input goes through ``F.pad`` first, as PyTorch's module does).
    weight: (C_out, C_in / groups, K_h, K_w), bias: (C_out,) or None, both drawn from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with ``fan_in = C_in / groups * K_h * K_w``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1,
        padding: Padding = 0, dilation: Size = 1, groups: int = 1, bias: bool = True,
        padding_mode: str = "zeros", *, dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _channels(
            "Conv2d", in_channels, out_channels, groups
        )
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self._geometry(kernel_size, stride, padding, dilation)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight, self.bias = init.weight_and_bias(
            shape, int(np.prod(shape[1:])), self.out_channels if bias else None,
            check_dtype(dtype, "Conv2d"),
        )

    def _options(self) -> dict:
        padding = self.padding if self.padding_mode == "zeros" else 0
        return dict(stride=self.stride, padding=padding, dilation=self.dilation, groups=self.groups)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        if self.padding_mode == "zeros":
            return x
        return F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.conv2d(self._padded(x), self.weight.data, self._bias_data(), **self._options())

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._saved()
        grad_x, grad_weight, grad_bias = F.conv2d_backward(
            grad_out, self._padded(x), self.weight.data, **self._options()
        )
        self._accumulate(grad_weight, grad_bias)
        if self.padding_mode == "zeros":
            return grad_x
        return F.pad_backward(grad_x, x, self._reversed_padding_repeated_twice, mode=self.padding_mode)


class ConvTranspose2d(_ConvBase):
    """Transposed 2D convolution layer, as ``torch.nn.ConvTranspose2d`` (same argument order).

    x: (N, C_in, H, W) -> (N, C_out, H_out, W_out),
    ``H_out = (H - 1) S - 2P + D(K - 1) + output_padding + 1``;
    weight: (C_in, C_out / groups, K_h, K_w), bias: (C_out,) or None. As in PyTorch the
    initialisation's ``fan_in`` is read off the weight's shape, ``C_out / groups * K_h * K_w``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        *,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _channels(
            "ConvTranspose2d", in_channels, out_channels, groups
        )
        self._geometry(kernel_size, stride, padding, dilation)
        self.output_padding = _checks.pair(output_padding, "output_padding", minimum=0)
        shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        self.weight, self.bias = init.weight_and_bias(
            shape, int(np.prod(shape[1:])), self.out_channels if bias else None,
            check_dtype(dtype, "ConvTranspose2d"),
        )

    def _options(self) -> dict:
        return dict(
            stride=self.stride, padding=self.padding, output_padding=self.output_padding,
            groups=self.groups, dilation=self.dilation,
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.conv_transpose2d(x, self.weight.data, self._bias_data(), **self._options())

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_x, grad_weight, grad_bias = F.conv_transpose2d_backward(
            grad_out, self._saved(), self.weight.data, **self._options()
        )
        self._accumulate(grad_weight, grad_bias)
        return grad_x
