"""conv1d, conv2d and conv_transpose2d: lecture examples, finite differences, and PyTorch."""

import numpy as np
import pytest
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st

import cnnlib.functional as F
from cnnlib.check import compare_with_torch, gradcheck
from cnnlib.functional.conv_transpose import gather_transposed, scatter_planes, scatter_transposed
from cnnlib.functional.correlate import conv_arguments

pytestmark = pytest.mark.conv

# Deck 001: "Conv operation on one channel".
DECK_001_INPUT = np.array(
    [[1, 2, 4, 3], [5, 6, 8, 7], [9, 10, 12, 11], [13, 14, 16, 2]], dtype=np.float64
)
DECK_001_KERNEL = np.array([[1, -2], [-3, 4]], dtype=np.float64)


def test_deck_001_one_channel_example_cell_by_cell():
    out = F.conv2d(DECK_001_INPUT[None, None], DECK_001_KERNEL[None, None])[0, 0]
    # 1*1 + 2*(-2) + 5*(-3) + 6*4 = 6 is the slide's first cell; the rest by the same rule.
    expected = [[6, 8, 2], [6, 8, 2], [6, 8, -50]]
    np.testing.assert_array_equal(out, expected)


def test_deck_004_1d_correlation_and_true_convolution():
    signal = np.array([[[1.0, 2, 3, 4]]])
    kernel = np.array([[[1.0, 2, 3]]])
    # O_i = sum_j I_{j+i-1} W_j: correlation, what conv layers compute.
    np.testing.assert_array_equal(F.conv1d(signal, kernel), [[[14, 20]]])
    # True convolution flips the kernel first.
    np.testing.assert_array_equal(F.conv1d(signal, kernel[..., ::-1].copy()), [[[10, 16]]])
    # Half padding keeps the length: [0, 1, 2, 3, 4, 0] correlated with [1, 2, 3].
    np.testing.assert_array_equal(F.conv1d(signal, kernel, padding=1), [[[8, 14, 20, 11]]])


def test_deck_004_1d_backward_example():
    signal = np.array([[[1.0, 2, 3, 4]]])
    kernel = np.array([[[1.0, 2, 3]]])
    grad_out = np.array([[[1.0, 2]]])
    grad_x, grad_w, grad_b = F.conv1d_backward(grad_out, signal, kernel)
    # dL/dW = I correlated with dL/dO: [1*1 + 2*2, 2*1 + 3*2, 3*1 + 4*2].
    np.testing.assert_array_equal(grad_w, [[[5, 8, 11]]])
    # dL/dI = [0, 1, 2, 0] (dL/dO padded) correlated with the flipped kernel [3, 2, 1].
    np.testing.assert_array_equal(grad_x, [[[1, 4, 7, 6]]])
    np.testing.assert_array_equal(grad_b, [3])


def test_deck_004_transposed_convolution_example():
    """Deck 004's TF session: a 3x3 kernel, stride 2; Conv2DTranspose of the 2x2 conv output
    equals the conv's input gradient for that output gradient (both printed 5x5).

    The slide export prints the rows in two columns: rows 0, 1 and 4 on the left, 2 and 3 on
    the right; below they are in order.
    """
    w = np.float32([[0.13429713, 1.9649408, 0.74939513],
                    [0.6982393, 1.2397809, 1.4247327],
                    [1.5534406, 0.1190145, 1.3256309]])[None, None]
    r = np.float32([[25.535583, 28.583742], [23.470192, 20.622599]])[None, None]
    printed = np.float32([
        [3.4293556, 50.17591, 22.974957, 56.16536, 21.420517],
        [17.829948, 31.65853, 56.339676, 35.437576, 40.724194],
        [42.819992, 49.156643, 98.61191, 43.924065, 53.345966],
        [16.387812, 29.097897, 47.83826, 25.567505, 29.381691],
        [36.45955, 2.7932932, 63.148792, 2.4543884, 27.337954],
    ])
    np.testing.assert_allclose(F.conv_transpose2d(r, w, stride=2)[0, 0], printed, rtol=1e-6)
    grad_x, _, _ = F.conv2d_backward(r, np.zeros((1, 1, 5, 5), np.float32), w, stride=2)
    np.testing.assert_allclose(grad_x[0, 0], printed, rtol=1e-6)


