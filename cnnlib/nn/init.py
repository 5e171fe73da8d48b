"""Random numbers for the ``nn`` modules: PyTorch's default initialisation, reproducibly.

Every module draws its initial weights (and Dropout its masks) from one NumPy ``Generator``
held here. ``manual_seed(seed)`` replaces it, so building the same network after the same
seed gives the same numbers, as ``torch.manual_seed`` does for PyTorch.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .module import Parameter

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Restart the generator that initialisation and Dropout draw from; returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    """The generator in use now (the one the last ``manual_seed`` made)."""
    return _generator


def uniform(shape: tuple[int, ...], bound: float, dtype: npt.DTypeLike) -> np.ndarray:
    """Samples of U(-bound, bound) of the given shape and dtype, drawn in that dtype (VGG-16's
    138M float32 weights draw in about a third of the time a float64 draw takes)."""
    values = _generator.random(shape, dtype=np.dtype(dtype).type)  # type: ignore[arg-type]
    values *= 2 * bound
    values -= bound
    return values


def weight_and_bias(
    weight_shape: tuple[int, ...], fan_in: int, bias_length: int | None, dtype: npt.DTypeLike
) -> tuple[Parameter, Parameter | None]:
    """PyTorch's default initialisation of a conv or linear layer, weight drawn first.

    The weight gets ``kaiming_uniform_(a=sqrt(5))``: gain ``sqrt(2 / (1 + a^2)) = sqrt(1/3)``
    and bound ``sqrt(3) * gain / sqrt(fan_in) = 1 / sqrt(fan_in)``, so U(-1/sqrt(fan_in),
    1/sqrt(fan_in)); the bias (``bias_length`` values, or none when None) gets the same range.
    """
    bound = 1.0 / math.sqrt(fan_in)
    weight = Parameter(uniform(weight_shape, bound, dtype))
    bias = None if bias_length is None else Parameter(uniform((bias_length,), bound, dtype))
    return weight, bias
