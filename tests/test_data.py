"""Data loaders: shapes, ranges, determinism, and the MNIST IDX format byte for byte."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from cnnlib import data

pytestmark = pytest.mark.data


def write_idx(path, array: np.ndarray, magic: int, compress: bool = False) -> None:
    """Write uint8 ``array`` as an IDX file: big-endian magic, big-endian dims, raw bytes."""
    raw = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.fixture
def mnist_arrays():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5).astype(
        np.uint8
    )


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_round_trip(tmp_path, mnist_arrays, compress):
    images, labels = mnist_arrays
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"img{suffix}", images, 2051, compress)
    write_idx(tmp_path / f"lab{suffix}", labels, 2049, compress)
    x, y = data.load_mnist_idx(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (5,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.rint(x[:, 0] * 255).astype(np.uint8), images)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_mnist_idx_swapped_paths_name_the_magic_numbers(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    write_idx(tmp_path / "img", images, 2051)
    write_idx(tmp_path / "lab", labels, 2049)
    with pytest.raises(ValueError, match=r"magic number 2049, expected 2051.*swapped"):
        data.load_mnist_idx(tmp_path / "lab", tmp_path / "img")


def test_mnist_idx_truncated_file_says_how_many_bytes(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    write_idx(tmp_path / "img", images, 2051)
    write_idx(tmp_path / "lab", labels, 2049)
    raw = (tmp_path / "img").read_bytes()
    (tmp_path / "img").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match=r"truncated.*5 x 28 x 28 = 3920 .* holds 3910"):
        data.load_mnist_idx(tmp_path / "img", tmp_path / "lab")


def test_mnist_idx_mismatched_counts(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    write_idx(tmp_path / "img", images, 2051)
    write_idx(tmp_path / "lab", labels[:4], 2049)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        data.load_mnist_idx(tmp_path / "img", tmp_path / "lab")


def test_mnist_idx_short_header(tmp_path):
    (tmp_path / "img").write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="too short"):
        data.load_mnist_idx(tmp_path / "img", tmp_path / "img")


@pytest.mark.parametrize("size", [8, 32])
def test_digits_shapes_ranges_and_stratified_split(size):
    x_train, y_train, x_test, y_test = data.load_digits(size=size)
    assert x_train.shape[1:] == (1, size, size) and x_test.shape[1:] == (1, size, size)
    assert len(x_train) + len(x_test) == 1797 and len(x_train) == len(y_train)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    train_share = np.bincount(y_train) / len(y_train)
    test_share = np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_digits_split_depends_only_on_seed():
    a, b, c = data.load_digits(seed=1), data.load_digits(seed=1), data.load_digits(seed=2)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[1], c[1])


def test_digits_upsampling_keeps_the_picture():
    small, *_ = data.load_digits(size=8, seed=0)
    large, *_ = data.load_digits(size=32, seed=0)
    block_means = large.reshape(-1, 1, 8, 4, 8, 4).mean(axis=(3, 5))
    assert np.corrcoef(block_means.ravel(), small.ravel())[0, 1] > 0.95


@pytest.mark.parametrize(("shape", "size"), [((2, 1, 8, 8), (32, 32)), ((3, 60, 51), (15, 20))])
def test_resize_matches_torch_antialiased_bilinear(shape, size):
    images = np.random.default_rng(0).random(shape, dtype=np.float32)
    batch = torch.from_numpy(images.reshape(-1, 1, *shape[-2:]))
    expected = torch.nn.functional.interpolate(
        batch, size=size, mode="bilinear", align_corners=False, antialias=True
    ).numpy().reshape(*shape[:-2], *size)
    np.testing.assert_allclose(data.resize(images, size), expected, atol=1e-5)


def test_sample_image_gray_and_color():
    gray = data.sample_image()
    color = data.sample_image(gray=False)
    assert gray.ndim == 2 and color.shape == (3, *gray.shape)
    assert gray.shape[0] >= 256 and gray.shape[1] >= 256
    for image in (gray, color):
        assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
        assert image.std() > 0.1  # a photograph, not a flat array
    np.testing.assert_allclose(gray, np.tensordot([0.299, 0.587, 0.114], color, 1), atol=1e-5)


def test_sample_image_resize_keeps_aspect_ratio():
    h, w = data.sample_image().shape
    small = data.sample_image(size=128)
    assert min(small.shape) == 128
    assert small.shape[0] / small.shape[1] == pytest.approx(h / w, rel=0.02)
    assert data.sample_image(gray=False, size=(64, 48)).shape == (3, 64, 48)


def test_batches_cover_every_example_once():
    x, y = np.arange(10)[:, None].astype(np.float32), np.arange(10)
    pieces = list(data.batches(x, y, batch_size=4, seed=3))
    assert [len(yb) for _, yb in pieces] == [4, 4, 2]
    seen = np.concatenate([yb for _, yb in pieces])
    assert sorted(seen) == list(range(10)) and not np.array_equal(seen, np.arange(10))
    for xb, yb in pieces:
        np.testing.assert_array_equal(xb[:, 0], yb)
    again = np.concatenate([yb for _, yb in data.batches(x, y, batch_size=4, seed=3)])
    np.testing.assert_array_equal(seen, again)


def test_batches_in_order_and_drop_last():
    x, y = np.zeros((10, 2)), np.arange(10)
    pieces = list(data.batches(x, y, 4, shuffle=False, drop_last=True))
    assert [list(yb) for _, yb in pieces] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batches_reject_bad_arguments():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        data.batches(np.zeros(3), np.zeros(2), 1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        data.batches(np.zeros(3), np.zeros(3), 0)


def test_batch_loader_new_permutation_each_epoch_reproducible():
    x, y = np.zeros((7, 1)), np.arange(7)

    def epochs(loader, n):
        return [np.concatenate([yb for _, yb in loader()]) for _ in range(n)]

    loader = data.batch_loader(x, y, batch_size=3, seed=5)
    assert len(loader) == 3
    first, second = epochs(loader, 2)
    assert sorted(first) == sorted(second) == list(range(7))
    assert not np.array_equal(first, second)
    for left, right in zip([first, second], epochs(data.batch_loader(x, y, 3, seed=5), 2), strict=True):
        np.testing.assert_array_equal(left, right)
