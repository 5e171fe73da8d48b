"""A multi-channel convolution taken apart, colour-coded channel by channel (deck 004's
two-channel example): each output plane is the first channel's map (red) plus the second
channel's map (blue) plus the plane's bias, every map computed by ``cnnlib.functional.conv2d``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import cnnlib.functional as F

CMAPS = ["Reds", "Blues", "Purples"]


def _grid(ax, values: np.ndarray, cmap: str, title: str) -> None:
    limit = max(1.0, float(np.abs(values).max()))
    ax.imshow(np.abs(values), cmap=cmap, vmin=0, vmax=limit * 1.6)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def channel_sums(image: np.ndarray, weight: np.ndarray, bias: np.ndarray):
    """Figure: for each output plane o, ``I[c] * W[o, c]`` per input channel c (one colour
    each), and their sum plus ``bias[o]``. image (C, H, W), weight (O, C, K, K), bias (O,)."""
    planes, channels = weight.shape[:2]
    fig, axes = plt.subplots(planes, channels + 1, figsize=(6.4, 2.1 * planes), squeeze=False)
    for o in range(planes):
        parts = [F.conv2d(image[None, c:c + 1], weight[o:o + 1, c:c + 1])[0, 0]
                 for c in range(channels)]
        for c, part in enumerate(parts):
            sign = "" if c == 0 else "+ "
            _grid(axes[o, c], part, CMAPS[c % 2], f"{sign}I[{c + 1}] * W[{o + 1}, {c + 1}]")
        total = np.round(sum(parts) + bias[o], 6)
        _grid(axes[o, channels], total, CMAPS[2], f"+ {bias[o]:g} = O[{o + 1}]")
    fig.tight_layout()
    return fig
