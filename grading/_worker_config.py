"""nbgrader's configuration in one worker's private course folder: fixed code, settings as data.

:mod:`grading.worker` copies this file as the private course's ``nbgrader_config.py`` and writes
the submission's settings next to it as ``worker.json`` (paths, the kernel's name, limits); nothing
of it is generated Python. The course's own ``nbgrader_config.py`` is loaded first, then pointed
at the private folder, the sandboxed kernel and the preprocessors of :mod:`grading.execute`.
"""

import json
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader import preprocessors as nbgrader

from grading.execute import HideTests, SandboxExecute

c = get_config()  # noqa: F821  (traitlets provides it)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.json")) as _handle:
    _settings = json.load(_handle)
_course = _settings["course_config"]
with open(_course) as _handle:
    exec(compile(_handle.read(), _course, "exec"), {"get_config": lambda: c, "__file__": _course})
c.CourseDirectory.root = _settings["root"]
c.CourseDirectory.db_url = "sqlite:///" + _settings["db"]
c.CourseDirectory.source_directory = "source"
c.Autograde.autograde_preprocessors = [
    SandboxExecute, nbgrader.IgnorePattern, ClearMetadataPreprocessor, nbgrader.LimitOutput,
    nbgrader.SaveAutoGrades, nbgrader.AssignLatePenalties, nbgrader.CheckCellMetadata]
c.GenerateFeedback.preprocessors = [nbgrader.GetGrades, HideTests, CSSHTMLHeaderPreprocessor]
c.Execute.kernel_name = _settings["kernel"]
c.Execute.extra_arguments = []
c.SandboxExecute.notebook_timeout = float(_settings["seconds"])
c.SandboxExecute.max_output_bytes = int(_settings["output_bytes"])
c.SandboxExecute.memory_cgroup = str(_settings["cgroup"])
c.KernelManager.transport = "ipc"
c.Autograde.create_student = True
