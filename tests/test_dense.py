"""linear, relu and cross_entropy: hand cases, finite differences and PyTorch."""

import numpy as np
import pytest
from conftest import DEVICES

import cnnlib.functional as F
from cnnlib.check import compare_with_torch, gradcheck

pytestmark = pytest.mark.dense


def test_linear_by_hand():
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0], [0.5, -1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(F.linear(x, w, np.array([0.0, 1.0, -1.0])), [[1, -0.5, 7]])


def test_relu_gradient_is_zero_at_zero_as_in_pytorch():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(F.relu(x), [0, 0, 2])
    np.testing.assert_array_equal(F.relu_backward(np.ones(3), x), [0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_gradient_is_pytorchs_bit_for_bit_with_signed_zeros_and_infinities(dtype):
    """PyTorch's threshold_backward: grad_out where x > 0, else +0.0, whatever grad_out holds
    there (a negative number, an infinity, a NaN)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 8, 8)).astype(dtype)
    x.flat[::7] = 0.0
    grad_out = rng.standard_normal(x.shape).astype(dtype)
    for special in (None, np.inf, -np.inf, np.nan):
        if special is not None:
            grad_out.flat[::5] = special
        ours = F.relu_backward(grad_out, x)
        theirs = torch.ops.aten.threshold_backward(torch.from_numpy(grad_out), torch.from_numpy(x), 0).numpy()
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


@pytest.mark.parametrize("size", [0, 1, 7, (1 << 14) - 1, 1 << 14, (1 << 14) + 5, 3 * (1 << 14) + 1])
def test_relu_is_numpys_maximum_with_zero_bit_for_bit_at_any_size(size):
    """relu runs its maximum in rows against a row of zeros: the same values as
    ``np.maximum(x, 0)`` (NaNs, infinities, signed zeros) for sizes on either side of a row,
    any layout in, C-contiguous and x's shape out."""
    rng = np.random.default_rng(size)
    x = rng.standard_normal(2 * size).astype(np.float32)[::2]  # not contiguous
    x[::3] = np.array([-0.0, np.nan, -np.inf, np.inf, 0.0], np.float32)[rng.integers(0, 5, x[::3].size)]
    ours = F.relu(x)
    assert ours.shape == x.shape and ours.dtype == x.dtype and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, np.maximum(x, 0))
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(np.maximum(x, 0)))
    assert F.relu(np.float64(-2.0) * np.ones((2, 3, 4))).shape == (2, 3, 4)


def test_cross_entropy_by_hand():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    target = np.array([0, 1])
    # -(log 1/2 + log 1/4) / 2
    assert F.cross_entropy(logits, target) == pytest.approx((np.log(2) + np.log(4)) / 2)
    grad = F.cross_entropy_backward(logits, target)
    np.testing.assert_allclose(grad, [[-0.25, 0.25], [0.375, -0.375]])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0]])
    assert F.cross_entropy(logits, np.array([1])) == pytest.approx(1000.0)


@pytest.mark.parametrize("op", ["linear", "relu", "cross_entropy"])
def test_dense_gradients_match_central_differences(op, rng):
    if op == "linear":
        gradcheck(op, rng.standard_normal((4, 3)), rng.standard_normal((5, 3)),
                  rng.standard_normal(5))
    elif op == "relu":
        gradcheck(op, rng.standard_normal((4, 3)) + 0.05)
    else:
        gradcheck(op, rng.standard_normal((6, 4)), target=rng.integers(0, 4, 6))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_layers_match_pytorch(dtype, device, rng):
    x = rng.standard_normal((8, 6)).astype(dtype)
    compare_with_torch("linear", x, rng.standard_normal((3, 6)).astype(dtype),
                       rng.standard_normal(3).astype(dtype), device=device)
    compare_with_torch("linear", x, rng.standard_normal((3, 6)).astype(dtype), None, device=device)
    compare_with_torch("relu", x, device=device)
    compare_with_torch("cross_entropy", x, target=rng.integers(0, 6, 8), device=device)
