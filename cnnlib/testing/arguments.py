"""Arguments and results: arrays frozen to tuple tensors on the way in, read back on the way out.
"""

import numpy as np

from cnnlib.testing.errors import GradingError
from cnnlib.testing.integrity import _NDARRAY, _np_array
from cnnlib.testing.spec import _REQUIRED, _Spec
from cnnlib.testing.tensors import _format, _size, _tensor

MAX_VALUES = 2_000_000  # ten times the largest array a test cell makes (200,704 values)


def _from_array(value, what: str) -> tuple:
    """A NumPy array as a tensor, read through NumPy's own ndarray type."""
    if value.__class__ is not _NDARRAY:
        kind = "None" if value is None else value.__class__.__name__
        hint = " (forgot to return it?)" if value is None else (
            " (wrap it in np.array(...))" if isinstance(value, (list, tuple)) else (
                " (a single number)" if value.__class__ in (int, float) else ""))
        article = "" if value is None else "an " if kind[:1].lower() in "aeiou" else "a "
        raise GradingError(f"{what}: {article}{kind} instead of a NumPy array{hint}\n"
                           f"  {what} should be a NumPy array, got {kind}")
    if value.dtype.kind not in "biuf":
        raise GradingError(f"{what}: an array of dtype {value.dtype} instead of numbers (float64)\n"
                           f"  {what} has dtype {value.dtype}: expected numbers (float64)")
    if value.size > MAX_VALUES:  # each value becomes a Python float here (32 bytes, of 1 for a bool)
        raise GradingError(f"{what}: an array of shape {value.shape} ({value.size:,} values), far larger "
                           f"than any answer here\n  {what} has {value.size:,} values; the checker reads at "
                           f"most {MAX_VALUES:,}: check the shape you return")
    return _tensor(value.shape, [float(v) for v in value.reshape(-1).tolist()])


def _to_array(t):
    return _np_array(t[1], dtype=np.float64).reshape(t[0])


def _to_labels(t):
    return _np_array([int(v) for v in t[1]], dtype=np.int64).reshape(t[0])


ARRAY_KINDS = ("array", "labels")  # float64 arrays; int64 class labels, as real data has them


def _freeze(value):
    """Arguments as immutable values: arrays become tensors (integer arrays stay integer: class
    labels index arrays), the rest must be plain data."""
    if value.__class__ is _NDARRAY:
        kind = "labels" if value.dtype.kind in "iu" else "array"
        return (kind, _from_array(value, "an argument"))
    if value.__class__ is _Objective:
        return ("objective", value.frozen())
    if value is None or value.__class__ in (int, float, bool, str):
        return ("plain", value)
    if value.__class__ in (tuple, list):
        return ("plain", tuple(_freeze(v)[1] for v in value))
    raise TypeError(f"grader: cannot pass a {value.__class__.__name__} to a graded function")


def _for_reference(frozen):
    kind, value = frozen
    return _Objective(value) if kind == "objective" else value


def _thaw(frozen):
    kind, value = frozen
    if kind == "array":
        return _to_array(value)
    if kind == "labels":
        return _to_labels(value)
    if kind == "objective":
        return _Objective(value)
    return value  # "plain" data, or an "object" the case study hands over as it is


def _bind(spec: _Spec, name: str, args: tuple, kwargs: dict) -> dict:
    """The check's arguments by parameter name, defaults filled in."""
    names = [p for p, _ in spec.params]
    if len(args) > len(names):
        raise TypeError(f"grader: {name} takes at most {len(names)} arguments")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names or key in bound:
            raise TypeError(f"grader: unexpected argument {key!r} for {name}")
        bound[key] = value
    for key, default in spec.params:
        if key not in bound:
            if default is _REQUIRED:
                raise TypeError(f"grader: {name} needs the argument {key!r}")
            bound[key] = default
    return bound


def _describe_call(name: str, spec: _Spec, args: tuple, kwargs: dict) -> str:
    """``conv2d(x: (2, 3, 7, 7), weight: (4, 3, 3, 3), bias: (4,), stride=2)``."""
    names = [p for p, _ in spec.params]
    parts = []
    for key, (kind, value) in [*zip(names, args), *kwargs.items()]:
        if kind in ARRAY_KINDS:
            parts.append(f"{key} of shape {value[0]}" if _size(value[0]) > 12 else
                         f"{key}={_format(list(value[1]), value[0])}")
        elif kind == "objective":
            parts.append(f"{key}=<a test function>")
        else:
            parts.append(f"{key}={value!r}")
    return f"{name}({', '.join(parts)})"


class _Objective:
    """The function handed to ``numerical_gradient``: f(x) = sum_i a_i x_i^3 + b_i x_i x_{i+1}.

    Calling it reads x through NumPy's own ndarray type, with no other Python call, so the call
    monitor can let exactly this code through.
    """

    def __init__(self, coefficients):
        self._coefficients = tuple(coefficients)

    def frozen(self):
        return self._coefficients

    def value(self, values) -> float:
        a, b = self._coefficients[0::2], self._coefficients[1::2]
        total = 0.0
        for i in range(len(values)):
            total += a[i] * values[i] ** 3
            if i + 1 < len(values):
                total += b[i] * values[i] * values[i + 1]
        return total

    def __call__(self, x):
        if x.__class__ is not _NDARRAY:
            raise TypeError(f"f takes a NumPy array, got {x.__class__.__name__}")
        values = x.reshape(-1).tolist()
        a, b = self._coefficients[0::2], self._coefficients[1::2]
        total = 0.0
        for i in range(len(values)):
            total += a[i] * values[i] ** 3
            if i + 1 < len(values):
                total += b[i] * values[i] * values[i + 1]
        return total

