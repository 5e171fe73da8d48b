"""``BatchNorm2d``: normalise each channel by its batch statistics, then scale and shift.

The arithmetic, forward and backward, is ``cnnlib.functional.batch_norm`` and
``batch_norm_backward``; the module keeps gamma and beta as parameters and the running
statistics, and remembers whether the forward pass used the batch's statistics.
"""

from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt

from .. import _checks
from .. import functional as F
from .module import Module, Parameter, check_dtype


class BatchNorm2d(Module):
    """Batch normalisation over the channels of NCHW input, as ``torch.nn.BatchNorm2d``.

    x: (N, C, H, W) -> same shape; weight (gamma, ones) and bias (beta, zeros): (C,).
    Training: normalise with the batch's mean and (biased) variance, and update
    ``running = (1 - momentum) running + momentum * batch``, where the running variance uses
    the unbiased batch variance ``var * M / (M - 1)``, M = N H W, as PyTorch does.
    Evaluation: normalise with ``running_mean`` and ``running_var``.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        *,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.num_features = _checks.single(num_features, "num_features", minimum=1)
        for name, value in (("eps", eps), ("momentum", momentum)):
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
                raise ValueError(f"BatchNorm2d: {name} must be a number >= 0, got {value!r}")
        self.eps, self.momentum = float(eps), float(momentum)
        dtype = check_dtype(dtype, "BatchNorm2d")
        self.weight = Parameter(np.ones(self.num_features, dtype))
        self.bias = Parameter(np.zeros(self.num_features, dtype))
        self.running_mean = np.zeros(self.num_features, dtype)
        self.running_var = np.ones(self.num_features, dtype)

    def _check(self, x: np.ndarray) -> None:
        _checks.float_array(x, "x", "(N, C, H, W)", "BatchNorm2d")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d: x of shape {x.shape} has C = {x.shape[1]} channels, "
                f"but the layer was built for num_features = {self.num_features}"
            )
        _checks.same_dtype("BatchNorm2d", x=x, weight=self.weight.data)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        out, save_mean, save_invstd = F.native_batch_norm(
            x, self.weight.data, self.bias.data, self.running_mean, self.running_var, self.training,
            self.momentum, self.eps)
        # The backward takes the batch's statistics from here instead of computing them again.
        self._input = (x, self.training, save_mean, save_invstd)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, batch_statistics, save_mean, save_invstd = self._saved()
        _checks.expect_shape("BatchNorm2d.backward", "grad_out", np.shape(grad_out), x.shape, "x's shape")
        saved = {"save_mean": save_mean, "save_invstd": save_invstd} if batch_statistics else {}
        grad_x, grad_weight, grad_bias = F.batch_norm_backward(
            grad_out, x, self.running_mean, self.running_var, self.weight.data, batch_statistics, self.eps,
            **saved)
        self.weight.grad += grad_weight
        self.bias.grad += grad_bias
        return grad_x

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
