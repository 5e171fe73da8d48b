"""``ResidualBlock``: ResNet's basic block, ``relu(F(x) + shortcut(x))``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .. import functional as F
from .batchnorm import BatchNorm2d
from .container import Identity, Sequential
from .conv import Conv2d
from .module import Module


class ResidualBlock(Module):
    """ResNet's basic block (He et al. 2016), as torchvision's ``BasicBlock``.

    ``out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with 3x3
    convolutions (padding 1, no bias: BatchNorm's shift takes its place). conv1
    carries the stride.
    The shortcut is the identity when the shape is unchanged, otherwise a 1x1
    convolution with the same stride followed by BatchNorm2d
    (a ``Sequential`` of the two).

    x: (N, C_in, H, W) -> (N, C_out, H_out, W_out),
    ``H_out = floor((H - 1) / stride) + 1``.
    The backward pass adds the gradients of both paths, which is what lets them
    flow.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int | tuple[int, int] = 1,
        *,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, 1,
                            bias=False, dtype=dtype)
        self.bn1 = BatchNorm2d(out_channels, dtype=dtype)
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, 1,
                            bias=False, dtype=dtype)
        self.bn2 = BatchNorm2d(out_channels, dtype=dtype)
        if self.conv1.stride != (1, 1) or in_channels != out_channels:
            self.shortcut: Module = Sequential(
                Conv2d(in_channels, out_channels, 1, stride, bias=False,
                       dtype=dtype),
                BatchNorm2d(out_channels, dtype=dtype),
            )
        else:
            self.shortcut = Identity()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._hidden = self.bn1(self.conv1(x))  # kept for the ReLUs' backward
        main = self.bn2(self.conv2(F.relu(self._hidden)))
        self._sum = main + self.shortcut(x)
        return F.relu(self._sum)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_sum = F.relu_backward(grad_out, self._saved("_sum"))
        grad_hidden = self.conv2.backward(self.bn2.backward(grad_sum))
        grad_hidden = F.relu_backward(grad_hidden, self._saved("_hidden"))
        grad_main = self.conv1.backward(self.bn1.backward(grad_hidden))
        return grad_main + self.shortcut.backward(grad_sum)
