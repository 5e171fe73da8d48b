"""Small float32 convolutions with the kernel folded into the products (cnnlib/functional/folded.py):
the same sums as PyTorch's, and where the fold runs.

Tolerance as in test_conv_fast: every entry within ``TOL eps32`` times the sum of its terms'
magnitudes of PyTorch's float64 result (any order of summation lands there).
"""

from contextlib import contextmanager

import numpy as np
import pytest

import cnnlib.functional as F
from cnnlib.functional import folded
from cnnlib.functional.conv_transpose import scatter_kind
from cnnlib.functional.correlate import conv_arguments

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.conv

EPS32 = float(np.finfo(np.float32).eps)
TOL = 10


def torch_conv(x, w, b, grad_out, kwargs, dtype):
    """PyTorch's output and gradients (x, w, b) at ``dtype``, as float64 NumPy arrays."""
    xt, wt = (torch.from_numpy(a.astype(dtype)).requires_grad_() for a in (x, w))
    bt = None if b is None else torch.from_numpy(b.astype(dtype)).requires_grad_()
    out = torch.nn.functional.conv2d(xt, wt, bt, **kwargs)
    out.backward(torch.from_numpy(grad_out.astype(dtype)))
    grads = [xt.grad, wt.grad] + ([] if b is None else [bt.grad])
    return [a.detach().numpy().astype(np.float64) for a in (out, *grads)]


# (N, C_in, C_out, H, W, kernel, padding, dilation, bias): all with C_out < K_h C_in.
LAYERS = [
    (64, 6, 16, 14, 14, (5, 5), 0, 1, True),  # LeNet's C3
    (3, 6, 16, 14, 13, (5, 5), 2, 1, True),
    (2, 4, 7, 11, 10, (3, 4), (2, 0), (1, 2), False),
    (2, 5, 9, 12, 9, (2, 4), (0, 3), 2, True),
    (1, 3, 5, 9, 8, (4, 1), 1, (2, 1), True),
    (2, 2, 3, 6, 7, (3, 3), 1, 1, False),
    (3, 32, 64, 16, 16, (3, 3), 1, 1, True),  # CIFAR's 32 -> 64
    (2, 16, 16, 32, 32, (3, 3), 1, 1, False),  # ResNet-20's 16 -> 16: the backward shares the rows
    (1, 2, 1, 5, 5, (1, 1), 0, 1, True),
]


@pytest.mark.parametrize("layer", LAYERS)
def test_folded_conv_matches_torch(monkeypatch, layer):
    n, c_in, c_out, h, w, kernel, padding, dilation, with_bias = layer
    rng = np.random.default_rng(sum(map(hash, map(str, layer))) % 2**32)
    x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
    weight = rng.standard_normal((c_out, c_in, *kernel), dtype=np.float32)
    bias = rng.standard_normal(c_out, dtype=np.float32) if with_bias else None
    kwargs = dict(padding=padding, dilation=dilation)
    g = conv_arguments("conv2d", x, weight, bias, 1, padding, dilation, 1)
    assert folded.folds(g, np.dtype(np.float32))
    calls = []
    for name in ("folded_correlate", "folded_weight_grad"):
        real = getattr(folded, name)
        monkeypatch.setattr(folded, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    monkeypatch.setattr("cnnlib.functional.correlate.folded_correlate", folded.folded_correlate)
    monkeypatch.setattr("cnnlib.functional.conv_backward.folded_weight_grad", folded.folded_weight_grad)
    monkeypatch.setattr("cnnlib.functional.winograd.winograd_applies", lambda *a: False)
    out = F.conv2d(x, weight, bias, **kwargs)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    # The weight gradient folds too where the input gradient is the folded scatter (shared rows).
    shares = scatter_kind(g, np.dtype(np.float32), with_weight_grad=True) == "rows"
    assert set(calls) == {"folded_correlate"} | ({"folded_weight_grad"} if shares else set())
    ours = (out, *grads[:2]) + ((grads[2],) if with_bias else ())
    exact = torch_conv(x, weight, bias, grad_out, kwargs, np.float64)
    scale = torch_conv(np.abs(x), np.abs(weight), None if bias is None else np.abs(bias), np.abs(grad_out),
                       kwargs, np.float64)
    for name, mine, ref, mag in zip(("out", "grad_x", "grad_w", "grad_b"), ours, exact, scale):
        assert mine.shape == ref.shape and mine.dtype == np.float32 and mine.flags.c_contiguous, name
        worst = np.max(np.abs(mine - ref) / (TOL * EPS32 * mag + 1e-30))
        assert worst <= 1, f"{name}: {worst * TOL:.1f} eps32 of the magnitude"


def test_folded_conv_writes_into_out():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 14, 14), dtype=np.float32)
    weight = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
    bias = rng.standard_normal(16, dtype=np.float32)
    g = conv_arguments("conv2d", x, weight, bias, 1, 0, 1, 1)
    out = np.full((4, 16, 10, 10), np.nan, np.float32)
    assert folded.folded_correlate(x, weight, bias, g, out) is out
    np.testing.assert_allclose(out, F.conv2d(x.astype(np.float64), weight.astype(np.float64),
                                             bias.astype(np.float64)), rtol=1e-4, atol=1e-4)


