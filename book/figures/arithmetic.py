"""conv_arithmetic's pictures (Dumoulin and Visin), animated, with the sizes from cnnlib.geometry.

Each ``Case`` is one convolution along both axes (square input ``n``, kernel ``k``, stride,
padding, dilation; or the transposed convolution with ``output_padding``). A panel draws the
input (blue), its padding (dashed white), the zeros a transposed convolution inserts (grey), the
cells under the kernel at this step (dark), the cells a stride that does not fit leaves
uncovered (hatched), and the output filling in (green). A transposed convolution is drawn as
its equivalent direct convolution (``geometry.transposed_as_conv``), as conv_arithmetic does.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib import animation
from matplotlib.patches import Rectangle

from cnnlib import geometry

from .player import jshtml

COLOURS = {"input": "#9ecae1", "zero": "#e0e0e0", "pad": "white", "out": "#e5f5e0",
           "done": "#74c476", "tap": "#08519c", "now": "#006d2c"}


@dataclass(frozen=True)
class Case:
    """One setting of conv_arithmetic; sizes along one axis (the picture is square)."""

    title: str
    n: int
    k: int
    s: int = 1
    p: int = 0
    d: int = 1
    transposed: bool = False
    op: int = 0

    def counterpart(self) -> Case:
        """The transposed convolution that maps this one's output size back to its input size:
        same kernel, stride, padding and dilation, ``output_padding`` = the stride's leftover."""
        lay = self.layout()
        return Case(f"transposed of {self.title}", lay["out"], self.k, self.s, self.p, self.d,
                    transposed=True, op=lay["leftover"])

    def describe(self) -> str:
        lay = self.layout()
        return (f"{self.title}: {self.n}x{self.n} input, {self.k}x{self.k} kernel"
                f"{', stride ' + str(self.s) if self.s > 1 else ''}"
                f"{', padding ' + str(self.p) if self.p else ''}"
                f"{', dilation ' + str(self.d) if self.d > 1 else ''}"
                f"{', output_padding ' + str(self.op) if self.op else ''}"
                f", {lay['out']}x{lay['out']} output")

    def layout(self) -> dict:
        """Input length as drawn, padding before/after (negative crops), window step, the
        spacing of real inputs (s for a transposed convolution), output size and formula."""
        if self.transposed:
            t = geometry.transposed_as_conv(self.n, self.k, self.s, self.p, self.op, self.d)
            formula = geometry.conv_transpose_output_formula(self.n, self.k, self.s, self.p,
                                                             self.op, self.d)
            return dict(length=t.stretched_size, before=t.pad_before, after=t.pad_after, step=1,
                        every=self.s, out=t.out_size, formula=formula, leftover=0)
        return dict(length=self.n, before=self.p, after=self.p, step=self.s, every=1,
                    out=geometry.conv_output_size(self.n, self.k, self.s, self.p, self.d),
                    formula=geometry.conv_output_formula(self.n, self.k, self.s, self.p, self.d),
                    leftover=geometry.conv_leftover(self.n, self.k, self.s, self.p, self.d))


# conv_arithmetic's cases, small enough to animate (sizes along one axis).
PADDING = [Case("no padding, unit stride", 4, 3), Case("arbitrary padding", 3, 4, p=2),
           Case("half (same) padding", 4, 3, p=geometry.same_padding(3)[0]),
           Case("full padding", 3, 3, p=geometry.full_padding(3))]
STRIDE = [Case("stride 2", 5, 3, s=2), Case("stride 2, padding 1", 5, 3, s=2, p=1),
          Case("stride 2 does not fit", 6, 3, s=2, p=1)]
DILATION = [Case("dilation 2", 7, 3, d=2)]


def _kind(lay: dict, i: int, j: int) -> str:
    """What cell (i, j) of the drawn (padded) input is: 'input', 'zero' or 'pad'."""
    def one(a: int) -> str:
        if a < 0 or a >= lay["length"]:
            return "pad"
        return "zero" if a % lay["every"] else "input"

    kinds = {one(i - lay["before"]), one(j - lay["before"])}
    return "pad" if "pad" in kinds else "zero" if "zero" in kinds else "input"


class Panel:
    """The patches of one case in one axes, recoloured at each frame."""

    def __init__(self, ax, case: Case):
        self.case, self.lay = case, case.layout()
        lay, size = self.lay, self._size()
        self.cells = {}
        for i in range(size):
            for j in range(size):
                kind = _kind(lay, i, j)
                self.cells[i, j] = (kind, ax.add_patch(Rectangle(
                    (j, i), 1, 1, facecolor=COLOURS[kind], edgecolor="0.35", lw=0.6,
                    ls="--" if kind == "pad" else "-",
                    hatch="////" if self._uncovered(i, j) else None)))
        left = size + 1
        self.out = {(i, j): ax.add_patch(Rectangle((left + j, i), 1, 1, facecolor=COLOURS["out"],
                                                   edgecolor="0.35", lw=0.6))
                    for i in range(lay["out"]) for j in range(lay["out"])}
        ax.set_xlim(-0.2, left + lay["out"] + 0.2)
        ax.set_ylim(max(size, lay["out"]) + 0.2, -0.2)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{case.title}\n{lay['formula']} = {lay['out']}", fontsize=7)

    def _size(self) -> int:
        return self.lay["before"] + self.lay["length"] + self.lay["after"]

    def _uncovered(self, i: int, j: int) -> bool:
        edge = self._size() - self.lay["leftover"]
        return self.lay["leftover"] > 0 and (i >= edge or j >= edge)

    def show(self, step: int) -> None:
        out, lay, c = self.lay["out"], self.lay, self.case
        step %= out * out
        oi, oj = divmod(step, out)
        taps = {(oi * lay["step"] + a * c.d, oj * lay["step"] + b * c.d)
                for a in range(c.k) for b in range(c.k)}
        for (i, j), (kind, patch) in self.cells.items():
            patch.set_facecolor(COLOURS["tap"] if (i, j) in taps else COLOURS[kind])
            patch.set_alpha(0.55 if (i, j) in taps and kind != "input" else 1)
        for index, patch in enumerate(self.out.values()):
            colour = "now" if index == step else "done" if index < step else "out"
            patch.set_facecolor(COLOURS[colour])


def animate(cases: list[Case], cols: int | None = None, frames: int | None = None,
            width: float = 6.4):
    """An offline HTML player of the cases side by side (``cols`` per row), each panel stepping
    its own window; ``frames`` defaults to the largest number of windows (at most 25). Its alt
    text lists the cases with their sizes."""
    cols = cols or len(cases)
    rows = -(-len(cases) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width, 2.1 * rows), dpi=60, squeeze=False)
    panels = [Panel(ax, case) for ax, case in zip(axes.ravel(), cases)]
    for ax in axes.ravel()[len(cases):]:
        ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.08, hspace=0.3)
    frames = frames or min(25, max(p.lay["out"] ** 2 for p in panels))

    def frame(t):
        for panel in panels:
            panel.show(t)
        return []

    frame(0)
    anim = animation.FuncAnimation(fig, frame, frames=frames, interval=700, blit=False)
    alt = ("Animation: in each panel the kernel's cells (dark) step over the input (blue; "
           "dashed cells are padding zeros, grey cells zeros inserted between inputs) and fill "
           "the output (green). " + "; ".join(c.describe() for c in cases) + ".")
    return jshtml(anim, alt, default_mode="loop")
