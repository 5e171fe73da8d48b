"""``pad`` as ``torch.nn.functional.pad``: constant, reflect, replicate and circular, with its backward.

``pad`` lists (before, after) amounts from the last axis backwards, as PyTorch does:
``pad(x, (left, right, top, bottom))`` pads W by left/right and H by top/bottom. A negative amount
crops. Each axis is padded through an index map (which input position every output position
copies, -1 for a constant), so the backward pass sums the gradient back along the same map.

>>> import numpy as np
>>> pad(np.arange(3.0)[None], (2, 1), mode="reflect")  # (C, W): one channel
array([[2., 1., 0., 1., 2., 1.]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MODES = ("constant", "reflect", "replicate", "circular")
_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _check(op: str, x: object, pad: object, mode: str, value: float | None) -> list[tuple[int, int, int]]:
    """Check a pad call; return (axis, before, after) per padded axis."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: x must be a NumPy array, got {type(x).__name__}")
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    if (not isinstance(pad, Sequence) or isinstance(pad, str)
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad)):
        raise TypeError(f"{op}: pad must be a tuple of ints (left, right[, top, bottom, ...]), got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"{op}: pad must have an even length (a before and an after per axis), got {pad!r}")
    axes = len(pad) // 2
    if axes > x.ndim:
        raise ValueError(f"{op}: pad {tuple(pad)} pads {axes} axes but x of shape {x.shape} has {x.ndim}")
    if mode != "constant":
        if value not in (None, 0):
            raise ValueError(f"{op}: padding mode {mode!r} takes no value, got value={value!r}")
        if not 1 <= axes <= 3 or x.ndim not in (axes + 1, axes + 2):
            raise ValueError(f"{op}: mode {mode!r} pads the last 1, 2 or 3 axes of an input with one "
                             f"or two more (batch, channels); pad of length {len(pad)} does not fit "
                             f"x of shape {x.shape}")
    found = []
    for i in range(axes):
        axis, before, after = x.ndim - 1 - i, int(pad[2 * i]), int(pad[2 * i + 1])
        n = x.shape[axis]
        smallest = 0 if mode == "constant" else 1
        if n + before + after < smallest:
            raise ValueError(f"{op}: pad {tuple(pad)} crops axis {axis} of length {n} to "
                             f"{n + before + after} < {smallest} (mode {mode!r})")
        if mode == "reflect" and max(before, after) >= n:
            raise ValueError(f"{op}: reflect padding must be smaller than the axis it pads, got "
                             f"({before}, {after}) for axis {axis} of length {n}")
        kept = n - max(-before, 0) - max(-after, 0)  # circular padding wraps what the crop keeps
        if mode == "circular" and max(before, after) > kept:
            raise ValueError(f"{op}: circular padding wraps around more than once: ({before}, {after}) "
                             f"for axis {axis} of length {n} ({kept} after cropping)")
        if mode in ("replicate",) and n == 0:
            raise ValueError(f"{op}: cannot replicate an empty axis {axis}")
        found.append((axis, before, after))
    return found


def source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position along one axis, the input position it copies (-1: the constant).

    >>> source_index(3, 2, -1, "reflect")
    array([2, 1, 0, 1])
    """
    index = np.arange(n)
    if mode == "circular":  # PyTorch crops first, then wraps what is left
        index = index[max(-before, 0) : n - max(-after, 0)]
        return np.pad(index, (max(before, 0), max(after, 0)), mode="wrap")
    grown = (max(before, 0), max(after, 0))
    padded = np.pad(index, grown, constant_values=-1) if mode == "constant" else np.pad(
        index, grown, mode=_NUMPY_MODE[mode])  # type: ignore[call-overload]
    return padded[max(-before, 0) : len(padded) - max(-after, 0)]


def pad(x: np.ndarray, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> np.ndarray:
    """Pad (or crop) the last ``len(pad) // 2`` axes, as ``torch.nn.functional.pad``.

    x: any shape (reflect, replicate, circular: (N, C, ...) or (C, ...) with 1-3 padded axes)
    -> the padded axes grow by before + after. ``value`` fills constant padding (default 0).
    """
    axes = _check("pad", x, pad, mode, value)
    out = x
    for axis, before, after in axes:
        index = source_index(x.shape[axis], before, after, mode)
        out = out.take(np.maximum(index, 0), axis=axis)
        if mode == "constant" and (index < 0).any():
            where: list[slice | np.ndarray] = [slice(None)] * out.ndim
            where[axis] = index < 0
            out[tuple(where)] = 0 if value is None else value
    return out


def pad_backward(
    grad_out: np.ndarray, x: np.ndarray, pad: Sequence[int], mode: str = "constant"
) -> np.ndarray:
    """Gradient of ``pad``: each output's gradient goes back to the input position it copied
    (summed where several copied the same one); constant padding gets none.

    grad_out: the padded shape, x: the input -> grad_x: x's shape
    """
    axes = _check("pad_backward", x, pad, mode, None)
    expected = list(x.shape)
    for axis, before, after in axes:
        expected[axis] += before + after
    if not isinstance(grad_out, np.ndarray) or grad_out.shape != tuple(expected):
        raise ValueError(f"pad_backward: grad_out must have the padded shape {tuple(expected)}, got "
                         f"{getattr(grad_out, 'shape', type(grad_out).__name__)}")
    grad = grad_out
    for axis, before, after in reversed(axes):
        index = source_index(x.shape[axis], before, after, mode)
        moved = np.moveaxis(grad, axis, 0)
        summed = np.zeros((x.shape[axis], *moved.shape[1:]), grad.dtype)
        keep = index >= 0
        np.add.at(summed, index[keep], moved[keep])
        grad = np.moveaxis(summed, 0, axis)
    return grad
