"""Chapter 1, from fully connected layers to convolution: the parameter counts of the decks.

Convolution counts come from ``cnnlib.nn.Conv2d`` and output shapes from ``cnnlib.functional``.
A fully connected layer on a whole image is too large to allocate (120 million weights and
more), so its count uses ``linear_weights``, the rule ``nn.Linear`` follows (weight of shape
``(out, in)``); the chapter checks that rule against ``nn.Linear`` on smaller layers.
"""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F
from cnnlib import nn

from . import Claim


def linear_weights(n_in: int, n_out: int) -> int:
    """Weights of ``nn.Linear(n_in, n_out)`` (no bias): its weight has shape (n_out, n_in)."""
    return n_in * n_out


def conv_weights(in_channels: int, out_channels: int, kernel_size: int) -> int:
    """Weights (no bias) of ``nn.Conv2d(in_channels, out_channels, kernel_size)``."""
    return nn.Conv2d(in_channels, out_channels, kernel_size).weight.size


def conv_params(in_channels: int, out_channels: int, kernel_size: int) -> int:
    """Weights and biases of ``nn.Conv2d(in_channels, out_channels, kernel_size)``."""
    layer = nn.Conv2d(in_channels, out_channels, kernel_size)
    return sum(p.size for p in layer.parameters())


def conv_output_shape(image_shape: tuple, out_channels: int, kernel_size: int) -> tuple:
    """(C_out, H_out, W_out) of a stride-1 convolution, by running ``F.conv2d`` on zeros."""
    x = np.zeros((1, *image_shape))
    w = np.zeros((out_channels, image_shape[0], kernel_size, kernel_size))
    return F.conv2d(x, w).shape[1:]


def _size(shape) -> int:
    return int(np.prod(shape))


def _times(*factors) -> str:
    """The product written out for the reader: (3, 32, 32) -> "3 · 32 · 32"."""
    return " · ".join(f"{int(f):,}" for f in factors)


CLAIMS = [
    Claim("ch01_fc_dot_length", "000", "Fully Connected Layer: 32x32x3 image stretched",
          3072, lambda: _size((3, 32, 32)), unit="inputs", how=lambda: _times(3, 32, 32)),
    Claim("ch01_rgb200_inputs", "003", "Why we don't use fully connected networks?",
          120_000, lambda: _size((3, 200, 200)), unit="inputs",
          how=lambda: _times(200, 200, 3)),
    Claim("ch01_rgb200_fc_weights", "003", "Why we don't use fully connected networks?",
          120_000_000, lambda: linear_weights(_size((3, 200, 200)), 1000), unit="weights",
          how=lambda: _times(_size((3, 200, 200)), 1000)),
    Claim("ch01_rgb200_conv_weights", "003", "64 filters of size 5x5x3",
          4800, lambda: conv_weights(3, 64, 5), unit="weights", how=lambda: _times(64, 5, 5, 3)),
    Claim("ch01_gray200_fc_billions", "004", "200x200 image, 40K hidden units",
          2, lambda: linear_weights(200 * 200, 40_000) / 1e9, rounded=0,
          unit="billion parameters"),
    Claim("ch01_table_output_units", "003", "Fully connected vs convolution layer (table)",
          4368, lambda: _size(conv_output_shape((3, 32, 32), 6, 5)), unit="output units",
          erratum=(
              "Six 5x5 filters on a 32x32x3 input give 28 x 28 x 6 = 4,704 output units. "
              "The slide's own weight count agrees with 4,704: 14,450,688 = 3,072 x 4,704, "
              "while 14,450,688 / 4,368 is not a whole number."
          )),
    Claim("ch01_table_fc_weights", "003", "Fully connected vs convolution layer (table)",
          14_450_688,
          lambda: linear_weights(3072, _size(conv_output_shape((3, 32, 32), 6, 5))),
          unit="weights", how=lambda: _times(3072, *conv_output_shape((3, 32, 32), 6, 5))),
    Claim("ch01_table_conv_weights", "003", "Fully connected vs convolution layer (table)",
          450, lambda: conv_weights(3, 6, 5), unit="weights", how=lambda: _times(6, 5, 5, 3)),
    Claim("ch01_mnist_filter_params", "001", "Parameters: each filter",
          28, lambda: conv_params(3, 1, 3), unit="parameters",
          how=lambda: _times(3, 3, 3) + " + 1"),
    Claim("ch01_mnist_output_shape", "001", "Parameters: output size",
          (32, 26, 26), lambda: conv_output_shape((3, 28, 28), 32, 3)),
    Claim("ch01_mnist_nodes", "001", "Parameters: nodes of the layer",
          21_632, lambda: _size(conv_output_shape((3, 28, 28), 32, 3)), unit="nodes",
          how=lambda: _times(*conv_output_shape((3, 28, 28), 32, 3))),
    Claim("ch01_mnist_conv_params", "001", "Parameters: total",
          896, lambda: conv_params(3, 32, 3), unit="parameters",
          how=lambda: _times(32, 3, 3, 3) + " + 32"),
    Claim("ch01_mnist_fc_weights", "001", "Parameters: a feedforward layer instead",
          50_878_464,
          lambda: linear_weights(_size((3, 28, 28)), _size(conv_output_shape((3, 28, 28), 32, 3))),
          unit="weights", how=lambda: _times(3, 28, 28, *conv_output_shape((3, 28, 28), 32, 3))),
]
