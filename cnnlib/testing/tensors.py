"""Tensors as tuples: ``(shape, values)``, values flat in row-major order.

Immutable, so the student's code cannot change the inputs the expected answer is computed from.
"""

# A tensor is ``(shape, values)``: two tuples, values flat in row-major order. Immutable, so the
# student's code cannot change the inputs the expected answer is computed from.


def _size(shape) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def _tensor(shape, values) -> tuple:
    return (tuple(shape), tuple(values))


def _flatten(literal) -> tuple:
    """A nested list of numbers as ``(shape, flat list)``."""
    if isinstance(literal, (list, tuple)):
        parts = [_flatten(item) for item in literal]
        shapes = {part[0] for part in parts}
        if len(shapes) > 1:
            raise ValueError(f"ragged nested list: rows of shapes {sorted(shapes)}")
        inner = parts[0][0] if parts else ()
        return ((len(literal), *inner), [v for part in parts for v in part[1]])
    return ((), [float(literal)])


def _unravel(index: int, shape) -> list:
    position = []
    for n in reversed(shape):
        index, rest = divmod(index, n)
        position.append(rest)
    return position[::-1]


def _strides(shape) -> list:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def _rearrange(t, shape, source_index) -> tuple:
    """A new tensor of ``shape`` whose value at each position comes from ``source_index``."""
    values = t[1]
    return _tensor(shape, [values[source_index(_unravel(k, shape))] for k in range(_size(shape))])


def _permute(t, perm) -> tuple:
    shape = tuple(t[0][p] for p in perm)
    strides = _strides(t[0])
    return _rearrange(t, shape, lambda pos: sum(pos[i] * strides[perm[i]] for i in range(len(perm))))


def _flip(t, axes) -> tuple:
    shape, strides = t[0], _strides(t[0])
    return _rearrange(t, shape, lambda pos: sum(
        ((shape[a] - 1 - pos[a]) if a in axes else pos[a]) * strides[a] for a in range(len(shape))))


def _reshape(t, shape) -> tuple:
    return _tensor(shape, t[1])


def _scale(t, factor) -> tuple:
    return _tensor(t[0], [v * factor for v in t[1]])


def _batch_item(t, n) -> tuple:
    step = _size(t[0][1:])
    return _tensor((1, *t[0][1:]), t[1][n * step:(n + 1) * step])


def _crop(t, top, bottom, left, right) -> tuple:
    *lead, h, w = t[0]
    shape = (*lead, h - top - bottom, w - left - right)
    return _rearrange(t, shape, lambda pos: sum(
        p * s for p, s in zip(pos[:-2] + [pos[-2] + top, pos[-1] + left], _strides(t[0]))))



def _pad2d(x, p_top, p_bottom, p_left, p_right):
    *lead, h, w = x[0]
    shape = (*lead, h + p_top + p_bottom, w + p_left + p_right)
    strides = _strides(x[0])
    values = x[1]

    def value(pos):
        r, c = pos[-2] - p_top, pos[-1] - p_left
        if 0 <= r < h and 0 <= c < w:
            return values[sum(q * s for q, s in zip(pos[:-2] + [r, c], strides))]
        return 0.0
    return _tensor(shape, [value(_unravel(k, shape)) for k in range(_size(shape))])



def _window(x, n, top, left, kh, kw):
    """The (1, C, K_h, K_w) patch of image n at (top, left), zeros outside the image."""
    (_, channels, h, w), xs = x
    values = []
    for c in range(channels):
        for m in range(kh):
            for q in range(kw):
                r, col = top + m, left + q
                inside = 0 <= r < h and 0 <= col < w
                values.append(xs[((n * channels + c) * h + r) * w + col] if inside else 0.0)
    return _tensor((1, channels, kh, kw), values)


def _format_number(v) -> str:
    if v.__class__ is float and v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}" if v.__class__ is float else repr(v)


def _format(values, shape) -> str:
    if not shape:
        return _format_number(values[0])
    step = _size(shape[1:])
    return "[" + ", ".join(_format(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"
