"""Chapter 4, stride and output size: the decks' output sizes, through cnnlib."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F
from cnnlib import nn
from cnnlib.shapes import conv_output_size

from . import Claim


def exact_output_size(n: int, f: int, stride: int) -> float:
    """(N - F)/S + 1 before any rounding, as the slides write it."""
    return (n - f) / stride + 1


def _formula(n: int, f: int, stride: int) -> str:
    """The slides' (N - F)/S + 1 with the numbers filled in."""
    return f"({n} - {f})/{stride} + 1"


def _map_size(n: int, kernel_size: int, stride: int = 1, channels: int = 1) -> tuple:
    """The activation map of one filter, by running ``nn.Conv2d`` on zeros."""
    layer = nn.Conv2d(channels, 1, kernel_size, stride=stride, dtype=np.float64)
    return layer(np.zeros((1, channels, n, n))).shape[2:]


def _size_by_conv(n: int, f: int, stride: int) -> int:
    return F.conv2d(np.zeros((1, 1, n, n)), np.zeros((1, 1, f, f)), stride=stride).shape[-1]


CLAIMS = [
    Claim("ch04_7x7_stride1_deck000", "000", "Output size: stride 1", 5,
          lambda: conv_output_size(7, 3, stride=1, strict=True), how=lambda: _formula(7, 3, 1)),
    Claim("ch04_7x7_stride2_deck000", "000", "Output size: stride 2", 3,
          lambda: conv_output_size(7, 3, stride=2, strict=True), how=lambda: _formula(7, 3, 2)),
    Claim("ch04_7x7_stride3_deck000", "000", "Output size: stride 3", 2.33,
          lambda: exact_output_size(7, 3, 3), rounded=2, how=lambda: _formula(7, 3, 3)),
    Claim("ch04_7x7_stride1_deck003", "003", "Stride: 7x7 input, 3x3 filter, stride 1", 5,
          lambda: _size_by_conv(7, 3, 1)),
    Claim("ch04_7x7_stride2_deck003", "003", "Stride: 7x7 input, 3x3 filter, stride 2", 3,
          lambda: _size_by_conv(7, 3, 2)),
    Claim("ch04_28_stride2", "001", "Example: (3,28,28), 3x3 kernel, stride 2", (13, 13),
          lambda: _map_size(28, 3, stride=2, channels=3)),
    Claim("ch04_6x6_3x3", "002", "Convolution reduces output size", (4, 4),
          lambda: _map_size(6, 3)),
]
