"""The case-study networks: parameter counts against PyTorch builds and the lectures' numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.bench_step import torch_resnet
from cnnlib import models, nn
from cnnlib.shapes import summary

pytestmark = pytest.mark.shapes
tn = torch.nn


def torch_params(build) -> int:
    """Parameters of a PyTorch model built on the meta device (no memory, no time)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def params_by_name(model, input_size) -> dict[str, int]:
    return {row.name: row.params for row in summary(model, input_size).rows if row.params}


@pytest.fixture
def cheap_init(monkeypatch):
    """Counts do not depend on the values: skip drawing 100M+ random numbers."""
    monkeypatch.setattr(nn.init, "uniform", lambda shape, bound, dtype: np.zeros(shape, dtype))


# ---------------------------------------------------------------------------- LeNet-5


def test_lenet5_per_layer_params_and_shapes():
    model = models.lenet5()
    result = summary(model, (1, 1, 32, 32))
    assert params_by_name(model, (1, 1, 32, 32)) == {
        "c1": 156, "c3": 2_416, "c5": 48_120, "f6": 10_164, "output": 850}
    shapes = {row.name: row.output_shape for row in result.rows}
    assert shapes["c1"] == (1, 6, 28, 28) and shapes["s4"] == (1, 16, 5, 5)
    assert shapes["c5"] == (1, 120, 1, 1) and result.output_shape == (1, 10)
    reference = tn.Sequential(tn.Conv2d(1, 6, 5), tn.Conv2d(6, 16, 5), tn.Conv2d(16, 120, 5),
                              tn.Linear(120, 84), tn.Linear(84, 10))
    assert result.total_params == sum(p.numel() for p in reference.parameters()) == 61_706


def test_lenet5_trains_on_a_batch():
    from cnnlib.data import load_digits

    nn.manual_seed(0)
    model = models.lenet5(pooling="avg")
    x, y = load_digits(size=32)[:2]
    logits = model(x[:8])
    grad = np.zeros_like(logits)
    grad[np.arange(8), y[:8]] = -1.0
    assert model.backward(grad).shape == (8, 1, 32, 32)
    assert all(np.abs(p.grad).sum() > 0 for p in model.parameters())


# ---------------------------------------------------------------------------- AlexNet and VGG


