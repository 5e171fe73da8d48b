"""Softmax cross-entropy and the negative log-likelihood, as PyTorch's, and their gradients.

Both losses are ``-sum_c q[n, c] log p[n, c]`` per sample for a matrix of class weights ``q``: the
one-hot target (times ``weight[target]``, zero where ``target == ignore_index``), mixed with the
uniform distribution by ``label_smoothing``, or the given class probabilities. ``reduction="mean"``
divides the sum by the total weight of the targets (PyTorch's weighted mean; by the number of
samples for probability targets), ``"sum"`` adds, ``"none"`` keeps one loss per sample.
Inputs are (N, C), (N, C, d1, ..., dk) (per-pixel classes) or unbatched (C,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from .softmax import log_softmax

__all__ = ["cross_entropy", "cross_entropy_backward", "nll_loss", "nll_loss_backward", "log_softmax"]

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class LossCall:
    """A checked loss call: class weights ``q`` (like the batched input), the denominator of
    the mean, whether the caller passed one unbatched sample, and the reduction."""

    q: np.ndarray
    denominator: float
    unbatched: bool
    reduction: str


def _class_weights(op: str, x: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
                   ignore_index: int, label_smoothing: float) -> tuple[np.ndarray, float]:
    """q for class-index targets (and the weighted count of targets)."""
    c = x.shape[1]
    _checks.expect_shape(op, "target", target.shape, x.shape[:1] + x.shape[2:],
                         "the input's shape without the class axis 1: one class index per sample")
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= c))
    if bad.any():
        raise ValueError(f"{op}: target must lie in [0, C) = [0, {c}) (or equal ignore_index="
                         f"{ignore_index}), got {target[bad][0]} at index {_where(bad)}")
    w = np.ones(c, x.dtype) if weight is None else weight
    safe = np.where(valid, target, 0)
    picked = w[safe] * valid  # weight of each sample's target, 0 where ignored
    q = np.zeros(x.shape, x.dtype)
    np.put_along_axis(q, np.expand_dims(safe, 1), np.expand_dims(picked * (1 - label_smoothing), 1), axis=1)
    if label_smoothing:
        shape = (1, c) + (1,) * (x.ndim - 2)
        q += (label_smoothing / c) * w.reshape(shape) * np.expand_dims(valid, 1)
    return q, float(picked.sum())


def _loss_call(op: str, x: object, target: object, weight: object, ignore_index: int,
               reduction: str, label_smoothing: float) -> tuple[np.ndarray, LossCall]:
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise TypeError(f"{op}: input must be a NumPy array of shape (N, C), (N, C, d1, ...) or (C,)")
    _checks.float_array(x.reshape(x.shape[0], -1) if x.ndim > 1 else x[None], "input", "(N, C)", op)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{op}: target must be a NumPy array of integer class indices or class probabilities")
    unbatched = x.ndim == 1
    x = x[None] if unbatched else x
    target = target[None] if unbatched else target
    if weight is not None:
        weight = _checks.float_array(weight, "weight", "(C,)", op)
        _checks.expect_shape(op, "weight", weight.shape, x.shape[1:2], "one weight per class")
        _checks.same_dtype(op, input=x, weight=weight)
    if np.issubdtype(target.dtype, np.integer):
        q, denominator = _class_weights(op, x, target, weight, ignore_index, label_smoothing)
    elif target.dtype in _checks.FLOAT_DTYPES:
        _checks.expect_shape(op, "target", target.shape, x.shape, "class probabilities, the input's shape")
        _checks.same_dtype(op, input=x, target=target)
        c = x.shape[1]
        q = target * (1 - label_smoothing) + label_smoothing / c
        if weight is not None:
            q = q * weight.reshape((1, c) + (1,) * (x.ndim - 2))
        denominator = float(x.size // c)
    else:
        raise TypeError(f"{op}: target must hold integer class indices or float class probabilities, "
                        f"got dtype {target.dtype}")
    return x, LossCall(q, denominator, unbatched, reduction)


def _reduce(per_sample: np.ndarray, call: LossCall) -> float | np.ndarray:
    if call.reduction == "none":
        return per_sample.reshape(per_sample.shape[1:]) if call.unbatched else per_sample  # 0-d array
    total = float(per_sample.sum())
    if call.reduction == "sum":
        return total
    return total / call.denominator if call.denominator else float("nan")  # PyTorch: 0 / 0


def _sample_scale(call: LossCall, grad_out: float | np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """d(reduced loss) / d(each sample's loss), times grad_out: shape (N, 1, d1, ...)."""
    shape = like.shape[:1] + (1,) + like.shape[2:]
    if call.reduction == "none":
        if grad_out is None:
            raise ValueError("reduction='none' needs grad_out, one value per sample")
        grad_out = np.asarray(grad_out)
        grad_out = grad_out[None] if call.unbatched else grad_out
        _checks.expect_shape("loss backward", "grad_out", grad_out.shape, shape[:1] + shape[2:],
                             "one value per sample")
        return np.expand_dims(grad_out, 1).astype(like.dtype)
    scale = 1.0 if grad_out is None else float(grad_out)
    if call.reduction == "mean":
        # Nothing counted (every target ignored): q is all zero, and so is PyTorch's gradient.
        scale = scale / call.denominator if call.denominator else 0.0
    return np.full(shape, scale, like.dtype)


def cross_entropy(
    logits: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
    reduction: str = "mean", label_smoothing: float = 0.0,
) -> float | np.ndarray:
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    logits: (N, C), (N, C, d1, ...) or (C,); target: integer classes (N,) / (N, d1, ...) / () or
    class probabilities like logits -> a float (``"mean"``, ``"sum"``) or the per-sample losses
    (``"none"``). By default ``-mean_n log softmax(logits_n)[target_n]``.
    """
    x, call = _loss_call("cross_entropy", logits, target, weight, ignore_index, reduction, label_smoothing)
    return _reduce(-(call.q * log_softmax(x, dim=1)).sum(axis=1), call)


def cross_entropy_backward(
    logits: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
    ignore_index: int = -100, reduction: str = "mean",
    label_smoothing: float = 0.0, grad_out: float | np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of ``cross_entropy`` with respect to the logits: by default
    ``(softmax - one_hot) / N``.

    In general ``scale_n (softmax_n sum_c q_nc - q_n)`` for the class weights q
    (see the module), scale_n = grad_out / the mean's denominator
    (``grad_out`` is needed, per sample, for ``reduction="none"``).
    logits: (N, C) (or as ``cross_entropy``) -> grad_logits: like logits
    """
    op = "cross_entropy_backward"
    x, call = _loss_call(op, logits, target, weight, ignore_index, reduction,
                         label_smoothing)
    probabilities = np.exp(log_softmax(x, dim=1))
    # The lectures' case, q the one-hot target and a mean over N samples:
    # (softmax - one_hot) / N.
    grad = ((probabilities * call.q.sum(axis=1, keepdims=True) - call.q)
            * _sample_scale(call, grad_out, x))
    return grad[0] if call.unbatched else grad


def nll_loss(
    log_probs: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
    reduction: str = "mean",
) -> float | np.ndarray:
    """Negative log-likelihood, as ``torch.nn.functional.nll_loss``: ``-weight[t] log_probs[n, t]``
    per sample (class-index targets), reduced as ``cross_entropy``.

    log_probs: (N, C), (N, C, d1, ...) or (C,), target: (N,) / (N, d1, ...) / () integer classes
    """
    _check_indices("nll_loss", target)
    x, call = _loss_call("nll_loss", log_probs, target, weight, ignore_index, reduction, 0.0)
    return _reduce(-(call.q * x).sum(axis=1), call)


def nll_loss_backward(
    log_probs: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, ignore_index: int = -100,
    reduction: str = "mean", grad_out: float | np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of ``nll_loss`` with respect to log_probs: ``-scale_n weight[t_n]`` at the target.

    log_probs: (N, C) (or as ``nll_loss``) -> grad: like log_probs
    """
    _check_indices("nll_loss_backward", target)
    x, call = _loss_call("nll_loss_backward", log_probs, target, weight, ignore_index, reduction, 0.0)
    grad = -call.q * _sample_scale(call, grad_out, x)
    return grad[0] if call.unbatched else grad


def _where(mask: np.ndarray) -> str:
    """The first True position: ``3`` for a 1D mask, ``[0, 2, 1]`` otherwise."""
    first = np.argwhere(mask)[0].tolist()
    return str(first[0]) if mask.ndim == 1 else str(first)


def _check_indices(op: str, target: object) -> None:
    if not isinstance(target, np.ndarray) or not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"{op}: target must be a NumPy array of integer class indices")
