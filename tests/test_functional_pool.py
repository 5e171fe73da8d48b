"""Pooling against torch.nn.functional: max_pool2d (dilation, ceil_mode, return_indices),
max_unpool2d, avg_pool2d (ceil_mode, count_include_pad, divisor_override), adaptive pooling;
random settings (hypothesis), float64, batched and unbatched, forward and gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from test_functional_conv import assert_close, torch_forward_backward

import cnnlib.functional as F
from cnnlib import models, nn

pytestmark = pytest.mark.pool


@st.composite
def pool_settings(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    size = [dd * (kk - 1) + 1 + draw(st.integers(0, 5)) for kk, dd in zip(k, d)]
    shape = ((2,) if draw(st.booleans()) else ()) + (draw(st.integers(1, 2)), *size)
    return k, s, p, d, shape, draw(st.booleans()), draw(st.integers(0, 2**16))


@settings(max_examples=40)
@given(setting=pool_settings())
def test_max_pool2d_matches_torch(setting):
    k, s, p, d, shape, ceil, seed = setting
    x = np.random.default_rng(seed).standard_normal(shape)
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    out, g, (grad,) = torch_forward_backward(lambda t: TF.max_pool2d(t, **kw), [x])
    ours, indices = F.max_pool2d(x, **kw, return_indices=True)
    assert_close(ours, out, f"forward {setting}")
    _, expected_indices = TF.max_pool2d(torch.tensor(x), **kw, return_indices=True)
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    assert indices.dtype == np.int64
    assert_close(F.max_pool2d_backward(g, x, **kw), grad, "grad_x")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)])
def test_max_pool2d_gradient_is_pytorchs_bit_for_bit_with_signed_zeros_and_infinities(dtype, kw):
    """The gradient of each window goes to its maximum, +0.0 everywhere else, whatever the
    gradient holds (negative numbers, infinities, NaNs); overlapping windows add up (in another
    order than PyTorch's: there, within a few units of the gradient's scale)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 3, 12, 12)).astype(dtype)
    x[:, :, ::3, ::3] = 1.0  # ties: the first maximum takes the gradient
    out = F.max_pool2d(x, **kw)
    for special in (None, np.inf, -np.inf, np.nan):
        g = rng.standard_normal(out.shape).astype(dtype)
        if special is not None:
            g.flat[::7] = special
        xt = torch.tensor(x, requires_grad=True)
        TF.max_pool2d(xt, **kw).backward(torch.tensor(g))
        ours, theirs = F.max_pool2d_backward(g, x, **kw), xt.grad.numpy()
        assert ours.dtype == dtype
        if "stride" in kw:
            scale = np.abs(g[np.isfinite(g)]).max()
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=8 * np.finfo(dtype).eps * scale)
        else:
            np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(ours == 0, theirs == 0)
        np.testing.assert_array_equal(np.signbit(ours[ours == 0]), np.signbit(theirs[theirs == 0]))


@settings(max_examples=40)
@given(setting=pool_settings(dilation=False), include=st.booleans(),
       divisor=st.sampled_from([None, None, 1, 3, -2]))
def test_avg_pool2d_matches_torch(setting, include, divisor):
    k, s, p, _, shape, ceil, seed = setting
    x = np.random.default_rng(seed).standard_normal(shape)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=include,
              divisor_override=divisor)
    out, g, (grad,) = torch_forward_backward(lambda t: TF.avg_pool2d(t, **kw), [x])
    assert_close(F.avg_pool2d(x, **kw), out, f"forward {setting}")
    assert_close(F.avg_pool2d_backward(g, x, **kw), grad, "grad_x")


@settings(max_examples=30)
@given(setting=pool_settings(dilation=False), bigger=st.booleans())
def test_max_unpool2d_inverts_max_pool2d_as_torch(setting, bigger):
    k, s, p, _, shape, _, seed = setting
    x = np.random.default_rng(seed).standard_normal(shape)
    pooled, indices = F.max_pool2d(x, k, s, p, return_indices=True)
    output_size = None
    if bigger:  # a size a stride-leftover bigger than the default, as for an odd input
        output_size = [min(n, (m - 1) * ss - 2 * pp + kk + ss - 1) for n, m, ss, pp, kk in zip(
            shape[-2:], pooled.shape[-2:], s or k, p, k)]
    kw = dict(kernel_size=k, stride=s, padding=p, output_size=output_size)
    try:
        out, g, (grad,) = torch_forward_backward(
            lambda t: TF.max_unpool2d(t, torch.tensor(indices), **kw), [pooled])
    except (ValueError, RuntimeError):
        with pytest.raises(ValueError):
            F.max_unpool2d(pooled, indices, **kw)
        return
    assert_close(F.max_unpool2d(pooled, indices, **kw), out, "forward")
    assert_close(F.max_unpool2d_backward(g, pooled, indices, **kw), grad, "grad_x")


