"""Shared test settings: deterministic hypothesis, and the devices parity tests run on."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# Parity tests run on the CPU always, and again on CUDA (marked gpu) where a GPU is present.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[
        pytest.mark.gpu, pytest.mark.skipif(not _cuda_available(), reason="no CUDA GPU"),
    ]),
]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
