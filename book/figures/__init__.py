"""The book's pictures, drawn by code from cnnlib's own geometry (one module per family).

- ``player``: matplotlib animations as self-contained, offline, accessible HTML players;
- ``arithmetic``: conv_arithmetic's cases (padding, stride, dilation, transposed), animated.

Chapters run in ``book/``, so they import these as ``from figures import ...``.
"""
