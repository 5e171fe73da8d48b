"""A term through nbgrader's own exchange, in temporary folders, with ``python -m grading.run``.

The instructor generates and releases 01_convolution; four students fetch it and submit (a right
answer, a partly right one, a notebook saved under another name, one that is not JSON) with
nbgrader's ``submit``; the instructor collects and runs ``python -m grading.run``; feedback is
released and each student fetches it. Then: the formgrader's autograde refuses; a manual score,
comment and extra credit survive a regrade of a resubmission; ``--student`` grades only whom it
names and an unchanged submission is skipped; a run with nothing changed grades nothing.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grading import corpus
from grading.formgrader import MESSAGE

ROOT = Path(__file__).resolve().parents[1]
A = "01_convolution"
COURSE_ID = "cnn-course"
pytestmark = [pytest.mark.grading, pytest.mark.slow]


def env(home: Path | None = None) -> dict:
    out = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if home is not None:  # a student: own home, so own nbgrader cache and no course configuration
        out.update(HOME=str(home), JUPYTER_DATA_DIR=str(home / ".data"),
                   JUPYTER_CONFIG_DIR=str(home / ".cfg"))
    return out


def nbgrader(cwd: Path, *args: str, home: Path | None = None, check: bool = True) -> str:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env(home),
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grading.run", "--course", str(course), "--workers", "2",
                           "--timeout", "60", *args], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=600)


def student_args(exchange: Path, student: str) -> list[str]:
    return [f"--Exchange.root={exchange}", f"--CourseDirectory.course_id={COURSE_ID}", f"--student={student}"]


def submit(term: dict, student: str, notebook, name: str = A) -> None:
    home = term["tmp"] / "home" / student
    folder = home / A
    for path in folder.glob("*.ipynb"):
        path.unlink()
    if isinstance(notebook, str):
        (folder / f"{name}.ipynb").write_text(notebook)
    else:
        corpus.write(notebook, folder, name)
    (folder / "timestamp.txt").write_text("2000-01-01 00:00:00.000000 UTC")  # what a student may try
    (folder / "grading_messages.html").write_text("<script>alert('forged')</script>")
    nbgrader(home, "submit", A, *student_args(term["exchange"], student), home=home)


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("term")
    course, exchange = tmp / "course", tmp / "exchange"
    course.mkdir()
    exchange.mkdir(mode=0o777)
    shutil.copytree(ROOT / "solutions" / A, course / "solutions" / A)
    config = (ROOT / "nbgrader_config.py").read_text() + f"\nc.Exchange.root = {str(exchange)!r}\n"
    (course / "nbgrader_config.py").write_text(config)
    nbgrader(course, "generate_assignment", A, "--force")
    nbgrader(course, "release_assignment", A)
    term = {"tmp": tmp, "course": course, "exchange": exchange}
    flip = corpus.solved(A)["convolve2d"].replace("corr2d(x, k[::-1, ::-1])", "corr2d(x, k)")
    work = {"ada": (corpus.filled(A), A), "ben": (corpus.filled(A, {"convolve2d": flip}), A),
            "fay": (corpus.filled(A), "convolution_final"), "gus": ('{"cells": [ not json', A)}
    for student, (notebook, name) in work.items():
        home = tmp / "home" / student
        home.mkdir(parents=True)
        nbgrader(home, "fetch_assignment", A, *student_args(exchange, student), home=home)
        submit(term, student, notebook, name)
    nbgrader(course, "collect", A)
    term["first"] = grade(course)
    term["released"] = nbgrader(course, "release_feedback", A)
    for student in work:
        home = tmp / "home" / student
        nbgrader(home, "fetch_feedback", A, *student_args(exchange, student), home=home)
    return term


def fetched(term, student: str) -> dict[str, str]:
    """The pages of the student's newest fetched feedback (nbgrader keeps one folder per submission
    time, each with the same page names, so pages of older submissions must not mix in)."""
    folders = sorted((term["tmp"] / "home" / student / A / "feedback").iterdir())
    return {p.stem: html.unescape(p.read_text()) for p in folders[-1].glob("*.html")} if folders else {}


def scores(course: Path) -> dict[str, float]:
    with open(course / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["submitted"] for r in rows} == {"yes"}  # all four submitted (gus's notebook unreadable)
    return {r["student_id"]: float(r["score"]) for r in rows}


def test_every_student_fetches_feedback_with_the_grading_messages(term):
    assert term["first"].returncode == 0, term["first"].stderr[-3000:]
    assert scores(term["course"]) == {"ada": 16.0, "ben": 12.0, "fay": 0.0, "gus": 0.0}
    assert "could not" not in term["released"].lower(), term["released"]
    assert "ada" in fetched(term, "ada")[A] and "messages from the grader" not in fetched(term, "ada")[A]
    fay = fetched(term, "fay")
    assert set(fay) == {"convolution_final"}  # fetch_feedback hands out pages by the name submitted
    assert "messages from the grader" in fay["convolution_final"]
    assert "found convolution_final.ipynb: notebooks must keep their names" in fay["convolution_final"]
    assert "could not be read as a notebook" in fetched(term, "gus")[A]
    said = " ".join(term["first"].stderr.split())
    assert "2 submissions earned no points from the tests:" in said
    assert "fay/01_convolution: 01_convolution.ipynb was not " in said
    assert "gus/01_convolution: " in said


def test_feedback_holds_only_what_the_grader_rendered(term):
    for student in ("ada", "ben", "fay", "gus"):
        folder = term["course"] / "feedback" / student / A
        names = {p.name for p in folder.iterdir()}
        assert {"timestamp.txt", "submission_secret.txt"} <= names
        assert not names & {"grading_messages.html", "notes.txt"}, names
        assert all(n.endswith(".html") or n.endswith(".txt") for n in names)
        assert "<script>alert('forged')" not in "".join(p.read_text() for p in folder.glob("*.html"))


def test_submission_time_is_the_exchanges_not_the_students(term):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{term['course'] / 'gradebook.db'}") as gradebook:
        stamps = {s.student.id: s.timestamp for s in gradebook.find_assignment(A).submissions}
    assert all(stamp is not None and stamp.year >= 2024 for stamp in stamps.values()), stamps


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def test_formgraders_autograde_refuses_and_points_to_make_grade(term):
    course = term["course"]
    before = (tree_hash(course / "autograded"), (course / "gradebook.db").read_bytes())
    out = nbgrader(course, "autograde", A, "--student", "ada", "--force", check=False)
    assert "make grade" in out and MESSAGE.split(":")[0] in " ".join(out.split())
    assert before == (tree_hash(course / "autograded"), (course / "gradebook.db").read_bytes())


def test_formgraders_autograde_button_gets_the_message(term, monkeypatch):
    """The formgrader's button calls NbGraderAPI.autograde, which reports the refusal as its error."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    course = term["course"]
    monkeypatch.chdir(course)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    before = (course / "gradebook.db").read_bytes()
    outcome = api.autograde(A, "ben")
    assert not outcome["success"] and "make grade" in outcome["error"], outcome
    assert (course / "gradebook.db").read_bytes() == before


