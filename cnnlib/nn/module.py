"""``Parameter`` and ``Module``: the two classes every layer is built from.

A module keeps its parameters and whatever its backward pass needs (usually the forward's
input), and does its arithmetic by calling ``cnnlib.functional``. Unlike PyTorch there is no
autograd: ``backward(grad_out)`` is written out by each module, adds the gradients of its
parameters into their ``.grad`` and returns the gradient of its input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt


class Parameter:
    """A learnable array and the gradient accumulated for it.

    ``data`` and ``grad`` have the same shape and dtype; ``grad`` starts at zero (PyTorch's
    starts as ``None``), backward passes add into it, and ``zero_grad`` resets it.
    """

    def __init__(self, data: np.ndarray) -> None:
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and network.

    Parameters and submodules are found among the instance's attributes, in the order they
    were assigned, so ``parameters()`` follows PyTorch's order (weight, then bias; then the
    submodules in order). ``training`` is True after ``train()`` and False after ``eval()``.
    """

    def __init__(self) -> None:
        self.training = True

    def forward(self, x: np.ndarray) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_out: Any) -> Any:
        """Add the parameters' gradients into their ``.grad`` and return the input's gradient."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct submodules with their attribute names, in registration order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        """Direct submodules, in registration order."""
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator[Module]:
        """This module, then every submodule depth first (as ``torch.nn.Module.modules``)."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``("conv1.weight", Parameter)`` pairs: own parameters first, then each child's.

        A parameter shared by two modules is listed once, as in PyTorch.
        """
        seen: set[int] = set()
        for name, param in self._named_parameters_all(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def _named_parameters_all(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._named_parameters_all(f"{prefix}{name}.")

    def parameters(self) -> Iterator[Parameter]:
        """Every learnable ``Parameter`` of this module and its submodules."""
        for _, param in self.named_parameters():
            yield param

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zero (backward passes accumulate with +=)."""
        for param in self.parameters():
            param.grad.fill(0)

    def train(self, mode: bool = True) -> Module:
        """Put this module and all submodules in training mode (or evaluation mode if False)."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: Dropout is the identity, BatchNorm2d uses its running statistics."""
        return self.train(False)

    def _saved(self, name: str = "_input"):
        """What forward stored for backward, or a clear error if forward has not run."""
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward was called before forward: "
                "run the forward pass first, it saves what backward needs"
            )
        return value

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``, e.g. ``"3, 16, kernel_size=(3, 3)"``."""
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in children:
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


def check_dtype(dtype: npt.DTypeLike, layer: str) -> np.dtype:
    """The parameters' dtype: float32 (the default) or float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype
