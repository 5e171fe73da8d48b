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


# relu's maximum runs over rows of this many values against a row of zeros: numpy's loop for an
# array and a scalar is not vectorised, for two contiguous arrays it is (32 x 16 x 32 x 32 float32:
# 0.07 against 0.22 ms, 1 thread, 2026-12-07).
_ROW = 1 << 14


def _in_rows(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D array as rows of ``_ROW`` values and the tail after them.

    flat: (M,) -> rows: (M // _ROW, _ROW), tail: (M % _ROW,)
    """
    whole = flat.size - flat.size % _ROW
    return flat[:whole].reshape(-1, _ROW), flat[whole:]


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` elementwise, as ``torch.nn.functional.relu``. x: any shape -> same shape."""
    _check("relu", x)
    # Against a row of zeros, not the scalar 0 (``_ROW``): the same results, NaNs and signed zeros
    # included.
    out = np.empty(x.shape, x.dtype)
    rows, tail = _in_rows(np.ascontiguousarray(x).reshape(-1))
    out_rows, out_tail = _in_rows(out.reshape(-1))
    zeros = np.zeros(_ROW, x.dtype)
    np.maximum(rows, zeros, out=out_rows)
    np.maximum(tail, zeros[: tail.size], out=out_tail)
    return out


def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of ``relu``: ``grad_out`` where ``x > 0``, else 0
    (PyTorch's choice at 0).

    grad_out, x: the same shape -> grad_x: that shape
    """
    _check("relu_backward", x)
    _check("relu_backward", grad_out, "grad_out")
    _checks.expect_shape("relu_backward", "grad_out", grad_out.shape, x.shape,
                         "x's shape")
    _checks.same_dtype("relu_backward", grad_out=grad_out, x=x)
    return masked_gradient(grad_out, x > 0)
