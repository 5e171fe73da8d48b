"""A model summary like torchinfo's: per layer, its output shape, parameters and multiply-adds.

``summary(model, input_size)`` runs the model on zeros with every module's ``forward`` wrapped
to record shapes; known leaf layers return zeros of the shape the size formulas give (so VGG-16
summarises in milliseconds), ``exact=True`` runs every layer for real.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import nn
from .geometry import conv2d_macs, conv_output_size, conv_transpose_output_size, pool_output_size
from .tables import markdown_table


def _metric(n: int) -> str:
    """1234567 -> '1.23 M'."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= factor:
            return f"{n / factor:.2f} {prefix}"
    return str(n)


@dataclass(frozen=True)
class LayerSummary:
    """One row of a ``Summary``: a layer as it ran on the summary's input."""

    name: str
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    """What ``summary`` found: the model's ``output_shape``, ``rows`` (one ``LayerSummary``
    per layer, in the order they ran), ``total_params`` (from ``model.parameters()``) and
    ``total_macs``. ``blocks`` maps every module's name to its type, input and output
    shape (containers too), for ``grouped``."""

    input_size: tuple[int, ...]
    output_shape: tuple[int, ...]
    rows: list[LayerSummary]
    total_params: int
    blocks: dict[str, tuple] = field(default_factory=dict, repr=False, compare=False)

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.rows)

    def grouped(self, depth: int = 1) -> Summary:
        """Rows merged into the modules ``depth`` names deep: at depth 1 ``layer1.0.conv1``
        and ``layer1.1.bn2`` count towards ``layer1``, whose row sums their parameters and
        multiply-adds and shows the block's own input and output shapes."""
        merged: dict[str, list[LayerSummary]] = {}
        for row in self.rows:
            merged.setdefault(".".join(row.name.split(".")[:depth]), []).append(row)
        rows = []
        for name, group in merged.items():
            default = (group[0].type, group[0].input_shape, group[-1].output_shape)
            kind, shape_in, shape_out = self.blocks.get(name, default)
            rows.append(LayerSummary(name, kind, shape_in, shape_out,
                                     sum(r.params for r in group), sum(r.macs for r in group)))
        return Summary(self.input_size, self.output_shape, rows, self.total_params, self.blocks)

    def as_dicts(self) -> list[dict]:
        """The rows as plain dicts, e.g. for a plot or ``pandas.DataFrame``."""
        return [asdict(row) for row in self.rows]

    def _table(self) -> list[list]:
        return [[r.name, r.type, str(r.output_shape), r.params, r.macs] for r in self.rows]

    def to_markdown(self) -> str:
        headers = ["layer", "type", "output shape", "params", "mult-adds"]
        total = ["**total**", "", f"**{self.output_shape}**", f"**{self.total_params:,}**",
                 f"**{self.total_macs:,}**"]
        return markdown_table(headers, [*self._table(), total])

    def __str__(self) -> str:
        rows = [["Layer", "Type", "Output shape", "Params", "Mult-adds"]]
        rows += [[f"{v:,}" if isinstance(v, int) else v for v in row] for row in self._table()]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        align = ["<", "<", "<", ">", ">"]
        lines = ["  ".join(f"{v:{a}{w}}" for v, a, w in zip(row, align, widths, strict=True))
                 for row in rows]
        rule = "-" * len(lines[0])
        return "\n".join([lines[0], rule, *lines[1:], rule,
                          f"Input: {self.input_size} -> output: {self.output_shape}",
                          f"Total params: {self.total_params:,}",
                          f"Total mult-adds: {self.total_macs:,} ({_metric(self.total_macs)})"])

    def __repr__(self) -> str:
        return (f"Summary(input_size={self.input_size}, layers={len(self.rows)}, "
                f"total_params={self.total_params:,}, total_macs={self.total_macs:,})")


def layer_macs(module: nn.Module, input_shape: tuple, output_shape: tuple) -> int:
    """Multiply-adds of one module on a whole batch (convention: only products with weights).

    Conv2d: ``N H_out W_out C_out (C_in / groups) K_h K_w``; ConvTranspose2d: each input value
    meets a whole kernel, ``N H W C_in (C_out / groups) K_h K_w``; Linear: ``in * out`` per
    row. Bias additions are not counted; BatchNorm2d counts 0 (at inference it folds into the
    preceding convolution's weights); pooling, ReLU, Dropout and Flatten count 0 (they
    compare, add or copy, but multiply by no weight).
    """
    batch = int(output_shape[0])
    if isinstance(module, nn.Conv2d):
        return batch * conv2d_macs(module.in_channels, module.out_channels, module.kernel_size,
                                   output_shape[2:], module.groups)
    if isinstance(module, nn.ConvTranspose2d):
        return batch * conv2d_macs(module.out_channels, module.in_channels, module.kernel_size,
                                   input_shape[2:], module.groups)
    if isinstance(module, nn.Linear):
        return int(np.prod(output_shape[:-1])) * module.in_features * module.out_features
    return 0


def _expect_channels(name: str, shape: tuple, axis: int, expected: int, what: str) -> None:
    if len(shape) <= abs(axis) or shape[axis] != expected:
        raise ValueError(f"summary: {name} expects {what} = {expected}, got input of shape {shape}")


