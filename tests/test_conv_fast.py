"""conv2d's fast float32 path, Winograd's F(2x2, 3x3), against PyTorch; and where it runs.

Tolerance: every output (and gradient) is a sum of products; float32 rounds each partial sum,
so any order of summation (BLAS's blocks, Winograd's transforms, PyTorch's kernels) lands within
a few units of eps32 times the sum of the terms' magnitudes (the same sum over |x|, |w|,
|grad_out|). We compare with float64 PyTorch and check PyTorch's own float32 result against
``TOL * eps32 * magnitude`` entry by entry, Winograd's against ``TOL * eps32`` times its tile's
magnitude (``tile_scale``). Measured over 300 random layers (1 to 80 channels, padding 0 to 2,
odd sizes): Winograd up to 5.6, PyTorch float32 up to 3.1; TOL = 10.
"""

import os
import signal
import threading

import numpy as np
import pytest

import cnnlib.functional as F
from cnnlib.functional import batch_threads, blas, conv_transpose, winograd
from cnnlib.functional._geometry import ConvGeometry
from cnnlib.functional.conv_transpose import scatter_kind, scatter_rows, scatter_transposed
from cnnlib.functional.correlate import conv_arguments
from cnnlib.functional.winograd import winograd_conv2d, winograd_conv2d_backward

torch = pytest.importorskip("torch")

from test_conv_folded import EPS32, TOL, blas_at_two_threads  # noqa: E402  (after the skip: needs torch)
from test_conv_folded import torch_conv as torch_conv2d  # noqa: E402

pytestmark = pytest.mark.conv


def torch_conv(x, w, b, grad_out, padding, dtype):
    """PyTorch's output and gradients (x, w) of conv2d at ``dtype``, as float64 NumPy arrays."""
    return torch_conv2d(x, w, b, grad_out, {"padding": padding}, dtype)[:3]


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
    """Small layers take Winograd only on one BLAS thread; pytest's process may have more."""
    monkeypatch.setattr(winograd, "blas_threads", lambda: 1)


def test_winograd_runs_only_where_it_applies(monkeypatch, one_blas_thread):
    assert winograd.winograd_applies(geometry(), np.dtype(np.float32))
    assert not winograd.winograd_applies(geometry(), np.dtype(np.float64))
    for changed in (dict(kernel=(5, 5)), dict(stride=(2, 2)), dict(dilation=(2, 2)), dict(groups=2),
                    dict(padding=(3, 3)), dict(c_in=winograd.MIN_CHANNELS - 1),
                    dict(c_out=winograd.MIN_CHANNELS - 1)):
        assert not winograd.winograd_applies(geometry(**changed), np.dtype(np.float32)), changed
    # With several BLAS threads, only layers of MIN_THREADED_WORK multiply-adds (VGG's).
    monkeypatch.setattr(winograd, "blas_threads", lambda: 2)
    assert not winograd.winograd_applies(geometry(), np.dtype(np.float32))
    vgg = ConvGeometry(4, 256, 256, 1, (28, 28), (3, 3), (28, 28), (1, 1), (1, 1), (1, 1))
    resnet = ConvGeometry(4, 64, 64, 1, (56, 56), (3, 3), (56, 56), (1, 1), (1, 1), (1, 1))
    assert winograd.winograd_applies(vgg, np.dtype(np.float32))
    assert not winograd.winograd_applies(resnet, np.dtype(np.float32))


def test_blas_threads_follows_threadpool_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert blas.blas_threads() == 1


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


