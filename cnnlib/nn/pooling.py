"""Pooling layers: ``MaxPool2d`` and ``AvgPool2d``, without parameters."""

from __future__ import annotations

import numpy as np

from .. import _checks
from .. import functional as F
from .module import Module


class _Pool2d(Module):
    """Pooling geometry kept as (h, w) pairs; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0):
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

    x: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.max_pool2d(x, **self._options())

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.max_pool2d_backward(grad_out, self._saved(), **self._options())


class AvgPool2d(_Pool2d):
    """Average pooling, as ``torch.nn.AvgPool2d`` (zero padding counts in the mean).

    x: (N, C, H, W) -> (N, C, H_out, W_out), ``H_out = floor((H + 2P - K) / S) + 1``
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.avg_pool2d(x, **self._options())

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.avg_pool2d_backward(grad_out, self._saved(), **self._options())
