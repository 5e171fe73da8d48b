"""cnnlib.nn modules: forward, backward and every parameter gradient against torch.nn."""

import copy

import numpy as np
import pytest
import torch
from conftest import DEVICES

from cnnlib import nn

pytestmark = pytest.mark.nn


def _copy_parameters_into(module, torch_module, device):
    """Give the torch module cnnlib's parameters (and BatchNorm's running statistics)."""
    ours = list(module.named_parameters())
    theirs = list(torch_module.named_parameters())
    assert [n for n, _ in ours] == [n for n, _ in theirs], "parameter names/order differ"
    with torch.no_grad():
        for (name, p), (_, t) in zip(ours, theirs, strict=True):
            assert p.shape == tuple(t.shape), f"{name}: shape {p.shape} vs torch {tuple(t.shape)}"
            t.copy_(torch.tensor(p.data, device=device))
        for ours_bn, theirs_bn in _batchnorm_pairs(module, torch_module):
            theirs_bn.running_mean.copy_(torch.tensor(ours_bn.running_mean, device=device))
            theirs_bn.running_var.copy_(torch.tensor(ours_bn.running_var, device=device))


def _batchnorm_pairs(module, torch_module):
    ours = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    theirs = [m for m in torch_module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return list(zip(ours, theirs, strict=True))


def _assert_close(label, ours, theirs, tol):
    theirs = theirs.detach().cpu().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape, f"{label}: shape {ours.shape}, PyTorch's {theirs.shape}"
    error = np.max(np.abs(ours - theirs), initial=0.0)
    assert np.allclose(ours, theirs, rtol=tol, atol=tol), f"{label}: max abs error {error:.2e}"


def compare_module_with_torch(module, torch_module, x, *, device="cpu", seed=0):
    """Same parameters and input: compare output, grad_x, every parameter grad and BN stats."""
    tol = 1e-9 if x.dtype == np.float64 else 2e-4
    torch_module = torch_module.to(device, torch.float64 if x.dtype == np.float64 else torch.float32)
    torch_module.train(module.training)
    _copy_parameters_into(module, torch_module, device)
    x_t = torch.tensor(x, device=device, requires_grad=True)
    out = module(x)
    out_t = torch_module(x_t)
    _assert_close("output", out, out_t, tol)
    grad_out = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
    _assert_close("grad_x", module.backward(grad_out), _backward(out_t, grad_out, x_t), tol)
    for (name, p), (_, t) in zip(module.named_parameters(), torch_module.named_parameters()):
        _assert_close(f"{name}.grad", p.grad, t.grad, tol)
    for ours_bn, theirs_bn in _batchnorm_pairs(module, torch_module):
        _assert_close("running_mean", ours_bn.running_mean, theirs_bn.running_mean, tol)
        _assert_close("running_var", ours_bn.running_var, theirs_bn.running_var, tol)


def _backward(out_t, grad_out, x_t):
    out_t.backward(torch.tensor(grad_out, device=out_t.device))
    return x_t.grad


LAYERS = {
    "conv": (lambda: nn.Conv2d(4, 6, 3), lambda: torch.nn.Conv2d(4, 6, 3), (2, 4, 9, 9)),
    "conv_strided_grouped": (
        lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding=(1, 2), dilation=(1, 2), groups=2),
        lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=(1, 2), dilation=(1, 2), groups=2),
        (2, 4, 9, 8),
    ),
    "conv_no_bias": (
        lambda: nn.Conv2d(3, 5, 1, bias=False), lambda: torch.nn.Conv2d(3, 5, 1, bias=False),
        (2, 3, 4, 4),
    ),
    "conv_transpose": (
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        (2, 4, 5, 5),
    ),
    "conv_transpose_dilated": (
        lambda: nn.ConvTranspose2d(3, 2, 2, stride=3, bias=False, dilation=2),
        lambda: torch.nn.ConvTranspose2d(3, 2, 2, stride=3, bias=False, dilation=2),
        (1, 3, 4, 3),
    ),
    "max_pool": (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 8, 8)),
    "max_pool_padded": (
        lambda: nn.MaxPool2d(3, stride=2, padding=1),
        lambda: torch.nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 7),
    ),
    "avg_pool": (
        lambda: nn.AvgPool2d(3, stride=2, padding=1),
        lambda: torch.nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 7),
    ),
    "relu": (nn.ReLU, torch.nn.ReLU, (3, 4, 5, 5)),
    "flatten": (nn.Flatten, torch.nn.Flatten, (3, 2, 4, 5)),
    "linear": (lambda: nn.Linear(7, 4), lambda: torch.nn.Linear(7, 4), (5, 7)),
    "linear_no_bias": (
        lambda: nn.Linear(7, 4, bias=False), lambda: torch.nn.Linear(7, 4, bias=False), (5, 7)
    ),
    "batchnorm": (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "sequential": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4 * 3 * 3, 5),
        ),
        lambda: torch.nn.Sequential(
            torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 5),
        ),
        (3, 2, 6, 6),
    ),
}