def test_winograd_on_two_blas_threads_runs_its_chunks_on_two_threads(monkeypatch):
    """With two BLAS threads, Winograd's forward, input gradient and weight gradient each run
    their chunks on two threads with BLAS held at one (no idle OpenBLAS thread spinning beside
    them): the same numbers as on one thread, and BLAS gets its two threads back."""
    rng = np.random.default_rng(5)
    c = winograd.MIN_CHANNELS
    x = rng.standard_normal((3, c, 10, 9), dtype=np.float32)  # 3 images of 5 x 5 tiles: 3 chunks
    weight = rng.standard_normal((c + 3, c, 3, 3), dtype=np.float32)
    bias = rng.standard_normal(c + 3, dtype=np.float32)
    grad_out = rng.standard_normal((3, c + 3, 10, 9), dtype=np.float32)

    def run():
        return (F.conv2d(x, weight, bias, padding=1), *F.conv2d_backward(grad_out, x, weight, padding=1))

    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        one = run()
    calls, threads = [], set()
    real = winograd.over_batch

    def spy(work, count, parts):
        calls.append((count, parts, blas.blas_threads()))
        return real(lambda part: threads.add(threading.get_ident()) or work(part), count, parts)

    monkeypatch.setattr(winograd, "over_batch", spy)
    monkeypatch.setattr(winograd, "MIN_THREADED_WORK", 0)  # a small layer, as a VGG-sized one runs
    with blas_at_two_threads():
        two = run()
        assert blas.blas_threads() == 2
    assert calls == [(3, 2, 1)] * 3 and len(threads) == 2
    for name, ours, ref in zip(("out", "grad_x", "grad_w", "grad_b"), two, one):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("batch, tiles, channels, parts", [
    (32, (8, 8), (32, 64), 2), (4, (28, 28), (64, 64), 2), (4, (7, 7), (512, 512), 2),
    (1, (7, 7), (512, 512), 2), (1, (1, 3), (256, 512), 2), (3, (5, 5), (32, 32), 1),
    (5, (2, 9), (32, 32), 4), (32, (4, 4), (64, 64), 1),
])
def test_winograd_chunks_cover_every_tile_once_and_give_every_thread_some(batch, tiles, channels, parts):
    chunks = winograd._chunks(batch, tiles, channels, parts)
    covered = [(i, r) for images, rows in chunks for i in range(batch)[images] for r in range(tiles[0])[rows]]
    assert sorted(covered) == [(i, r) for i in range(batch) for r in range(tiles[0])]
    assert len(chunks) >= min(parts, batch * tiles[0])


def test_winograd_chunks_fit_the_cache_beside_small_kernels_and_grow_with_large_ones():
    def tiles_per_chunk(tiles, channels, batch=32):
        chunks = winograd._chunks(batch, tiles, channels)
        return max((images.stop - images.start) * (rows.stop - rows.start) * tiles[1]
                   for images, rows in chunks)

    assert tiles_per_chunk((8, 8), (32, 32)) == 384  # 12,288 / 32: six images of 64 tiles
    assert tiles_per_chunk((4, 4), (64, 64)) == 192
    assert tiles_per_chunk((28, 28), (64, 128), batch=4) == 112  # 4 rows of 28 tiles: at most 128
    assert tiles_per_chunk((7, 7), (512, 512), batch=4) == 196  # 2 x 512 wanted, the batch has 196
    assert tiles_per_chunk((14, 14), (256, 256), batch=4) == 392  # whole images up to 2 x 256


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


# The batch split across threads (batch_threads.py): small float32 layers on several BLAS threads.


@pytest.fixture
def two_blas_threads(monkeypatch):
    """The split runs only with more than one BLAS thread; pytest's process may have one."""
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 2)


def layer_geometry(batch=8, c_in=6, c_out=16, size=14, kernel=5, groups=1):
    out = size - kernel + 1
    return ConvGeometry(batch, c_in, c_out, groups, (size, size), (kernel, kernel), (out, out),
                        (1, 1), (0, 0), (1, 1))


