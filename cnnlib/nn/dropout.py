"""``Dropout``: zero a random fraction of activations while training, nothing in evaluation."""

from __future__ import annotations

import numbers

import numpy as np

from . import init
from .module import Module


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``.

    In training each element is zeroed with probability ``p`` and the survivors are scaled by
    ``1 / (1 - p)``, so the expected output equals the input and evaluation needs no rescaling:
    in ``eval()`` mode the layer is the identity. The masks come from ``cnnlib.nn.manual_seed``'s
    generator. x: any shape -> same shape.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p is a probability, so 0 <= p <= 1, got {p!r}")
        self.p = float(p)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._mask = 1.0  # the identity: backward passes the gradient through
            return x
        keep = init.generator().random(np.shape(x)) >= self.p
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        self._mask = keep.astype(x.dtype) * x.dtype.type(scale)
        return x * self._mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask = self._saved("_mask")
        return grad_out if isinstance(mask, float) else grad_out * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
