"""conv1d / conv2d / conv_transpose2d / pad against torch.nn.functional: every argument PyTorch
has, random settings (hypothesis), float64, the forward and every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnlib.functional as F
from cnnlib import nn

pytestmark = [pytest.mark.conv, pytest.mark.filterwarnings("ignore:Using padding='same'")]


def torch_forward_backward(fn, arrays, grad_seed=0, **kwargs):
    """PyTorch's output and the gradient of <output, g> for each array (g random)."""
    tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors, **kwargs)
    g = np.random.default_rng(grad_seed).standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    return out.detach().numpy(), g, [None if t is None else t.grad.numpy() for t in tensors]


def assert_close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10, err_msg=what)


@st.composite
def conv2d_settings(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))
    stride = 1 if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = [d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation)]
    batched = draw(st.booleans())
    return dict(groups=groups, c_in=c_in, c_out=c_out, kernel=kernel, dilation=dilation,
                padding=padding, stride=stride, size=size, batched=batched,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=30)
@given(s=conv2d_settings())
def test_conv2d_forward_and_gradients_match_torch(s):
    rng = np.random.default_rng(s["seed"])
    x = rng.standard_normal(((2,) if s["batched"] else ()) + (s["c_in"], *s["size"]))
    w = rng.standard_normal((s["c_out"], s["c_in"] // s["groups"], *s["kernel"]))
    b = rng.standard_normal(s["c_out"]) if s["bias"] else None
    kw = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"], groups=s["groups"])
    out, g, grads = torch_forward_backward(TF.conv2d, [x, w, b], **kw)
    assert_close(F.conv2d(x, w, b, **kw), out, f"forward {s}")
    grad_x, grad_w, grad_b = F.conv2d_backward(g, x, w, **kw)
    assert grad_x.shape == x.shape
    assert_close(grad_x, grads[0], "grad_x")
    assert_close(grad_w, grads[1], "grad_weight")
    if b is not None:
        assert_close(grad_b, grads[2], "grad_bias")


@settings(max_examples=30)
@given(k=st.integers(1, 5), d=st.integers(1, 3), n=st.integers(0, 5), c=st.integers(1, 3),
       padding=st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3)),
       stride=st.integers(1, 3), batched=st.booleans(), seed=st.integers(0, 2**16))
def test_conv1d_forward_and_gradients_match_torch(k, d, n, c, padding, stride, batched, seed):
    rng = np.random.default_rng(seed)
    stride = 1 if padding == "same" else stride
    x = rng.standard_normal(((3,) if batched else ()) + (c, d * (k - 1) + 1 + n))
    w, b = rng.standard_normal((2, c, k)), rng.standard_normal(2)
    kw = dict(stride=stride, padding=padding, dilation=d)
    out, g, grads = torch_forward_backward(TF.conv1d, [x, w, b], **kw)
    assert_close(F.conv1d(x, w, b, **kw), out, "forward")
    for ours, theirs in zip(F.conv1d_backward(g, x, w, **kw), grads):
        assert_close(ours, theirs, "gradient")


@settings(max_examples=25)
@given(k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), op=st.integers(0, 2),
       d=st.integers(1, 2), n=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_unbatched_conv_transpose2d_matches_torch(k, s, p, op, d, n, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((2, n, n + 1)), rng.standard_normal((2, 3, k, k)), rng.standard_normal(3)
    kw = dict(stride=s, padding=p, output_padding=op, dilation=d)
    try:
        out, g, grads = torch_forward_backward(TF.conv_transpose2d, [x, w, b], **kw)
    except RuntimeError:
        with pytest.raises(ValueError, match="output_padding|padding"):
            F.conv_transpose2d(x, w, b, **kw)
        return
    assert_close(F.conv_transpose2d(x, w, b, **kw), out, "forward")
    for ours, theirs in zip(F.conv_transpose2d_backward(g, x, w, **kw), grads):
        assert_close(ours, theirs, "gradient")


def test_same_padding_is_refused_with_a_stride_as_torch_does():
    x, w = np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3))
    with pytest.raises(RuntimeError, match="not supported for strided"):
        TF.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for strided"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="'same' or 'valid', got 'full'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(TypeError, match="no string padding"):
        F.conv_transpose2d(x, w, padding="same")


@st.composite
def pad_settings(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    axes = draw(st.integers(1, 3))
    extra = draw(st.integers(0 if mode == "constant" else 1, 2))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(axes + extra))
    pad = tuple(draw(st.integers(-2, 4)) for _ in range(2 * axes))
    value = draw(st.sampled_from([None, 0.0, 2.5])) if mode == "constant" else None
    return mode, shape, pad, value, draw(st.integers(0, 2**16))