def test_alexnet_matches_the_lecture_counts(cheap_init):
    """Deck 002: P_C1 = 34,944 ... P_C5 = 884,992, then 37,752,832, 16,781,312, 4,097,000."""
    model = models.alexnet()
    assert params_by_name(model, (1, 3, 227, 227)) == {
        "conv1": 34_944, "conv2": 614_656, "conv3": 885_120, "conv4": 1_327_488,
        "conv5": 884_992, "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000}
    rows = {row.name: row for row in summary(model, (1, 3, 227, 227)).rows}
    assert rows["conv1"].output_shape == (1, 96, 55, 55)
    assert rows["pool5"].output_shape == (1, 256, 6, 6)


def torch_vgg(config: str):
    layers, channels = [], 3
    for entry in models.VGG_CONFIGS[config]:
        if entry == "M":
            layers.append(tn.MaxPool2d(2))
            continue
        out, kernel = entry if isinstance(entry, tuple) else (entry, 3)
        layers += [tn.Conv2d(channels, out, kernel, padding=kernel // 2), tn.ReLU()]
        channels = out
    return tn.Sequential(*layers, tn.Flatten(), tn.Linear(25088, 4096), tn.Linear(4096, 4096),
                         tn.Linear(4096, 1000))


def test_vgg16_has_138_million_parameters():
    """Built for real, random weights and all: the deck's "about 138M"."""
    model = models.vgg("D")
    result = summary(model, (1, 3, 224, 224))
    assert result.total_params == 138_357_544
    assert result.output_shape == (1, 1000)
    assert round(result.total_macs / 1e9, 1) == 15.5


@pytest.mark.parametrize("config", ["A", "B", "C", "E"])
def test_vgg_configs_match_pytorch(config, cheap_init):
    model = models.vgg(config)
    result = summary(model, (1, 3, 224, 224))
    assert result.total_params == torch_params(lambda: torch_vgg(config))
    convs = [row for row in result.rows if row.type == "Conv2d"]
    assert len(convs) + 3 == {"A": 11, "B": 13, "C": 16, "E": 19}[config]
    if config == "E":
        assert result.total_params == 143_667_240


# ---------------------------------------------------------------------------- GoogLeNet


class TorchInception(tn.Module):
    def __init__(self, c_in, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.b1 = tn.Sequential(tn.Conv2d(c_in, c1, 1), tn.ReLU())
        self.b2 = tn.Sequential(tn.Conv2d(c_in, c3r, 1), tn.ReLU(), tn.Conv2d(c3r, c3, 3, 1, 1),
                                tn.ReLU())
        self.b3 = tn.Sequential(tn.Conv2d(c_in, c5r, 1), tn.ReLU(), tn.Conv2d(c5r, c5, 5, 1, 2),
                                tn.ReLU())
        self.b4 = tn.Sequential(tn.MaxPool2d(3, 1, 1), tn.Conv2d(c_in, pp, 1), tn.ReLU())

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


def test_inception_block_forward_and_backward_match_pytorch():
    nn.manual_seed(0)
    block = models.InceptionBlock(6, 2, 3, 4, 2, 3, 2)
    reference = TorchInception(6, 2, 3, 4, 2, 3, 2).double()
    for mine, theirs in zip(block.parameters(), reference.parameters(), strict=True):
        mine.data = mine.data.astype(np.float64)  # float64 for a tight comparison
        mine.grad = np.zeros_like(mine.data)
        theirs.data = torch.from_numpy(mine.data.copy())
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 5))
    out = block(x)
    x_t = torch.from_numpy(x).requires_grad_()
    out_t = reference(x_t)
    np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-10)
    assert out.shape == (2, block.out_channels, 5, 5) == (2, 11, 5, 5)
    grad_out = np.random.default_rng(1).standard_normal(out.shape)
    out_t.backward(torch.from_numpy(grad_out))
    np.testing.assert_allclose(block.backward(grad_out), x_t.grad.numpy(), atol=1e-10)
    for mine, theirs in zip(block.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), atol=1e-10)


def test_googlenet_params_and_inception_widths():
    model = models.googlenet()
    result = summary(model, (1, 3, 224, 224))
    widths = [block.out_channels for name, block in model.named_children()
              if name.startswith("inception")]
    assert widths == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    avgpool = next(row for row in result.rows if row.name == "avgpool")
    assert avgpool.input_shape == (1, 1024, 7, 7) and result.output_shape == (1, 1000)

    def reference():
        blocks = [TorchInception(c_in, *widths) for c_in, widths in zip(
            [192, 256, 480, 512, 512, 512, 528, 832, 832], models._INCEPTION.values(),
            strict=True)]
        return tn.Sequential(tn.Conv2d(3, 64, 7), tn.Conv2d(64, 64, 1), tn.Conv2d(64, 192, 3),
                             *blocks, tn.Linear(1024, 1000))

    assert result.total_params == torch_params(reference)
    assert 6e6 < result.total_params < 7.1e6


def test_googlenet_grouped_by_block_matches_the_paper_ops():
    """Table 1 of the paper: inception (3a) 128M ops, (3b) 304M, output 28x28x256, 28x28x480."""
    rows = {row.name: row for row in summary(models.googlenet(), (1, 3, 224, 224)).grouped().rows}
    assert rows["inception3a"].output_shape == (1, 256, 28, 28)
    assert rows["inception3b"].input_shape == (1, 256, 28, 28)
    assert rows["inception3b"].output_shape == (1, 480, 28, 28)
    assert [round(rows[f"inception3{x}"].macs / 1e6) for x in "ab"] == [128, 304]
    assert rows["inception3a"].type == "InceptionBlock"


