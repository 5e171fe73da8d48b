"""Chapter 6, pooling: the decks' worked 4x4 examples, a TensorFlow printout, and shift
invariance."""

from __future__ import annotations

import numpy as np

import cnnlib.functional as F
from cnnlib import nn

from . import Claim

# Deck 001, "Max pooling" (the same 4x4 input as its convolution example).
DECK_001 = np.array([[1, 2, 4, 3], [5, 6, 8, 7], [9, 10, 12, 11], [13, 14, 16, 2]], np.float64)
# Deck 000, "MAX POOLING": the export kept only the result (6 8 / 3 4). The slide is the
# CS231n figure, whose input is this single depth slice.
DECK_000 = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float64)
# Deck 004, "Pooling in action".
DECK_004 = np.array([[38, 20, 77, 33], [36, 49, 12, 48], [26, 65, 100, 40], [90, 31, 43, 18]],
                    np.float64)

# Deck 004's TensorFlow session prints a (1, 4, 4, 1) NHWC tensor in two columns: the left
# column holds the first eight values (rows 0 and 1), the right one the last eight.
TF_LEFT = [0.58009243, 1.1895669, 2.6777048, 0.15597591,
           -0.94100916, -0.7437242, -1.0578039, -0.30651447]
TF_RIGHT = [0.53753567, 0.10521288, -0.43827865, -0.7727399,
            -0.42974523, -1.669584, -0.92768306, -0.19861951]
TF_INPUT = np.array(TF_LEFT + TF_RIGHT, np.float32).reshape(1, 4, 4, 1).transpose(0, 3, 1, 2)

# Deck 003's invariance figure (Goodfellow et al., Deep Learning, figure 9.8): a detector
# row, max pooled with width 3 and stride 1; the figure shows the middle four values.
GOODFELLOW_ROW = np.array([0.0, 0.3, 0.1, 1.0, 0.2, 0.1, 0.0])
SHOWN = slice(2, 6)


def pool(x: np.ndarray, kind: str = "max") -> np.ndarray:
    """2x2, stride 2 pooling of one 2D array."""
    op = F.max_pool2d if kind == "max" else F.avg_pool2d
    return op(x[None, None], 2)[0, 0]


def round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to whole numbers, halves up (42.5 -> 43), as people do by hand.

    (``np.round`` rounds halves to the nearest even number: 42.5 -> 42.)
    """
    return np.floor(np.asarray(x) + 0.5)


def shift_right(row: np.ndarray) -> np.ndarray:
    """Move every value one place to the right; a zero comes in on the left."""
    return np.concatenate([[0.0], row[:-1]])


def max_pool_row(row: np.ndarray) -> np.ndarray:
    """Max pooling of a 1D row with width 3, stride 1 and one value of padding per side."""
    return F.max_pool2d(row[None, None, None], (1, 3), stride=1, padding=(0, 1))[0, 0, 0]


def goodfellow_changed(stage: str) -> float:
    """Fraction of the figure's four shown values that change when the input shifts right."""
    before, after = GOODFELLOW_ROW, shift_right(GOODFELLOW_ROW)
    if stage == "pooling":
        before, after = max_pool_row(before), max_pool_row(after)
    return float(np.mean(before[SHOWN] != after[SHOWN]))


def pool_parameters(layer: nn.Module) -> int:
    return sum(p.data.size for p in layer.parameters())


CLAIMS = [
    Claim("ch06_deck001_max_pool", "001", "Max pooling (2x2, stride 2)",
          [[6, 8], [14, 16]], lambda: pool(DECK_001)),
    Claim("ch06_deck000_max_pool", "000", "MAX POOLING: max pool with 2x2 filters and stride 2",
          [[6, 8], [3, 4]], lambda: pool(DECK_000)),
    Claim("ch06_deck004_max_pool", "004", "Pooling in action: Max Pooling",
          [[49, 77], [90, 100]], lambda: pool(DECK_004)),
    Claim("ch06_deck004_avg_pool", "004",
          "Pooling in action: Average Pooling (means rounded, halves up)",
          [[36, 43], [53, 50]], lambda: round_half_up(pool(DECK_004, "avg"))),
    Claim("ch06_deck000_no_parameters", "000", "MAX POOLING: No learnable parameters",
          0, lambda: pool_parameters(nn.MaxPool2d(2))),
    Claim("ch06_deck004_no_parameters", "004", "Pooling in action: It introduces no parameters",
          0, lambda: pool_parameters(nn.AvgPool2d(2))),
    Claim("ch06_deck004_tf_pooled", "004", "Pooling (Max Pooling) in Tensorflow: print(m)",
          np.float32([1.1895669, 2.6777048, 0.53753567, -0.19861951]),
          lambda: F.max_pool2d(TF_INPUT, 2).ravel()),
    Claim("ch06_deck004_tf_gradient", "004",
          "Pooling (Max Pooling) in Tensorflow: print(gradInput)",
          [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]],
          lambda: F.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), TF_INPUT, 2)[0, 0]),
    Claim("ch06_goodfellow_detector_changed", "003",
          "Pooling: every value in the bottom (detector) row has changed",
          1.0, lambda: goodfellow_changed("detector"), unit="(fraction of the four values)"),
    Claim("ch06_goodfellow_pooled_changed", "003",
          "Pooling: only half of the values in the top (pooled) row have changed",
          0.5, lambda: goodfellow_changed("pooling"), unit="(fraction of the four values)"),
    Claim("ch06_mobilenet_global_pool", "002",
          "MobileNet: Avg Pool 7x7 on 7x7x1024, then FC on 1x1x1024",
          (1, 1, 1024),
          lambda: tuple(np.moveaxis(F.avg_pool2d(np.zeros((1, 1024, 7, 7)), 7)[0], 0, -1).shape),
          unit="(H, W, C)"),
]
