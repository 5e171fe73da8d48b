"""A data-only wire format between the grader and a student's kernel (no pickle, no code).

The grader sends a request (arguments, cnnlib objects such as a model and its optimiser) and
the kernel answers with the student's result; neither side can make the other run code by
what it sends. ``encode(value) -> bytes`` and ``decode(data) -> value`` handle:

- ``None``, ``bool``, ``int``, ``float``, ``str``; tuples, lists, dicts (any decodable keys);
- NumPy arrays of numbers or booleans (as ``.npy`` blobs read with ``allow_pickle=False``), NumPy
  number scalars and dtypes; long tuples of floats (the checker's frozen tensors) as blobs too;
- instances of classes defined in ``cnnlib.nn`` or ``cnnlib.optim``: their ``__dict__``, rebuilt
  with ``cls.__new__`` (no ``__init__`` runs); an attribute may not shadow a method;
- anything else becomes an :class:`Opaque` stand-in that only knows its type's name, so a
  value that claims to equal everything, an array subclass or a function arrives as what it is
  not: a value no check accepts.

Shared references and cycles survive (the optimiser keeps pointing at the model's parameters).
This file is also sent, as text, to the kernel (see :mod:`grading.remote`), so it imports only
the standard library and NumPy.
"""

from __future__ import annotations

import io
import json
import math
import struct
import sys

import numpy as np

MAGIC = b"CNNG1"
ALLOWED_MODULES = ("cnnlib.nn", "cnnlib.optim")
MAX_DEPTH = 64
MAX_NODES = 1_000_000
FLOAT_RUN = 64  # tuples of at least this many floats travel as one float64 blob
MAX_HEADER_BYTES = 16 << 20  # the JSON tree (arrays travel as blobs after it)
MAX_DECODED_BYTES = 256 << 20  # what the decoded arrays and float tuples may take in memory, together
FLOAT_OBJECT_BYTES = 32  # a Python float in a tuple: the object and the pointer to it


class WireError(ValueError):
    """The data is not a valid message (truncated, too deep, or naming a class it may not)."""


class Opaque:
    """A value that could not travel: only its type's name is known."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


_OPAQUE_CLASSES: dict[str, type] = {}


def opaque(type_name: str) -> Opaque:
    """An :class:`Opaque` whose class carries the remote type's name (as error messages show it)."""
    name = type_name.rpartition(".")[2]
    if not name.isidentifier():
        name = "Unknown"
    kind = _OPAQUE_CLASSES.get(name)
    if kind is None:
        kind = _OPAQUE_CLASSES[name] = type(name, (Opaque,), {"__module__": "remote"})
    return kind(type_name)


def _allowed_class(path: str):
    """The class ``module.Name`` when it is a cnnlib.nn / cnnlib.optim class, else None."""
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith(ALLOWED_MODULES):
        return None
    module = sys.modules.get(module_name)
    cls = getattr(module, name, None) if module is not None else None
    if cls.__class__ is not type or cls.__module__ != module_name:
        return None
    return cls


class _Encoder:
    def __init__(self):
        self.blobs: list[bytes] = []
        self.memo: dict[int, int] = {}
        self.keep: list = []  # objects memoised by id stay alive while encoding

    def blob(self, array: np.ndarray) -> int:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        self.blobs.append(buffer.getvalue())
        return len(self.blobs) - 1

    def __call__(self, value, depth: int = 0):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        kind = value.__class__
        if value is None or kind in (bool, int, float, str):
            return {"t": "float", "v": repr(value)} if kind is float and not math.isfinite(value) else value
        if kind is np.ndarray:
            if value.dtype.kind not in "biuf":
                return {"t": "opaque", "type": f"numpy.ndarray[{value.dtype}]"}
            return {"t": "array", "i": self.blob(value)}
        if isinstance(value, np.generic) and kind.__module__ == "numpy":
            if value.dtype.kind not in "biuf":
                return {"t": "opaque", "type": f"numpy.{kind.__name__}"}
            return {"t": "scalar", "dtype": value.dtype.str, "v": self(value.item(), depth + 1)}
        if isinstance(value, np.dtype):
            if value.kind not in "biuf":
                return {"t": "opaque", "type": "numpy.dtype"}
            return {"t": "dtype", "v": value.str}
        if kind in (tuple, list):
            if (kind is tuple and len(value) >= FLOAT_RUN
                    and all(v.__class__ is float for v in value)):
                return {"t": "floats", "i": self.blob(np.array(value, dtype=np.float64))}
            return {"t": kind.__name__, "v": [self(v, depth + 1) for v in value]}
        if kind is dict:
            return {"t": "dict", "v": [[self(k, depth + 1), self(v, depth + 1)] for k, v in value.items()]}
        if kind.__module__.startswith(ALLOWED_MODULES) and hasattr(value, "__dict__"):
            if id(value) in self.memo:
                return {"t": "ref", "i": self.memo[id(value)]}
            self.memo[id(value)] = index = len(self.memo)
            self.keep.append(value)
            state = {k: self(v, depth + 1) for k, v in vars(value).items() if k.__class__ is str}
            return {"t": "object", "cls": f"{kind.__module__}.{kind.__name__}", "i": index, "v": state}
        return {"t": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}"}


