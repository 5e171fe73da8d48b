"""Softmax cross-entropy, mean over the batch, and its famously simple gradient."""

from __future__ import annotations

import numpy as np

from .. import _checks


def _check(op, logits, target):
    _checks.float_array(logits, "logits", "(N, C)", op)
    if not isinstance(target, np.ndarray) or not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"{op}: target must be a NumPy array of integer class indices, shape (N,)")
    _checks.expect_shape(op, "target", target.shape, logits.shape[:1], "one class index per row")
    bad = (target < 0) | (target >= logits.shape[1])
    if bad.any():
        raise ValueError(
            f"{op}: target must lie in [0, C) = [0, {logits.shape[1]}), got {target[bad][0]} "
            f"at index {np.flatnonzero(bad)[0]}"
        )


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``logits - logsumexp(logits)`` along the last axis, computed without overflow."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits, target) -> float:
    """Mean softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    logits: (N, C), target: (N,) integer classes -> ``-mean_n log softmax(logits_n)[target_n]``
    """
    _check("cross_entropy", logits, target)
    picked = log_softmax(logits)[np.arange(len(target)), target]
    return float(-picked.mean())


def cross_entropy_backward(logits, target) -> np.ndarray:
    """Gradient of ``cross_entropy`` with respect to the logits: ``(softmax - one_hot) / N``.

    logits: (N, C), target: (N,) -> grad_logits: (N, C)
    """
    _check("cross_entropy_backward", logits, target)
    grad = np.exp(log_softmax(logits))
    grad[np.arange(len(target)), target] -= 1
    return grad / logits.dtype.type(len(target))
