"""ReLU, the non-linearity between layers, and its gradient."""

from __future__ import annotations

import numpy as np

from .. import _checks
from ._masked import masked_gradient


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
    return masked_gradient(grad_out, x > 0)