def test_the_split_applies_to_small_float32_layers_on_several_blas_threads(monkeypatch, two_blas_threads):
    f32 = np.dtype(np.float32)
    # CIFAR's 3 -> 32-like; LeNet's C3 (6 -> 16) folds (folded.py): its products are most of its time.
    assert batch_threads.batch_parts(layer_geometry(c_out=32), f32) == 2
    assert batch_threads.batch_parts(layer_geometry(), f32) == 1
    assert batch_threads.work_per_image(layer_geometry()) == 16 * 6 * 25 * 100
    assert batch_threads.batch_parts(layer_geometry(), np.dtype(np.float64)) == 1
    assert batch_threads.batch_parts(layer_geometry(batch=1), f32) == 1
    # LeNet's C5 (16 -> 120, 5x5 on 5x5) on 32 images: 1.5 million multiply-adds, too few to share.
    assert batch_threads.batch_parts(layer_geometry(batch=32, c_in=16, c_out=120, size=5), f32) == 1
    # CIFAR's 32 -> 64 at 16x16, 4.7 million multiply-adds an image: split from 4 images (MIN_SPLIT_WORK).
    assert batch_threads.batch_parts(layer_geometry(batch=4, c_in=32, c_out=64, size=18, kernel=3), f32) == 2
    assert batch_threads.batch_parts(layer_geometry(batch=3, c_in=32, c_out=64, size=18, kernel=3), f32) == 1
    # ResNet's 64 -> 64 at 56x56, 115 million an image: its products are most of its time.
    assert batch_threads.batch_parts(layer_geometry(batch=4, c_in=64, c_out=64, size=58, kernel=3), f32) == 1
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 1)
    assert batch_threads.batch_parts(layer_geometry(), f32) == 1


def test_over_batch_runs_each_part_on_one_blas_thread_and_gives_the_threads_back():
    with blas_at_two_threads():
        seen = []

        def work(part):
            seen.append(blas.blas_threads())
            # A split inside a split runs unsplit (the lock), on the caller's thread.
            assert batch_threads.over_batch(lambda inner: inner, 4, 2) == [slice(0, 4)]
            return part

        assert batch_threads.over_batch(work, 7, 2) == [slice(0, 3), slice(3, 7)]
        assert seen == [1, 1] and blas.blas_threads() == 2

        def fail(part):
            raise ValueError(part.start)

        with pytest.raises(ValueError):
            batch_threads.over_batch(fail, 4, 2)
        assert blas.blas_threads() == 2
        assert batch_threads.over_batch(lambda part: part, 5, 1) == [slice(0, 5)]


def test_overlapping_one_blas_thread_blocks_give_the_threads_back_once_all_have_left():
    """Two blocks that overlap without nesting (as in two threads of a program: the first leaves
    while the second is inside): BLAS stays at one thread until both have left, then gets its two
    back; each block is told the two threads BLAS had. A block left by an exception gives them
    back too."""
    with blas_at_two_threads():
        first, second = batch_threads.OneBlasThread(), batch_threads.OneBlasThread()
        assert first.__enter__() == 2 and blas.blas_threads() == 1
        assert second.__enter__() == 2
        first.__exit__(None, None, None)
        assert blas.blas_threads() == 1
        second.__exit__(None, None, None)
        assert blas.blas_threads() == 2
        with pytest.raises(ValueError), batch_threads.OneBlasThread():
            raise ValueError
        assert blas.blas_threads() == 2


def spy_on_over_batch(monkeypatch, record):
    """Every over_batch call of conv2d and conv2d_backward: ``record(args)`` first."""
    real = batch_threads.over_batch
    monkeypatch.setattr(batch_threads, "over_batch", lambda *a: record(a) or real(*a))
    for module in (F.conv.__name__, "cnnlib.functional.conv_backward"):
        monkeypatch.setattr(f"{module}.over_batch", batch_threads.over_batch)


def check_against(results, reference, x, weight, bias, grad_out, kwargs):
    """``results`` = (out, grad_x, grad_w, grad_b) as ``reference`` (another path's float32), and
    within TOL eps32 of the exact sums where PyTorch takes the same padding."""
    for name, ours, ref in zip(("out", "grad_x", "grad_w", "grad_b"), results, reference):
        assert ours.shape == ref.shape and ours.dtype == np.float32 and ours.flags.c_contiguous, name
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4 * np.abs(ref).max(), err_msg=name)
    if set(kwargs) <= {"padding"} and kwargs.get("padding") != "same":
        pads = kwargs.get("padding", 0)
        check_close(results[:3], x, weight, bias, grad_out, (pads, pads))


SPLIT_LAYERS = [  # conv2d keyword arguments
    dict(),
    dict(padding=1),
    dict(padding="same"),
    dict(stride=2, padding=2),
    dict(dilation=2, padding=(1, 2)),
    dict(groups=2, padding=1),
]


