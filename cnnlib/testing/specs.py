"""Every graded function's spec, by name: the exercises' spec modules put together."""

from cnnlib.testing import (
    spec_backprop,
    spec_case_study,
    spec_channels,
    spec_convolution,
    spec_everything,
    spec_fast,
    spec_pooling,
)
from cnnlib.testing.integrity import _CASE_STUDY_ALLOWED
from cnnlib.testing.spec import _Spec

SPECS = {name: spec for module in (spec_convolution, spec_channels, spec_pooling, spec_backprop,
                                   spec_everything, spec_case_study, spec_fast)
         for name, spec in module.SPECS.items()}
# The case study's functions (build_lenet, train_epoch, train_lenet) build and train with cnnlib.nn.
CASE_STUDY = _Spec((), None, "", allowed=_CASE_STUDY_ALLOWED)


def spec_of(name: str) -> _Spec:
    return SPECS.get(name, CASE_STUDY)
