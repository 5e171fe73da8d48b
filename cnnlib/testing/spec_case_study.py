"""Assignment 6, the case study: accuracy (the model and training checks are in case_study).

Each graded function: its reference, the formula shown on a failure, and the mistakes it
recognises (each computed from the same inputs).
"""

from cnnlib.testing.integrity import _CASE_STUDY_ALLOWED, _FORBIDDEN
from cnnlib.testing.references import _Raises
from cnnlib.testing.spec import _REQUIRED, _Spec


def _accuracy(a):
    logits, labels = a["logits"], a["labels"]
    n, classes = logits[0]
    if labels[0] != (n,):
        raise _Raises(ValueError, f"labels of shape {labels[0]} do not fit the logits",
                      f"logits of shape {logits[0]} need labels of shape ({n},)")
    correct = 0
    for i in range(n):
        row = logits[1][i * classes:(i + 1) * classes]
        correct += row.index(max(row)) == labels[1][i]
    return correct / n


def _accuracy_mistakes(a):
    n = a["logits"][0][0]
    yield "a count instead of a fraction: divide the number of correct predictions by N", \
        lambda: _accuracy(a) * n
    yield "the error rate (1 - accuracy)", lambda: 1 - _accuracy(a)
    yield "a percentage: return a fraction between 0 and 1", lambda: _accuracy(a) * 100


SPECS = {
    "accuracy": _Spec(
        (("logits", _REQUIRED), ("labels", _REQUIRED)), _accuracy,
        "the fraction of rows whose largest logit is at the label's index", kind="float",
        mistakes=_accuracy_mistakes, forbidden=_FORBIDDEN, allowed=_CASE_STUDY_ALLOWED),
}