# ---------------------------------------------------------------------------- ResNet


def test_resnet18_matches_pytorch():
    result = summary(models.resnet18(), (1, 3, 224, 224))
    stem = tn.Sequential(tn.Conv2d(3, 64, 7, bias=False), tn.BatchNorm2d(64))
    assert result.total_params == 11_689_512 == torch_params(
        lambda: torch_resnet(stem, (64, 128, 256, 512), (2, 2, 2, 2), 1000))
    assert result.output_shape == (1, 1000)
    stages = result.grouped(depth=1)
    assert [row.name for row in stages.rows][4:8] == ["layer1", "layer2", "layer3", "layer4"]
    assert sum(row.params for row in stages.rows) == result.total_params
    assert stages.rows[7].output_shape == (1, 512, 7, 7)


def test_resnet_cifar_matches_pytorch():
    result = summary(models.resnet_cifar(20), (1, 3, 32, 32))
    stem = tn.Sequential(tn.Conv2d(3, 16, 3, bias=False), tn.BatchNorm2d(16))
    assert result.total_params == torch_params(
        lambda: torch_resnet(stem, (16, 32, 64), (3, 3, 3), 10))
    convs = [row for row in result.rows if row.type == "Conv2d" and row.name.count(".") < 3]
    assert len(convs) + 1 == 20  # depth counts the 3x3 convs and the fc, not the shortcuts
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.resnet_cifar(21)


# ---------------------------------------------------------------------------- MobileNet

# Deck 002's MobileNet table: the input size of each "Conv dw" row (H, C).
MOBILENET_DW_INPUTS = [(112, 32), (112, 64), (56, 128), (56, 128), (28, 256), (28, 256),
                       *[(14, 512)] * 5, (14, 512), (7, 1024)]


def test_mobilenet_v1_follows_the_table():
    model = models.mobilenet_v1()
    result = summary(model, (1, 3, 224, 224))
    depthwise = [row for row in result.rows if row.name.endswith(".dw")]
    assert [(row.input_shape[2], row.input_shape[1]) for row in depthwise] == MOBILENET_DW_INPUTS

    def reference():
        layers, channels = [tn.Conv2d(3, 32, 3, bias=False), tn.BatchNorm2d(32)], 32
        for out, _ in models.MOBILENET_V1_BLOCKS:
            layers += [tn.Conv2d(channels, channels, 3, groups=channels, bias=False),
                       tn.BatchNorm2d(channels), tn.Conv2d(channels, out, 1, bias=False),
                       tn.BatchNorm2d(out)]
            channels = out
        return tn.Sequential(*layers, tn.Linear(1024, 1000))

    assert result.total_params == torch_params(reference) == 4_231_976
    assert round(result.total_macs / 1e6) == 569  # the paper: 569 million mult-adds


def test_separable_multiplications_of_the_deck_example():
    """Deck 002: 1,228,800 vs 4,800 + 49,152 (the slide adds them up to 52,952; it is 53,952)."""
    counts = models.separable_multiplications(3, 256, 5, 8)
    assert counts == {"standard": 1_228_800, "depthwise": 4_800, "pointwise": 49_152,
                      "separable": 53_952}


# ---------------------------------------------------------------------------- plain vs residual


