"""Softmax and log-softmax along one axis, and their gradients."""

from __future__ import annotations

import numpy as np

from .. import _checks


def _check(op: str, x: object, dim: int, name: str = "x") -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {x.dtype}")
    rank = max(x.ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -rank <= dim < rank:
        raise ValueError(f"{op}: dim must be an int in [{-rank}, {rank}) for {name} of shape {x.shape}, "
                         f"got {dim!r}")
    return x


def log_softmax(logits: np.ndarray, dim: int = -1) -> np.ndarray:
    """``logits - logsumexp(logits)`` along ``dim`` (the last axis by default), without overflow,
    as ``torch.nn.functional.log_softmax``. Any shape -> the same shape."""
    _check("log_softmax", logits, dim, "logits")
    shifted = logits - logits.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def softmax(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``dim``, as ``torch.nn.functional.softmax``. Any shape -> same."""
    _check("softmax", x, dim)
    return np.exp(log_softmax(x, dim))


def _check_grad(op: str, grad_out: object, x: np.ndarray, dim: int) -> np.ndarray:
    _check(op, x, dim)
    grad_out = _check(op, grad_out, dim, "grad_out")
    _checks.expect_shape(op, "grad_out", grad_out.shape, x.shape, "x's shape")
    _checks.same_dtype(op, grad_out=grad_out, x=x)
    return grad_out


def softmax_backward(grad_out: np.ndarray, x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Gradient of ``softmax``: ``s * (g - sum(g * s))`` with s = softmax(x), along ``dim``.

    grad_out, x: the same shape -> grad_x: that shape
    """
    grad_out = _check_grad("softmax_backward", grad_out, x, dim)
    s = softmax(x, dim)
    return s * (grad_out - (grad_out * s).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_out: np.ndarray, x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Gradient of ``log_softmax``: ``g - softmax(x) * sum(g)`` along ``dim``.

    grad_out, x: the same shape -> grad_x: that shape
    """
    grad_out = _check_grad("log_softmax_backward", grad_out, x, dim)
    return grad_out - softmax(x, dim) * grad_out.sum(axis=dim, keepdims=True)
