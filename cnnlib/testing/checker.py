"""The public checker: :class:`Checker`, whose ``check`` calls a student's function and judges it.

A checker is given the way to call the student's function (``call``): by default
:func:`~cnnlib.testing.monitor.call_locally`, in this process under the call monitor (a student
checking their own work in Jupyter); ``make grade`` passes one that sends the call to the
student's kernel (``grading.remote``), so that the reference, the comparison and the diagnosis
all happen outside it. ``secret`` (``make grade`` draws one per run) makes the seeds of hidden
tests and the positions the speed check samples unknowable in advance.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator

from cnnlib.testing import case_study, inputs, spec_fast
from cnnlib.testing.arguments import _bind, _describe_call, _for_reference, _freeze
from cnnlib.testing.monitor import Outcome, call_locally
from cnnlib.testing.outcome import judge
from cnnlib.testing.references import _Raises
from cnnlib.testing.specs import SPECS
from cnnlib.testing.summary import summary

Call = Callable[[str, object, tuple, dict], Outcome]  # (check name, function, frozen args, kwargs)


class Checker:
    """``grader.check("corr2d", corr2d, x, k)``: right answers pass, wrong ones raise GradingError."""

    __slots__ = ("_call", "_secret", "_hidden")

    def __init__(self, call: Call | None = None, secret: bytes | None = None):
        self._call = call if call is not None else call_locally
        self._secret, self._hidden = secret, False

    @contextlib.contextmanager
    def hidden_tests(self) -> Iterator[None]:
        """Within this block, seeds are drawn from the secret (when the checker has one)."""
        self._hidden = True
        try:
            yield
        finally:
            self._hidden = False

    def seed(self, seed: int) -> int:
        """The seed actually used: ``seed`` itself, or, in hidden tests with a secret, one derived
        from both (the same within a run, unknown before it)."""
        if self._secret is None or not self._hidden:
            return seed
        return int.from_bytes(hashlib.sha256(self._secret + repr(seed).encode()).digest()[:8], "big")

    def randn(self, *shape: int, seed: int = 0):
        """A float64 array of ``shape``, standard normal values (see :func:`cnnlib.testing.inputs.randn`)."""
        return inputs.randn(*shape, seed=self.seed(seed))

    def randint(self, low: int, high: int, *shape: int, seed: int = 0):
        """A float64 array of ``shape`` holding whole numbers in [low, high)."""
        return inputs.randint(low, high, *shape, seed=self.seed(seed))

    def randlabels(self, classes: int, *shape: int, seed: int = 0):
        """An int64 array of class labels in [0, classes) (see :func:`cnnlib.testing.inputs.randlabels`)."""
        return inputs.randlabels(classes, *shape, seed=self.seed(seed))

    @staticmethod
    def labels(literal):
        """An int64 array of class labels from (nested) lists, as a dataset's labels are."""
        return inputs.labels(literal)

    def cubic(self, size: int, seed: int = 0, scale: float = 1.0):
        """A test function for ``numerical_gradient`` (see :func:`cnnlib.testing.inputs.cubic`)."""
        return inputs.cubic(size, seed=self.seed(seed), scale=scale)

    @staticmethod
    def array(literal):
        """A float64 array from nested lists (the test cells' hand-computed examples)."""
        return inputs.array(literal)

    def check(self, name: str, function, *args, expected=None, part: str | None = None,
              only: str | None = None, **kwargs) -> None:
        """Call ``function(*args, **kwargs)`` and compare with the reference for ``name``.

        ``expected``: a hand-computed answer (nested lists); the reference must agree with it.
        ``part``: for functions returning a tuple, the one output to compare. ``only="shape"``:
        compare shapes only. Raises ``GradingError``: its first line says what failed and how.
        """
        __tracebackhide__ = True
        spec = SPECS[name]
        frozen_args = tuple(_freeze(v) for v in args)
        frozen_kwargs = {k: _freeze(v) for k, v in kwargs.items()}
        call = _describe_call(name, spec, frozen_args, frozen_kwargs)
        outcome = self._call(name, function, frozen_args, frozen_kwargs)
        bound = _bind(spec, name, tuple(_for_reference(v) for v in frozen_args),
                      {k: _for_reference(v) for k, v in frozen_kwargs.items()})
        try:
            reference, raises = spec.reference(bound), None
        except _Raises as error:
            reference, raises = None, error
        judge(spec, name, call, outcome, reference, raises, bound, expected, part, only)

    def check_speed(self, name: str, function, *args, budget: float, samples: int = 64, **kwargs) -> None:
        """Run ``function`` once on large inputs: within ``budget`` seconds, the right shape, the
        right sum over every output map, and the right values at ``samples`` secret positions."""
        __tracebackhide__ = True
        spec_fast.check_speed(self._call, self._secret, name, function, args, kwargs, budget, samples)

    def check_lenet(self, build_lenet, what: str) -> None:
        """The model ``build_lenet()`` returns: "output", "parameters", "layers" or "backward"."""
        __tracebackhide__ = True
        case_study.check_lenet(self._call, build_lenet, what)

    def check_train_epoch(self, train_epoch, what: str, lr: float = 0.5, sizes: tuple = (4, 4, 2)) -> None:
        """One epoch of SGD on a small linear classifier: "parameters" or "loss"."""
        __tracebackhide__ = True
        case_study.check_train_epoch(self._call, train_epoch, what, lr, sizes)

    def check_training(self, train_lenet, target: float, budget: float, subset: int | None = None) -> None:
        """``train_lenet(x_train, y_train)`` must reach ``target`` test accuracy within ``budget`` s."""
        __tracebackhide__ = True
        case_study.check_training(self._call, train_lenet, target, budget, subset)

    def summary(self, notebook: str | None = None) -> None:
        """Run every test cell of this notebook without stopping at the first failure; print a line
        per test cell (pass or FAIL, points) and, below a failing one, its message's first line."""
        summary(self, notebook)
