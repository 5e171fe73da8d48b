"""Pure functions on NumPy arrays, named and laid out (NCHW) as ``torch.nn.functional``."""

from .conv import conv1d, conv1d_backward, conv2d, conv2d_backward
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward",
    "conv_transpose2d", "conv_transpose2d_backward",
]