@pytest.mark.parametrize("kwargs", SPLIT_LAYERS)
def test_split_layers_match_the_unsplit_and_torch(monkeypatch, two_blas_threads, kwargs):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 6, 14, 13), dtype=np.float32)  # parts of 2 and 3 images
    # 32 outputs: a layer that does not fold (6 -> 16 does, and is not split).
    weight = rng.standard_normal((32, 6 // kwargs.get("groups", 1), 5, 5), dtype=np.float32)
    # No bias with a dilation: the copy into the output without the addition.
    bias = None if "dilation" in kwargs else rng.standard_normal(32, dtype=np.float32)
    monkeypatch.setattr(batch_threads, "MIN_SMALL_SPLIT_WORK", 0)  # however few multiply-adds
    calls = []
    spy_on_over_batch(monkeypatch, lambda args: calls.append(args[2]))
    out = F.conv2d(x, weight, bias, **kwargs)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    assert calls == [2, 2]
    monkeypatch.setattr(batch_threads, "MAX_WORK", -1)  # the same layer unsplit
    unsplit = (F.conv2d(x, weight, bias, **kwargs), *F.conv2d_backward(grad_out, x, weight, **kwargs))
    check_against((out, *grads), unsplit, x, weight, bias, grad_out, kwargs)


def test_float32_batches_go_in_chunks_whose_windows_fit_the_cache(monkeypatch):
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 1)
    # ResNet-20's 16 -> 16 at 32x32 on 32 images: 16 * 9 * 1024 window values an image, 2^21 a chunk.
    resnet16 = layer_geometry(batch=32, c_in=16, c_out=16, size=34, kernel=3)
    assert batch_threads.batch_chunk(resnet16, f32) == 11
    assert batch_threads.batch_chunk(resnet16, f64) == 32  # float64 sums the batch in one order
    # LeNet's C3 on 64 images (16 * 25 * 100 window values of its input gradient an image, 2.56
    # million): two chunks of 32; on 8 images, whole.
    assert batch_threads.batch_chunk(layer_geometry(batch=64), f32) == 32
    assert batch_threads.batch_chunk(layer_geometry(), f32) == 8
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 2)
    # On BLAS's two threads (not split) a chunk's products must be worth sharing: C3 goes whole,
    # ResNet's 64 -> 64 at 56x56 (115 million multiply-adds an image) one image at a time.
    assert batch_threads.batch_chunk(layer_geometry(batch=64), f32) == 64
    assert batch_threads.batch_chunk(layer_geometry(batch=4, c_in=64, c_out=64, size=58, kernel=3), f32) == 1
    # Split in two parts, each part goes in chunks of at most 11.
    assert batch_threads.batch_parts(resnet16, f32) == 2 and batch_threads.batch_chunk(resnet16, f32) == 11


@pytest.mark.parametrize(("total", "chunk", "sizes"), [(7, 7, [7]), (7, 3, [2, 2, 3]), (8, 4, [4, 4]),
                                                       (1, 4, [1]), (9, 2, [1, 2, 2, 2, 2])])
def test_chunks_of_cover_the_part_once_in_near_equal_pieces(total, chunk, sizes):
    pieces = batch_threads.chunks_of(slice(3, 3 + total), chunk)
    assert [piece.stop - piece.start for piece in pieces] == sizes
    assert pieces[0].start == 3 and pieces[-1].stop == 3 + total
    assert all(a.stop == b.start for a, b in zip(pieces, pieces[1:]))


def test_over_batch_runs_each_part_in_chunks_in_the_batch_order():
    with blas_at_two_threads():
        assert batch_threads.over_batch(lambda part: part, 7, 2, 2) == [
            slice(0, 1), slice(1, 3), slice(3, 5), slice(5, 7)]
        assert batch_threads.over_batch(lambda part: part, 5, 1, 2) == [slice(0, 1), slice(1, 3), slice(3, 5)]


