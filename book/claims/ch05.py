"""Chapter 5, padding: the lectures' numbers on zero padding and the output-size formula."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F
from cnnlib import nn
from cnnlib.shapes import conv_output_size

from . import Claim

# Deck 001, "Zero padding": the 3x3 input, and deck 002's 5x5 image inside its zero border.
DECK_001_INPUT = np.array([[1, 2, 1], [4, 2, 3], [2, 1, 1]], np.float64)
DECK_002_IMAGE = np.array([
    [60, 113, 56, 139, 85],
    [73, 121, 54, 84, 128],
    [131, 99, 70, 129, 127],
    [80, 57, 115, 69, 134],
    [104, 126, 123, 95, 130],
], np.float64)


def zero_pad(image: np.ndarray, padding: int) -> np.ndarray:
    """Pad a 2D array the way conv2d does: a 1x1 kernel of weight 1 copies its padded input."""
    identity = np.ones((1, 1, 1, 1), image.dtype)
    return F.conv2d(image[None, None], identity, padding=padding)[0, 0]


def shrinking_sizes(n: int = 32, kernel_size: int = 5, layers: int = 2) -> list[int]:
    """Spatial size after each of ``layers`` unpadded stride-1 convolutions."""
    sizes = [n]
    for _ in range(layers):
        sizes.append(conv_output_size(sizes[-1], kernel_size))
    return sizes


def same_padding(kernel_size: int, n: int = 32) -> int:
    """The padding that keeps an ``n``-long input's size at stride 1, found by trying each."""
    return next(p for p in range(kernel_size) if conv_output_size(n, kernel_size, padding=p) == n)


def output_shape(h: int, kernel_size: int, padding: int = 0, stride: int = 1) -> tuple:
    """(H_out, W_out) of a one-channel convolution run on an h x h input of zeros."""
    x = np.zeros((1, 1, h, h))
    w = np.zeros((1, 1, kernel_size, kernel_size))
    return F.conv2d(x, w, stride=stride, padding=padding).shape[2:]


def keeps_size_3x3(largest: int = 256) -> str:
    """"O = I" when a 3x3, stride 1, pad 1 layer keeps every input size up to ``largest``."""
    changed = [n for n in range(1, largest + 1) if conv_output_size(n, 3, 1, 1) != n]
    return "O = I" if not changed else f"O != I for I = {changed}"


def example_layer() -> nn.Conv2d:
    """Deck 000's example: ten 5x5 filters over a 3-channel input, stride 1, pad 2."""
    return nn.Conv2d(3, 10, 5, stride=1, padding=2)


def example_output_hwc() -> tuple:
    """The example layer's output on a 32x32x3 input, written H x W x C as the slide does."""
    n, c, h, w = example_layer()(np.zeros((1, 3, 32, 32), np.float32)).shape
    return (h, w, c)


def example_params_per_filter() -> int:
    layer = example_layer()
    return layer.weight.data[0].size + 1


def example_params() -> int:
    return sum(p.data.size for p in example_layer().parameters())


def default_conv_on_6x6() -> int:
    """Width of the output of a 3x3 Conv2d left at its default padding, on a 6x6 input."""
    layer = nn.Conv2d(1, 1, 3)
    return layer(np.zeros((1, 1, 6, 6), np.float32)).shape[-1]


def half_padding_1d() -> tuple[np.ndarray, int]:
    signal = np.array([[[1.0, 2, 3, 4]]])
    kernel = np.array([[[1.0, 2, 3]]])
    padded = F.conv1d(signal, np.ones((1, 1, 1)), padding=1)[0, 0]
    return padded, F.conv1d(signal, kernel, padding=1).shape[-1]


CLAIMS = [
    Claim("ch05_shrink_32_by_5x5", "000", "Remember back to...: 32 -> 28 -> 24",
          [32, 28, 24], lambda: shrinking_sizes(32, 5, 2)),
    Claim("ch05_deck001_zero_padded", "001", "Zero padding",
          [[0, 0, 0, 0, 0], [0, 1, 2, 1, 0], [0, 4, 2, 3, 0], [0, 2, 1, 1, 0], [0, 0, 0, 0, 0]],
          lambda: zero_pad(DECK_001_INPUT, 1)),
    Claim("ch05_deck002_padded_image", "002", "CNN insight: sliding window dot product",
          [[0, 0, 0, 0, 0, 0, 0],
           [0, 60, 113, 56, 139, 85, 0],
           [0, 73, 121, 54, 84, 128, 0],
           [0, 131, 99, 70, 129, 127, 0],
           [0, 80, 57, 115, 69, 134, 0],
           [0, 104, 126, 123, 95, 130, 0],
           [0, 0, 0, 0, 0, 0, 0]],
          lambda: zero_pad(DECK_002_IMAGE, 1)),
    Claim("ch05_deck000_7x7_pad1", "000", "In practice: Common to zero pad the border",
          (7, 7), lambda: output_shape(7, 3, padding=1), unit="output (H, W)"),
    Claim("ch05_deck003_7x7_pad1", "003", "Zero Padding",
          (7, 7), lambda: output_shape(7, 3, padding=1), unit="output (H, W)"),
    Claim("ch05_deck002_k3_p1_keeps_size", "002", "Stride 1 with Padding: K = 3, S = 1 gives O = I",
          "O = I", keeps_size_3x3),
    Claim("ch05_same_padding_f357", "000", "zero-padding with (F-1)/2: F = 3, 5, 7",
          [1, 2, 3], lambda: [same_padding(f) for f in (3, 5, 7)]),
    Claim("ch05_example_spatial", "000", "Examples time: (32+2*2-5)/1+1",
          32, lambda: conv_output_size(32, 5, stride=1, padding=2)),
    Claim("ch05_example_output_volume", "000", "Examples time: output volume size",
          (32, 32, 10), example_output_hwc, unit="(H, W, C)"),
    Claim("ch05_example_params_per_filter", "000", "Examples time: parameters per filter",
          76, example_params_per_filter),
    Claim("ch05_example_params", "000", "Examples time: number of parameters in this layer",
          760, example_params),
    Claim("ch05_package_default", "002", "Stride 1 with Padding: packages' default padding",
          6, default_conv_on_6x6,
          erratum=(
              "The slide says most packages (Keras) pad by default so that a layer keeps its "
              "input's size, which would turn a 6x6 input into a 6x6 output. They do not: "
              "Keras's Conv2D defaults to padding='valid', PyTorch's Conv2d (and cnnlib's) to "
              "padding=0, so a 3x3 layer left at its default shrinks 6x6 to 4x4. Ask for "
              "padding=1 (Keras: padding='same') when you want the size kept."
          ),
          unit="output width"),
    Claim("ch05_half_padding_input", "004", "Convolution (Discrete 1D): Half-padding",
          [0, 1, 2, 3, 4, 0], lambda: half_padding_1d()[0]),
    Claim("ch05_half_padding_same_size", "004", "Half-padding (same size output)",
          4, lambda: half_padding_1d()[1], unit="output length"),
]
