"""cnnlib's import graph: every public module imports on its own, no cycle, no private name
crosses modules, and the geometry formulas depend on nothing else in cnnlib."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlib
import grading

ROOT = Path(cnnlib.__file__).parent.parent


def modules(package) -> list[str]:
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        names.append(info.name)
    return sorted(names)


def public(names: list[str]) -> list[str]:
    return [n for n in names if not any(part.startswith("_") for part in n.split(".")[1:])]


ALL = modules(cnnlib) + modules(grading)


# Importing nbgrader, torch and friends takes seconds; so a parent interpreter imports every
# third-party module the project uses (found by a first interpreter that imports the whole project)
# and then forks one child per project module: each child has imported nothing of the project.
FORK_EACH = """
import os, sys, traceback
third_party, names = sys.argv[1].split(","), sys.argv[2].split(",")
for module in third_party:
    try:
        __import__(module)
    except Exception:
        pass
assert not [m for m in sys.modules if m.split(".")[0] in ("cnnlib", "grading")], "project preloaded"
for name in names:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            sys.stderr.write(f"import {name} failed:\\n{traceback.format_exc()}\\n")
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(name, "ok" if status == 0 else "FAILED", flush=True)
"""

LIST_THIRD_PARTY = """
import sys
for name in sys.argv[1].split(","):
    __import__(name)
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] not in ("cnnlib", "grading")
                      and not m.startswith("_"))))
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_every_public_module_imports_on_its_own():
    names = public(ALL)
    assert "cnnlib.summary" in names and "cnnlib.geometry" in names and "grading.run" in names
    listed = run_python(LIST_THIRD_PARTY, ",".join(names))
    assert listed.returncode == 0, listed.stderr[-3000:]
    run = run_python(FORK_EACH, listed.stdout.strip(), ",".join(names))
    assert run.returncode == 0, run.stderr[-3000:]
    results = dict(line.split() for line in run.stdout.splitlines())
    assert sorted(results) == sorted(names)
    assert all(v == "ok" for v in results.values()), run.stderr[-5000:]


def test_summary_imports_first():
    """The issue's reproducer: cnnlib.summary imported before anything else."""
    code = "from cnnlib.summary import summary; from cnnlib.shapes import conv_output_size; print('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "ok", run.stderr


def source_path(name: str) -> Path:
    base = ROOT / name.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def resolve(name: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names, for relative imports too."""
    if not node.level:
        return node.module or ""
    package = name if source_path(name).name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(name: str) -> list[tuple[str, str, int, bool]]:
    """(module, imported name or "", line, at top level) for every import in ``name``'s source."""
    tree = ast.parse(source_path(name).read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, node)
            found += [(base, alias.name, node.lineno, id(node) in top) for alias in node.names]
    return found


CNNLIB = [n for n in modules(cnnlib) if not n.startswith("cnnlib.testing")]


def cnnlib_edges(name: str) -> set[str]:
    """The cnnlib modules ``name`` imports, wherever in the file (a function-level import hides a
    cycle but does not remove it)."""
    edges = set()
    for module, imported, _, _ in imports_of(name):
        if module.startswith("cnnlib"):
            target = f"{module}.{imported}" if f"{module}.{imported}" in CNNLIB else module
            edges.add(target)
    return edges - {name}


def test_no_import_cycle_in_cnnlib():
    graph = {name: cnnlib_edges(name) for name in CNNLIB}
    # A package's __init__ importing its own submodules is not a cycle: drop package -> child edges
    # and count a child importing its parent package as importing the parent's __init__.
    for name, edges in graph.items():
        graph[name] = {e for e in edges if not e.startswith(name + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in CNNLIB:
        if name not in state:
            visit(name, [name])


def test_no_private_name_crosses_modules():
    crossing = []
    for name in CNNLIB:
        for module, imported, line, _ in imports_of(name):
            if module.startswith("cnnlib") and imported.startswith("_") and imported != "__future__":
                if f"{module}.{imported}" not in CNNLIB:  # a private module is the package's own
                    crossing.append(f"{source_path(name).relative_to(ROOT)}:{line}: {module}.{imported}")
    assert not crossing, "private names imported from another module:\n" + "\n".join(crossing)


def test_geometry_imports_nothing_from_cnnlib():
    assert cnnlib_edges("cnnlib.geometry") == set()
    assert all(not m.startswith(("cnnlib", ".")) for m, *_ in imports_of("cnnlib.geometry"))
