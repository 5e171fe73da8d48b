"""Comparing and explaining: what differs, the formula, and the known mistake it matches.
"""

import numpy as np

from cnnlib.testing.arguments import _from_array
from cnnlib.testing.errors import WIDTH, GradingError
from cnnlib.testing.integrity import _HEAPTYPE, _NDARRAY, _TYPE
from cnnlib.testing.references import _NotApplicable, _Raises
from cnnlib.testing.spec import _Spec
from cnnlib.testing.tensors import _format, _format_number, _unravel


def _close(a, b, rtol, atol) -> bool:
    difference = a - b
    if difference < 0:
        difference = -difference
    limit = atol + rtol * (b if b >= 0 else -b)
    return difference <= limit  # False for NaN


def _same(got, expected, rtol, atol) -> bool:
    """Equal shape and values within tolerance (tensors), or equal numbers (ints, floats, tuples)."""
    if expected.__class__ is tuple and len(expected) == 2 and expected[0].__class__ is tuple \
            and expected[1].__class__ is tuple:
        if got.__class__ is not tuple or len(got) != 2 or got[0] != expected[0]:
            return False
        return all(_close(g, e, rtol, atol) for g, e in zip(got[1], expected[1]))
    if expected.__class__ is float:
        return got.__class__ is float and _close(got, expected, rtol, atol)
    return got == expected


def _value_report(got, expected, rtol, atol) -> tuple[str, str]:
    """The first difference, short (for the first line), and the details."""
    (shape, g), e = got, expected[1]
    bad = [i for i in range(len(e)) if not _close(g[i], e[i], rtol, atol)]
    first = bad[0]
    where = ", ".join(str(i) for i in _unravel(first, shape))
    largest = max((g[i] - e[i]) if g[i] >= e[i] else (e[i] - g[i]) for i in bad)
    short = f"[{where}] is {_format_number(g[first])}, expected {_format_number(e[first])}"
    lines = []
    if len(e) <= 36:
        lines += [f"  expected: {_format(list(e), shape)}", f"  got:      {_format(list(g), shape)}"]
    lines.append(f"  first difference at [{where}]: expected {_format_number(e[first])}, "
                 f"got {_format_number(g[first])} ({len(bad)} of {len(e)} values differ, "
                 f"largest difference {largest:.3g})")
    return short, "\n".join(lines)


def headline(label: str, difference: str, mistake: str | None = None) -> str:
    """The first line: what failed and how, with the mistake's short name when it fits."""
    if mistake:
        short = mistake.partition(": ")[0]
        for line in (f"{label}: {difference}: {short}", f"{label}: {short}"):
            if len(line) <= WIDTH:
                return line
    return f"{label}: {difference}"


def _is_tensor(value) -> bool:
    return value.__class__ is tuple and len(value) == 2 and value[0].__class__ is tuple


def _explain(spec: _Spec, name: str, call: str, got, expected, args: dict, part, only=None) -> str:
    """The failure message: what differs, the formula, and the mistake it matches, if any."""
    label = f"{name} {part}" if part is not None else name
    details = [f"  call: {call}"]
    if _is_tensor(expected) and (got[0] != expected[0] or only == "shape"):
        difference = f"shape {got[0]}, expected {expected[0]}"
        details.append(f"  expected shape {expected[0]}, got shape {got[0]}")
        if spec.shape_formula is not None:
            details.append(f"  shape: {spec.shape_formula(args)}")
    elif _is_tensor(expected):
        difference, report = _value_report(got, expected, spec.rtol, spec.atol)
        details.append(report)
    else:
        difference = f"returned {_format_value(got)}, expected {_format_value(expected)}"
        details.append(f"  expected {expected!r}, got {got!r}")
    if only != "shape":
        formula = spec.formula[part] if spec.formula.__class__ is dict else spec.formula
        details.append(f"  formula: {formula}")
    mistake = _matching_mistake(spec, args, got, part, expected)
    if mistake:
        what = "has exactly the shape" if only == "shape" else "is exactly what"
        details.append(f"  Your answer {what} you get with {mistake}.")
    return "\n".join([headline(label, difference, mistake), *details])


def _format_value(value) -> str:
    if value.__class__ is float:
        return _format_number(value) if value == int(value) else f"{value:.4g}"
    return repr(value)


def _matching_mistake(spec: _Spec, args: dict, got, part, reference=None) -> str | None:
    """The first known mistake whose answer (different from the right one) equals ``got``."""
    index = None if part is None else spec.outputs.index(part)
    mistakes = spec.mistakes(args) if index is None else spec.mistakes(args, index)
    for description, compute in mistakes:
        try:
            candidate = compute()
        except (_NotApplicable, _Raises, ValueError, IndexError, ZeroDivisionError):
            continue
        if reference is not None and _same(candidate, reference, spec.rtol, spec.atol):
            continue
        if _same(got, candidate, spec.rtol, spec.atol):
            return description
    return None


def _result(value, spec: _Spec, what: str):
    """The student's return value in the checker's terms (tensor, int, float or tuple)."""
    if spec.kind == "array":
        return _from_array(value, what)
    if spec.kind == "int":
        return _int_result(value, what)
    if spec.kind == "float":
        return _float_result(value, what)
    if value.__class__ is not tuple or len(value) != 2:
        got = "None" if value is None else _kind(value)
        raise GradingError(f"{what}: returned {got}, expected a tuple of two ints\n"
                           f"  {what} should return a tuple of two ints, got {value!r}")
    return tuple(_int_result(v, what) for v in value)


def _kind(value) -> str:
    """``a float (7.0)``, ``a list``, ``an array of shape (2, 2)``: what came back, in words."""
    kind = value.__class__
    if kind is _NDARRAY:
        return f"an array of shape {value.shape}"
    if kind in (bool, int, float) or kind.__module__ == "numpy":
        return f"a {kind.__name__} ({value!r})"
    article = "an" if kind.__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {kind.__name__}"


def _is_c_type(value, family) -> bool:
    kind = value.__class__
    return kind.__class__ is _TYPE and not kind.__flags__ & _HEAPTYPE and isinstance(value, family)


def _int_result(value, what: str) -> int:
    if value.__class__ is bool or not (value.__class__ is int or _is_c_type(value, np.integer)):
        if value is None:
            got = "None, expected an int (forgot to return it?)"
        elif value.__class__ is float or _is_c_type(value, np.floating):
            got = f"{float(value)!r}, a float instead of an int (use //)"
        elif value.__class__ is bool:
            got = f"{value!r}, a bool instead of an int"
        else:
            got = f"{_kind(value)}, expected an int"
        raise GradingError(f"{what}: returned {got}\n  {what} should return an int, got {value!r}")
    return int(value)


def _float_result(value, what: str) -> float:
    """A real number (a float, or an int when it is one: a count is a number, but maybe not the
    right one, which the comparison then says)."""
    if value.__class__ is bool or not (value.__class__ in (float, int) or _is_c_type(value, np.floating)
                                       or _is_c_type(value, np.integer)):
        if value is None:
            got = "None, expected a number (forgot to return it?)"
        elif value.__class__ is _NDARRAY:
            got = f"an array of shape {value.shape}, not a single number (use float(...))"
        else:
            got = f"{_kind(value)}, expected a number"
        raise GradingError(f"{what}: returned {got}\n  {what} should return a number, got {value!r}")
    return float(value)