def _input(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _perturb(module, seed=2):
    """Move parameters away from their defaults (BatchNorm's ones and zeros hide bugs)."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = p.data + 0.3 * rng.standard_normal(p.shape)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_module_matches_torch(layer, mode, dtype, device):
    make, make_torch, shape = LAYERS[layer]
    nn.manual_seed(0)
    module = make()
    if dtype == np.float64:
        module = _as_float64(module)
    _perturb(module)
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean[...] = np.linspace(-0.5, 0.5, bn.num_features)
        bn.running_var[...] = np.linspace(0.5, 2.0, bn.num_features)
    module.train(mode == "train")
    compare_module_with_torch(module, make_torch(), _input(shape, dtype), device=device)


def _as_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
        p.grad = np.zeros_like(p.data)
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean = bn.running_mean.astype(np.float64)
        bn.running_var = bn.running_var.astype(np.float64)
    return module


class _TorchResidualBlock(torch.nn.Module):
    """The same block written in torch, attribute for attribute."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c_out)
        self.conv2 = torch.nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c_out)
        self.shortcut = torch.nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = torch.nn.Sequential(
                torch.nn.Conv2d(c_in, c_out, 1, stride, bias=False), torch.nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        hidden = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(hidden)) + self.shortcut(x))


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("c_in, c_out, stride", [(4, 4, 1), (3, 6, 2), (4, 6, 1)])
def test_residual_block_matches_torch(c_in, c_out, stride, mode):
    nn.manual_seed(0)
    block = nn.ResidualBlock(c_in, c_out, stride, dtype=np.float64)
    _perturb(block)
    block.train(mode == "train")
    expected_shortcut = nn.Identity if (c_in, stride) == (c_out, 1) else nn.Sequential
    assert isinstance(block.shortcut, expected_shortcut)
    compare_module_with_torch(block, _TorchResidualBlock(c_in, c_out, stride), _input(
        (2, c_in, 6, 6), np.float64
    ))


def test_residual_block_children_are_named_as_the_spec():
    names = [name for name, _ in nn.ResidualBlock(2, 4, 2).named_children()]
    assert names == ["conv1", "bn1", "conv2", "bn2", "shortcut"]


def test_batchnorm_running_statistics_follow_torch_over_several_batches():
    nn.manual_seed(0)
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3, dtype=np.float64), torch.nn.BatchNorm2d(
        3, momentum=0.3
    ).double()
    for seed in range(4):
        x = _input((2, 3, 3, 4), np.float64, seed) * (seed + 1) + seed
        ours(x)
        theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)


def test_batchnorm_eval_leaves_running_statistics_alone():
    bn = nn.BatchNorm2d(2).eval()
    bn(_input((2, 2, 3, 3), np.float32))
    np.testing.assert_array_equal(bn.running_mean, [0, 0])
    np.testing.assert_array_equal(bn.running_var, [1, 1])


