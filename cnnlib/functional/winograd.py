"""Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016): a 3x3 convolution with 2.25
times fewer multiplications, for float32 layers where that is faster than im2col.

Cut the padded input into 4x4 tiles ``d`` that overlap by 2 (stride 2); each gives a 2x2 block of
the output, ``Y = A^T [(G g G^T) * (B^T d B)] A`` for every kernel ``g``, ``*`` elementwise. Summed
over the input channels, the elementwise product becomes, for each of the 16 tile positions
(i, j), one matrix product ``M[i, j] (C_out, tiles) = U[i, j] (C_out, C_in) @ V[i, j] (C_in, tiles)``:
16 products of ``C_out C_in tiles`` multiply-adds against im2col's ``9 C_out C_in 4 tiles``.
``B^T d B`` has only 0 and +-1 entries: additions over strided slices of whole arrays. ``A^T M A``
(4 values from 16) and the output gradient's ``A dY A^T`` (16 from 4) are one small product each
with ``A^T (x) A^T``, which reads the big side once where the additions would read it 3 times.

Layouts: ``V`` is built from a padded channels-last copy of the input whose columns are split
by parity, (N, H_p, 2, W_p / 2, C_in) (``padded_channels_last``), so that the strided slices
move runs of whole tile rows (numpy's loops are slow on short runs);
the products ``M = V U^T`` come out channels last too, ``M`` (16, N th tw, C_out): OpenBLAS runs
``V (tiles, C_in) @ U^T (C_in, C_out)`` up to twice as fast as the channel-major ``U @ V^T`` at
these shapes (1 thread, 2026-12-07, 256 tiles: 32 -> 32 channels 78 against 159 us, 32 -> 64
152 against 249, 64 -> 128 698 against 805), more than the output transform's extra pass costs
(it puts each tile's 2x2 outputs in place channels last, then turns that to NCHW): forward +
backward 8.7 -> 7.2 ms for ResNet-20's 32 -> 32 at 16x16 on 32 images, 55 -> 50 for VGG's
64 -> 128 at 56x56 on 4, the results bit for bit the same.
The kernel transform is one product with ``G (x) G`` (16 x 9), straight from the weight's layout.
The tiles go through in chunks of a hundred or more (``_chunks``), so that ``V`` and ``M`` (4 times
the input's and the output's size) stay in the cache between the transforms and the products.

Backward, with the same 16 products each:

- grad_input is itself a 3x3 stride-1 convolution (of the output gradient padded by 2 - P, with
  the kernels rotated by 180 degrees and in/out channels swapped): the same code, with the
  kernel transform's 9 columns reversed (the rotation) and its products transposed (the swap);
- grad_weight differentiates the formula above: ``dU[i, j] = dM[i, j] @ V[i, j]^T`` with
  ``dM = A dY A^T`` tile by tile (dY zero past the output's edge), and ``grad_g = G^T dU G``.

The results are the same sums in another order (``G`` has halves): in float32 they agree with
float64 to a few units in the last place of the sum of the terms' magnitudes, as im2col's and
PyTorch's do (``tests/test_conv_fast.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from ._geometry import ConvGeometry
from ._windows import to_channels_last
from .batch_threads import OneBlasThread, over_batch, work_per_image
from .blas import blas_threads

Result = TypeVar("Result")

# Input tile transform B^T and output transform A^T (Lavin & Gray, eq. 7), and the kernel
# transform G as one 16 x 9 matrix: U[4a + b] = sum_kl G[a, k] G[b, l] g[3k + l].
B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
GG = np.kron(G, G)
AA = np.kron(A_T, A_T)  # 4 x 16: Y[2r + s] = sum_ab A^T[r, a] A^T[s, b] M[4a + b]

# The smallest channel count (in and out) at which F(2x2, 3x3) beat im2col on forward + backward
# with one BLAS thread (``benchmarks/bench_conv.py``): below it the 16 products are too thin to
# pay for the transforms.
MIN_CHANNELS = 32

# A chunk of ``_chunks`` (see there) takes about CHUNK_VALUES / max(C_in, C_out) tiles, at least
# MIN_CHUNK_TILES, while the kernel transform U (16 C_in C_out float32 values) takes at most
# CACHED_KERNELS values; beyond that about 2 max(C_in, C_out) tiles.
CHUNK_VALUES = 12288
MIN_CHUNK_TILES = 128
CACHED_KERNELS = 1 << 18

# The fewest multiply-adds (forward, the whole batch) of a layer that takes Winograd when BLAS has
# several threads: then its transforms, numpy loops on one core, run on threads of its own
# (``in_parts``), which hand numpy's lock (the GIL) to each other between numpy's calls. Against
# im2col on BLAS's 2 threads (bench_conv, 2026-12-07, load 0.9-1.1, min ms of 5, each call right
# after one of its own / after a 0.15 s pause): VGG's 64 -> 128, 256 -> 256 and 512 -> 512 (0.9,
# 1.8 and 1.8 billion) 35-41 / 44-45 against 44-47 / 48-53, 50-51 / 58-62 against 75 / 79-87 and
# 69-73 / 73-75 against 75 / 76-78; but ResNet's 64 -> 64 at 56x56 (0.46 billion) 24-28 / 39-44
# against 29-36 / 31-33 and CIFAR's 32 -> 64 at 16x16 (0.15 billion) 12-14 / 18-23 against
# 15-17 / 12: on small layers, after a pause, a thread waits on every handoff of the lock for
# its idle virtual CPU to wake (with both cores kept busy by idle-priority processes the pause
# cost nothing). Training steps back to back, 2 threads, min / median ms over 12 and 6 rounds
# alternating: ResNet-20 on 32 CIFAR images 246 / 257 with every Winograd layer threaded against
# 218 / 229 on im2col (presumably the products of its 16-channel layers leave OpenBLAS's idle
# threads spinning on the cores the Winograd threads need); a VGG-like stack (64 -> 128 at 56x56
# to 512 -> 512 at 14x14, 4 images) 258 / 283 with this threshold against 315 / 323; two ResNet
# blocks of 64 -> 64 at 56x56 166 / 174 with 2^28 against 168 / 177 with 2^29.
MIN_THREADED_WORK = 1 << 29


def winograd_applies(g: ConvGeometry, dtype: np.dtype) -> bool:
    """F(2x2, 3x3) runs for float32 3x3 kernels at stride 1, no dilation, one group and padding
    of at most 2 (so that the input gradient is a padded 3x3 convolution too), once the layer
    has at least ``MIN_CHANNELS`` input and output channels. float64 keeps im2col's sums.

    With several BLAS threads it runs only on layers of at least ``MIN_THREADED_WORK``
    multiply-adds (VGG's), its chunks on as many threads of its own with BLAS on one
    (``in_parts``); smaller layers take im2col on BLAS's threads."""
    return (
        dtype == np.float32 and g.kernel_size == (3, 3) and g.stride == (1, 1)
        and g.dilation == (1, 1) and g.groups == 1 and max(g.padding) <= 2
        and min(g.in_channels, g.out_channels) >= MIN_CHANNELS
        and (blas_threads() == 1 or g.batch * work_per_image(g) >= MIN_THREADED_WORK)
    )


def _combine(
    terms: Sequence[np.ndarray] | np.ndarray, matrix: Sequence[Sequence[float]],
    outs: Sequence[np.ndarray] | np.ndarray,
) -> None:
    """``outs[r] = sum_k matrix[r][k] terms[k]`` for a matrix of 0 and +-1, written in place with
    one ufunc call per nonzero beyond the first (no temporaries)."""
    for row, out in zip(matrix, outs):
        (first_sign, first), *rest = [(coef, terms[k]) for k, coef in enumerate(row) if coef]
        if not rest:
            if first_sign > 0:
                np.copyto(out, first)
            else:
                np.negative(first, out=out)
            continue
        second_sign, second = rest.pop(0)
        if first_sign > 0:
            (np.add if second_sign > 0 else np.subtract)(first, second, out=out)
        elif second_sign > 0:
            np.subtract(second, first, out=out)
        else:
            np.add(first, second, out=out)
            np.negative(out, out=out)
        for coef, term in rest:
            (np.add if coef > 0 else np.subtract)(out, term, out=out)


def _tiles(out_size: tuple[int, int]) -> tuple[int, int]:
    """2x2 output tiles along H and W (the last ones hang over an odd edge)."""
    return (out_size[0] + 1) // 2, (out_size[1] + 1) // 2


def _chunks(
    batch: int, tiles: tuple[int, int], channels: tuple[int, int], parts: int = 1,
) -> list[tuple[slice, slice]]:
    """(images, tile rows) of each chunk: whole images, or rows of one image. Each chunk's tiles
    go through the input transform, the products and the output transform while they are still
    in the cache, next to U, which every chunk's products read whole. ``channels``: (C_in, C_out).

    While U is at most ``CACHED_KERNELS`` values (1 MiB, this machine's L2: up to 64 -> 128
    channels) it stays in the cache from chunk to chunk, and a chunk takes about
    ``CHUNK_VALUES / max(C_in, C_out)`` tiles (at least ``MIN_CHUNK_TILES``), so that its V and M
    (16 values a tile and channel each) fit beside it. A larger U comes from further away for
    each chunk, so the chunks grow with the channels, ``2 max(C_in, C_out)`` tiles, to spread
    that read. Forward + backward at 1 thread, min ms alternating in one process (2026-12-07,
    load 0.3-0.6), these chunks against the former fixed ``max(256, 2 channels)``: ResNet-20's
    32 -> 32 at 16x16 6.80 / 6.88, CIFAR's 32 -> 64 at 16x16 11.7 / 12.5, 64 -> 64 at 8x8 4.25
    / 4.89, ResNet's 64 -> 64 at 56x56 24.6 / 27.9, VGG's 64 -> 128 at 56x56 42.9 / 49.0; with
    128 tiles for VGG's 512 -> 512 at 14x14 94.8 against 88.8 for 1024 (hence the growth).

    Smaller chunks where that would leave fewer chunks than ``parts`` (threads), so that each
    thread has some."""
    (th, tw), widest = tiles, max(channels)
    if 16 * channels[0] * channels[1] <= CACHED_KERNELS:
        target = max(MIN_CHUNK_TILES, CHUNK_VALUES // widest)
    else:
        target = 2 * widest
    target = min(target, -(-batch * th * tw // parts))
    if th * tw >= target:
        rows = max(1, target // tw)
        return [(slice(i, i + 1), slice(t, min(th, t + rows)))
                for i in range(batch) for t in range(0, th, rows)]
    images = max(1, target // (th * tw))
    return [(slice(i, min(batch, i + images)), slice(0, th)) for i in range(0, batch, images)]


def padded_channels_last(x: np.ndarray, padding: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """x: (N, C, H, W) -> (N, 2 th + 2, 2, tw + 1, C): the padded input (x at offset ``padding``,
    zeros elsewhere, past an odd edge too), channels last and its columns split by parity,
    ``[n, y, p, j, c] = x_pad[n, c, y, 2 j + p]``. The slices of ``input_tiles`` then move runs of
    whole tile rows (tw C values) instead of C values, one every 2 C."""
    (th, tw), (ph, pw), (n, c, h, w) = _tiles(out_size), padding, x.shape
    xp = np.zeros((n, 2 * th + 2, 2, tw + 1, c), x.dtype)
    for parity in range(2):
        first = (parity - pw) % 2  # x's first column landing on padded columns of this parity
        count = len(range(first, w, 2))
        start = (pw + first) // 2
        to_channels_last(x[..., first::2], xp[:, ph : ph + h, parity, start : start + count])
    return xp


def input_tiles(xp: np.ndarray, rows: slice) -> np.ndarray:
    """``B^T d B`` for every 4x4 tile ``d`` in the tile rows ``rows`` of a padded input.

    xp: (N, H_p, 2, tw + 1, C) from ``padded_channels_last`` -> V: (16, N th tw, C), th = len(rows).
    Tile (ty, tx) reads padded rows 2 ty + a and columns 2 tx + b: column parity b % 2, split
    column tx + b // 2, so each term of the column transform is one run of tw C values a tile
    row (2026-12-07, 1 thread: 32 images of 32 channels at 16x16 0.84 -> 0.70 ms).
    """
    n, c, tw, th = xp.shape[0], xp.shape[4], xp.shape[3] - 1, rows.stop - rows.start
    src = xp[:, 2 * rows.start : 2 * rows.stop + 2]
    half = np.empty((4, n, th, 2, tw + 1, c), xp.dtype)
    _combine([src[:, a : a + 2 * th : 2] for a in range(4)], B_T, half)
    v = np.empty((4, 4, n, th, tw, c), xp.dtype)
    _combine([half[:, :, :, b % 2, b // 2 : b // 2 + tw] for b in range(4)], B_T, [v[:, j] for j in range(4)])
    return v.reshape(16, n * th * tw, c)


def kernel_transform(weight: np.ndarray, rotated: bool = False) -> np.ndarray:
    """``G g G^T`` for every kernel (rotated by 180 degrees first if ``rotated``), one product.

    weight: (C_out, C_in, 3, 3) -> U: (16, C_out, C_in)
    """
    c_out, c_in = weight.shape[:2]
    gg = (GG[:, ::-1] if rotated else GG).astype(weight.dtype)  # rotating g reverses its 9 values
    return np.matmul(gg, weight.reshape(c_out * c_in, 9).T).reshape(16, c_out, c_in)


def output_tiles(m: np.ndarray, out: np.ndarray, bias: np.ndarray | None) -> None:
    """``A^T M A`` for every tile, written into ``out`` (plus the bias).

    m: (16, N th tw, C_out), out: (N, C_out, rows, W_out), a view of the output (its last tile
    row may hang over an odd edge: rows in 2 th - 1 .. 2 th). The transform is one product with
    ``A^T (x) A^T`` (4 x 16), which reads ``M`` once (the additions would read it 3 times); one
    pass then puts the 4 outputs of each tile in place, channels last (runs of C_out values),
    and one more turns that to NCHW, the bias added on the way.
    """
    n, c_out, h, w = out.shape
    th, tw = (h + 1) // 2, (w + 1) // 2
    y = np.matmul(AA.astype(m.dtype), m.reshape(16, -1)).reshape(2, 2, n, th, tw, c_out)
    placed = np.empty((n, th, 2, tw, 2, c_out), m.dtype)  # (n, tile row, r, tile column, s, c)
    placed[...] = y.transpose(2, 3, 0, 4, 1, 5)
    image = placed.reshape(n, 2 * th, 2 * tw, c_out)[:, :h, :w].transpose(0, 3, 1, 2)
    if bias is None:
        np.copyto(out, image)
    else:
        np.add(image, bias[:, None, None], out=out)


def _convolve(
    xp: np.ndarray, ut: np.ndarray, out_size: tuple[int, int], bias: np.ndarray | None, threads: int
) -> np.ndarray:
    """Input transform, the 16 products ``M = V U^T`` and output transform, chunk by chunk.

    xp: (N, H_p, 2, W_p / 2, C_in) from ``padded_channels_last``, ut: (16, C_in, C_out), the kernel
    transform with its channels swapped -> (N, C_out, H_out, W_out)
    """
    n, c_out = xp.shape[0], ut.shape[2]
    out = np.empty((n, c_out, *out_size), xp.dtype)

    def convolve(chunks: list[tuple[slice, slice]]) -> None:
        for images, rows in chunks:
            m = np.matmul(input_tiles(xp[images], rows), ut)
            output_tiles(m, out[images, :, 2 * rows.start : 2 * rows.stop], bias)

    in_parts(convolve, _chunks(n, _tiles(out_size), ut.shape[1:], threads), threads)
    return out


def in_parts(work: Callable[[list], Result], chunks: list, threads: int) -> list[Result]:
    """``work`` on ``threads`` consecutive parts of ``chunks`` at once, each on a thread of its own
    (``batch_threads.over_batch``): the transforms, numpy loops on one core, then run on every
    core as the products do. One part, on the calling thread, where ``threads`` is 1."""
    return over_batch(lambda part: work(chunks[part]), len(chunks), min(threads, len(chunks)))


def winograd_conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, padding: tuple[int, int]
) -> np.ndarray:
    """A 3x3 stride-1 convolution by F(2x2, 3x3).

    x: (N, C_in, H, W), weight: (C_out, C_in, 3, 3), bias: (C_out,) or None
    -> (N, C_out, H + 2 P_h - 2, W + 2 P_w - 2)
    """
    out_size = (x.shape[2] + 2 * padding[0] - 2, x.shape[3] + 2 * padding[1] - 2)
    with OneBlasThread() as threads:
        ut = np.ascontiguousarray(kernel_transform(weight).transpose(0, 2, 1))
        return _convolve(padded_channels_last(x, padding, out_size), ut, out_size, bias, threads)


def grad_tiles(grad_out: np.ndarray) -> np.ndarray:
    """``A dY A^T`` for every 2x2 block ``dY`` of an even-sized output gradient: the 4 values of
    each block gathered (one pass), then one product with ``A (x) A`` (16 x 4).

    grad_out: (N, C_out, 2 th, 2 tw), any strides -> dM: (16, C_out, N th tw)
    """
    n, c_out, h, w = grad_out.shape
    blocks = np.empty((2, 2, c_out, n, h // 2, w // 2), grad_out.dtype)
    for r in range(2):
        for s in range(2):
            np.copyto(blocks[r, s], grad_out[:, :, r::2, s::2].transpose(1, 0, 2, 3))
    dm = np.matmul(AA.T.astype(grad_out.dtype), blocks.reshape(4, -1))
    return dm.reshape(16, c_out, -1)


def winograd_conv2d_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, padding: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """grad_input and grad_weight of ``winograd_conv2d`` (padding at most 2).

    grad_out: (N, C_out, H_out, W_out), x: (N, C_in, H, W), weight: (C_out, C_in, 3, 3)
    -> grad_x: like x, grad_weight: like weight
    """
    with OneBlasThread() as threads:
        # The transposed convolution: grad_out padded by 2 - P, kernels rotated, channels swapped
        # (U of the rotated kernels, (16, C_out, C_in), is already U^T of that convolution).
        grad_x = _convolve(padded_channels_last(grad_out, (2 - padding[0], 2 - padding[1]), x.shape[2:]),
                           kernel_transform(weight, rotated=True), x.shape[2:], None, threads)
        return grad_x, _weight_grad(grad_out, x, weight, padding, threads)


def _weight_grad(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, padding: tuple[int, int], threads: int
) -> np.ndarray:
    """grad_weight of ``winograd_conv2d``: dU (16, C_out, C_in), the sum over the tiles of dM V
    (each part of the chunks summing its own), then ``G^T dU G``, one product with ``G (x) G``.

    grad_out: (N, C_out, H_out, W_out), x: (N, C_in, H, W) -> (C_out, C_in, 3, 3)
    """
    (n, c_in), c_out, out_size = x.shape[:2], weight.shape[0], grad_out.shape[2:]
    (th, tw), xp = _tiles(out_size), padded_channels_last(x, padding, out_size)
    if out_size != (2 * th, 2 * tw):  # dY is zero past an odd edge
        even = np.zeros((n, c_out, 2 * th, 2 * tw), grad_out.dtype)
        even[:, :, : out_size[0], : out_size[1]] = grad_out
        grad_out = even

    def sum_du(chunks: list[tuple[slice, slice]]) -> np.ndarray:
        du, term = np.zeros((16, c_out, c_in), x.dtype), np.empty((16, c_out, c_in), x.dtype)
        for images, rows in chunks:
            dm = grad_tiles(grad_out[images, :, 2 * rows.start : 2 * rows.stop])
            np.add(du, np.matmul(dm, input_tiles(xp[images], rows), out=term), out=du)
        return du

    du = functools.reduce(np.add, in_parts(sum_du, _chunks(n, (th, tw), (c_in, c_out), threads), threads))
    return np.matmul(du.reshape(16, -1).T, GG.astype(x.dtype)).reshape(weight.shape)
