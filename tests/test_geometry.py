"""cnnlib.geometry's size relationships against the shapes PyTorch actually returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from cnnlib import geometry as G

pytestmark = pytest.mark.shapes

sizes = st.integers(1, 24)
kernels = st.integers(1, 7)
strides = st.integers(1, 5)
paddings = st.integers(0, 4)
dilations = st.integers(1, 3)


def torch_or_error(call):
    """The shape PyTorch returns, or the string "error" where it refuses."""
    try:
        return tuple(call().shape)
    except RuntimeError:
        return "error"


def ours_or_error(call):
    try:
        return call()
    except ValueError:
        return "error"


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_conv_output_size_is_torchs(n, k, s, p, d):
    x, w = torch.zeros(1, 1, n), torch.zeros(1, 1, k)
    expected = torch_or_error(lambda: TF.conv1d(x, w, stride=s, padding=p, dilation=d))
    ours = ours_or_error(lambda: G.conv_output_size(n, k, s, p, d))
    assert ours == (expected if expected == "error" else expected[-1]), (n, k, s, p, d)


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@given(n=sizes, k=kernels, s=strides, d=dilations, mode=st.sampled_from(["same", "valid"]))
def test_string_padding_is_torchs(n, k, s, d, mode):
    """"same" keeps the size with the odd zero after the input, and is refused with a stride."""
    x = torch.arange(float(n)).reshape(1, 1, n)
    w = torch.zeros(1, 1, k)
    w[0, 0, 0] = 1  # picks x_pad[i]: shows where the padding went
    expected = torch_or_error(lambda: TF.conv1d(x, w, stride=s, padding=mode, dilation=d))
    ours = ours_or_error(lambda: G.conv_output_size(n, k, s, mode, d))
    assert ours == (expected if expected == "error" else expected[-1])
    if expected != "error" and mode == "same":
        before, after = G.same_padding(k, d)
        assert before + after == d * (k - 1) and after - before in (0, 1)
        out = TF.conv1d(x, w, padding=mode, dilation=d)[0, 0].numpy()
        padded = np.pad(np.arange(float(n)), (before, after))
        np.testing.assert_array_equal(out, padded[:n])


def test_same_padding_refuses_a_stride_as_torch_does():
    with pytest.raises(ValueError, match="strided"):
        G.same_padding(3, stride=2)
    with pytest.raises(ValueError, match="'same' or 'valid'"):
        G.conv_output_size(5, 3, padding="half")


@given(n=sizes, k=kernels, d=dilations)
def test_half_and_full_padding(n, k, d):
    """Half padding keeps an odd kernel's size; full padding gives n + d (k - 1)."""
    if k % 2:
        assert G.conv_output_size(n, k, padding=d * (k - 1) // 2, dilation=d) == n
    full = G.full_padding(k, d)
    x, w = torch.zeros(1, 1, n), torch.zeros(1, 1, k)
    assert TF.conv1d(x, w, padding=full, dilation=d).shape[-1] == G.conv_output_size(n, k, 1, full, d)
    assert G.conv_output_size(n, k, 1, full, d) == n + d * (k - 1)


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_leftover_is_what_the_stride_misses(n, k, s, p, d):
    expected = ours_or_error(lambda: G.conv_output_size(n, k, s, p, d))
    if expected == "error":
        with pytest.raises(ValueError):
            G.conv_leftover(n, k, s, p, d)
        return
    leftover = G.conv_leftover(n, k, s, p, d)
    assert (expected - 1) * s + G.effective_kernel_size(k, d) + leftover == n + 2 * p
    fits = ours_or_error(lambda: G.conv_output_size(n, k, s, p, d, strict=True))
    assert (fits == "error") == (leftover > 0)


@given(n=st.integers(1, 12), k=kernels, s=strides, p=paddings, d=dilations, o=st.integers(0, 4))
def test_conv_transpose_output_size_is_torchs(n, k, s, p, d, o):
    x, w = torch.zeros(1, 1, n), torch.zeros(1, 1, k)
    expected = torch_or_error(
        lambda: TF.conv_transpose1d(x, w, stride=s, padding=p, output_padding=o, dilation=d))
    ours = ours_or_error(lambda: G.conv_transpose_output_size(n, k, s, p, o, d))
    assert ours == (expected if expected == "error" else expected[-1]), (n, k, s, p, o, d)


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_transposed_conv_gives_back_the_input_size(n, k, s, p, d):
    """The transpose of a convolution, with output_padding = the leftover, is n long again."""
    out = ours_or_error(lambda: G.conv_output_size(n, k, s, p, d))
    if out == "error":
        return
    leftover = G.conv_leftover(n, k, s, p, d)
    if leftover >= max(s, d):  # never: the leftover is smaller than the stride
        pytest.fail("leftover >= stride")
    assert G.conv_transpose_output_size(out, k, s, p, leftover, d) == n
    x = torch.zeros(1, 1, out)
    y = TF.conv_transpose1d(x, torch.zeros(1, 1, k), stride=s, padding=p, output_padding=leftover, dilation=d)
    assert y.shape[-1] == n


@given(n=st.integers(1, 8), k=kernels, s=strides, p=paddings, d=dilations, o=st.integers(0, 4),
       seed=st.integers(0, 2**16))
def test_transposed_as_conv_is_the_same_computation(n, k, s, p, d, o, seed):
    """Stretch by s - 1 zeros, pad (or crop) as told, correlate with the flipped kernel."""
    eq = ours_or_error(lambda: G.transposed_as_conv(n, k, s, p, o, d))
    if eq == "error":
        return
    gen = torch.Generator().manual_seed(seed)
    x, w = torch.randn(1, 1, n, generator=gen, dtype=torch.float64), torch.randn(1, 1, k, generator=gen,
                                                                                 dtype=torch.float64)
    expected = TF.conv_transpose1d(x, w, stride=s, padding=p, output_padding=o, dilation=d)
    stretched = torch.zeros(1, 1, eq.stretched_size, dtype=torch.float64)
    stretched[..., :: eq.zeros_between + 1] = x
    padded = TF.pad(stretched, (eq.pad_before, eq.pad_after))  # negative amounts crop
    got = TF.conv1d(padded, w.flip(-1), dilation=d)
    assert got.shape[-1] == eq.out_size == expected.shape[-1]
    torch.testing.assert_close(got, expected)


@given(n=sizes, k=kernels, s=st.one_of(st.none(), strides), p=paddings, d=dilations, ceil=st.booleans())
def test_pool_output_size_is_torchs(n, k, s, p, d, ceil):
    x = torch.zeros(1, 1, n)
    expected = torch_or_error(lambda: TF.max_pool1d(x, k, s, p, d, ceil_mode=ceil))
    ours = ours_or_error(lambda: G.pool_output_size(n, k, s, p, d, ceil))
    assert ours == (expected if expected == "error" else expected[-1]), (n, k, s, p, d, ceil)
    if d == 1 and expected != "error":
        assert TF.avg_pool1d(x, k, s, p, ceil_mode=ceil).shape[-1] == ours


@given(n=sizes, m=st.integers(1, 24))
def test_adaptive_pool_windows_are_torchs(n, m):
    """Each output of adaptive average pooling is the mean over its window."""
    x = torch.randn(1, 1, n, generator=torch.Generator().manual_seed(n * 100 + m), dtype=torch.float64)
    out = TF.adaptive_avg_pool1d(x, m)[0, 0]
    windows = G.adaptive_pool_windows(n, m)
    assert len(windows) == out.shape[0]
    expected = torch.stack([x[0, 0, a:b].mean() for a, b in windows])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("call", [
    lambda: G.conv_output_size(5, 3, stride=0),
    lambda: G.conv_output_size(2, 5),
    lambda: G.conv_transpose_output_size(3, 3, stride=2, output_padding=2),
    lambda: G.conv_transpose_output_size(1, 1, padding=1),
    lambda: G.pool_output_size(5, 2, padding=2),
])
def test_refusals_name_the_rule(call):
    with pytest.raises(ValueError) as info:
        call()
    assert any(word in str(info.value) for word in ("must", "larger", "too large"))


def test_non_int_sizes_are_a_type_error():
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        G.conv_output_size(5, 2.0)
    with pytest.raises(TypeError, match="stride must be an int"):
        G.conv_transpose_output_size(5, 2, stride=True)


@pytest.mark.parametrize("module", ["cnnlib.geometry", "cnnlib.tables", "cnnlib.functional.padding"])
def test_docstring_examples_hold(module):
    """The examples in the docstrings (which the book's pictures and explorer rely on) run as shown."""
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
