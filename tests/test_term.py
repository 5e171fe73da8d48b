"""The run-level pieces of ``make grade`` on their own (no kernel): names, times, feedback folders,
what is regraded, signals, the CSV and the formgrader's switch."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from grading import collection, feedback, select
from grading.formgrader import MESSAGE, AutogradeSwitchedOff, SandboxOnlyExporter
from grading.interrupt import Interrupted, Stopper
from grading.names import id_problem, one_line, printable

A = "01_convolution"


@pytest.mark.parametrize("name, why", [
    ("--help", "read as an option"), ("-rf", "read as an option"), (".hidden", "hidden"),
    ("M\udcfcller", "not valid UTF-8"), ("a,b", "','"), ("a\nb", "'\\n'"), ("a\x1b[31mb", "'\\x1b'"),
    ("a b", "' '"), ("x+y", "'+'"), ("st*r", "'*'"), ("", "empty"), ("a" * 101, "101 characters"),
    ("up/../x", "'/'"),
])
def test_names_nbgrader_cannot_hold_are_refused_with_the_reason(name, why):
    problem = id_problem(name)
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize("name", ["ada", "Müller", "o.brien-2", "s123456", "jane@uni"])
def test_ordinary_names_pass(name):
    assert id_problem(name) is None


def test_printed_text_carries_no_control_characters():
    shown = printable("x\x1b]0;pwned\x07y\u202ez\udcfc\n")
    assert not any(ord(c) < 32 and c not in "\n\t" for c in shown) and "\u202e" not in shown
    assert "\\x1b" in shown and "\\xfc" in shown
    assert "\n" not in one_line("a\nb")


def test_scan_refuses_bad_folders_per_student_and_keeps_the_rest(tmp_path):
    root = os.fsencode(tmp_path / "submitted")
    for name in (b"ada", b"M\xfcller", b"--help", b"a,b", b"new\nline", b"esc\x1b[2J"):
        os.makedirs(os.path.join(root, name, A.encode()))
    os.symlink(tmp_path, os.path.join(root, b"linked"))
    os.makedirs(os.path.join(root, b"bob"))
    os.symlink(tmp_path, os.path.join(root, b"bob", A.encode()))
    found, rejected, _ = collection.scan(tmp_path, {A})
    assert [(s.student, s.assignment) for s in found] == [("ada", A)]
    refused = {r.student: r.message for r in rejected}
    assert len(refused) == 7, refused
    assert all(printable(n) == n and "\x1b" not in n and "\n" not in n for n in refused)
    assert "not valid UTF-8" in refused["M\\xfcller"] and "link" in refused["linked"]
    assert "not a folder" in refused["bob"]


def test_a_claimed_time_earlier_than_the_exchange_record_is_raised_to_it(tmp_path):
    folder, inbound = tmp_path / "submitted" / "ada" / A, tmp_path / "inbound"
    folder.mkdir(parents=True)
    inbound.mkdir()
    claim = "2020-01-01 10:00:00.000000 UTC"
    (folder / "timestamp.txt").write_text(claim)
    when, notes = collection.submission_time(folder, "ada", A, inbound)
    assert when == datetime(2020, 1, 1, 10, tzinfo=timezone.utc) and notes == []  # no record: as nbgrader
    (inbound / f"ada+{A}+{claim}+abc").mkdir()  # the record's change time is now
    when, notes = collection.submission_time(folder, "ada", A, inbound)
    assert when.year >= 2024 and "reached the exchange" in notes[0]
    (folder / "timestamp.txt").write_text("not a time\x1b[2J")
    when, notes = collection.submission_time(folder, "ada", A, inbound)  # the record's time stands
    assert when.year >= 2024 and "timestamp.txt is missing or unreadable" in notes[0]
    assert "\x1b" not in notes[0]
    (folder / "timestamp.txt").unlink()
    assert collection.submission_time(folder, "ada", A, inbound)[0] == when
    assert collection.submission_time(folder, "ada", A, None) == (None, [])  # no exchange: as nbgrader


def test_the_record_collect_takes_is_found_by_its_name_not_by_the_claim(tmp_path):
    """An attacker's audit: the inbound folder is every student's to write, so a record may be named
    with one time and hold a timestamp.txt with another (the lookup went by the file's text)."""
    folder, inbound = tmp_path / "submitted" / "ada" / A, tmp_path / "inbound"
    folder.mkdir(parents=True)
    inbound.mkdir()
    (folder / "timestamp.txt").write_text("2020-01-01 10:00:00.000000 UTC")
    (inbound / f"ada+{A}+2099-01-01 00:00:00.000000 UTC+abc").mkdir()  # collect takes the latest name
    (inbound / f"ada+{A}+not a time+abc").mkdir()
    (inbound / f"bob+{A}+2020-01-01 10:00:00.000000 UTC+abc").mkdir()
    when, notes = collection.submission_time(folder, "ada", A, inbound)
    assert when.year >= 2024 and "reached the exchange" in notes[0]


def test_feedback_folder_is_complete_and_made_only_of_what_the_grader_writes(tmp_path):
    rendered, submission, target = tmp_path / "rendered", tmp_path / "sub", tmp_path / "feedback"
    rendered.mkdir()
    submission.mkdir()
    (rendered / f"{A}.html").write_text("<html><head><style>body{}</style></head>"
                                        "<body class='x'><p>graded</p>")
    (submission / "submission_secret.txt").write_text("ab12" * 32)
    (submission / "final.ipynb").write_text("{}")
    (submission / "grading_messages.html").write_text("<script>forged()</script>")
    pages = feedback.assemble(target, rendered, A, [A, "second"], ["final"], ["<b>kernel died</b>"],
                              None, feedback.read_secret(submission))
    assert pages == [A, "final", "second"]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [f"{A}.html", "final.html", "second.html", "timestamp.txt", "submission_secret.txt"])
    page = (target / f"{A}.html").read_text()
    assert page.index(feedback.BANNER_ID) > page.index("<body class='x'>") and "<p>graded</p>" in page
    assert "&lt;b&gt;kernel died&lt;/b&gt;" in page and "<b>kernel died" not in page
    assert (target / "submission_secret.txt").read_text() == "ab12" * 32
    (submission / "submission_secret.txt").write_text("../../etc/passwd")
    assert feedback.read_secret(submission) is None


