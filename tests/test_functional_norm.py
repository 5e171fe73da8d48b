"""batch_norm and dropout as functions against torch.nn.functional: training and evaluation,
running statistics and momentum, any rank (N, C, ...); the output and every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnlib.functional as F
from cnnlib import nn

pytestmark = pytest.mark.nn


@settings(max_examples=40)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), training=st.booleans(),
       affine=st.booleans(), momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       eps=st.sampled_from([1e-5, 1e-2]), seed=st.integers(0, 2**16))
def test_batch_norm_matches_torch(shape, training, affine, momentum, eps, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + 1
    c = shape[1]
    mean, var = rng.standard_normal(c), rng.random(c) + 0.5
    weight, bias = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    if training and x.size // c < 2:
        with pytest.raises(ValueError, match="more than one"):
            F.batch_norm(x, mean.copy(), var.copy(), weight, bias, training, momentum, eps)
        return
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    tensors = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, weight, bias)]
    out = TF.batch_norm(tensors[0], t_mean, t_var, tensors[1], tensors[2], training, momentum, eps)
    g = rng.standard_normal(shape)
    out.backward(torch.tensor(g))
    ours_mean, ours_var = mean.copy(), var.copy()
    ours = F.batch_norm(x, ours_mean, ours_var, weight, bias, training, momentum, eps)
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours_mean, t_mean.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_var, t_var.numpy(), rtol=1e-12, atol=1e-12)
    grad_x, grad_w, grad_b = F.batch_norm_backward(g, x, mean, var, weight, training, eps)
    np.testing.assert_allclose(grad_x, tensors[0].grad.numpy(), rtol=1e-9, atol=1e-9)
    if affine:
        np.testing.assert_allclose(grad_w, tensors[1].grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grad_b, tensors[2].grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(32, 16, 32, 32), (32, 64, 8, 8), (7, 5, 3)])
def test_float32_batch_norm_on_network_sized_batches_is_as_accurate_as_torchs(shape):
    """ResNet-20's batch shapes in float32 (32,768 values a channel): the output and every
    gradient within a few float32 units of the float64 result, as PyTorch's own float32 ones
    (its error, measured here, sets the bar: at most 4 times it, plus 2 units)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 3 + 5).astype(np.float32)  # an offset, as after a convolution
    g = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    weight, bias = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)

    def torch_results(dtype):
        tensors = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in (x, weight, bias)]
        out = TF.batch_norm(tensors[0], None, None, tensors[1], tensors[2], True)
        out.backward(torch.tensor(g, dtype=dtype))
        return [t.detach().numpy().astype(np.float64) for t in (out, *(t.grad for t in tensors))]

    exact, theirs = torch_results(torch.float64), torch_results(torch.float32)
    out = F.batch_norm(x, None, None, weight, bias, True)
    grad_x, grad_w, grad_b = F.batch_norm_backward(g, x, None, None, weight, True)
    for name, ours, ref, torch32 in zip(("out", "grad_x", "grad_w", "grad_b"),
                                         (out, grad_x, grad_w, grad_b), exact, theirs):
        assert ours.dtype == np.float32 and ours.shape == ref.shape, name
        unit = np.finfo(np.float32).eps * np.abs(ref).max()
        bar = 4 * np.abs(torch32 - ref).max() + 2 * unit
        assert np.abs(ours - ref).max() <= bar, (name, np.abs(ours - ref).max() / unit, bar / unit)


