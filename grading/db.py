"""The course's gradebook: where it lives (SQLite by default, or any SQLAlchemy URL such as
PostgreSQL) and the parent's whole-gradebook steps (the template for workers, ``grades.csv``).

The URL is chosen once per run: ``--db-url``, else ``$NBGRADER_DB_URL``, else the course's
``gradebook.db`` (SQLite). The course's ``nbgrader_config.py`` reads ``$NBGRADER_DB_URL`` too, so
the formgrader and ``make grade`` open the same gradebook. Workers never see it: each grades into a
private SQLite copy of the template and the parent, the only writer, merges the result into the
course's gradebook (:mod:`grading.merge`), so several graders (TAs in the formgrader) can share a
PostgreSQL gradebook while a run goes on.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

CSV_KEYS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
            "raw_score", "late_submission_penalty", "score", "max_score", "submitted"]
ENV = "NBGRADER_DB_URL"
DB_URL_HELP = ("the gradebook as an SQLAlchemy URL, e.g. postgresql://USER@HOST/DB "
               "(default: $NBGRADER_DB_URL, else gradebook.db in the course, SQLite)")


def course_url(course: Path, db_url: str | None = None) -> str:
    """The gradebook's SQLAlchemy URL: ``db_url``, else ``$NBGRADER_DB_URL``, else SQLite in the course."""
    return db_url or os.environ.get(ENV) or f"sqlite:///{Path(course).resolve() / 'gradebook.db'}"


def alembic_head() -> str:
    """The schema revision nbgrader stamps a new gradebook with, read from its migration scripts in
    this process. nbgrader's own ``get_alembic_version`` starts ``alembic heads``, a new Python that
    imports all of nbgrader again to read the same scripts (2-3 s of CPU on each new gradebook)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


def run_nbgrader_on(course: Path, args: list[str], url: str):
    """``nbgrader ARGS`` in ``course`` on the gradebook ``url``; (returncode, log).

    The URL goes in ``$NBGRADER_DB_URL``, which the course's ``nbgrader_config.py`` reads, and on the
    command line as ``--CourseDirectory.db_url`` unless it holds a password (other users see a
    process's arguments; they never see its environment).
    """
    from sqlalchemy.engine import make_url

    from grading.worker import nbgrader_env, run_nbgrader

    flag = [] if make_url(url).password else [f"--CourseDirectory.db_url={url}"]
    return run_nbgrader(course, [*args, *flag], env=nbgrader_env({ENV: url}))


def student_tables(metadata) -> set[str]:
    """Names of the tables whose rows belong to students: ``student`` and every table referring to one."""
    names = {"student"}
    for table in metadata.sorted_tables:  # a table comes after every table it refers to
        if any(key.column.table.name in names for key in table.foreign_keys):
            names.add(table.name)
    return names


def copy_template(url: str, template: Path) -> Path:
    """A new SQLite gradebook at ``template`` with the course, assignments, notebooks and cells of the
    gradebook at ``url`` (any database) and its alembic version, but no student and no submission."""
    from nbgrader.api import Base
    from sqlalchemy import Column, MetaData, String, Table, create_engine, inspect, select

    if template.exists():
        template.unlink()
    version = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False))
    skip = student_tables(Base.metadata)
    source, target = create_engine(url), create_engine(f"sqlite:///{template}")
    try:
        with source.connect() as read, target.begin() as write:
            Base.metadata.create_all(write)
            version.create(write)
            tables = [t for t in Base.metadata.sorted_tables if t.name not in skip]
            if inspect(read).has_table(version.name):
                tables.append(version)
            for table in tables:
                rows = [dict(row._mapping) for row in read.execute(select(table))]
                if rows:
                    write.execute(table.insert(), rows)
    finally:
        source.dispose()
        target.dispose()
    return template


def build_template(course: Path, assignments: list[str], work: Path, url: str | None = None) -> Path:
    """Create or update the course's gradebook (``url``, default :func:`course_url`) from solutions/;
    return a template for the workers: a new SQLite file with the assignments and no students."""
    url = url or course_url(course)
    for assignment in assignments:
        done, log = generate_assignment(course, assignment, work / "release", url)
        if not done:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{log}")
    return copy_template(url, work / "template.db")


def generate_assignment(course: Path, assignment: str, release: Path, url: str) -> tuple[bool, str]:
    """``nbgrader generate_assignment ASSIGNMENT --force`` with the course's ``nbgrader_config.py``, the
    gradebook ``url`` and the ``release`` folder, in this process (a command would import nbgrader
    again: 1.5 s of CPU while the run's grading processes start); (succeeded, log)."""
    import nbgrader.api
    from nbgrader.converters import GenerateAssignment

    from grading.worker import config_from, run_converter

    nbgrader.api.get_alembic_version = alembic_head  # a new gradebook's revision, without a subprocess
    path = course / "nbgrader_config.py"
    config = config_from(path.read_text(encoding="utf-8"), str(path))
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = url
    config.CourseDirectory.release_directory = str(release)
    return run_converter(GenerateAssignment, config, assignment)


def notebook_names(url: str, assignment: str) -> list[str]:
    """The names of the assignment's notebooks in the gradebook at ``url``."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gradebook:
        return [notebook.name for notebook in gradebook.find_assignment(assignment).notebooks]


def export_csv(course: Path, url: str | None = None) -> Path:
    """grades.csv from the gradebook, every cell quoted as the csv module needs: nbgrader export's
    columns, then ``submitted`` ("yes" or "no": a student who submitted nothing scores 0 too)."""
    from nbgrader.api import Gradebook, MissingEntry

    path, partial = course / "grades.csv", course / "grades.csv.partial"
    with Gradebook(url or course_url(course)) as gradebook, \
            open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_KEYS)
        for assignment in sorted(gradebook.assignments, key=lambda a: a.name):  # stable, for diffs
            for student in sorted(gradebook.students, key=lambda s: s.id):
                try:
                    sub = gradebook.find_submission(assignment.name, student.id)
                    got = (sub.timestamp, sub.score, sub.late_submission_penalty, "yes")
                except MissingEntry:
                    got = (None, 0.0, 0.0, "no")
                writer.writerow([assignment.name, assignment.duedate, got[0], student.id, student.last_name,
                                 student.first_name, student.email, got[1], got[2], got[1] - got[2],
                                 assignment.max_score, got[3]])
    os.replace(partial, path)
    return path
