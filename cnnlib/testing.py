"""The graded notebooks' checks: expected against got, the formula, and the likely mistake.

Every test cell in ``solutions/`` loads a private copy of this file, never the one in
``sys.modules``, and calls one check on the student's function::

    from importlib.util import find_spec, module_from_spec, spec_from_file_location
    spec = spec_from_file_location("_grader", find_spec("cnnlib.testing").origin)
    grader = module_from_spec(spec); spec.loader.exec_module(grader)
    grader.check("conv2d", conv2d, grader.randn(2, 3, 7, 7, seed=1), ...)

``check`` works out the expected answer with plain Python loops over tuples (no NumPy
arithmetic, no cnnlib layer), calls the student's function on fresh copies of the inputs, and
raises ``GradingError`` when the answers differ. The message says what was expected and what
came back (the shape, or the first value that differs), the formula, and, when the answer is
exactly what a known mistake computes (a flipped kernel, a missing bias, padding on one side,
the wrong divisor...), that mistake by name: every mistake is computed, not guessed.

Honesty. The student's code runs in the same kernel as the tests, so each check also makes sure
that nothing the notebook did can turn a wrong answer into points:

- comparisons use the checker's own arithmetic on Python floats; NumPy's comparison functions
  (``np.allclose``, ``np.testing.*``) are never called, and are verified to still be NumPy's own
  (their code is compared with code compiled afresh from NumPy's source files): a notebook that
  replaced one gets no points from any check;
- the functions of ``cnnlib.testing`` in ``sys.modules`` must be the ones in this file (same
  code), the builtins this file uses must be Python's own, and this copy's own globals must be
  unchanged after the student's function ran;
- the student's function must be a plain function of the notebook, and runs under
  ``sys.setprofile``: calling cnnlib's layers, torch, ``scipy.signal`` / ``scipy.ndimage``, this
  module, or the introspection a cheat needs (``sys._getframe``, ``sys.setprofile``, ``gc``
  referrers) fails the check with the name of what was called; so does switching the monitor off;
- outputs are read through NumPy's own (static) ``ndarray`` type, so an array subclass cannot
  lie about its values; warnings and stderr of the student's code are kept out of the cell.

Where the comparison happens. In Jupyter, a test cell runs all of this in the student's kernel,
which is fine for a student checking their own work. ``make grade`` does not trust the kernel:
it runs each test cell in the grading process (``grading.remote``), with this module's ``_run``
(the one place the student's function is called) replaced by a request to the kernel. The
kernel runs only ``_run`` itself (the call monitor, fresh inputs, unchanged inputs) and sends
back data; the reference answer, the comparison, the diagnosis, the timing and, for the case
study, the model's forward pass and accuracy are computed outside the kernel on that data. An
input transformer, a replaced ``np.testing``, a result object equal to everything or a patched
``cnnlib.nn`` layer in the kernel therefore earns nothing there.

Known limits. The call monitor runs in the kernel, so a notebook that rewrites the grader's
requests (or works in a subprocess, or through C code without a Python frame) can answer them
with a library's result: the grade then rewards a correct answer that the student's own function
did not compute. The speed check's clock includes the trip to the kernel and back (tens of
milliseconds). A model trained in the kernel is judged by its weights on the test digits, but
nothing shows which data it was trained on. A student who copies a reference implementation's
source into the notebook is not detected either, nor one who computes the visible tests'
answers beforehand and looks them up (the hidden tests, whose inputs students never see, are the
answer to that). Inside the kernel (a student running the notebook themselves), the checks above
cannot see IPython input transformers, edited files on disk, or a swapped ``importlib``.
Introspection called by the standard library's ``collections`` and ``typing``, by NumPy or by
``scipy._lib`` (namedtuple and typing look up their caller) is let through. The checks of
NumPy's functions expect NumPy >= 1.25, where ``np.allclose`` and friends are
``_ArrayFunctionDispatcher`` objects.
"""

# ---------------------------------------------------------------------------- genuine builtins
# Checked before anything else runs: every later line relies on them. Only attribute access and
# ``is`` are used here: those cannot be replaced from Python.

_TYPE = ().__class__.__class__
_FUNCTION = (lambda: None).__class__
_BUILTIN = [].append.__class__
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: set on classes made by Python code, never on C types
_B = __builtins__ if __builtins__.__class__ is {}.__class__ else __builtins__.__dict__
_MODULE = _B["__import__"]("sys").__class__

_BUILTIN_NAMES = (
    "AssertionError", "BaseException", "Exception", "IndexError", "KeyError", "NotImplementedError",
    "RuntimeError", "SyntaxError", "TypeError", "ValueError", "ZeroDivisionError", "__import__", "abs",
    "all", "any", "bool", "compile", "dict", "divmod", "enumerate", "float", "frozenset", "getattr",
    "globals", "id", "int", "isinstance", "len", "list", "max", "min", "next", "object", "open", "range",
    "repr", "reversed", "round", "sorted", "str", "sum", "super", "tuple", "zip",
)
_BUILTIN_HOMES = {"open": ("io", "_io")}  # io.open, whose module calls itself io


def _tampered_builtin() -> str | None:
    """The first builtin this module uses that is no longer Python's own, or None."""
    if _MODULE.__class__ is not _TYPE or _MODULE.__flags__ & _HEAPTYPE or _MODULE.__name__ != "module":
        return "__import__"
    for name in _BUILTIN_NAMES:
        value = _B.get(name)
        kind = value.__class__
        if kind is _BUILTIN:
            home = value.__self__
            if value.__name__ == name and home.__class__ is _MODULE:
                expected = _BUILTIN_HOMES.get(name)
                if home.__dict__ is _B if expected is None else home.__name__ in expected:
                    continue
        elif kind is _TYPE:
            if not value.__flags__ & _HEAPTYPE and value.__module__ == "builtins" and value.__name__ == name:
                continue
        return name
    return None


class GradingError(AssertionError):
    """A check failed: the message says what was expected, what came back, and why."""


def _refuse(what: str) -> GradingError:
    return GradingError(
        f"Grading refused: {what}. The tests give no points while the notebook changes the tools "
        "they rely on; restart the kernel, remove that code, and run the notebook again."
    )


if _tampered_builtin() is not None:
    raise _refuse(f"the builtin {_tampered_builtin()!r} has been replaced in this notebook")

import gc  # noqa: E402
import importlib.machinery  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

# ---------------------------------------------------------------------------- where things live

_SEP = "\\" if "\\" in __file__ and "/" not in __file__ else "/"
_HERE = __file__.rpartition(_SEP)[0] + _SEP  # cnnlib/


def _package_dir(name: str) -> str | None:
    spec = importlib.machinery.PathFinder.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return spec.submodule_search_locations[0] + _SEP


_NUMPY_DIR = _package_dir("numpy") or np.__file__.rpartition(_SEP)[0] + _SEP
_TORCH_DIR = _package_dir("torch")
_SCIPY_DIR = _package_dir("scipy")
_LIBRARY_DIRS = tuple(d for d in (_HERE, _NUMPY_DIR, _TORCH_DIR, _SCIPY_DIR) if d)
# What a graded function may not call: the reference layers, and anything else that does the job.
_FORBIDDEN = tuple(
    d for d in (_HERE, _TORCH_DIR, _SCIPY_DIR and _SCIPY_DIR + "signal" + _SEP,
                _SCIPY_DIR and _SCIPY_DIR + "ndimage" + _SEP) if d
)
# The case study builds and trains with cnnlib.nn: only the ready-made model and loop are off limits.
_CASE_STUDY_ALLOWED = tuple(
    _HERE + part for part in ("nn" + _SEP, "functional" + _SEP, "optim.py", "_checks.py", "data.py",
                              "shapes.py", "summary.py", "__init__.py")
)
_FORBIDDEN_BUILTINS = (
    sys._getframe, sys.setprofile, sys.getprofile, sys.settrace, sys.gettrace, sys._current_frames,
    gc.get_referrers, gc.get_referents, gc.get_objects,
)
_FORBIDDEN_BUILTIN_IDS = frozenset(id(f) for f in _FORBIDDEN_BUILTINS)
# ... unless a library calls them on its own business (namedtuple and typing look up their caller).
_STDLIB = threading.__file__.rpartition(_SEP)[0] + _SEP
_INTROSPECTING_LIBRARIES = tuple(
    d for d in (_STDLIB + "collections" + _SEP, _STDLIB + "typing.py", _NUMPY_DIR,
                _SCIPY_DIR and _SCIPY_DIR + "_lib" + _SEP) if d
)

_NDARRAY = np.ndarray
if (_NDARRAY.__class__ is not _TYPE or _NDARRAY.__flags__ & _HEAPTYPE or _NDARRAY.__name__ != "ndarray"
        or np.array.__class__ is not _BUILTIN or np.array.__name__ != "array"):
    raise _refuse("numpy.ndarray or numpy.array has been replaced in this notebook")
_np_array = np.array
_StringIO = io.StringIO
_perf_counter = time.perf_counter
_sys_setprofile, _sys_getprofile = sys.setprofile, sys.getprofile
_CAPTURED = ((_perf_counter, "perf_counter", "time"), (_sys_setprofile, "setprofile", "sys"),
             (_sys_getprofile, "getprofile", "sys"))
for _function, _name, _home in _CAPTURED:
    if (_function.__class__ is not _BUILTIN or _function.__name__ != _name
            or _function.__self__.__class__ is not _MODULE or _function.__self__.__name__ != _home):
        raise _refuse(f"{_home}.{_name} has been replaced in this notebook")


# ---------------------------------------------------------------------------- genuine functions

_FRESH_CODE: dict = {}


def _find_code(code, name: str, line: int):
    """The code object named ``name`` defined at ``line`` among ``code``'s constants, or None."""
    stack = [code]
    while stack:
        current = stack.pop()
        if current.co_name == name and current.co_firstlineno == line:
            return current
        stack.extend(c for c in current.co_consts if c.__class__ is code.__class__)
    return None


def _module_imports(lines: list, stop: int) -> list:
    """The file's top-level import lines before ``stop``, other lines blanked: the compiler
    treats ``module.function(...)`` differently when ``module`` was imported at the top."""
    kept, open_parens = [], 0
    for current in lines[:stop]:
        if open_parens or current.startswith(("import ", "from ")):
            kept.append(current)
            open_parens += current.count("(") - current.count(")")
        else:
            kept.append("\n")
    return kept


_SOURCES: dict = {}
_COMPILED: dict = {}


def _source(filename: str) -> str:
    if filename not in _SOURCES:
        with open(filename, encoding="utf-8") as file:
            _SOURCES[filename] = file.read()
    return _SOURCES[filename]


