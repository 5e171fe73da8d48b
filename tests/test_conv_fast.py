"""conv2d's fast float32 path, Winograd's F(2x2, 3x3), against PyTorch; and where it runs.

Tolerance: every output (and gradient) is a sum of products; float32 rounds each partial sum,
so any order of summation (BLAS's blocks, Winograd's transforms, PyTorch's kernels) lands within
a few units of eps32 times the sum of the terms' magnitudes (the same sum over |x|, |w|,
|grad_out|). We compare with float64 PyTorch and check PyTorch's own float32 result against
``TOL * eps32 * magnitude`` entry by entry, Winograd's against ``TOL * eps32`` times its tile's
magnitude (``tile_scale``). Measured over 300 random layers (1 to 80 channels, padding 0 to 2,
odd sizes): Winograd up to 5.6, PyTorch float32 up to 3.1; TOL = 10.
"""

import numpy as np
import pytest

import cnnlib.functional as F
from cnnlib.functional import winograd
from cnnlib.functional._geometry import ConvGeometry
from cnnlib.functional.winograd import winograd_conv2d, winograd_conv2d_backward

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.conv

EPS32 = float(np.finfo(np.float32).eps)
TOL = 10


def torch_conv(x, w, b, grad_out, padding, dtype):
    """PyTorch's output and gradients (x, w) of conv2d at ``dtype``, as float64 NumPy arrays."""
    xt, wt = (torch.from_numpy(a.astype(dtype)).requires_grad_() for a in (x, w))
    bt = None if b is None else torch.from_numpy(b.astype(dtype))
    out = torch.nn.functional.conv2d(xt, wt, bt, padding=padding)
    out.backward(torch.from_numpy(grad_out.astype(dtype)))
    return [a.detach().numpy().astype(np.float64) for a in (out, xt.grad, wt.grad)]


