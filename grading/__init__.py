"""``make grade``: sandboxed, parallel nbgrader autograding with a gradebook, CSV and report.

- :mod:`grading.sandbox`: the bubblewrap command line, the wrapping kernelspec, the memory cgroup;
- :mod:`grading.execute`: nbgrader preprocessors (time budget, dead kernel, output bytes, test
  cells run outside the kernel, hidden tests kept out of feedback);
- :mod:`grading.remote`: a test cell run in the grading process, calling the student's functions
  in the kernel (:mod:`grading.kernel_side`) over a data-only wire format (:mod:`grading.portable`);
- :mod:`grading.jobs`: a job and its result, as data; :mod:`grading.cluster`: jobs on Dask;
- :mod:`grading.server`: the long-lived grading process of a worker; :mod:`grading.slot`: a job's
  folders; :mod:`grading.zygote`: the sandbox that forks each job's fresh kernel;
  :mod:`grading.worker`: one job graded in-process by nbgrader;
- :mod:`grading.run`: the whole run (gradebook from ``solutions/``, jobs, serial merge, CSV);
- :mod:`grading.report`: the HTML report; :mod:`grading.demo`: the demo class.
"""

import sys

# jsonschema's optional checker of the "iri" formats (the rfc3987-syntax package) builds a Lark
# grammar when it is imported: 1.3 s of CPU in every process that imports nbformat (the run, each
# grading process, each nbgrader command). Nothing here validates IRIs (notebooks are validated with
# fastjsonschema), so it is kept out: jsonschema then leaves those formats unchecked, as it does
# where the package is not installed.
sys.modules.setdefault("rfc3987_syntax", None)
