"""``make grade --db-url postgresql://...``: a gradebook several graders share.

A real PostgreSQL server (``tests/_postgres.py``: ``initdb`` in a temporary folder, as ``nobody``
when the tests run as root, a Unix socket only) holds the course's gradebook. The demo class's
01_convolution submissions are graded once with SQLite and once with PostgreSQL: the same
automatic score for every student and cell. While the PostgreSQL run merges, a second connection
writes manual scores and comments as the formgrader does; every one of them is still there after
the run and after a forced regrade, and ``grades.csv`` and the report count them.
"""

from __future__ import annotations

import csv
import shutil
import threading
import time
from pathlib import Path

import _postgres
import pytest

from grading import demo
from grading.db import course_url

ROOT = Path(__file__).resolve().parents[1]
A = "01_convolution"
BINARIES = _postgres.bin_dir()
pytestmark = pytest.mark.skipif(BINARIES is None,
                                reason="no PostgreSQL initdb here (`make postgres` installs Debian's)")


def test_course_url_takes_the_option_then_the_environment_then_the_course(tmp_path, monkeypatch):
    monkeypatch.delenv("NBGRADER_DB_URL", raising=False)
    assert course_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'gradebook.db'}"
    monkeypatch.setenv("NBGRADER_DB_URL", "postgresql://env@/db")
    assert course_url(tmp_path) == "postgresql://env@/db"
    assert course_url(tmp_path, "postgresql://option@/db") == "postgresql://option@/db"


