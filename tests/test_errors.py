"""Bad input gets a clear exception naming the shapes and what was expected."""

import numpy as np
import pytest

import cnnlib.functional as F
from cnnlib.shapes import conv_output_size

X = np.zeros((1, 3, 8, 8), np.float32)
W = np.zeros((4, 3, 3, 3), np.float32)


def test_mismatched_channels_name_both_shapes():
    with pytest.raises(ValueError, match=r"weight of shape \(4, 2, 3, 3\) expects C_in .*x of shape "
                       r"\(1, 3, 8, 8\) has 3"):
        F.conv2d(X, np.zeros((4, 2, 3, 3), np.float32))


def test_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match=r"larger than the padded input of size 8.*\(8 - 9\)/1 \+ 1"):
        F.conv2d(X, np.zeros((4, 3, 9, 9), np.float32))


@pytest.mark.parametrize("bad", [X.astype(np.int64), X.astype(np.float16)])
def test_wrong_dtype_is_a_type_error(bad):
    with pytest.raises(TypeError, match="x must be float32 or float64, got dtype"):
        F.conv2d(bad, W)


def test_mixed_precision_is_refused():
    with pytest.raises(TypeError, match="x is float32, weight is float64"):
        F.conv2d(X, W.astype(np.float64))


def test_wrong_rank_names_the_layout():
    with pytest.raises(ValueError, match=r"x of shape \(C_in, H, W\) \(unbatched, 3D\) or \(N, C_in, H, W\) "
                       r"\(batched, 4D\), got shape \(8, 8\)"):
        F.conv2d(X[0, 0], W)
    with pytest.raises(TypeError, match="must be a NumPy array"):
        F.conv2d(X.tolist(), W)


@pytest.mark.parametrize("call", [
    lambda: F.conv2d(X, W, stride=-1),
    lambda: F.conv2d(X, W, stride=0),
    lambda: F.max_pool2d(X, 2, stride=-2),
    lambda: F.conv1d(X[:, :, 0], W[:, :, 0], stride=-1),
])
def test_negative_or_zero_stride(call):
    with pytest.raises(ValueError, match="stride must be >= 1"):
        call()


def test_non_int_arguments_are_type_errors():
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints, got 1.5"):
        F.conv2d(X, W, stride=1.5)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        F.max_pool2d(X, (2, 2, 2))


def test_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="groups=2 must divide both C_in=3"):
        F.conv2d(X, W, groups=2)


def test_bias_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\) \(one bias per output channel\)"):
        F.conv2d(X, W, np.zeros(3, np.float32))


def test_grad_out_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 4, 6, 6\)"):
        F.conv2d_backward(np.zeros((1, 4, 5, 5), np.float32), X, W)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 3, 4, 4\)"):
        F.max_pool2d_backward(np.zeros((1, 3, 3, 3), np.float32), X, 2)


def test_pool_padding_over_half_the_kernel():
    with pytest.raises(ValueError, match="padding must be at most half the kernel size"):
        F.avg_pool2d(X, 2, padding=2)


def test_transposed_output_padding_must_be_below_stride():
    with pytest.raises(ValueError, match="along H: output_padding must be smaller than either stride"):
        F.conv_transpose2d(X, np.zeros((3, 2, 3, 3), np.float32), stride=2, output_padding=2)


def test_linear_feature_mismatch():
    with pytest.raises(ValueError, match=r"x of shape \(2, 5\) has 5 features but weight of shape "
                       r"\(3, 4\) expects in_features = 4"):
        F.linear(np.zeros((2, 5)), np.zeros((3, 4)))


def test_cross_entropy_labels_out_of_range():
    with pytest.raises(ValueError, match=r"target must lie in \[0, C\) = \[0, 3\) "
                       r"\(or equal ignore_index=-100\), got 3 at index 1"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 3\) \(class probabilities"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer class indices or float class probabilities"):
        F.cross_entropy(np.zeros((2, 3)), np.array(["a", "b"]))


class TestConvOutputSize:
    def test_lecture_values(self):
        assert conv_output_size(7, 3) == 5
        assert conv_output_size(7, 3, stride=2) == 3
        assert conv_output_size(28, 3, stride=2) == 13
        assert conv_output_size(32, 5, padding=2) == 32

    def test_stride_3_does_not_fit_a_7x7_input(self):
        assert conv_output_size(7, 3, stride=3) == 2  # floor, as PyTorch
        with pytest.raises(ValueError, match=r"\(7 - 3\)/3 \+ 1 = 2.33 is not an integer: stride 3"):
            conv_output_size(7, 3, stride=3, strict=True)

    def test_dilation_grows_the_kernel(self):
        assert conv_output_size(7, 3, dilation=2) == 3
