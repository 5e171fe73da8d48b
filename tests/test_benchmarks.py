"""``make bench``'s scripts run and report what they promise, on tiny settings (no timing is
checked here: the figures are the benchmarks' own business)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def run_bench(module: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_bench_lenet_trains_both_libraries_alike():
    """The same weights, batches and Adam steps: float32 sums in another order may flip a
    borderline test image or two (of 450) after 2 epochs, no more."""
    out = run_bench("benchmarks.bench_lenet", "--epochs", "2", "--gap", "0")
    accuracies = [float(a) for a in re.findall(r"test accuracy (\d\.\d+)", out)]
    assert len(accuracies) == 2 and abs(accuracies[0] - accuracies[1]) <= 2 / 450 + 1e-9, out
    ratio = r"time ratio cnnlib / PyTorch: [\d.]+ \(totals\), [\d.]+ \(median of the epochs\)"
    assert re.search(ratio, out), out


def test_bench_step_times_resnet20_against_its_pytorch_twin():
    out = run_bench("benchmarks.bench_step", "--threads", "1", "--batch", "4", "--rounds", "2",
                    "--block", "1")
    assert "ResNet-20 training step (272,474 parameters, 4 images" in out, out
    assert re.search(r"^cnnlib +min +[\d.]+ ms +median +[\d.]+ ms$", out, re.M), out
    assert re.search(r"^PyTorch +min +[\d.]+ ms", out, re.M), out


def test_bench_conv_lists_the_layers_asked_for_with_their_floor():
    out = run_bench("benchmarks.bench_conv", "--threads", "1", "--repeats", "1", "--floor",
                    "--layers", "LeNet C1", "ResNet-20 16->32")
    rows = [line.split()[0:3] for line in out.splitlines() if line.startswith(("LeNet", "ResNet"))]
    assert rows == [["LeNet", "C1", rows[0][2]], ["ResNet-20", "16->32", "s2"]], out
    assert "median ratio" in out and "floor" in out, out


def test_bench_split_times_the_halves_on_threads_and_in_processes():
    out = run_bench("benchmarks.bench_split", "--seconds", "0.05", "--layers", "LeNet C3")
    row = next(line for line in out.splitlines() if line.startswith("LeNet C3"))
    figures = [float(f) for f in row.split()[2:]]
    assert len(figures) == 6 and all(f > 0 for f in figures), out
    assert "halves on 2 threads" in out and "in 2 processes" in out, out