# A comment as instructors write them: punctuation, Markdown, and HTML that must stay text.
COMMENT = "See me about the indexing! Don't forget (i, j) -> **both** flips; <b>not bold</b>."


def set_manual(course: Path, student: str) -> None:
    """What an instructor does in the formgrader: a manual score, a comment, extra credit."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(A, A, student)
        grade = next(g for g in notebook.grades if g.name == "test_corr2d_shape")
        grade.manual_score, grade.extra_credit = 0.0, 0.5  # the cell is worth 1 and passes
        notebook.comments[0].manual_comment = COMMENT
        gradebook.db.commit()


def manual_of(course: Path, student: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(A, A, student)
        grade = next(g for g in notebook.grades if g.name == "test_corr2d_shape")
        return (grade.manual_score, grade.extra_credit, grade.needs_manual_grade,
                notebook.comments[0].manual_comment, notebook.score)


def test_regrade_keeps_manual_work_and_grades_only_what_changed(term):
    course = term["course"]
    set_manual(course, "gus")
    submit(term, "gus", corpus.filled(A))  # gus resubmits a readable notebook
    nbgrader(course, "collect", A, "--update")
    second = grade(course, "--student", "gus,ada")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "unchanged since last graded" in second.stderr and "ada/01_convolution" in second.stderr
    assert "1 submission graded" in second.stderr
    manual, extra, review, comment, score = manual_of(course, "gus")
    assert (manual, extra, review, comment) == (0.0, 0.5, True, COMMENT)
    assert score == 16.0 - 1.0 + 0.5  # the manual score stands in for the automatic one, plus extra credit
    # the regraded page was rendered again from the gradebook: the manual work is in it
    assert "rendered again with the manual scores, comments and late penalties: gus" in second.stderr, \
        second.stderr[-3000:]
    assert "gus/01_convolution test_corr2d_shape: manual 0, automatic now 1 of 1" in second.stderr
    assert_shows_comment((course / "feedback" / "gus" / A / f"{A}.html").read_text())
    assert "Score: 15.5 / 16.0" in (course / "feedback" / "gus" / A / f"{A}.html").read_text()
    set_manual(course, "ada")  # manual grading after the last run: grades.csv must follow it
    start = time.perf_counter()
    third = grade(course)
    seconds = time.perf_counter() - start
    assert third.returncode == 0 and "nothing to grade" in third.stderr, third.stderr[-2000:]
    print(f"incremental regrade with nothing changed: {seconds:.1f} s")
    assert manual_of(course, "gus")[0] == 0.0
    assert scores(course)["ada"] == 16.0 - 1.0 + 0.5  # exported again with nothing to grade


def test_a_misspelt_name_grades_nothing_and_says_what_is_there(term):
    course = term["course"]
    wrong_assignment = grade(course, "--assignment", "01_convolutoin")
    assert wrong_assignment.returncode == 2, wrong_assignment.stderr[-2000:]
    assert f"no assignment '01_convolutoin' in solutions/ (there: {A})" in wrong_assignment.stderr
    wrong_student = grade(course, "--student", "adda")
    assert wrong_student.returncode == 2, wrong_student.stderr[-2000:]
    assert "no submission from student 'adda' (did you mean 'ada'?)" in wrong_student.stderr


def assert_shows_comment(page: str) -> None:
    """The feedback page shows COMMENT as the Markdown it is, its HTML as text."""
    assert "<strong>both</strong>" in page and "<b>not bold</b>" not in page
    text = html.unescape(page)
    assert "See me about the indexing! Don't forget (i, j) -> " in text and "<b>not bold</b>" in text


def test_manual_comments_reach_the_students_after_a_refresh(term):
    course = term["course"]
    done = subprocess.run([sys.executable, "-m", "grading.refresh", "--course", str(course),
                           "--assignment", A], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "rebuilt for 4 submissions" in done.stderr, done.stderr[-3000:]
    folder = course / "feedback" / "gus" / A
    assert {"timestamp.txt", "submission_secret.txt", f"{A}.html"} <= {p.name for p in folder.iterdir()}
    assert_shows_comment((folder / f"{A}.html").read_text())
    fay = course / "feedback" / "fay" / A / "convolution_final.html"
    assert "messages from the grader" in fay.read_text()
    nbgrader(course, "release_feedback", A)
    home = term["tmp"] / "home" / "gus"
    nbgrader(home, "fetch_feedback", A, *student_args(term["exchange"], "gus"), home=home)
    assert "See me about the indexing! Don't forget" in fetched(term, "gus")[A]


def test_report_links_each_students_feedback(term):
    page = (term["course"] / "grading_report.html").read_text()
    for student in ("ada", "ben", "fay", "gus"):
        assert f'href="feedback/{student}/{A}/' in page
    assert "http://" not in page and "https://" not in page
    assert "no flip" in page  # ben's mistake, named by the checker


def test_report_loads_offline_in_chromium_and_its_links_resolve(term):
    from urllib.parse import unquote, urlparse

    from playwright.sync_api import sync_playwright

    page_path = term["course"] / "grading_report.html"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags, headless=True)
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri(), wait_until="load", timeout=30_000)
            images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            headings = page.inner_text("body")
            phone = browser.new_page(viewport={"width": 390, "height": 800})
            phone.goto(page_path.as_uri(), wait_until="load", timeout=30_000)
            phone_width = phone.evaluate("document.documentElement.scrollWidth")
        finally:
            browser.close()
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    assert images and all(width > 100 for width in images)  # the plots decoded
    assert len(links) >= 5 and all(Path(unquote(urlparse(link).path)).is_file() for link in links), links
    assert "Most common named mistakes" in headings and "Slowest submissions" in headings
    assert phone_width <= 390, f"the report scrolls sideways on a phone: {phone_width} px"


def test_a_refresh_that_nbgrader_fails_on_keeps_the_students_page(term):
    """nbgrader cannot render one student's graded notebook (here: made unreadable): that student's
    page stays as it was, the refresh says so and exits 1; the others are rebuilt."""
    course = term["course"]
    page = course / "feedback" / "ada" / A / f"{A}.html"
    before = page.read_bytes()
    (course / "autograded" / "ada" / A / f"{A}.ipynb").write_text("{ not json")
    done = subprocess.run([sys.executable, "-m", "grading.refresh", "--course", str(course),
                           "--assignment", A], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "rendered no page for ada" in done.stderr and "rebuilt for 3 submissions" in done.stderr
    assert page.read_bytes() == before
