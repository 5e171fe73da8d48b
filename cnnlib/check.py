"""Checking gradients: by central differences, and against PyTorch (on the GPU when present).

Both checks take a layer by its ``cnnlib.functional`` name, the arrays it differentiates
(``x``, then ``weight`` and ``bias`` where it has them) and its other arguments by keyword:

>>> gradcheck("conv2d", x, weight, bias, stride=2)             # doctest: +SKIP
>>> compare_with_torch("max_pool2d", x, kernel_size=2)         # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import functional as F

# The arrays each layer differentiates, in the order its backward returns their gradients.
DIFFERENTIABLE = {
    "conv1d": ("x", "weight", "bias"),
    "conv2d": ("x", "weight", "bias"),
    "conv_transpose2d": ("x", "weight", "bias"),
    "linear": ("x", "weight", "bias"),
    "max_pool2d": ("x",),
    "avg_pool2d": ("x",),
    "relu": ("x",),
    "cross_entropy": ("logits",),
    "pad": ("x",),
    "adaptive_avg_pool2d": ("x",),
    "adaptive_max_pool2d": ("x",),
    "softmax": ("x",),
    "log_softmax": ("x",),
}


def _layer(op: str):
    if op not in DIFFERENTIABLE:
        raise ValueError(f"unknown layer {op!r}; expected one of {sorted(DIFFERENTIABLE)}")
    return getattr(F, op), getattr(F, op + "_backward"), DIFFERENTIABLE[op]


def _cnnlib_grads(op: str, arrays: list[np.ndarray | None], grad_out: np.ndarray, kwargs: dict):
    """Gradients of sum(op(*arrays) * grad_out) for every array, None where an array is None."""
    _, backward, names = _layer(op)
    if op == "cross_entropy":
        grads = (backward(*arrays, **kwargs, grad_out=grad_out),)
    else:
        without_bias = arrays[:2] if "bias" in names else arrays[:1]
        grads = backward(grad_out, *without_bias, **kwargs)
        grads = grads if isinstance(grads, tuple) else (grads,)
    return [None if a is None else g for a, g in zip(arrays[: len(names)], grads)]


def _random_grad_out(out: Any, seed: int) -> Any:
    if np.isscalar(out) or np.ndim(out) == 0:
        return 1.0
    return np.random.default_rng(seed).standard_normal(np.shape(out)).astype(out.dtype)


def gradcheck(op: str, *arrays, eps: float = 1e-6, rtol: float = 1e-5,
              atol: float = 1e-7, seed: int = 0, **kwargs) -> None:
    """Compare a layer's backward with central differences of its forward, in
    float64.

    Checks every entry of every differentiable array; raises ``AssertionError``
    with a sentence ("conv2d: d/dweight[0, 1, 2, 0]: expected derivative 0.31
    from central difference, got 0.12").
    """
    forward, _, names = _layer(op)
    values = [None if a is None else np.array(a, np.float64) for a in arrays]
    out = forward(*values, **kwargs)
    grad_out = _random_grad_out(out, seed)
    analytic = _cnnlib_grads(op, values, grad_out, kwargs)

    def loss() -> float:
        return float(np.sum(forward(*values, **kwargs) * grad_out))

    for name, array, grad in zip(names, values, analytic):
        if array is None:
            continue
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            plus = loss()
            array[index] = saved - eps
            minus = loss()
            array[index] = saved
            expected = (plus - minus) / (2 * eps)
            if not np.isclose(grad[index], expected, rtol=rtol, atol=atol):
                raise AssertionError(
                    f"{op}: d/d{name}{list(index)}: "
                    f"expected derivative {expected:.6g} "
                    f"from central difference, got {grad[index]:.6g}"
                )


@dataclass
class Parity:
    """How far cnnlib is from PyTorch on one call: the largest absolute error of each result."""

    op: str
    device: str
    errors: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        listed = ", ".join(f"{k} {v:.2e}" for k, v in self.errors.items())
        return f"{self.op} on {self.device}: max abs error {listed}"


def default_device() -> str:
    """``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _tolerance(dtype: npt.DTypeLike) -> tuple[float, float]:
    return (1e-9, 1e-9) if dtype == np.float64 else (2e-4, 2e-4)


def compare_with_torch(op: str, *arrays, device: str | None = None, seed: int = 0,
                       rtol: float | None = None, atol: float | None = None, **kwargs) -> Parity:
    """Run ``cnnlib.functional.<op>`` and ``torch.nn.functional.<op>`` on the same inputs and
    compare the forward result and every gradient (for a random output gradient).

    Runs PyTorch on ``device`` (the GPU when available) with TF32 off, so float32 means float32.
    Raises ``AssertionError`` naming the result that differs; returns the errors otherwise.
    """
    import torch
    import torch.nn.functional as TF

    forward, _, names = _layer(op)
    device = device or default_device()
    dtype = next(a.dtype for a in arrays if a is not None)
    default_rtol, default_atol = _tolerance(dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    tensors = [None if a is None else torch.tensor(a, device=device, requires_grad=True)
               for a in arrays]
    torch_kwargs = {k: torch.tensor(v, device=device) if isinstance(v, np.ndarray) else v
                    for k, v in kwargs.items()}
    with _exact_float32(torch):
        expected = getattr(TF, op)(*tensors, **torch_kwargs)
        got = forward(*arrays, **kwargs)
        grad_out = _random_grad_out(got, seed)
        expected.backward(torch.as_tensor(grad_out, dtype=expected.dtype, device=device))
    report = Parity(op, torch.cuda.get_device_name() if device.startswith("cuda") else device)
    results = [("output", got, expected)]
    grads = _cnnlib_grads(op, list(arrays), grad_out, kwargs)
    results += [(f"grad_{n}", g, t.grad) for n, g, t in zip(names, grads, tensors) if t is not None]
    for label, ours, theirs in results:
        theirs = theirs.detach().cpu().numpy()
        ours = np.asarray(ours)
        if ours.shape != theirs.shape:
            raise AssertionError(f"{op}: {label} has shape {ours.shape}, PyTorch's {theirs.shape}")
        report.errors[label] = float(np.max(np.abs(ours - theirs), initial=0.0))
        if not np.allclose(ours, theirs, rtol=rtol, atol=atol):
            raise AssertionError(f"{op}: {label} differs from PyTorch's: {report}")
    return report


class _exact_float32:
    """Turn TF32 off for the duration (cuDNN would otherwise round float32 convolutions)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def __enter__(self) -> None:
        b = self.torch.backends
        self.saved = (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
        b.cudnn.allow_tf32 = b.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        b = self.torch.backends
        b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = self.saved
