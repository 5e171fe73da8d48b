"""What a graded function's spec holds: parameters, reference, formula, known mistakes.
"""

from cnnlib.testing.integrity import _FORBIDDEN

# One entry per graded function: its parameters, what it returns, the reference, the formula
# shown on a failure, and the mistakes recognised (each computed from the same inputs).


def _pair(value) -> tuple:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def _size_text(a) -> str:
    """``H_out = floor((H + 2P - K)/S) + 1`` with the numbers of these inputs."""
    x, k = a["x"][0], a["weight"][0] if "weight" in a else None
    kernel = _pair(a["kernel_size"]) if "kernel_size" in a else k[-2:]
    stride = _pair(a.get("stride") or kernel) if "kernel_size" in a else _pair(a.get("stride", 1))
    padding = _pair(a.get("padding", 0))
    return "; ".join(
        f"{axis}_out = floor(({n} + 2*{p} - {f})/{s}) + 1 = {(n + 2 * p - f) // s + 1}"
        for axis, n, f, s, p in zip("HW", x[-2:], kernel, stride, padding))


class _Spec:
    def __init__(self, params, reference, formula, *, outputs=None, kind="array", mistakes=None,
                 shape_formula=None, forbidden=_FORBIDDEN, allowed=(), rtol=1e-5, atol=1e-6):
        self.params, self.reference, self.formula = params, reference, formula
        self.outputs, self.kind, self.mistakes = outputs, kind, mistakes or (lambda a: ())
        self.shape_formula = shape_formula
        self.forbidden, self.allowed, self.rtol, self.atol = forbidden, allowed, rtol, atol


_REQUIRED = object()

