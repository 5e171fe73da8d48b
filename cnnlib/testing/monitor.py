"""The call monitor: the one place the student's function is called (:func:`call_locally`).
"""

import sys
import threading
import warnings

from cnnlib.testing.arguments import ARRAY_KINDS, _from_array, _Objective, _thaw
from cnnlib.testing.errors import GradingError
from cnnlib.testing.errors import refuse as _refuse
from cnnlib.testing.integrity import (
    _FORBIDDEN_BUILTIN_IDS,
    _FUNCTION,
    _HERE,
    _INTROSPECTING_LIBRARIES,
    _LIBRARY_DIRS,
    _NDARRAY,
    _SCIPY_DIR,
    _TORCH_DIR,
    _perf_counter,
    _snapshot,
    _StringIO,
    _sys_getprofile,
    _sys_setprofile,
)
from cnnlib.testing.integrity import verify_environment as _verify_environment
from cnnlib.testing.spec import _Spec
from cnnlib.testing.specs import spec_of
from cnnlib.testing.tensors import _format_number, _unravel


class _Forbidden(BaseException):
    """Raised by the monitor inside the student's code; BaseException so a bare ``except
    Exception`` in the student's function does not swallow it."""


def _where(code) -> str:
    filename = code.co_filename
    for directory, label in ((_HERE, "cnnlib/"), (_TORCH_DIR, "torch/"), (_SCIPY_DIR, "scipy/")):
        if directory and filename.startswith(directory):
            return f"{code.co_name} (in {label}{filename[len(directory):]})"
    return code.co_name


def _c_owner(function) -> str:
    module = getattr(function, "__module__", None)
    if module.__class__ is not str:
        owner = getattr(function, "__self__", None)
        module = owner.__class__.__module__ if owner is not None else None
        if module.__class__ is not str:
            objclass = getattr(function, "__objclass__", None)
            module = getattr(objclass, "__module__", "")
    return module if module.__class__ is str else ""


class Outcome:
    """What one call of a student's function gave: its ``value`` or the ``error`` it raised, the
    ``seconds`` it took, the forbidden calls it made (``found``) and whether it switched the call
    monitor off (``monitor_lost``). A :class:`cnnlib.testing.Checker` compares it with the reference."""

    __slots__ = ("value", "error", "seconds", "found", "monitor_lost")

    def __init__(self, value=None, error: BaseException | None = None, seconds: float = 0.0):
        self.value, self.error, self.seconds = value, error, seconds
        self.found, self.monitor_lost = (), False


def _watched_call(name: str, spec: _Spec, function, args: tuple, kwargs: dict) -> Outcome:
    """Call the student's function under the call monitor; nothing it raises escapes."""
    __tracebackhide__ = True
    if function.__class__ is not _FUNCTION:
        raise GradingError(
            f"{name}: not a function of this notebook (got {function.__class__.__name__})\n"
            f"  {name} should be a function defined with def in this notebook")
    if function.__code__.co_filename.startswith(_LIBRARY_DIRS):
        raise GradingError(
            f"{name}: is the library function {function.__module__}.{function.__qualname__}\n"
            f"  {name} is the library function {function.__module__}.{function.__qualname__}, not a "
            "function of your own: write its body yourself.")
    forbidden, allowed = spec.forbidden, spec.allowed
    found = []
    trusted = frozenset(id(v) for v in args if v.__class__ is _Objective)
    objective_code = _Objective.__call__.__code__
    own_code = _watched_call.__code__

    def monitor(frame, event, arg):
        if event == "call":
            code = frame.f_code
            filename = code.co_filename
            if filename.startswith(forbidden) and not filename.startswith(allowed) and not (
                    code is objective_code and id(frame.f_locals.get("self")) in trusted):
                found.append(_where(code))
                raise _Forbidden(found[-1])
        elif event == "c_call" and frame.f_code is not own_code:
            introspection = id(arg) in _FORBIDDEN_BUILTIN_IDS and not frame.f_code.co_filename.startswith(
                _INTROSPECTING_LIBRARIES)
            if introspection or _c_owner(arg).startswith("torch"):
                found.append(f"{_c_owner(arg)}.{getattr(arg, '__name__', '?')}")
                raise _Forbidden(found[-1])

    outcome = Outcome()
    stderr = sys.stderr
    previous, previous_threads = _sys_getprofile(), threading.getprofile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # nbgrader zeroes a test cell that writes to stderr, and a progress bar should not cost
        # points; a C-level StringIO, so that writing runs no Python code of this module.
        sys.stderr = _StringIO()
        threading.setprofile(monitor)
        start = _perf_counter()
        _sys_setprofile(monitor)
        try:
            outcome.value = function(*args, **kwargs)
        except BaseException as error:  # the student's code may raise anything, even SystemExit
            outcome.error = error
        outcome.monitor_lost = _sys_getprofile() is not monitor
        _sys_setprofile(previous)
        outcome.seconds = _perf_counter() - start
        threading.setprofile(previous_threads)
        sys.stderr = stderr
    outcome.found = tuple(found)
    return outcome


