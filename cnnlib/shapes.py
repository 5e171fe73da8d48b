"""Sizes in a network: output sizes, receptive fields, and (re-exported from
``cnnlib.summary``) a per-layer summary.

``conv_output_size`` is the lectures' (N + 2P - F)/S + 1; ``receptive_field`` follows
r <- r + D(K - 1) j, j <- j S through a stack of layers; ``summary`` runs a model on zeros and
tabulates each layer's output shape, parameters and multiply-adds, like ``torchinfo``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np


def _formula(n: int, kernel_size: int, stride: int, padding: int, dilation: int) -> str:
    """The size formula with the numbers filled in, as the lectures write it."""
    f = f"{kernel_size}" if dilation == 1 else f"({dilation}*({kernel_size} - 1) + 1)"
    p = f" + 2*{padding}" if padding else ""
    return f"({n}{p} - {f})/{stride} + 1"


def conv_output_size(
    n: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    strict: bool = False,
) -> int:
    """Length of a convolution's (or pooling's) output along one axis.

    ``floor((n + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``, PyTorch's rule.
    With ``strict=True`` a stride that leaves input uncovered raises ``ValueError``
    (the lectures' "stride 3 doesn't fit" on a 7x7 input with a 3x3 kernel).

    >>> conv_output_size(7, 3, stride=2)
    3
    >>> conv_output_size(32, 5, padding=2)
    32
    """
    for name, value, minimum in (
        ("n", n, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        if type(value) is not int and (
            not isinstance(value, numbers.Integral) or isinstance(value, bool)
        ):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    effective = dilation * (kernel_size - 1) + 1
    span = n + 2 * padding - effective
    formula = _formula(n, kernel_size, stride, padding, dilation)
    if span < 0:
        raise ValueError(
            f"kernel of size {effective} is larger than the padded input of size "
            f"{n + 2 * padding}: {formula} = {span / stride + 1:.2f} < 1"
        )
    if strict and span % stride:
        raise ValueError(
            f"{formula} = {span / stride + 1:.2f} is not an integer: "
            f"stride {stride} does not fit"
        )
    return span // stride + 1


def conv2d_macs(in_channels: int, out_channels: int, kernel_size, out_size, groups: int = 1) -> int:
    """Multiply-adds of one image through a 2D convolution: each of the
    ``H_out * W_out * C_out`` outputs is a dot product of ``C_in / groups * K_h * K_w`` terms.

    >>> conv2d_macs(3, 96, 11, 55)  # AlexNet's conv1
    105415200
    """
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    h_out, w_out = (out_size, out_size) if isinstance(out_size, int) else out_size
    return h_out * w_out * out_channels * (in_channels // groups) * k_h * k_w



def _markdown(headers: list[str], rows: list[list]) -> str:
    """A GitHub/MyST markdown table; ints get thousands separators."""
    def cell(value):
        return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one unit after a stack of layers.

    ``size``: how many input pixels (along one axis) can influence one output unit;
    ``jump``: how many input pixels apart two neighbouring output units look (the product of
    the strides); ``table``: one dict per layer (the input first), for the book's plots.
    """

    size: int
    jump: int
    table: list[dict] = field(repr=False)

    def to_markdown(self) -> str:
        headers = ["layer", "kernel_size", "stride", "dilation", "receptive_field", "jump"]
        return _markdown(headers, [[row[h] for h in headers] for row in self.table])


def _square(module, attribute: str, name: str) -> int:
    value = getattr(module, attribute, (1, 1))
    if value[0] != value[1]:
        raise ValueError(
            f"receptive_field: {name} has {attribute}={value}, not square; "
            "pass (kernel_size, stride, dilation) tuples for the axis you want"
        )
    return int(value[0])


def _rf_layers(layers, prefix: str = "") -> list[tuple[str, int, int, int]]:
    """(name, K, S, D) for each layer that changes the receptive field, in order."""
    from . import nn

    if isinstance(layers, nn.Sequential):
        layers = list(layers.named_children())
    elif isinstance(layers, nn.Module):
        layers = [(type(layers).__name__, layers)]
    else:
        layers = [(str(i), layer) for i, layer in enumerate(layers)]
    found = []
    for name, layer in layers:
        name = prefix + name
        if isinstance(layer, (tuple, list)):
            if len(layer) not in (2, 3):
                raise ValueError(
                    f"receptive_field: layer {name} must be (kernel_size, stride[, dilation]), "
                    f"got {layer!r}"
                )
            k, s, d = (*layer, 1)[:3]
            for what, value in (("kernel_size", k), ("stride", s), ("dilation", d)):
                if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"receptive_field: layer {name}: {what} must be an int >= 1, "
                                     f"got {value!r}")
            found.append((name, int(k), int(s), int(d)))
        elif isinstance(layer, nn.Sequential):
            found += _rf_layers(layer, prefix=f"{name}.")
        elif isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            label = f"{name} {type(layer).__name__}"
            found.append((label, *(_square(layer, a, label) for a in
                                   ("kernel_size", "stride", "dilation"))))
        elif not isinstance(layer, (nn.ReLU, nn.BatchNorm2d, nn.Dropout, nn.Identity)):
            raise TypeError(
                f"receptive_field follows a chain of conv and pooling layers; {name} is a "
                f"{type(layer).__name__} (a Linear or Flatten sees the whole input, a block with "
                "branches has several paths: pass the layers of its longest one)"
            )
    return found


def receptive_field(layers) -> ReceptiveField:
    """Receptive field of a stack of layers, given as ``(kernel_size, stride[, dilation])``
    tuples or as ``cnnlib.nn`` modules (a ``Sequential`` of Conv2d, pooling, ReLU, ...).

    Layer by layer, ``r <- r + D (K - 1) j`` and ``j <- j S``, starting from r = j = 1:
    L stride-1 KxK layers give the lectures' ``1 + L (K - 1)``.

    >>> receptive_field([(3, 1)] * 3).size  # three 3x3 layers see as far as one 7x7
    7
    >>> receptive_field([(2, 2)] * 2)
    ReceptiveField(size=4, jump=4)
    """
    size, jump = 1, 1
    table = [dict(layer="input", kernel_size=1, stride=1, dilation=1, receptive_field=1, jump=1)]
    for name, k, s, d in _rf_layers(layers):
        size += d * (k - 1) * jump
        jump *= s
        table.append(dict(layer=name, kernel_size=k, stride=s, dilation=d,
                          receptive_field=size, jump=jump))
    return ReceptiveField(size, jump, table)


# ---------------------------------------------------------------------------- model summary


# The summary lives in its own module; importing it last lets it use the helpers above.
from .summary import LayerSummary, Summary, layer_macs, output_shape, summary  # noqa: E402

__all__ = [
    "conv_output_size", "conv2d_macs", "receptive_field", "ReceptiveField",
    "summary", "Summary", "LayerSummary", "layer_macs", "output_shape",
]