@settings(max_examples=60)
@given(setting=pad_settings())
def test_pad_matches_torch_and_refuses_what_torch_refuses(setting):
    mode, shape, pad, value, seed = setting
    x = np.random.default_rng(seed).standard_normal(shape)
    kw = dict(mode=mode) if value is None else dict(mode=mode, value=value)
    kept = [n - max(-b, 0) - max(-a, 0) for n, b, a in zip(shape[::-1], pad[::2], pad[1::2])]
    if mode == "circular" and any(max(b, a) > k for k, b, a in zip(kept, pad[::2], pad[1::2])):
        # PyTorch returns uninitialised memory here (wrapping more than the cropped axis holds)
        with pytest.raises(ValueError, match="wraps around more than once|crops"):
            F.pad(x, pad, **kw)
        return
    try:
        out, g, (grad,) = torch_forward_backward(lambda t: TF.pad(t, pad, **kw), [x])
    except (RuntimeError, NotImplementedError):
        with pytest.raises(ValueError):
            F.pad(x, pad, **kw)
        return
    assert_close(F.pad(x, pad, **kw), out, f"pad {setting}")
    assert_close(F.pad_backward(g, x, pad, mode=mode), grad, f"pad_backward {setting}")


def test_pad_refusals_name_the_rule():
    x = np.zeros((1, 3))
    with pytest.raises(ValueError, match="even length"):
        F.pad(x, (1,))
    with pytest.raises(ValueError, match="reflect padding must be smaller than the axis"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="takes no value"):
        F.pad(x, (1, 1), mode="replicate", value=1.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(TypeError, match="tuple of ints"):
        F.pad(x, (1.5, 1))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding, stride", [("same", 1), ("valid", 1), (1, 2), ((2, 1), 1)])
def test_conv2d_module_padding_mode_matches_torch(mode, padding, stride):
    rng = np.random.default_rng(7)
    ours = nn.Conv2d(2, 3, (4, 3), stride=stride, padding=padding, padding_mode=mode, dtype=np.float64)
    theirs = torch.nn.Conv2d(2, 3, (4, 3), stride=stride, padding=padding, padding_mode=mode,
                             dtype=torch.float64)
    theirs.weight.data, theirs.bias.data = torch.tensor(ours.weight.data), torch.tensor(ours.bias.data)
    x = rng.standard_normal((2, 2, 6, 7))
    out, g, (grad_x,) = torch_forward_backward(theirs, [x])
    assert_close(ours(x), out, "forward")
    assert_close(ours.backward(g), grad_x, "grad_x")
    assert_close(ours.weight.grad, theirs.weight.grad.numpy(), "grad_weight")
    assert_close(ours.bias.grad, theirs.bias.grad.numpy(), "grad_bias")
    assert f"padding_mode='{mode}'" in repr(ours) or mode == "zeros"


def test_padding_mode_is_checked():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")


def test_modules_take_unbatched_input_as_torch():
    """(C, H, W) through Conv2d, MaxPool2d, AvgPool2d and ConvTranspose2d, (features,) through
    Linear: output and input gradient as PyTorch's, without a batch axis."""
    rng = np.random.default_rng(11)
    nn.manual_seed(0)
    pairs = [
        (nn.Conv2d(2, 3, 3, padding="same", dtype=np.float64),
         torch.nn.Conv2d(2, 3, 3, padding="same", dtype=torch.float64), (2, 6, 5)),
        (nn.ConvTranspose2d(2, 3, 3, stride=2, dtype=np.float64),
         torch.nn.ConvTranspose2d(2, 3, 3, stride=2, dtype=torch.float64), (2, 4, 3)),
        (nn.MaxPool2d(2, ceil_mode=True), torch.nn.MaxPool2d(2, ceil_mode=True), (2, 5, 5)),
        (nn.AvgPool2d(3, 1, 1), torch.nn.AvgPool2d(3, 1, 1), (2, 4, 4)),
        (nn.Linear(4, 3, dtype=np.float64), torch.nn.Linear(4, 3, dtype=torch.float64), (4,)),
    ]
    for ours, theirs, shape in pairs:
        for name in ("weight", "bias"):
            if hasattr(ours, name):
                getattr(theirs, name).data = torch.tensor(getattr(ours, name).data)
        x = rng.standard_normal(shape)
        out, g, (grad_x,) = torch_forward_backward(theirs, [x])
        assert_close(ours(x), out, f"{type(ours).__name__} forward")
        assert_close(ours.backward(g), grad_x, f"{type(ours).__name__} grad_x")
