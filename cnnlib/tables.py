"""Tables as text: the markdown the book shows for summaries and receptive fields."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub/MyST markdown table; ints get thousands separators.

    >>> print(markdown_table(["layer", "params"], [["conv1", 1200]]))
    | layer | params |
    |---|---|
    | conv1 | 1,200 |
    """

    def cell(value: object) -> str:
        return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
