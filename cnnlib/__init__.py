"""cnnlib: convolutional neural networks in NumPy, forward and backward, checked against PyTorch."""

__version__ = "0.1.0"
