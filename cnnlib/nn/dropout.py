"""``Dropout``: zero a random fraction of activations while training, nothing in evaluation."""

from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from . import init
from .module import Module


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``.

    In training each element is zeroed with probability ``p`` and the survivors are scaled by
    ``1 / (1 - p)``, so the expected output equals the input and evaluation needs no rescaling:
    in ``eval()`` mode the layer is the identity. The masks come from ``cnnlib.nn.manual_seed``'s
    generator. x: any shape -> same shape.
    """

    p: float

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p is a probability, so 0 <= p <= 1, got {p!r}")
        self.p = float(p)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, mask = F.dropout(x, self.p, self.training, generator=init.generator(), return_mask=True)
        self._mask = 1.0 if mask is None else mask  # 1.0: the identity, backward passes through
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask = self._saved("_mask")
        return F.dropout_backward(grad_out, None if isinstance(mask, float) else mask)

    def extra_repr(self) -> str:
        return f"p={self.p}"
