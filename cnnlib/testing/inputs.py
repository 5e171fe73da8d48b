"""The test cells' inputs: seeded random arrays, hand-written arrays, a test function."""

import random

import numpy as np

from cnnlib.testing.arguments import _Objective
from cnnlib.testing.integrity import _np_array
from cnnlib.testing.tensors import _flatten, _size


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    """A float64 array of ``shape`` with standard normal values (rounded to 6 decimals), the same
    for the same seed."""
    rng = random.Random(seed)
    values = [round(rng.gauss(0.0, 1.0), 6) for _ in range(_size(shape))]
    return _np_array(values, dtype=np.float64).reshape(shape)


def randint(low: int, high: int, *shape: int, seed: int = 0) -> np.ndarray:
    """A float64 array of ``shape`` holding whole numbers in [low, high)."""
    rng = random.Random(seed)
    return _np_array([float(rng.randrange(low, high)) for _ in range(_size(shape))],
                     dtype=np.float64).reshape(shape)


def labels(literal) -> np.ndarray:
    """An int64 array of class labels from (nested) lists, as a dataset's labels are."""
    return array(literal).astype(np.int64)


def randlabels(classes: int, *shape: int, seed: int = 0) -> np.ndarray:
    """An int64 array of ``shape`` holding class labels in [0, classes) (:func:`randint`'s values)."""
    return randint(0, classes, *shape, seed=seed).astype(np.int64)


def array(literal) -> np.ndarray:
    """A float64 array from nested lists (the test cells' hand-computed examples)."""
    shape, values = _flatten(literal)
    return _np_array(values, dtype=np.float64).reshape(shape)


def cubic(size: int, seed: int = 0, scale: float = 1.0) -> _Objective:
    """A test function for ``numerical_gradient``: f(x) = sum a_i x_i^3 + b_i x_i x_{i+1}.

    The coefficients are uniform in [-scale, scale]. A large scale makes the curvature large
    enough for forward differences (error eps f''/2) to miss the tolerance at eps = 1e-6.
    """
    rng = random.Random(seed)
    return _Objective(scale * round(rng.uniform(-1, 1), 3) for _ in range(2 * size))
