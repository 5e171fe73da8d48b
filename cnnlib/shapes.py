"""Sizes in a network: output sizes, receptive fields, and (re-exported from
``cnnlib.summary``) a per-layer summary.

``conv_output_size`` is the lectures' (N + 2P - F)/S + 1; ``receptive_field`` follows
r <- r + D(K - 1) j, j <- j S through a stack of layers; ``summary`` runs a model on zeros and
tabulates each layer's output shape, parameters and multiply-adds, like ``torchinfo``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

from . import nn
from .geometry import (
    TransposedAsConv,
    adaptive_pool_windows,
    conv2d_macs,
    conv_leftover,
    conv_output_formula,
    conv_output_size,
    conv_transpose_output_formula,
    conv_transpose_output_size,
    effective_kernel_size,
    full_padding,
    pool_output_size,
    same_padding,
    transposed_as_conv,
)
from .summary import LayerSummary, Summary, layer_macs, output_shape, summary
from .tables import markdown_table

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
        return markdown_table(headers, [[row[h] for h in headers] for row in self.table])


def _square(module: nn.Module, attribute: str, name: str) -> int:
    value = getattr(module, attribute, (1, 1))
    if value[0] != value[1]:
        raise ValueError(
            f"receptive_field: {name} has {attribute}={value}, not square; "
            "pass (kernel_size, stride, dilation) tuples for the axis you want"
        )
    return int(value[0])


def _rf_layers(layers: Any, prefix: str = "") -> list[tuple[str, int, int, int]]:
    """(name, K, S, D) for each layer that changes the receptive field, in order."""
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
            k, s, d = (_square(layer, a, label) for a in ("kernel_size", "stride", "dilation"))
            found.append((label, k, s, d))
        elif not isinstance(layer, (nn.ReLU, nn.BatchNorm2d, nn.Dropout, nn.Identity)):
            raise TypeError(
                f"receptive_field follows a chain of conv and pooling layers; {name} is a "
                f"{type(layer).__name__} (a Linear or Flatten sees the whole input, a block with "
                "branches has several paths: pass the layers of its longest one)"
            )
    return found


def receptive_field(layers: Any) -> ReceptiveField:
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


__all__ = [
    "conv_output_size", "conv_output_formula", "conv_leftover", "effective_kernel_size",
    "same_padding", "full_padding", "conv_transpose_output_size", "conv_transpose_output_formula",
    "transposed_as_conv", "TransposedAsConv", "pool_output_size", "adaptive_pool_windows",
    "conv2d_macs", "receptive_field", "ReceptiveField",
    "summary", "Summary", "LayerSummary", "layer_macs", "output_shape",
]