def test_batch_norm_refusals():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.batch_norm(x, np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="pass both"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="momentum must be a number >= 0"):
        F.batch_norm(x, None, None, training=True, momentum=-1)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_native_batch_norm_and_its_saved_statistics_match_aten(training, affine):
    """native_batch_norm returns aten.native_batch_norm's output and saved statistics (empty in
    evaluation), and batch_norm_backward given them matches aten.native_batch_norm_backward and
    its own result without them; the module's backward passes them on."""
    rng = np.random.default_rng(5)
    x, g = rng.standard_normal((4, 3, 5, 6)) * 2 + 3, rng.standard_normal((4, 3, 5, 6))
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    weight, bias = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    t = [None if a is None else torch.tensor(a) for a in (x, weight, bias, mean, var)]
    theirs = torch.ops.aten.native_batch_norm(*t, training, 0.1, 1e-5)
    ours_mean, ours_var = mean.copy(), var.copy()
    ours = F.native_batch_norm(x, weight, bias, ours_mean, ours_var, training, 0.1, 1e-5)
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_mean, t[3].numpy(), rtol=1e-12, atol=1e-12)
    grads_theirs = torch.ops.aten.native_batch_norm_backward(
        torch.tensor(g), t[0], t[1], t[3], t[4], theirs[1], theirs[2], training, 1e-5, [True, True, True])
    saved = {"save_mean": ours[1], "save_invstd": ours[2]} if training else {}
    grads = F.batch_norm_backward(g, x, mean, var, weight, training, 1e-5, **saved)
    recomputed = F.batch_norm_backward(g, x, mean, var, weight, training, 1e-5)
    for a, b, c in zip(grads, grads_theirs, recomputed):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
    if training:
        with pytest.raises(ValueError, match="pass both save_mean and save_invstd"):
            F.batch_norm_backward(g, x, None, None, weight, True, save_mean=ours[1])
        with pytest.raises(ValueError, match=r"save_invstd must have shape \(3,\)"):
            F.batch_norm_backward(g, x, None, None, weight, True, save_mean=ours[1], save_invstd=np.ones(2))


def test_batchnorm_module_backward_takes_the_forwards_statistics(monkeypatch):
    """nn.BatchNorm2d in training hands the forward's saved mean and 1 / std to the backward
    (no second pass over x for them); in evaluation it passes none."""
    seen = []
    backward = F.batch_norm_backward

    def spy(*args, **kwargs):
        seen.append(sorted(kwargs))
        return backward(*args, **kwargs)

    monkeypatch.setattr(F, "batch_norm_backward", spy)
    layer = nn.BatchNorm2d(3)
    x = np.random.default_rng(6).standard_normal((4, 3, 5, 5)).astype(np.float32)
    for training in (True, False):
        layer.train(training)
        layer(x)
        layer.backward(np.ones_like(x))
    assert seen == [["save_invstd", "save_mean"], []]


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_scales_survivors_and_backward_uses_the_same_mask(p):
    x = np.random.default_rng(0).standard_normal((50, 40))
    out, mask = F.dropout(x, p, generator=np.random.default_rng(1), return_mask=True)
    if p == 0:
        assert mask is None and out is x
        return
    kept = mask != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p))
    assert (out[~kept] == 0).all()
    if 0 < p < 1:
        assert abs(1 - kept.mean() - p) < 0.05  # about p of them dropped
    g = np.ones_like(x)
    np.testing.assert_array_equal(F.dropout_backward(g, mask), mask)
    assert F.dropout(x, p, training=False) is x
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        F.dropout(x, 1.5)


def test_dropout_module_is_reproducible_and_calls_the_function():
    x = np.ones((4, 5))
    nn.manual_seed(3)
    first = nn.Dropout(0.5)(x)
    nn.manual_seed(3)
    layer = nn.Dropout(0.5)
    assert np.array_equal(layer(x), first)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), first)
    layer.eval()
    assert layer(x) is x


def test_inplace_dropout_writes_into_x():
    x = np.ones((3, 3))
    out = F.dropout(x, 0.5, inplace=True, generator=np.random.default_rng(0))
    assert out is x


@pytest.mark.parametrize("op, shape, kwargs", [
    ("pad", (2, 3, 4), dict(pad=(1, 2, 2, 0), mode="reflect")),
    ("pad", (2, 3, 3), dict(pad=(1, 1), mode="circular")),
    ("adaptive_avg_pool2d", (2, 3, 7, 5), dict(output_size=(3, 2))),
    ("adaptive_max_pool2d", (3, 6, 6), dict(output_size=4)),
    ("softmax", (4, 5), dict(dim=0)),
    ("log_softmax", (2, 3, 4), dict(dim=1)),
])
def test_check_tools_cover_the_new_functions(op, shape, kwargs):
    """cnnlib.check's gradcheck and compare_with_torch take the new functions by name."""
    from cnnlib.check import compare_with_torch, gradcheck

    x = np.random.default_rng(2).standard_normal(shape)
    gradcheck(op, x, **kwargs)
    assert compare_with_torch(op, x, device="cpu", **kwargs).worst < 1e-12
