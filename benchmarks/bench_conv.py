"""conv2d forward + backward (float32): cnnlib against PyTorch on the CPU.

Run with ``make bench`` (once single-threaded, once with 2 threads). Prints one row per layer:
the fastest and the median time of each over the repeats, timed alternately so that load falls
on both alike, and the ratio cnnlib / PyTorch of the fastest; then the median ratio and the
machine's load average before and after. Layers: small-channel (LeNet-5's), CIFAR-sized,
strided, large-image (ResNet's 64->64 at 56x56) and deep (VGG's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

import cnnlib.functional as F


@dataclass(frozen=True)
class Layer:
    name: str
    batch: int
    c_in: int
    c_out: int
    size: int
    kernel: int
    stride: int = 1
    padding: int = 0

    def arrays(self, rng):
        x = rng.standard_normal((self.batch, self.c_in, self.size, self.size), dtype=np.float32)
        w = rng.standard_normal((self.c_out, self.c_in, self.kernel, self.kernel), dtype=np.float32)
        return x, w, rng.standard_normal(self.c_out, dtype=np.float32)


LAYERS = [
    Layer("LeNet C1", 64, 1, 6, 32, 5),
    Layer("LeNet C3", 64, 6, 16, 14, 5),
    Layer("CIFAR conv1", 32, 3, 32, 32, 3, padding=1),
    Layer("CIFAR conv2", 32, 32, 64, 16, 3, padding=1),
    Layer("CIFAR conv3 s2", 32, 64, 128, 16, 3, stride=2, padding=1),
    Layer("ResNet 64@56", 4, 64, 64, 56, 3, padding=1),
    Layer("VGG conv2_1", 4, 64, 128, 56, 3, padding=1),
    Layer("VGG conv3_2", 4, 256, 256, 28, 3, padding=1),
    Layer("VGG conv4_2", 4, 512, 512, 14, 3, padding=1),
]


def paired_times(first, second, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each of two calls, ``repeats`` times, timed alternately after a warm-up of each,
    so that any load on the machine falls on both alike."""
    first(), second()
    times: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for fn, bucket in zip((first, second), times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return times


def cnnlib_step(layer: Layer, x, w, b, grad_out):
    kwargs = dict(stride=layer.stride, padding=layer.padding)
    F.conv2d(x, w, b, **kwargs)
    F.conv2d_backward(grad_out, x, w, **kwargs)


def torch_step(layer: Layer, x, w, b, grad_out):
    import torch

    tensors = [torch.from_numpy(a).requires_grad_() for a in (x, w, b)]
    out = torch.nn.functional.conv2d(*tensors, stride=layer.stride, padding=layer.padding)
    out.backward(torch.from_numpy(grad_out))


def measure(layers=LAYERS, repeats: int = 5, seed: int = 0) -> list[dict]:
    """Time every layer both ways; one dict per layer with the two times and their ratio."""
    rows = []
    rng = np.random.default_rng(seed)
    for layer in layers:
        x, w, b = layer.arrays(rng)
        out = F.conv2d(x, w, b, stride=layer.stride, padding=layer.padding)
        grad_out = rng.standard_normal(out.shape, dtype=np.float32)
        args = (layer, x, w, b, grad_out)
        ours, theirs = paired_times(partial(cnnlib_step, *args), partial(torch_step, *args), repeats)
        rows.append(dict(layer=layer.name, cnnlib_s=min(ours), torch_s=min(theirs),
                         cnnlib_median_s=statistics.median(ours), torch_median_s=statistics.median(theirs),
                         ratio=min(ours) / min(theirs)))
    return rows


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch threads (NumPy BLAS follows OPENBLAS_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"conv2d forward+backward, float32, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), NumPy BLAS threads: {blas}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'layer':<16}{'cnnlib min':>11}{'median':>9}{'torch min':>11}{'median':>9}{'ratio':>7}  (ms)")
    rows = measure(repeats=args.repeats)
    for r in rows:
        print(f"{r['layer']:<16}{r['cnnlib_s'] * 1e3:>11.2f}{r['cnnlib_median_s'] * 1e3:>9.2f}"
              f"{r['torch_s'] * 1e3:>11.2f}{r['torch_median_s'] * 1e3:>9.2f}{r['ratio']:>7.2f}")
    print(f"median ratio: {statistics.median(r['ratio'] for r in rows):.2f}, worst "
          f"{max(rows, key=lambda r: r['ratio'])['layer']} {max(r['ratio'] for r in rows):.2f}; "
          f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
