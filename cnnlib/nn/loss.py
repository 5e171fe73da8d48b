"""``CrossEntropyLoss`` and ``NLLLoss``: the loss at the end of a classifier, and where backward starts."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Softmax cross-entropy, as ``torch.nn.CrossEntropyLoss`` (same arguments: ``weight``,
    ``ignore_index``, ``reduction``, ``label_smoothing``).

    ``loss = loss_fn(logits, target)`` returns a Python float (logits: (N, C) or (N, C, d1, ...),
    target: integer classes (N,) / (N, d1, ...) or class probabilities like logits), or one loss
    per sample with ``reduction="none"``; ``loss_fn.backward()`` then returns the gradient of the
    loss with respect to the logits, by default ``(softmax(logits) - one_hot(target)) / N``, ready
    for ``model.backward``. ``backward(grad_out)`` scales it (per sample for ``"none"``).
    """

    def __init__(self, weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.weight, self.ignore_index = weight, ignore_index
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def _options(self) -> dict:
        return dict(weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                    label_smoothing=self.label_smoothing)

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float | np.ndarray:  # type: ignore[override]
        self._input = (logits, target)
        return F.cross_entropy(logits, target, **self._options())

    def backward(self, grad_out: float | np.ndarray | None = None) -> np.ndarray:
        logits, target = self._saved()
        return F.cross_entropy_backward(logits, target, **self._options(), grad_out=grad_out)


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities, as ``torch.nn.NLLLoss``: used after a
    log-softmax, it is ``CrossEntropyLoss`` in two steps."""

    def __init__(self, weight: np.ndarray | None = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def _options(self) -> dict:
        return dict(weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)

    def forward(self, log_probs: np.ndarray, target: np.ndarray) -> float | np.ndarray:  # type: ignore[override]
        self._input = (log_probs, target)
        return F.nll_loss(log_probs, target, **self._options())

    def backward(self, grad_out: float | np.ndarray | None = None) -> np.ndarray:
        log_probs, target = self._saved()
        return F.nll_loss_backward(log_probs, target, **self._options(), grad_out=grad_out)
