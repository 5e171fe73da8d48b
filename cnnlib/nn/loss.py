"""``CrossEntropyLoss`` and ``NLLLoss``: the loss at the end of a classifier, and where backward starts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import functional as F
from .module import Module


class _Loss(Module):
    """What both losses share: their options, and that ``forward(input, target)`` saves both for
    ``backward(grad_out=None)``, which returns the gradient with respect to the input."""

    _function: Callable[..., float | np.ndarray]
    _backward: Callable[..., np.ndarray]

    def __init__(self, weight: np.ndarray | None = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def _options(self) -> dict:
        return dict(weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)

    def forward(self, input: np.ndarray, target: np.ndarray) -> float | np.ndarray:  # type: ignore[override]
        self._input = (input, target)
        return self._function(input, target, **self._options())

    def backward(self, grad_out: float | np.ndarray | None = None) -> np.ndarray:
        input, target = self._saved()
        return self._backward(input, target, **self._options(), grad_out=grad_out)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy, as ``torch.nn.CrossEntropyLoss`` (same arguments: ``weight``,
    ``ignore_index``, ``reduction``, ``label_smoothing``).

    ``loss = loss_fn(logits, target)`` returns a Python float (logits: (N, C) or (N, C, d1, ...),
    target: integer classes (N,) / (N, d1, ...) or class probabilities like logits), or one loss
    per sample with ``reduction="none"``; ``loss_fn.backward()`` then returns the gradient of the
    loss with respect to the logits, by default ``(softmax(logits) - one_hot(target)) / N``, ready
    for ``model.backward``. ``backward(grad_out)`` scales it (per sample for ``"none"``).
    """

    _function = staticmethod(F.cross_entropy)
    _backward = staticmethod(F.cross_entropy_backward)

    def __init__(self, weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = label_smoothing

    def _options(self) -> dict:
        return dict(super()._options(), label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities, as ``torch.nn.NLLLoss``: used after a
    log-softmax, it is ``CrossEntropyLoss`` in two steps."""

    _function = staticmethod(F.nll_loss)
    _backward = staticmethod(F.nll_loss_backward)
