"""A filter spanning the full depth of its input, in 3-D (deck 000's 5x5x3 filter on 32x32x3).

The input volume, the filter at one position (as deep as the input) and the output map with the
one value that position gives; the output's size comes from ``cnnlib.geometry``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from cnnlib import geometry

CHANNELS = ["#d62728", "#2ca02c", "#1f77b4"]  # red, green, blue


def _box(ax, origin, size, colour, alpha, label=None):
    """A cuboid with corner ``origin`` (x, y, z) and edge lengths ``size`` (width, depth, height)."""
    (x, y, z), (dx, dy, dz) = origin, size
    corners = [(x + a * dx, y + b * dy, z + c * dz) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    faces = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
    ax.add_collection3d(Poly3DCollection([[corners[i] for i in face] for face in faces],
                                         facecolors=colour, edgecolors="0.25", linewidths=0.6,
                                         alpha=alpha, label=label))


def filter_in_volume(n: int = 32, channels: int = 3, k: int = 5, at: tuple[int, int] = (6, 20)):
    """Figure: the ``k x k x channels`` filter at row/column ``at`` of the ``n x n x channels``
    input (left), and the ``out x out x 1`` map with the value it computes (right)."""
    out = geometry.conv_output_size(n, k)
    fig = plt.figure(figsize=(6.4, 3.0))
    for index, (title, size, depth) in enumerate(
            [(f"input {n}x{n}x{channels} and one {k}x{k}x{channels} filter", n, channels),
             (f"output map {out}x{out}x1", out, 1)]):
        ax = fig.add_subplot(1, 2, index + 1, projection="3d")
        row, col = at
        if index == 0:  # one slab per channel, the filter as deep as all of them
            for c in range(depth):
                _box(ax, (0, 0, c), (size, size, 1), CHANNELS[c % 3], 0.18)
                _box(ax, (col, row, c), (k, k, 1), CHANNELS[c % 3], 0.9)
        else:
            _box(ax, (0, 0, 0), (size, size, 1), "#bdbdbd", 0.25)
            _box(ax, (col, row, 0), (1, 1, 1), "#252525", 0.95)
        ax.set_xlim(0, n)
        ax.set_ylim(0, n)
        ax.set_zlim(0, 8)
        ax.set_box_aspect((1, 1, 0.35))
        ax.view_init(elev=28, azim=-60)
        ax.set_xlabel("width", fontsize=7, labelpad=-8)
        ax.set_ylabel("height", fontsize=7, labelpad=-8)
        ax.set_zlabel("channels", fontsize=7, labelpad=-10)
        ax.tick_params(labelsize=6, pad=-3)
        ax.set_title(title, fontsize=8)
    fig.subplots_adjust(left=0, right=1, bottom=0.03, top=0.92, wspace=0.02)
    return fig
