"""nbgrader's configuration for the course: solutions/ is the source, exercises/ the release.

``make release`` regenerates exercises/ from solutions/ (never edit exercises/ by hand); the
gradebook (gradebook.db) and the submitted/, autograded/ and feedback/ folders live next to this
file and are not committed.
"""

import os

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.root = _ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_ROOT, "gradebook.db")
# Release notebooks only: nothing else in solutions/ (scratch files, checkpoints) belongs in exercises/.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.md"]

# Students' notebooks run against the gradebook's copy of every test cell; a test cell deleted
# from a submission is put back rather than silently skipped.
c.OverwriteCells.add_missing_cells = True
# The case study trains a network inside a test cell; every other cell takes seconds.
c.Execute.timeout = 300
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