class TorchSkip(tn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return torch.relu(self.body(x) + x)


def torch_digits_net(blocks, residual, batch_norm, channels=8):
    """PyTorch's version of ``models.digits_net``, parameters in the same order."""
    def conv(c_in, c_out):
        layers = [tn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
        return layers + [tn.BatchNorm2d(c_out)] if batch_norm else layers

    layers = [*conv(1, channels), tn.ReLU()]
    for _ in range(blocks):
        body = tn.Sequential(*conv(channels, channels), tn.ReLU(), *conv(channels, channels))
        layers.append(TorchSkip(body) if residual else tn.Sequential(body, tn.ReLU()))
    return tn.Sequential(*layers, tn.AdaptiveAvgPool2d(1), tn.Flatten(), tn.Linear(channels, 10))


@pytest.mark.parametrize("residual", [True, False], ids=["residual", "plain"])
@pytest.mark.parametrize("batch_norm", [True, False], ids=["bn", "no-bn"])
def test_digits_net_forward_and_backward_match_pytorch(residual, batch_norm):
    """Same weights, same batch: the outputs, the input gradient and every weight gradient
    agree with PyTorch (training mode, so BatchNorm uses the batch's statistics)."""
    nn.manual_seed(0)
    ours = models.digits_net(3, residual=residual, batch_norm=batch_norm)
    theirs = torch_digits_net(3, residual, batch_norm)
    mine, their = list(ours.parameters()), list(theirs.parameters())
    assert [p.shape for p in mine] == [tuple(p.shape) for p in their]
    with torch.no_grad():
        for p, t in zip(mine, their, strict=True):
            t.copy_(torch.from_numpy(p.data))
    rng = np.random.default_rng(1)
    x = rng.random((6, 1, 8, 8), dtype=np.float32)
    grad = rng.standard_normal((6, 10)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    grad_x = ours.backward(grad)
    tout.backward(torch.from_numpy(grad))
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), rtol=1e-3, atol=1e-6)
    for p, t in zip(mine, their, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-3, atol=1e-5)


def test_digits_net_plain_and_residual_differ_only_by_the_skip():
    nn.manual_seed(3)
    plain = models.digits_net(4, residual=False)
    nn.manual_seed(3)
    residual = models.digits_net(4, residual=True)
    for p, q in zip(plain.parameters(), residual.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    rows = summary(residual, (2, 1, 8, 8)).rows
    assert len([r for r in rows if r.type == "Conv2d"]) == 2 * 4 + 1
    assert summary(plain, (2, 1, 8, 8)).output_shape == (2, 10)
    # With every body's last BatchNorm scaled to 0, a residual block is relu(x) = x (x >= 0
    # after the stem's ReLU): the network reduces to stem, pool and fc; a plain one does not.
    for block in [m for m in residual.modules() if isinstance(m, models.Skip)]:
        block.body[-1].weight.data[:] = 0
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    shallow = nn.Sequential(residual.stem, residual.pool, residual.flatten, residual.fc)
    np.testing.assert_allclose(residual(x), shallow(x), rtol=1e-5, atol=1e-6)


def test_skip_and_digits_net_reject_bad_arguments():
    skip = models.Skip(nn.Conv2d(2, 3, 1))
    with pytest.raises(ValueError, match="body must keep the shape"):
        skip(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(TypeError, match="body must be a Module"):
        models.Skip(3)
    with pytest.raises(ValueError, match="blocks must be an int >= 1"):
        models.digits_net(0)


# ---------------------------------------------------------------------------- all of them


@pytest.mark.parametrize("build, input_size", [
    (lambda: models.googlenet(image_size=64), (1, 3, 64, 64)),
    (lambda: models.mobilenet_v1(width=0.25, image_size=64), (2, 3, 64, 64)),
    (lambda: models.resnet18(num_classes=10, image_size=64), (1, 3, 64, 64)),
    (models.resnet_cifar, (2, 3, 32, 32)),
    (models.lenet5, (2, 1, 32, 32)),
], ids=["googlenet", "mobilenet", "resnet18", "resnet_cifar", "lenet5"])
def test_summary_shapes_agree_with_running_the_model(build, input_size):
    model = build()
    fast, exact = summary(model, input_size), summary(model, input_size, exact=True)
    assert fast.rows == exact.rows and fast.output_shape == exact.output_shape


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="config must be one of"):
        models.vgg("F")
    with pytest.raises(ValueError, match="multiple of 32"):
        models.googlenet(image_size=100)
    with pytest.raises(ValueError, match="pooling must be 'max' or 'avg'"):
        models.lenet5(pooling="sum")
    with pytest.raises(TypeError, match="NamedSequential: fc must be a Module"):
        models.NamedSequential(fc=3)
