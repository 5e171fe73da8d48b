"""Training LeNet-5 on scikit-learn's digits: cnnlib against PyTorch on the CPU.

Both start from the same weights, see the same batches in the same order and take the same Adam
steps, so the accuracies should agree and only the time differs. The two train epoch by epoch in
turn (the first of each pair swapped every epoch), so that a busy minute of the machine falls on
both alike, each epoch after an untimed pause (``--gap``, 0.2 s: the other library's idle threads
spin up to 0.1 s after its work, taking a core); prints each one's total, the ratio of the totals,
the median of the per-epoch ratios and the machine's load. Run with ``make bench``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from cnnlib import data, models, nn, optim
from cnnlib.train import evaluate, fit


def torch_twin(model):
    """The same LeNet-5 in torch.nn, with cnnlib's initial weights copied in."""
    import torch

    layers = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            layers.append(torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size))
        elif isinstance(layer, nn.Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(layer.kernel_size))
        elif isinstance(layer, nn.AvgPool2d):
            layers.append(torch.nn.AvgPool2d(layer.kernel_size))
        elif isinstance(layer, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(layer, nn.Flatten):
            layers.append(torch.nn.Flatten())
        else:
            raise TypeError(f"no torch twin for {type(layer).__name__}")
    twin = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(ours.data))
    return twin


def cnnlib_epochs(model, x_train, y_train, batch_size: int, lr: float):
    """One epoch of cnnlib's training per call (``cnnlib.train.fit``); returns its seconds."""
    loader = data.BatchLoader(x_train, y_train, batch_size, seed=0)
    optimizer, loss_fn = optim.Adam(model.parameters(), lr=lr), nn.CrossEntropyLoss()

    def epoch() -> float:
        start = time.perf_counter()
        fit(model, loss_fn, optimizer, loader, 1, progress=False)
        return time.perf_counter() - start

    return epoch


def torch_epochs(twin, x_train, y_train, batch_size: int, lr: float):
    """One epoch of the PyTorch twin's training per call, the same batches; returns its seconds."""
    import torch

    loader = data.BatchLoader(x_train, y_train, batch_size, seed=0)
    optimizer, loss_fn = torch.optim.Adam(twin.parameters(), lr=lr), torch.nn.CrossEntropyLoss()

    def epoch() -> float:
        start = time.perf_counter()
        twin.train()
        for x, y in loader():
            optimizer.zero_grad()
            loss_fn(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            optimizer.step()
        return time.perf_counter() - start

    return epoch


def torch_accuracy(twin, x_test, y_test) -> float:
    import torch

    twin.eval()
    with torch.no_grad():
        predicted = twin(torch.from_numpy(x_test)).argmax(1).numpy()
    return float(np.mean(predicted == y_test))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds of pause before each epoch")
    args = parser.parse_args()
    splits = data.load_digits(size=32, seed=0)
    x_train, y_train, x_test, y_test = splits
    nn.manual_seed(0)
    model = models.lenet5()
    twin = torch_twin(model)
    settings = (x_train, y_train, args.batch_size, args.lr)
    epochs = {"cnnlib": cnnlib_epochs(model, *settings), "PyTorch": torch_epochs(twin, *settings)}
    seconds: dict[str, list[float]] = {name: [] for name in epochs}
    load = os.getloadavg()[0]
    for epoch in range(args.epochs):
        for name in list(epochs)[:: -1 if epoch % 2 else 1]:
            time.sleep(args.gap)
            seconds[name].append(epochs[name]())
    ours, theirs = sum(seconds["cnnlib"]), sum(seconds["PyTorch"])
    per_epoch = statistics.median(a / b for a, b in zip(seconds["cnnlib"], seconds["PyTorch"]))
    print(f"LeNet-5 on the digits ({len(x_train)} train, {len(x_test)} test images, "
          f"{args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}), "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, epochs alternating; "
          f"load average {load:.2f}")
    print(f"cnnlib  {ours:6.2f} s   test accuracy {evaluate(model, x_test, y_test):.4f}")
    print(f"PyTorch {theirs:6.2f} s   test accuracy {torch_accuracy(twin, x_test, y_test):.4f}")
    print(f"time ratio cnnlib / PyTorch: {ours / theirs:.2f} (totals), {per_epoch:.2f} (median of the "
          f"epochs); load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