def test_batchnorm_refuses_one_value_per_channel_in_training():
    with pytest.raises(ValueError, match="one value per channel"):
        nn.BatchNorm2d(3)(_input((1, 3, 1, 1), np.float32))
    nn.BatchNorm2d(3).eval()(_input((1, 3, 1, 1), np.float32))


def test_batchnorm_names_the_channel_mismatch():
    with pytest.raises(ValueError, match=r"C = 4 channels.*num_features = 3"):
        nn.BatchNorm2d(3)(_input((2, 4, 3, 3), np.float32))


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest():
    nn.manual_seed(0)
    drop = nn.Dropout(0.3)
    x = np.ones((200, 500), np.float32)
    out = drop(x)
    assert out.dtype == np.float32
    assert np.mean(out == 0) == pytest.approx(0.3, abs=0.005)
    np.testing.assert_allclose(np.unique(out), [0, 1 / 0.7], rtol=1e-6)
    assert out.mean() == pytest.approx(1.0, abs=0.01)
    grad = drop.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(grad, 2 * out)  # the same mask in backward


def test_dropout_is_the_identity_in_eval_mode():
    drop = nn.Dropout(0.9).eval()
    x = _input((4, 5), np.float32)
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)


def test_dropout_edges_and_reproducibility():
    x = _input((10, 10), np.float32)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), np.zeros_like(x))
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    nn.manual_seed(5)
    first = nn.Dropout()(x)
    nn.manual_seed(5)
    np.testing.assert_array_equal(nn.Dropout()(x), first)
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        nn.Dropout(1.5)


INIT_CASES = [
    (lambda: nn.Conv2d(16, 32, 3), lambda: torch.nn.Conv2d(16, 32, 3), 16 * 9),
    (lambda: nn.Conv2d(8, 32, 3, groups=4), lambda: torch.nn.Conv2d(8, 32, 3, groups=4), 2 * 9),
    # The transposed conv's fan_in is read off weight.shape[1] = out_channels / groups.
    (lambda: nn.ConvTranspose2d(64, 8, 3, groups=2),
     lambda: torch.nn.ConvTranspose2d(64, 8, 3, groups=2), 4 * 9),
    (lambda: nn.Linear(50, 200), lambda: torch.nn.Linear(50, 200), 50),
]


@pytest.mark.parametrize("make, make_torch, fan_in", INIT_CASES)
def test_default_initialisation_is_pytorchs(make, make_torch, fan_in):
    nn.manual_seed(0)
    ours, theirs = make(), make_torch()
    bound = 1 / np.sqrt(fan_in)
    for (name, p), (torch_name, t) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert (name, p.shape, p.dtype) == (torch_name, tuple(t.shape), np.float32)
        t_abs = t.detach().abs()
        assert float(t_abs.max()) <= bound  # torch's own bound is the one we use
        assert np.abs(p.data).max() <= bound
        if p.size > 500:  # U(-b, b) has standard deviation b / sqrt(3) and fills its range
            assert p.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
            assert np.abs(p.data).max() > 0.97 * bound
            assert float(t_abs.max()) > 0.97 * bound


def test_manual_seed_makes_initialisation_reproducible():
    nn.manual_seed(3)
    first = nn.Conv2d(2, 3, 3).weight.data
    nn.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(2, 3, 3).weight.data, first)
    assert not np.array_equal(nn.Conv2d(2, 3, 3).weight.data, first)


