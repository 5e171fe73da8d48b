"""Block diagrams drawn from cnnlib's own modules: an inception module's four branches and a
residual block's main path and shortcut, each box labelled from the layer it stands for."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from cnnlib import nn

COLOURS = {"Conv2d": "#c6dbef", "MaxPool2d": "#fdd0a2", "BatchNorm2d": "#e5f5e0",
           "other": "#f0f0f0"}


def label(layer) -> str:
    """A layer as a diagram box says it: 'conv 3x3, 128' or 'max pool 3x3'."""
    name = type(layer).__name__
    if name == "Conv2d":
        k = layer.kernel_size[0]
        stride = f", stride {layer.stride[0]}" if layer.stride[0] > 1 else ""
        return f"conv {k}x{k}{stride}, {layer.out_channels}"
    if name == "MaxPool2d":
        k = layer.kernel_size[0] if isinstance(layer.kernel_size, tuple) else layer.kernel_size
        return f"max pool {k}x{k}"
    if name == "BatchNorm2d":
        return "batch norm"
    return name


def _layers(module) -> list:
    """The boxes of a branch: its layers in order, without the ReLUs."""
    layers = [layer for _, layer in module.named_children()] \
        if isinstance(module, nn.Sequential) else [module]
    return [layer for layer in layers if type(layer).__name__ != "ReLU"]


def _box(ax, x, y, text, colour, width=2.0, height=0.55):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04", facecolor=colour, edgecolor="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=7)


def _arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="0.3", lw=0.8))


def _column(ax, x, top, layers) -> float:
    """Boxes for ``layers`` down from ``top`` at ``x``; returns the y of the last box."""
    y = top
    for i, layer in enumerate(layers):
        _box(ax, x, y, label(layer), COLOURS.get(type(layer).__name__, COLOURS["other"]))
        if i:
            _arrow(ax, (x, y + 0.95 - 0.28), (x, y + 0.28))
        y -= 0.95
    return y + 0.95


def inception_diagram(block, in_channels: int):
    """Figure: the input, the four branches of ``block`` side by side, their concatenation."""
    branches = [block.branch1, block.branch2, block.branch3, block.branch4]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    xs = [-3.3, -1.1, 1.1, 3.3]
    _box(ax, 0, 3.2, f"input, {in_channels} channels", COLOURS["other"], width=8.6)
    bottom = min(_column(ax, x, 2.0, _layers(b)) for x, b in zip(xs, branches))
    out = bottom - 1.1
    _box(ax, 0, out, f"concatenate along the channels: {block.out_channels} channels",
         COLOURS["other"], width=8.6)
    for x, branch in zip(xs, branches):
        last = _column(ax, x, 2.0, _layers(branch))
        _arrow(ax, (x, 3.2 - 0.28), (x, 2.0 + 0.28))
        _arrow(ax, (x, last - 0.28), (x, out + 0.28))
    ax.set_xlim(-4.5, 4.5)
    ax.set_ylim(out - 0.5, 3.6)
    ax.axis("off")
    return fig


def residual_diagram(block):
    """Figure: the block's main path (left) and its shortcut (right) meeting at the addition."""
    main = [block.conv1, block.bn1, block.conv2, block.bn2]
    shortcut = _layers(block.shortcut) if hasattr(block, "shortcut") else []
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    _box(ax, 1.3, 4.1, f"input x, {block.conv1.in_channels} channels", COLOURS["other"],
         width=4.2)
    last = _column(ax, 0, 3.0, main[:2])
    ax.text(0.15, 3.0 - 1.45, "ReLU", fontsize=7, color="0.3", va="center")
    last = _column(ax, 0, 1.1, main[2:])
    _arrow(ax, (0, 3.0 - 0.95 - 0.28), (0, 1.1 + 0.28))
    _arrow(ax, (0, 4.1 - 0.28), (0, 3.0 + 0.28))
    add_y = last - 1.2
    _box(ax, 1.3, add_y, "add, then ReLU", COLOURS["other"], width=4.2)
    _arrow(ax, (0, last - 0.28), (0, add_y + 0.28))
    if shortcut:
        end = _column(ax, 2.6, 2.0, shortcut)
        _arrow(ax, (2.6, 4.1 - 0.28), (2.6, 2.0 + 0.28))
        _arrow(ax, (2.6, end - 0.28), (2.6, add_y + 0.28))
    else:
        _arrow(ax, (2.6, 4.1 - 0.28), (2.6, add_y + 0.28))
        ax.text(2.7, 1.5, "identity", fontsize=7, color="0.3")
    ax.set_xlim(-1.5, 4)
    ax.set_ylim(add_y - 0.5, 4.5)
    ax.axis("off")
    return fig
