"""``BatchNorm2d``: normalise each channel by its batch statistics, then scale and shift.

It has no twin in ``cnnlib.functional``, so its forward and backward are written out here.
With ``x_hat = (x - mean) / sqrt(var + eps)`` over the M = N H W values of a channel and
``y = gamma x_hat + beta``, the backward pass in training mode is

    grad_x = gamma / sqrt(var + eps) * (g - mean(g) - x_hat * mean(g * x_hat)),

where the two means (over the same M values) come from ``mean`` and ``var`` depending on x.
In evaluation mode mean and var are constants and ``grad_x = gamma / sqrt(var + eps) * g``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _checks
from .module import Module, Parameter, check_dtype

_AXES = (0, 2, 3)  # the statistics of channel c are taken over N, H and W


def _per_channel(values: np.ndarray) -> np.ndarray:
    """(C,) -> (C, 1, 1), to broadcast against (N, C, H, W)."""
    return values[:, None, None]


class BatchNorm2d(Module):
    """Batch normalisation over the channels of NCHW input, as ``torch.nn.BatchNorm2d``.

    x: (N, C, H, W) -> same shape; weight (gamma, ones) and bias (beta, zeros): (C,).
    Training: normalise with the batch's mean and (biased) variance, and update
    ``running = (1 - momentum) running + momentum * batch``, where the running variance uses
    the unbiased batch variance ``var * M / (M - 1)``, M = N H W, as PyTorch does.
    Evaluation: normalise with ``running_mean`` and ``running_var``.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
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

    def _check(self, x) -> None:
        _checks.float_array(x, "x", "(N, C, H, W)", "BatchNorm2d")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d: x of shape {x.shape} has C = {x.shape[1]} channels, "
                f"but the layer was built for num_features = {self.num_features}"
            )
        _checks.same_dtype("BatchNorm2d", x=x, weight=self.weight.data)

    def _batch_statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = x.size // x.shape[1]
        if count < 2:
            raise ValueError(
                f"BatchNorm2d: x of shape {x.shape} has one value per channel; training "
                "needs more than one to estimate a variance (use a larger batch or eval())"
            )
        mean, var = x.mean(axis=_AXES), x.var(axis=_AXES)
        m = self.momentum
        self.running_mean[...] = (1 - m) * self.running_mean + m * mean
        self.running_var[...] = (1 - m) * self.running_var + m * var * (count / (count - 1))
        return mean, var

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        if self.training:
            mean, var = self._batch_statistics(x)
        else:
            mean, var = self.running_mean.astype(x.dtype), self.running_var.astype(x.dtype)
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
        self._cache = (x_hat, inv_std, self.training)
        return _per_channel(self.weight.data) * x_hat + _per_channel(self.bias.data)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat, inv_std, batch_statistics = self._saved("_cache")
        _checks.expect_shape(
            "BatchNorm2d.backward", "grad_out", np.shape(grad_out), x_hat.shape, "x's shape"
        )
        grad_bias = grad_out.sum(axis=_AXES)
        grad_weight = (grad_out * x_hat).sum(axis=_AXES)
        self.weight.grad += grad_weight
        self.bias.grad += grad_bias
        scale = _per_channel(self.weight.data * inv_std)
        if not batch_statistics:
            return grad_out * scale
        count = x_hat.dtype.type(grad_out.size // grad_out.shape[1])
        mean_grad = _per_channel(grad_bias / count)
        mean_grad_x_hat = _per_channel(grad_weight / count)
        return scale * (grad_out - mean_grad - x_hat * mean_grad_x_hat)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
