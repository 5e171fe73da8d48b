"""Chapter 7, backpropagation: deck 002's dot-product accounting, deck 004's 1D backward
example, its TensorFlow session and its convolution matrix."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F

from . import Claim

# Deck 002, "ConvNet backpropagation = dot product accounting": x is 3x3, w is 2x2, h is 2x2.
# Each x entry is coded by its 1-based index, x_ij = 10 i + j, so a product names its factor.
X_CODES = np.array([[11.0, 12, 13], [21, 22, 23], [31, 32, 33]])

# Deck 004's 1D example.
SIGNAL = np.array([1.0, 2, 3, 4])
KERNEL = np.array([1.0, 2, 3])
GRAD_OUT = np.array([1.0, 2])

# Deck 004's TensorFlow session: n = tf.random_normal((1, 4, 1)), nextgrad of shape (1, 2, 1).
TF_N = np.float32([0.20350695, -0.31481498, -0.85656077, 0.5981919])
TF_NEXTGRAD = np.float32([-0.47567356, -2.3547919])


def unit(shape: tuple, index: tuple) -> np.ndarray:
    """An array of zeros with a single 1 at ``index``."""
    e = np.zeros(shape)
    e[index] = 1.0
    return e


def accounting_forward() -> np.ndarray:
    """Row h_kl, column w_mn: the x (by its code) that multiplies w_mn in h_kl.

    Found by the forward pass: with w = 1 at (m, n) and 0 elsewhere, h_kl is that x.
    """
    table = np.zeros((4, 4))
    for col, mn in enumerate(np.ndindex(2, 2)):
        h = F.conv2d(X_CODES[None, None], unit((1, 1, 2, 2), (0, 0, *mn)))[0, 0]
        table[:, col] = h.ravel()
    return table


def accounting_backward() -> np.ndarray:
    """Row dw_mn, column dh_kl: the x (by its code) that multiplies dh_kl in dw_mn.

    Found by the backward pass: with dL/dh = 1 at (k, l) and 0 elsewhere, dL/dw is that x.
    """
    table = np.zeros((4, 4))
    w = np.zeros((1, 1, 2, 2))
    for col, kl in enumerate(np.ndindex(2, 2)):
        _, grad_w, _ = F.conv2d_backward(unit((1, 1, 2, 2), (0, 0, *kl)), X_CODES[None, None], w)
        table[:, col] = grad_w.ravel()
    return table


def jacobian_1d(wrt: str) -> np.ndarray:
    """dO/dI (2 x 4) or dO/dW (2 x 3) of deck 004's example, one row per output, each row
    the backward pass of a unit output gradient."""
    rows = []
    for k in range(2):
        grad_x, grad_w, _ = F.conv1d_backward(
            unit((1, 1, 2), (0, 0, k)), SIGNAL[None, None], KERNEL[None, None])
        rows.append((grad_x if wrt == "input" else grad_w).ravel())
    return np.array(rows)


def grads_1d() -> tuple[np.ndarray, np.ndarray]:
    grad_x, grad_w, _ = F.conv1d_backward(GRAD_OUT[None, None], SIGNAL[None, None],
                                          KERNEL[None, None])
    return grad_x.ravel(), grad_w.ravel()


def weight_padded() -> np.ndarray:
    """The slide's W_pad: the kernel with len(dL/dO) - 1 = 1 zero on each side."""
    return F.conv1d(KERNEL[None, None], np.ones((1, 1, 1)), padding=len(GRAD_OUT) - 1).ravel()


def conv_matrix(kernel: np.ndarray, size: int = 4) -> np.ndarray:
    """The matrix C with conv2d(x, kernel).ravel() == C @ x.ravel() for a size x size input:
    column k is the output for the k-th unit image."""
    columns = [F.conv2d(unit((1, 1, size, size), (0, 0, *ij)), kernel[None, None]).ravel()
               for ij in np.ndindex(size, size)]
    return np.stack(columns, axis=1)


# The kernel entries w_{i,j} coded 1..9 row by row (w_00 = 1, ..., w_22 = 9), 0 for a zero.
W_CODES = np.arange(1.0, 10).reshape(3, 3)
SLIDE_MATRIX = [
    [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0],
    [0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0],
    [0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9],
]

ACCOUNTING = [[11, 12, 21, 22], [12, 13, 22, 23], [21, 22, 31, 32], [22, 23, 32, 33]]

CLAIMS = [
    Claim("ch07_accounting_h", "002",
          "ConvNet backpropagation = dot product accounting: h11 ... h22 "
          "(the x multiplying w11, w12, w21, w22)",
          ACCOUNTING, accounting_forward),
    Claim("ch07_accounting_dw", "002",
          "ConvNet backpropagation = dot product accounting: dw11 ... dw22 "
          "(the x multiplying dh11, dh12, dh21, dh22)",
          ACCOUNTING, accounting_backward),
    Claim("ch07_1d_dO_dI", "004", "Convolution - Backward: dO/dI with W = [1, 2, 3]",
          [[1, 2, 3, 0], [0, 1, 2, 3]], lambda: jacobian_1d("input")),
    Claim("ch07_1d_dO_dW", "004", "Convolution - Backward: dO/dW with I = [1, 2, 3, 4]",
          [[1, 2, 3], [2, 3, 4]], lambda: jacobian_1d("weight")),
    Claim("ch07_1d_grad_w", "004",
          "Convolution - Backward: dL/dW = Correlation(I, LO), the slide's sums for "
          "I = [1, 2, 3, 4], LO = [1, 2]",
          [1 * 1 + 2 * 2, 1 * 2 + 2 * 3, 1 * 3 + 2 * 4], lambda: grads_1d()[1]),
    Claim("ch07_1d_w_pad", "004", "Convolution - Backward: W_pad",
          [0, 1, 2, 3, 0], weight_padded),
    Claim("ch07_1d_grad_i", "004",
          "Convolution - Backward: dL/dI = Correlation(W_pad, LO_flip), the slide's sums for "
          "W = [1, 2, 3], LO = [1, 2]",
          [1 * 1, 1 * 2 + 2 * 1, 1 * 3 + 2 * 2, 2 * 3], lambda: grads_1d()[0]),
    Claim("ch07_tf_grad_weight", "004", "Convolution - Backward: print(gradWeight) (TensorFlow)",
          np.float32([0.6445209, 2.1667714, -1.0011742]),
          lambda: F.conv1d_backward(TF_NEXTGRAD[None, None], TF_N[None, None],
                                    np.zeros((1, 1, 3), np.float32))[1].ravel()),
    Claim("ch07_tf_grad_weight_as_conv", "004",
          "Convolution - Backward: conv1_back(n) with kernel nextgrad (TensorFlow)",
          np.float32([0.6445209, 2.1667714, -1.0011742]),
          lambda: F.conv1d(TF_N[None, None], TF_NEXTGRAD[None, None]).ravel()),
    Claim("ch07_conv_matrix", "004",
          "Convolution: a 3x3 kernel over a 4x4 input as a 4 x 16 matrix "
          "(w_00 ... w_22 coded 1 ... 9)",
          SLIDE_MATRIX, lambda: conv_matrix(W_CODES)),
]