def tile_scale(magnitude, kernel=False):
    """Winograd rounds per tile: the 16 products of a 4x4 input tile give its 2x2 output block
    together, so an output's error scales with its block's largest magnitude, not its own (a
    corner output with few terms shares its block's rounding). A kernel's gradient sums over
    all tiles: scale by the largest of its 3x3 entries.

    magnitude: (N, C, H, W) -> the same shape, each entry its 2x2 block's (or kernel's) maximum.
    """
    if kernel:
        return np.broadcast_to(magnitude.max(axis=(2, 3), keepdims=True), magnitude.shape)
    n, c, h, w = magnitude.shape
    even = np.zeros((n, c, h + h % 2, w + w % 2))
    even[:, :, :h, :w] = magnitude
    blocks = even.reshape(n, c, even.shape[2] // 2, 2, even.shape[3] // 2, 2).max(axis=(3, 5))
    return blocks.repeat(2, axis=2).repeat(2, axis=3)[:, :, :h, :w]


def check_close(ours, x, w, b, grad_out, padding):
    """``ours`` = (out, grad_x, grad_w) within TOL eps32 of the exact sums, as PyTorch's float32."""
    exact = torch_conv(x, w, b, grad_out, padding, np.float64)
    scale = torch_conv(np.abs(x), np.abs(w), None if b is None else np.abs(b), np.abs(grad_out),
                       padding, np.float64)
    theirs = torch_conv(x, w, b, grad_out, padding, np.float32)
    for name, mine, ref, mag, torch32 in zip(("out", "grad_x", "grad_w"), ours, exact, scale, theirs):
        assert mine.shape == ref.shape and mine.dtype == np.float32, name
        assert np.all(np.abs(torch32 - ref) <= TOL * EPS32 * mag), f"PyTorch float32 {name} outside the bound"
        bound = TOL * EPS32 * tile_scale(mag, kernel=name == "grad_w") + 1e-30
        worst = np.max(np.abs(mine - ref) / bound)
        assert worst <= 1, f"{name}: {worst * TOL:.1f} eps32 of the magnitude"


SHAPES = [  # (N, C_in, C_out, H, W, padding)
    (1, 1, 1, 3, 3, 0),
    (1, 3, 5, 5, 6, 2),
    (1, 16, 16, 7, 9, 1),
    (2, 20, 17, 8, 8, 2),
    (4, 32, 48, 13, 12, 0),
    (3, 64, 64, 15, 15, 1),
    (2, 8, 12, 4, 11, (0, 2)),
    (1, 9, 7, 10, 5, (2, 1)),
    (2, 4, 5, 37, 35, 1),  # 19 x 18 tiles an image: chunks of 14 tile rows, the last hanging over
    (6, 3, 4, 16, 15, 1),  # 8 x 8 tiles an image: chunks of 4 images, then 2
]


@pytest.mark.parametrize("n, c_in, c_out, h, w, padding", SHAPES)
def test_winograd_forward_and_gradients_match_torch(n, c_in, c_out, h, w, padding):
    rng = np.random.default_rng(c_in * 100 + h)
    pads = padding if isinstance(padding, tuple) else (padding, padding)
    x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
    weight = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
    bias = rng.standard_normal(c_out, dtype=np.float32)
    out = winograd_conv2d(x, weight, bias, pads)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grad_x, grad_w = winograd_conv2d_backward(grad_out, x, weight, pads)
    assert out.flags.c_contiguous and grad_x.flags.c_contiguous and grad_w.flags.c_contiguous
    check_close((out, grad_x, grad_w), x, weight, bias, grad_out, pads)


def test_winograd_random_shapes_match_torch():
    rng = np.random.default_rng(7)
    for _ in range(12):
        n, c_in, c_out = rng.integers(1, 4), rng.integers(1, 24), rng.integers(1, 24)
        pads = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        h, w = (int(rng.integers(max(1, 3 - 2 * p), 18)) for p in pads)  # at least one output
        x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
        weight = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
        out = winograd_conv2d(x, weight, None, pads)
        grad_out = rng.standard_normal(out.shape, dtype=np.float32)
        grad_x, grad_w = winograd_conv2d_backward(grad_out, x, weight, pads)
        check_close((out, grad_x, grad_w), x, weight, None, grad_out, pads)


def geometry(c_in=64, c_out=64, kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1):
    return ConvGeometry(2, c_in, c_out, groups, (8, 8), kernel, (8, 8), stride, padding, dilation)


@pytest.fixture
def one_blas_thread(monkeypatch):
    """Winograd runs only on one BLAS thread; pytest's process may have more."""
    monkeypatch.setattr(winograd, "blas_threads", lambda: 1)


def test_winograd_runs_only_where_it_applies(monkeypatch, one_blas_thread):
    assert winograd.winograd_applies(geometry(), np.dtype(np.float32))
    assert not winograd.winograd_applies(geometry(), np.dtype(np.float64))
    for changed in (dict(kernel=(5, 5)), dict(stride=(2, 2)), dict(dilation=(2, 2)), dict(groups=2),
                    dict(padding=(3, 3)), dict(c_in=winograd.MIN_CHANNELS - 1),
                    dict(c_out=winograd.MIN_CHANNELS - 1)):
        assert not winograd.winograd_applies(geometry(**changed), np.dtype(np.float32)), changed
    monkeypatch.setattr(winograd, "blas_threads", lambda: 2)
    assert not winograd.winograd_applies(geometry(), np.dtype(np.float32))


def test_blas_threads_follows_threadpool_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert winograd.blas_threads() == 1


@pytest.mark.parametrize("padding", [0, 1, 2, "same"])
def test_conv2d_dispatches_float32_to_winograd_and_matches_torch(monkeypatch, one_blas_thread, padding):
    calls = []
    for name in ("winograd_conv2d", "winograd_conv2d_backward"):
        real = getattr(winograd, name)
        spy = lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a)  # noqa: E731
        monkeypatch.setattr(winograd, name, spy)
    rng = np.random.default_rng(3)
    c = winograd.MIN_CHANNELS
    x = rng.standard_normal((2, c, 9, 7), dtype=np.float32)
    weight = rng.standard_normal((c, c, 3, 3), dtype=np.float32)
    bias = rng.standard_normal(c, dtype=np.float32)
    out = F.conv2d(x, weight, bias, padding=padding)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grad_x, grad_w, grad_b = F.conv2d_backward(grad_out, x, weight, padding=padding)
    assert calls == ["winograd_conv2d", "winograd_conv2d_backward"]
    pads = 1 if padding == "same" else padding
    check_close((out, grad_x, grad_w), x, weight, bias, grad_out, (pads, pads))
    np.testing.assert_allclose(grad_b, grad_out.sum(axis=(0, 2, 3)), rtol=1e-6)
    # Unbatched input: the same numbers without the batch axis.
    np.testing.assert_allclose(F.conv2d(x[0], weight, bias, padding=padding), out[0], rtol=0, atol=2e-4)


def test_float64_keeps_the_exact_im2col_path(monkeypatch, one_blas_thread):
    def fail(*args):
        raise AssertionError("Winograd ran on float64")

    monkeypatch.setattr(winograd, "winograd_conv2d", fail)
    monkeypatch.setattr(winograd, "winograd_conv2d_backward", fail)
    rng = np.random.default_rng(4)
    c = winograd.MIN_CHANNELS
    x = rng.standard_normal((2, c, 6, 6))
    weight = rng.standard_normal((c, c, 3, 3))
    out = F.conv2d(x, weight, padding=1)
    F.conv2d_backward(np.ones_like(out), x, weight, padding=1)
    # float32 below the channel threshold does not run it either.
    small = winograd.MIN_CHANNELS - 1
    F.conv2d(x[:, :small].astype(np.float32), weight[:small, :small].astype(np.float32), padding=1)
