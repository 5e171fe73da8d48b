"""The fully connected layer ``Linear``, a thin wrapper of ``functional.linear``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .. import _checks
from .. import functional as F
from . import init
from .module import Module, check_dtype


class Linear(Module):
    """Fully connected layer, as ``torch.nn.Linear``: ``y = x W^T + b``.

    x: (N, in_features) -> (N, out_features); weight: (out_features, in_features),
    bias: (out_features,) or None, both from U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, dtype: npt.DTypeLike = np.float32
    ) -> None:
        super().__init__()
        self.in_features = _checks.single(in_features, "in_features", minimum=1)
        self.out_features = _checks.single(out_features, "out_features", minimum=1)
        self.weight, self.bias = init.weight_and_bias(
            (self.out_features, self.in_features), self.in_features,
            self.out_features if bias else None, check_dtype(dtype, "Linear"),
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_x, grad_weight, grad_bias = F.linear_backward(
            grad_out, self._saved(), self.weight.data
        )
        self.weight.grad += grad_weight
        if self.bias is not None:
            self.bias.grad += grad_bias
        return grad_x

    def extra_repr(self) -> str:
        bias = "" if self.bias is not None else ", bias=False"
        return f"in_features={self.in_features}, out_features={self.out_features}{bias}"
