"""Chapter 3, channels and batches: shapes of multi-channel layers and deck 004's example."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F
from cnnlib import nn

from . import Claim

# Deck 004, "Spatial Dimension - Convolution": I is 2 x 4 x 4 (channels, height, width).
DECK_004_IMAGE = np.array([
    [[1, -2, 2, 2], [2, 1, 3, -2], [-2, 3, -3, 1], [-1, 2, -4, 2]],
    [[3, 0, 0, 0], [-2, -2, 1, -1], [2, -1, 3, 1], [5, -2, 0, 1]],
], dtype=np.float64)
# W is 2 x 2 x 2 x 2 (nOutputPlane x nInputPlane x kH x kW); the slides label the four
# kernels W[1, 1], W[2, 1], W[1, 2], W[2, 2] (1-based: output plane, then input plane).
DECK_004_WEIGHT = np.array([
    [[[1, -2], [-2, 1]], [[1, 0], [0, 1]]],  # output plane 1: W[1, 1], W[1, 2]
    [[[3, 1], [2, 2]], [[0, 0], [0, 4]]],    # output plane 2: W[2, 1], W[2, 2]
], dtype=np.float64)
DECK_004_BIAS = np.array([0.1, 0.2])


def deck_004_output() -> np.ndarray:
    """O = 2 x 3 x 3, the deck's example through ``F.conv2d``."""
    return F.conv2d(DECK_004_IMAGE[None], DECK_004_WEIGHT, DECK_004_BIAS)[0]


# The deck's TensorFlow session types I as one (1, H, W, C) = (1, 4, 4, 2) tensor, as printed
# on the slide, and fills the (K_h, K_w, C_in, C_out) kernel with W's numbers in W's own order.
DECK_004_TF_INPUT = np.array([[
    [[1, -2], [2, 1], [-2, 3], [-1, 2]],
    [[2, 2], [3, -2], [-3, 1], [-4, 2]],
    [[3, 0], [-2, -2], [2, -1], [5, -2]],
    [[0, 0], [1, -1], [3, 1], [0, 1]],
]], dtype=np.float64)


def deck_004_tf_session() -> np.ndarray:
    """What the deck's TensorFlow session computes, laid out as it prints it:
    (H, W, C).

    TensorFlow's (1, H, W, C) input and (K_h, K_w, C_in, C_out) kernel are
    transposed to cnnlib's (N, C, H, W) and (C_out, C_in, K_h, K_w) and run
    through ``F.conv2d``.
    """
    # W's numbers poured in, in order
    kernel_hwio = DECK_004_WEIGHT.reshape(2, 2, 2, 2)
    x = DECK_004_TF_INPUT.transpose(0, 3, 1, 2)
    out = F.conv2d(x, kernel_hwio.transpose(3, 2, 0, 1), DECK_004_BIAS)
    return out[0].transpose(1, 2, 0)


def _batch_shape(image_shape: tuple, out_channels: int, kernel_size: int) -> tuple:
    layer = nn.Conv2d(image_shape[1], out_channels, kernel_size, dtype=np.float64)
    return layer(np.zeros(image_shape)).shape


def _one_shape(image_shape: tuple, out_channels: int, kernel_size: int) -> tuple:
    return _batch_shape((1, *image_shape), out_channels, kernel_size)[1:]

# What deck 004 prints: O[1], O[2] as C x H x W planes, and the TensorFlow session's print(O)
# as (H W) x C, one line per position holding its two channels.
SLIDE_O1 = np.array([[-3.1, -3.9, -10.9], [4.1, -12.9, 16.1], [-3.9, 0.1, 9.1]])
SLIDE_O2 = np.array([[-0.8, 8.2, 6.2], [5.2, 18.2, 7.2], [-8.8, 2.2, -7.8]])
SLIDE_TF_PRINT = np.array([[17.1, -4.8], [3.1, 3.2], [-15.9, 16.2],
                           [10.1, -8.8], [-5.9, -16.8], [-4.9, 1.2],
                           [1.1, -11.8], [5.1, 4.2], [-20.1, 2.2]])

CLAIMS = [
    Claim("ch03_filter_dot_length", "000", "The brain/neuron view of CONV Layer",
          75, lambda: nn.Conv2d(3, 1, 5).weight.data[0].size, unit="numbers per dot product"),
    Claim("ch03_six_filters_output", "000", "Consider 6 filters, each 3x5x5",
          (6, 28, 28), lambda: _one_shape((3, 32, 32), 6, 5)),
    Claim("ch03_batch_output", "000", "2x3x32x32 batch of images",
          (2, 6, 28, 28), lambda: _batch_shape((2, 3, 32, 32), 6, 5)),
    Claim("ch03_five_filters_grid", "000", "neurons arranged in a 3D grid (28x28x5)",
          (28, 28, 5), lambda: (*_one_shape((3, 32, 32), 5, 5)[1:], 5)),
    Claim("ch03_16x16_output", "004", "Convolution: n in R^(16x16), 8 filters of 5x5",
          (8, 12, 12), lambda: _one_shape((1, 16, 16), 8, 5)),
    Claim("ch03_16x16_weight_shape", "004", "Convolution: n in R^(16x16), 8 filters of 5x5",
          (1, 8, 5, 5), lambda: nn.Conv2d(1, 8, 5).weight.shape,
          erratum=(
              "The slide lists the input plane first. In the deck's own order, "
              "nOutputPlane x nInputPlane x kH x kW, as in PyTorch, the weight is 8 x 1 x 5 x 5 "
              "(TensorFlow's session prints (5, 5, 1, 8): kH x kW x in x out)."
          )),
    Claim("ch03_deck004_o1", "004", "Spatial Dimension - Convolution: O[1, :, :]",
          SLIDE_O1, lambda: deck_004_output()[0], rounded=1,
          erratum=(
              "The first value is 2 + 1 + 0.1 = 3.1: the first channel's window gives "
              "1 + 4 - 4 + 1 = 2, the second's 3 + 0 + 0 - 2 = 1, and the bias is 0.1. "
              "The minus sign is a typo; the other eight values agree."
          )),
    Claim("ch03_deck004_o2", "004", "Spatial Dimension - Convolution: O[2, :, :]",
          SLIDE_O2, lambda: deck_004_output()[1], rounded=1),
    # The session prints O as (H, W, C): one line per position, holding its two channels.
    Claim("ch03_deck004_tf_session", "004", "Convolution: the TensorFlow session's print(O)",
          SLIDE_TF_PRINT, lambda: deck_004_tf_session().reshape(-1, 2), rounded=1,
          erratum=(
              "Running the session's tensors as typed reproduces 17 of its 18 printed values; "
              "the exception, row 3, column 3 of output channel 1 (the first value of the "
              "last line printed), is 20.1, not -20.1: its window sums to 20, and the bias "
              "is 0.1."
          )),
]
