"""Training LeNet-5 on scikit-learn's digits: cnnlib against PyTorch on the CPU.

Both start from the same weights, see the same batches in the same order and take the same
Adam steps, so the accuracies should agree and only the time differs. Run with ``make bench``.
"""

from __future__ import annotations

import argparse
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


def train_cnnlib(model, splits, epochs: int, batch_size: int, lr: float):
    x_train, y_train, x_test, y_test = splits
    loader = data.BatchLoader(x_train, y_train, batch_size, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    fit(model, nn.CrossEntropyLoss(), optimizer, loader, epochs, progress=False)
    seconds = time.perf_counter() - start
    return seconds, evaluate(model, x_test, y_test)


def train_torch(twin, splits, epochs: int, batch_size: int, lr: float):
    import torch

    x_train, y_train, x_test, y_test = splits
    loader = data.BatchLoader(x_train, y_train, batch_size, seed=0)
    optimizer = torch.optim.Adam(twin.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    twin.train()
    for _ in range(epochs):
        for x, y in loader():
            optimizer.zero_grad()
            loss_fn(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    twin.eval()
    with torch.no_grad():
        predicted = twin(torch.from_numpy(x_test)).argmax(1).numpy()
    return seconds, float(np.mean(predicted == y_test))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    splits = data.load_digits(size=32, seed=0)
    nn.manual_seed(0)
    model = models.lenet5()
    twin = torch_twin(model)
    settings = (splits, args.epochs, args.batch_size, args.lr)
    ours, our_accuracy = train_cnnlib(model, *settings)
    theirs, their_accuracy = train_torch(twin, *settings)
    print(f"LeNet-5 on the digits ({len(splits[0])} train, {len(splits[2])} test images, "
          f"{args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}), "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"cnnlib  {ours:6.2f} s   test accuracy {our_accuracy:.4f}")
    print(f"PyTorch {theirs:6.2f} s   test accuracy {their_accuracy:.4f}")
    print(f"time ratio cnnlib / PyTorch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
