"""Output sizes, receptive fields and model summaries, against hand counts and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlib import nn, shapes
from cnnlib.shapes import conv_output_size, receptive_field, summary

pytestmark = pytest.mark.shapes


# ---------------------------------------------------------------------------- conv_output_size


def test_conv_output_size_lecture_examples():
    assert conv_output_size(7, 3, stride=1) == 5
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(32, 5, padding=2) == 32
    with pytest.raises(ValueError, match="stride 3 does not fit"):
        conv_output_size(7, 3, stride=3, strict=True)


# ---------------------------------------------------------------------------- receptive fields


@settings(max_examples=30, deadline=None)
@given(layers=st.integers(1, 10), kernel=st.integers(1, 9))
def test_stride_one_stack_gives_lecture_formula(layers, kernel):
    """L stride-1 KxK layers: 1 + L (K - 1), as the lectures say."""
    result = receptive_field([(kernel, 1)] * layers)
    assert result.size == 1 + layers * (kernel - 1), f"{layers} layers of {kernel}x{kernel}"
    assert result.jump == 1


def test_lenet_feature_stack_by_hand():
    """conv5 -> pool2 -> conv5 -> pool2: 5, 6 (jump 2), 6 + 4*2 = 14, 14 + 1*2 = 16 (jump 4)."""
    stack = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
    result = receptive_field(stack)
    assert (result.size, result.jump) == (16, 4)
    assert [row["receptive_field"] for row in result.table] == [1, 5, 6, 14, 16]
    assert [row["jump"] for row in result.table] == [1, 1, 2, 2, 4]


def test_alexnet_receptive_field_is_195():
    """conv1 11/4, pool 3/2, conv2 5, pool 3/2, conv3-5 3, pool 3/2: 11, 19, 51, 67, ..., 195."""
    layers = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)]
    result = receptive_field(layers)
    assert [row["receptive_field"] for row in result.table[1:]] == [11, 19, 51, 67, 99, 131,
                                                                      163, 195]
    assert result.jump == 32


def test_dilation_widens_the_kernel():
    """A 3x3 kernel with dilation 2 spans 5 pixels: two of them see 1 + 4 + 4 = 9."""
    assert receptive_field([(3, 1, 2), (3, 1, 2)]).size == 9
    conv = nn.Conv2d(1, 1, 3, dilation=2)
    assert receptive_field(nn.Sequential(conv, conv)).size == 9


def test_receptive_field_markdown_lists_every_layer():
    text = receptive_field([(3, 1), (2, 2)]).to_markdown()
    assert text.count("\n") == 4 and "| input |" in text


def test_receptive_field_refuses_what_it_cannot_follow():
    with pytest.raises(TypeError, match="Linear"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match=r"\(kernel_size, stride\[, dilation\]\)"):
        receptive_field([(3,)])
    with pytest.raises(ValueError, match="not square"):
        receptive_field([nn.Conv2d(1, 1, (3, 5))])


# ---------------------------------------------------------------------------- summary


def torch_leaf_params(model: torch.nn.Module) -> list[int]:
    return [sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()
            if next(m.children(), None) is None]


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, dilation=2, groups=4, bias=False), nn.MaxPool2d(2),
        nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), nn.AvgPool2d(2),
        nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 3 * 3, 5),
    )


def torch_small_net() -> torch.nn.Sequential:
    tn = torch.nn
    return tn.Sequential(
        tn.Conv2d(3, 8, 3, padding=1), tn.BatchNorm2d(8), tn.ReLU(),
        tn.Conv2d(8, 8, 3, stride=2, dilation=2, groups=4, bias=False), tn.MaxPool2d(2),
        tn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), tn.AvgPool2d(2),
        tn.Dropout(0.5), tn.Flatten(), tn.Linear(4 * 3 * 3, 5),
    )


def test_summary_shapes_and_params_match_pytorch():
    result = summary(small_net(), (2, 3, 16, 16))
    reference, x = torch_small_net(), torch.zeros(2, 3, 16, 16)
    for row, module in zip(result.rows, reference, strict=True):
        x = module(x)
        assert row.output_shape == tuple(x.shape), f"{row.name} ({row.type})"
    assert [row.params for row in result.rows] == torch_leaf_params(reference)
    assert result.total_params == sum(p.numel() for p in reference.parameters())
    assert result.output_shape == (2, 5)


def test_summary_macs_count_each_weight_use():
    """Conv: weight.size products per output pixel; transposed: per input pixel; Linear: per row."""
    net = small_net()
    rows = summary(net, (2, 3, 16, 16)).rows
    for row, module in zip(rows, net, strict=True):
        if isinstance(module, nn.Conv2d):
            expected = module.weight.size * 2 * np.prod(row.output_shape[2:])
        elif isinstance(module, nn.ConvTranspose2d):
            expected = module.weight.size * 2 * np.prod(row.input_shape[2:])
        elif isinstance(module, nn.Linear):
            expected = module.weight.size * 2
        else:
            expected = 0
        assert row.macs == expected, f"{row.name} ({row.type})"
    assert shapes.conv2d_macs(3, 96, 11, 55) == 105_415_200


def test_summary_fast_path_agrees_with_running_every_layer():
    net = small_net()
    fast, exact = summary(net, (2, 3, 16, 16)), summary(net, (2, 3, 16, 16), exact=True)
    assert fast.rows == exact.rows and fast.output_shape == exact.output_shape


@pytest.mark.parametrize("exact", [False, True])
def test_summary_leaves_the_model_as_it_was(exact):
    net = small_net()
    before = {id(m): dict(vars(m)) for m in net.modules()}
    running = net[1].running_mean.copy()
    summary(net, (2, 3, 16, 16), exact=exact)
    for module in net.modules():
        assert vars(module) == before[id(module)], type(module).__name__
        assert module.training
    np.testing.assert_array_equal(net[1].running_mean, running)


def test_summary_names_the_layer_whose_input_does_not_fit():
    """The classic mistake: a Linear sized for another input (16 * 12 * 12 = 2304 here)."""
    net = nn.Sequential(nn.Conv2d(1, 16, 5), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))
    with pytest.raises(ValueError, match=r"3 \(Linear\) expects in_features = 256, got input "
                                         r"of shape \(1, 2304\)"):
        summary(net, (1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"0 \(Conv2d\) expects C_in = 3, got input of shape \(1, 1, 8, 8\)"):
        summary(nn.Sequential(nn.Conv2d(3, 16, 3)), (1, 1, 8, 8))
    with pytest.raises(ValueError, match="input_size must be a tuple of positive ints"):
        summary(net, (1, 0, 28, 28))


def test_summary_renders_a_table():
    result = summary(small_net(), (1, 3, 16, 16))
    text, markdown = str(result), result.to_markdown()
    assert f"Total params: {result.total_params:,}" in text
    assert f"{result.total_params:,}" in markdown and markdown.count("\n") == len(result.rows) + 2
    dicts = result.as_dicts()
    assert dicts[0]["type"] == "Conv2d" and dicts[0]["params"] == 3 * 8 * 9 + 8


def test_summary_follows_branches_of_a_residual_block():
    block = nn.ResidualBlock(4, 8, stride=2)
    result = summary(block, (1, 4, 8, 8))
    assert result.output_shape == (1, 8, 4, 4)
    assert [row.name for row in result.rows] == ["conv1", "bn1", "conv2", "bn2",
                                                 "shortcut.0", "shortcut.1"]
    assert result.total_params == sum(row.params for row in result.rows)


class _PoolUnpool(nn.Module):
    """An encoder-decoder step: the pooling's indices go on to the unpooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x):
        values, indices = self.pool(self.conv(x))
        return self.unpool(values, indices)


@pytest.mark.parametrize("exact", [False, True])
def test_summary_of_pooling_that_returns_indices(exact):
    """MaxPool2d(return_indices=True) returns (values, indices): the model gets both, the row
    shows the values' shape, as torchinfo does."""
    result = summary(_PoolUnpool(), (2, 2, 8, 8), exact=exact)
    assert [(row.name, row.output_shape) for row in result.rows] == [
        ("conv", (2, 4, 8, 8)), ("pool", (2, 4, 4, 4)), ("unpool", (2, 4, 8, 8))]
    assert result.output_shape == (2, 4, 8, 8)
    # A model whose own output is the pair: the summary's output shape is the values'.
    alone = summary(nn.Sequential(nn.MaxPool2d(2, return_indices=True)), (1, 3, 6, 6), exact=exact)
    assert alone.output_shape == (1, 3, 3, 3) and alone.rows[0].output_shape == (1, 3, 3, 3)
    assert summary(_PoolUnpool(), (2, 2, 8, 8)).rows == summary(_PoolUnpool(), (2, 2, 8, 8), exact=True).rows
