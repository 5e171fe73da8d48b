"""The book's figure code (book/figures): conv_arithmetic's cases take their sizes from
cnnlib.geometry, each transposed counterpart gives back its convolution's input size, and the
animation player is offline and described for screen readers."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
from figures import arithmetic, player  # noqa: E402

from cnnlib import geometry  # noqa: E402

CASES = arithmetic.PADDING + arithmetic.STRIDE + arithmetic.DILATION


@pytest.mark.parametrize("case", CASES, ids=[c.title for c in CASES])
def test_transposed_counterpart_maps_the_output_size_back(case):
    lay = case.layout()
    back = case.counterpart()
    assert back.n == lay["out"]
    assert back.layout()["out"] == case.n, back
    assert back.op == geometry.conv_leftover(case.n, case.k, case.s, case.p, case.d)


def test_the_cases_are_conv_arithmetics():
    sizes = {c.title: c.layout()["out"] for c in CASES}
    assert sizes["half (same) padding"] == 4 and sizes["full padding"] == 5
    assert [c.layout()["leftover"] for c in arithmetic.STRIDE] == [0, 0, 1]


def test_panel_steps_the_window_over_the_taps_the_geometry_gives():
    import matplotlib.pyplot as plt

    case = arithmetic.Case("dilated, strided", 7, 2, s=2, p=1, d=2)
    fig, ax = plt.subplots()
    panel = arithmetic.Panel(ax, case)
    panel.show(1)  # second window: one stride to the right
    tap = matplotlib.colors.to_rgba(arithmetic.COLOURS["tap"])
    taps = sorted(key for key, (_, patch) in panel.cells.items()
                  if patch.get_facecolor()[:3] == tap[:3])
    assert taps == [(0, 2), (0, 4), (2, 2), (2, 4)]
    plt.close(fig)


def test_player_is_offline_and_described():
    import matplotlib.pyplot as plt
    from matplotlib import animation

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    anim = animation.FuncAnimation(fig, lambda k: [], frames=2)
    page = player.jshtml(anim, 'two "frames"').data
    assert "font-awesome" not in page and "https://" not in page
    assert 'alt="two &quot;frames&quot;"' in page
    assert 'aria-label="animation frame"' in page
    with pytest.raises(ValueError, match="unexpected player HTML"):
        player.describe("<div></div>", "x")


def test_block_diagrams_label_each_layer_of_the_module():
    import matplotlib.pyplot as plt
    from figures import blocks

    from cnnlib import models
    from cnnlib.nn.residual import ResidualBlock

    block = dict(models.googlenet().named_children())["inception3a"]
    fig = blocks.inception_diagram(block, 192)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "conv 5x5, 32" in texts and "max pool 3x3" in texts
    assert f"concatenate along the channels: {block.out_channels} channels" in texts
    fig = blocks.residual_diagram(ResidualBlock(64, 128, stride=2))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("conv 3x3, stride 2, 128") == 1 and "conv 1x1, stride 2, 128" in texts
    plt.close("all")


def test_volume_figure_titles_come_from_the_geometry():
    import matplotlib.pyplot as plt
    from figures.volume import filter_in_volume

    fig = filter_in_volume(n=32, channels=3, k=5)
    assert [ax.get_title() for ax in fig.axes] == ["input 32x32x3 and one 5x5x3 filter",
                                                   "output map 28x28x1"]
    plt.close(fig)


def test_channel_sums_add_up_to_the_convolution():
    import matplotlib.pyplot as plt
    import numpy as np
    from figures.channels import channel_sums

    import cnnlib.functional as F

    rng = np.random.default_rng(4)
    image = rng.integers(-3, 4, (2, 4, 4)).astype(float)
    weight = rng.integers(-2, 3, (2, 2, 2, 2)).astype(float)
    bias = np.array([0.5, -1.0])
    fig = channel_sums(image, weight, bias)
    expected = F.conv2d(image[None], weight, bias)[0]
    for o in range(2):
        shown = [float(t.get_text()) for t in fig.axes[3 * o + 2].texts]
        assert np.allclose(shown, expected[o].ravel()), o
    plt.close(fig)
