"""Transposed convolution: the backward pass of a convolution, used as a layer of its own.

A conv2d maps (N, C_in, H, W) to (N, C_out, H_out, W_out). Its transpose maps back the other way
by a full correlation of the output-sized array, dilated by the stride, with the flipped kernel.
That is both ``conv_transpose2d`` and conv2d's input gradient.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..geometry import conv_transpose_output_size
from ._geometry import ConvGeometry
from ._windows import dilate2d, pad_or_crop
from .correlate import correlate
from .folded import folds, moved_rows, planes_of
from .im2col import col2im, image_to_cols, little_junk, windows_room

Size = int | tuple[int, int]


def flip_kernel(weight: np.ndarray, groups: int) -> np.ndarray:
    """Rotate every kernel by 180 degrees and swap its in and out channels
    (group by group).

    weight: (C_a, C_b / groups, K_h, K_w) -> (C_b, C_a / groups, K_h, K_w)
    """
    c_a, c_b_per_group, kh, kw = weight.shape
    swapped = (weight.reshape(groups, c_a // groups, c_b_per_group, kh, kw)
               .transpose(0, 2, 1, 3, 4))
    return (swapped.reshape(groups * c_b_per_group, c_a // groups, kh, kw)
            [:, :, ::-1, ::-1])


def gather_transposed(
    y: np.ndarray, weight: np.ndarray, g: ConvGeometry,
) -> np.ndarray:
    """Transposed conv as the lectures draw it: a full correlation with the
    flipped kernel.

    Dilate ``y`` by the stride, zero-pad it by ``D (K - 1) - P``
    (a negative amount crops), and correlate with every kernel rotated by 180
    degrees, in and out channels swapped.
    y: (N, C_out, H_out, W_out), weight: (C_out, C_in / groups, K_h, K_w) ->
    (N, C_in, H, W)
    """
    (kh, kw), (dh, dw), (ph, pw) = g.kernel_size, g.dilation, g.padding
    full_h, full_w = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    if g.stride == (1, 1) and full_h >= 0 and full_w >= 0:
        # Nothing to spread out or crop: let the correlation pad y itself
        # (one copy fewer).
        inner = ConvGeometry(
            g.batch, g.out_channels, g.in_channels, g.groups, g.out_size,
            g.kernel_size, g.in_size, (1, 1), (full_h, full_w), g.dilation,
        )
        return correlate(y, flip_kernel(weight, g.groups), None, inner)
    dilated = dilate2d(y, g.stride)
    # Rows of the input that no window reached (the stride did not fit) get no
    # gradient.
    extra_h = g.in_size[0] - ((g.out_size[0] - 1) * g.stride[0] - 2 * ph
                              + dh * (kh - 1) + 1)
    extra_w = g.in_size[1] - ((g.out_size[1] - 1) * g.stride[1] - 2 * pw
                              + dw * (kw - 1) + 1)
    padded = pad_or_crop(dilated, full_h, full_h + extra_h,
                         full_w, full_w + extra_w)
    inner = ConvGeometry(
        g.batch, g.out_channels, g.in_channels, g.groups, padded.shape[2:],
        g.kernel_size, g.in_size, (1, 1), (0, 0), g.dilation,
    )
    return correlate(padded, flip_kernel(weight, g.groups), None, inner)


def scatter_transposed(
    y: np.ndarray, weight: np.ndarray, g: ConvGeometry,
) -> np.ndarray:
    """Transposed conv as a scatter: each output value sends ``value * kernel``
    back onto its receptive field (one matrix product, then col2im).

    y: (N, C_out, H_out, W_out), weight: (C_out, C_in / groups, K_h, K_w) ->
    (N, C_in, H, W)
    """
    kernels = (weight.reshape(g.groups, g.out_channels // g.groups, -1)
               .transpose(0, 2, 1))
    return col2im(np.matmul(kernels, image_to_cols(y, g)), g)


def scatter_channels_last(y: np.ndarray, weight: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The scatter with the channels last, for one group and a stride (where ``col2im`` adds
    its windows in runs of ``W_out`` values, one every S positions).

    ``y`` is copied channels last, (N H_out W_out, C_out); a product with the kernels of one
    kernel row i and a few columns j, ``(N H_out W_out, C_out) @ (C_out, width C_in)``, gives
    every output position's values for those offsets, and one addition puts them onto a
    channels-last padded input (N, H_p, W_p, C_in); one copy turns that to NCHW.

    With no dilation the kernel columns go in groups of S_w: columns j = S_w t .. S_w t + S_w - 1
    of output position x land side by side in group x + t of the padded row, so one product and
    one addition serve them all (a 3x3 at stride 2: 6 of each instead of 9), and the first
    group's addition is one contiguous run per output row (W_out S_w C_in values). For every
    input value the terms still come in col2im's order (i, j): the same sums, bit for bit.
    (ResNet-20's 16 -> 32 at stride 2, 16 images: 1.50 -> 1.38 ms at 1 thread, 2026-12-07,
    against one product per image, ``(H_out W_out, C_out) @ (C_out, K_h K_w C_in)``, whose
    additions moved runs of only ``S_w C_in`` values.)
    y: (N, C_out, H_out, W_out), weight: (C_out, C_in, K_h, K_w) -> (N, C_in, H, W)
    """
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (h, w) = g.kernel_size, g.stride, g.dilation, g.padding, g.in_size
    n, c_out, h_out, w_out = y.shape
    c_in = g.in_channels
    per_position = np.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(-1, c_out)
    kernels = weight.transpose(0, 2, 3, 1)  # (C_out, K_h, K_w, C_in)

    def values(i: int, j: int, width: int) -> np.ndarray:
        """(N, H_out, W_out, width C_in): kernel row i, columns j .. j + width - 1."""
        block = kernels[:, i, j : j + width].reshape(c_out, width * c_in)
        return np.matmul(per_position, block).reshape(n, h_out, w_out, width * c_in)

    room_h, room_w = windows_room(g.in_size, g.padding, g.kernel_size, g.out_size, g.stride, g.dilation)
    if dw == 1:
        groups = -(-room_w // sw)
        image = np.zeros((n, room_h, groups * sw, c_in), y.dtype)
        grouped = image.reshape(n, room_h, groups, sw * c_in)
        for i in range(kh):
            rows = slice(i * dh, i * dh + sh * (h_out - 1) + 1, sh)
            for t in range(-(-kw // sw)):
                width = min(sw, kw - sw * t)
                grouped[:, rows, t : t + w_out, : width * c_in] += values(i, sw * t, width)
    else:
        image = np.zeros((n, room_h, room_w, c_in), y.dtype)
        for i in range(kh):
            for j in range(kw):
                image[:, i * dh : i * dh + sh * (h_out - 1) + 1 : sh,
                      j * dw : j * dw + sw * (w_out - 1) + 1 : sw] += values(i, j, 1)
    return np.ascontiguousarray(image[:, ph : ph + h, pw : pw + w].transpose(0, 3, 1, 2))


def scatter_planes(
    y: np.ndarray, weight: np.ndarray, g: ConvGeometry, planes: np.ndarray | None = None
) -> np.ndarray:
    """The scatter for stride 1 and one group, laid out so that each kernel offset's values are
    added back in one contiguous run.

    ``y`` goes channel-major onto zero planes of the padded input's size, (C_out, N, H_p, W_p);
    one product with the kernels (rows ordered (i, j, c)) gives, for every offset, C_in N such
    planes; offset (i, j) adds them all at flat shift ``i D_h W_p + j D_w``. The junk (the planes'
    last rows and columns, zeros) costs ``H_p / H_out`` in the product, repaid by K_h K_w long
    additions instead of C_in N K_h K_w short ones: worth it while the planes are small.
    y: (N, C_out, H_out, W_out), weight: (C_out, C_in, K_h, K_w) -> (N, C_in, H, W);
    ``planes``: ``folded.planes_of(y, g)`` if already made (the weight gradient may share them).
    """
    (kh, kw), (dh, dw), wp = g.kernel_size, g.dilation, g.in_size[1] + 2 * g.padding[1]
    c_out = y.shape[1]
    if planes is None:
        planes = planes_of(y, g)
    kernels = weight.transpose(2, 3, 1, 0).reshape(kh * kw * g.in_channels, c_out)
    values = np.matmul(kernels, planes.reshape(c_out, -1)).reshape(kh, kw, -1)
    size = values.shape[-1]
    image = np.zeros(size + (kh - 1) * dh * wp + (kw - 1) * dw, y.dtype)
    for i in range(kh):
        for j in range(kw):
            start = i * dh * wp + j * dw
            image[start : start + size] += values[i, j]
    return _unpadded_nchw(image[:size], g)


def _unpadded_nchw(image: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The padded input planes (C_in, N, H_p, W_p), flat, cropped to (N, C_in, H, W), C-contiguous."""
    (h, w), (ph, pw) = g.in_size, g.padding
    planes = image.reshape(g.in_channels, g.batch, h + 2 * ph, w + 2 * pw)
    return np.ascontiguousarray(planes[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3))


def scatter_rows(
    y: np.ndarray, weight: np.ndarray, g: ConvGeometry, moved: np.ndarray | None = None
) -> np.ndarray:
    """``scatter_planes`` with the kernel's columns folded into the product: K_h additions of
    C_in values per position instead of K_h K_w, for ``K_w`` copies of ``y``.

    ``y`` goes channel-major onto planes ``H_out`` rows tall (the rows that windows start on) and
    ``W_p`` wide, all in one run per channel; row (o, j) of the product's right side is channel
    o's run moved right by ``j D_w`` (a value moved past its row lands on a junk column, zero).
    One product with the kernels, rows (i, c) and columns (o, j), gives for every kernel row i
    C_in N planes, each added to its padded input plane (H_p x W_p) ``i D_h`` rows down. The
    product reads ``C_out K_w`` rows and writes ``C_in K_h``, against ``C_out`` and ``C_in K_h
    K_w`` (over taller planes) for ``scatter_planes``: less to move when ``C_out < K_h C_in``.
    y: (N, C_out, H_out, W_out), weight: (C_out, C_in, K_h, K_w) -> (N, C_in, H, W);
    ``moved``: ``folded.moved_rows(y, g)`` if already made (the weight gradient shares it).
    """
    (kh, kw), dh, (h, w), (ph, pw) = g.kernel_size, g.dilation[0], g.in_size, g.padding
    n, c_out, h_out, _ = y.shape
    hp, wp = h + 2 * ph, w + 2 * pw
    if moved is None:
        moved = moved_rows(y, g)
    kernels = weight.transpose(2, 1, 0, 3).reshape(kh * g.in_channels, c_out * kw)
    values = np.matmul(kernels, moved)
    values = values.reshape(kh, g.in_channels * n, h_out * wp)
    image = np.zeros((g.in_channels * n, hp * wp), y.dtype)
    for i in range(kh):
        image[:, i * dh * wp : (i * dh + h_out) * wp] += values[i]
    return _unpadded_nchw(image, g)


def scatter_kind(g: ConvGeometry, dtype: np.dtype, with_weight_grad: bool = False) -> str:
    """How ``transposed_conv`` computes this layer's transpose: "gather", "rows" (``scatter_rows``),
    "planes" (``scatter_planes``), "channels" (``scatter_channels_last``) or "col2im"
    (``scatter_transposed``).

    Both ways compute the same sums; the gather copies ``C_out K_h K_w`` values per input pixel
    (and multiplies by the zeros a stride inserts), the scatter adds ``C_in K_h K_w`` per output
    pixel, so the cheaper one runs; a scatter at stride 1 over small planes (up to 2^19 values,
    LeNet's and CIFAR's layers) adds them in long runs (``scatter_planes``), or, for a float32
    layer that ``folds``, with the kernel's columns folded into the product (``scatter_rows``);
    a strided scatter of at least 16 input channels adds runs of channels (``scatter_channels_last``:
    CIFAR's 64 -> 128 at stride 2, 32 images of 16x16, 6.1 against 7.4 ms at 1 thread).

    ``with_weight_grad`` (conv2d's backward, whose weight gradient can share the moved rows): a
    float32 layer that folds, on wide rows (``little_junk``), takes "rows" even where the gather
    is cheaper, so that its weight gradient needs no channels-last columns (ResNet-20's 16 -> 16
    at 32x32 on 32 images, backward 6.8 -> 6.1 ms at 1 thread, 4.1 -> 3.7 at 2, 2026-12-07; a
    64 -> 64 layer at 8x8, with 25% junk columns, lost 14%).
    """
    if with_weight_grad and folds(g, dtype) and little_junk(g):
        return "rows"
    gather_cost = g.out_channels * g.in_size[0] * g.in_size[1] * g.stride[0] * g.stride[1]
    scatter_cost = 2 * g.in_channels * g.out_size[0] * g.out_size[1]
    if gather_cost < scatter_cost:
        return "gather"
    if folds(g, dtype):
        return "rows"
    (h, w), (ph, pw), (h_out, w_out) = g.in_size, g.padding, g.out_size
    plane_values = g.batch * g.in_channels * (h + 2 * ph) * (w + 2 * pw)
    # The planes' product runs over every plane position, the output's and the junk around it:
    # not where most of it is junk (LeNet's C5, 16 -> 120 5x5 on 5x5, 25 positions for 1 output;
    # its backward took 1.3-1.7 ms on planes against 0.1 by col2im).
    mostly_output = (h + 2 * ph) * (w + 2 * pw) <= 2 * h_out * w_out
    if g.stride == (1, 1) and g.groups == 1 and plane_values <= 1 << 19 and mostly_output:
        return "planes"
    if g.stride != (1, 1) and g.groups == 1 and g.in_channels >= 16:
        return "channels"
    return "col2im"


def transposed_conv(
    y: np.ndarray, weight: np.ndarray, g: ConvGeometry, shared: np.ndarray | None = None,
    kind: str | None = None,
) -> np.ndarray:
    """Transpose of the convolution described by ``g``: from its output's shape to its input's,
    the way ``kind`` says (``scatter_kind``'s choice if None). ``shared``: what the weight
    gradient made of ``y`` already, ``folded.moved_rows(y, g)`` for "rows", ``folded.planes_of(y,
    g)`` for "planes".
    """
    kind = kind or scatter_kind(g, y.dtype)
    if kind == "gather":
        return gather_transposed(y, weight, g)
    if kind == "rows":
        return scatter_rows(y, weight, g, shared)
    if kind == "planes":
        return scatter_planes(y, weight, g, shared)
    if kind == "channels":
        return scatter_channels_last(y, weight, g)
    return scatter_transposed(y, weight, g)


def transpose_arguments(
    op: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Size, padding: Size,
    output_padding: Size, groups: int, dilation: Size,
) -> ConvGeometry:
    """Check a batched conv_transpose2d call; return the geometry of the conv whose transpose it is."""
    _checks.float_array(x, "x", "(N, C_in, H, W)", op)
    _checks.float_array(weight, "weight", "(C_in, C_out / groups, K_h, K_w)", op)
    if isinstance(padding, str):
        raise TypeError(f"{op}: padding must be an int or a pair of ints (PyTorch's transposed "
                        f"convolutions take no string padding), got {padding!r}")
    stride = _checks.pair(stride, "stride", minimum=1)
    padding = _checks.pair(padding, "padding", minimum=0)
    dilation = _checks.pair(dilation, "dilation", minimum=1)
    output_padding = _checks.pair(output_padding, "output_padding", minimum=0)
    groups = _checks.positive_int(groups, "groups", op)
    n, c_in, h, w = x.shape
    if weight.shape[0] != c_in or c_in % groups:
        raise ValueError(
            f"{op}: weight of shape {weight.shape} must have C_in = {c_in} rows (x of shape "
            f"{x.shape}), and groups={groups} must divide C_in"
        )
    kernel = weight.shape[2:]
    size = []
    for axis, args in zip("HW", zip((h, w), kernel, stride, padding, output_padding, dilation)):
        try:
            size.append(conv_transpose_output_size(*args))
        except ValueError as error:
            raise ValueError(f"{op}: x of shape {x.shape}, weight of shape {weight.shape}, "
                             f"along {axis}: {error}") from None
    c_out = weight.shape[1] * groups
    if bias is not None:
        _checks.float_array(bias, "bias", "(C_out,)", op)
        _checks.expect_shape(op, "bias", bias.shape, (c_out,), "one bias per output channel")
    _checks.same_dtype(op, x=x, weight=weight, bias=bias)
    return ConvGeometry(n, c_out, c_in, groups, (size[0], size[1]), kernel, (h, w), stride, padding, dilation)


def conv_transpose2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: Size = 1,
    padding: Size = 0, output_padding: Size = 0, groups: int = 1, dilation: Size = 1,
) -> np.ndarray:
    """Transposed 2D convolution, as ``torch.nn.functional.conv_transpose2d``.

    x: (N, C_in, H, W) or (C_in, H, W), weight: (C_in, C_out / groups, K_h, K_w),
    bias: (C_out,) or None -> out: (N, C_out, H_out, W_out) (no N if x had none), with
    ``H_out = (H - 1) S_h - 2 P_h + D_h (K_h - 1) + output_padding_h + 1``.
    """
    op = "conv_transpose2d"
    x4, unbatched = _checks.batched(x, "x", "(N, C_in, H, W)", op)
    g = transpose_arguments(op, x4, weight, bias, stride, padding, output_padding, groups, dilation)
    out = transposed_conv(x4, weight, g)
    if bias is not None:
        out += bias[:, None, None]
    return out[0] if unbatched else out
