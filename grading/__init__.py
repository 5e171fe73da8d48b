"""``make grade``: sandboxed, parallel nbgrader autograding with a gradebook, CSV and report.

- :mod:`grading.sandbox`: the bubblewrap command line and the wrapping kernelspec;
- :mod:`grading.execute`: nbgrader preprocessors (time budget, dead kernel, output bytes,
  hidden tests kept out of feedback);
- :mod:`grading.worker`: one submission graded in its own private course directory;
- :mod:`grading.run`: the whole run (gradebook from ``solutions/``, workers, serial merge, CSV);
- :mod:`grading.report`: the HTML report; :mod:`grading.demo`: the demo class.
"""
