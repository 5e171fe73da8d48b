"""The student's install: ``pip install .`` into a fresh virtual environment, nothing else.

No torch, no jupyter-book, no nbgrader come with it. The environment (plus ipykernel, which a
JupyterHub image provides) runs every released notebook's setup cells, and every solved notebook
from top to bottom, test cells included, as a student's kernel would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grading import corpus

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "exercises").iterdir() if (p / f"{p.name}.ipynb").is_file())
SLOW = {"06_case_study"}  # trains LeNet-5 for minutes: its setup cells run, its solution in test_exercises
pytestmark = pytest.mark.slow


def pip(python: Path, *args: str) -> str:
    done = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """(python, kernel folder, seconds the install took) of a venv with only the student's install."""
    tmp = tmp_path_factory.mktemp("student")
    source = tmp / "source"  # a copy, so that the build leaves nothing in the repository
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "cnnlib", source / "cnnlib", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=300)
    python = tmp / "venv" / "bin" / "python"
    start = time.perf_counter()
    log = pip(python, str(source))
    seconds = time.perf_counter() - start
    print(f"\nstudent install (pip install .): {seconds:.0f} s")
    assert "torch" not in log.lower(), "the student's install must not bring torch"
    pip(python, "ipykernel")
    kernels = tmp / "jupyter" / "kernels" / "student"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student", "language": "python"}))
    return python, tmp / "jupyter", seconds


def installed(python: Path) -> set[str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    return {p["name"].lower() for p in json.loads(out.stdout)}


def test_the_student_install_brings_what_cnnlib_needs_and_nothing_heavy(student):
    python, _, _ = student
    names = installed(python)
    assert {"cnnlib", "numpy", "matplotlib", "scikit-learn"} <= names
    assert not names & {"torch", "jupyter-book", "nbgrader", "playwright", "scipy-stubs"}
    probe = "import cnnlib.functional, cnnlib.nn, cnnlib.optim, cnnlib.testing, cnnlib.data, cnnlib.train"
    assert subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0


def execute(notebook, jupyter: Path, folder: Path, monkeypatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("MPLBACKEND", "agg")
    NotebookClient(notebook, kernel_name="student", timeout=600,
                   resources={"metadata": {"path": str(folder)}}).execute()


def setup_cells(notebook):
    """The code cells before the first cell the student answers or that is graded."""
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            break
        cells.append(cell)
    return cells


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_setup_cells_and_solved_notebook_run(student, assignment, tmp_path, monkeypatch):
    _, jupyter, _ = student
    released = corpus.released(assignment)
    setup = setup_cells(released)
    assert any(c.cell_type == "code" for c in setup), "a released notebook starts with its setup cells"
    released.cells = setup
    execute(released, jupyter, tmp_path, monkeypatch)
    if assignment not in SLOW:
        solved = corpus.filled(assignment)
        execute(solved, jupyter, tmp_path, monkeypatch)
        errors = [o for c in solved.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
    nbformat.validate(released)
