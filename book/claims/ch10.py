"""Chapter 10, case studies: the parameter counts, depths and tables the decks give for LeNet,
AlexNet, VGG, GoogLeNet and MobileNet, each computed by ``cnnlib.summary`` on
``cnnlib.models``. Building a network allocates its weights (VGG-16: 138M), so the summaries
are cached: each network is built once per process."""

from __future__ import annotations

from functools import cache

from cnnlib import models, nn
from cnnlib.summary import Summary, summary

from . import Claim


def weight_layer_depth(module) -> int:
    """Layers with weights (Conv2d, Linear) on the longest path through
    ``module``: the way the papers count depth ("VGG-16", "22 layers" for
    GoogLeNet). Branches count their longest branch; a residual block counts its
    main path, not its shortcut."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return 1
    if isinstance(module, models.InceptionBlock):
        return max(weight_layer_depth(branch) for branch in module.children())
    if isinstance(module, nn.ResidualBlock):
        return weight_layer_depth(module.conv1) + weight_layer_depth(module.conv2)
    return sum(weight_layer_depth(child) for child in module.children())


@cache
def alexnet_facts() -> tuple[Summary, tuple[int, ...]]:
    """AlexNet's summary on a 227x227 image, and the shape of conv1's weight."""
    net = models.alexnet()
    return summary(net, (1, 3, 227, 227)), net.conv1.weight.shape


def _alexnet_params(layer: str) -> int:
    return next(row.params for row in alexnet_facts()[0].rows if row.name == layer)


@cache
def vgg_summary(config: str) -> tuple[Summary, int]:
    """``summary(models.vgg(config), (1, 3, 224, 224))`` and the network's depth, cached."""
    net = models.vgg(config)
    return summary(net, (1, 3, 224, 224)), weight_layer_depth(net)


@cache
def googlenet_facts() -> tuple[Summary, int]:
    net = models.googlenet()
    return summary(net, (1, 3, 224, 224)), weight_layer_depth(net)


def _dims(shape) -> str:
    """(N, C, H, W) -> "HxWxC", (N, F) -> "1x1xF": the deck's H x W x C notation."""
    return "x".join(map(str, (*shape[2:], shape[1]) if len(shape) == 4 else (1, 1, shape[1])))


@cache
def mobilenet_rows() -> tuple[tuple[str, int, str, str], ...]:
    """MobileNet v1 as deck 002's table, from the model and its summary: one row per layer,
    (type, stride, filter shape, input size); filters as K x K x C_in x C_out, or K x K x C
    "dw" for a depthwise convolution."""
    net = models.mobilenet_v1()
    table = []
    for row in summary(net, (1, 3, 224, 224)).rows:
        layer = net
        for part in row.name.split("."):
            layer = getattr(layer, part)
        if isinstance(layer, nn.Conv2d):
            k, stride = layer.kernel_size[0], layer.stride[0]
            if layer.groups > 1:
                table.append(("Conv dw", stride, f"{k}x{k}x{layer.in_channels} dw",
                              _dims(row.input_shape)))
            else:
                table.append(("Conv", stride, f"{k}x{k}x{layer.in_channels}x"
                              f"{layer.out_channels}", _dims(row.input_shape)))
        elif isinstance(layer, nn.AvgPool2d):
            k = layer.kernel_size[0]
            table.append(("Avg Pool", layer.stride[0], f"Pool {k}x{k}", _dims(row.input_shape)))
        elif isinstance(layer, nn.Linear):
            table.append(("FC", 1, f"{layer.in_features}x{layer.out_features}",
                          _dims(row.input_shape)))
            table.append(("Softmax", 1, "Classifier", _dims(row.output_shape)))
    return tuple(table)