@pytest.mark.parametrize("kwargs", SPLIT_LAYERS)
def test_layers_in_chunks_match_the_whole_batch_and_torch(monkeypatch, kwargs):
    """Five images whose windows fill two chunks and a half: chunks of 1, 2 and 2 images (folded ones
    among them: 6 -> 16 folds on few images), forward and backward on one BLAS thread."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 6, 14, 13), dtype=np.float32)
    weight = rng.standard_normal((16, 6 // kwargs.get("groups", 1), 5, 5), dtype=np.float32)
    bias = None if "dilation" in kwargs else rng.standard_normal(16, dtype=np.float32)
    monkeypatch.setattr(batch_threads, "blas_threads", lambda: 1)
    out = F.conv2d(x, weight, bias, **kwargs)
    windows = 16 * 25 * out.shape[2] * out.shape[3]
    monkeypatch.setattr(batch_threads, "CHUNK_VALUES", 2 * windows)
    calls = []
    spy_on_over_batch(monkeypatch, lambda args: calls.append(args[2:]))
    chunked = F.conv2d(x, weight, bias, **kwargs)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    assert calls == [(1, 2), (1, 2)]
    monkeypatch.setattr(batch_threads, "CHUNK_VALUES", 1 << 40)  # the whole batch at once
    whole = (out, *F.conv2d_backward(grad_out, x, weight, **kwargs))
    check_against((chunked, *grads), whole, x, weight, bias, grad_out, kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_rows_is_the_scatter(dtype):
    """Folding the kernel's columns into the product: the same sums as col2im's, any padding and
    dilation (a run moved past its row must land on junk columns only)."""
    rng = np.random.default_rng(5)
    for padding, dilation, kernel in [(0, 1, (3, 4)), (2, 1, (5, 5)), ((2, 0), (1, 2), (3, 3)),
                                      ((0, 3), 2, (2, 4)), (1, (2, 1), (4, 1))]:
        x = rng.standard_normal((3, 6, 11, 10)).astype(dtype)
        w = rng.standard_normal((7, 6, *kernel)).astype(dtype)
        g = conv_arguments("conv2d", x, w, None, 1, padding, dilation, 1)
        y = rng.standard_normal((3, 7, *g.out_size)).astype(dtype)
        ours = scatter_rows(y, w, g)
        assert ours.dtype == dtype and ours.shape == x.shape and ours.flags.c_contiguous
        exact = scatter_transposed(y.astype(np.float64), w.astype(np.float64), g)
        np.testing.assert_allclose(ours, exact, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_layers_scatter_runs_of_channels(dtype):
    """A strided layer of at least 16 input channels scatters channels last: the same sums as
    col2im's (windows that overlap, leave rows out, or reach past a stride that does not fit),
    a C-contiguous NCHW result, and conv2d's input gradient as PyTorch's."""
    rng = np.random.default_rng(8)
    for stride, padding, dilation, kernel, size in [(2, 1, 1, (3, 3), (16, 16)), (2, 0, 1, (3, 3), (12, 11)),
                                                    ((3, 2), (2, 1), (1, 2), (5, 3), (13, 10)),
                                                    (2, 3, 1, (7, 7), (15, 14)), (4, 0, 1, (2, 2), (9, 9)),
                                                    ((2, 3), 1, 1, (5, 5), (17, 16))]:
        x = rng.standard_normal((3, 16, *size)).astype(dtype)
        w = rng.standard_normal((5, 16, *kernel)).astype(dtype)
        g = conv_arguments("conv2d", x, w, None, stride, padding, dilation, 1)
        assert scatter_kind(g, np.dtype(dtype)) == "channels"
        y = rng.standard_normal((3, 5, *g.out_size)).astype(dtype)
        ours = F.conv2d_backward(y, x, w, stride=stride, padding=padding, dilation=dilation)[0]
        assert ours.dtype == dtype and ours.shape == x.shape and ours.flags.c_contiguous
        exact = scatter_transposed(y.astype(np.float64), w.astype(np.float64), g)
        np.testing.assert_allclose(ours, exact, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)
        # col2im adds the same terms in the same order (i, j): the same numbers, bit for bit.
        scattered = conv_transpose.scatter_channels_last(y, w, g)
        np.testing.assert_array_equal(scattered, scatter_transposed(y, w, g))
        kwargs = {"stride": stride, "padding": padding, "dilation": dilation}
        reference = torch_conv2d(x, w, None, y, kwargs, np.float64)[1]
        np.testing.assert_allclose(ours, reference, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)
    # Fewer channels, or groups: col2im as before.
    narrow = conv_arguments("conv2d", np.zeros((1, 15, 8, 8)), np.zeros((4, 15, 3, 3)), None, 2, 1, 1, 1)
    grouped = conv_arguments("conv2d", np.zeros((1, 32, 8, 8)), np.zeros((4, 16, 3, 3)), None, 2, 1, 1, 2)
    f64 = np.dtype(np.float64)
    assert scatter_kind(narrow, f64) == scatter_kind(grouped, f64) == "col2im"


@pytest.mark.parametrize("padding", [0, 2])
def test_lenet_c3_input_gradient_folds_the_kernel_columns_in_float32_only(monkeypatch, padding):
    """C_out < K_h C_in (LeNet's C3, 6 -> 16, 5x5): float32 takes scatter_rows, float64 the planes."""
    calls = []
    for name in ("scatter_rows", "scatter_planes"):
        real = getattr(conv_transpose, name)
        monkeypatch.setattr(conv_transpose, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 6, 14, 14), dtype=np.float32)
    weight = rng.standard_normal((16, 6, 5, 5), dtype=np.float32)
    bias = rng.standard_normal(16, dtype=np.float32)
    out = F.conv2d(x, weight, bias, padding=padding)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    grad_x, grad_w, _ = F.conv2d_backward(grad_out, x, weight, padding=padding)
    check_close((out, grad_x, grad_w), x, weight, bias, grad_out, (padding, padding))
    assert set(calls) == {"scatter_rows"}
    calls.clear()
    F.conv2d_backward(grad_out.astype(np.float64), x.astype(np.float64), weight.astype(np.float64),
                      padding=padding)
    assert calls == ["scatter_planes"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_splits_on_threads_of_its_own():
    """The parent's pool threads do not exist in a child: it starts its own (else it would wait)."""
    assert batch_threads.over_batch(lambda part: part.start, 4, 2) == [0, 2]  # the parent's pool
    pid = os.fork()
    if pid == 0:  # the child: exit 0 if the split ran, killed by the alarm if it hangs
        signal.alarm(20)
        os._exit(0 if batch_threads.over_batch(lambda part: part.start, 4, 2) == [0, 2] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    "shape", [(3, 16, 32, 32), (2, 32, 32, 32), (3, 16, 14, 14), (2, 64, 8, 8), (1, 3, 5, 7)])
def test_to_channels_last_copies_exactly_with_or_without_the_skewed_planes(shape):
    """The copy to channels last (im2col's and Winograd's padded inputs) equals numpy's transpose,
    into a strided view, whichever way it goes; the detour through skewed planes is taken exactly
    where the planes collide in the L1 cache (a multiple of 4 KiB apart, more than 8 channels a set)."""
    from cnnlib.functional._windows import _planes_collide, to_channels_last

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    n, c, h, w = shape
    padded = np.full((n, h + 2, w + 3, c), 7.0, np.float32)
    to_channels_last(x, padded[:, 1 : h + 1, 2 : w + 2])
    np.testing.assert_array_equal(padded[:, 1 : h + 1, 2 : w + 2], x.transpose(0, 2, 3, 1))
    assert (padded[:, 0] == 7).all() and (padded[:, :, :2] == 7).all() and (padded[:, :, w + 2 :] == 7).all()
    assert _planes_collide(h * w * 4, c) == (shape[1:] in {(16, 32, 32), (32, 32, 32)})
    # Every other column (Winograd's columns split by parity): the source planes keep their stride.
    half = np.zeros((n, h, (w + 1) // 2, c), np.float32)
    to_channels_last(x[..., ::2], half)
    np.testing.assert_array_equal(half, x[..., ::2].transpose(0, 2, 3, 1))
