"""cnnlib.optim: SGD and Adam take the same steps as torch.optim, given the same gradients."""

import numpy as np
import pytest
import torch

from cnnlib import nn, optim

pytestmark = pytest.mark.nn

SHAPES = [(3, 2, 3, 3), (3,), (4, 5)]


def _run_both(make_ours, make_theirs, steps=6, dtype=np.float64):
    """Same initial parameters and the same gradient sequence; returns both final parameters."""
    rng = np.random.default_rng(0)
    ours = [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt, opt_t = make_ours(ours), make_theirs(theirs)
    for _ in range(steps):
        opt.zero_grad()
        opt_t.zero_grad()
        for p, t in zip(ours, theirs, strict=True):
            grad = rng.standard_normal(p.shape).astype(dtype)
            p.grad += grad
            t.grad = torch.tensor(grad)
        opt.step()
        opt_t.step()
    return ours, theirs


CASES = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_momentum_weight_decay": (
        lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
    ),
    "adam": (lambda p: optim.Adam(p), lambda p: torch.optim.Adam(p)),
    "adam_all_options": (
        lambda p: optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimiser_matches_torch_step_for_step(case):
    ours, theirs = _run_both(*CASES[case])
    for index, (p, t) in enumerate(zip(ours, theirs, strict=True)):
        error = np.max(np.abs(p.data - t.detach().numpy()))
        assert error < 1e-6, f"{case}: parameter {index} is {error:.2e} away from torch's"
    start = np.random.default_rng(0).standard_normal(SHAPES[0])  # _run_both's first parameter
    assert np.abs(ours[0].data - start).max() > 1e-3, f"{case}: the parameters did not move"


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimiser_keeps_float32_parameters_float32(case):
    ours, theirs = _run_both(*CASES[case], steps=3, dtype=np.float32)
    for p, t in zip(ours, theirs, strict=True):
        assert p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_zero_grad_clears_every_gradient():
    params = [nn.Parameter(np.ones(3)), nn.Parameter(np.ones((2, 2)))]
    for p in params:
        p.grad += 5
    optim.SGD(params, lr=0.1).zero_grad()
    assert all(not p.grad.any() for p in params)


def test_optimisers_update_a_models_parameters_in_place():
    nn.manual_seed(0)
    model = nn.Linear(3, 2)
    weight, before = model.weight.data, model.weight.data.copy()
    opt = optim.Adam(model.parameters(), lr=0.1)
    model.weight.grad += 1.0
    opt.step()
    assert model.weight.data is weight  # updated in place: other references see the step
    np.testing.assert_allclose(weight, before - 0.1, rtol=1e-6)  # Adam's first step is lr * sign


def test_arguments_are_checked():
    params = [nn.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="empty list of parameters"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="not a Parameter"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a number >= 0"):
        optim.SGD(params, lr=-1)
    with pytest.raises(ValueError, match="betas must be two numbers in"):
        optim.Adam(params, betas=(0.9, 1.0))