def mobilenet_table() -> list[tuple[str, str, str]]:
    """The rows of ``mobilenet_rows`` as the deck prints them: "type / sN", filter shape,
    input size, with a run of identical (dw, pointwise) pairs written once as "5x ..."."""
    rows = [(f"{kind} / s{stride}", shape, size) for kind, stride, shape, size in mobilenet_rows()]
    table, i = [], 0
    while i < len(rows):
        repeats = 1
        while rows[i : i + 2] == rows[i + 2 * repeats : i + 2 * repeats + 2]:
            repeats += 1
        if repeats > 1:
            table += [(f"{repeats}x {rows[i][0]}", *rows[i][1:]), rows[i + 1]]
            i += 2 * repeats
        else:
            table.append(rows[i])
            i += 1
    return table


# Deck 002, "MobileNet (Google) - 2017": the filter-shape and input-size columns, and the
# strides of the type column, transcribed row by row ("5x" rows once, as printed).
MOBILENET_DECK_002 = [
    ("Conv / s2", "3x3x3x32", "224x224x3"),
    ("Conv dw / s1", "3x3x32 dw", "112x112x32"),
    ("Conv / s1", "1x1x32x64", "112x112x32"),
    ("Conv dw / s2", "3x3x64 dw", "112x112x64"),
    ("Conv / s1", "1x1x64x128", "56x56x64"),
    ("Conv dw / s1", "3x3x128 dw", "56x56x128"),
    ("Conv / s1", "1x1x128x128", "56x56x128"),
    ("Conv dw / s2", "3x3x128 dw", "56x56x128"),
    ("Conv / s1", "1x1x128x256", "28x28x128"),
    ("Conv dw / s1", "3x3x256 dw", "28x28x256"),
    ("Conv / s1", "1x1x256x256", "28x28x256"),
    ("Conv dw / s2", "3x3x256 dw", "28x28x256"),
    ("Conv / s1", "1x1x256x512", "14x14x256"),
    ("5x Conv dw / s1", "3x3x512 dw", "14x14x512"),
    ("Conv / s1", "1x1x512x512", "14x14x512"),
    ("Conv dw / s2", "3x3x512 dw", "14x14x512"),
    ("Conv / s1", "1x1x512x1024", "7x7x512"),
    ("Conv dw / s2", "3x3x1024 dw", "7x7x1024"),
    ("Conv / s1", "1x1x1024x1024", "7x7x1024"),
    ("Avg Pool / s1", "Pool 7x7", "7x7x1024"),
    ("FC / s1", "1024x1000", "1x1x1024"),
    ("Softmax / s1", "Classifier", "1x1x1000"),
]


def vgg_block_convs(config: str) -> list[int]:
    """Convolutions in each of the five blocks of ``models.VGG_CONFIGS[config]``."""
    counts = [0]
    for entry in models.VGG_CONFIGS[config][:-1]:      # the last "M" closes block 5
        if entry == "M":
            counts.append(0)
        else:
            counts[-1] += 1
    return counts


# Deck 002's exported configuration table, its rows counted per block (C3D64 ... to each "M").
DECK_002_VGG_BLOCKS = {"A": [1, 1, 2, 2, 2], "B": [2, 2, 2, 2, 2], "C": [2, 2, 3, 3, 3],
                       "D": [2, 2, 3, 3, 3], "E": [2, 2, 3, 3, 3]}


def _conv_strides(table) -> list[int]:
    """The N of "Conv / sN" and "Conv dw / sN" rows. (The pooling row is left out: a 7x7
    pool over a 7x7 map has a single window, so its stride, 1 on the slide and the kernel
    size in cnnlib and PyTorch, changes nothing.)"""
    return [int(kind.rsplit("/ s", 1)[1]) for kind, *_ in table if "Conv" in kind]


def _alexnet_input_values() -> int:
    """Values in one input image: C x H x W of the size conv1's 55x55 output needs."""
    _, channels, height, width = alexnet_facts()[0].input_size
    return channels * height * width


