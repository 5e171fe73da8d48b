"""Pooling layers, as ``torch.nn``'s: ``MaxPool2d``, ``AvgPool2d``, ``MaxUnpool2d``,
``AdaptiveAvgPool2d`` and ``AdaptiveMaxPool2d``, without parameters."""

from __future__ import annotations

import numpy as np

from .. import _checks
from .. import functional as F
from .module import Module

Size = int | tuple[int, int]
OutputSize = int | None | tuple[int | None, int | None]


class _Pool2d(Module):
    """Pooling geometry kept as (h, w) pairs; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size: Size, stride: Size | None = None, padding: Size = 0) -> None:
        super().__init__()
        self.kernel_size = _checks.pair(kernel_size, "kernel_size", minimum=1)
        stride = self.kernel_size if stride is None else stride
        self.stride = _checks.pair(stride, "stride", minimum=1)
        self.padding = _checks.pair(padding, "padding", minimum=0)

    def _options(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling, as ``torch.nn.MaxPool2d``: the gradient goes to each window's maximum.

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - D(K-1) - 1) / S) + 1``
    (ceil with ``ceil_mode``); with ``return_indices`` the forward returns ``(out, indices)``.
    """

    def __init__(
        self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, dilation: Size = 1,
        return_indices: bool = False, ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        self.dilation = _checks.pair(dilation, "dilation", minimum=1)
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def _options(self) -> dict:
        return dict(super()._options(), dilation=self.dilation, ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        self._input = x
        return F.max_pool2d(x, **self._options(), return_indices=self.return_indices)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.max_pool2d_backward(grad_out, self._saved(), **self._options())

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class AvgPool2d(_Pool2d):
    """Average pooling, as ``torch.nn.AvgPool2d`` (zero padding counts in the mean unless
    ``count_include_pad=False``; ``divisor_override`` replaces the window size).

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``
    """

    def __init__(
        self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, ceil_mode: bool = False,
        count_include_pad: bool = True, divisor_override: int | None = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def _options(self) -> dict:
        return dict(super()._options(), ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.avg_pool2d(x, **self._options())

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.avg_pool2d_backward(grad_out, self._saved(), **self._options())


class MaxUnpool2d(_Pool2d):
    """Inverse of max pooling, as ``torch.nn.MaxUnpool2d``: ``forward(x, indices, output_size=None)``
    puts each value back at its index, zeros elsewhere.

    x, indices: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = (H - 1) S - 2P + K``
    """

    def forward(  # type: ignore[override]
        self, x: np.ndarray, indices: np.ndarray, output_size: tuple[int, ...] | None = None
    ) -> np.ndarray:
        self._input = (x, indices, output_size)
        return F.max_unpool2d(x, indices, **self._options(), output_size=output_size)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, indices, output_size = self._saved()
        return F.max_unpool2d_backward(grad_out, x, indices, **self._options(), output_size=output_size)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool2d``; ``AdaptiveAvgPool2d(1)``
    is the global average pooling of GoogLeNet, ResNet and MobileNet.

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) with (H_out, W_out) = ``output_size``
    """

    def __init__(self, output_size: OutputSize) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.adaptive_avg_pool2d_backward(grad_out, self._saved(), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Max pooling to a fixed output size, as ``torch.nn.AdaptiveMaxPool2d``.

    x: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out), and the indices with ``return_indices``
    """

    def __init__(self, output_size: OutputSize, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, x: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        self._input = x
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.adaptive_max_pool2d_backward(grad_out, self._saved(), self.output_size)
