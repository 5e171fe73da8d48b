"""Chapter 8, everything is a convolution: deck 004's transposed convolution and deck 002's
depthwise-separable multiplication count."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F
from cnnlib import models

from . import Claim

# Deck 004, "Convolution" (TensorFlow session): the 3x3 kernel drawn by tf.random_uniform,
# the 2x2 output r of a stride-2 valid convolution of a 5x5 image, and the 5x5 array the
# slide prints twice, once as Conv2DTranspose(r) and once as the conv's input gradient. The
# export prints the rows in two columns (rows 0, 1, 4 on the left, 2, 3 on the right); here
# they are in order.
DECK_004_KERNEL = np.float32([[0.13429713, 1.9649408, 0.74939513],
                              [0.6982393, 1.2397809, 1.4247327],
                              [1.5534406, 0.1190145, 1.3256309]])
DECK_004_R = np.float32([[25.535583, 28.583742], [23.470192, 20.622599]])
DECK_004_PRINTED = np.float32([
    [3.4293556, 50.17591, 22.974957, 56.16536, 21.420517],
    [17.829948, 31.65853, 56.339676, 35.437576, 40.724194],
    [42.819992, 49.156643, 98.61191, 43.924065, 53.345966],
    [16.387812, 29.097897, 47.83826, 25.567505, 29.381691],
    [36.45955, 2.7932932, 63.148792, 2.4543884, 27.337954],
])


def deck_004_transposed() -> np.ndarray:
    """Conv2DTranspose(1, [3, 3], [2, 2], "valid") of r: (2, 2) -> (5, 5), in float32."""
    r, w = DECK_004_R[None, None], DECK_004_KERNEL[None, None]
    return F.conv_transpose2d(r, w, stride=2)[0, 0]


def deck_004_input_gradient() -> np.ndarray:
    """The input gradient of the stride-2 conv of a 5x5 image, for grad_out = r."""
    r, w = DECK_004_R[None, None], DECK_004_KERNEL[None, None]
    image = np.zeros((1, 1, 5, 5), np.float32)  # the values of x do not enter dL/dx
    grad_x, _, _ = F.conv2d_backward(r, image, w, stride=2)
    return grad_x[0, 0]


def conv_matrix(weight: np.ndarray, in_size: int) -> np.ndarray:
    """The matrix C of a single-channel valid convolution with ``weight`` (1, 1, K, K) on an
    ``in_size`` x ``in_size`` input, built column by column: column k is the flattened output
    for the k-th unit image (a single 1 at pixel k). Shape (H_out W_out, H W)."""
    units = np.eye(in_size * in_size).reshape(-1, 1, in_size, in_size)
    return F.conv2d(units, weight).reshape(in_size * in_size, -1).T


def _separable(part: str) -> int:
    # Deck 002: 256 filters of 5x5x3 on a 3-channel input, each giving an 8x8 output.
    return models.separable_multiplications(3, 256, 5, 8)[part]


CLAIMS = [
    Claim(
        key="ch08_tconv_deck004_transpose",
        deck="004",
        where="Convolution: Conv2DTranspose of r, stride 2",
        says=DECK_004_PRINTED,
        compute=deck_004_transposed,
    ),
    Claim(
        key="ch08_tconv_deck004_backward",
        deck="004",
        where="Normal Convolution Backward pass, stride 2",
        says=DECK_004_PRINTED,
        compute=deck_004_input_gradient,
    ),
    Claim(
        key="ch08_tconv_matrix_shape",
        deck="004",
        where="Convolution as a matrix: 3x3 kernel over a 4x4 input",
        says=(4, 16),
        compute=lambda: conv_matrix(np.ones((1, 1, 3, 3)), in_size=4).shape,
    ),
    Claim(
        key="ch08_separable_standard_mults",
        deck="002",
        where="MobileNet: 256 filters of 5x5x3, 8x8 output",
        says=1_228_800,
        compute=lambda: _separable("standard"),
    ),
    Claim(
        key="ch08_separable_depthwise_mults",
        deck="002",
        where="MobileNet, step 1: 3 depthwise 5x5x1 filters, 8x8 output",
        says=4_800,
        compute=lambda: _separable("depthwise"),
    ),
    Claim(
        key="ch08_separable_pointwise_mults",
        deck="002",
        where="MobileNet, step 2: 256 pointwise 1x1x3 filters, 8x8 output",
        says=49_152,
        compute=lambda: _separable("pointwise"),
    ),
    Claim(
        key="ch08_separable_total_mults",
        deck="002",
        where="MobileNet: DW+S multiplications",
        says=52_952,
        compute=lambda: _separable("separable"),
        erratum=(
            "The slide's own two steps add up to 4,800 + 49,152 = 53,952: the total has a "
            "typo in its thousands digit. The conclusion stands: the two steps cost a "
            "small fraction of the standard convolution's multiplications."
        ),
    ),
]
