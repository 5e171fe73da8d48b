"""The graded notebooks' checker: expected against got, the formula, and the likely mistake.

A locked setup cell of each notebook makes the checker available once::

    from cnnlib.testing import grader

and each test cell is a docstring and one or two checks::

    grader.check("corr2d", corr2d, grader.randn(4, 4, seed=1), grader.randn(2, 2, seed=2))

``check`` works out the expected answer with plain Python loops over tuples (no NumPy
arithmetic, no cnnlib layer), calls the student's function on fresh copies of the inputs, and
raises :class:`GradingError` when the answers differ. Its first line says what failed and how
("corr2d: shape (2, 2), expected (3, 3): one row and column too few"); the lines below give the
call, the formula and, when the answer is exactly what a known mistake computes, that mistake by
name: every mistake is computed, not guessed. ``grader.summary()`` runs every test cell of the
notebook and lists what passes.

Public interface: :class:`Checker` (``Checker(call=..., secret=...)``), :class:`Outcome` (what one
call of a student's function gave), :func:`call_locally` (the default ``call``: in this process,
under the call monitor), :class:`GradingError`, and ``grader = Checker()``. ``make grade``
(``grading.remote``) runs test cells outside the student's kernel with a ``Checker`` whose
``call`` asks the kernel to run the student's function (through :func:`call_locally`) and send
back data; the reference, the comparison and the diagnosis happen outside the kernel.

The modules, one concern each: ``integrity`` (genuine builtins and NumPy comparisons), ``monitor``
(the call monitor), ``tensors`` and ``references`` (tuple tensors and reference loops),
``arguments``, ``compare`` and ``outcome`` (freezing inputs, comparing, explaining), ``errors``
(short messages without checker frames), ``case_study``, ``summary``, and one ``spec_*`` module
per assignment with its functions' references and named mistakes side by side (``specs`` puts
them together). To add an exercise, write its ``spec_*`` module and add it to ``specs``.

Known limits. Inside the student's own kernel the checks are best effort: the call monitor and
the integrity checks see replaced builtins, NumPy comparisons and checker functions, but not
IPython input transformers, edited files on disk, a rebound ``grader`` or a swapped
``importlib``. ``make grade`` does not rely on them. There, once a notebook has started threads,
each call runs in a child process forked for it, so they do not run during it
(``grading.kernel_side``); but a
notebook that rewrites the grader's requests (or works in a subprocess, or through C code
without a Python frame) can
answer them with a library's result: the grade then rewards a correct answer that the
student's own function did not compute. The speed check's clock includes the trip to the kernel
and back. A model trained in the kernel is judged by its weights on the test digits, but nothing
shows which data it was trained on; a student who copies a reference implementation's source is
not detected. Introspection called by ``collections``, ``typing``, NumPy or ``scipy._lib`` is let
through. The checks of NumPy's functions expect NumPy >= 1.25.
"""

from cnnlib.testing import integrity, summary  # noqa: F401  (summary: loaded before the snapshot)
from cnnlib.testing.checker import Checker
from cnnlib.testing.errors import GradingError
from cnnlib.testing.monitor import Outcome, call_locally

grader = Checker()

__all__ = ["Checker", "GradingError", "Outcome", "call_locally", "grader"]

integrity.mark_loaded()  # last: the checker as loaded from disk, to see anything replaced later
