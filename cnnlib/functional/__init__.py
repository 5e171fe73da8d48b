"""Pure functions on NumPy arrays, named and laid out (NCHW) as ``torch.nn.functional``.

Each layer comes with a backward partner taking the gradient of the output and the
forward's inputs: ``conv2d`` / ``conv2d_backward(grad_out, x, weight, ...)``.
"""

from .activation import relu, relu_backward
from .adaptive import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)
from .conv import conv1d, conv2d
from .conv_backward import conv1d_backward, conv2d_backward, conv_transpose2d_backward
from .conv_transpose import conv_transpose2d
from .linear import linear, linear_backward
from .loss import cross_entropy, cross_entropy_backward, nll_loss, nll_loss_backward
from .naive import avg_pool2d_naive, conv2d_naive, max_pool2d_naive
from .normalization import batch_norm, batch_norm_backward, dropout, dropout_backward, native_batch_norm
from .padding import pad, pad_backward
from .pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .softmax import log_softmax, log_softmax_backward, softmax, softmax_backward
from .unpool import max_unpool2d, max_unpool2d_backward

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward",
    "conv_transpose2d", "conv_transpose2d_backward", "pad", "pad_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "max_unpool2d", "max_unpool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "batch_norm", "batch_norm_backward", "native_batch_norm", "dropout", "dropout_backward",
    "linear", "linear_backward", "relu", "relu_backward",
    "cross_entropy", "cross_entropy_backward", "nll_loss", "nll_loss_backward",
    "log_softmax", "log_softmax_backward", "softmax", "softmax_backward",
    "conv2d_naive", "max_pool2d_naive", "avg_pool2d_naive",
]
