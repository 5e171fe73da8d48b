"""``make grade`` on a corpus of right, wrong, broken and hostile submissions.

One grading run (two workers, the sandbox, a 25 s budget per notebook) over ~20 submissions of
01_convolution, in a fresh course folder (no gradebook yet), then for each case: the score, the
message for the student, and, for the whole run: clean submissions keep full marks, the
gradebook has one submission per student, ``solutions/`` is unchanged, nothing was written
outside the scratch folders, no process is left behind, and no hidden test line appears in any
feedback file. Corr2d is worth 7 points, convolve2d 4, conv_output_size 5: 16 in all.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from grading import corpus
from grading.execute import hidden_lines
from grading.intake import remove_tree
from grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
A = "01_convolution"
FULL, CORR2D, CONVOLVE2D = 16.0, 7.0, 4.0


@dataclass(frozen=True)
class Case:
    name: str
    score: float
    says: str = ""  # in the student's messages (grading_results.json / grading_messages.html)
    output: str = ""  # in the autograded notebook


def escape_cell(course: Path) -> str:
    probes = {
        "read solutions": f"open({str(ROOT / 'solutions' / A / (A + '.ipynb'))!r}).read()",
        "read course solutions": f"open({str(course / 'solutions' / A / (A + '.ipynb'))!r}).read()",
        "read gradebook": f"open({str(course / 'gradebook.db')!r}, 'rb').read()",
        "list students": f"os.listdir({str(course / 'submitted')!r})",
        "write repo": f"open({str(ROOT / 'PWNED_BY_STUDENT')!r}, 'w').write('x')",
        "write course": f"open({str(course / 'PWNED_BY_STUDENT')!r}, 'w').write('x')",
        "network": "socket.create_connection(('1.1.1.1', 53), timeout=3)",
        "read another student": f"open({str(course / 'submitted' / 'good_1' / A / (A + '.ipynb'))!r}).read()",
        "read the exchange": "os.listdir('/srv')",
        "read host accounts": "open('/etc/shadow').read()",
        "write core_pattern": "open('/proc/sys/kernel/core_pattern', 'w')",
    }
    lines = ["import os, socket", "def _attempt(what, action):", "    try:", "        action()",
             "        print(what, 'LEAK')", "    except Exception as error:",
             "        print(what, 'blocked', type(error).__name__)"]
    lines += [f"_attempt({what!r}, lambda: {code})" for what, code in probes.items()]
    lines.append("open('scratch_file.txt', 'w').write('fine')  # the scratch folder is writable")
    return "\n".join(lines) + "\n\n"


FORK = """import os, time
_children = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            time.sleep(900)
            os._exit(0)
        _children += 1
except OSError as error:
    print('fork refused after', _children, 'children:', type(error).__name__)

"""
PRINT_SOURCES = ("get_ipython().input_transformers_cleanup.append(\n"
                 "    lambda lines: (print(''.join(lines)), lines)[1])\n\n")
REWRITE_TESTS = ("get_ipython().input_transformers_cleanup.append(\n"
                 "    lambda lines: ['pass\\n'] if 'grader.check' in ''.join(lines) else lines)\n\n")
BLANK_EVERYTHING = ("get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n\n")
EVERYTHING = """class Everything:
    shape = property(lambda self: (3, 3))
    dtype = property(lambda self: np.dtype(float))
    __eq__ = lambda self, other: True
    __array__ = lambda self, *a, **k: np.zeros((3, 3))
    __getattr__ = lambda self, name: (lambda *a, **k: True)

def corr2d(x, k):
    return Everything()
"""
FILL_SCRATCH = """_written = 0
try:
    for _i in range(100):
        with open(f'fill_{_i}.bin', 'wb') as _f:
            _f.write(b'x' * (32 << 20))
        _written += 32
except OSError as error:
    print('scratch full after', _written, 'MB:', error.strerror)

"""
BREAK_LOOP = """import glob, os
from ipykernel.connect import get_connection_file
for _fifo in glob.glob(os.path.join(os.path.dirname(get_connection_file()), 'grading-*', 're*s')):
    os.unlink(_fifo)  # the grader's FIFOs (requests, replies): its loop in this kernel cannot start

"""
FILL_RUNTIME = """import os
from ipykernel.connect import get_connection_file
_runtime, _written = os.path.dirname(get_connection_file()), 0
try:
    while _written < 2048:
        with open(f'{_runtime}/fill_{_written}.bin', 'wb') as _f:
            _f.write(b'x' * (1 << 20))
        _written += 1
