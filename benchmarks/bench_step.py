"""A whole training step of ResNet-20 on CIFAR-sized images: cnnlib against PyTorch on the CPU.

bench_conv times one layer at a time; this times what a student's training loop does, every
layer's forward and backward one after the other (the convolutions, BatchNorm, ReLU, the
residual sums, the pooling and the classifier) and the loss. That is where cnnlib's choices
between BLAS's threads and threads of its own show (``cnnlib/functional/batch_threads.py``,
``winograd.py``): timed alone after a pause a layer on two threads of its own can lose, within
a training loop it wins. Both networks are built the same way (``models.resnet_cifar``: 16, 32
and 64 channels, 1x1 convolution + BatchNorm shortcuts; the parameter counts are checked to
agree), float32, in training mode. Steps run in blocks, the two libraries alternating block
by block, and the first step of each block is not timed, so that neither finds the other's
threads still spinning. glibc's malloc keeps freed memory for both, as in bench_conv
(``keep_freed_memory``). Prints the fastest and the median step of each, their ratios and the
machine's load. Run with ``make bench`` (1 thread, then 2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks.bench_conv import keep_freed_memory
from cnnlib import models, nn


def torch_resnet(stem, widths: tuple[int, ...], blocks: tuple[int, ...], num_classes: int):
    """A PyTorch ResNet of basic blocks, as ``cnnlib.models`` builds them: ``stem`` (a torch
    module), then per stage ``blocks[s]`` blocks of ``widths[s]`` channels (the first of each
    later stage at stride 2, with a 1x1 convolution + BatchNorm shortcut where the shape
    changes), global average pooling and the classifier."""
    import torch.nn as tn

    class Block(tn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.main = tn.Sequential(
                tn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), tn.BatchNorm2d(c_out), tn.ReLU(),
                tn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), tn.BatchNorm2d(c_out))
            self.shortcut = tn.Identity() if stride == 1 and c_in == c_out else tn.Sequential(
                tn.Conv2d(c_in, c_out, 1, stride, bias=False), tn.BatchNorm2d(c_out))

        def forward(self, x):
            return (self.main(x) + self.shortcut(x)).relu()

    layers, channels = [stem], widths[0]
    for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        for i in range(count):
            layers.append(Block(channels, width, 2 if stage and not i else 1))
            channels = width
    return tn.Sequential(*layers, tn.AdaptiveAvgPool2d(1), tn.Flatten(), tn.Linear(channels, num_classes))


def torch_resnet_cifar(depth: int, num_classes: int = 10):
    """PyTorch's twin of ``models.resnet_cifar(depth)`` (its own initial weights)."""
    import torch.nn as tn

    stem = tn.Sequential(tn.Conv2d(3, 16, 3, padding=1, bias=False), tn.BatchNorm2d(16), tn.ReLU())
    n = (depth - 2) // 6
    return torch_resnet(stem, (16, 32, 64), (n, n, n), num_classes)


def step_times(steps: dict, rounds: int, block: int) -> dict:
    """Seconds per step of each of ``steps`` (name -> callable): ``rounds`` blocks of ``block``
    timed steps each, after one untimed step, the names' order reversed every other round."""
    times: dict = {name: [] for name in steps}
    for round_ in range(rounds):
        names = list(steps)[:: -1 if round_ % 2 else 1]
        for name in names:
            steps[name]()
            for _ in range(block):
                start = time.perf_counter()
                steps[name]()
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch threads (NumPy's BLAS follows OPENBLAS_NUM_THREADS)")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = keep_freed_memory()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch)

    nn.manual_seed(0)
    model, loss = models.resnet_cifar(args.depth), nn.CrossEntropyLoss()
    model.train()
    twin, twin_loss = torch_resnet_cifar(args.depth), torch.nn.CrossEntropyLoss()
    twin.train()
    ours_params = sum(p.data.size for p in model.parameters())
    if ours_params != sum(p.numel() for p in twin.parameters()):
        raise SystemExit("bench_step: the PyTorch twin does not have cnnlib's parameters")
    x_torch, labels_torch = torch.from_numpy(x), torch.from_numpy(labels)

    def cnnlib_step() -> None:
        model.zero_grad()
        loss(model(x), labels)
        model.backward(loss.backward())

    def torch_step() -> None:
        twin.zero_grad()
        twin_loss(twin(x_torch), labels_torch).backward()

    load = os.getloadavg()[0]
    times = step_times({"cnnlib": cnnlib_step, "PyTorch": torch_step}, args.rounds, args.block)
    print(f"ResNet-{args.depth} training step ({ours_params:,} parameters, {args.batch} images of "
          f"3x32x32, float32), torch {torch.__version__} ({torch.get_num_threads()} threads), NumPy "
          f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, {args.rounds} rounds "
          f"of {args.block} steps; {malloc or 'glibc malloc as it is'}; load average {load:.2f}")
    for name, seconds in times.items():
        print(f"{name:<8} min {min(seconds) * 1e3:8.1f} ms   "
              f"median {statistics.median(seconds) * 1e3:8.1f} ms")
    ours, theirs = times["cnnlib"], times["PyTorch"]
    print(f"ratio cnnlib / PyTorch: {min(ours) / min(theirs):.2f} (fastest), "
          f"{statistics.median(ours) / statistics.median(theirs):.2f} (medians); "
          f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