def test_pytorch_attribute_names_for_model_summaries():
    conv = nn.Conv2d(3, 8, 5, stride=2, padding=1, groups=1)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (
        3, 8, (5, 5), (2, 2))
    assert (conv.padding, conv.dilation, conv.groups) == ((1, 1), (1, 1), 1)
    tconv = nn.ConvTranspose2d(8, 3, 4, stride=2, output_padding=1)
    assert tconv.output_padding == (1, 1) and tconv.weight.shape == (8, 3, 4, 4)
    pool = nn.MaxPool2d(3, padding=1)
    assert (pool.kernel_size, pool.stride, pool.padding) == ((3, 3), (3, 3), (1, 1))
    lin = nn.Linear(10, 2, bias=False)
    assert (lin.in_features, lin.out_features, lin.bias) == (10, 2, None)
    bn = nn.BatchNorm2d(4, eps=1e-3, momentum=0.2)
    assert (bn.num_features, bn.eps, bn.momentum) == (4, 1e-3, 0.2)
    assert bn.running_mean.shape == bn.running_var.shape == (4,)
    assert nn.Dropout(0.25).p == 0.25


def _small_net():
    nn.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    )


def test_sequential_is_indexable_sized_and_iterable():
    net = _small_net()
    assert len(net) == 5
    assert isinstance(net[0], nn.Conv2d) and isinstance(net[-1], nn.Linear)
    assert [type(m).__name__ for m in net[1:3]] == ["BatchNorm2d", "ReLU"]
    assert list(net) == list(net.children())
    assert [n for n, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    with pytest.raises(TypeError, match="argument 1 must be a Module"):
        nn.Sequential(nn.ReLU(), np.zeros(3))


def test_gradients_accumulate_until_zero_grad():
    net = _small_net()
    x = _input((2, 1, 6, 6), np.float32)
    grad_out = _input((2, 3), np.float32, seed=4)
    net(x)
    net.backward(grad_out)
    once = [p.grad.copy() for p in net.parameters()]
    net(x)
    net.backward(grad_out)
    for p, g in zip(net.parameters(), once, strict=True):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-5, atol=1e-6)
    net.zero_grad()
    assert all(not p.grad.any() for p in net.parameters())


def test_train_and_eval_reach_every_submodule():
    block = nn.Sequential(nn.ResidualBlock(2, 2), nn.Dropout())
    assert all(m.training for m in block.modules())
    assert block.eval() is block
    assert not any(m.training for m in block.modules())
    block.train()
    assert all(m.training for m in block.modules())


def test_deepcopy_gives_an_independent_module():
    net = _small_net()
    x = _input((2, 1, 6, 6), np.float32)
    clone = copy.deepcopy(net)
    before = [p.data.copy() for p in net.parameters()]
    clone[0].weight.data += 1.0
    clone(x)
    clone.backward(np.ones((2, 3), np.float32))
    for p, original in zip(net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, original)
        assert not p.grad.any()
    np.testing.assert_array_equal(net[1].running_mean, 0)
    assert clone[1].running_mean.any()
    assert clone[0].weight is not net[0].weight


def test_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match="Conv2d.backward was called before forward"):
        nn.Conv2d(1, 1, 1).backward(np.zeros((1, 1, 1, 1), np.float32))


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="groups=3 must divide both in_channels=4"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        nn.Conv2d(1, 1, 2.5)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(2, 2, dtype=np.int32)


def test_cross_entropy_loss_value_and_gradient_match_torch():
    logits = _input((6, 4), np.float64)
    target = np.array([0, 3, 1, 1, 2, 0])
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(logits, target)
    logits_t = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.CrossEntropyLoss()(logits_t, torch.tensor(target))
    loss_t.backward()
    assert isinstance(loss, float)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(loss_fn.backward(), logits_t.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(loss_fn.backward(0.5), 0.5 * logits_t.grad.numpy(), rtol=1e-10)


def test_loss_backward_fills_every_grad_of_a_network():
    net = _small_net()
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(net(_input((4, 1, 6, 6), np.float32)), np.array([0, 1, 2, 1]))
    grad_x = net.backward(loss_fn.backward())
    assert grad_x.shape == (4, 1, 6, 6) and grad_x.dtype == np.float32
    assert all(p.grad.any() and p.grad.dtype == np.float32 for p in net.parameters())


def test_repr_reads_like_pytorchs():
    text = repr(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()))
    assert "(0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text
    assert "(1): ReLU()" in text
