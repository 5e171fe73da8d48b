"""Containers: ``Sequential`` chains modules; ``Identity`` passes its input through."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .module import Module


class Identity(Module):
    """Returns its input unchanged, as ``torch.nn.Identity`` (a residual block's plain shortcut)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out


class Sequential(Module):
    """Modules applied one after another, as ``torch.nn.Sequential``.

    Forward runs them first to last; backward runs their backward passes last to first, each
    taking the gradient the next one returned. Indexable (``net[0]``, ``net[1:]``), ``len``
    and iterable. The submodules are named "0", "1", ..., so parameter names match PyTorch's.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {index} must be a Module, got {type(module).__name__}"
                )
            setattr(self, str(index), module)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for module in self:
            x = module(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for module in reversed(list(self)):
            grad_out = module.backward(grad_out)
        return grad_out

    def __iter__(self) -> Iterator[Module]:
        return self.children()

    def __len__(self) -> int:
        return len(list(self.children()))

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self.children())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]