def _alexnet_fc_to_conv_ratio() -> float:
    rows = alexnet_facts()[0].rows
    convs = sum(row.params for row in rows if row.type == "Conv2d")
    return _alexnet_params("fc6") / convs


@cache
def _alexnet_weight_shapes() -> dict[str, tuple[int, ...]]:
    net = models.alexnet()
    return {name: layer.weight.shape for name, layer in net.named_children()
            if hasattr(layer, "weight")}


def _alexnet_arithmetic(layer: str) -> str:
    """A layer's parameter count written out from its weight's shape: for conv1,
    "(11 · 11 · 3 + 1) · 96"; for fc6, "(9216 + 1) · 4096"."""
    weight = _alexnet_weight_shapes()[layer]                     # (out, in, ...) or (out, in)
    window = " · ".join(str(n) for n in (*weight[2:], weight[1]))
    return f"({window} + 1) · {weight[0]}"


def _alexnet_params_claim(layer: str, says: int, where: str) -> Claim:
    return Claim(key=f"ch10_alexnet_{layer}_params", deck="002", where=where, says=says,
                 compute=lambda: _alexnet_params(layer), unit="parameters",
                 how=lambda: _alexnet_arithmetic(layer))


CLAIMS = [
    Claim(
        key="ch10_lenet_params",
        deck="003",
        where="Models: LeNet, Parameters: 60000",
        says=60_000,
        compute=lambda: summary(models.lenet5(), (1, 1, 32, 32)).total_params,
        rounded=-4,
    ),
    _alexnet_params_claim("conv1", 34_944, "ConvNets have lots of parameters: P_C1"),
    _alexnet_params_claim("conv2", 614_656, "ConvNets have lots of parameters: P_C2"),
    _alexnet_params_claim("conv3", 885_120, "ConvNets have lots of parameters: P_C3"),
    _alexnet_params_claim("conv4", 1_327_488, "ConvNets have lots of parameters: P_C4"),
    _alexnet_params_claim("conv5", 884_992, "ConvNets have lots of parameters: P_C5"),
    _alexnet_params_claim("fc6", 37_752_832, "First FC layer uses the most parameters: P_Cf"),
    _alexnet_params_claim("fc7", 16_781_312, "Classification layers: P_ff, 4096 -> 4096"),
    _alexnet_params_claim("fc8", 4_097_000, "Classification layers: P_ff, 4096 -> 1000"),
    Claim(
        key="ch10_alexnet_fc8_biases",
        deck="002",
        where="Classification layers: B_ff of the 4096 -> 1000 layer",
        says=4_096,
        compute=lambda: alexnet_facts()[0].rows[-1].output_shape[-1],
        erratum=(
            "The slide prints B_ff = 4096 under both weight matrices; the last layer has one "
            "bias per class, 1,000, which is what its own total P_ff = 4,097,000 = "
            "4096 x 1000 + 1000 uses."
        ),
    ),
    Claim(
        key="ch10_alexnet_input_thousands",
        deck="002",
        where="ConvNets efficiently scale from about 154k inputs",
        says=154,
        compute=lambda: _alexnet_input_values() // 1000,
        unit="thousand input values",
    ),
    Claim(
        key="ch10_alexnet_fc6_vs_convs",
        deck="002",
        where="ConvLayer to FC takes 10x parameters as all ConvLayers",
        says=10,
        compute=_alexnet_fc_to_conv_ratio,
        rounded=0,
        unit="times",
    ),
    Claim(
        key="ch10_alexnet_total_002",
        deck="002",
        where="GoogLeNet: compare AlexNet 60M",
        says=60_000_000,
        compute=lambda: alexnet_facts()[0].total_params,
        rounded=-7,
    ),
    Claim(
        key="ch10_alexnet_total_003",
        deck="003",
        where="Models: AlexNet, Parameters: 60 million",
        says=60_000_000,
        compute=lambda: alexnet_facts()[0].total_params,
        rounded=-7,
    ),
    Claim(
        key="ch10_alexnet_conv1_filters",
        deck="000",
        where="First-layer conv filters: AlexNet: 64 filters, each 3x11x11",
        says=(64, 3, 11, 11),
        # The one-tower AlexNet of Krizhevsky's 2014 "one weird trick" paper, the one
        # torchvision ships (whose pretrained filters the slide shows): conv1 is 64@11x11,
        # stride 4, padding 2. The 2012 two-GPU network (models.alexnet) has 96.
        compute=lambda: nn.Conv2d(3, 64, 11, stride=4, padding=2).weight.shape,
    ),
    Claim(
        key="ch10_vgg_table_a_to_d",
        deck="002",
        where="VGGNet table: convolutions per block, columns A to D",
        says=[DECK_002_VGG_BLOCKS[c] for c in "ABCD"],
        compute=lambda: [vgg_block_convs(c) for c in "ABCD"],
    ),
    Claim(
        key="ch10_vgg_table_e",
        deck="002",
        where="VGGNet table: convolutions per block, column E",
        says=DECK_002_VGG_BLOCKS["E"],
        compute=lambda: vgg_block_convs("E"),
        erratum=(
            "The exported table gives column E the same three rows as D in blocks 3 to 5, "
            "which adds up to 2 + 2 + 3 + 3 + 3 + 3 = 16 weight layers, while its header says "
            "19. VGG-19 has four 3x3 convolutions in each of blocks 3, 4 and 5: "
            "2 + 2 + 4 + 4 + 4 + 3 = 19."
        ),
    ),
    Claim(
        key="ch10_vgg_depths",
        deck="002",
        where="VGGNet: # Layers of configurations A, B, C, D, E (A-LRN, like A, has 11)",
        says=[11, 13, 16, 16, 19],
        compute=lambda: [vgg_summary(config)[1] for config in "ABCDE"],
    ),
    Claim(
        key="ch10_vgg16_params",
        deck="002",
        where="VGGNet: # parameters of VGG-16 (configuration D), about 138M",
        says=138_000_000,
        compute=lambda: vgg_summary("D")[0].total_params,
        rounded=-6,
    ),
    Claim(
        key="ch10_googlenet_depth",
        deck="002",
        where="GoogLeNet: 22 layers",
        says=22,
        compute=lambda: googlenet_facts()[1],
    ),
    Claim(
        key="ch10_googlenet_params",
        deck="002",
        where="GoogLeNet: only 4 million parameters",
        says=4_000_000,
        compute=lambda: googlenet_facts()[0].total_params,
        rounded=-6,
        erratum=(
            "Every convolution of the paper's table 1 with its biases, plus the 1024 -> 1000 "
            "classifier, adds up to the computed count; the convolutions alone are about 6M. "
            "(The two auxiliary classifiers, used only in training, are not counted.) The "
            "paper itself says 12 times fewer parameters than AlexNet, about 5M. No way of "
            "counting gives 4M; the point stands that it is far fewer than AlexNet's."
        ),
    ),
    Claim(
        key="ch10_mobilenet_table",
        deck="002",
        where="MobileNet: filter shapes and input sizes, row by row",
        says=[row[1:] for row in MOBILENET_DECK_002],
        compute=lambda: [row[1:] for row in mobilenet_table()],
    ),
    Claim(
        key="ch10_mobilenet_strides",
        deck="002",
        where="MobileNet: the strides of the convolution rows (Conv / sN), row by row",
        says=_conv_strides(MOBILENET_DECK_002),
        compute=lambda: _conv_strides(mobilenet_table()),
        erratum=(
            "The last depthwise row, 'Conv dw / s2' on a 7x7x1024 input, has "
            "stride 1: its output is the next row's input, still 7x7x1024 (a stride of 2 "
            "would give 4x4). The paper's table 1 has the same typo; every implementation "
            "uses stride 1 there."
        ),
    ),
]
