"""grading.db's shortcut around nbgrader: a new gradebook gets the schema revision nbgrader's own
way gives (``alembic heads`` in a new process), read in-process instead."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from grading.db import alembic_head, run_nbgrader_on


def test_a_new_gradebooks_revision_is_the_one_nbgrader_reads(monkeypatch):
    import nbgrader.api

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert alembic_head() == nbgrader.api.get_alembic_version()


@pytest.mark.grading
def test_nbgraders_command_line_stamps_new_gradebooks_with_it(tmp_path):
    from nbgrader.api import Gradebook
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    code, log = run_nbgrader_on(tmp_path, ["db", "student", "add", "ada"], url)
    assert code == 0, log
    with Gradebook(url) as gradebook:
        (version,) = gradebook.db.execute(text("SELECT version_num FROM alembic_version")).one()
        assert gradebook.find_student("ada").id == "ada"
    assert version == alembic_head()