def _fresh_code(filename: str, name: str, line: int, whole_file: bool = False):
    """Compile the definition of ``name`` at ``line`` of ``filename`` afresh from the file.

    Compiles only that definition (and the file's imports) unless ``whole_file``."""
    key = (filename, name, line, whole_file)
    if key not in _FRESH_CODE:
        text = _source(filename)
        found = None
        if whole_file:
            if filename not in _COMPILED:
                _COMPILED[filename] = compile(text, filename, "exec")
            found = _find_code(_COMPILED[filename], name, line)
        else:
            lines = text.splitlines(True)
            block = [lines[line - 1]]
            seen_def = lines[line - 1].lstrip().startswith(("def ", "async def ", "class "))
            for current in lines[line:]:
                if seen_def and current[:1] not in ("", " ", "\t", "\n", "\r", "#", ")", "]"):
                    break
                seen_def = seen_def or current.startswith(("def ", "async def ", "class "))
                block.append(current)
            try:
                source = "".join(_module_imports(lines, line - 1) + block)
                found = _find_code(compile(source, filename, "exec"), name, line)
            except SyntaxError:
                pass
        _FRESH_CODE[key] = found
    return _FRESH_CODE[key]


def _is_genuine(function, name: str, directory: str) -> bool:
    """Is ``function`` the function ``name`` as written in a file under ``directory``?"""
    kind = function.__class__
    if kind is not _FUNCTION:
        if kind.__name__ != "_ArrayFunctionDispatcher" or kind.__flags__ & _HEAPTYPE:
            return False
        function = function._implementation
        if function.__class__ is not _FUNCTION:
            return False
    code = function.__code__
    if code.co_name != name or not code.co_filename.startswith(directory):
        return False
    return _same_as_source(code)


def _same_as_source(code, quick: bool = True) -> bool:
    """Does ``code`` equal the code compiled afresh from its own file (definition, then file)?"""
    for whole_file in ((False, True) if quick else (True,)):
        fresh = _fresh_code(code.co_filename, code.co_name, code.co_firstlineno, whole_file)
        if fresh is not None and code == fresh:
            return True
    return False


_NUMPY_COMPARISONS = (
    ("np", "allclose"), ("np", "isclose"), ("np", "array_equal"), ("np", "array_equiv"),
    ("np.testing", "assert_allclose"), ("np.testing", "assert_array_equal"),
    ("np.testing", "assert_array_almost_equal"), ("np.testing", "assert_almost_equal"),
    ("np.testing", "assert_equal"), ("np.testing", "assert_approx_equal"),
    ("np.testing", "assert_array_less"), ("np.testing", "assert_array_max_ulp"),
    ("np.testing", "assert_array_almost_equal_nulp"),
)
_OWN_FUNCTIONS: tuple = ()  # filled in at the end of the file


def _snapshot() -> tuple:
    """Identities of this copy's globals (and their functions' code), to see them replaced."""
    items = []
    for key, value in globals().items():
        if value.__class__ is _FUNCTION:
            items.append((key, id(value), id(value.__code__), id(value.__defaults__)))
        else:
            items.append((key, id(value)))
    return tuple(items)


def _verify_environment(snapshot: tuple | None = None) -> None:
    """Raise ``GradingError`` if the notebook replaced anything the checks rely on."""
    __tracebackhide__ = True
    bad = _tampered_builtin()
    if bad is not None:
        raise _refuse(f"the builtin {bad!r} has been replaced")
    if snapshot is not None and _snapshot() != snapshot:
        raise _refuse("the grader's own functions were changed while the graded function ran")
    modules = sys.modules
    numpy = modules.get("numpy")
    if numpy is not np or numpy.__class__ is not _MODULE:
        raise _refuse("the module numpy in sys.modules has been replaced")
    testing = np.__dict__.get("testing")  # numpy imports numpy.testing on first use
    if testing is not None and (testing is not modules.get("numpy.testing")
                                or testing.__class__ is not _MODULE):
        raise _refuse("np.testing has been replaced")
    for owner, name in _NUMPY_COMPARISONS:
        namespace = np if owner == "np" else testing
        if namespace is None:
            continue
        function = namespace.__dict__.get(name)
        if function is not None and not _is_genuine(function, name, _NUMPY_DIR):
            raise _refuse(f"{owner}.{name} is not NumPy's own function any more")
    helper = modules.get("cnnlib.testing")
    if helper is not None:
        if helper.__class__ is not _MODULE:
            raise _refuse("the module cnnlib.testing in sys.modules has been replaced")
        theirs = helper.__dict__
        for name, ours in _OWN_FUNCTIONS:
            function = theirs.get(name)
            if function.__class__ is not _FUNCTION or function.__code__ != ours.__code__:
                raise _refuse(f"cnnlib.testing.{name} has been replaced")
    if sys.setprofile is not _sys_setprofile or sys.getprofile is not _sys_getprofile:
        raise _refuse("sys.setprofile or sys.getprofile has been replaced")
    if (threading.__class__ is not _MODULE
            or not _is_genuine(threading.__dict__.get("setprofile"), "setprofile", threading.__file__)):
        raise _refuse("threading.setprofile has been replaced")


# ---------------------------------------------------------------------------- tensors as tuples
# A tensor is ``(shape, values)``: two tuples, values flat in row-major order. Immutable, so the
# student's code cannot change the inputs the expected answer is computed from.


def _size(shape) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def _tensor(shape, values) -> tuple:
    return (tuple(shape), tuple(values))


def _flatten(literal) -> tuple:
    """A nested list of numbers as ``(shape, flat list)``."""
    if isinstance(literal, (list, tuple)):
        parts = [_flatten(item) for item in literal]
        shapes = {part[0] for part in parts}
        if len(shapes) > 1:
            raise ValueError(f"ragged nested list: rows of shapes {sorted(shapes)}")
        inner = parts[0][0] if parts else ()
        return ((len(literal), *inner), [v for part in parts for v in part[1]])
    return ((), [float(literal)])


def _unravel(index: int, shape) -> list:
    position = []
    for n in reversed(shape):
        index, rest = divmod(index, n)
        position.append(rest)
    return position[::-1]


def _strides(shape) -> list:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def _rearrange(t, shape, source_index) -> tuple:
    """A new tensor of ``shape`` whose value at each position comes from ``source_index``."""
    values = t[1]
    return _tensor(shape, [values[source_index(_unravel(k, shape))] for k in range(_size(shape))])


def _permute(t, perm) -> tuple:
    shape = tuple(t[0][p] for p in perm)
    strides = _strides(t[0])
    return _rearrange(t, shape, lambda pos: sum(pos[i] * strides[perm[i]] for i in range(len(perm))))


def _flip(t, axes) -> tuple:
    shape, strides = t[0], _strides(t[0])
    return _rearrange(t, shape, lambda pos: sum(
        ((shape[a] - 1 - pos[a]) if a in axes else pos[a]) * strides[a] for a in range(len(shape))))


def _reshape(t, shape) -> tuple:
    return _tensor(shape, t[1])


def _scale(t, factor) -> tuple:
    return _tensor(t[0], [v * factor for v in t[1]])


def _batch_item(t, n) -> tuple:
    step = _size(t[0][1:])
    return _tensor((1, *t[0][1:]), t[1][n * step:(n + 1) * step])


def _crop(t, top, bottom, left, right) -> tuple:
    *lead, h, w = t[0]
    shape = (*lead, h - top - bottom, w - left - right)
    return _rearrange(t, shape, lambda pos: sum(
        p * s for p, s in zip(pos[:-2] + [pos[-2] + top, pos[-1] + left], _strides(t[0]))))


# ---------------------------------------------------------------------------- reference loops


class _Raises(Exception):
    """The reference raises: the student's function must raise ``error`` too."""

    def __init__(self, error, reason: str):
        super().__init__(reason)
        self.error, self.reason = error, reason


class _NotApplicable(Exception):
    """A mistake that does not apply to these inputs (e.g. swapping equal-sized axes)."""


def _out_size(n: int, k: int, s: int, pad_total: int) -> int:
    size = (n + pad_total - k) // s + 1
    if size < 1:
        raise _NotApplicable()
    return size