def call_locally(name: str, function, frozen_args: tuple, frozen_kwargs: dict) -> Outcome:
    """Call the student's ``function`` here, for the check ``name``, on fresh copies of the frozen
    arguments: the environment verified before and after, forbidden calls refused, the inputs
    checked unchanged. Raises :class:`GradingError` when the call is refused."""
    __tracebackhide__ = True
    try:
        return _run(name, spec_of(name), function, frozen_args, frozen_kwargs)
    except GradingError as error:
        first = str(error).partition("\n")[0]
        if first.startswith("Grading refused") and name not in first:
            raise GradingError(f"{name}: {error}") from None
        raise


def _run(name: str, spec: _Spec, function, frozen_args: tuple, frozen_kwargs: dict) -> Outcome:
    """Verify the environment, call the function on fresh inputs, verify again."""
    __tracebackhide__ = True
    _verify_environment()
    snapshot = _snapshot()
    args = tuple(_thaw(v) for v in frozen_args)
    kwargs = {k: _thaw(v) for k, v in frozen_kwargs.items()}
    outcome = _watched_call(name, spec, function, args, kwargs)
    _verify_environment(snapshot)
    if outcome.found:
        raise GradingError(
            f"Grading refused: {name} called {outcome.found[0]}.\n  A graded function must compute its "
            "result itself: cnnlib's layers, torch and scipy.signal are there to check your work in a "
            "cell of your own, not to be called by the graded function.")
    if outcome.monitor_lost:
        raise _refuse(f"the grader's call monitor was switched off while {name} ran (sys.setprofile)")
    if outcome.error is None:
        _check_unchanged(name, spec, args, kwargs, frozen_args, frozen_kwargs)
    return outcome


def _check_unchanged(name, spec, args, kwargs, frozen_args, frozen_kwargs) -> None:
    """A graded function must leave its array arguments as it found them."""
    __tracebackhide__ = True
    names = [p for p, _ in spec.params]
    pairs = [*((names[i] if i < len(names) else str(i), args[i], frozen_args[i]) for i in range(len(args))),
             *((k, kwargs[k], v) for k, v in frozen_kwargs.items())]
    for label, value, (kind, before) in pairs:
        if kind not in ARRAY_KINDS:
            continue
        shape = tuple(value.shape) if value.__class__ is _NDARRAY else None
        if shape is not None and shape != before[0]:  # ``x.shape = ...``, ``x.resize(...)``: values may match
            raise GradingError(
                f"{name}: changed the shape of its argument {label} in place\n  {name} changed the shape "
                f"of its argument {label} in place (from {before[0]} to {shape}): use reshape, which "
                "returns a new view, instead of assigning to .shape.")
        now = _from_array(value, "an argument")
        if now != before:
            where = next(i for i in range(len(now[1])) if now[1][i] != before[1][i])
            position = ", ".join(str(i) for i in _unravel(where, now[0]))
            raise GradingError(
                f"{name}: changed its argument {label} in place\n  {name} changed its argument {label} "
                f"in place ({label}[{position}] was "
                f"{_format_number(before[1][where])}, is now {_format_number(now[1][where])}): "
                "work on a copy, or put every value back.")