def test_only_changed_submissions_are_regraded(tmp_path):
    class Item:
        def __init__(self, student):
            self.student, self.assignment = student, A
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "n.ipynb").write_text("1")
    before = select.fingerprint(tmp_path / "a")
    (tmp_path / "a" / "n.ipynb").write_text("2")
    assert select.fingerprint(tmp_path / "a") != before
    deep = tmp_path / "a" / "junk"
    level = str(deep)
    for _ in range(1500):  # what a careless zip makes: no recursion limit may be hit
        level = os.path.join(level, "d")
        os.makedirs(level)
    os.symlink("/etc/passwd", tmp_path / "a" / "link")  # a link is named, never followed
    assert select.fingerprint(tmp_path / "a") != before
    subprocess.run(["rm", "-rf", str(deep)], check=True)
    items = [Item("ada"), Item("ben"), Item("cy")]
    prints = {A: "t", ("ada", A): "f", ("ben", A): "g", ("cy", A): "h"}
    records = {("ada", A): {"files": "f", "tests": "t"}, ("ben", A): {"files": "old", "tests": "t"},
               ("cy", A): {"files": "h", "tests": "t", "failed": True}}
    todo, same = select.plan(items, records, prints, force=False)
    assert [i.student for i in todo] == ["ben", "cy"] and [i.student for i in same] == ["ada"]
    assert len(select.plan(items, records, {**prints, A: "new tests"}, force=False)[0]) == 3
    assert len(select.plan(items, records, prints, force=True)[0]) == 3
    assert [i.student for i in select.wanted(items, [A], ["cy"])] == ["cy"]


def test_a_signal_during_a_merge_waits_for_its_end():
    events = []
    with Stopper() as stopper, pytest.raises(Interrupted):
        with stopper.held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            events.append("merge finished")
        events.append("not reached")
    assert events == ["merge finished"]
    with Stopper(), pytest.raises(Interrupted):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


def test_grades_csv_quotes_what_it_holds(tmp_path, monkeypatch):
    import sys

    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # nbgrader's alembic

    from grading.run import export_csv

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        gradebook.add_assignment(A)
        gradebook.add_student("ada", first_name='Ada, "the first"', last_name="Love\nlace")
    export_csv(tmp_path)
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert rows[0]["first_name"] == 'Ada, "the first"' and rows[0]["last_name"] == "Love\nlace"
    assert rows[0]["submitted"] == "no" and float(rows[0]["score"]) == 0.0  # a zero that is not a blank


def test_nbgraders_own_autograde_is_switched_off_unless_sandboxed():
    from traitlets.config import Configurable

    class Plain(Configurable):
        autograde_preprocessors = ["nbgrader.preprocessors.Execute"]

    class Sandboxed(Configurable):
        autograde_preprocessors = ["grading.execute.SandboxExecute"]

    with pytest.raises(AutogradeSwitchedOff, match="make grade"):
        SandboxOnlyExporter(parent=Plain())
    assert SandboxOnlyExporter(parent=Sandboxed()) is not None
    assert "ASSIGNMENT=" in MESSAGE


def test_the_course_configuration_switches_autograde_off():
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(__file__).resolve().parents[1]
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    name = config.Autograde.exporter_class
    assert f"{SandboxOnlyExporter.__module__}.{SandboxOnlyExporter.__name__}" == name


def test_the_collected_record_is_found_by_its_contents(tmp_path):
    """A reviewer's findings: a resubmission after collect (or collect's ``before_duedate``) leaves
    a newer record that was not collected: its time must not be charged to the graded work; and a
    file rewritten in place inside the collected record must count (its folder's time does not
    change)."""
    import time

    folder, inbound = tmp_path / "submitted" / "ada" / A, tmp_path / "inbound"
    folder.mkdir(parents=True)
    inbound.mkdir()
    for place in (folder, inbound / f"ada+{A}+2026-03-02 11:00:00.000000 UTC+abc"):
        place.mkdir(exist_ok=True)
        (place / f"{A}.ipynb").write_text("the work collected on time")
        (place / "timestamp.txt").write_text("2026-03-02 11:00:00.000000 UTC")
    collected = inbound / f"ada+{A}+2026-03-02 11:00:00.000000 UTC+abc"
    time.sleep(1.1)
    later = inbound / f"ada+{A}+2026-03-09 11:00:00.000000 UTC+def"
    later.mkdir()
    (later / f"{A}.ipynb").write_text("a resubmission, never collected")
    when = collection.arrival(inbound, "ada", A, folder)
    assert when.timestamp() < later.stat().st_ctime  # the collected record's, not the newest's
    time.sleep(1.1)
    with open(collected / f"{A}.ipynb", "r+") as handle:  # rewritten in place, then collected again
        handle.write("THE")
    (folder / f"{A}.ipynb").write_text((collected / f"{A}.ipynb").read_text())
    assert collection.arrival(inbound, "ada", A, folder).timestamp() >= later.stat().st_ctime