def _spatial(name: str, shape: tuple, module: Any, kind: str = "conv") -> tuple[int, ...]:
    """H_out, W_out of a conv, transposed conv or pooling module, by the layers' formulas."""
    dilation = getattr(module, "dilation", (1, 1))
    try:
        if kind == "transposed":
            return tuple(conv_transpose_output_size(*args) for args in zip(
                shape[2:], module.kernel_size, module.stride, module.padding,
                module.output_padding, dilation, strict=True))
        if kind == "pool":
            ceil_mode = getattr(module, "ceil_mode", False)
            return tuple(pool_output_size(*args, ceil_mode=ceil_mode) for args in zip(
                shape[2:], module.kernel_size, module.stride, module.padding, dilation, strict=True))
        pads = [module.padding] * 2 if isinstance(module.padding, str) else module.padding
        return tuple(conv_output_size(*args) for args in zip(
            shape[2:], module.kernel_size, module.stride, pads, dilation, strict=True))
    except ValueError as error:
        raise ValueError(f"summary: {name} on input of shape {shape}: {error}") from None


def output_shape(module: nn.Module, shape: tuple, name: str = "layer") -> tuple | None:
    """The shape a leaf module's forward would return for an input of ``shape``, without
    running it; None for a module type it does not know (``summary`` then runs it)."""
    shape, name = tuple(shape), f"{name} ({type(module).__name__})"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        _expect_channels(name, shape, 1, module.in_channels, "C_in")
        kind = "transposed" if isinstance(module, nn.ConvTranspose2d) else "conv"
        return (shape[0], module.out_channels, *_spatial(name, shape, module, kind))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and not getattr(module, "return_indices", False):
        return shape[:2] + _spatial(name, shape, module, "pool")
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and not getattr(
            module, "return_indices", False):
        size = module.output_size
        sizes = size if isinstance(size, (tuple, list)) else (size, size)
        return shape[:2] + tuple(n if m is None else m for n, m in zip(shape[2:], sizes, strict=True))
    if isinstance(module, nn.Linear):
        _expect_channels(name, shape, -1, module.in_features, "in_features")
        return shape[:-1] + (module.out_features,)
    if isinstance(module, nn.Flatten):
        return shape[: module.start_dim] + (int(np.prod(shape[module.start_dim :])),)
    if isinstance(module, nn.BatchNorm2d):
        _expect_channels(name, shape, 1, module.num_features, "num_features")
        return shape
    if isinstance(module, (nn.ReLU, nn.Dropout, nn.Identity)):
        return shape
    return None


def _values(out: np.ndarray | tuple) -> np.ndarray:
    """The array a row describes: a pooling layer with ``return_indices`` returns
    ``(values, indices)``, whose values are the layer's output (as in torchinfo)."""
    return out[0] if isinstance(out, tuple) else out


def _instrument(module: nn.Module, name: str, rows: list, blocks: dict, seen: set, exact: bool) -> None:
    """Replace ``module.forward`` (on the instance only) by one that records a row."""
    forward = module.forward
    leaf = next(module.children(), None) is None
    own = [p for p in vars(module).values() if isinstance(p, nn.Parameter)]

    def hooked(x: np.ndarray, *args, **kwargs):
        shape = None if exact or not leaf else output_shape(module, x.shape, name)
        out = forward(x, *args, **kwargs) if shape is None else np.zeros(shape, x.dtype)
        out_shape = _values(out).shape
        blocks.setdefault(name, (type(module).__name__, x.shape, out_shape))
        if leaf or own:
            params = sum(p.size for p in own if id(p) not in seen)
            seen.update(id(p) for p in own)
            macs = layer_macs(module, x.shape, out_shape)
            rows.append(LayerSummary(name, type(module).__name__, x.shape, out_shape, params, macs))
        return out

    module.forward = hooked  # type: ignore[method-assign]


def _named_modules(module: nn.Module, prefix: str = ""):
    yield prefix, module
    for name, child in module.named_children():
        yield from _named_modules(child, f"{prefix}.{name}" if prefix else name)


def summary(
    model: nn.Module, input_size: tuple[int, ...], exact: bool = False, dtype: npt.DTypeLike | None = None
) -> Summary:
    """Each layer's output shape, parameter count and multiply-adds, like ``torchinfo.summary``.

    Runs ``model`` (in eval mode) on ``np.zeros(input_size)``, batch axis included, e.g.
    ``(1, 3, 224, 224)``, recording every leaf module as it runs. The containers' own forward
    code always runs, so branches and skip connections are followed as in training. By
    default a known leaf layer is not computed: it returns zeros of the shape given by the
    same size formulas the layers use (``output_shape``), which keeps VGG-16 to a fraction of
    a second; ``exact=True`` runs every layer for real (a test checks the two agree).
    Multiply-adds are for the whole batch, by the convention of ``layer_macs``. The zeros
    have ``dtype``, by default that of the model's first parameter (else float32). The model
    is left exactly as it was (mode, saved inputs, running statistics).
    """
    input_size = tuple(input_size)
    if not input_size or not all(isinstance(n, numbers.Integral) and n >= 1 for n in input_size):
        raise ValueError(f"summary: input_size must be a tuple of positive ints such as "
                         f"(1, 3, 224, 224) (batch first), got {input_size!r}")
    named = {id(m): (name or type(m).__name__, m) for name, m in _named_modules(model)}
    saved = {key: dict(vars(m)) for key, (_, m) in named.items()}
    rows: list[LayerSummary] = []
    blocks: dict[str, tuple] = {}
    try:
        model.eval()
        seen: set[int] = set()
        for name, module in named.values():
            _instrument(module, name, rows, blocks, seen, exact)
        if dtype is None:
            dtype = next((p.dtype for p in model.parameters()), np.float32)
        out = model(np.zeros(input_size, dtype))
    finally:
        for key, (_, module) in named.items():
            vars(module).clear()
            vars(module).update(saved[key])
    total = sum(p.size for p in model.parameters())
    return Summary(input_size, tuple(_values(out).shape), rows, int(total), blocks)
