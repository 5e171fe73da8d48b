"""Small float32 convolutions with the kernel's rows or columns folded into the matrix product,
and the weight gradient over the input gradient's planes.

im2col copies every window: ``K_h K_w C_in`` values per output position. With few input
channels (LeNet's C3: 6 -> 16, 5x5) that copy is ``N H_out W_out K_h`` runs of only ``K_w C_in``
values each (32,000 runs of 30 for C3), and numpy's cost per run, not the bytes, sets its time.
Here no window is copied. At stride 1, one kernel row ``i`` of every window lies in the padded
image's rows ``y + i D_h``, ``W_p`` values each: as a flat run over all output rows of an image
it is one contiguous run of ``H_out W_p`` values. So

- ``rows_of_x``: ``X[(c, i), (n, y, x')] = x_pad[n, c, y + i D_h, x']`` (``x' < W_p``), one run of
  ``H_out W_p`` values per (n, c, i): ``N C_in K_h`` runs (1,920 of 140 values for C3);
- ``moved_rows``: ``M[(o, j), (n, y, x')] = grad_out[n, o, y, x' - j D_w]`` (zero where that is
  outside the output), the output gradient on ``W_p``-wide rows, once per kernel column, moved
  right by ``j D_w``: ``C_out K_w`` runs of ``N H_out W_p`` values.

The three products of a layer are then

- forward: ``(C_out K_w, C_in K_h) @ X``, and ``out[n, o, y, x]`` the sum over j of row (o, j)
  at column (n, y, x + j D_w): ``K_w`` shifted additions of long runs (``folded_correlate``);
- input gradient: ``(C_in K_h, C_out K_w) @ M``, then ``K_h`` additions ``i D_h`` rows down
  (``conv_transpose.scatter_rows``);
- weight gradient: ``X @ M.T``, ``(C_in K_h, C_out K_w)`` (``folded_weight_grad``), M shared with
  the input gradient.

The price is the junk columns ``x' >= W_out`` (``W_p / W_out`` times the products' work, 1.4 for
C3) and a product output ``K_w`` (forward) or ``K_h`` (input gradient) times taller than the
layer's. That pays while the layer has fewer output channels than a window column has values
(``C_out < K_h C_in``) and its padded planes are small (``folds``); float64 never folds, so its
sums keep im2col's order.

Layers with more output channels (CIFAR's 3 -> 32) scatter their input gradient over planes
(``conv_transpose.scatter_planes``: the output gradient channel-major on zero planes of the
padded input's size, ``planes_of``). In float32 the weight gradient is then one product over
those same planes (``plane_weight_grad``) where they carry little junk (``little_plane_junk``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._geometry import ConvGeometry
from ._windows import pad2d
from .im2col import written_image

# The most values the padded input planes of a folded layer may hold (N C_in H_p W_p): LeNet's
# and CIFAR's layers, whose products and shifted additions stay in the caches.
MAX_PLANE_VALUES = 1 << 19


def folds(g: ConvGeometry, dtype: np.dtype) -> bool:
    """Fold the kernel into the products (this module) for this float32 layer: stride 1, one
    group, ``C_out < K_h C_in`` and padded planes of at most ``MAX_PLANE_VALUES`` values."""
    (h, w), (ph, pw) = g.in_size, g.padding
    plane_values = g.batch * g.in_channels * (h + 2 * ph) * (w + 2 * pw)
    return (dtype == np.float32 and g.stride == (1, 1) and g.groups == 1
            and plane_values <= MAX_PLANE_VALUES and g.out_channels < g.kernel_size[0] * g.in_channels)


def rows_of_x(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The padded input's rows as every kernel row reads them (stride 1).

    x: (N, C_in, H, W) -> (C_in K_h, N H_out W_p), row (c, i), column (n, y, x') holding
    ``x_pad[n, c, y + i D_h, x']``.
    """
    n, c = x.shape[:2]
    padded = np.ascontiguousarray(pad2d(x, g.padding))
    sn, sc, sh, sw = padded.strides
    (kh, _), (dh, _), h_out = g.kernel_size, g.dilation, g.out_size[0]
    runs = as_strided(padded, (c, kh, n, h_out * padded.shape[3]), (sc, dh * sh, sn, sw), writeable=False)
    return runs.reshape(c * kh, -1)


