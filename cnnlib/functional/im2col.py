"""im2col and its transpose col2im: turning a convolution into one matrix product.

``im2col`` copies every receptive field into a column, so that a convolution becomes
``weight (C_out, C_in K_h K_w) @ cols (C_in K_h K_w, positions)``. ``col2im`` goes back: it adds
each column onto the receptive field it came from, which is how the transposed convolution
(and so the input gradient) scatters values.

Speed: with stride 1 the columns are cut from the flattened padded image. Window (i, j) of
output position (y, x) starts at flat index ``(y + i D) W_p + x + j D``, so each row of ``cols``
is one contiguous run of memory, ``H_out W_p`` long. The price is ``W_p - W_out`` junk columns per
output row (windows that wrap around the edge), which callers drop; so this is done only when
the junk is at most half as many columns as the real ones. Otherwise (and with a larger
stride) the columns are gathered window by window.

Channels last: ``channels_last_cols`` builds the same matrix the other way round, one row per
output position and the columns ordered (i, j, c), from a padded (N, H_p, W_p, C_in) copy of the
input. There a window row is ``K_w C_in`` values side by side, so the copy moves long runs with
no junk at any stride, and the batch lies along one matrix dimension, so a layer is one matrix
product however small its images. The weight gradient uses it once those runs are 16 values or
more (LeNet's C3 and every deeper layer), ``correlate`` too unless the flat runs carry at most
10% junk; the flat runs win for one to a few input channels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._geometry import ConvGeometry
from ._windows import to_channels_last, windows2d


def _padded(x: np.ndarray, g: ConvGeometry, spare_rows: int) -> np.ndarray:
    """Zero-pad H and W by ``g.padding`` and add ``spare_rows`` zero rows at the bottom.

    x: (N, C, H, W) -> (N, C, H + 2 P_h + spare_rows, W + 2 P_w)
    """
    (ph, pw), (n, c, h, w) = g.padding, x.shape
    if ph == pw == spare_rows == 0 and x.flags.c_contiguous:
        return x
    out = np.zeros((n, c, h + 2 * ph + spare_rows, w + 2 * pw), x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _flat_runs(g: ConvGeometry) -> bool:
    """Cut columns as flat runs when the stride is 1 and junk is at most half the real columns."""
    padded_width = g.in_size[1] + 2 * g.padding[1]
    return g.stride == (1, 1) and 2 * padded_width <= 3 * g.out_size[1]


def little_junk(g: ConvGeometry) -> bool:
    """Flat runs with at most 10% junk columns (a wide image, little padding): then the forward
    product over ``im2col``'s columns is as fast as over channels-last ones and gives NCHW directly."""
    return _flat_runs(g) and 10 * row_pitch(g) <= 11 * g.out_size[1]


def row_pitch(g: ConvGeometry) -> int:
    """Columns of ``cols`` per output row: ``W_p`` for flat runs (junk included), else ``W_out``."""
    return g.in_size[1] + 2 * g.padding[1] if _flat_runs(g) else g.out_size[1]


