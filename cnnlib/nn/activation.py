"""``ReLU``, the non-linearity between layers."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module


class ReLU(Module):
    """``max(x, 0)`` elementwise, as ``torch.nn.ReLU``. x: any shape -> same shape."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.relu(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return F.relu_backward(grad_out, self._saved())
