"""max_pool2d and avg_pool2d: the decks' 4x4 examples, gradients, and PyTorch."""

import numpy as np
import pytest
from conftest import DEVICES
from hypothesis import given
from hypothesis import strategies as st

import cnnlib.functional as F
from cnnlib.check import compare_with_torch, gradcheck

pytestmark = pytest.mark.pool

DECK_001 = np.array([[1, 2, 4, 3], [5, 6, 8, 7], [9, 10, 12, 11], [13, 14, 16, 2]], np.float64)
DECK_004 = np.array([[38, 20, 77, 33], [36, 49, 12, 48], [26, 65, 100, 40], [90, 31, 43, 18]],
                    np.float64)


def test_deck_001_max_pool_2x2_stride_2():
    np.testing.assert_array_equal(F.max_pool2d(DECK_001[None, None], 2)[0, 0], [[6, 8], [14, 16]])


def test_deck_004_max_and_average_pool():
    x = DECK_004[None, None]
    np.testing.assert_array_equal(F.max_pool2d(x, 2)[0, 0], [[49, 77], [90, 100]])
    average = F.avg_pool2d(x, 2)[0, 0]
    np.testing.assert_array_equal(average, [[35.75, 42.5], [53, 50.25]])
    # The slide shows these means rounded to whole numbers (36 43 / 53 50).
    np.testing.assert_array_equal(np.round(average + 1e-9), [[36, 43], [53, 50]])


def test_max_pool_routes_the_gradient_to_each_windows_maximum():
    grad_x = F.max_pool2d_backward(np.ones((1, 1, 2, 2)), DECK_004[None, None], 2)[0, 0]
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[0, 2] = expected[3, 0] = expected[2, 2] = 1  # 49, 77, 90, 100
    np.testing.assert_array_equal(grad_x, expected)


def test_deck_004_tensorflow_max_pool_gradient_example():
    """The deck's TF printout: a (1, 4, 4, 1) NHWC input, 2x2 pool, gradient of ones.

    The slide export prints the 16 values in two columns: the left column holds the first
    eight in order, the right column the last eight.
    """
    left = [0.58009243, 1.1895669, 2.6777048, 0.15597591,
            -0.94100916, -0.7437242, -1.0578039, -0.30651447]
    right = [0.53753567, 0.10521288, -0.43827865, -0.7727399,
             -0.42974523, -1.669584, -0.92768306, -0.19861951]
    x = np.array(left + right, np.float32).reshape(1, 4, 4, 1).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(
        F.max_pool2d(x, 2).ravel(), np.float32([1.1895669, 2.6777048, 0.53753567, -0.19861951]))
    grad = F.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), x, 2)
    printed_left, printed_right = [0, 1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(grad.ravel(), printed_left + printed_right)


def test_average_pool_spreads_the_gradient_evenly():
    grad_x = F.avg_pool2d_backward(np.ones((1, 1, 2, 2)), DECK_004[None, None], 2)
    np.testing.assert_array_equal(grad_x, np.full((1, 1, 4, 4), 0.25))


def test_max_pool_ties_go_to_the_first_maximum_as_in_pytorch():
    x = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(
        F.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2), [[[[1, 0], [0, 0]]]])


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=(3, 2), stride=2),
])
def test_pool_gradients_match_central_differences(op, kwargs, rng):
    # Distinct values, so no window's maximum is a tie that a small step could flip.
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0
    gradcheck(op, x, **kwargs)


@st.composite
def pool_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(k + draw(st.integers(0, 6)) for k in kernel)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return shape, dict(kernel_size=kernel, stride=stride, padding=padding), draw(st.integers(0, 999))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(config=pool_configs())
def test_pools_match_pytorch(op, dtype, config, device):
    shape, kwargs, seed = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    compare_with_torch(op, x, device=device, **kwargs)


@given(config=pool_configs())
def test_naive_pools_agree_with_the_fast_ones(config):
    shape, kwargs, seed = config
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_array_equal(F.max_pool2d_naive(x, **kwargs), F.max_pool2d(x, **kwargs))
    np.testing.assert_allclose(F.avg_pool2d_naive(x, **kwargs), F.avg_pool2d(x, **kwargs))


def test_pools_keep_the_dtype():
    x = np.zeros((1, 1, 4, 4), np.float32)
    for op in ("max_pool2d", "avg_pool2d"):
        assert getattr(F, op)(x, 2).dtype == np.float32
        assert getattr(F, op + "_backward")(np.zeros((1, 1, 2, 2), np.float32), x, 2).dtype == np.float32
