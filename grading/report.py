"""The grading report: one offline HTML page (inline PNG plots, no script, no outside resource).

Built from the gradebook (so manual scores count), ``grading_results.json`` (messages and times)
and the autograded notebooks (the checker's named mistakes, from the test cells' error output).
Per assignment: the score distribution, each test cell's pass rate, the most common named
mistakes with counts and example students, and every student with a status that tells blank,
not graded, not run (stopped), all wrong, partial and full apart, a link to their feedback and
their messages. Then the slowest submissions.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

import matplotlib
import nbformat

from grading import select
from grading.db import course_url
from grading.names import plural

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MISTAKE = re.compile(r"Your answer is exactly what you get with (.+?)\.?\s*$", re.MULTILINE)
# a detail line wrapped by cnnlib.testing.errors: its continuation is indented two more spaces
WRAPPED = re.compile(r"\n {4,}(?=\S)")
STOPPED = "GradingStopped"  # grading.execute's ename for cells it stopped or did not run
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 8px}"
         "img{max-width:100%;height:auto}table{display:block;overflow-x:auto}"
         "td,th{padding:2px 8px;vertical-align:top;border-bottom:1px solid #ddd;text-align:left}"
         ".full{color:#2a7}.blank,.not-graded{color:#a33}")


def row(*cells) -> str:
    """A table row of cells already escaped."""
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plots" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def read_gradebook(course: Path, url: str | None = None) -> dict:
    """assignment -> student -> {"score", "max", "cells": {test: (score, max)}, "blank": bool}."""
    from nbgrader.api import Gradebook

    data: dict = {}
    with Gradebook(url or course_url(course)) as gradebook:
        for assignment in gradebook.assignments:
            for sub in assignment.submissions:
                cells, comments = {}, []
                for notebook in sub.notebooks:
                    cells.update({g.name: (g.score or 0.0, g.max_score) for g in notebook.grades})
                    comments += [c.auto_comment for c in notebook.comments]
                data.setdefault(assignment.name, {})[sub.student.id] = {
                    "score": sub.score, "max": assignment.max_score, "cells": cells,
                    "blank": bool(comments) and all(c == "No response." for c in comments)}
    return data


def non_submitters(course: Path, url: str | None = None) -> dict[str, list[str]]:
    """assignment -> the gradebook's students with no submission of it (grades.csv's "no" rows)."""
    from nbgrader.api import Gradebook

    with Gradebook(url or course_url(course)) as gradebook:
        everyone = {student.id for student in gradebook.students}
        return {a.name: sorted(everyone - {sub.student.id for sub in a.submissions})
                for a in gradebook.assignments}


def notebook_findings(folder: Path) -> tuple[list[str], bool, bool]:
    """(named mistakes, any cell stopped or not run, graded at all) from an autograded folder."""
    mistakes, stopped, graded = [], False, False
    for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        try:
            notebook = nbformat.read(str(path), as_version=4)
        except Exception:
            continue
        graded = True
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") != "error":
                    continue
                stopped |= output.get("ename") == STOPPED
                text = str(output.get("evalue", "")) + "\n" + "\n".join(output.get("traceback", []))
                text = WRAPPED.sub(" ", text)  # the checker's wrapped detail lines, one line again
                mistakes += sorted({m.split(":")[0].strip() for m in MISTAKE.findall(text)})
    return mistakes, stopped, graded


def status(entry: dict, stopped: bool, graded: bool) -> str:
    if not graded:
        return "not graded"
    if entry["blank"]:
        return "blank"
    if stopped:
        return "not run (stopped)"
    if entry["score"] >= entry["max"] > 0:
        return "full"
    return "all wrong" if entry["score"] == 0 else "partial"


def feedback_link(course: Path, student: str, assignment: str) -> str:
    folder = course / "feedback" / student / assignment
    pages = sorted(folder.glob("*.html")) if folder.is_dir() else []
    links = [f'<a href="{quote(str(p.relative_to(course)))}">{html.escape(p.stem)}</a>' for p in pages]
    return " ".join(links) or "none"


def plots(assignment: str, by_student: dict) -> str:
    maximum = max((e["max"] for e in by_student.values()), default=0) or 1
    cells = defaultdict(lambda: [0, 0])
    for entry in by_student.values():
        for name, (got, full) in entry["cells"].items():
            cells[name][0] += got >= full
            cells[name][1] += 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1.3]})
    values = [e["score"] for e in by_student.values()]
    axes[0].hist(values, bins=min(20, max(5, len(values))), range=(0, maximum), color="#4477aa")
    axes[0].set(title=f"{assignment}: score distribution", xlabel=f"score (of {maximum:g})",
                ylabel="students")
    axes[0].yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    names = sorted(cells)
    axes[1].barh(names, [cells[n][0] / cells[n][1] for n in names], color="#66aa55")
    axes[1].set(title="pass rate per test cell", xlim=(0, 1))
    axes[1].tick_params(axis="y", labelsize=7)
    axes[1].invert_yaxis()
    rates = "".join(row(html.escape(n), f"{cells[n][0]} / {cells[n][1]}") for n in names)
    return (f"{_png(fig)}<details><summary>pass rate per test cell (table)</summary><table>"
            f"<tr><th>test cell</th><th>passed</th></tr>{rates}</table></details>")


def assignment_section(course: Path, assignment: str, by_student: dict, records: dict,
                       absent: list[str] = ()) -> str:
    rows, mistakes, examples = [], Counter(), defaultdict(list)
    statuses = Counter()
    for student in sorted(by_student):
        entry = by_student[student]
        found, stopped, graded = notebook_findings(course / "autograded" / student / assignment)
        for mistake in set(found):
            mistakes[mistake] += 1
            examples[mistake].append(student)
        state = status(entry, stopped, graded)
        statuses[state] += 1
        record = records.get((student, assignment), {})
        messages = "<br>".join(html.escape(m) for m in record.get("messages", []))
        rows.append(row(html.escape(student), f"{entry['score']:g} / {entry['max']:g}",
                        f"<span class='{state.split(' ')[0]}'>{state}</span>",
                        feedback_link(course, student, assignment), messages))
    common = "".join(row(html.escape(m), n, html.escape(", ".join(examples[m][:3])))
                     for m, n in mistakes.most_common(10)) or row("none recognised", "", "")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    missing = (f"<p class='blank'>{len(absent)} did not submit: {html.escape(', '.join(absent))}.</p>"
               if absent else "")
    return (f"<h2 id='{quote(assignment)}'>{html.escape(assignment)}</h2><p>{len(by_student)} students: "
            f"{summary}.</p>{missing}{plots(assignment, by_student)}<h3>Most common named mistakes</h3>"
            "<table><tr><th>mistake (the checker's name for it)</th><th>students</th><th>for example</th>"
            "</tr>"
            f"{common}</table><h3>Students</h3><table><tr><th>student</th><th>score</th><th>status</th>"
            f"<th>feedback</th><th>messages from the grader</th></tr>{''.join(rows)}</table>")


def write_report(course: Path, results=None, rejected=(), name: str = "grading_report.html",
                 url: str | None = None) -> Path:
    """The report for every submission in the gradebook (``results``, this run's, are in the records);
    ``rejected``: folders that could not be graded as named (:class:`grading.collection.Rejected`)."""
    data, records = read_gradebook(course, url), select.load(course)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><meta name=viewport "
             f"content='width=device-width, initial-scale=1'><title>Grading report</title>"
             f"<style>{STYLE}</style></head><body><h1>Grading report</h1>"
             f"<p>{plural(sum(map(len, data.values())), 'submission')} in {plural(len(data), 'assignment')}"
             ".</p>"]
    if rejected:
        refused = "".join(row(html.escape(r.student), html.escape(r.assignment), html.escape(r.message))
                          for r in rejected)
        parts.append("<h2>Folders not graded</h2><table><tr><th>folder</th><th>assignment</th><th>why</th>"
                     f"</tr>{refused}</table>")
    absent = non_submitters(course, url)
    parts += [assignment_section(course, a, data[a], records, absent.get(a, []))
              for a in sorted(data) if data[a]]
    slow = sorted(records.values(), key=lambda r: -r.get("seconds", 0))[:10]
    slowest = "".join(row(html.escape(r["student"]), html.escape(r["assignment"]),
                          f"{r.get('seconds', 0):.1f}") for r in slow)
    parts.append("<h2>Slowest submissions</h2><table><tr><th>student</th><th>assignment</th><th>seconds</th>"
                 f"</tr>{slowest}</table></body></html>")
    path = course / name
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
