"""Argument checks shared by every layer: clear errors instead of deep NumPy tracebacks.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, wrong
value or shape) with a message that names the argument, what was expected and what was got.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def pair(value: object, name: str, *, minimum: int) -> tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints, each at least ``minimum``.

    ``kernel_size=3`` becomes ``(3, 3)``; ``stride=(2, 1)`` stays as it is.
    """
    if type(value) is int:  # the common case, checked first: this runs on every layer call
        values = (value, value)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(type(v) is int or isinstance(v, np.integer) for v in value)
    ):
        values = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def single(value: object, name: str, *, minimum: int) -> int:
    """Return ``value`` as one int at least ``minimum`` (1D layers accept a 1-tuple too)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def positive_int(value: object, name: str, op: str) -> int:
    """Return ``value`` (e.g. ``groups``) as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {value}")
    return int(value)


def float_array(array: object, name: str, layout: str, op: str) -> np.ndarray:
    """Check that ``array`` is a float32/float64 NumPy array whose rank matches ``layout``.

    ``layout`` names the axes, e.g. ``"(N, C_in, H, W)"``; their number is the rank.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"{op}: {name} must be a NumPy array of shape {layout}, got {type(array).__name__}"
        )
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: {name} must be float32 or float64, got dtype {array.dtype} "
            f"(convert with {name}.astype(np.float32))"
        )
    rank = len([axis for axis in layout.strip("()").split(",") if axis.strip()])
    if array.ndim != rank:
        raise ValueError(
            f"{op}: {name} must have shape {layout} ({rank} dimensions), "
            f"got shape {array.shape} ({array.ndim} dimensions)"
        )
    return array


def same_dtype(op: str, **arrays: np.ndarray | None) -> None:
    """Refuse mixed float32/float64 inputs, as PyTorch does, instead of silently upcasting."""
    present = {name: a.dtype for name, a in arrays.items() if a is not None}
    if len(set(present.values())) > 1:
        listed = ", ".join(f"{name} is {dtype}" for name, dtype in present.items())
        raise TypeError(f"{op}: inputs must share one dtype, but {listed}")


def expect_shape(op: str, name: str, got: tuple, expected: tuple, why: str) -> None:
    """Raise ValueError when ``got != expected``, saying why that shape is required."""
    if tuple(got) != tuple(expected):
        raise ValueError(f"{op}: {name} must have shape {tuple(expected)} ({why}), got {tuple(got)}")


def batched(x: object, name: str, layout: str, op: str) -> tuple[np.ndarray, bool]:
    """Accept ``x`` with or without its batch axis, as PyTorch does: ``layout`` names the batched
    axes, e.g. ``"(N, C, H, W)"``; a (C, H, W) array gets a batch of one.

    Returns the batched array and whether the caller passed it unbatched.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array of shape {layout}, got {type(x).__name__}")
    rank = len(layout.strip("()").split(","))
    if x.ndim == rank - 1:
        return float_array(x[None], name, layout, op), True
    if x.ndim != rank:
        unbatched = "(" + layout.strip("()").split(",", 1)[1].strip() + ")"
        raise ValueError(
            f"{op}: expected {name} of shape {unbatched} (unbatched, {rank - 1}D) or {layout} "
            f"(batched, {rank}D), got shape {x.shape} ({x.ndim}D)"
        )
    return float_array(x, name, layout, op), False
