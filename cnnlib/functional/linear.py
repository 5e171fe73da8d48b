"""The fully connected layer, y = x W^T + b, and its gradients."""

from __future__ import annotations

import numpy as np

from .. import _checks


def _check(op: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None):
    _checks.float_array(weight, "weight", "(out_features, in_features)", op)
    if not isinstance(x, np.ndarray) or x.ndim < 1:
        raise TypeError(f"{op}: x must be a NumPy array of shape (N, in_features)")
    _checks.float_array(x.reshape(-1, x.shape[-1]), "x", "(N, in_features)", op)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"{op}: x of shape {x.shape} has {x.shape[-1]} features but weight of shape "
            f"{weight.shape} expects in_features = {weight.shape[1]}"
        )
    if bias is not None:
        _checks.float_array(bias, "bias", "(out_features,)", op)
        _checks.expect_shape(op, "bias", bias.shape, weight.shape[:1], "one bias per output")
    _checks.same_dtype(op, x=x, weight=weight, bias=bias)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Fully connected layer, as ``torch.nn.functional.linear``.

    x: (N, in_features) (any leading axes), weight: (out_features, in_features),
    bias: (out_features,) or None -> (N, out_features), ``y = x W^T + b``.
    """
    _check("linear", x, weight, bias)
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def linear_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``linear``.

    grad_out: (N, out_features), x: (N, in_features), weight: (out_features, in_features)
    -> grad_x = grad_out W: (N, in_features), grad_weight = grad_out^T x: like weight,
    grad_bias = grad_out summed over the batch: (out_features,)
    """
    op = "linear_backward"
    _check(op, x, weight)
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{op}: grad_out must be a NumPy array, got {type(grad_out).__name__}")
    expected = x.shape[:-1] + weight.shape[:1]
    _checks.expect_shape(op, "grad_out", grad_out.shape, expected, "the forward output's shape")
    _checks.same_dtype(op, grad_out=grad_out, x=x)
    flat_grad = grad_out.reshape(-1, weight.shape[0])
    grad_weight = flat_grad.T @ x.reshape(-1, weight.shape[1])
    return grad_out @ weight, grad_weight, flat_grad.sum(axis=0)