def encode(value) -> bytes:
    """``value`` as bytes: a JSON tree, then the arrays as ``.npy`` blobs."""
    encoder = _Encoder()
    tree = encoder(value)
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in encoder.blobs]}).encode()
    return MAGIC + struct.pack("<Q", len(header)) + header + b"".join(encoder.blobs)


class _Decoder:
    def __init__(self, blobs: list[bytes]):
        self.blobs = blobs
        self.objects: dict[int, object] = {}
        self.arrays: dict[int, np.ndarray] = {}
        self.nodes = 0
        self.bytes = 0

    def spend(self, size: int) -> None:
        """Count ``size`` bytes of decoded values against :data:`MAX_DECODED_BYTES`."""
        self.bytes += size
        if self.bytes > MAX_DECODED_BYTES:
            raise WireError(f"the message expands to more than {MAX_DECODED_BYTES} bytes")

    def array(self, index) -> np.ndarray:
        """Blob ``index`` as an array; a blob named twice is one array (its bytes count once)."""
        if index.__class__ is not int or not 0 <= index < len(self.blobs):
            raise WireError("bad array reference")
        if index in self.arrays:
            return self.arrays[index]
        blob = io.BytesIO(self.blobs[index])
        formats = np.lib.format
        version = formats.read_magic(blob)
        read = formats.read_array_header_1_0 if version == (1, 0) else formats.read_array_header_2_0
        shape, _, dtype = read(blob)
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise WireError("arrays must hold numbers")
        self.spend(int(np.prod(shape, dtype=object)) * dtype.itemsize)
        blob.seek(0)
        array = np.load(blob, allow_pickle=False)
        if array.__class__ is not np.ndarray or array.dtype.kind not in "biuf":
            raise WireError("arrays must hold numbers")
        self.arrays[index] = array
        return array

    def __call__(self, node, depth: int = 0):
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise WireError("message nested too deeply or too large")
        if node is None or node.__class__ in (bool, int, float, str):
            return node
        if node.__class__ is not dict:
            raise WireError(f"unexpected {node.__class__.__name__} in the message")
        kind = node.get("t")
        if kind == "float":
            if node.get("v") not in ("nan", "inf", "-inf"):
                raise WireError("bad float")
            return float(node["v"])
        if kind == "array":
            return self.array(node.get("i"))
        if kind == "floats":
            values = self.array(node.get("i"))
            self.spend(FLOAT_OBJECT_BYTES * values.size)
            return tuple(values.astype(np.float64).reshape(-1).tolist())
        if kind == "scalar":
            dtype = np.dtype(str(node.get("dtype")))
            value = self(node.get("v"), depth + 1)
            if dtype.kind not in "biuf" or value.__class__ not in (bool, int, float):
                raise WireError("bad scalar")
            return dtype.type(value)
        if kind == "dtype":
            dtype = np.dtype(str(node.get("v")))
            if dtype.kind not in "biuf":
                raise WireError("bad dtype")
            return dtype
        if kind in ("tuple", "list"):
            items = [self(v, depth + 1) for v in self.items(node)]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            pairs = self.items(node)
            if not all(p.__class__ is list and len(p) == 2 for p in pairs):
                raise WireError("bad dict")
            result = {}
            for key, value in pairs:
                key = self(key, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise WireError("unhashable dict key") from None
                result[key] = self(value, depth + 1)
            return result
        if kind == "ref":
            if node.get("i") not in self.objects:
                raise WireError("bad object reference")
            return self.objects[node["i"]]
        if kind == "object":
            return self.instance(node, depth)
        if kind == "opaque":
            return opaque(str(node.get("type"))[:200])
        raise WireError(f"unknown node type {kind!r}")

    def items(self, node) -> list:
        items = node.get("v")
        if items.__class__ is not list:
            raise WireError("bad sequence")
        return items

    def instance(self, node, depth: int):
        cls = _allowed_class(str(node.get("cls")))
        index, state = node.get("i"), node.get("v")
        if cls is None:
            raise WireError(f"the class {node.get('cls')!r} may not travel (only cnnlib.nn and cnnlib.optim)")
        if index.__class__ is not int or index in self.objects or state.__class__ is not dict:
            raise WireError("bad object")
        value = cls.__new__(cls)
        self.objects[index] = value
        for key, item in state.items():
            if key.__class__ is not str or key.startswith("__") or callable(getattr(cls, key, None)):
                raise WireError(f"{cls.__name__}.{key} may not be set: it would shadow a method")
            value.__dict__[key] = self(item, depth + 1)
        return value


def decode(data: bytes):
    """The value :func:`encode` wrote; :class:`WireError` for anything else.

    The caller caps the message's size; the header and what the arrays expand to are capped here
    (a blob named many times is decoded once and shared).
    """
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise WireError("not a grading message")
    (length,) = struct.unpack("<Q", data[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if length > MAX_HEADER_BYTES:
        raise WireError(f"the message's header is longer than {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(data[start:start + length])
    except ValueError as error:
        raise WireError(f"bad header: {error}") from None
    sizes = header.get("sizes") if header.__class__ is dict else None
    if sizes.__class__ is not list or not all(s.__class__ is int and s >= 0 for s in sizes):
        raise WireError("bad header")
    blobs, offset = [], start + length
    for size in sizes:
        blobs.append(data[offset:offset + size])
        offset += size
    if offset != len(data):
        raise WireError("message length does not match its header")
    return _Decoder(blobs)(header.get("tree"))
