"""Layers as modules, named and initialised as ``torch.nn``, each with its backward pass.

Modules keep parameters (``Parameter``: ``.data`` and ``.grad``) and call ``cnnlib.functional``
for the arithmetic. ``manual_seed(seed)`` makes initialisation and Dropout reproducible:

>>> from cnnlib import nn
>>> _ = nn.manual_seed(0)
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
>>> [tuple(p.shape) for p in net.parameters()]
[(4, 1, 3, 3), (4,), (10, 2704), (10,)]
"""

from .activation import ReLU
from .batchnorm import BatchNorm2d
from .container import Identity, Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .flatten import Flatten
from .init import manual_seed
from .linear import Linear
from .loss import CrossEntropyLoss, NLLLoss
from .module import Module, Parameter
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d
from .residual import ResidualBlock

__all__ = [
    "Module", "Parameter", "manual_seed",
    "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "MaxUnpool2d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d", "ReLU", "Flatten", "Linear",
    "Dropout", "BatchNorm2d", "Sequential", "Identity", "ResidualBlock", "CrossEntropyLoss", "NLLLoss",
]