def test_where_the_fold_runs():
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)

    def geometry(n=64, c_in=6, c_out=16, size=14, kernel=5, stride=1, padding=0, groups=1):
        x = np.zeros((n, c_in, size, size), np.float32)
        w = np.zeros((c_out, c_in // groups, kernel, kernel), np.float32)
        return conv_arguments("conv2d", x, w, None, stride, padding, 1, groups)

    assert folded.folds(geometry(), f32)  # LeNet's C3
    assert not folded.folds(geometry(), f64)  # float64 keeps im2col's order of summation
    assert not folded.folds(geometry(c_in=1, c_out=6, size=32), f32)  # C1: C_out >= K_h C_in
    assert not folded.folds(geometry(c_in=3, c_out=32, size=32, kernel=3, padding=1), f32)  # CIFAR 3 -> 32
    assert folded.folds(geometry(n=32, c_in=32, c_out=64, size=16, kernel=3, padding=1), f32)
    assert not folded.folds(geometry(stride=2), f32)
    assert not folded.folds(geometry(c_in=6, c_out=16, groups=2), f32)
    assert not folded.folds(geometry(n=4, c_in=64, c_out=64, size=56, kernel=3, padding=1), f32)  # planes
    # ResNet-20's 16 -> 16 at 32x32: the gather is cheaper as a transposed convolution, but conv2d's
    # backward takes the folded scatter, whose moved rows its weight gradient shares; not where the
    # rows carry a quarter of junk (64 -> 64 at 8x8).
    resnet16 = geometry(n=8, c_in=16, c_out=16, size=32, kernel=3, padding=1)
    assert scatter_kind(resnet16, f32) == "gather"
    assert scatter_kind(resnet16, f32, with_weight_grad=True) == "rows"
    assert scatter_kind(resnet16, f64, with_weight_grad=True) == "gather"
    late = geometry(n=8, c_in=64, c_out=64, size=8, kernel=3, padding=1)
    assert folded.folds(late, f32) and scatter_kind(late, f32, with_weight_grad=True) == "gather"


# (N, C_in, C_out, H, W, kernel, padding, dilation): scatter_planes layers with little plane junk.
PLANE_LAYERS = [
    (32, 3, 32, 32, 32, (3, 3), 1, 1),  # CIFAR's 3 -> 32
    (3, 2, 9, 21, 19, (3, 3), 1, 1),
    (2, 3, 12, 27, 29, (3, 5), (1, 2), 1),
    (2, 1, 8, 40, 40, (3, 3), 2, 2),
]


@pytest.mark.parametrize("layer", PLANE_LAYERS)
def test_plane_weight_grad_matches_torch(monkeypatch, layer):
    n, c_in, c_out, h, w, kernel, padding, dilation = layer
    rng = np.random.default_rng(n * 1000 + c_out)
    x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
    weight = rng.standard_normal((c_out, c_in, *kernel), dtype=np.float32)
    bias = rng.standard_normal(c_out, dtype=np.float32)
    kwargs = dict(padding=padding, dilation=dilation)
    g = conv_arguments("conv2d", x, weight, bias, 1, padding, dilation, 1)
    assert folded.little_plane_junk(g) and not folded.folds(g, np.dtype(np.float32))
    calls = []
    real = folded.plane_weight_grad
    monkeypatch.setattr("cnnlib.functional.conv_backward.plane_weight_grad",
                        lambda *a: calls.append(1) or real(*a))
    out = F.conv2d(x, weight, bias, **kwargs)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    assert calls  # once per part where the batch is split across threads
    exact = torch_conv(x, weight, bias, grad_out, kwargs, np.float64)
    scale = torch_conv(np.abs(x), np.abs(weight), np.abs(bias), np.abs(grad_out), kwargs, np.float64)
    for name, mine, ref, mag in zip(("out", "grad_x", "grad_w", "grad_b"), (out, *grads), exact, scale):
        assert mine.shape == ref.shape and mine.dtype == np.float32 and mine.flags.c_contiguous, name
        worst = np.max(np.abs(mine - ref) / (TOL * EPS32 * mag + 1e-30))
        assert worst <= 1, f"{name}: {worst * TOL:.1f} eps32 of the magnitude"
    calls.clear()
    F.conv2d_backward(grad_out.astype(np.float64), x.astype(np.float64), weight.astype(np.float64), **kwargs)
    assert calls == []  # float64 keeps im2col's order of summation


def test_where_the_planes_serve_the_weight_gradient():
    def geometry(c_in, c_out, size, kernel, padding):
        x = np.zeros((8, c_in, size, size), np.float32)
        return conv_arguments("conv2d", x, np.zeros((c_out, c_in, kernel, kernel), np.float32), None,
                              1, padding, 1, 1)

    assert folded.little_plane_junk(geometry(3, 32, 32, 3, 1))  # CIFAR 3 -> 32: 34^2 / 32^2 = 1.13
    assert not folded.little_plane_junk(geometry(1, 6, 32, 5, 0))  # LeNet C1: 32^2 / 28^2 = 1.31


@contextmanager
def blas_at_two_threads():
    """BLAS at two threads inside the block (the test is skipped where numpy's BLAS cannot be set)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from cnnlib.functional import blas

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if blas.blas_threads() != 2:
            pytest.skip("numpy's BLAS cannot be set to 2 threads")
        yield


def test_small_layers_run_whole_on_one_blas_thread_without_the_split(monkeypatch):
    """batch_threads.SPLIT = False: a layer the split would take runs on the calling thread, in
    one piece, with BLAS held at one thread, and BLAS gets its threads back after."""
    from cnnlib.functional import batch_threads, blas

    monkeypatch.setattr(batch_threads, "SPLIT", False)
    with blas_at_two_threads():
        seen = []

        def work(part):
            seen.append(blas.blas_threads())
            return part

        assert batch_threads.over_batch(work, 7, 2) == [slice(0, 7)]
        assert seen == [1] and blas.blas_threads() == 2
        rng = np.random.default_rng(4)
        x = rng.standard_normal((5, 6, 14, 14), dtype=np.float32)
        weight = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
        out = F.conv2d(x, weight)
        grads = F.conv2d_backward(np.ones_like(out), x, weight)
        monkeypatch.setattr(batch_threads, "SPLIT", True)
        np.testing.assert_allclose(out, F.conv2d(x, weight), rtol=1e-5, atol=1e-4)
        for ours, ref in zip(grads, F.conv2d_backward(np.ones_like(out), x, weight)):
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-3)
        assert blas.blas_threads() == 2


def test_layers_whose_products_dominate_are_not_split(monkeypatch):
    """LeNet's C1 (one input channel) and C3 (folds): their products are most of their time and
    the split lost to BLAS's own threads on a quiet machine; CIFAR's 3 -> 32 is still split."""
    from cnnlib.functional import batch_threads

    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 2)
    f32 = np.dtype(np.float32)
    c1 = conv_arguments("conv2d", np.zeros((64, 1, 32, 32), np.float32), np.zeros((6, 1, 5, 5), np.float32),
                        None, 1, 0, 1, 1)
    c3 = conv_arguments("conv2d", np.zeros((64, 6, 14, 14), np.float32), np.zeros((16, 6, 5, 5), np.float32),
                        None, 1, 0, 1, 1)
    cifar = conv_arguments("conv2d", np.zeros((32, 3, 32, 32), np.float32),
                           np.zeros((32, 3, 3, 3), np.float32), None, 1, 1, 1, 1)
    assert batch_threads.batch_parts(c1, f32) == batch_threads.batch_parts(c3, f32) == 1
    assert batch_threads.batch_parts(cifar, f32) == 2
    monkeypatch.setattr(batch_threads, "FORCE", True)  # bench_conv --split on
    assert batch_threads.batch_parts(c1, f32) == batch_threads.batch_parts(c3, f32) == 2
    monkeypatch.setattr(batch_threads, "FORCE", False)
    assert batch_threads.batch_parts(cifar, f32) == 1
