"""Optimisers: ``SGD`` (with momentum) and ``Adam``, step for step as ``torch.optim``.

An optimiser holds a list of ``Parameter``s. After a backward pass has filled their ``.grad``,
``step()`` updates each ``.data`` in place; ``zero_grad()`` clears the gradients before the
next batch (backward passes accumulate).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from .nn.module import Parameter


def _non_negative(name: str, value: object, optimizer: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{optimizer}: {name} must be a number >= 0, got {value!r}")
    return float(value)


class Optimizer:
    """What every optimiser shares: its parameters and ``zero_grad``."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        name = type(self).__name__
        if not self.params:
            raise ValueError(f"{name}: got an empty list of parameters to optimise")
        for index, param in enumerate(self.params):
            if not isinstance(param, Parameter):
                raise TypeError(
                    f"{name}: parameter {index} is a {type(param).__name__}, not a Parameter "
                    "(pass model.parameters())"
                )
        self.lr = _non_negative("lr", lr, name)

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zero."""
        for param in self.params:
            param.grad.fill(0)

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and L2 weight decay, as ``torch.optim.SGD``.

    For each parameter p with gradient g:

        g = g + weight_decay * p
        v = g                   on the first step, v = momentum * v + g after   (if momentum)
        p = p - lr * v          (p = p - lr * g without momentum)
    """

    def __init__(
        self, params: Iterable[Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _non_negative("momentum", momentum, "SGD")
        self.weight_decay = _non_negative("weight_decay", weight_decay, "SGD")
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        """Update every parameter once from its current ``.grad``."""
        for index, param in enumerate(self.params):
            grad = param.grad
            if self.weight_decay:
                grad = grad + self.weight_decay * param.data
            if self.momentum:
                velocity = self.velocity[index]
                velocity = grad.copy() if velocity is None else self.momentum * velocity + grad
                self.velocity[index] = grad = velocity
            param.data -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015) with L2 weight decay, as ``torch.optim.Adam``.

    At step t, for each parameter p with gradient g (``weight_decay`` adds ``wd * p`` to g):

        m = beta1 m + (1 - beta1) g,        v = beta2 v + (1 - beta2) g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The divisions by ``1 - beta^t`` undo the bias of m and v towards their zero start.
    """

    def __init__(
        self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8, weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if len(betas) != 2 or not all(0 <= _non_negative("betas", b, "Adam") < 1 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _non_negative("eps", eps, "Adam")
        self.weight_decay = _non_negative("weight_decay", weight_decay, "Adam")
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        """Update every parameter once from its current ``.grad``."""
        self.t += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.t)
        root_correction = math.sqrt(1 - beta2**self.t)
        for param, m, v in zip(self.params, self.m, self.v, strict=True):
            grad = param.grad
            if self.weight_decay:
                grad = grad + self.weight_decay * param.data
            m += (1 - beta1) * (grad - m)  # = beta1 m + (1 - beta1) g, as torch's lerp_
            v *= beta2
            v += (1 - beta2) * grad * grad
            param.data -= step_size * m / (np.sqrt(v) / root_correction + self.eps)
