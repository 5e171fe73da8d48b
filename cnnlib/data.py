"""Real data that needs no download: scikit-learn's digits, MNIST IDX files, a photograph.

Every image array comes back as float32 in [0, 1], laid out NCHW like the layers expect;
labels are int64. ``batches`` and ``BatchLoader`` cut arrays into reproducible mini-batches.
"""

from __future__ import annotations

import gzip
import numbers
import os
import struct
from collections.abc import Callable, Iterator

import numpy as np

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


# ---------------------------------------------------------------------------- resizing


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a triangle (bilinear) filter, widened when shrinking.

    Output pixel i is centred at input coordinate ``(i + 0.5) * n_in / n_out``; when
    shrinking the triangle stretches over ``n_in / n_out`` input pixels so every input pixel
    is averaged in (no aliasing). This is PIL's and ``torch.nn.functional.interpolate(...,
    mode="bilinear", antialias=True)``'s rule; growing, it is plain bilinear interpolation.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    distance = (np.arange(n_in) + 0.5 - centres[:, None]) / support
    weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def resize(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize the last two axes of ``images`` to ``size = (H_out, W_out)`` (an int: square).

    images: (..., H, W) -> (..., H_out, W_out), bilinear, antialiased when shrinking
    (matches ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``).
    """
    sizes = (size, size) if isinstance(size, numbers.Integral) else size
    h_out, w_out = (_positive_int(s, "size") for s in sizes)  # type: ignore[union-attr]
    rows = _resize_matrix(images.shape[-2], h_out).astype(images.dtype)
    cols = _resize_matrix(images.shape[-1], w_out).astype(images.dtype)
    return rows @ images @ cols.T


# ---------------------------------------------------------------------------- digits


def load_digits(
    size: int = 8, test_fraction: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits (shipped with it, no download), split in two.

    Returns ``(x_train, y_train, x_test, y_test)``: x: (N, 1, size, size) float32 in [0, 1]
    (the 8x8 originals have 17 grey levels, 0..16), y: (N,) int64 in 0..9. ``size=32`` gives
    LeNet-5's input, upsampled bilinearly. The split is stratified (each digit in the same
    proportion on both sides) and depends only on ``seed``.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    size = _positive_int(size, "size")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    if size != 8:
        x = np.clip(resize(x, size), 0.0, 1.0)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------------------- MNIST IDX


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, gunzipped when it starts with gzip's magic bytes 1f 8b."""
    with open(path, "rb") as file:
        raw = file.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({error})") from None
    return raw


def _read_idx(path: str | os.PathLike, magic: int, what: str) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: a big-endian header, then the values."""
    raw = _read_bytes(path)
    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}[magic]
    header = 4 * (1 + ndim)
    found = struct.unpack(">i", raw[:4])[0] if len(raw) >= 4 else None
    if found is not None and found != magic:
        other = {IDX_IMAGES_MAGIC: "an images", IDX_LABELS_MAGIC: "a labels"}.get(found)
        hint = f" (this is {other} file: are the two paths swapped?)" if other else ""
        raise ValueError(f"{path}: magic number {found}, expected {magic} for {what}{hint}")
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX {what} header")
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    expected = int(np.prod(dims))
    got = len(raw) - header
    if got != expected:
        state = "truncated" if got < expected else "too long"
        raise ValueError(
            f"{path}: {state}: the header promises {' x '.join(map(str, dims))} = {expected} "
            f"bytes of {what}, the file holds {got}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST pair of IDX files (``train-images-idx3-ubyte`` etc., plain or ``.gz``).

    Returns x: (N, 1, rows, cols) float32 in [0, 1] (pixel / 255; MNIST is 28x28) and
    y: (N,) int64. Raises ``ValueError`` for a wrong magic number (2051 images, 2049 labels),
    a truncated file, or image and label counts that differ.
    """
    images = _read_idx(images_path, IDX_IMAGES_MAGIC, "images")
    labels = _read_idx(labels_path, IDX_LABELS_MAGIC, "labels")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels"
        )
    x = (images.astype(np.float32) / 255.0)[:, None]
    return x, labels.astype(np.int64)


# ---------------------------------------------------------------------------- a photograph


def _resize_keep_aspect(image: np.ndarray, size: int) -> np.ndarray:
    """An int sets the shorter side (aspect ratio kept), as torchvision's ``Resize``."""
    if isinstance(size, numbers.Integral):
        h, w = image.shape[-2:]
        size = _positive_int(size, "size")
        short, long = (h, w) if h <= w else (w, h)
        other = max(1, round(long * size / short))
        size = (size, other) if h <= w else (other, size)
    return np.clip(resize(image, size), 0.0, 1.0)


def sample_image(gray: bool = True, size: int | None = None) -> np.ndarray:
    """Grace Hopper's portrait (600 x 512 pixels), shipped with matplotlib's sample data.

    Returns float32 in [0, 1]: (H, W) when ``gray`` (luma 0.299 R + 0.587 G + 0.114 B),
    else (3, H, W) channels first. ``size``: an int sets the shorter side keeping the aspect
    ratio, a pair ``(H, W)`` sets both; ``None`` keeps the original.
    """
    from matplotlib import cbook
    from matplotlib import image as mpimg

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    rgb = mpimg.imread(path)[..., :3].astype(np.float32) / 255.0  # (H, W, 3) uint8 -> [0, 1]
    image = rgb.transpose(2, 0, 1)
    if gray:
        image = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), image, axes=1)
    if size is not None:
        image = _resize_keep_aspect(image, size)
    return np.ascontiguousarray(image, dtype=np.float32)


# ---------------------------------------------------------------------------- batches


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None, drop_last: bool):
    stop = len(x) - len(x) % batch_size if drop_last else len(x)
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x[index], y[index]


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over ``(x_batch, y_batch)`` pairs of ``batch_size`` examples (the last may be
    smaller unless ``drop_last``), in a random order fixed by ``seed`` when ``shuffle``.

    x: (N, ...), y: (N, ...) -> x_batch: (B, ...), y_batch: (B, ...), B <= batch_size.
    """
    _check_pair(x, y)
    batch_size = _positive_int(batch_size, "batch_size")
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else None
    return _batches(x, y, batch_size, order, drop_last)


class BatchLoader:
    """A zero-argument callable for a training loop: each call starts a new epoch.

    ``loader()`` returns an iterator over ``(x_batch, y_batch)``; epoch ``e`` uses the
    permutation seeded by ``(seed, e)``, so every run sees the same sequence of epochs.
    ``len(loader)`` is the number of batches per epoch.

    >>> train_batches = BatchLoader(np.zeros((10, 1, 8, 8)), np.arange(10), batch_size=4)
    >>> len(train_batches), [len(y_batch) for x_batch, y_batch in train_batches()]
    (3, [4, 4, 2])
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        _check_pair(x, y)
        self.x, self.y = x, y
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = None
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))
        self.epoch += 1
        return _batches(self.x, self.y, self.batch_size, order, self.drop_last)


def batch_loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> Callable[[], Iterator]:
    """``BatchLoader(...)``: a per-epoch iterator factory to pass as ``train_batches``."""
    return BatchLoader(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
