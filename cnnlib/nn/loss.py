"""``CrossEntropyLoss``: the loss at the end of a classifier, and where backward starts."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Mean softmax cross-entropy, as ``torch.nn.CrossEntropyLoss``.

    ``loss = loss_fn(logits, target)`` returns a Python float (logits: (N, C), target: (N,)
    integer classes); ``loss_fn.backward()`` then returns the gradient of the loss with
    respect to the logits, ``(softmax(logits) - one_hot(target)) / N``: (N, C), ready for
    ``model.backward``. ``backward(grad_out)`` scales it, e.g. by a loss weight.
    """

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        self._input = (logits, target)
        return F.cross_entropy(logits, target)

    def backward(self, grad_out: float = 1.0) -> np.ndarray:
        logits, target = self._saved()
        grad = F.cross_entropy_backward(logits, target)
        return grad if grad_out == 1.0 else grad * logits.dtype.type(grad_out)