def test_input_gradient_is_the_transposed_convolution(rng):
    x = rng.standard_normal((2, 3, 8, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    grad_out = rng.standard_normal((2, 4, 4, 5))
    grad_x, _, _ = F.conv2d_backward(grad_out, x, w, stride=2, padding=1)
    via_transpose = F.conv_transpose2d(grad_out, w, stride=2, padding=1, output_padding=(1, 0))
    np.testing.assert_allclose(grad_x, via_transpose)


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1), dict(dilation=2, groups=2)])
def test_gather_and_scatter_transposed_convolutions_agree(kwargs, rng):
    """The full correlation with the flipped kernel and the col2im scatter are the same sums."""
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 4 // kwargs.get("groups", 1), 3, 2))
    g = conv_arguments("conv2d", x, w, None, kwargs.get("stride", 1), kwargs.get("padding", 0),
                  kwargs.get("dilation", 1), kwargs.get("groups", 1))
    y = rng.standard_normal((2, 6, *g.out_size))
    np.testing.assert_allclose(gather_transposed(y, w, g), scatter_transposed(y, w, g), atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(), dict(padding=1), dict(padding=(2, 0), dilation=(1, 2)),
                                    dict(padding=(0, 3), dilation=2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_over_planes_agrees_with_the_scatter(kwargs, dtype, rng):
    """Stride 1, one group: the long-run scatter is the same sums as col2im's, and keeps the dtype."""
    x = rng.standard_normal((3, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((5, 4, 3, 2)).astype(dtype)
    g = conv_arguments("conv2d", x, w, None, 1, kwargs.get("padding", 0), kwargs.get("dilation", 1), 1)
    y = rng.standard_normal((3, 5, *g.out_size)).astype(dtype)
    ours = scatter_planes(y, w, g)
    assert ours.dtype == dtype and ours.shape == x.shape and ours.flags.c_contiguous
    atol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours, scatter_transposed(y, w, g), rtol=1e-5, atol=atol)


def test_conv_is_a_matrix_and_its_transpose_is_the_backward(rng):
    """<conv(x), y> == <x, conv_transpose(y)>: the transposed conv is the adjoint."""
    x = rng.standard_normal((1, 2, 7, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    y = rng.standard_normal((1, 3, 3, 3))
    lhs = np.sum(F.conv2d(x, w, stride=2) * y)
    rhs = np.sum(x * F.conv_transpose2d(y, w, stride=2))
    assert lhs == pytest.approx(rhs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_dtype_is_kept(op, dtype, rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(dtype)
    w = rng.standard_normal((2, 2, 3, 3)).astype(dtype)
    b = np.zeros(2, dtype)
    out = getattr(F, op)(x, w, b)
    assert out.dtype == dtype
    grads = getattr(F, op + "_backward")(np.ones_like(out), x, w)
    assert all(g.dtype == dtype for g in grads)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    dict(groups=2, stride=3),
])
def test_conv2d_gradients_match_central_differences(kwargs, rng):
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((4, 4 // kwargs.get("groups", 1), 3, 2))
    gradcheck("conv2d", x, w, rng.standard_normal(4), **kwargs)


def test_conv1d_gradients_match_central_differences(rng):
    x = rng.standard_normal((2, 2, 9))
    gradcheck("conv1d", x, rng.standard_normal((3, 2, 3)), rng.standard_normal(3),
              stride=2, padding=1, dilation=2)


@pytest.mark.parametrize("kwargs", [
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(1, 2), dilation=(2, 1), groups=2),
])
def test_conv_transpose2d_gradients_match_central_differences(kwargs, rng):
    x = rng.standard_normal((2, 2, 4, 5))
    w = rng.standard_normal((2, 4 // kwargs.get("groups", 1), 3, 3))
    gradcheck("conv_transpose2d", x, w, rng.standard_normal(4), **kwargs)


def test_gradcheck_reports_a_wrong_derivative_as_a_sentence(monkeypatch, rng):
    real = F.conv2d_backward

    def broken(*args, **kwargs):
        grad_x, grad_w, grad_b = real(*args, **kwargs)
        return grad_x, grad_w * 0.5, grad_b

    monkeypatch.setattr(F, "conv2d_backward", broken)
    with pytest.raises(AssertionError, match=r"d/dweight\[0, 0, 0, 0\]: expected derivative"):
        gradcheck("conv2d", rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 2, 2)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((4, 1, 32, 32), (6, 1, 5, 5), {}),  # LeNet C1: more outputs than inputs (scatter)
    ((4, 16, 5, 5), (120, 16, 5, 5), {}),  # LeNet C5: one output position per image
    ((2, 8, 12, 12), (8, 8, 3, 3), dict(padding=1)),  # same padding: flat runs
    ((2, 8, 12, 12), (4, 8, 3, 3), dict(stride=2, padding=1)),  # strided
    ((2, 8, 12, 12), (8, 1, 3, 3), dict(padding=1, groups=8)),  # depthwise
])
def test_network_shaped_layers_match_pytorch(x_shape, w_shape, kwargs, device, rng):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    compare_with_torch("conv2d", x, w, rng.standard_normal(w_shape[0]), device=device, **kwargs)


@st.composite
def conv_configs(draw, transposed=False):
    """A random conv: channels divisible by groups, sizes big enough for one output."""
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, (d * (k - 1)) // 2 + 1)) for k, d in zip(kernel, dilation))
    size = tuple(
        max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 5))
        for k, d, p in zip(kernel, dilation, padding)
    )
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if transposed:
        kwargs["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)
        )
        padding = kwargs["padding"] = tuple(
            min(p, ((n - 1) * s + d * (k - 1)) // 2)
            for p, n, s, d, k in zip(padding, size, stride, dilation, kernel)
        )
        weight_shape = (c_in, c_out // groups, *kernel)
    else:
        weight_shape = (c_out, c_in // groups, *kernel)
    shapes = ((draw(st.integers(1, 2)), c_in, *size), weight_shape, (c_out,))
    return shapes, kwargs, draw(st.booleans()), draw(st.integers(0, 2**16))


def _arrays(shapes, with_bias, seed, dtype):
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    return x, w, b if with_bias else None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(config=conv_configs())
def test_conv2d_matches_pytorch(config, dtype, device):
    shapes, kwargs, with_bias, seed = config
    compare_with_torch("conv2d", *_arrays(shapes, with_bias, seed, dtype), device=device, **kwargs)


@pytest.mark.parametrize("device", DEVICES)
@given(config=conv_configs(transposed=True))
def test_conv_transpose2d_matches_pytorch(config, device):
    shapes, kwargs, with_bias, seed = config
    arrays = _arrays(shapes, with_bias, seed, np.float64)
    compare_with_torch("conv_transpose2d", *arrays, device=device, **kwargs)


@pytest.mark.parametrize("device", DEVICES)
@given(config=conv_configs())
def test_conv1d_matches_pytorch(config, device):
    (x_shape, w_shape, b_shape), kwargs, with_bias, seed = config
    kwargs = {k: v[1] if isinstance(v, tuple) else v for k, v in kwargs.items()}
    shapes = (x_shape[:2] + x_shape[3:], w_shape[:2] + w_shape[3:], b_shape)
    compare_with_torch("conv1d", *_arrays(shapes, with_bias, seed, np.float64), device=device,
                       **kwargs)


@given(config=conv_configs())
def test_naive_conv2d_agrees_with_the_fast_one(config):
    (x_shape, w_shape, b_shape), kwargs, with_bias, seed = config
    x, w, b = _arrays((x_shape, (w_shape[0], x_shape[1], *w_shape[2:]), b_shape),
                      with_bias, seed, np.float64)
    fast = F.conv2d(x, w, b, stride=kwargs["stride"], padding=kwargs["padding"])
    naive = F.conv2d_naive(x, w, b, stride=kwargs["stride"], padding=kwargs["padding"])
    np.testing.assert_allclose(naive, fast, rtol=1e-12, atol=1e-12)


@given(config=conv_configs(), string_padding=st.sampled_from([None, "same", "valid"]),
       unbatched=st.booleans())
def test_naive_conv2d_agrees_with_the_fast_one_on_every_argument(config, string_padding, unbatched):
    """Dilation, groups, "same" (odd and even kernels: PyTorch's extra zero after the input) and
    "valid" padding, and unbatched input."""
    shapes, kwargs, with_bias, seed = config
    x, w, b = _arrays(shapes, with_bias, seed, np.float64)
    if string_padding is not None:
        kwargs = dict(kwargs, padding=string_padding)
        if string_padding == "same":
            kwargs["stride"] = 1
        elif any(d * (k - 1) + 1 > n for d, k, n in zip(kwargs["dilation"], w.shape[2:], x.shape[2:])):
            return  # "valid": the kernel must fit the unpadded input
    if unbatched:
        x = x[0]
    np.testing.assert_allclose(F.conv2d_naive(x, w, b, **kwargs), F.conv2d(x, w, b, **kwargs),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=(3, 2), stride=2, dilation=(1, 3), ceil_mode=True),
    dict(kernel_size=3, stride=(2, 3), padding=(1, 0), dilation=(2, 1), ceil_mode=True),
])
def test_naive_max_pool2d_agrees_with_the_fast_one_with_dilation_and_ceil_mode(kwargs):
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 9))
    np.testing.assert_array_equal(F.max_pool2d_naive(x, **kwargs), F.max_pool2d(x, **kwargs))
    np.testing.assert_array_equal(F.max_pool2d_naive(x[0], **kwargs), F.max_pool2d(x[0], **kwargs))


def test_naive_conv2d_refuses_what_the_fast_one_refuses():
    x, w = np.zeros((1, 4, 6, 6)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="same"):
        F.conv2d_naive(x, w, groups=2, padding="same", stride=2)
    with pytest.raises(ValueError, match="groups=3"):
        F.conv2d_naive(x, np.zeros((3, 2, 3, 3)), groups=3)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_float64_training_follows_pytorch_step_for_step():
    """LeNet-5's convolutions (and a strided, a "same"-padded and a grouped one) trained in
    float64 with SGD and momentum: after 12 steps every parameter equals PyTorch's to 1e-12.
    Guards the fast paths' exactness: same sums, only the rounding order may differ."""
    import torch

    from cnnlib import nn, optim

    def layers(lib, f64):
        return [lib.Conv2d(1, 6, 5, **f64), lib.ReLU(), lib.MaxPool2d(2),
                lib.Conv2d(6, 16, 5, **f64), lib.ReLU(),
                lib.Conv2d(16, 16, 3, stride=2, padding=1, **f64), lib.ReLU(),
                lib.Conv2d(16, 8, 2, padding="same", groups=4, **f64), lib.Flatten(),
                lib.Linear(8 * 4 * 4, 10, **f64)]

    nn.manual_seed(0)
    ours = nn.Sequential(*layers(nn, dict(dtype=np.float64)))
    theirs = torch.nn.Sequential(*layers(torch.nn, dict(dtype=torch.float64)))
    with torch.no_grad():
        for p, t in zip(ours.parameters(), theirs.parameters(), strict=True):
            t.copy_(torch.from_numpy(p.data))
    rng = np.random.default_rng(0)
    our_opt = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    their_opt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    loss_fn, their_loss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    for _ in range(12):
        x, y = rng.standard_normal((8, 1, 28, 28)), rng.integers(0, 10, 8)
        our_opt.zero_grad()
        loss = loss_fn(ours(x), y)
        ours.backward(loss_fn.backward())
        our_opt.step()
        their_opt.zero_grad()
        their_loss = their_loss_fn(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        their_loss.backward()
        their_opt.step()
        assert loss == pytest.approx(their_loss.item(), rel=1e-12)
    for p, t in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)
