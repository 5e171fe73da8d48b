"""cross_entropy, nll_loss, softmax and log_softmax against torch.nn.functional: weight,
ignore_index, reduction, label_smoothing, probability targets, (N, C, d1, ...) and unbatched
inputs; random settings (hypothesis), float64, the loss and its gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnlib.functional as F
from cnnlib import nn

pytestmark = pytest.mark.dense


@st.composite
def loss_settings(draw):
    c = draw(st.integers(1, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    shape = (c,) if draw(st.integers(0, 4)) == 0 else (draw(st.integers(1, 4)), c, *spatial)
    return dict(shape=shape, c=c, probabilities=draw(st.booleans()), weighted=draw(st.booleans()),
                ignore=draw(st.booleans()), reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                smoothing=draw(st.sampled_from([0.0, 0.0, 0.1, 1.0])), seed=draw(st.integers(0, 2**16)))


def arrays(s):
    rng = np.random.default_rng(s["seed"])
    x = rng.standard_normal(s["shape"]) * 3
    sample_shape = s["shape"][:1] + s["shape"][2:] if len(s["shape"]) > 1 else ()
    if s["probabilities"]:
        target = rng.dirichlet(np.ones(s["c"]), sample_shape)
        target = np.moveaxis(target, -1, 1 if len(s["shape"]) > 1 else 0)
    else:
        target = rng.integers(0, s["c"], sample_shape)
        if s["ignore"]:
            target = np.where(rng.random(sample_shape) < 0.3, -100, target)
    weight = rng.random(s["c"]) + 0.1 if s["weighted"] else None
    return x, np.asarray(target), weight


def torch_loss_and_grad(fn, x, target, weight, **kw):
    t = torch.tensor(x, requires_grad=True)
    w = None if weight is None else torch.tensor(weight)
    loss = fn(t, torch.tensor(target), weight=w, **kw)
    g = np.random.default_rng(1).standard_normal(tuple(loss.shape)) if loss.ndim else np.float64(1.5)
    loss.backward(torch.tensor(g))
    return loss.detach().numpy(), g, t.grad.numpy()


@settings(max_examples=60)
@given(s=loss_settings())
def test_cross_entropy_matches_torch(s):
    x, target, weight = arrays(s)
    kw = dict(reduction=s["reduction"], label_smoothing=s["smoothing"])
    loss, g, grad = torch_loss_and_grad(TF.cross_entropy, x, target, weight, **kw)
    ours = F.cross_entropy(x, target, weight, **kw)
    np.testing.assert_allclose(ours, loss, rtol=1e-10, atol=1e-12, err_msg=str(s))
    assert isinstance(ours, np.ndarray) == (s["reduction"] == "none")
    ours_grad = F.cross_entropy_backward(x, target, weight, **kw, grad_out=g)
    np.testing.assert_allclose(ours_grad, grad, rtol=1e-10, atol=1e-12, err_msg=str(s))


@settings(max_examples=40)
@given(s=loss_settings())
def test_nll_loss_matches_torch(s):
    x, target, weight = arrays(dict(s, probabilities=False))
    log_probs = np.asarray(TF.log_softmax(torch.tensor(x), dim=0 if x.ndim == 1 else 1))
    kw = dict(reduction=s["reduction"])
    loss, g, grad = torch_loss_and_grad(TF.nll_loss, log_probs, target, weight, **kw)
    np.testing.assert_allclose(F.nll_loss(log_probs, target, weight, **kw), loss, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(F.nll_loss_backward(log_probs, target, weight, **kw, grad_out=g), grad,
                               rtol=1e-10, atol=1e-12)


@settings(max_examples=30)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(), seed=st.integers(0, 2**16))
def test_softmax_and_log_softmax_match_torch(shape, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    x, g = rng.standard_normal(shape) * 5, rng.standard_normal(shape)
    for ours, ours_backward, theirs in ((F.softmax, F.softmax_backward, TF.softmax),
                                        (F.log_softmax, F.log_softmax_backward, TF.log_softmax)):
        t = torch.tensor(x, requires_grad=True)
        out = theirs(t, dim=dim)
        out.backward(torch.tensor(g))
        np.testing.assert_allclose(ours(x, dim), out.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours_backward(g, x, dim), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_all_targets_ignored_gives_nan_as_torch():
    x, target = np.zeros((2, 3)), np.array([-100, -100])
    assert np.isnan(TF.cross_entropy(torch.tensor(x), torch.tensor(target)).item())
    assert np.isnan(F.cross_entropy(x, target))


def test_loss_refusals_name_the_rule():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, np.array([0, 1]), reduction="average")
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(x, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\) \(one weight per class\)"):
        F.cross_entropy(x, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 4\)"):
        F.cross_entropy(np.zeros((2, 3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="needs grad_out"):
        F.cross_entropy_backward(x, np.array([0, 1]), reduction="none")
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(x, np.zeros((2, 3)))


def test_cross_entropy_module_passes_its_arguments():
    rng = np.random.default_rng(5)
    x, weight = rng.standard_normal((4, 3, 2)), rng.random(3)
    target = np.array([[0, 2], [1, -1], [2, 2], [0, 1]])
    ours = nn.CrossEntropyLoss(weight=weight, ignore_index=-1, label_smoothing=0.2)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), ignore_index=-1, label_smoothing=0.2)
    t = torch.tensor(x, requires_grad=True)
    expected = theirs(t, torch.tensor(target))
    expected.backward()
    assert ours(x, target) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(ours.backward(), t.grad.numpy(), rtol=1e-10)