def moved_rows(y: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The output gradient on ``W_p``-wide rows, once per kernel column j, moved right by ``j D_w``.

    y: (N, C_out, H_out, W_out) -> (C_out K_w, N H_out W_p), row (o, j), column (n, y', x')
    holding ``y[n, o, y', x' - j D_w]`` (zero where ``x' - j D_w`` is outside ``[0, W_out)``: a value
    moved past its row lands on a junk column).
    """
    (_, kw), (_, dw), wp = g.kernel_size, g.dilation, g.in_size[1] + 2 * g.padding[1]
    n, c_out, h_out, w_out = y.shape
    lead = (kw - 1) * dw
    planes = np.zeros((c_out, lead + n * h_out * wp), y.dtype)
    planes[:, lead:].reshape(c_out, n, h_out, wp)[..., :w_out] = y.transpose(1, 0, 2, 3)
    channel, step = planes.strides
    moved = as_strided(planes[:, lead:], (c_out, kw, n * h_out * wp), (channel, -dw * step, step))
    return moved.reshape(c_out * kw, -1)


def folded_correlate(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, g: ConvGeometry,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``correlate`` for a layer that ``folds``: one product over ``rows_of_x``, then the sum of
    its ``K_w`` rows per output channel, each moved left by ``j D_w``. Into ``out`` if given.

    x: (N, C_in, H, W), weight: (C_out, C_in, K_h, K_w) -> (N, C_out, H_out, W_out)
    """
    (kh, kw), (_, dw), (h_out, w_out) = g.kernel_size, g.dilation, g.out_size
    kernels = weight.transpose(0, 3, 1, 2).reshape(g.out_channels * kw, g.in_channels * kh)
    values = np.matmul(kernels, rows_of_x(x, g)).reshape(g.out_channels, kw, -1)
    size = values.shape[-1]
    # Every real output column x < W_out reads x + j D_w < W_p: within its own row of values.
    reach = size - (kw - 1) * dw
    sums = np.empty((g.out_channels, size), x.dtype)
    if kw == 1:
        sums[:] = values[:, 0]
    else:
        np.add(values[:, 0, :reach], values[:, 1, dw : dw + reach], out=sums[:, :reach])
        for j in range(2, kw):
            sums[:, :reach] += values[:, j, j * dw : j * dw + reach]
    image = sums.reshape(g.out_channels, g.batch, h_out, -1)[..., :w_out].transpose(1, 0, 2, 3)
    return written_image(image, bias, out)


def folded_weight_grad(x: np.ndarray, moved: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The weight gradient of a layer that ``folds``: ``rows_of_x(x) @ moved.T``, image by image
    and kernel row by kernel row.

    Kernel row i of image n reads the padded image's rows ``i D_h`` on, ``H_out W_p`` values per
    channel in one run: ``moved``'s columns of that image (C_out K_w, H_out W_p) times those runs
    transposed (H_out W_p, C_in) is the image's share of ``grad_weight[:, :, i, :]``, and the batch
    sums the N shares. No copy of the rows is made, and each product's operands stay in the caches
    (ResNet-20's 16 -> 16 at 32x32 on 11 images: 0.58 against 0.94-0.98 ms for one product over
    a copy of all the rows, whose long sum of N H_out W_p terms ran at 27 GMAC/s; 1 thread,
    2026-12-07).
    x: (N, C_in, H, W), moved: ``moved_rows(grad_out, g)`` -> (C_out, C_in, K_h, K_w)
    """
    (kh, kw), dh, (h_out, _) = g.kernel_size, g.dilation[0], g.out_size
    n, c = x.shape[:2]
    padded = pad2d(x, g.padding)
    wp = padded.shape[3]
    planes = padded.reshape(n, c, -1)
    size = h_out * wp
    per_image = moved.reshape(-1, n, size).transpose(1, 0, 2)  # (N, C_out K_w, H_out W_p)
    grad = np.empty((kh, per_image.shape[1], c), x.dtype)
    for i in range(kh):
        rows = planes[:, :, i * dh * wp : i * dh * wp + size]  # (N, C_in, H_out W_p)
        np.sum(np.matmul(per_image, rows.transpose(0, 2, 1)), axis=0, out=grad[i])
    grad = grad.reshape(kh, g.out_channels, kw, c).transpose(1, 3, 0, 2)
    return np.ascontiguousarray(grad)


def planes_of(y: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The output gradient channel-major on zero planes of the padded input's size.

    y: (N, C_out, H_out, W_out) -> (C_out, N, H_p, W_p), ``y`` in each plane's top left corner
    """
    (h, w), (ph, pw) = g.in_size, g.padding
    n, c_out, h_out, w_out = y.shape
    planes = np.zeros((c_out, n, h + 2 * ph, w + 2 * pw), y.dtype)
    planes[:, :, :h_out, :w_out] = y.transpose(1, 0, 2, 3)
    return planes


def little_plane_junk(g: ConvGeometry) -> bool:
    """At most a quarter more plane positions than output positions (``H_p W_p <= 1.25 H_out
    W_out``: CIFAR's 3 -> 32 with padding 1, not LeNet's C1), where ``plane_weight_grad`` pays."""
    (h, w), (ph, pw), (h_out, w_out) = g.in_size, g.padding, g.out_size
    return 4 * (h + 2 * ph) * (w + 2 * pw) <= 5 * h_out * w_out


def plane_weight_grad(x: np.ndarray, planes: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The weight gradient (stride 1, one group) as one product over the planes that the input
    gradient's ``scatter_planes`` multiplies too.

    Column p = (n, y, x) of ``planes`` (``planes_of(grad_out, g)``, flat) meets, for kernel offset
    (i, j), the padded input at the same flat position moved by ``i D_h W_p + j D_w``: with the
    padded input channel-major, (C_in, N H_p W_p), the rows (c, i, j) of the product's right side
    are C_in K_h K_w long runs of it (a plane's junk positions, zeros, meet whatever lies there).
    x: (N, C_in, H, W) -> (C_out, C_in, K_h, K_w)
    """
    (kh, kw), (dh, dw), (ph, pw), (h, w) = g.kernel_size, g.dilation, g.padding, g.in_size
    n, c = x.shape[:2]
    hp, wp = h + 2 * ph, w + 2 * pw
    size = n * hp * wp
    padded = np.zeros((c, size + (kh - 1) * dh * wp + (kw - 1) * dw), x.dtype)
    padded[:, :size].reshape(c, n, hp, wp)[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)
    channel, step = padded.strides
    runs = as_strided(padded, (c, kh, kw, size), (channel, dh * wp * step, dw * step, step), writeable=False)
    product = np.matmul(planes.reshape(-1, size), runs.reshape(c * kh * kw, size).T)
    return product.reshape(-1, c, kh, kw)
