"""Integrity: the builtins, NumPy comparisons and checker functions a check relies on are genuine.

Inside the student's kernel (a student checking their own work) each check verifies, before and
after calling the student's function, that nothing the notebook did replaced what the checker
relies on. This is best effort: ``make grade`` runs the test cells outside the kernel
(``grading.remote``), where the notebook cannot reach the checker at all.
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
    "AssertionError", "BaseException", "Exception", "ImportError", "IndexError", "KeyError",
    "KeyboardInterrupt", "NameError", "NotImplementedError", "exec", "print", "staticmethod",
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



from cnnlib.testing.errors import refuse as _refuse  # noqa: E402

if _tampered_builtin() is not None:
    raise _refuse(f"the builtin {_tampered_builtin()!r} has been replaced in this notebook")

import gc  # noqa: E402
import importlib.machinery  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

# ---------------------------------------------------------------------------- where things live

_SEP = "\\" if "\\" in __file__ and "/" not in __file__ else "/"
_PACKAGE_DIR = __file__.rpartition(_SEP)[0] + _SEP  # cnnlib/testing/
_HERE = _PACKAGE_DIR[:-1].rpartition(_SEP)[0] + _SEP  # cnnlib/


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
                              "shapes.py", "geometry.py", "summary.py",
                              "__init__.py")
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
_PACKAGE = "cnnlib.testing"


def _snapshot() -> tuple:
    """Identities of the checker's globals and their functions' code (every module of the package,
    and the methods of its classes), to see any of them replaced."""
    items = []
    for module_name, module in sorted(sys.modules.items()):
        if module_name != _PACKAGE and not module_name.startswith(_PACKAGE + "."):
            continue
        for key, value in module.__dict__.items():
            if key.startswith("__"):
                continue
            items.append(_identity(module_name, key, value))
            if value.__class__ is _TYPE and value.__module__ == module_name:
                items += [_identity(module_name, f"{key}.{k}", v) for k, v in value.__dict__.items()
                          if v.__class__ is _FUNCTION]
    return tuple(items)


def _identity(module_name: str, key: str, value) -> tuple:
    if value.__class__ is _FUNCTION:
        return (module_name, key, id(value), id(value.__code__), id(value.__defaults__))
    return (module_name, key, id(value))


_LOADED: list = []  # the snapshot when the package finished loading (see cnnlib.testing)


def mark_loaded() -> None:
    """Remember the checker as it was loaded from disk."""
    if not _LOADED:
        _LOADED.append(_snapshot())


def _changed_since_loaded() -> str | None:
    """The first checker name changed since the package was loaded, or None."""
    if not _LOADED:
        return None
    now, then = _snapshot(), _LOADED[0]
    if now == then:
        return None
    known = {item[:2]: item for item in then}
    for item in now:
        if known.get(item[:2]) != item:
            return f"{item[0]}.{item[1]}"
    return "a function of cnnlib.testing"


def verify_environment(snapshot: tuple | None = None) -> None:
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
    changed = _changed_since_loaded()
    if changed is not None:
        raise _refuse(f"{changed} has been replaced")
    if sys.setprofile is not _sys_setprofile or sys.getprofile is not _sys_getprofile:
        raise _refuse("sys.setprofile or sys.getprofile has been replaced")
    if (threading.__class__ is not _MODULE
            or not _is_genuine(threading.__dict__.get("setprofile"), "setprofile", threading.__file__)):
        raise _refuse("threading.setprofile has been replaced")