@settings(max_examples=40)
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.one_of(st.none(), st.integers(1, 9)),
       ow=st.integers(1, 9), batched=st.booleans(), seed=st.integers(0, 2**16))
def test_adaptive_pools_match_torch(h, w, oh, ow, batched, seed):
    x = np.random.default_rng(seed).standard_normal(((2,) if batched else ()) + (3, h, w))
    size = (oh, ow)
    out, g, (grad,) = torch_forward_backward(lambda t: TF.adaptive_avg_pool2d(t, size), [x])
    assert_close(F.adaptive_avg_pool2d(x, size), out, "avg forward")
    assert_close(F.adaptive_avg_pool2d_backward(g, x, size), grad, "avg grad_x")
    out, g, (grad,) = torch_forward_backward(lambda t: TF.adaptive_max_pool2d(t, size), [x])
    ours, indices = F.adaptive_max_pool2d(x, size, return_indices=True)
    assert_close(ours, out, "max forward")
    np.testing.assert_array_equal(indices, TF.adaptive_max_pool2d(torch.tensor(x), size, True)[1].numpy())
    assert_close(F.adaptive_max_pool2d_backward(g, x, size), grad, "max grad_x")


@pytest.mark.parametrize("ours, theirs, shape", [
    (lambda: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True), (2, 3, 9, 8)),
    (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (3, 8, 9)),
    (lambda: nn.AvgPool2d(2, divisor_override=3), lambda: torch.nn.AvgPool2d(2, divisor_override=3),
     (1, 2, 6, 6)),
    (lambda: nn.AdaptiveAvgPool2d((3, None)), lambda: torch.nn.AdaptiveAvgPool2d((3, None)), (2, 2, 7, 5)),
    (lambda: nn.AdaptiveMaxPool2d(2), lambda: torch.nn.AdaptiveMaxPool2d(2), (2, 5, 5)),
])
def test_pooling_modules_match_torch(ours, theirs, shape):
    x = np.random.default_rng(3).standard_normal(shape)
    layer = ours()
    out, g, (grad,) = torch_forward_backward(theirs(), [x])
    assert_close(layer(x), out, "forward")
    assert_close(layer.backward(g), grad, "grad_x")


def test_max_unpool2d_module_round_trip():
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 5))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    pooled, indices = pool(x)
    expected = torch.nn.MaxUnpool2d(2)(torch.tensor(pooled), torch.tensor(indices), output_size=x.shape)
    assert_close(unpool(pooled, indices, output_size=x.shape), expected.numpy(), "unpool")
    g = np.ones(x.shape)
    assert_close(unpool.backward(g), np.ones(pooled.shape), "grad")


def test_pooling_refusals_name_the_rule():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="padding must be at most half the kernel size"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="divisor_override must not be zero"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"output_size \(10, 10\) along H must lie between"):
        F.max_unpool2d(x, np.zeros(x.shape, np.int64), 2, output_size=(10, 10))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, H_out W_out\) = \[0, 64\)"):
        F.max_unpool2d(x, np.full(x.shape, 64), 2)
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"unbatched, 3D\) or \(N, C, H, W\)"):
        F.max_pool2d(x[0, 0], 2)


@pytest.mark.parametrize("build, size", [
    (lambda: models.resnet_cifar(20), (2, 3, 32, 32)),
    (lambda: models.googlenet(num_classes=10, image_size=64), (1, 3, 64, 64)),
])
def test_models_pool_globally(build, size):
    """GoogLeNet and ResNet end in a global average pool, as torchvision's (AdaptiveAvgPool2d)."""
    model = build()
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d) and model.avgpool.output_size == 1
    x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    features = x
    for name, layer in model.named_children():
        if name == "avgpool":
            break
        features = layer(features)
    np.testing.assert_allclose(model.avgpool(features)[:, :, 0, 0], features.mean(axis=(2, 3)), rtol=1e-5)
