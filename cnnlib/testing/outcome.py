"""Judging one call's :class:`~cnnlib.testing.monitor.Outcome` against the reference."""

from contextlib import contextmanager

from cnnlib.testing.compare import _explain, _kind, _matching_mistake, _result, _same, headline
from cnnlib.testing.errors import GradingError
from cnnlib.testing.integrity import _NDARRAY
from cnnlib.testing.tensors import _flatten, _tensor


def judge(spec, name: str, call: str, outcome, reference, raises, bound: dict, expected=None, part=None,
          only=None) -> None:
    """Raise :class:`GradingError` unless the outcome is the reference (or the error it must raise)."""
    __tracebackhide__ = True
    error = outcome.error
    if isinstance(error, NotImplementedError):
        raise GradingError(f"{name} is not implemented yet\n"
                           "  replace `raise NotImplementedError()` with your code.")
    if raises is not None:
        _judge_raises(spec, name, call, outcome, raises, bound)
        return
    if error is not None:
        raise GradingError(f"{name}: raised {error.__class__.__name__}: {error}\n  call: {call}") from error
    value = outcome.value
    if spec.outputs is None:
        with _integer_hint(value, reference):
            _compare(spec, name, call, _result(value, spec, name), reference, bound, None, only, expected)
        return
    if value.__class__ not in (tuple, list) or len(value) != len(spec.outputs):
        outputs = ", ".join(spec.outputs)
        got = "None" if value is None else _kind(value)
        raise GradingError(f"{name}: returned {got}, expected a tuple ({outputs})\n"
                           f"  {name} should return a tuple ({outputs}), got {value.__class__.__name__}")
    for label in (spec.outputs if part is None else (part,)):
        index = spec.outputs.index(label)
        with _integer_hint(value[index], reference[index]):
            _compare(spec, name, call, _result(value[index], spec, f"{name} {label}"), reference[index],
                     bound, label, only, expected if part is not None else None)


@contextmanager
def _integer_hint(value, reference):
    """A failed comparison of an integer array with a reference that has fractions says why: the
    values were cut to whole numbers when stored (an output made with ``dtype=int``)."""
    __tracebackhide__ = True
    try:
        yield
    except GradingError as failure:
        values = reference[1] if reference.__class__ is tuple and len(reference) == 2 else ()
        fractional = values.__class__ is tuple and any(
            v != int(v) for v in values if v.__class__ is float and v == v and abs(v) < 1e300)
        if value.__class__ is not _NDARRAY or value.dtype.kind not in "iub" or not fractional:
            raise
        raise GradingError(f"{failure}\n  Your answer is an array of {value.dtype} (whole numbers): every "
                           "value was cut to a whole number when it was stored. Make the output a float "
                           "array (np.zeros(shape), not np.zeros(shape, dtype=int)).") from None


def _judge_raises(spec, name: str, call: str, outcome, raises, bound: dict) -> None:
    """The reference raises: the student's function must raise the same kind of error."""
    __tracebackhide__ = True
    error, wanted = outcome.error, raises.error.__name__
    if error is None:
        value = outcome.value
        try:
            got = _result(value, spec, name)
            shown, mistake = repr(got), _matching_mistake(spec, bound, got, None)
        except GradingError:  # not even the right type: still, 2.0 may be a known mistake's 2
            shown, mistake = repr(value) if value.__class__ in (int, float) else _kind(value), None
            if spec.kind == "int" and value.__class__ is float and value == int(value):
                mistake = _matching_mistake(spec, bound, int(value), None)
        lines = [f"{name}: {raises.short}, a {wanted} was expected",
                 f"  {call} returned {shown}; it should raise {wanted}: {raises.reason}."]
        if mistake:
            lines.append(f"  Your answer is exactly what you get with {mistake}.")
        raise GradingError("\n".join(lines))
    if not isinstance(error, raises.error):
        raise GradingError(f"{name}: raised {error.__class__.__name__}, expected {wanted} ({raises.short})\n"
                           f"  {call} should raise {wanted} ({raises.reason}), but raised "
                           f"{error.__class__.__name__}: {error}") from error


def _compare(spec, name, call, got, reference, bound, part, only, expected) -> None:
    __tracebackhide__ = True
    if expected is not None:
        given = _flatten(expected)
        given = _tensor(given[0], given[1]) if given[0] else given[1][0]
        if not _same(reference, given, 1e-9, 1e-9):
            raise RuntimeError(f"grader bug: the hand-computed answer {expected} differs from the reference")
    if only == "shape":
        if got[0] != reference[0]:
            raise GradingError(_explain(spec, name, call, got, reference, bound, part, only="shape"))
        return
    if not _same(got, reference, spec.rtol, spec.atol):
        raise GradingError(_explain(spec, name, call, got, reference, bound, part))


__all__ = ["judge", "headline"]