def _conv(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """out[n, o, i, j] = b[o] + sum_{c, m, q} w[o, c, m, q] x_pad[n, c, i S + m D, j S + q D]."""
    (batch, channels, h, wd), xs = x
    (outs, channels_w, kh, kw), ws = w
    if channels_w != channels:
        raise _NotApplicable()
    top, bottom, left, right = pads
    (sh, sw), (dh, dw) = stride, dilation
    ho = _out_size(h, dh * (kh - 1) + 1, sh, top + bottom)
    wo = _out_size(wd, dw * (kw - 1) + 1, sw, left + right)
    out = []
    for n in range(batch):
        for o in range(outs):
            bias = b[1][o] if b is not None else 0.0
            for i in range(ho):
                for j in range(wo):
                    total = 0.0
                    for c in range(channels):
                        for m in range(kh):
                            r = i * sh + m * dh - top
                            if 0 <= r < h:
                                x_row = ((n * channels + c) * h + r) * wd
                                w_row = ((o * channels + c) * kh + m) * kw
                                for q in range(kw):
                                    col = j * sw + q * dw - left
                                    if 0 <= col < wd:
                                        total += xs[x_row + col] * ws[w_row + q]
                    out.append(total + bias)
    return _tensor((batch, outs, ho, wo), out)


def _conv_backward(g, x, w, stride=(1, 1), pads=(0, 0, 0, 0)):
    """Gradients of ``_conv`` by scattering every output gradient back along its window."""
    (batch, channels, h, wd), xs = x
    (outs, _, kh, kw), ws = w
    (_, _, ho, wo), gs = g
    top, _, left, _ = pads
    sh, sw = stride
    gx, gw, gb = [0.0] * len(xs), [0.0] * len(ws), [0.0] * outs
    for n in range(batch):
        for o in range(outs):
            for i in range(ho):
                for j in range(wo):
                    v = gs[((n * outs + o) * ho + i) * wo + j]
                    gb[o] += v
                    for c in range(channels):
                        for m in range(kh):
                            r = i * sh + m - top
                            if 0 <= r < h:
                                for q in range(kw):
                                    col = j * sw + q - left
                                    if 0 <= col < wd:
                                        xi = ((n * channels + c) * h + r) * wd + col
                                        wi = ((o * channels + c) * kh + m) * kw + q
                                        gx[xi] += v * ws[wi]
                                        gw[wi] += v * xs[xi]
    return _tensor(x[0], gx), _tensor(w[0], gw), _tensor((outs,), gb)


def _conv_transpose(x, w, b, stride=(1, 1), padding=(0, 0)):
    """out[n, o, i S + m - P, j S + q - P] += x[n, c, i, j] w[c, o, m, q] (the scatter)."""
    (batch, channels, h, wd), xs = x
    (channels_w, outs, kh, kw), ws = w
    if channels_w != channels:
        raise _NotApplicable()
    (sh, sw), (ph, pw) = stride, padding
    ho, wo = (h - 1) * sh - 2 * ph + kh, (wd - 1) * sw - 2 * pw + kw
    if ho < 1 or wo < 1:
        raise _NotApplicable()
    out = [0.0] * (batch * outs * ho * wo)
    for n in range(batch):
        for c in range(channels):
            for i in range(h):
                for j in range(wd):
                    v = xs[((n * channels + c) * h + i) * wd + j]
                    for o in range(outs):
                        for m in range(kh):
                            r = i * sh + m - ph
                            if 0 <= r < ho:
                                for q in range(kw):
                                    col = j * sw + q - pw
                                    if 0 <= col < wo:
                                        out[((n * outs + o) * ho + r) * wo + col] += (
                                            v * ws[((c * outs + o) * kh + m) * kw + q])
    if b is not None:
        for k in range(len(out)):
            out[k] += b[1][(k // (ho * wo)) % outs]
    return _tensor((batch, outs, ho, wo), out)


def _windows(x, kernel, stride):
    """Each pooling window's values, row by row: yields (output index, [(input index, value)])."""
    (batch, channels, h, w), xs = x
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = _out_size(h, kh, sh, 0), _out_size(w, kw, sw, 0)
    for nc in range(batch * channels):
        for i in range(ho):
            for j in range(wo):
                cells = []
                for m in range(kh):
                    for q in range(kw):
                        index = (nc * h + i * sh + m) * w + j * sw + q
                        cells.append((index, xs[index]))
                yield (nc * ho + i) * wo + j, cells
    return ho, wo


def _pool_shape(x, kernel, stride):
    (batch, channels, h, w) = x[0]
    return (batch, channels, _out_size(h, kernel[0], stride[0], 0), _out_size(w, kernel[1], stride[1], 0))


def _pool(x, kernel, stride, reduce):
    return _tensor(_pool_shape(x, kernel, stride),
                   [reduce([v for _, v in cells]) for _, cells in _windows(x, kernel, stride)])


def _mean(values) -> float:
    return sum(values) / len(values)


def _pool_backward(g, x, kernel, stride, share):
    """Add ``share(cells, gradient)`` (a list of (input index, amount)) into grad_x per window."""
    grad = [0.0] * len(x[1])
    for out_index, cells in _windows(x, kernel, stride):
        for index, amount in share(cells, g[1][out_index]):
            grad[index] += amount
    return _tensor(x[0], grad)


def _to_max(cells, value):
    best = max(v for _, v in cells)
    return [(next(i for i, v in cells if v == best), value)]


def _im2col(x, kernel, stride, padding):
    """cols[n, (c, m, q), (i, j)] = x_pad[n, c, i S + m, j S + q]."""
    (batch, channels, h, w), xs = x
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = _out_size(h, kh, sh, 2 * ph), _out_size(w, kw, sw, 2 * pw)
    out = []
    for n in range(batch):
        for c in range(channels):
            for m in range(kh):
                for q in range(kw):
                    for i in range(ho):
                        for j in range(wo):
                            r, col = i * sh + m - ph, j * sw + q - pw
                            inside = 0 <= r < h and 0 <= col < w
                            out.append(xs[((n * channels + c) * h + r) * w + col] if inside else 0.0)
    return _tensor((batch, channels * kh * kw, ho * wo), out)


# ---------------------------------------------------------------------------- the specs
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


def _corr2d(x, k, flip=False):
    if flip:
        k = _flip(k, (0, 1))
    out = _conv(_reshape(x, (1, 1, *x[0])), _reshape(k, (1, 1, *k[0])), None)
    return _reshape(out, out[0][2:])


def _conv_output_size(n, f, stride=1, padding=0):
    span = n + 2 * padding - f
    formula = f"({n} + 2*{padding} - {f})/{stride} + 1 = {span / stride + 1:.4g}"
    if span < 0:
        raise _Raises(ValueError, f"{formula} < 1: the kernel is larger than the padded input")
    if span % stride:
        raise _Raises(ValueError, f"{formula} is not a whole number: stride {stride} does not fit")
    return span // stride + 1


def _corr2d_mistakes(a):
    x, k = a["x"], a["k"]
    yield "a flipped kernel: that is a true convolution; corr2d slides k over x as it is", \
        lambda: _corr2d(x, k, flip=True)
    yield "the kernel transposed (k.T): k[m, n] multiplies x[i + m, j + n], rows with rows", \
        lambda: _corr2d(x, _permute(k, (1, 0)))
    yield "one row and column too few: the kernel fits H - K_h + 1 times along H, not H - K_h", \
        lambda: _crop(_corr2d(x, k), 0, 1, 0, 1)


def _convolve2d_mistakes(a):
    x, k = a["x"], a["k"]
    yield "no flip: that is cross-correlation (corr2d); a true convolution flips k first", \
        lambda: _corr2d(x, k)
    yield "the kernel flipped upside down only (k[::-1]): flip both axes, k[::-1, ::-1]", \
        lambda: _corr2d(x, _flip(k, (0,)))
    yield "the kernel flipped left to right only (k[:, ::-1]): flip both axes, k[::-1, ::-1]", \
        lambda: _corr2d(x, _flip(k, (1,)))
    yield "the kernel transposed (k.T) instead of flipped (rotated by 180 degrees, k[::-1, ::-1])", \
        lambda: _corr2d(x, _permute(k, (1, 0)))


def _conv_output_size_mistakes(a):
    n, f, s, p = a["n"], a["f"], a["stride"], a["padding"]
    yield "rounding down a stride that does not fit (floor, //): the lectures' rule raises ValueError " \
          "when (N + 2P - F) is not a multiple of S", lambda: (n + 2 * p - f) // s + 1
    yield "the formula without the + 1: (N + 2P - F)/S + 1 counts the first position too", \
        lambda: (n + 2 * p - f) // s
    if p:
        yield "padding added on one side only: (N + 2P - F)/S + 1 pads both sides", \
            lambda: (n + p - f) // s + 1
    yield "rounding up: a window may not hang over the edge", lambda: -((f - n - 2 * p) // s) + 1
    if s > 1:
        yield "the stride ignored: divide N + 2P - F by S", lambda: n + 2 * p - f + 1


def _pad2d(x, p_top, p_bottom, p_left, p_right):
    *lead, h, w = x[0]
    shape = (*lead, h + p_top + p_bottom, w + p_left + p_right)
    strides = _strides(x[0])
    values = x[1]

    def value(pos):
        r, c = pos[-2] - p_top, pos[-1] - p_left
        if 0 <= r < h and 0 <= c < w:
            return values[sum(q * s for q, s in zip(pos[:-2] + [r, c], strides))]
        return 0.0
    return _tensor(shape, [value(_unravel(k, shape)) for k in range(_size(shape))])


def _pad2d_mistakes(a):
    x, p = a["x"], a["padding"]
    yield "padding on one side only (top and left): P zeros go on every side", \
        lambda: _pad2d(x, p, 0, p, 0)
    yield "padding on one side only (bottom and right): P zeros go on every side", \
        lambda: _pad2d(x, 0, p, 0, p)
    yield "all the padding on one side (2P at the bottom and right): P go on every side", \
        lambda: _pad2d(x, 0, 2 * p, 0, 2 * p)
    yield "only the rows padded (H): pad W as well", lambda: _pad2d(x, p, p, 0, 0)
    yield "only the columns padded (W): pad H as well", lambda: _pad2d(x, 0, 0, p, p)


def _conv2d_ref(a, **changes):
    v = {**a, **changes}
    s, p = _pair(v["stride"]), _pair(v["padding"])
    pads = v.get("pads") or (p[0], p[0], p[1], p[1])
    return _conv(v["x"], v["weight"], v["bias"], s, pads)


def _conv2d_mistakes(a):
    x, w, b = a["x"], a["weight"], a["bias"]
    p = _pair(a["padding"])
    yield "a flipped kernel: conv layers compute cross-correlation, the kernel is not flipped", \
        lambda: _conv2d_ref(a, weight=_flip(w, (2, 3)))
    if b is not None:
        yield "a missing bias: add bias[o] to every value of output channel o", \
            lambda: _conv2d_ref(a, bias=None)
        yield "the bias added once per input channel (C_in times): add it once per output value", \
            lambda: _conv2d_ref(a, bias=_scale(b, x[0][1]))
    if p != (0, 0):
        yield "padding on one side only (top and left): P zeros go on every side", \
            lambda: _conv2d_ref(a, pads=(p[0], 0, p[1], 0))
        yield "padding on one side only (bottom and right): P zeros go on every side", \
            lambda: _conv2d_ref(a, pads=(0, p[0], 0, p[1]))
        yield "all the padding on one side (2P at the bottom and right): P go on every side", \
            lambda: _conv2d_ref(a, pads=(0, 2 * p[0], 0, 2 * p[1]))
        yield "the padding ignored: zero-pad x by P on every side first", \
            lambda: _conv2d_ref(a, padding=0)
    if _pair(a["stride"]) != (1, 1):
        yield "the stride ignored: the window moves S pixels at a time", \
            lambda: _conv2d_ref(a, stride=1)
    if w[0][0] == w[0][1]:
        yield "a transposed weight: weight[o, c] connects input channel c to output channel o " \
              "(weight is (C_out, C_in, K_h, K_w))", lambda: _conv2d_ref(a, weight=_permute(w, (1, 0, 2, 3)))
    if w[0][2] == w[0][3]:
        yield "each kernel transposed (weight[o, c].T): weight[o, c, m, n] multiplies x_pad[n, c, " \
              "i S + m, j S + n]", lambda: _conv2d_ref(a, weight=_permute(w, (0, 1, 3, 2)))


_CONV2D_FORMULA = ("out[n, o, i, j] = bias[o] + sum over c, m, q of "
                   "weight[o, c, m, q] * x_pad[n, c, i*S + m, j*S + q]")


def _conv_params_mistakes(a):
    c_in, c_out, k = a["in_channels"], a["out_channels"], a["kernel_size"]
    yield "the biases forgotten: each of the C_out filters has one bias", lambda: c_out * c_in * k * k
    yield "the input channels forgotten: each filter spans all C_in channels (C_in x K x K weights)", \
        lambda: c_out * (k * k + 1)
    yield "one bias per input channel: there is one bias per filter (output channel)", \
        lambda: c_out * c_in * k * k + c_in


def _pool_stride(a):
    kernel = _pair(a["kernel_size"])
    return kernel, kernel if a["stride"] is None else _pair(a["stride"])


def _max_pool_mistakes(a):
    x = a["x"]
    kernel, stride = _pool_stride(a)
    if stride != (1, 1):
        yield "the stride ignored (or a default stride of 1): stride=None means stride = kernel_size", \
            lambda: _pool(x, kernel, (1, 1), max)
    yield "the maximum started at 0: a window of negative values has a negative maximum " \
          "(start from the window's first value, or -inf)", \
        lambda: _pool(x, kernel, stride, lambda v: max(0.0, *v))
    yield "the average instead of the maximum", lambda: _pool(x, kernel, stride, _mean)
    yield "the minimum instead of the maximum", lambda: _pool(x, kernel, stride, min)


def _avg_pool_mistakes(a):
    x = a["x"]
    kernel, stride = _pool_stride(a)
    k = kernel[0] * kernel[1]
    if stride != (1, 1):
        yield "the stride ignored (or a default stride of 1): stride=None means stride = kernel_size", \
            lambda: _pool(x, kernel, (1, 1), _mean)
    yield f"the average's divisor: divide each window's sum by K_h*K_w = {k}, not by K = {kernel[0]}", \
        lambda: _pool(x, kernel, stride, lambda v: sum(v) / kernel[0])
    yield f"the average's divisor: the sum is not divided by the window's K_h*K_w = {k} values", \
        lambda: _pool(x, kernel, stride, sum)
    yield f"the average's divisor: divide by K_h*K_w = {k}, not by K_h*K_w - 1", \
        lambda: _pool(x, kernel, stride, lambda v: sum(v) / (len(v) - 1))
    yield "the maximum instead of the average", lambda: _pool(x, kernel, stride, max)


def _backward_ref(a, **changes):
    v = {**a, **changes}
    p = _pair(v["padding"])
    return _conv_backward(v["grad_out"], v["x"], v["weight"], _pair(v["stride"]), (p[0], p[0], p[1], p[1]))


def _per_image(a, part):
    return [_backward_ref({**a, "grad_out": _batch_item(a["grad_out"], n), "x": _batch_item(a["x"], n)})[part]
            for n in range(a["x"][0][0])]


def _conv2d_backward_mistakes(a, part):
    w, batch = a["weight"], a["x"][0][0]
    p = _pair(a["padding"])
    if part == 0:
        yield "the kernel not flipped: dL/dx is the full correlation of dL/dout with the FLIPPED " \
              "kernel (or scatter each dL/dout value times the kernel back onto its window)", \
            lambda: _backward_ref(a, weight=_flip(w, (2, 3)))[0]
        if p != (0, 0):
            yield "the gradient of the padded input: crop P rows and columns from every side", \
                lambda: _pad2d(_backward_ref(a)[0], p[0], p[0], p[1], p[1])
        if w[0][0] == w[0][1]:
            yield "a transposed weight: weight[o, c] carries dL/dout[o] back to x[c]", \
                lambda: _backward_ref(a, weight=_permute(w, (1, 0, 2, 3)))[0]
    elif part == 1:
        if batch > 1:
            yield "dL/dweight not summed over the batch (only the first image)", lambda: _per_image(a, 1)[0]
            yield "dL/dweight not summed over the batch (only the last image)", lambda: _per_image(a, 1)[-1]
            yield "dL/dweight averaged over the batch: the loss's gradient sums every image's part", \
                lambda: _scale(_backward_ref(a)[1], 1 / batch)
        yield "a flipped dL/dweight: it is the correlation of x with dL/dout, not flipped", \
            lambda: _flip(_backward_ref(a)[1], (2, 3))
    else:
        if batch > 1:
            yield "a bias gradient not summed over the batch (one row per image): sum over N too", \
                lambda: _tensor((batch, w[0][0]), [v for g in _per_image(a, 2) for v in g[1]])
            yield "a bias gradient not summed over the batch (only the first image)", \
                lambda: _per_image(a, 2)[0]
            yield "a bias gradient averaged over the batch: sum over N, H_out and W_out", \
                lambda: _scale(_backward_ref(a)[2], 1 / batch)
        yield "a bias gradient averaged over positions: dL/dbias[o] sums dL/dout[:, o] everywhere", \
            lambda: _scale(_backward_ref(a)[2], 1 / _size(a["grad_out"][0][2:]))


def _max_backward_mistakes(a):
    g, x = a["grad_out"], a["x"]
    kernel, stride = _pool_stride(a)
    yield "the gradient sent to the whole window: only the window's maximum gets dL/dout, the " \
          "other positions get 0", \
        lambda: _pool_backward(g, x, kernel, stride, lambda c, v: [(i, v) for i, _ in c])
    yield "the gradient spread evenly over the window: that is average pooling's gradient", \
        lambda: _pool_backward(g, x, kernel, stride, lambda c, v: [(i, v / len(c)) for i, _ in c])

    def every_max(cells, value):
        best = max(v for _, v in cells)
        return [(i, value) for i, v in cells if v == best]
    yield "the gradient sent to every tied maximum: it goes to one position per window, the " \
          "first maximum in row-major order (as PyTorch)", \
        lambda: _pool_backward(g, x, kernel, stride, every_max)

    def overwrite():
        grad = [0.0] * len(x[1])
        for out_index, cells in _windows(x, kernel, stride):
            for index, amount in _to_max(cells, g[1][out_index]):
                grad[index] = amount
        return _tensor(x[0], grad)
    if stride[0] < kernel[0] or stride[1] < kernel[1]:
        yield "overwriting where windows overlap: add (+=) the gradients of every window a " \
              "position is the maximum of", overwrite


def _transpose_ref(a, **changes):
    v = {**a, **changes}
    return _conv_transpose(v["x"], v["weight"], v["bias"], _pair(v["stride"]), _pair(v["padding"]))


def _transpose_mistakes(a):
    w = a["weight"]
    yield "a flipped kernel: each input value adds value * weight[c, o] (unflipped) onto its window", \
        lambda: _transpose_ref(a, weight=_flip(w, (2, 3)))
    if w[0][0] == w[0][1]:
        yield "a transposed weight: conv_transpose2d's weight is (C_in, C_out, K_h, K_w), as PyTorch", \
            lambda: _transpose_ref(a, weight=_permute(w, (1, 0, 2, 3)))
    if _pair(a["stride"]) != (1, 1):
        yield "the stride ignored: input pixel (i, j) lands at (i S, j S) of the output", \
            lambda: _transpose_ref(a, stride=1)
    if a["bias"] is not None:
        yield "a missing bias", lambda: _transpose_ref(a, bias=None)
    if _pair(a["padding"]) != (0, 0):
        yield "padding added instead of cropped: conv_transpose2d's padding removes P from each side", \
            lambda: _transpose_ref(a, padding=0)


def _separable(a):
    h, w, c_in, c_out, k = (a[n] for n in ("h_out", "w_out", "in_channels", "out_channels", "kernel_size"))
    return h * w * c_out * c_in * k * k, h * w * c_in * k * k + h * w * c_in * c_out


def _separable_mistakes(a):
    h, w, c_in, c_out, k = (a[n] for n in ("h_out", "w_out", "in_channels", "out_channels", "kernel_size"))
    standard = h * w * c_out * c_in * k * k
    yield "the pointwise (1x1) step forgotten: C_out filters of 1x1xC_in follow the depthwise step", \
        lambda: (standard, h * w * c_in * k * k)
    yield "the depthwise step forgotten: C_in filters of KxKx1 come first", \
        lambda: (standard, h * w * c_in * c_out)
    yield "a depthwise step with C_out filters: it has one KxK filter per INPUT channel", \
        lambda: (standard, h * w * c_out * k * k + h * w * c_in * c_out)
    yield "the input channels forgotten in the standard count: each filter is K x K x C_in", \
        lambda: (h * w * c_out * k * k, _separable(a)[1])


def _linear_as_conv(a):
    weight, bias, shape = a["weight"], a["bias"], tuple(a["in_shape"])
    if weight[0][1] != _size(shape):
        raise _Raises(ValueError, f"weight has {weight[0][1]} columns but C*H*W = {_size(shape)}")
    return _reshape(weight, (weight[0][0], *shape)), bias


def _linear_as_conv_mistakes(a, part):
    weight, shape = a["weight"], tuple(a["in_shape"])
    c, h, w = shape
    if part == 0:
        yield "a reshape in (H, W, C) order: flatten() lists x[c, i, j] with c slowest, then i, then j", \
            lambda: _permute(_reshape(weight, (weight[0][0], h, w, c)), (0, 3, 1, 2))
        yield "rows and columns swapped (reshaped to (F, C, W, H))", \
            lambda: _permute(_reshape(weight, (weight[0][0], c, w, h)), (0, 1, 3, 2))


def _dilate(a, step_of):
    weight, d = a["weight"], a["dilation"]
    o, c, kh, kw = weight[0]
    step = step_of(d)
    hh, ww = step * (kh - 1) + 1, step * (kw - 1) + 1
    out = [0.0] * (o * c * hh * ww)
    for oc in range(o * c):
        for m in range(kh):
            for q in range(kw):
                out[(oc * hh + m * step) * ww + q * step] = weight[1][(oc * kh + m) * kw + q]
    return _tensor((o, c, hh, ww), out)


def _dilate_mistakes(a):
    d = a["dilation"]
    yield f"D zeros between taps: dilation D = {d} puts D - 1 = {d - 1} zeros between neighbours", \
        lambda: _dilate(a, lambda d: d + 1)
    weight = a["weight"]

    def trailing():
        core = _dilate(a, lambda d: d)
        return _pad2d(core, 0, d - 1, 0, d - 1)
    if weight[0][2] > 1 and d > 1:
        yield "zeros after the last tap too: the dilated kernel is D (K - 1) + 1 wide", trailing


def _im2col_ref(a, **changes):
    v = {**a, **changes}
    return _im2col(v["x"], _pair(v["kernel_size"]), _pair(v["stride"]), _pair(v["padding"]))


def _im2col_mistakes(a):
    x = a["x"]
    kh, kw = _pair(a["kernel_size"])
    cols = _im2col_ref(a)
    n, rows, positions = cols[0]
    c = x[0][1]
    if c > 1:
        yield "rows ordered (kernel row, kernel column, channel): row index is c*K_h*K_w + m*K_w + q", \
            lambda: _reshape(_permute(_reshape(cols, (n, c, kh * kw, positions)), (0, 2, 1, 3)), cols[0])
    yield "the matrix transposed: (N, positions, C*K_h*K_w); columns are positions", \
        lambda: _permute(cols, (0, 2, 1))
    ho, wo = _out_size(x[0][2], kh, _pair(a["stride"])[0], 2 * _pair(a["padding"])[0]), None
    wo = positions // ho
    if ho > 1 and wo > 1:
        yield "positions in column-major order: column index is i*W_out + j (row of the output first)", \
            lambda: _reshape(_permute(_reshape(cols, (n, rows, ho, wo)), (0, 1, 3, 2)), cols[0])
    if _pair(a["padding"]) != (0, 0):
        yield "the padding ignored: zero-pad x by P on every side first", lambda: _im2col_ref(a, padding=0)
    if _pair(a["stride"]) != (1, 1):
        yield "the stride ignored: windows start every S pixels", lambda: _im2col_ref(a, stride=1)


def _accuracy(a):
    logits, labels = a["logits"], a["labels"]
    n, classes = logits[0]
    if labels[0] != (n,):
        raise _Raises(ValueError, f"logits of shape {logits[0]} need labels of shape ({n},)")
    correct = 0
    for i in range(n):
        row = logits[1][i * classes:(i + 1) * classes]
        correct += row.index(max(row)) == labels[1][i]
    return correct / n


def _accuracy_mistakes(a):
    n = a["logits"][0][0]
    yield "the number of correct predictions, not the fraction: divide by N", lambda: _accuracy(a) * n
    yield "the error rate (1 - accuracy)", lambda: 1 - _accuracy(a)
    yield "a percentage: return a fraction between 0 and 1", lambda: _accuracy(a) * 100


def _numerical_gradient_ref(a, kind="central"):
    objective, x, eps = a["f"], a["x"], a["eps"]
    values = list(x[1])
    grad = []
    for i in range(len(values)):
        original = values[i]
        values[i] = original + eps
        plus = objective.value(values)
        values[i] = original - eps
        minus = objective.value(values)
        values[i] = original
        here = objective.value(values)
        grad.append({"central": (plus - minus) / (2 * eps), "forward": (plus - here) / eps,
                     "eps": (plus - minus) / eps, "half": (plus - here) / (2 * eps)}[kind])
    return _tensor(x[0], grad)


def _numerical_gradient_mistakes(a):
    yield "forward differences (f(x + eps) - f(x))/eps: use central ones, " \
          "(f(x + eps) - f(x - eps))/(2 eps)", \
        lambda: _numerical_gradient_ref(a, "forward")
    yield "a divisor of eps: the central difference spans 2 eps, (f(x + eps) - f(x - eps))/(2 eps)", \
        lambda: _numerical_gradient_ref(a, "eps")
    yield "x[i] - eps not evaluated (x[i] was put back before the second call): subtract 2 eps " \
          "after adding eps, then restore x[i]", lambda: _numerical_gradient_ref(a, "half")


_SPECS = {
    "corr2d": _Spec(
        (("x", _REQUIRED), ("k", _REQUIRED)), lambda a: _corr2d(a["x"], a["k"]),
        "y[i, j] = sum over m, n of x[i + m, j + n] * k[m, n], for i < H - K_h + 1 and j < W - K_w + 1",
        mistakes=_corr2d_mistakes,
        shape_formula=lambda a: f"(H - K_h + 1, W - K_w + 1) = ({a['x'][0][0]} - {a['k'][0][0]} + 1, "
                                f"{a['x'][0][1]} - {a['k'][0][1]} + 1)"),
    "convolve2d": _Spec(
        (("x", _REQUIRED), ("k", _REQUIRED)), lambda a: _corr2d(a["x"], a["k"], flip=True),
        "y[i, j] = sum over m, n of x[i + m, j + n] * k[K_h - 1 - m, K_w - 1 - n] (the kernel flipped)",
        mistakes=_convolve2d_mistakes,
        shape_formula=lambda a: f"(H - K_h + 1, W - K_w + 1) = ({a['x'][0][0]} - {a['k'][0][0]} + 1, "
                                f"{a['x'][0][1]} - {a['k'][0][1]} + 1)"),
    "conv_output_size": _Spec(
        (("n", _REQUIRED), ("f", _REQUIRED), ("stride", 1), ("padding", 0)),
        lambda a: _conv_output_size(a["n"], a["f"], a["stride"], a["padding"]),
        "(N + 2P - F)/S + 1, which must be a whole number", kind="int",
        mistakes=_conv_output_size_mistakes),
    "pad2d": _Spec(
        (("x", _REQUIRED), ("padding", _REQUIRED)),
        lambda a: _pad2d(a["x"], *(a["padding"],) * 4),
        "x_pad[..., i + P, j + P] = x[..., i, j], zeros in the P rows and columns on every side",
        mistakes=_pad2d_mistakes,
        shape_formula=lambda a: f"(..., H + 2P, W + 2P) with P = {a['padding']}"),
    "conv2d": _Spec(
        (("x", _REQUIRED), ("weight", _REQUIRED), ("bias", _REQUIRED), ("stride", 1), ("padding", 0)),
        _conv2d_ref, _CONV2D_FORMULA, mistakes=_conv2d_mistakes,
        shape_formula=lambda a: f"(N, C_out, H_out, W_out) with {_size_text(a)}"),
    "conv2d_im2col": _Spec(
        (("x", _REQUIRED), ("weight", _REQUIRED), ("bias", _REQUIRED), ("stride", 1), ("padding", 0)),
        _conv2d_ref, _CONV2D_FORMULA, mistakes=_conv2d_mistakes,
        shape_formula=lambda a: f"(N, C_out, H_out, W_out) with {_size_text(a)}"),
    "conv_params": _Spec(
        (("in_channels", _REQUIRED), ("out_channels", _REQUIRED), ("kernel_size", _REQUIRED)),
        lambda a: a["out_channels"] * (a["in_channels"] * a["kernel_size"] ** 2 + 1),
        "C_out * (C_in * K * K + 1): C_out filters of C_in x K x K weights, plus one bias each",
        kind="int", mistakes=_conv_params_mistakes),
    "max_pool2d": _Spec(
        (("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None)),
        lambda a: _pool(a["x"], *_pool_stride(a), max),
        "out[n, c, i, j] = max over the K x K window of x starting at (i*S, j*S); S = K by default",
        mistakes=_max_pool_mistakes,
        shape_formula=lambda a: f"(N, C, H_out, W_out) with {_size_text(a)}"),
    "avg_pool2d": _Spec(
        (("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None)),
        lambda a: _pool(a["x"], *_pool_stride(a), _mean),
        "out[n, c, i, j] = (sum over the K_h x K_w window at (i*S, j*S)) / (K_h * K_w); S = K by default",
        mistakes=_avg_pool_mistakes,
        shape_formula=lambda a: f"(N, C, H_out, W_out) with {_size_text(a)}"),
    "conv2d_backward": _Spec(
        (("grad_out", _REQUIRED), ("x", _REQUIRED), ("weight", _REQUIRED), ("stride", 1), ("padding", 0)),
        _backward_ref,
        {"grad_x": "dL/dx[n, c] = full correlation of dL/dout[n, o] (dilated by S - 1 zeros) with the "
                   "flipped weight[o, c], summed over o, with the padding cropped",
         "grad_weight": "dL/dweight[o, c, m, q] = sum over n, i, j of dL/dout[n, o, i, j] * "
                        "x_pad[n, c, i*S + m, j*S + q]",
         "grad_bias": "dL/dbias[o] = sum of dL/dout[n, o, i, j] over n, i and j"},
        outputs=("grad_x", "grad_weight", "grad_bias"), mistakes=_conv2d_backward_mistakes,
        shape_formula=lambda a: "grad_x like x, grad_weight like weight, grad_bias (C_out,)"),
    "max_pool2d_backward": _Spec(
        (("grad_out", _REQUIRED), ("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None)),
        lambda a: _pool_backward(a["grad_out"], a["x"], *_pool_stride(a), _to_max),
        ("dL/dx gets dL/dout[n, c, i, j] at the position of its window's maximum (the first one, "
         "row by row, if tied), added up where windows overlap; 0 elsewhere"),
        mistakes=_max_backward_mistakes, shape_formula=lambda a: "the shape of x"),
    "numerical_gradient": _Spec(
        (("f", _REQUIRED), ("x", _REQUIRED), ("eps", 1e-6)), _numerical_gradient_ref,
        "grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), with x unchanged afterwards",
        mistakes=_numerical_gradient_mistakes, rtol=1e-6, atol=1e-6,
        shape_formula=lambda a: "the shape of x"),
    "conv_transpose2d": _Spec(
        (("x", _REQUIRED), ("weight", _REQUIRED), ("bias", None), ("stride", 1), ("padding", 0)),
        _transpose_ref,
        "out[n, o, i*S + m - P, j*S + q - P] += x[n, c, i, j] * weight[c, o, m, q], plus bias[o]",
        mistakes=_transpose_mistakes,
        shape_formula=lambda a: "(N, C_out, (H - 1) S - 2P + K_h, (W - 1) S - 2P + K_w)"),
    "separable_mults": _Spec(
        (("h_out", _REQUIRED), ("w_out", _REQUIRED), ("in_channels", _REQUIRED), ("out_channels", _REQUIRED),
         ("kernel_size", _REQUIRED)), _separable,
        ("standard: H_out W_out C_out (K K C_in); depthwise separable: H_out W_out C_in (K K) "
         "+ H_out W_out C_out C_in"), kind="ints", mistakes=_separable_mistakes),
    "linear_as_conv": _Spec(
        (("weight", _REQUIRED), ("bias", _REQUIRED), ("in_shape", _REQUIRED)), _linear_as_conv,
        ("conv_weight[f, c, i, j] = weight[f, c*H*W + i*W + j] (flatten order), conv_bias = bias: "
         "one C x H x W filter per output feature"),
        outputs=("conv_weight", "conv_bias"), mistakes=_linear_as_conv_mistakes,
        shape_formula=lambda a: "conv_weight (F, C, H, W), conv_bias (F,)"),
    "dilate_kernel": _Spec(
        (("weight", _REQUIRED), ("dilation", _REQUIRED)), lambda a: _dilate(a, lambda d: d),
        "dilated[o, c, m*D, q*D] = weight[o, c, m, q], zeros elsewhere",
        mistakes=_dilate_mistakes,
        shape_formula=lambda a: f"(C_out, C_in, D (K_h - 1) + 1, D (K_w - 1) + 1) with D = {a['dilation']}"),
    "im2col": _Spec(
        (("x", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", 1), ("padding", 0)), _im2col_ref,
        ("cols[n, c*K_h*K_w + m*K_w + q, i*W_out + j] = x_pad[n, c, i*S + m, j*S + q]: one column per "
         "output position, one row per (channel, kernel offset)"),
        mistakes=_im2col_mistakes,
        shape_formula=lambda a: f"(N, C*K_h*K_w, H_out*W_out) with {_size_text(a)}"),
    "accuracy": _Spec(
        (("logits", _REQUIRED), ("labels", _REQUIRED)), _accuracy,
        "the fraction of rows whose largest logit is at the label's index", kind="float",
        mistakes=_accuracy_mistakes, forbidden=_FORBIDDEN, allowed=_CASE_STUDY_ALLOWED),
}


# ---------------------------------------------------------------------------- arguments and results


def _from_array(value, what: str) -> tuple:
    """A NumPy array as a tensor, read through NumPy's own ndarray type."""
    if value.__class__ is not _NDARRAY:
        kind = "None" if value is None else value.__class__.__name__
        hint = " (did you forget to return it?)" if value is None else (
            " (wrap it in np.array(...))" if isinstance(value, (list, tuple)) else "")
        raise GradingError(f"{what} should be a NumPy array, got {kind}{hint}")
    if value.dtype.kind not in "biuf":
        raise GradingError(f"{what} has dtype {value.dtype}: expected numbers (float64)")
    return _tensor(value.shape, [float(v) for v in value.reshape(-1).tolist()])


def _to_array(t):
    return _np_array(t[1], dtype=np.float64).reshape(t[0])


def _freeze(value):
    """Arguments as immutable values: arrays become tensors, the rest must be plain data."""
    if value.__class__ is _NDARRAY:
        return ("array", _from_array(value, "an argument"))
    if value.__class__ is _Objective:
        return ("objective", value.frozen())
    if value is None or value.__class__ in (int, float, bool, str):
        return ("plain", value)
    if value.__class__ in (tuple, list):
        return ("plain", tuple(_freeze(v)[1] for v in value))
    raise TypeError(f"grader: cannot pass a {value.__class__.__name__} to a graded function")


def _for_reference(frozen):
    kind, value = frozen
    return _Objective(value) if kind == "objective" else value


def _thaw(frozen):
    kind, value = frozen
    if kind == "array":
        return _to_array(value)
    if kind == "objective":
        return _Objective(value)
    return value  # "plain" data, or an "object" the case study hands over as it is


def _bind(spec: _Spec, name: str, args: tuple, kwargs: dict) -> dict:
    """The check's arguments by parameter name, defaults filled in."""
    names = [p for p, _ in spec.params]
    if len(args) > len(names):
        raise TypeError(f"grader: {name} takes at most {len(names)} arguments")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names or key in bound:
            raise TypeError(f"grader: unexpected argument {key!r} for {name}")
        bound[key] = value
    for key, default in spec.params:
        if key not in bound:
            if default is _REQUIRED:
                raise TypeError(f"grader: {name} needs the argument {key!r}")
            bound[key] = default
    return bound


def _describe_call(name: str, spec: _Spec, args: tuple, kwargs: dict) -> str:
    """``conv2d(x: (2, 3, 7, 7), weight: (4, 3, 3, 3), bias: (4,), stride=2)``."""
    names = [p for p, _ in spec.params]
    parts = []
    for key, (kind, value) in [*zip(names, args), *kwargs.items()]:
        if kind == "array":
            parts.append(f"{key} of shape {value[0]}" if _size(value[0]) > 12 else
                         f"{key}={_format(list(value[1]), value[0])}")
        elif kind == "objective":
            parts.append(f"{key}=<a test function>")
        else:
            parts.append(f"{key}={value!r}")
    return f"{name}({', '.join(parts)})"


class _Objective:
    """The function handed to ``numerical_gradient``: f(x) = sum_i a_i x_i^3 + b_i x_i x_{i+1}.

    Calling it reads x through NumPy's own ndarray type, with no other Python call, so the call
    monitor can let exactly this code through.
    """

    def __init__(self, coefficients):
        self._coefficients = tuple(coefficients)

    def frozen(self):
        return self._coefficients

    def value(self, values) -> float:
        a, b = self._coefficients[0::2], self._coefficients[1::2]
        total = 0.0
        for i in range(len(values)):
            total += a[i] * values[i] ** 3
            if i + 1 < len(values):
                total += b[i] * values[i] * values[i + 1]
        return total

    def __call__(self, x):
        if x.__class__ is not _NDARRAY:
            raise TypeError(f"f takes a NumPy array, got {x.__class__.__name__}")
        values = x.reshape(-1).tolist()
        a, b = self._coefficients[0::2], self._coefficients[1::2]
        total = 0.0
        for i in range(len(values)):
            total += a[i] * values[i] ** 3
            if i + 1 < len(values):
                total += b[i] * values[i] * values[i + 1]
        return total


# ---------------------------------------------------------------------------- the call monitor


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


class _Outcome:
    __slots__ = ("value", "error", "seconds", "found", "monitor_lost")


def _watched_call(name: str, spec: _Spec, function, args: tuple, kwargs: dict) -> _Outcome:
    """Call the student's function under the call monitor; nothing it raises escapes."""
    __tracebackhide__ = True
    if function.__class__ is not _FUNCTION:
        raise GradingError(
            f"{name} should be a function defined with def in this notebook, got "
            f"{function.__class__.__name__}")
    if function.__code__.co_filename.startswith(_LIBRARY_DIRS):
        raise GradingError(
            f"{name} is the library function {function.__module__}.{function.__qualname__}, not a "
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

    outcome = _Outcome()
    outcome.value = outcome.error = None
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


def _run(name: str, spec: _Spec, function, frozen_args: tuple, frozen_kwargs: dict) -> _Outcome:
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
            f"Grading refused: {name} called {outcome.found[0]}. A graded function must compute its "
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
        if kind != "array":
            continue
        now = _from_array(value, "an argument")
        if now != before:
            where = next(i for i in range(len(now[1])) if now[1][i] != before[1][i])
            position = ", ".join(str(i) for i in _unravel(where, now[0]))
            raise GradingError(
                f"{name} changed its argument {label} in place ({label}[{position}] was "
                f"{_format_number(before[1][where])}, is now {_format_number(now[1][where])}): "
                "work on a copy, or put every value back.")


# ---------------------------------------------------------------------------- comparing and explaining


def _format_number(v) -> str:
    if v.__class__ is float and v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}" if v.__class__ is float else repr(v)


def _format(values, shape) -> str:
    if not shape:
        return _format_number(values[0])
    step = _size(shape[1:])
    return "[" + ", ".join(_format(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


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


def _value_report(got, expected, rtol, atol) -> str:
    (shape, g), e = got, expected[1]
    bad = [i for i in range(len(e)) if not _close(g[i], e[i], rtol, atol)]
    first = bad[0]
    where = ", ".join(str(i) for i in _unravel(first, shape))
    largest = max((g[i] - e[i]) if g[i] >= e[i] else (e[i] - g[i]) for i in bad)
    lines = []
    if len(e) <= 36:
        lines += [f"  expected: {_format(list(e), shape)}", f"  got:      {_format(list(g), shape)}"]
    lines.append(f"  first difference at [{where}]: expected {_format_number(e[first])}, "
                 f"got {_format_number(g[first])} ({len(bad)} of {len(e)} values differ, "
                 f"largest difference {largest:.3g})")
    return "\n".join(lines)


def _explain(spec: _Spec, name: str, call: str, got, expected, args: dict, part) -> str:
    """The failure message: what differs, the formula, and the mistake it matches, if any."""
    label = f"{call}[{part}]" if part is not None else call
    lines = [f"{label}: wrong answer."]
    if expected.__class__ is tuple and len(expected) == 2 and expected[0].__class__ is tuple:
        if got[0] != expected[0]:
            lines.append(f"  expected shape {expected[0]}, got shape {got[0]}")
            if spec.shape_formula is not None:
                lines.append(f"  shape: {spec.shape_formula(args)}")
        else:
            lines.append(_value_report(got, expected, spec.rtol, spec.atol))
    else:
        lines.append(f"  expected {expected!r}, got {got!r}")
    formula = spec.formula[part] if spec.formula.__class__ is dict else spec.formula
    lines.append(f"  formula: {formula}")
    mistake = _matching_mistake(spec, args, got, part, expected)
    if mistake:
        lines.append(f"  Your answer is exactly what you get with {mistake}.")
    return "\n".join(lines)


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
        if value.__class__ is bool or not (value.__class__ is int or (
                value.__class__.__class__ is _TYPE and not value.__class__.__flags__ & _HEAPTYPE
                and isinstance(value, np.integer))):
            hint = " (use // for a whole number)" if value.__class__ in (float, np.float64) else ""
            raise GradingError(f"{what} should be an int, got {value!r}{hint}")
        return int(value)
    if spec.kind == "float":
        if value.__class__ not in (float, int, np.float64, np.float32) or value.__class__ is bool:
            raise GradingError(f"{what} should be a number, got {value.__class__.__name__}")
        return float(value)
    if value.__class__ is not tuple or len(value) != 2:
        raise GradingError(f"{what} should be a tuple of two ints, got {value!r}")
    return tuple(_result(v, _Spec((), None, "", kind="int"), what) for v in value)


# ---------------------------------------------------------------------------- the public checks


def randn(*shape, seed: int = 0):
    """A float64 array of ``shape`` with standard normal values, the same for every seed."""
    import random

    rng = random.Random(seed)
    values = [round(rng.gauss(0.0, 1.0), 6) for _ in range(_size(shape))]
    return _np_array(values, dtype=np.float64).reshape(shape)


def randint(low: int, high: int, *shape, seed: int = 0):
    """A float64 array of ``shape`` holding whole numbers in [low, high)."""
    import random

    rng = random.Random(seed)
    return _np_array([float(rng.randrange(low, high)) for _ in range(_size(shape))],
                     dtype=np.float64).reshape(shape)


def array(literal):
    """A float64 array from nested lists (the test cells' hand-computed examples)."""
    shape, values = _flatten(literal)
    return _np_array(values, dtype=np.float64).reshape(shape)


def cubic(size: int, seed: int = 0):
    """A test function for ``numerical_gradient``: f(x) = sum a_i x_i^3 + b_i x_i x_{i+1}."""
    import random

    rng = random.Random(seed)
    return _Objective(round(rng.uniform(-1, 1), 3) for _ in range(2 * size))


def check(name: str, function, *args, expected=None, part: str | None = None, only: str | None = None,
          **kwargs) -> None:
    """Call ``function(*args, **kwargs)`` and compare with the reference for ``name``.

    ``expected``: a hand-computed answer (nested lists) shown in the message; the reference must
    agree with it. ``part``: for functions returning a tuple, the one output to compare.
    ``only="shape"``: compare shapes only. Raises ``GradingError`` with the explanation.
    """
    __tracebackhide__ = True
    spec = _SPECS[name]
    frozen_args = tuple(_freeze(v) for v in args)
    frozen_kwargs = {k: _freeze(v) for k, v in kwargs.items()}
    call = _describe_call(name, spec, frozen_args, frozen_kwargs)
    outcome = _run(name, spec, function, frozen_args, frozen_kwargs)
    bound = _bind(spec, name, tuple(_for_reference(v) for v in frozen_args),
                  {k: _for_reference(v) for k, v in frozen_kwargs.items()})
    try:
        reference = spec.reference(bound)
        raises = None
    except _Raises as error:
        reference, raises = None, error
    _compare_outcome(spec, name, call, outcome, reference, raises, bound, expected, part, only)


def _compare_outcome(spec, name, call, outcome, reference, raises, bound, expected, part, only):
    __tracebackhide__ = True
    error = outcome.error
    if isinstance(error, NotImplementedError):
        raise GradingError(f"{name} is not implemented yet: replace `raise NotImplementedError()` "
                           "with your code.")
    if raises is not None:
        if error is None:
            got = _result(outcome.value, spec, f"{call} returned")
            message = f"{call} should raise {raises.error.__name__}: {raises.reason}; it returned {got!r}."
            mistake = _matching_mistake(spec, bound, got, None)
            if mistake:
                message += f"\n  Your answer is exactly what you get with {mistake}."
            raise GradingError(message)
        if not isinstance(error, raises.error):
            raise GradingError(f"{call} should raise {raises.error.__name__} ({raises.reason}), "
                               f"but raised {error.__class__.__name__}: {error}") from error
        return
    if error is not None:
        raise GradingError(f"{call} raised {error.__class__.__name__}: {error}") from error
    value = outcome.value
    if spec.outputs is not None:
        if value.__class__ not in (tuple, list) or len(value) != len(spec.outputs):
            raise GradingError(f"{call} should return a tuple ({', '.join(spec.outputs)}), got "
                               f"{value.__class__.__name__}")
        parts = spec.outputs if part is None else (part,)
        for label in parts:
            index = spec.outputs.index(label)
            _compare(spec, call, _result(value[index], spec, f"{call}[{label}]"), reference[index],
                     bound, label, only, expected if part is not None else None)
        return
    _compare(spec, call, _result(value, spec, f"{call} returned"), reference, bound, None, only, expected)


def _compare(spec, call, got, reference, bound, part, only, expected) -> None:
    __tracebackhide__ = True
    if expected is not None:
        given = _flatten(expected)
        given = _tensor(given[0], given[1]) if given[0] else given[1][0]
        if not _same(reference, given, 1e-9, 1e-9):
            raise RuntimeError(f"grader bug: the hand-computed answer {expected} differs from the reference")
    if only == "shape":
        if got[0] != reference[0]:
            shape_note = f"\n  shape: {spec.shape_formula(bound)}" if spec.shape_formula else ""
            label = f"{call}[{part}]" if part else call
            mistake = _matching_mistake(spec, bound, got, part, reference)
            note = f"\n  Your answer has exactly the shape you get with {mistake}." if mistake else ""
            raise GradingError(
                f"{label}: expected shape {reference[0]}, got shape {got[0]}{shape_note}{note}")
        return
    if not _same(got, reference, spec.rtol, spec.atol):
        raise GradingError(_explain(spec, call.partition("(")[0], call, got, reference, bound, part))


def check_speed(name: str, function, *args, budget: float, samples: int = 24, **kwargs) -> None:
    """Run ``function`` once on large inputs: it must finish within ``budget`` seconds, return the
    right shape, and agree with the reference at ``samples`` output positions."""
    __tracebackhide__ = True
    spec = _SPECS[name]
    frozen_args = tuple(_freeze(v) for v in args)
    frozen_kwargs = {k: _freeze(v) for k, v in kwargs.items()}
    call = _describe_call(name, spec, frozen_args, frozen_kwargs)
    outcome = _run(name, spec, function, frozen_args, frozen_kwargs)
    if outcome.error is not None:
        _compare_outcome(spec, name, call, outcome, None, None, {}, None, None, None)
    got = _result(outcome.value, spec, f"{call} returned")
    a = _bind(spec, name, tuple(v for _, v in frozen_args), {k: v for k, (_, v) in frozen_kwargs.items()})
    (batch, _, h, w), (outs, _, kh, kw) = a["x"][0], a["weight"][0]
    (sh, sw), (ph, pw) = _pair(a["stride"]), _pair(a["padding"])
    shape = (batch, outs, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    if got[0] != shape:
        raise GradingError(
            f"{call}: expected shape {shape}, got shape {got[0]}\n  shape: {spec.shape_formula(a)}")
    for k in range(samples):
        index = (k * 7919 + 17) % _size(shape)
        n, o, i, j = _unravel(index, shape)
        patch = _window(a["x"], n, i * sh - ph, j * sw - pw, kh, kw)
        window = _conv(patch, _batch_item(a["weight"], o), None)
        value = window[1][0] + (a["bias"][1][o] if a["bias"] is not None else 0.0)
        if not _close(got[1][index], value, spec.rtol, spec.atol):
            raise GradingError(f"{call}: wrong value at [{n}, {o}, {i}, {j}]: expected "
                               f"{_format_number(value)}, got {_format_number(got[1][index])}\n"
                               f"  formula: {spec.formula}")
    if outcome.seconds > budget:
        raise GradingError(
            f"{call} took {outcome.seconds:.2f} s; the budget is {budget:.2f} s. Replace the loops over "
            "output positions by one matrix product (im2col, then weight.reshape(C_out, -1) @ cols).")


def _window(x, n, top, left, kh, kw):
    """The (1, C, K_h, K_w) patch of image n at (top, left), zeros outside the image."""
    (_, channels, h, w), xs = x
    values = []
    for c in range(channels):
        for m in range(kh):
            for q in range(kw):
                r, col = top + m, left + q
                inside = 0 <= r < h and 0 <= col < w
                values.append(xs[((n * channels + c) * h + r) * w + col] if inside else 0.0)
    return _tensor((1, channels, kh, kw), values)


# ---------------------------------------------------------------------------- the case study
# LeNet-5 is built and trained with cnnlib.nn, so these checks run cnnlib's own code: first they
# make sure that code is what the files on disk say (no replaced layer, optimiser or loader).

_CASE_STUDY = _Spec((), None, "", allowed=_CASE_STUDY_ALLOWED)
_CASE_STUDY_MODULES = ("cnnlib.nn", "cnnlib.functional", "cnnlib.optim", "cnnlib._checks", "cnnlib.data")
_DATACLASS_METHODS = ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__", "__hash__",
                      "__lt__", "__le__", "__gt__", "__ge__")
_MAX_SETTING, _MAX_PARAMETERS = 4096, 10_000_000  # bounds on a model the grader will run
_LENET_PARAMETERS = 61706  # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850
_LENET_MAPS = ((6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5))


def _verify_cnnlib() -> None:
    """Every function and method of the cnnlib modules the case study runs must match its source."""
    __tracebackhide__ = True
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith(_CASE_STUDY_MODULES) or module is None:
            continue
        if module.__class__ is not _MODULE:
            raise _refuse(f"the module {module_name} has been replaced")
        for key, value in list(module.__dict__.items()):
            home = getattr(value, "__module__", None) if value.__class__ in (_FUNCTION, _TYPE) else None
            if home.__class__ is not str or not home.startswith("cnnlib"):
                continue
            owner = sys.modules.get(home)
            if owner is None or owner.__dict__.get(value.__name__) is not value:
                raise _refuse(f"{module_name}.{key} has been replaced")
            functions = [(key, value)] if value.__class__ is _FUNCTION else [
                (k, f) for k, f in value.__dict__.items() if f.__class__ is _FUNCTION]
            for attribute, function in functions:
                code = function.__code__
                if (value.__class__ is _TYPE and "__dataclass_fields__" in value.__dict__
                        and attribute in _DATACLASS_METHODS and not code.co_filename.startswith(_HERE)):
                    continue  # written by the dataclass decorator, not by cnnlib's source
                if not code.co_filename.startswith(_HERE) or not _same_as_source(code, quick=False):
                    raise _refuse(f"{home}.{value.__name__} has been changed")


def _check_model(model, what: str) -> None:
    """The model must be made of cnnlib.nn's own classes, with nothing replaced on the instances."""
    __tracebackhide__ = True
    nn = sys.modules["cnnlib.nn"]
    if not isinstance(model, nn.Module):
        raise GradingError(f"{what} should return a cnnlib.nn module (e.g. nn.Sequential(...)), got "
                           f"{model.__class__.__name__}")
    for module in model.modules():
        kind = module.__class__
        if not kind.__module__.startswith("cnnlib.nn"):
            raise GradingError(f"{what}: the model contains a {kind.__name__} defined outside cnnlib.nn; "
                               "build it from cnnlib.nn's layers")
        for name in ("forward", "backward", "__call__", "parameters"):
            if name in module.__dict__:
                raise _refuse(f"the {kind.__name__} layer's {name} was replaced on the instance")
        for name, value in module.__dict__.items():  # the grader runs this model: no absurd sizes
            sizes = value if value.__class__ is tuple else (value,)
            if any(v.__class__ is int and not 0 <= v <= _MAX_SETTING for v in sizes):
                raise GradingError(f"{what}: the {kind.__name__} layer has {name}={value!r}; settings "
                                   f"outside 0..{_MAX_SETTING} are not a LeNet-5")
    total = sum(p.data.size for p in model.parameters() if p.data.__class__ is _NDARRAY)
    if total > _MAX_PARAMETERS:
        raise GradingError(f"{what}: the model has {total:,} parameters; LeNet-5 has {_LENET_PARAMETERS:,}")


def _build(build_lenet):
    __tracebackhide__ = True
    _verify_cnnlib()
    outcome = _run("build_lenet", _CASE_STUDY, build_lenet, (), {})
    if outcome.error is not None:
        if isinstance(outcome.error, NotImplementedError):
            raise GradingError("build_lenet is not implemented yet: replace `raise NotImplementedError()` "
                               "with your code.")
        raise GradingError(f"build_lenet() raised {outcome.error.__class__.__name__}: "
                           f"{outcome.error}") from outcome.error
    _check_model(outcome.value, "build_lenet()")
    return outcome.value


def check_lenet(build_lenet, what: str) -> None:
    """``what``: "output" (a (N, 10) output for (N, 1, 32, 32) images), "parameters" (61,706 of
    them), "layers" (the feature maps 6@28x28, 6@14x14, 16@10x10, 16@5x5) or "backward" (a
    backward pass gives dL/dx like x)."""
    __tracebackhide__ = True
    model = _build(build_lenet)
    x = _np_array([0.5] * (2 * 32 * 32), dtype=np.float32).reshape((2, 1, 32, 32))
    if what == "backward":
        try:
            model(x)
            grad = model.backward(_np_array([1.0] * 20, dtype=np.float32).reshape((2, 10)))
        except Exception as error:
            raise GradingError(f"a forward then backward pass through the model fails: {error}") from error
        got = _from_array(grad, "model.backward(grad_out)")[0]
        if got != (2, 1, 32, 32):
            raise GradingError(f"model.backward should return dL/dx of shape (2, 1, 32, 32), got {got}")
    elif what == "output":
        try:
            out = model(x)
        except Exception as error:
            raise GradingError(f"the model fails on a batch of shape (2, 1, 32, 32): {error}") from error
        got = _from_array(out, "the model's output")[0]
        if got != (2, 10):
            raise GradingError(f"for a batch of shape (2, 1, 32, 32) the model should output (2, 10), one "
                               f"score per digit class, got {got}")
    elif what == "parameters":
        counts = [(module.__class__.__name__, sum(p.data.size for p in module.parameters()))
                  for module in model.modules() if not list(module.children())]
        total = sum(count for _, count in counts)
        if total != _LENET_PARAMETERS:
            listing = ", ".join(f"{name} {count:,}" for name, count in counts if count)
            raise GradingError(
                f"LeNet-5 has {_LENET_PARAMETERS:,} parameters (C1 156, C3 2,416, C5 48,120, F6 10,164, "
                f"output 850), this model has {total:,}: {listing}.\n  A conv layer has "
                "C_out (C_in K K + 1), a linear layer out (in + 1).")
    else:
        _check_feature_maps(model, x)


def _check_feature_maps(model, x) -> None:
    """Run the layers one by one; the first feature map of the wrong shape names the problem."""
    __tracebackhide__ = True
    maps, failure = [], None
    for module in model.modules():
        if list(module.children()):
            continue
        try:
            x = module(x)
        except Exception as error:
            failure = (module, tuple(x.shape), error)
            break
        if module.__class__.__name__ in ("Conv2d", "MaxPool2d", "AvgPool2d") and len(maps) < 4:
            maps.append((module.__class__.__name__, tuple(x.shape[1:])))
    for index, ((kind, got), expected) in enumerate(zip(maps, _LENET_MAPS)):
        if got != expected:
            stage = ("C1", "S2", "C3", "S4")[index]
            wanted = "a conv layer" if index % 2 == 0 else "a 2x2 pooling layer"
            missing = "conv" if index % 2 == 0 else "pooling"
            kind_note = "" if (kind == "Conv2d") == (index % 2 == 0) else (
                f" Here {stage} should be {wanted}, not a {kind}: a missing {missing} layer?")
            raise GradingError(
                f"after {stage} ({kind}) the feature maps should be {expected} (C, H, W), got {got}."
                f"{kind_note}\n  LeNet-5: C1 6@5x5 -> 6x28x28, S2 pool 2x2 -> 6x14x14, C3 16@5x5 -> "
                "16x10x10, S4 pool 2x2 -> 16x5x5, C5 120, F6 84, output 10.")
    if failure is not None:
        module, shape, error = failure
        raise GradingError(f"the model's {module.__class__.__name__} layer fails on an input of shape "
                           f"{shape}: {error}") from error
    if len(maps) < 4:
        raise GradingError(f"LeNet-5 has two conv and two pooling layers before C5, this model has "
                           f"{[kind for kind, _ in maps]}")


def _softmax_step(weight, bias, x, y, rows, classes, features):
    """Loss and gradients of mean softmax cross-entropy for a linear layer, in plain Python."""
    loss, grad_w, grad_b = 0.0, [0.0] * len(weight), [0.0] * classes
    import math

    for r in range(rows):
        logits = [bias[k] + sum(weight[k * features + f] * x[r * features + f] for f in range(features))
                  for k in range(classes)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        loss += (math.log(total) + top - logits[y[r]]) / rows
        for k in range(classes):
            g = (exps[k] / total - (1.0 if k == y[r] else 0.0)) / rows
            grad_b[k] += g
            for f in range(features):
                grad_w[k * features + f] += g * x[r * features + f]
    return loss, grad_w, grad_b


def _simulate_epoch(weight, bias, batches, lr, zero_grad=True):
    weight, bias = list(weight), list(bias)
    classes, features = len(bias), len(weight) // len(bias)
    acc_w, acc_b, losses = [0.0] * len(weight), [0.0] * classes, []
    for x, y in batches:
        loss, gw, gb = _softmax_step(weight, bias, x, y, len(y), classes, features)
        losses.append((loss, len(y)))
        if zero_grad:
            acc_w, acc_b = gw, gb
        else:
            acc_w = [a + g for a, g in zip(acc_w, gw)]
            acc_b = [a + g for a, g in zip(acc_b, gb)]
        weight = [w - lr * g for w, g in zip(weight, acc_w)]
        bias = [b - lr * g for b, g in zip(bias, acc_b)]
    return weight, bias, losses


def check_train_epoch(train_epoch, what: str, lr: float = 0.5, sizes: tuple = (4, 4, 2)) -> None:
    """One epoch of SGD on a 4 -> 3 linear classifier over batches of ``sizes`` examples.

    ``what``: "parameters" (the weights after the epoch) or "loss" (the returned mean loss over
    the epoch's examples)."""
    __tracebackhide__ = True
    _verify_cnnlib()
    nn, optim = sys.modules["cnnlib.nn"], __import__("cnnlib.optim").optim
    weight0, bias0 = randn(3, 4, seed=11), randn(3, seed=12)
    batches, frozen = [], []
    for index, size in enumerate(sizes):
        x = randn(size, 4, seed=20 + index)
        y = _np_array([(3 * index + r) % 3 for r in range(size)], dtype=np.int64)
        batches.append((x, y))
        frozen.append((tuple(x.reshape(-1).tolist()), tuple(y.tolist())))
    model = nn.Linear(4, 3, dtype=np.float64)
    model.weight.data[...] = weight0
    model.bias.data[...] = bias0
    optimizer = optim.SGD(model.parameters(), lr=lr)
    start_w, start_b = tuple(weight0.reshape(-1).tolist()), tuple(bias0.tolist())
    handed = tuple(("object", v) for v in (model, nn.CrossEntropyLoss(), optimizer, batches))
    outcome = _run("train_epoch", _CASE_STUDY, train_epoch, handed, {})
    call = "train_epoch(model, loss_fn, optimizer, batches)"
    if outcome.error is not None:
        _compare_outcome(_CASE_STUDY, "train_epoch", call, outcome, None, None, {}, None, None, None)
    weight, bias, losses = _simulate_epoch(start_w, start_b, frozen, lr)
    if what == "parameters":
        got = (_from_array(model.weight.data, "model.weight.data")[1]
               + _from_array(model.bias.data, "model.bias.data")[1])
        wanted = tuple(weight + bias)
        if len(got) == len(wanted) and all(_close(g, e, 1e-6, 1e-9) for g, e in zip(got, wanted)):
            return
        message = ("after one epoch the weights differ from one SGD step per batch (zero_grad, forward, "
                   "loss, backward, step).")
        w2, b2, _ = _simulate_epoch(start_w, start_b, frozen, lr, zero_grad=False)
        if all(_close(g, e, 1e-6, 1e-9) for g, e in zip(got, w2 + b2)):
            message += ("\n  Your weights are exactly what a missing optimizer.zero_grad() gives: backward "
                        "passes add into .grad, so clear it before each batch.")
        elif all(_close(g, e, 1e-9, 1e-12) for g, e in zip(got, start_w + start_b)):
            message += "\n  The weights did not change at all: is optimizer.step() called?"
        raise GradingError(f"{call}: {message}")
    value = outcome.value
    if value.__class__ not in (float, int, np.float64, np.float32) or value.__class__ is bool:
        raise GradingError(f"{call} should return the epoch's mean loss as a float, got {value!r}")
    count = sum(n for _, n in losses)
    expected = sum(loss * n for loss, n in losses) / count
    if _close(float(value), expected, 1e-6, 1e-9):
        return
    message = (f"{call} returned {float(value):.6g}; the mean loss over the epoch's {count} examples is "
               f"{expected:.6g} (each batch's mean loss weighted by its size).")
    for text, candidate in (
            ("the plain average of the batch losses (the last batch is smaller: weight by batch size)",
             sum(loss for loss, _ in losses) / len(losses)),
            ("the sum of the batch losses", sum(loss for loss, _ in losses)),
            ("the last batch's loss", losses[-1][0])):
        if _close(float(value), candidate, 1e-6, 1e-9):
            message += f"\n  Your answer is exactly what you get with {text}."
    raise GradingError(message)


def check_training(train_lenet, target: float, budget: float, subset: int | None = None) -> None:
    """``train_lenet(x_train, y_train)`` on the digits at 32x32 (the first ``subset`` training
    examples, or all) must return a model reaching ``target`` accuracy on the whole test split,
    within ``budget`` seconds."""
    __tracebackhide__ = True
    _verify_cnnlib()
    x_train, y_train, x_test, y_test = sys.modules["cnnlib.data"].load_digits(size=32)
    if subset is not None:
        x_train, y_train = x_train[:subset].copy(), y_train[:subset].copy()
    labels = y_test.tolist()
    outcome = _run("train_lenet", _CASE_STUDY, train_lenet, (("object", x_train), ("object", y_train)), {})
    call = "train_lenet(x_train, y_train)"
    if outcome.error is not None:
        _compare_outcome(_CASE_STUDY, "train_lenet", call, outcome, None, None, {}, None, None, None)
    model = outcome.value
    _check_model(model, call)
    model.eval()
    logits = _from_array(model(x_test), "the model's output")
    if logits[0] != (len(labels), 10):
        raise GradingError(
            f"the model's output for the test images should be ({len(labels)}, 10), got {logits[0]}")
    correct = 0
    for i, label in enumerate(labels):
        row = logits[1][i * 10:(i + 1) * 10]
        correct += row.index(max(row)) == label
    accuracy = correct / len(labels)
    if accuracy < target:
        trained_on = f" after training on {len(y_train)} examples" if subset is not None else ""
        raise GradingError(
            f"the trained model classifies {accuracy:.1%} of the {len(labels)} test digits correctly"
            f"{trained_on}; the target is {target:.0%}. Train longer, or try Adam with lr = 1e-3 and "
            "batches of 32.")
    if outcome.seconds > budget:
        raise GradingError(f"{call} took {outcome.seconds:.1f} s; the budget is {budget:.0f} s.")


_OWN_FUNCTIONS = tuple((key, value) for key, value in globals().items() if value.__class__ is _FUNCTION)
