"""ReLU, the non-linearity between layers, and its gradient."""

from __future__ import annotations

import numpy as np

from .. import _checks


def _check(op: str, x: np.ndarray, name: str = "x"):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {x.dtype}")


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` elementwise, as ``torch.nn.functional.relu``. x: any shape -> same shape."""
    _check("relu", x)
    return np.maximum(x, 0)


def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of ``relu``: ``grad_out`` where ``x > 0``, else 0 (PyTorch's choice at 0).

    grad_out, x: the same shape -> grad_x: that shape
    """
    _check("relu_backward", x)
    _check("relu_backward", grad_out, "grad_out")
    _checks.expect_shape("relu_backward", "grad_out", grad_out.shape, x.shape, "x's shape")
    _checks.same_dtype("relu_backward", grad_out=grad_out, x=x)
    # A product with the mask, not np.where: where's loop branches on every element and a ReLU's
    # mask is as random as its input (1.9 ms against 0.2 for 16 x 32 x 32 x 32 float32). Adding 0
    # turns the -0.0 of a negative gradient times 0 into PyTorch's 0.0; an infinite gradient
    # times 0 is NaN, so then np.where after all.
    with np.errstate(invalid="ignore"):
        grad_x = np.multiply(grad_out, x > 0)
    grad_x += x.dtype.type(0)
    if not np.isfinite(grad_x).all():
        return np.where(x > 0, grad_out, x.dtype.type(0))
    return grad_x