def im2col(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Copy every receptive field of ``x`` into a column.

    x: (N, C_in, H, W) ->
    cols: (N, groups, C_in / groups * K_h * K_w, H_out * pitch), where
    ``pitch = row_pitch(g)`` and column ``y * pitch + x`` belongs to output
    position (y, x).
    """
    rows = g.in_channels // g.groups * g.kernel_size[0] * g.kernel_size[1]
    (kh, kw), (dh, dw) = g.kernel_size, g.dilation
    if not _flat_runs(g):
        windows = windows2d(_padded(x, g, 0), g.kernel_size, g.out_size,
                            g.stride, g.dilation)
        return windows.reshape(g.batch, g.groups, rows,
                               g.out_size[0] * g.out_size[1])
    # One spare row keeps the last window's junk tail inside the buffer.
    xp = _padded(x, g, spare_rows=1)
    sn, sc, sh, sw = xp.strides
    runs = as_strided(
        xp, shape=(g.batch, g.in_channels, kh, kw, g.out_size[0] * xp.shape[3]),
        strides=(sn, sc, dh * sh, dw * sw, sw), writeable=False,
    )
    return runs.reshape(g.batch, g.groups, rows, -1)


def cols_to_image(
    flat: np.ndarray, g: ConvGeometry, channels: int, bias: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Drop the junk columns of a matrix product over ``cols`` (adding ``bias`` in the same pass),
    into ``out`` if given.

    flat: (N, ..., H_out * pitch) -> (N, channels, H_out, W_out), C-contiguous
    """
    h_out, w_out = g.out_size
    image = flat.reshape(g.batch, channels, h_out, -1)[..., :w_out]
    return written_image(image, bias, out)


def written_image(image: np.ndarray, bias: np.ndarray | None, out: np.ndarray | None) -> np.ndarray:
    """``image`` (N, C, H, W) plus ``bias`` (C,) if any, copied in one pass into ``out`` (a new
    C-contiguous array, or ``image`` itself if it is one and there is no bias, when None)."""
    if out is None:
        if bias is None:
            return np.ascontiguousarray(image)
        out = np.empty(image.shape, image.dtype)
    if bias is None:
        out[...] = image
    else:
        np.add(image, bias[:, None, None], out=out)
    return out


def image_to_cols(image: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The layout of ``cols`` for an output-sized array, with zeros in the junk columns.

    image: (N, C, H_out, W_out) -> (N, groups, C / groups, H_out * pitch)
    """
    n, c, h_out, w_out = image.shape
    pitch = row_pitch(g)
    if pitch != w_out:
        wide = np.zeros((n, c, h_out, pitch), image.dtype)
        wide[..., :w_out] = image
        image = wide
    return image.reshape(n, g.groups, c // g.groups, h_out * pitch)


def windows_room(
    in_size: tuple[int, int], padding: tuple[int, int], kernel: tuple[int, int], out_size: tuple[int, int],
    stride: tuple[int, int], dilation: tuple[int, int],
) -> tuple[int, int]:
    """Rows and columns of a padded input that every window fits in: the padded input, or more
    where windows hang over its bottom and right edges (pooling's ceil_mode)."""
    return tuple(max(size + 2 * pad, (out - 1) * s + (k - 1) * d + 1)
                 for size, pad, k, out, s, d in zip(in_size, padding, kernel, out_size, stride, dilation))


def add_windows(
    per_offset: np.ndarray,
    in_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int],
) -> np.ndarray:
    """Add window values back onto the (padded) positions they were read from, then unpad.

    per_offset: (N, C, K_h, K_w, H_out, W_out), entry [n, c, i, j, y, x] belonging to input
    position (y S_h + i D_h - P_h, x S_w + j D_w - P_w) -> (N, C, H, W). Overlapping windows add up.
    """
    n, c, kh, kw, h_out, w_out = per_offset.shape
    (h, w), (sh, sw), (dh, dw), (ph, pw) = in_size, stride, dilation, padding
    image = np.zeros((n, c, *windows_room(in_size, padding, (kh, kw), (h_out, w_out), stride, dilation)),
                     per_offset.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (h_out - 1) + 1, sh)
            columns = slice(j * dw, j * dw + sw * (w_out - 1) + 1, sw)
            image[:, :, rows, columns] += per_offset[:, :, i, j]
    return image[:, :, ph : ph + h, pw : pw + w]


def col2im(cols: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Add each column back onto the receptive field it came from: the transpose of im2col.

    cols: (N, groups, C_in / groups * K_h * K_w, H_out * pitch), laid out as ``im2col`` makes
    them (junk columns, if any, must hold zeros) -> (N, C_in, H, W)
    """
    if not _flat_runs(g):
        per_offset = cols.reshape(g.batch, g.in_channels, *g.kernel_size, *g.out_size)
        return add_windows(per_offset, g.in_size, g.stride, g.dilation, g.padding)
    # Flat runs: each offset's values are one contiguous run of the padded image, as in im2col.
    (kh, kw), (dh, dw), (ph, pw), (h, w) = g.kernel_size, g.dilation, g.padding, g.in_size
    pitch = w + 2 * pw
    runs = cols.reshape(g.batch, g.in_channels, kh, kw, -1)
    image = np.zeros((g.batch, g.in_channels, (h + 2 * ph + 1) * pitch), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            start = i * dh * pitch + j * dw
            image[:, :, start : start + runs.shape[-1]] += runs[:, :, i, j]
    image = image.reshape(g.batch, g.in_channels, -1, pitch)
    return image[:, :, ph : ph + h, pw : pw + w]


def channels_last_cols(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """im2col with the channels last: every receptive field as one row.

    x: (N, C_in, H, W) -> (groups, N H_out W_out, K_h K_w C_in / groups), row ``(n, y, x)``,
    column ``(i, j, c)``. The input is first copied to (N, H_p, W_p, C_in) (padded, channels
    last), where the ``K_w C_in`` values a window row reads lie side by side in memory: the
    copy that builds the rows moves runs of that length, with no junk columns (the flat runs
    of ``im2col`` need ``W_p / W_out`` times the columns).
    """
    (ph, pw), (n, c, h, w) = g.padding, x.shape
    padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), x.dtype)
    to_channels_last(x, padded[:, ph : ph + h, pw : pw + w])
    sn, sh, sw, sc = padded.strides
    (kh, kw), (h_out, w_out), (s_h, s_w), (d_h, d_w) = g.kernel_size, g.out_size, g.stride, g.dilation
    windows = as_strided(
        padded, shape=(n, h_out, w_out, kh, kw, c),
        strides=(sn, s_h * sh, s_w * sw, d_h * sh, d_w * sw, sc), writeable=False,
    )
    if g.groups == 1:
        return windows.reshape(1, n * h_out * w_out, kh * kw * c)
    grouped = windows.reshape(n, h_out, w_out, kh, kw, g.groups, c // g.groups)
    return grouped.transpose(5, 0, 1, 2, 3, 4, 6).reshape(g.groups, n * h_out * w_out, -1)


def channels_last_kernels(weight: np.ndarray, groups: int) -> np.ndarray:
    """The kernels as rows in the column order of ``channels_last_cols``.

    weight: (C_out, C_in / groups, K_h, K_w) -> (groups, C_out / groups, K_h K_w C_in / groups)
    """
    c_out, c_per_group, kh, kw = weight.shape
    split = weight.reshape(groups, c_out // groups, c_per_group, kh, kw)
    return split.transpose(0, 1, 3, 4, 2).reshape(groups, c_out // groups, -1)


def kernels_from_channels_last(
    grad: np.ndarray, c_per_group: int, kernel_size: tuple[int, int]
) -> np.ndarray:
    """Back from ``channels_last_kernels``' layout, C-contiguous.

    grad: (groups, C_out / groups, K_h K_w C_in / groups) -> (C_out, C_in / groups, K_h, K_w)
    """
    groups, per_group_out = grad.shape[:2]
    split = grad.reshape(groups * per_group_out, *kernel_size, c_per_group)
    return np.ascontiguousarray(split.transpose(0, 3, 1, 2))


def to_nchw(
    per_position: np.ndarray, g: ConvGeometry, bias: np.ndarray | None, out: np.ndarray | None = None
) -> np.ndarray:
    """A product laid out channels last back to NCHW, adding the bias on the way (one transposing
    pass), into ``out`` (C-contiguous) if given.

    per_position: (groups, N H_out W_out, C_out / groups) -> (N, C_out, H_out, W_out)
    """
    (h, w), per_group = g.out_size, g.out_channels // g.groups
    image = per_position.reshape(g.groups, g.batch, h, w, per_group).transpose(1, 0, 4, 2, 3)
    if out is None:
        out = np.empty((g.batch, g.out_channels, h, w), per_position.dtype)
    target = out.reshape(g.batch, g.groups, per_group, h, w)
    if bias is None:
        target[...] = image
    else:
        np.add(image, bias.reshape(g.groups, per_group, 1, 1), out=target)
    return out
