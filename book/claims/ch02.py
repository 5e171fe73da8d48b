"""Chapter 2, the convolution operation: the decks' sliding-window examples."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F

from . import Claim

# Deck 001, "Example: Conv. operation on one channel".
DECK_001_INPUT = np.array(
    [[1, 2, 4, 3], [5, 6, 8, 7], [9, 10, 12, 11], [13, 14, 16, 2]], dtype=np.float64
)
DECK_001_KERNEL = np.array([[1, -2], [-3, 4]], dtype=np.float64)

# Deck 004, "Convolution (Discrete 1D)".
DECK_004_SIGNAL = np.array([1.0, 2, 3, 4])
DECK_004_KERNEL = np.array([1.0, 2, 3])


def deck_001_map() -> np.ndarray:
    """The activation map of deck 001's 4x4 input and 2x2 kernel, stride 1."""
    return F.conv2d(DECK_001_INPUT[None, None], DECK_001_KERNEL[None, None])[0, 0]


def _conv2d_output_size(n: int, k: int) -> tuple:
    return F.conv2d(np.zeros((1, 1, n, n)), np.zeros((1, 1, k, k))).shape[2:]


CLAIMS = [
    Claim("ch02_1d_output_length", "004", "Convolution (Discrete 1D): Dim(I) - Dim(W) + 1",
          2, lambda: F.conv1d(DECK_004_SIGNAL[None, None], DECK_004_KERNEL[None, None]).shape[-1],
          unit="outputs"),
    Claim("ch02_7x7_output_size", "000", "Convolution Layer: 3x3 filter on a 7x7 image",
          (5, 5), lambda: _conv2d_output_size(7, 3)),
    Claim("ch02_deck001_output_size", "001", "Stride and receptive field: size of the output",
          (3, 3), lambda: deck_001_map().shape),
    Claim("ch02_deck001_map", "001", "Example: Conv. operation on one channel",
          np.array([[6, 8, 2], [6, 8, 2], [6, 8, -50]]), deck_001_map),
]
