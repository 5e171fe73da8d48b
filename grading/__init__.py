"""``make grade``: sandboxed, parallel nbgrader autograding with a gradebook, CSV and report.

- :mod:`grading.sandbox`: the bubblewrap command line, the wrapping kernelspec, the memory cgroup;
- :mod:`grading.execute`: nbgrader preprocessors (time budget, dead kernel, output bytes, test
  cells run outside the kernel, hidden tests kept out of feedback);
- :mod:`grading.remote`: a test cell run in the grading process, calling the student's functions
  in the kernel (:mod:`grading.kernel_side`) over a data-only wire format (:mod:`grading.portable`);
- :mod:`grading.jobs`: a job and its result, as data; :mod:`grading.cluster`: jobs on Dask;
- :mod:`grading.server`: the long-lived grading process of a worker; :mod:`grading.warm`: a job's
  slot and its kernel started ahead; :mod:`grading.worker`: one job graded in-process by nbgrader;
- :mod:`grading.run`: the whole run (gradebook from ``solutions/``, jobs, serial merge, CSV);
- :mod:`grading.report`: the HTML report; :mod:`grading.demo`: the demo class.
"""
