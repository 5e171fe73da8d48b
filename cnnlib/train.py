"""Training loop helpers: ``fit`` a model, ``evaluate`` its accuracy, ``predict`` classes.

``fit`` runs, for every batch, the five steps every training loop has:
zero the gradients, forward, loss, backward, optimiser step. It puts the model in ``train()``
mode for training and ``eval()`` mode for measuring validation accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .nn.module import Module
from .optim import Optimizer

Batches = Iterable[tuple[np.ndarray, np.ndarray]]


@dataclass
class History:
    """Per-epoch records of a ``fit``: one entry per epoch in each list.

    ``train_loss`` and ``train_accuracy`` are averaged over the epoch's examples (measured on
    the fly, in training mode); ``val_accuracy`` is empty unless ``val_data`` was given.
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.train_loss)


@contextmanager
def evaluation_mode(model: Module) -> Iterator[Module]:
    """Put ``model`` in eval() mode for the ``with`` block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def predict(model: Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted classes, ``argmax`` of the logits, computed in eval() mode batch by batch.

    x: (N, ...) -> (N,) integer class indices. The model's mode is restored afterwards.
    """
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be >= 1, got {batch_size}")
    with evaluation_mode(model):
        parts = [model(x[i : i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros(0, np.intp)


def evaluate(model: Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Accuracy of ``model`` on ``(x, y)``: the fraction of examples classified correctly.

    x: (N, ...), y: (N,) integer classes -> a float in [0, 1]; computed in eval() mode.
    """
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"evaluate: x and y need the same non-zero length, got {len(x)} and {len(y)}"
        )
    return float(np.mean(predict(model, x, batch_size) == y))


def train_step(
    model: Module, loss_fn: Module, optimizer: Optimizer, x: np.ndarray, y: np.ndarray
) -> tuple[float, int]:
    """One optimisation step on one batch; returns (loss, number of correct predictions)."""
    optimizer.zero_grad()
    logits = model(x)
    loss = loss_fn(logits, y)
    model.backward(loss_fn.backward())  # type: ignore[call-arg]
    optimizer.step()
    return loss, int(np.sum(logits.argmax(axis=1) == y))


def _epoch_source(train_batches: Callable[[], Batches] | Batches) -> Callable[[], Batches]:
    """Turn ``train_batches`` into a function giving a fresh iterable of batches per epoch."""
    if callable(train_batches):
        return train_batches
    if iter(train_batches) is train_batches:
        raise TypeError(
            "fit: train_batches is an iterator, which runs dry after one epoch; pass a "
            "function returning a fresh one each epoch, e.g. cnnlib.data.BatchLoader(x, y, 64)"
        )
    return lambda: train_batches


def _length(batches: object) -> int | None:
    """The number of batches, when known (a list, or ``cnnlib.data.BatchLoader``), for tqdm."""
    return len(batches) if hasattr(batches, "__len__") else None


def _train_epoch(
    model: Module, loss_fn: Module, optimizer: Optimizer, batches: Batches, bar: tqdm
) -> tuple[float, float]:
    """Train on every batch once; returns the epoch's mean loss and accuracy."""
    total_loss, correct, seen = 0.0, 0, 0
    model.train()
    for x, y in batches:
        loss, batch_correct = train_step(model, loss_fn, optimizer, x, y)
        total_loss += loss * len(y)
        correct += batch_correct
        seen += len(y)
        bar.update(1)
        # refresh=False: tqdm redraws at most every 0.1 s, not once per batch.
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
    if seen == 0:
        raise ValueError("fit: train_batches gave no batches for this epoch")
    return total_loss / seen, correct / seen


def fit(
    model: Module, loss_fn: Module, optimizer: Optimizer, train_batches: Callable[[], Batches] | Batches,
    epochs: int,
    val_data: tuple[np.ndarray, np.ndarray] | None = None, progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` passes over the data; returns the per-epoch ``History``.

    ``train_batches`` is a function returning an iterable of ``(x, y)`` batches, called once per
    epoch so each epoch can reshuffle (``cnnlib.data.BatchLoader(x, y, 64)`` is one), or a
    re-iterable such as a list of batches. ``val_data = (x_val, y_val)`` adds validation
    accuracy after each epoch. ``progress`` shows one tqdm bar per epoch with the running loss
    and accuracy. The model is left in eval() mode, ready for ``predict``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    source = _epoch_source(train_batches)
    history = History()
    for epoch in range(1, epochs + 1):
        batches = source()
        total = _length(batches) or _length(train_batches)
        desc = f"epoch {epoch}/{epochs}"
        with tqdm(total=total, desc=desc, unit="batch", disable=not progress) as bar:
            loss, accuracy = _train_epoch(model, loss_fn, optimizer, batches, bar)
            history.train_loss.append(loss)
            history.train_accuracy.append(accuracy)
            if val_data is not None:
                history.val_accuracy.append(evaluate(model, *val_data))
                bar.set_postfix(
                    loss=f"{loss:.4f}", acc=f"{accuracy:.3f}", val=f"{history.val_accuracy[-1]:.3f}"
                )
    model.eval()
    return history
