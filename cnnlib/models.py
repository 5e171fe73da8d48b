"""The case-study networks of the lectures, built from ``cnnlib.nn`` modules.

Each builder returns an ordinary module: it trains (forward and backward), and
``cnnlib.shapes.summary`` computes its parameter and multiply-add counts, so no number about
these networks is ever typed in. Layers carry the papers' names (``conv1``, ``fc6``,
``inception4a``) where the papers give them. Two things the papers have and cnnlib does not
are left out: local response normalisation (AlexNet, GoogLeNet; it has no parameters) and
GoogLeNet's two auxiliary classifiers (used only in training).
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from . import nn
from .geometry import conv2d_macs


class NamedSequential(nn.Sequential):
    """A ``Sequential`` whose layers have names instead of 0, 1, ... (PyTorch's
    ``Sequential(OrderedDict(...))``): ``NamedSequential(conv1=..., relu1=...)``."""

    def __init__(self, **layers: nn.Module) -> None:
        super().__init__()
        for name, layer in layers.items():
            if not isinstance(layer, nn.Module):
                raise TypeError(f"NamedSequential: {name} must be a Module, got {type(layer)}")
            setattr(self, name, layer)


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int, **options) -> list:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, **options), nn.ReLU()]


# ---------------------------------------------------------------------------- LeNet-5


def lenet5(num_classes: int = 10, pooling: str = "max") -> NamedSequential:
    """LeNet-5 (LeCun et al. 1998) for 32x32 grey images: x: (N, 1, 32, 32) -> (N, num_classes).

    C1 conv 6@5x5 -> S2 pool 2x2 -> C3 conv 16@5x5 -> S4 pool 2x2 -> C5 conv 120@5x5 (its
    output is 1x1) -> F6 linear 84 -> output linear. Modernised as most courses do: ReLU
    instead of scaled tanh; ``pooling="max"`` (default) or ``"avg"`` instead of the trainable
    subsampling; C3 connected to all six S2 maps (the paper's sparse table had 1,516
    parameters, this 2,416); a linear output instead of the Euclidean RBF units.
    """
    pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
    if pooling not in pools:
        raise ValueError(f"lenet5: pooling must be 'max' or 'avg', got {pooling!r}")
    pool = pools[pooling]
    return NamedSequential(
        c1=nn.Conv2d(1, 6, 5), relu1=nn.ReLU(), s2=pool(2),
        c3=nn.Conv2d(6, 16, 5), relu3=nn.ReLU(), s4=pool(2),
        c5=nn.Conv2d(16, 120, 5), relu5=nn.ReLU(), flatten=nn.Flatten(),
        f6=nn.Linear(120, 84), relu6=nn.ReLU(), output=nn.Linear(84, num_classes),
    )


# ---------------------------------------------------------------------------- AlexNet


def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> NamedSequential:
    """AlexNet (Krizhevsky et al. 2012) as one tower, the layout of deck 002's counts.

    x: (N, 3, 227, 227) -> (N, num_classes). conv1 96@11x11 stride 4 -> 55x55, max pool
    3x3 stride 2 (overlapping) -> 27; conv2 256@5x5 pad 2, pool -> 13; conv3 384, conv4 384,
    conv5 256, all 3x3 pad 1, pool -> 6x6x256; fc6 4096, fc7 4096 (dropout before each),
    fc8 num_classes. The paper split conv2, conv4 and conv5 over two GPUs, which halves their
    inputs; one tower connects every channel, as the deck counts.
    """
    return NamedSequential(
        conv1=nn.Conv2d(3, 96, 11, stride=4), relu1=nn.ReLU(), pool1=nn.MaxPool2d(3, 2),
        conv2=nn.Conv2d(96, 256, 5, padding=2), relu2=nn.ReLU(), pool2=nn.MaxPool2d(3, 2),
        conv3=nn.Conv2d(256, 384, 3, padding=1), relu3=nn.ReLU(),
        conv4=nn.Conv2d(384, 384, 3, padding=1), relu4=nn.ReLU(),
        conv5=nn.Conv2d(384, 256, 3, padding=1), relu5=nn.ReLU(), pool5=nn.MaxPool2d(3, 2),
        flatten=nn.Flatten(),
        drop6=nn.Dropout(dropout), fc6=nn.Linear(256 * 6 * 6, 4096), relu6=nn.ReLU(),
        drop7=nn.Dropout(dropout), fc7=nn.Linear(4096, 4096), relu7=nn.ReLU(),
        fc8=nn.Linear(4096, num_classes),
    )


# ---------------------------------------------------------------------------- VGG

# Simonyan & Zisserman 2014, table 1: an int is a 3x3 conv (pad 1) with that many filters,
# (C, 1) a 1x1 conv with C filters, "M" a 2x2 max pool. A-LRN (A plus local response
# normalisation) is left out: cnnlib has no LRN, and it adds no parameters.
VGG_CONFIGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def _vgg_features(config: list, batch_norm: bool) -> dict:
    layers: dict[str, nn.Module] = {}
    channels, block, index = 3, 1, 1
    for entry in config:
        if entry == "M":
            layers[f"pool{block}"] = nn.MaxPool2d(2)
            block, index = block + 1, 1
            continue
        out, kernel = entry if isinstance(entry, tuple) else (entry, 3)
        name = f"{block}_{index}"
        layers[f"conv{name}"] = nn.Conv2d(channels, out, kernel, padding=kernel // 2)
        if batch_norm:
            layers[f"bn{name}"] = nn.BatchNorm2d(out)
        layers[f"relu{name}"] = nn.ReLU()
        channels, index = out, index + 1
    return layers


def vgg(config: str = "D", num_classes: int = 1000, batch_norm: bool = False,
        dropout: float = 0.5) -> NamedSequential:
    """VGG network ``config`` "A" to "E" of ``VGG_CONFIGS`` (D is VGG-16, E is VGG-19).

    x: (N, 3, 224, 224) -> (N, num_classes): five blocks of 3x3 convs each ending in a 2x2
    max pool (224 -> 7), then fc6 4096, fc7 4096, fc8 num_classes, with dropout after fc6
    and fc7. ``batch_norm=True`` adds BatchNorm2d after every conv (torchvision's ``_bn``).
    """
    if config not in VGG_CONFIGS:
        raise ValueError(f"vgg: config must be one of {sorted(VGG_CONFIGS)}, got {config!r}")
    return NamedSequential(
        **_vgg_features(VGG_CONFIGS[config], batch_norm), flatten=nn.Flatten(),
        fc6=nn.Linear(512 * 7 * 7, 4096), relu6=nn.ReLU(), drop6=nn.Dropout(dropout),
        fc7=nn.Linear(4096, 4096), relu7=nn.ReLU(), drop7=nn.Dropout(dropout),
        fc8=nn.Linear(4096, num_classes),
    )


# ---------------------------------------------------------------------------- GoogLeNet


class InceptionBlock(nn.Module):
    """GoogLeNet's inception module (Szegedy et al. 2015): four branches side by
    side.

    branch1: 1x1 conv; branch2: 1x1 reduction then 3x3 conv;
    branch3: 1x1 reduction then 5x5 conv;
    branch4: 3x3 max pool (stride 1) then 1x1 projection; each conv with a ReLU.
    Every branch keeps H and W, and the outputs are stacked along the channels:
    x: (N, C_in, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    Backward cuts the gradient back into the four channel ranges and adds the
    branches' input gradients, since all four read the same x.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(*_conv_relu(in_channels, ch1x1, 1))
        self.branch2 = nn.Sequential(*_conv_relu(in_channels, ch3x3red, 1),
                                     *_conv_relu(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(*_conv_relu(in_channels, ch5x5red, 1),
                                     *_conv_relu(ch5x5red, ch5x5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     *_conv_relu(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: np.ndarray) -> np.ndarray:
        outputs = [branch(x) for branch in self.children()]
        self._channels = [out.shape[1] for out in outputs]
        return np.concatenate(outputs, axis=1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        ends = np.cumsum(self._saved("_channels"))[:-1]
        pieces = np.split(grad_out, ends, axis=1)
        grads = [b.backward(g)
                 for b, g in zip(self.children(), pieces, strict=True)]
        return sum(grads[1:], grads[0])

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}"


# (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), from the paper's table 1
_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _check_image_size(builder: str, image_size: int) -> int:
    if not isinstance(image_size, int) or image_size < 32 or image_size % 32:
        raise ValueError(
            f"{builder}: image_size must be a multiple of 32 (five halvings down to the "
            f"final average pool), got {image_size!r}"
        )
    return image_size // 32


def googlenet(num_classes: int = 1000, image_size: int = 224, dropout: float = 0.4) -> NamedSequential:
    """GoogLeNet (Inception v1), as table 1 of Szegedy et al. 2015, without the auxiliary
    classifiers and without LRN. x: (N, 3, 224, 224) -> (N, num_classes).

    What counts: every conv's weights and biases plus the final 1024 -> 1000 linear layer,
    about 7.0M (6.0M without that layer). The paper's "12 times fewer parameters than
    AlexNet" (about 5M) and the deck's "4 million" are rounder and smaller than either. The
    two auxiliary classifiers (used only in training) would add about 3.2M each.
    ``image_size`` is a multiple of 32; the final average pool is global
    (``AdaptiveAvgPool2d(1)``, as torchvision's), whatever the size.
    """
    _check_image_size("googlenet", image_size)
    layers = dict(
        conv1=nn.Conv2d(3, 64, 7, stride=2, padding=3), relu1=nn.ReLU(),
        pool1=nn.MaxPool2d(3, 2, padding=1),
        conv2_reduce=nn.Conv2d(64, 64, 1), relu2_reduce=nn.ReLU(),
        conv2=nn.Conv2d(64, 192, 3, padding=1), relu2=nn.ReLU(),
        pool2=nn.MaxPool2d(3, 2, padding=1),
    )
    channels = 192
    for name, widths in _INCEPTION.items():
        if name in ("4a", "5a"):
            layers[f"pool{int(name[0]) - 1}"] = nn.MaxPool2d(3, 2, padding=1)
        layers[f"inception{name}"] = block = InceptionBlock(channels, *widths)
        channels = block.out_channels
    return NamedSequential(
        **layers, avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
        dropout=nn.Dropout(dropout), fc=nn.Linear(channels, num_classes),
    )


# ---------------------------------------------------------------------------- ResNet


def _stages(widths: tuple[int, ...], blocks: tuple[int, ...], first_stride: int) -> dict:
    """ResNet's stages: ``blocks[i]`` ResidualBlocks of ``widths[i]`` channels; every stage
    after the first halves H and W in its first block."""
    layers, channels = {}, widths[0]
    for stage, (width, count) in enumerate(zip(widths, blocks, strict=True), start=1):
        stride = first_stride if stage == 1 else 2
        layers[f"layer{stage}"] = nn.Sequential(*(
            nn.ResidualBlock(channels if i == 0 else width, width, stride if i == 0 else 1)
            for i in range(count)
        ))
        channels = width
    return layers


def resnet(
    blocks: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 1000, image_size: int = 224
) -> NamedSequential:
    """ImageNet ResNet of basic blocks (He et al. 2016): ``(2, 2, 2, 2)`` is ResNet-18,
    ``(3, 4, 6, 3)`` ResNet-34. x: (N, 3, 224, 224) -> (N, num_classes).

    conv1 64@7x7 stride 2 + BN + ReLU, 3x3 max pool stride 2, four stages of 64, 128, 256,
    512 channels, global average pool (``AdaptiveAvgPool2d(1)``), fc. Downsampling shortcuts
    are 1x1 conv + BN.
    """
    _check_image_size("resnet", image_size)
    return NamedSequential(
        conv1=nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), bn1=nn.BatchNorm2d(64),
        relu=nn.ReLU(), maxpool=nn.MaxPool2d(3, 2, padding=1),
        **_stages((64, 128, 256, 512), blocks, first_stride=1),
        avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(512, num_classes),
    )


def resnet18(num_classes: int = 1000, image_size: int = 224) -> NamedSequential:
    """ResNet-18: ``resnet((2, 2, 2, 2))``, 11,689,512 parameters for 1000 classes."""
    return resnet((2, 2, 2, 2), num_classes, image_size)


def resnet_cifar(depth: int = 20, num_classes: int = 10) -> NamedSequential:
    """The CIFAR-10 ResNets of He et al. 2016, section 4.2: depth = 6n + 2 (20, 32, 44, 56).

    x: (N, 3, 32, 32) -> (N, num_classes): conv 16@3x3, three stages of n blocks with 16, 32
    and 64 channels (32x32, 16x16, 8x8), global average pool, fc. The paper's shortcuts pad
    with zeros; these are 1x1 conv + BN, a few thousand parameters more (ResNet-20: 0.27M).
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet_cifar: depth must be 6n + 2 (20, 32, 44, ...), got {depth!r}")
    n = (depth - 2) // 6
    return NamedSequential(
        conv1=nn.Conv2d(3, 16, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(16), relu=nn.ReLU(),
        **_stages((16, 32, 64), (n, n, n), first_stride=1),
        avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(64, num_classes),
    )


class Skip(nn.Module):
    """A residual connection around ``body`` (He et al. 2016):
    ``relu(body(x) + x)``.

    ``body`` must keep the shape, x: (N, C, H, W) -> (N, C, H, W). In the backward
    pass the gradient that reaches the sum goes back twice: through ``body``, and
    unchanged along the shortcut, so the block's input gradient is
    ``body.backward(g) + g``.
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        if not isinstance(body, nn.Module):
            raise TypeError(
                f"Skip: body must be a Module, got {type(body).__name__}"
            )
        self.body = body

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = self.body(x)
        if out.shape != x.shape:
            raise ValueError(
                f"Skip: body must keep the shape so that x can be added, "
                f"but it maps {x.shape} to {out.shape}"
            )
        self._sum = out + x
        return F.relu(self._sum)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_sum = F.relu_backward(grad_out, self._saved("_sum"))
        return self.body.backward(grad_sum) + grad_sum


def _conv3x3(channels_in: int, channels_out: int, batch_norm: bool) -> list:
    """A 3x3 convolution keeping the size, then BatchNorm2d when ``batch_norm`` (and no bias:
    BatchNorm's shift takes its place)."""
    conv = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=not batch_norm)
    return [conv, nn.BatchNorm2d(channels_out)] if batch_norm else [conv]


def digits_net(blocks: int = 6, residual: bool = True, batch_norm: bool = True,
               channels: int = 8, num_classes: int = 10) -> NamedSequential:
    """A deep, narrow network for scikit-learn's 8x8 digits, plain or residual, to compare.

    x: (N, 1, H, W) -> (N, num_classes). ``stem``: a 3x3 conv to ``channels`` (+ BN) and a
    ReLU; ``block1`` .. ``block{blocks}``: each the body ``conv, [bn], relu, conv, [bn]`` (3x3
    convs with padding 1, which keep H x W), then ``relu(body(x))`` when plain or
    ``relu(body(x) + x)`` (``Skip``) when ``residual``; a global average pool
    (``AdaptiveAvgPool2d(1)``) and a linear classifier. ``2 * blocks + 2`` weight layers; the
    plain and the residual network have the same parameters, and with the same seed the
    same initial values.
    """
    if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1:
        raise ValueError(f"digits_net: blocks must be an int >= 1, got {blocks!r}")
    layers: dict[str, nn.Module] = {
        "stem": nn.Sequential(*_conv3x3(1, channels, batch_norm), nn.ReLU())
    }
    for index in range(1, blocks + 1):
        body = nn.Sequential(*_conv3x3(channels, channels, batch_norm), nn.ReLU(),
                             *_conv3x3(channels, channels, batch_norm))
        layers[f"block{index}"] = Skip(body) if residual else nn.Sequential(body, nn.ReLU())
    return NamedSequential(**layers, pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                           fc=nn.Linear(channels, num_classes))


# ---------------------------------------------------------------------------- MobileNet


def _conv_bn_relu(
    suffix: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
) -> dict[str, nn.Module]:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                     groups=groups, bias=False)
    return {suffix: conv, f"bn_{suffix}": nn.BatchNorm2d(out_channels), f"relu_{suffix}": nn.ReLU()}


def depthwise_separable(in_channels: int, out_channels: int, stride: int = 1) -> NamedSequential:
    """MobileNet's block: ``dw``, a 3x3 depthwise conv (``groups = C_in``: one filter per
    channel), BN, ReLU, then ``pw``, a 1x1 pointwise conv mixing the channels, BN, ReLU.
    x: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
    return NamedSequential(
        **_conv_bn_relu("dw", in_channels, in_channels, 3, stride, groups=in_channels),
        **_conv_bn_relu("pw", in_channels, out_channels, 1),
    )


# (output channels, stride) of the 13 depthwise-separable blocks, table 1 of Howard et al.
# 2017. The table (and deck 002) prints "Conv dw / s2" for the last one, but its input and
# output are both 7x7: the stride is 1, as in every implementation.
MOBILENET_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       *[(512, 1)] * 5, (1024, 2), (1024, 1)]


def mobilenet_v1(num_classes: int = 1000, width: float = 1.0, image_size: int = 224) -> NamedSequential:
    """MobileNet v1 (Howard et al. 2017). x: (N, 3, 224, 224) -> (N, num_classes).

    A 3x3 stride-2 conv to 32 channels, the 13 ``depthwise_separable`` blocks of
    ``MOBILENET_V1_BLOCKS``, a 7x7 average pool and the classifier; every conv is followed
    by BN and ReLU. ``width`` is the paper's multiplier alpha (channels scaled by it).
    """
    final = _check_image_size("mobilenet_v1", image_size)
    channels = max(1, round(32 * width))
    layers = _conv_bn_relu("conv1", 3, channels, 3, stride=2)
    for index, (out, stride) in enumerate(MOBILENET_V1_BLOCKS, start=2):
        out = max(1, round(out * width))
        layers[f"block{index}"] = depthwise_separable(channels, out, stride)
        channels = out
    return NamedSequential(**layers, avgpool=nn.AvgPool2d(final), flatten=nn.Flatten(),
                           fc=nn.Linear(channels, num_classes))


def separable_multiplications(in_channels: int, out_channels: int, kernel_size: int,
                              out_size: int) -> dict[str, int]:
    """Multiplications of a standard conv against its depthwise-separable replacement.

    standard: ``out_channels`` filters of ``K x K x C_in``; depthwise: ``C_in`` filters of
    ``K x K x 1``; pointwise: ``out_channels`` filters of ``1 x 1 x C_in``; each on an
    ``out_size x out_size`` output (stride and padding already in ``out_size``).

    >>> separable_multiplications(3, 256, 5, 8)  # deck 002's example
    {'standard': 1228800, 'depthwise': 4800, 'pointwise': 49152, 'separable': 53952}
    """
    depthwise = conv2d_macs(in_channels, in_channels, kernel_size, out_size, groups=in_channels)
    pointwise = conv2d_macs(in_channels, out_channels, 1, out_size)
    return {
        "standard": conv2d_macs(in_channels, out_channels, kernel_size, out_size),
        "depthwise": depthwise, "pointwise": pointwise, "separable": depthwise + pointwise,
    }