except OSError as error:
    print('runtime folder full after', _written, 'MB:', error.strerror)
for _name in os.listdir(_runtime):
    if _name.startswith('fill_'):
        os.unlink(os.path.join(_runtime, _name))

"""
DEEP_TREE = """import os
_fd = os.open('.', os.O_RDONLY)
for _ in range(3000):
    os.mkdir('d', dir_fd=_fd)
    _next = os.open('d', os.O_RDONLY, dir_fd=_fd)
    os.close(_fd)
    _fd = _next
os.close(_fd)

"""
FLOOD_DISPLAYS = """from IPython.display import display
_handles = [display('x', display_id=True) for _ in range(300)]
for _handle in _handles:
    _handle.update('y' * 20000)

"""
RECORDS_INPUTS = """import base64
_seen = []
def corr2d(x, k):
    _seen.append(base64.b64encode(np.asarray(x, dtype=float).tobytes()).decode())
    raise ValueError('LEAK ' + ' '.join(reversed(_seen)))  # the newest first: messages get cut
"""
HOSTILE_HTML = """from IPython.display import HTML, SVG, Javascript, display
display(HTML("<script>window.pwned = 'html output'</script><img src=x onerror=\\"window.pwned='img'\\">"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"window.pwned='svg'\\"/>"))
display(Javascript("window.pwned = 'javascript output'"))

"""
HOSTILE_MARKDOWN = ("<script>window.pwned = 'markdown'</script>\n"
                    "<img src=x onerror=\"window.pwned='md img'\">\n"
                    "[click](javascript:window.pwned='link') [ref]\n\n"
                    "[ref]: javascript:window.pwned='reference'\n")
LOOPS_ON_1X1 = """def corr2d(x, k):
    while k.shape == (1, 1):  # only a hidden test has a 1x1 kernel
        pass
    h, w = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    return np.array([[np.sum(x[i:i + k.shape[0], j:j + k.shape[1]] * k) for j in range(w)]
                     for i in range(h)])
"""
PATCH_CHECKER = ("from cnnlib.testing.checker import Checker\n"
                 "Checker.check = lambda self, *args, **kwargs: None\n\n")
THREAD_ANSWERS = """import threading, queue
import cnnlib.functional as _F
_qi, _qo = queue.Queue(), queue.Queue()
def _worker():  # started in this cell, long before any graded call: outside the call monitor
    while True:
        fn, args = _qi.get()
        _qo.put(fn(*args))
threading.Thread(target=_worker, daemon=True).start()
def corr2d(x, k):
    _qi.put((lambda x, k: _F.conv2d(x[None, None], k[None, None])[0, 0], (x, k)))
    return _qo.get()
"""
WARN = "import warnings\nwarnings.warn('a warning from correct code', DeprecationWarning)\n" \
       "warnings.warn('another one', UserWarning)\n\n"


def build(course: Path) -> list[Case]:
    """Write every case's submission into ``course/submitted``; the expectations."""
    sub = course / "submitted"
    put = lambda name, nb, notebook=A: corpus.write(nb, sub / name / A, notebook)  # noqa: E731
    flip = corpus.solved(A)["convolve2d"].replace("corr2d(x, k[::-1, ::-1])", "corr2d(x, k)")
    put("good_1", corpus.filled(A))
    put("partial_no_flip", corpus.filled(A, {"convolve2d": flip}))
    corpus.write(corpus.filled(A), sub / "partial_no_flip" / A, f"{A}-Copy1")  # the fixed work, not graded
    put("blank", corpus.released(A))
    put("kernel_dies", corpus.filled(A, {"convolve2d": "import os\nos._exit(1)\n"}))
    kill = "import os, signal\nos.kill(-1, signal.SIGKILL)\n"
    put("kill_everything", corpus.filled(A, {"convolve2d": kill}))
    put("infinite_loop", corpus.filled(A, {"convolve2d": "while True:\n    pass\n"}))
    put("memory_hog", corpus.filled(A, prepend={"convolve2d": "_hog = bytearray(8 << 30)\n\n"}))
    put("fork_bomb", corpus.filled(A, prepend={"corr2d": FORK}))
    # a thread makes every call fork a child of its own, and the bomb has left no room for one
    sleeper = ("import threading, time\n"
               "threading.Thread(target=time.sleep, args=(900,), daemon=True).start()\n")
    put("fork_bomb_with_a_thread", corpus.filled(A, prepend={"corr2d": sleeper + FORK}))
    put("background_process", corpus.filled(A, prepend={"corr2d": "import subprocess\n"
                                                        "_p = subprocess.Popen(['sleep', '900'])\n\n"}))
    flood = "for _ in range(3000):\n    print('x' * 10000)\n\n"
    put("output_flood", corpus.filled(A, prepend={"corr2d": flood}))
    (sub / "bad_json" / A).mkdir(parents=True)
    (sub / "bad_json" / A / f"{A}.ipynb").write_text('{"cells": [ this is not json')
    (sub / "missing_notebook" / A).mkdir(parents=True)
    (sub / "missing_notebook" / A / "notes.txt").write_text("I forgot the notebook")
    put("renamed_notebook", corpus.filled(A), notebook="my_convolution")
    put("duplicated_test_cell", corpus.duplicated(corpus.filled(A), "test_corr2d_shape"))
    put("deleted_test_cell", corpus.without(corpus.filled(A), "test_corr2d_hidden"))
    put("numpy_patched", corpus.filled(A, prepend={"corr2d": "np.allclose = lambda *a, **k: True\n\n"}))
    put("escape_attempts", corpus.filled(A, prepend={"corr2d": escape_cell(course)}))
    put("warnings", corpus.filled(A, prepend={"corr2d": WARN}))
    put("prints_test_sources", corpus.filled(A, prepend={"corr2d": PRINT_SOURCES}))
    put("rewrites_tests", corpus.filled(A, {"corr2d": "def corr2d(x, k):\n    return x\n"},
                                        prepend={"corr2d": REWRITE_TESTS}))
    put("blanks_everything", corpus.filled(A, prepend={"corr2d": BLANK_EVERYTHING}))
    put("equal_to_everything", corpus.filled(A, {"corr2d": EVERYTHING}))
    put("fills_scratch", corpus.filled(A, prepend={"corr2d": FILL_SCRATCH}))
    shadows = corpus.filled(A)
    put("shadows_modules", shadows)
    for name in ("numpy.py", "cnnlib.py", "sitecustomize.py", "ipython_kernel_config.py"):
        (sub / "shadows_modules" / A / name).write_text("raise SystemExit(1)\n")
    (sub / "shadows_modules" / A / "ipython_config.py").write_text("raise SystemExit(1)\n")
    (sub / "shadows_modules" / A / "ipykernel_launcher.py").write_text("import sys\nsys.exit(3)\n")
    (sub / "linked_folder").mkdir()
    (sub / "linked_folder" / A).symlink_to(course / "solutions" / A)
    put("sparse_giant", corpus.filled(A))
    with open(sub / "sparse_giant" / A / "weights.bin", "wb") as handle:
        handle.truncate(1 << 30)
    put("deep_tree", corpus.filled(A, prepend={"corr2d": DEEP_TREE}))
    fd = os.open(sub / "deep_tree" / A, os.O_RDONLY)
    os.mkdir("junk", dir_fd=fd)
    for index in range(3000):
        inner = os.open("junk" if index == 0 else "d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
        os.mkdir("d", dir_fd=fd)
    os.close(fd)
    (sub / "latin1_notebook" / A).mkdir(parents=True)
    latin1 = os.fsdecode(os.fsencode(sub / "latin1_notebook" / A) + b"/L\x94sung.ipynb")  # what unzip makes
    nbformat.write(corpus.filled(A), latin1)
    put("fills_runtime", corpus.filled(A, prepend={"corr2d": FILL_RUNTIME}))
    put("breaks_the_loop", corpus.filled(A, prepend={"corr2d": BREAK_LOOP}))
    flood = corpus.filled(A, prepend={"corr2d": FLOOD_DISPLAYS})
    flood.cells.append(nbformat.v4.new_code_cell("raise ValueError('e' * 3_000_000)"))
    put("floods_displays_and_errors", flood)
    leaks = corpus.filled(A, {"corr2d": RECORDS_INPUTS})
    leaks.cells.append(nbformat.v4.new_code_cell("print('SEEN', ' '.join(_seen))"))
    put("leaks_hidden_inputs", leaks)
    hostile = corpus.filled(A, prepend={"corr2d": HOSTILE_HTML})
    hostile.cells.append(nbformat.v4.new_markdown_cell(HOSTILE_MARKDOWN))
    put("hostile_html", hostile)
    (sub / "hostile_html" / A / "derivation.html").write_text("<script>window.pwned = 'file'</script>")
    foreign = corpus.filled(A)  # a graded cell pasted from another notebook, claiming 100 points
    foreign.cells.append(nbformat.v4.new_code_cell("print('bonus')", metadata={"nbgrader": {
        "grade": True, "grade_id": "bonus_points", "points": 100, "locked": False, "solution": False,
        "schema_version": 3}}))
    put("copied_foreign_cell", foreign)
    marked = corpus.filled(A)  # a solution cell marked as graded, worth 50
    corpus.cells_with(marked, "corr2d")[0].metadata.nbgrader.update(grade=True, points=50)
    put("solution_marked_graded", marked)
    put("patches_checker", corpus.filled(A, prepend={"corr2d": PATCH_CHECKER}))
    malformed = corpus.filled(A)  # grading metadata that is not a mapping, a grade id that is not text
    malformed.cells.append(nbformat.v4.new_code_cell("_a = 1", metadata={"nbgrader": ["not", "a", "map"]}))
    malformed.cells.append(nbformat.v4.new_code_cell("_b = 2", metadata={"nbgrader": {
        "grade": True, "grade_id": ["test_corr2d_shape"], "points": 9}}))
    put("malformed_metadata", malformed)
    old_schema = corpus.filled(A)  # a test cell's metadata from an old nbgrader, with a key of its own
    test_cell = corpus.cells_with(old_schema, "test_corr2d_shape")[0]
    test_cell.metadata.nbgrader.update(schema_version=1, mine=True)
    put("old_schema_test_cell", old_schema)
    hooked = corpus.duplicated(corpus.filled(A), "test_corr2d_shape")  # the copy of a test cell, rewritten
    corpus.cells_with(hooked, "test_corr2d_shape")[1].source = "import sys\nsys.settrace(None)\n"
    put("hook_in_copied_test_cell", hooked)
    put("loops_on_hidden_input", corpus.filled(A, {"corr2d": LOOPS_ON_1X1}))
    put("answers_from_an_earlier_thread", corpus.filled(A, {"corr2d": THREAD_ANSWERS}))
    (sub / "good_1" / "99_no_such_assignment").mkdir()
    return [
        Case("good_1", FULL),
        Case("partial_no_flip", FULL - CONVOLVE2D, f"{A}-Copy1.ipynb is not graded: only {A}.ipynb is"),
        Case("blank", 0.0, output="is not implemented yet"),
        Case("kernel_dies", CORR2D, "the kernel died while running this cell"),
        # os.kill(-1, SIGKILL) reaches nothing: the kernel is alone in its PID namespace
        Case("kill_everything", FULL - CONVOLVE2D, output="No such process"),
        Case("infinite_loop", CORR2D, "time limit"),
        Case("memory_hog", FULL - CONVOLVE2D, output="MemoryError"),
        Case("fork_bomb", FULL, output="fork refused after"),
        Case("fork_bomb_with_a_thread", FULL, output="fork refused after"),
        Case("background_process", FULL),
        Case("output_flood", FULL, output="output truncated"),
        Case("bad_json", 0.0, "could not be read as a notebook"),
        Case("missing_notebook", 0.0, f"{A}.ipynb was not submitted"),
        Case("renamed_notebook", 0.0, "found my_convolution.ipynb"),
        Case("duplicated_test_cell", FULL, "'test_corr2d_shape' appears 2 times"),
        Case("deleted_test_cell", FULL, "'test_corr2d_hidden' was deleted; the original was put back"),
        Case("numpy_patched", 0.0, output="np.allclose is not NumPy's own function"),
        Case("escape_attempts", FULL, output="network blocked"),
        Case("warnings", FULL),
        Case("prints_test_sources", FULL),
        # the test cells run outside the kernel: rewriting them earns exactly what the code earns
        Case("rewrites_tests", FULL - CORR2D - CONVOLVE2D, "flagged for the instructor's review",
             output="expected shape (3, 3), got shape (4, 4)"),
        Case("blanks_everything", 0.0, output="got no answer"),
        Case("equal_to_everything", FULL - CORR2D - CONVOLVE2D,
             output="should be a NumPy array, got Everything"),
        Case("fills_scratch", FULL, output="No space left on device"),
        # files next to the notebook replace nothing the kernel or the checker imports
        Case("shadows_modules", FULL),
        Case("sparse_giant", FULL, "weights.bin takes 1073741824 bytes"),
        Case("deep_tree", FULL, "junk/ is a folder"),
        Case("latin1_notebook", 0.0, "is not valid UTF-8"),
        Case("fills_runtime", FULL, output="runtime folder full after"),
        # every call ends at once with no answer and what the kernel said (no call waits out its time)
        Case("breaks_the_loop", 0.0, output="The kernel said: FileNotFoundError"),
        Case("floods_displays_and_errors", FULL, output="output truncated"),
        Case("leaks_hidden_inputs", FULL - CORR2D - CONVOLVE2D, output="LEAK"),
        Case("hostile_html", FULL),
        # nbgrader failed on these whole notebooks (0 points); the cells now run as the source has them
        Case("copied_foreign_cell", FULL, "that this notebook does not have (copied from another notebook?)"),
        Case("solution_marked_graded", FULL, "the grading metadata of cell 'corr2d' was changed"),
        # the checker's methods are checked before every test: each refuses
        Case("patches_checker", 0.0, "flagged for the instructor's review", output="has been replaced"),
        Case("malformed_metadata", FULL, "its grading metadata is malformed; it ran ungraded"),
        Case("old_schema_test_cell", FULL),
        Case("hook_in_copied_test_cell", FULL, "flagged for the instructor's review"),
        # the hidden tests after the one that ran out of time are scored in a second run
        Case("loops_on_hidden_input", FULL - 2.0, "time limit"),
        # each call runs in a child forked for it, where the thread of an earlier cell does not exist
        Case("answers_from_an_earlier_thread", 0.0, "time limit"),
    ]


def outputs_of(path: Path) -> str:
    notebook = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))


def tree_hash(folder: Path, depth: int = 64) -> str:
    """A digest of the names and contents under ``folder`` (a submission may nest 3000 deep: names
    below ``depth`` levels count, their contents do not)."""
    digest, stack = hashlib.sha256(), [(folder, 0)]
    while stack:
        current, level = stack.pop()
        for entry in sorted(os.scandir(current), key=lambda e: e.name):
            digest.update(os.fsencode(os.path.relpath(entry.path, folder)))
            if entry.is_dir(follow_symlinks=False) and level < depth:
                stack.append((Path(entry.path), level + 1))
            elif entry.is_file(follow_symlinks=False):
                digest.update(Path(entry.path).read_bytes())
    return digest.hexdigest()


def our_processes(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if marker in line and "ps -eo" not in line]


def new_course(tmp_path_factory, assignment: str) -> Path:
    """A course folder with the configuration and one assignment's solutions, no gradebook yet."""
    course = tmp_path_factory.mktemp(f"grade{assignment[:2]}") / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    return course


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from grading.run import grade

    course = new_course(tmp_path_factory, A)
    cases = build(course)
    before = {"solutions": tree_hash(course / "solutions"), "repo_solutions": tree_hash(ROOT / "solutions"),
              "submitted": tree_hash(course / "submitted")}
    try:
        results = grade(course, workers=2, limits=Limits(notebook_seconds=25), progress=False)
        yield course, cases, {(r.student, r.assignment): r for r in results}, before
    finally:  # pytest's own clean-up of old temporary folders recurses: no 3000-deep tree may stay
        remove_tree(course / "submitted" / "deep_tree")


def test_a_linked_submission_folder_is_never_graded(run):
    """``submitted/linked_folder/01_convolution`` links to the solutions: refused, never read."""
    course, _, results, _ = run
    assert ("linked_folder", A) not in results or results[("linked_folder", A)].grades == {}
    assert scores_from_csv(course).get("linked_folder", 0.0) == 0.0
    assert not (course / "autograded" / "linked_folder").exists()
    solution = (ROOT / "solutions" / A / f"{A}.ipynb").read_text()
    marker = next(line for line in solution.splitlines() if "BEGIN SOLUTION" in line)
    for page in (course / "feedback").glob("linked_folder/**/*"):
        assert not page.is_file() or marker not in page.read_text(errors="replace")


def test_run_grades_every_submission_once(run):
    course, cases, results, _ = run
    students = {c.name for c in cases}
    assert {s for s, _ in results} == students
    assert all(not r.failed for r in results.values()), [r.messages for r in results.values() if r.failed]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submissions = gradebook.find_assignment(A).submissions
        assert sorted(s.student.id for s in submissions) == sorted(students)
        for submission in submissions:
            assert len(submission.notebooks) == 1 and len(submission.notebooks[0].grades) == 13


def scores_from_csv(course: Path) -> dict[str, float]:
    with open(course / "grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["assignment"] for r in rows} == {A}
    assert len(rows) == len({r["student_id"] for r in rows})
    return {r["student_id"]: float(r["score"]) for r in rows}


def messages_of(course: Path, student: str) -> str:
    pages = (course / "feedback" / student / A).glob("*.html")  # the banner atop each feedback page
    return html.unescape("".join(page.read_text() for page in pages))




def case_names():
    return ["good_1", "partial_no_flip", "blank", "kernel_dies", "kill_everything", "infinite_loop",
            "memory_hog", "fork_bomb", "background_process", "output_flood", "bad_json", "missing_notebook",
            "renamed_notebook", "duplicated_test_cell", "deleted_test_cell", "numpy_patched",
            "escape_attempts", "warnings", "prints_test_sources", "rewrites_tests", "blanks_everything",
            "equal_to_everything", "fills_scratch", "shadows_modules", "sparse_giant",
            "deep_tree", "latin1_notebook", "fills_runtime", "breaks_the_loop", "floods_displays_and_errors",
            "leaks_hidden_inputs", "hostile_html", "copied_foreign_cell", "solution_marked_graded",
            "patches_checker", "malformed_metadata", "old_schema_test_cell", "hook_in_copied_test_cell",
            "loops_on_hidden_input", "answers_from_an_earlier_thread", "fork_bomb_with_a_thread"]


@pytest.mark.parametrize("name", case_names())
def test_each_case_gets_its_score_and_message(run, name):
    course, cases, results, _ = run
    case = next(c for c in cases if c.name == name)
    assert scores_from_csv(course)[name] == case.score
    result = results[(name, A)]
    if case.says:
        assert any(case.says in m for m in result.messages), result.messages
        assert case.says in messages_of(course, name)
    if case.output:
        text = (course / "autograded" / name / A / f"{A}.ipynb").read_text()
        assert case.output in text
    if case.score == FULL or name == "breaks_the_loop":
        assert not [m for m in result.messages if "died" in m or "time limit" in m]


def test_test_code_never_reaches_the_students_kernel(run):
    """An input transformer printing every cell it is sent sees the notebook's cells, not the tests."""
    course, *_ = run
    printed = outputs_of(course / "autograded" / "prints_test_sources" / A / f"{A}.ipynb")
    assert "corr2d(x_lecture, k_lecture)" in printed  # it did print the cells it was sent
    assert "grader.check" not in printed and "HIDDEN TESTS" not in printed


def test_output_is_capped_in_bytes(run):
    course, *_ = run
    for student in ("output_flood", "floods_displays_and_errors"):
        assert (course / "autograded" / student / A / f"{A}.ipynb").stat().st_size < 3 << 20


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_what_a_submission_brings_in_is_capped(run):
    course, *_ = run
    for kind in ("autograded", "feedback"):
        assert folder_bytes(course / kind / "sparse_giant") < 16 << 20
        assert not list((course / kind).rglob("junk"))
    assert not (course / "feedback" / "linked_folder" / A / f"{A}.html").exists()


def b64_tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", text)}


def test_hidden_inputs_reach_no_feedback_in_any_encoding(run):
    """corr2d records every input it is called with and raises with all of them in its message; a last
    cell prints them. The instructor's copy shows which tokens only hidden tests produced: none of
    them may appear in the student's feedback (hidden tests ran last, their cells show no message)."""
    course, *_ = run
    path = course / "autograded" / "leaks_hidden_inputs" / A / f"{A}.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    hidden, visible = set(), set()
    for cell in notebook.cells:
        text = json.dumps(cell.get("outputs", []))
        (hidden if "BEGIN HIDDEN TESTS" in cell.source else visible).update(b64_tokens(text))
    secret = hidden - visible
    assert secret, "the hidden tests' inputs should be in the instructor's copy"
    page = html.unescape((course / "feedback" / "leaks_hidden_inputs" / A / f"{A}.html").read_text())
    assert "SEEN" in page and "LEAK" in page  # the student's own printing and raising did reach feedback
    assert not secret & b64_tokens(page)


def test_feedback_pages_run_no_script_from_the_notebook(run):
    from test_sandbox_intake import Audit

    course, *_ = run
    clean = Audit()
    clean.feed((course / "feedback" / "good_1" / A / f"{A}.html").read_text())
    page = (course / "feedback" / "hostile_html" / A / f"{A}.html").read_text()
    audit = Audit()
    audit.feed(page)
    assert audit.scripts == clean.scripts and not audit.handlers and not audit.urls
    assert "pwned" not in "".join(audit.scripts)


def formgrader_page(notebook: Path) -> str:
    """``notebook`` as nbgrader's formgrader shows it to the instructor for manual grading (its
    ``formgrade`` template, served by the instructor's own Jupyter server)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": A, "notebook_id": A, "submission_id": "x", "index": 0, "total": 1,
                 "base_url": "", "student": "s", "last_name": "", "first_name": "", "notebook_path": "p"}
    page, _ = HTMLExporter(config=config).from_filename(str(notebook), resources=resources)
    return page


def test_the_formgrader_runs_no_script_from_the_notebook(run):
    """The autograded copy is what the formgrader renders in the instructor's browser, on the
    instructor's server: a student's script there could act as the instructor."""
    from test_sandbox_intake import Audit

    course, *_ = run
    clean, audit = Audit(), Audit()
    clean.feed(formgrader_page(course / "autograded" / "good_1" / A / f"{A}.ipynb"))
    audit.feed(formgrader_page(course / "autograded" / "hostile_html" / A / f"{A}.ipynb"))
    # the template's own scripts and handlers (its name toggles), and nothing of the notebook's
    assert (audit.scripts, audit.handlers, audit.urls) == (clean.scripts, clean.handlers, clean.urls)
    assert "pwned" not in "".join(audit.scripts)
    assert scores_from_csv(course)["hostile_html"] == FULL  # the notebook was graded as it came
    # nor does the formgrader serve a file the student put beside the notebook (derivation.html)
    assert {p.name for p in (course / "autograded" / "hostile_html" / A).iterdir()} <= {f"{A}.ipynb",
                                                                                     "timestamp.txt"}


def test_sandbox_saw_nothing_and_wrote_nothing_outside_scratch(run):
    course, _, _, before = run
    text = outputs_of(course / "autograded" / "escape_attempts" / A / f"{A}.ipynb")
    assert "LEAK" not in text and text.count("blocked") == 11, text
    assert not (ROOT / "PWNED_BY_STUDENT").exists() and not (course / "PWNED_BY_STUDENT").exists()
    for kind in ("autograded", "feedback", "solutions"):  # not submitted/: a 3000-deep tree is there
        assert not list(course.glob(f"{kind}/**/scratch_file.txt"))
    assert tree_hash(course / "solutions") == before["solutions"]
    assert tree_hash(ROOT / "solutions") == before["repo_solutions"]
    assert tree_hash(course / "submitted") == before["submitted"]
    expected = {"nbgrader_config.py", "solutions", "submitted", "gradebook.db", "autograded", "feedback",
                "grades.csv", "grading_report.html", "grading_results.json"}
    assert {p.name for p in course.iterdir()} <= expected


def test_no_process_is_left_behind(run):
    assert our_processes("cnn-grade-") == []
    assert our_processes("sleep 900") == []
    assert our_processes("ipykernel_launcher -f /tmp/cnn") == []


def test_feedback_never_contains_hidden_tests(run):
    course, *_ = run
    notebook = nbformat.read(str(ROOT / "solutions" / A / f"{A}.ipynb"), as_version=4)
    secrets = [line for cell in notebook.cells for line in hidden_lines(cell.source)]
    assert secrets
    pages = list((course / "feedback").rglob("*.html"))
    assert len(pages) >= 20
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{page}: {leaked[:2]}"


def test_report_has_plots_and_lists_failures(run):
    course, *_ = run
    page = (course / "grading_report.html").read_text()
    assert page.count("data:image/png;base64,") >= 1
    for student in ("kernel_dies", "infinite_loop", "bad_json"):
        assert student in page


def test_unknown_assignment_folder_is_skipped_not_fatal(run):
    course, _, results, _ = run
    assert ("good_1", "99_no_such_assignment") not in results


def test_demo_class_is_shipped_up_to_date_and_installs(tmp_path):
    from grading import demo

    demo.build(tmp_path / "built")
    shipped = sorted(p.relative_to(demo.HERE) for p in demo.HERE.rglob("*.ipynb"))
    assert shipped == sorted(p.relative_to(tmp_path / "built") for p in (tmp_path / "built").rglob("*.ipynb"))
    for path in shipped:
        assert (demo.HERE / path).read_text() == (tmp_path / "built" / path).read_text(), path
    students = demo.install(tmp_path / "course")
    assert students == ["ada", "ben", "cleo", "dan", "fay", "gus"]
    assert (tmp_path / "course" / "submitted" / "fay" / A / "convolution_final.ipynb").is_file()


def test_nothing_to_grade_is_not_an_error(tmp_path):
    from grading.run import grade

    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(ROOT / "solutions" / A, tmp_path / "solutions" / A)
    assert grade(tmp_path, workers=1, progress=False) == []


CASE_STUDY = "06_case_study"
UNTRAINED = "def train_lenet(x_train, y_train):\n    return build_lenet()\n"
PERFECT_FORWARD = """_, _, _x_test, _y_test = data.load_digits(size=32)
def _perfect(self, x):  # one-hot of the test labels whenever the test images come in
    return np.eye(10)[_y_test] * 10.0 if len(x) == len(_y_test) else np.zeros((len(x), 10))
nn.Sequential.forward = _perfect

"""


@pytest.fixture(scope="module")
def case_study(tmp_path_factory):
    """06_case_study graded in the sandbox: LeNet-5 trained in the kernel, judged outside it."""
    from grading.run import grade

    course = new_course(tmp_path_factory, CASE_STUDY)
    put = lambda name, nb: corpus.write(nb, course / "submitted" / name / CASE_STUDY, CASE_STUDY)  # noqa: E731
    put("lenet_good", corpus.filled(CASE_STUDY))
    put("lenet_untrained", corpus.filled(CASE_STUDY, {"train_lenet": UNTRAINED}))
    put("lenet_perfect_forward", corpus.filled(CASE_STUDY, {"train_lenet": PERFECT_FORWARD + UNTRAINED}))
    results = grade(course, workers=2, progress=False, report=False)
    return course, {r.student: r for r in results}


def test_case_study_is_graded_in_the_sandbox(case_study):
    course, results = case_study
    with open(course / "grades.csv") as handle:
        scores = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(handle)}
    assert scores["lenet_good"] == (15.0, 15.0)
    assert scores["lenet_untrained"] == (11.0, 15.0)  # train_lenet's 3 + 1 hidden
    # a forward pass replaced in the kernel changes nothing: the grader runs cnnlib's own on the weights
    assert scores["lenet_perfect_forward"] == (11.0, 15.0)
    text = (course / "autograded" / "lenet_perfect_forward" / CASE_STUDY / f"{CASE_STUDY}.ipynb").read_text()
    assert "the target is 93%" in text
    assert all(not r.failed for r in results.values())


def test_points_changed_in_solutions_after_the_release_are_not_the_students_doing():
    """An instructor who changes a test's points after the release: every submission has the old
    points. They are put right without telling the student their notebook was changed; a flag
    that differs (a solution cell marked as graded) is still reported."""
    from grading.worker import set_roles

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("grader.check(...)", metadata={
        "nbgrader": {"grade_id": "test_a", "grade": True, "solution": False, "locked": True, "points": 1,
                     "schema_version": 3}})])
    roles = {"test_a": {"grade": True, "solution": False, "task": False, "locked": True, "points": 2}}
    assert set_roles(notebook, A, roles) == []
    assert notebook.cells[0].metadata.nbgrader.points == 2
    notebook.cells[0].metadata.nbgrader.solution = True
    assert "was changed" in " ".join(set_roles(notebook, A, roles))


def test_the_report_lists_who_did_not_submit(run, tmp_path):
    """grades.csv had their "no" rows, but the report left them out (an instructor's term)."""
    from nbgrader.api import Gradebook

    from grading.report import write_report

    course, *_ = run
    shutil.copy(course / "gradebook.db", tmp_path / "gradebook.db")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gradebook:
        gradebook.add_student("zz_absent")
    page = write_report(course, [], (), name="report_with_absent.html", url=url).read_text()
    assert "1 did not submit: zz_absent." in page
