"""The grading report: one offline HTML page with embedded PNG plots.

Score distribution per assignment, pass rate of each test cell, the slowest submissions and
the submissions with messages (failures, dead kernels, timeouts, bad notebooks).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def scores(results) -> dict:
    """assignment -> {student: (score, max score)}; test cell -> [passed, total]."""
    totals, cells = {}, {}
    for result in results:
        score = maximum = 0.0
        for notebook in result.grades.values():
            for name, grade in notebook.items():
                if "max_score" not in grade:
                    continue
                got = grade["manual_score"]
                got = grade["auto_score"] or 0.0 if got is None else got
                score, maximum = score + got, maximum + grade["max_score"]
                key = (result.assignment, name)
                cells.setdefault(key, [0, 0])
                cells[key][0] += got >= grade["max_score"]
                cells[key][1] += 1
        totals.setdefault(result.assignment, {})[result.student] = (score, maximum)
    for assignment, by_student in totals.items():  # ungraded notebooks: 0 of the full score
        full = max(m for _, m in by_student.values())
        for student, (score, _) in by_student.items():
            by_student[student] = (score, full)
        for key in cells:
            if key[0] == assignment:
                cells[key][1] = len(by_student)
    return {"totals": totals, "cells": cells}


def write_report(course: Path, results, name: str = "grading_report.html") -> Path:
    data = scores(results)
    parts = ["<!doctype html><meta charset=utf-8><title>Grading report</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;"
             "border-bottom:1px solid #ddd;text-align:left}</style>",
             f"<h1>Grading report</h1><p>{len(results)} submissions.</p>"]
    for assignment, by_student in sorted(data["totals"].items()):
        values = [s for s, _ in by_student.values()]
        maximum = max((m for _, m in by_student.values()), default=0) or 1
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), layout="constrained",
                                 gridspec_kw={"width_ratios": [1, 1.3]})
        axes[0].hist(values, bins=min(20, max(5, len(values))), range=(0, maximum), color="#4477aa")
        axes[0].set(title=f"{assignment}: score distribution", xlabel=f"score (of {maximum:g})",
                    ylabel="students")
        cells = sorted((k[1], v) for k, v in data["cells"].items() if k[0] == assignment)
        axes[1].barh([c for c, _ in cells], [p / t for _, (p, t) in cells], color="#66aa55")
        axes[1].set(title="pass rate per test cell", xlim=(0, 1))
        axes[1].tick_params(axis="y", labelsize=7)
        axes[1].invert_yaxis()
        parts.append(f"<h2>{html.escape(assignment)}</h2>{_png(fig)}")
    parts.append("<h2>Slowest submissions</h2><table>"
                 "<tr><th>student</th><th>assignment</th><th>seconds</th></tr>")
    for result in sorted(results, key=lambda r: -r.seconds)[:10]:
        parts.append(f"<tr><td>{html.escape(result.student)}</td><td>{html.escape(result.assignment)}</td>"
                     f"<td>{result.seconds:.1f}</td></tr>")
    parts.append("</table><h2>Failing submissions and messages</h2><table><tr><th>student</th>"
                 "<th>assignment</th><th>score</th><th>messages</th></tr>")
    for result in sorted(results, key=lambda r: (r.assignment, r.student)):
        score, maximum = data["totals"].get(result.assignment, {}).get(result.student, (0.0, 0.0))
        if result.messages or result.failed or score < maximum:
            messages = "<br>".join(html.escape(m) for m in result.messages)
            parts.append(f"<tr><td>{html.escape(result.student)}</td><td>{html.escape(result.assignment)}</td>"
                         f"<td>{score:g} / {maximum:g}</td><td>{messages}</td></tr>")
    parts.append("</table>")
    path = course / name
    path.write_text("\n".join(parts))
    return path