def test_course_config_reads_the_environment(monkeypatch):
    from traitlets.config import Config

    def loaded() -> str:
        config = Config()
        exec(compile((ROOT / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec"),
             {"get_config": lambda: config, "__file__": str(ROOT / "nbgrader_config.py")})
        return config.CourseDirectory.db_url

    monkeypatch.delenv("NBGRADER_DB_URL", raising=False)
    assert loaded() == f"sqlite:///{ROOT / 'gradebook.db'}"
    monkeypatch.setenv("NBGRADER_DB_URL", "postgresql://ta@/c")
    assert loaded() == "postgresql://ta@/c"


@pytest.fixture(scope="module")
def server():
    with _postgres.server(BINARIES) as srv:
        yield srv


def new_course(folder: Path) -> Path:
    """A course with the configuration, 01_convolution's solutions and the demo class submitted."""
    folder.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    shutil.copytree(ROOT / "solutions" / A, folder / "solutions" / A)
    demo.install(folder)
    return folder


def cells_of(url: str) -> dict:
    """(student, cell) -> (auto, manual, max score); (student, cell, "comment") -> the manual comment."""
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(url) as gradebook:
        for sub in gradebook.find_assignment(A).submissions:
            student = sub.student.id
            for notebook in sub.notebooks:
                for grade in notebook.grades:
                    found[student, grade.name] = (grade.auto_score, grade.manual_score, grade.max_score)
                for comment in notebook.comments:
                    found[student, comment.name, "comment"] = comment.manual_comment
    return found


class Grader(threading.Thread):
    """A TA in the formgrader: for every submission merged so far, one manual score and one comment
    (on the notebook's first cells by name, or its last with ``last=True``)."""

    def __init__(self, url: str, students: int, last: bool = False):
        super().__init__(daemon=True)
        self.url, self.students, self.last = url, students, last
        self.done, self.error = threading.Event(), None
        self.written: dict = {}  # (student, cell) -> manual score; (student, cell, "comment") -> text
        self.merged_when_written: list[int] = []  # how many submissions the gradebook held at each write

    def merged(self) -> list[str]:
        from sqlalchemy import create_engine, inspect, text

        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                if not inspect(connection).has_table("submitted_assignment"):
                    return []  # nbgrader has not made the gradebook yet
                return [r[0] for r in connection.execute(text("SELECT student_id FROM submitted_assignment"))]
        finally:
            engine.dispose()

    def write(self, student: str, merged: int) -> None:
        from nbgrader.api import Gradebook

        with Gradebook(self.url, course_id="cnn-course") as gradebook:  # the formgrader's own calls
            notebook = gradebook.find_submission_notebook(A, A, student)
            grade = sorted(notebook.grades, key=lambda g: g.name)[-1 if self.last else 0]
            grade.manual_score = grade.max_score / 4
            grade.needs_manual_grade = False
            comment = sorted(notebook.comments, key=lambda c: c.name)[-1 if self.last else 0]
            comment.manual_comment = f"seen by a TA: {student}"
            gradebook.db.commit()
            self.written[student, grade.name] = grade.max_score / 4
            self.written[student, comment.name, "comment"] = comment.manual_comment
        self.merged_when_written.append(merged)

    def __enter__(self) -> Grader:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join(timeout=30)
        if self.error is not None and exc[0] is None:
            raise self.error

    def run(self) -> None:
        seen: set[str] = set()
        try:
            while not self.done.is_set():
                merged = self.merged()
                for student in sorted(set(merged) - seen):
                    self.write(student, len(merged))
                    seen.add(student)
                time.sleep(0.2)
        except BaseException as error:  # the test re-raises it
            self.error = error


def grade_course(course: Path, url: str | None, **options):
    from grading.run import grade

    return grade(course, workers=2, progress=False, assignments=[A], check_setup=False, db_url=url, **options)


@pytest.fixture(scope="module")
def graded(server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("postgres")
    lite = new_course(folder / "sqlite")
    grade_course(lite, None)
    course, url = new_course(folder / "postgres"), server.create_database("gradebook")
    with Grader(url, len(list((course / "submitted").iterdir()))) as ta:
        grade_course(course, url)
    return lite, course, url, ta


@pytest.fixture(scope="module")
def regraded(graded):
    """Two of the TA's students (graded in a kernel) regraded (``force``) while a second TA grades
    other cells of every submission; the cells before, and the second TA."""
    _, course, url, ta = graded
    before, students = cells_of(url), sorted({key[0] for key in ta.written} & {"ada", "ben", "cleo"})[:2]
    assert len(students) == 2, ta.written  # graded in a kernel, and given manual scores
    with Grader(url, ta.students, last=True) as second:
        results = grade_course(course, url, students=students, force=True)
    assert sorted(r.student for r in results) == students
    return before, second


def scores(course: Path) -> dict[str, float]:
    with open(course / "grades.csv") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def test_same_grades_as_sqlite(graded):
    lite, course, url, _ = graded
    assert not (course / "gradebook.db").exists()  # every step used PostgreSQL
    expected = cells_of(f"sqlite:///{lite / 'gradebook.db'}")
    got = cells_of(url)
    assert {k for k in got if len(k) == 2} == {k for k in expected if len(k) == 2}
    assert len({s for s, *_ in expected}) == 6
    ran = scores(lite)
    assert ran["ada"] == 16 and 0 < ran["ben"] < 16, ran  # really graded: right and partly right
    for key, (auto, _, maximum) in ((k, v) for k, v in expected.items() if len(k) == 2):
        assert (got[key][0], got[key][2]) == (auto, maximum), key


def test_manual_grading_during_the_run_is_kept(graded):
    _, _, url, ta = graded
    assert ta.written, "the TA never saw a merged submission"
    assert min(ta.merged_when_written) < ta.students, "every write came after the last merge"
    got = cells_of(url)
    for key, value in ta.written.items():
        assert (got[key] if len(key) == 3 else got[key][1]) == value, key


def test_a_merge_locks_the_rows_it_rewrites(graded):
    """A manual score written while a merge holds the submission waits for the merge's commit."""
    from nbgrader.api import Gradebook
    from sqlalchemy import create_engine, exc, text

    from grading.merge import _locked

    _, _, url, _ = graded
    engine = create_engine(url)
    try:
        with Gradebook(url) as merging:
            submission = _locked(merging, A, "ada")
            grade = submission.notebooks[0].grades[0].id
            with engine.connect() as formgrader:
                formgrader.execute(text("SET lock_timeout = '300ms'"))
                with pytest.raises(exc.OperationalError, match="lock timeout"):
                    formgrader.execute(text("UPDATE grade SET extra_credit = 1 WHERE id = :i"), {"i": grade})
            merging.db.rollback()
        with engine.begin() as formgrader:  # free again
            formgrader.execute(text("UPDATE grade SET extra_credit = NULL WHERE id = :id"), {"id": grade})
    finally:
        engine.dispose()


def test_a_regrade_keeps_the_manual_work(graded, regraded):
    _, _, url, ta = graded
    before, second = regraded
    assert second.written and not set(second.written) & set(ta.written)
    written = {key: value if len(key) == 3 else (before[key][0], value, before[key][2])
               for key, value in second.written.items()}
    assert cells_of(url) == before | written  # the automatic scores as before, every manual one kept


def test_grades_csv_and_report_read_postgresql(graded, regraded):
    """The regrade's grades.csv and report (the TAs were done by then) count every manual score."""
    from grading.report import read_gradebook

    lite, course, url, ta = graded
    expected, automatic = scores(lite), cells_of(f"sqlite:///{lite / 'gradebook.db'}")
    for key, value in (ta.written | regraded[1].written).items():
        if len(key) == 2:
            expected[key[0]] += value - (automatic[key][0] or 0.0)  # None: a manually graded cell
    assert scores(course) == pytest.approx(expected)
    assert {s: e["score"] for s, e in read_gradebook(course, url)[A].items()} == pytest.approx(expected)
    page = (course / "grading_report.html").read_text()
    assert all(f"{score:g} / 16" in page for score in expected.values())


def test_refresh_renders_the_manual_comments_from_postgresql(graded, regraded):
    """``grading.refresh --db-url`` with a password in the URL (trust ignores it): nbgrader gets the
    URL in its environment only, and the pages show the TA's comments."""
    from grading.refresh import main

    _, course, url, ta = graded
    assert main(["--course", str(course), "--assignment", A, "--db-url",
                 url.replace("postgres@", "postgres:not-on-any-command-line@")]) == 0
    rendered = {p.parent.name for p in (course / "autograded").glob(f"*/{A}")}  # not fay's, gus's
    assert len(rendered) >= 3, rendered
    for (student, *_), text in ((k, v) for k, v in ta.written.items() if len(k) == 3 and k[0] in rendered):
        assert text in (course / "feedback" / student / A / f"{A}.html").read_text(), student


def test_a_password_never_reaches_a_command_line(monkeypatch):
    import grading.worker
    from grading.db import run_nbgrader_on

    calls = []
    monkeypatch.setattr(grading.worker, "run_nbgrader", lambda course, args, env: calls.append((args, env)))
    for url in ("postgresql://ta:secret@db/course", "postgresql://ta@db/course"):
        run_nbgrader_on(Path("."), ["generate_feedback", A], url)
    (secret, secret_env), (plain, plain_env) = calls
    assert not any("secret" in arg for arg in secret)
    assert secret_env["NBGRADER_DB_URL"] == "postgresql://ta:secret@db/course"
    assert "--CourseDirectory.db_url=postgresql://ta@db/course" in plain
    assert plain_env["NBGRADER_DB_URL"] == "postgresql://ta@db/course"
