"""``Flatten``: from feature maps to feature vectors, between the conv and linear layers."""

from __future__ import annotations

import numpy as np

from .. import _checks
from .module import Module


class Flatten(Module):
    """Merge every axis from ``start_dim`` on into one, as ``torch.nn.Flatten``.

    x: (N, C, H, W) -> (N, C * H * W) with the default ``start_dim=1``; backward reshapes
    the gradient back to the input's shape.
    """

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = _checks.single(start_dim, "start_dim", minimum=0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim <= self.start_dim:
            shape = getattr(x, "shape", type(x).__name__)
            raise ValueError(
                f"Flatten: x needs more than start_dim={self.start_dim} axes, got shape {shape}"
            )
        self._input = x.shape
        return x.reshape(x.shape[: self.start_dim] + (-1,))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.reshape(grad_out, self._saved())

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"
