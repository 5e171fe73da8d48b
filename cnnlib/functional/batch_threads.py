"""Small float32 convolutions on several cores: the batch split across threads, one BLAS thread each.

With one BLAS thread a convolution is im2col's copies (numpy, one core) plus one matrix product.
Given two BLAS threads, a large layer's products halve and they are most of its time; a small
layer's products (LeNet's, CIFAR's first) are too thin to gain from a second BLAS thread, and
its copies, a good half of its time, stay on one core. For those, ``over_batch`` runs the layer
on the halves of the batch at once, in two Python threads (numpy lets go of the GIL in its
copies, its ufuncs and BLAS), with BLAS on one thread meanwhile: the copies and the products
both run on both cores.

Where: ``batch_parts`` splits float32 layers of at most ``MAX_WORK`` multiply-adds per image
(``C_out C_in / groups K_h K_w H_out W_out``: CIFAR's 3 -> 32; not LeNet's C1 and C3, whose
products are most of their time, see ``batch_parts``), when numpy's
BLAS has more than one thread and the batch at least as many images. Those are the layers whose
forward took as long on 2 BLAS threads as on 1 (LeNet C3: 1.5 ms either way). Measured on 2
cores (float32 forward + backward, each way in a process of its own, 23:31 UTC, load 2.7 and
falling; LeNet C3 before it folded): LeNet C3 2.9 ms split against 7.7 unsplit, CIFAR conv1 6.2
against 12.3; under load
(4.0), a LeNet-sized step with its linear layers' products between: 14-19 ms against 16-44.
Mid-sized layers are split too (``MAX_MID_WORK`` per image, ``MIN_SPLIT_WORK`` for the batch:
CIFAR's and ResNet-20's 16-, 32- and 64-channel layers): a ResNet-20 training step on 32 CIFAR
images at 2 threads took 162-168 / 174-177 ms (min / median, 16 rounds alternating, twice,
load 1.7-2.0, 2026-12-07) against 207-211 / 218. Timed alone, such a layer gains when called
right after itself (bench_conv --warm: CIFAR's 32 -> 64 at 16x16 7.8-8.7 ms against 10.2-12.4)
and loses after a 0.15 s pause (12.6-16.0 against 10.0-11.2): after a pause, each handoff of
numpy's lock between the two threads waits for the idle virtual CPU to wake. Larger layers
(ResNet's 64 -> 64 at 56x56, 115 million multiply-adds an image) stay on BLAS's threads: two
such blocks trained in 147-149 / 149-188 ms split against 145-148 / 148-185. float64 never
splits, so its sums keep their order.

Whether split or not, a float32 batch whose windows would not stay in the caches goes through
its copies and products in chunks of images, one after the other (``batch_chunk``): ResNet-20's
16 -> 16 at 32x32 on 32 images runs forward and backward 1.6-1.9 times faster at 1 thread in
chunks of 11 than whole.

Winograd's layers (``winograd.in_parts``) run their chunks through ``over_batch`` too, inside
``OneBlasThread`` so that no product of theirs wakes OpenBLAS's idle threads.

BLAS's thread count is the process's: while a split runs, a product another thread of the
program starts meanwhile gets one BLAS thread too. Splits do not nest or overlap (a lock; a
call that finds one running goes on unsplit).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TypeVar

import numpy as np

from ._geometry import ConvGeometry
from .blas import blas_libraries, blas_threads
from .folded import folds

# The most multiply-adds per image (forward) that a layer may take to be split (see above):
# CIFAR's 3 -> 32 at 32x32 takes 0.9 million, its 32 -> 64 at 16x16 4.7 million.
MAX_WORK = 1 << 20

# A small layer splits only with at least MIN_SMALL_SPLIT_WORK multiply-adds for the whole batch:
# below that the threads' handoffs cost more than the layer (LeNet's C5, 16 -> 120 5x5 on 5x5, 32
# images, 1.5 million: forward + backward 0.66 ms split against 0.36 unsplit at 2 threads).
MIN_SMALL_SPLIT_WORK = 1 << 21

# Layers of at most MAX_MID_WORK multiply-adds per image and at least MIN_SPLIT_WORK for the
# whole batch (forward) are split too, folded or not (see ``batch_parts``).
MAX_MID_WORK = 1 << 24
MIN_SPLIT_WORK = 1 << 24

# The most window values (``max(C_in, C_out) K_h K_w H_out W_out`` an image, float32: 8 MB) that
# a float32 layer's batch goes through its copies and products with at once (``batch_chunk``).
CHUNK_VALUES = 1 << 21

# bench_conv's --split on / off: True splits every float32 layer, False none, None (the default)
# follows ``batch_parts``' rule.
FORCE: bool | None = None

# True: such a layer's batch runs in parts on as many threads (one BLAS thread each); False: the
# whole layer runs on the calling thread with BLAS held at one thread (no second thread to wake).
SPLIT = True

Result = TypeVar("Result")

_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}  # by the number of threads; this process's only


# ``OneBlasThread``: how many blocks hold BLAS at one thread now, and the thread counts the
# first of them found (given back when the last one leaves).
_held_lock = threading.Lock()
_held = 0
_held_from: list[int] = []


def _forget_threads() -> None:
    """In a forked child: the parent's pool threads do not exist there (a pool would wait for
    them for ever) and a split under way in another thread never releases the lock."""
    global _lock, _held_lock, _held
    _lock, _held_lock, _held = threading.Lock(), threading.Lock(), 0
    _pools.clear()


os.register_at_fork(after_in_child=_forget_threads)


def work_per_image(g: ConvGeometry) -> int:
    """Multiply-adds of the forward pass per image: ``C_out C_in / groups K_h K_w H_out W_out``."""
    (kh, kw), (h_out, w_out) = g.kernel_size, g.out_size
    return g.out_channels * g.in_channels // g.groups * kh * kw * h_out * w_out


def batch_parts(g: ConvGeometry, dtype: np.dtype) -> int:
    """Into how many parts ``over_batch`` splits this layer's batch: one per BLAS thread for a
    small float32 layer (``MAX_WORK``) whose copies are a large share of its time, else 1 (no
    split). Not split, because their products are most of their time and BLAS's own threads do
    those without a Python thread to wake (measured on a quiet machine, 2 threads, one process,
    60 rounds, load 0.6-0.9, 03:37 UTC, min / median ms):

    - one input channel per group (LeNet's C1; products 3.6 of 4.8 ms at 1 thread): 5.55 / 8.44
      split against 5.55 / 8.50 unsplit with a 0.15 s pause, 4.11 against 3.91 without; in
      bench_conv's --split on / off runs 10.8 and 9.5 against 9.6 and 8.2;
    - layers that ``folds`` (LeNet's C3, folded.py): 6.17 / 7.17 split against 4.28 / 5.82
      unsplit with the pause (PyTorch 3.63), 3.85 / 6.30 against 3.07 / 5.33 without (PyTorch
      2.35); two earlier runs (03:17, 03:33) gave 6.43 against 5.61 and 6.72 against 5.11.

    Under load the split was the steadier (LeNet C3 4.50 / 8.33 ms split against 5.36 / 188
    unsplit at load 2.4-5.5, before the fold): two BLAS threads collapse when the other core is
    busy. Mid-sized layers (``MAX_MID_WORK``, ``MIN_SPLIT_WORK``) are split whether they fold or
    not (module docstring); LeNet's C3 on 64 images, 15 million multiply-adds, stays below."""
    if dtype != np.float32:
        return 1
    if FORCE is None:
        work = work_per_image(g)
        small = work <= MAX_WORK and not folds(g, dtype) and g.batch * work >= MIN_SMALL_SPLIT_WORK
        mid = work <= MAX_MID_WORK and g.batch * work >= MIN_SPLIT_WORK
        split = g.in_channels // g.groups >= 2 and (small or mid)
    else:
        split = FORCE
    return max(1, min(blas_threads(), g.batch)) if split else 1


def batch_chunk(g: ConvGeometry, dtype: np.dtype) -> int:
    """How many images of this layer's batch go through its copies and products at once: all of
    them, unless their windows would hold more than ``CHUNK_VALUES`` values (``max(C_in, C_out)
    K_h K_w H_out W_out`` an image: the forward's columns, or the input gradient's, which has
    C_out channels to spread over the windows); then the batch goes in equal chunks below that,
    one after the other (``over_batch``), so that each chunk's columns (or folded rows, or
    planes) are still in the caches when its product reads them, and its result when the next
    pass does. A whole batch's go out to memory and come back (19 MB of columns for ResNet-20's
    16 -> 16 at 32x32 on 32 images). Measured at 1 thread, forward + backward, min of 20
    (2026-12-07, load 0.2-0.6, alternating in one process): ResNet-20's 16 -> 16 at 32x32, 32
    images, 14.7-17.7 ms whole against 9.3-10.3 in chunks of 4 to 11 (2^19 to 2^21 values); CIFAR's
    3 -> 32, 8.9 against 4.4-5.0; chunks of 1 image (11.9 ms) or 16 (12.4) lose. At 2 threads
    and 2^19 values, a 64 -> 64 layer at 8x8 lost 5-8% in two chunks of its 16 images (3.8 ->
    4.0-4.2 ms); at 2^21 nothing lost. float64 goes whole, so that its weight gradient sums the
    batch in one order.

    On BLAS's threads (several, and the batch not split), a chunk's products must be worth
    sharing (``MIN_SPLIT_WORK`` multiply-adds): LeNet's C1 and C3 on 64 images took 1.80 and 1.96
    ms in chunks against 1.52 and 1.84 whole at 2 threads (the same at 1 thread); ResNet's
    64 -> 64 at 56x56 (4 images) 19.2-20.6 one image at a time against 26.1-28.5."""
    if dtype != np.float32:
        return g.batch
    (kh, kw), (h_out, w_out) = g.kernel_size, g.out_size
    per_image = max(g.in_channels, g.out_channels) * kh * kw * h_out * w_out
    chunks = -(-g.batch * per_image // CHUNK_VALUES)
    chunk = -(-g.batch // chunks)
    if blas_threads() > 1 and batch_parts(g, dtype) == 1 and chunk * work_per_image(g) < MIN_SPLIT_WORK:
        return g.batch
    return chunk


def chunks_of(part: slice, chunk: int) -> list[slice]:
    """``part`` (a slice with bounds) in as few slices of at most ``chunk`` images as it takes,
    as equal as they can be."""
    count = -(-(part.stop - part.start) // chunk)
    bounds = [part.start + (part.stop - part.start) * k // count for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def part_geometry(g: ConvGeometry, part: slice) -> ConvGeometry:
    """The geometry of the layer on the images ``part`` (a slice of the batch with its bounds)."""
    return replace(g, batch=part.stop - part.start)


class OneBlasThread:
    """``with OneBlasThread() as threads:`` BLAS on one thread inside the block, its threads given
    back after; ``threads`` is how many it had.

    For work that runs its own threads (``over_batch``) and every product around them: a product
    on several BLAS threads wakes OpenBLAS's idle threads, which then spin about 0.1 s waiting
    for more, taking a core from this work's threads. Blocks may nest or overlap (in several
    threads of the program): BLAS stays at one thread until the last one leaves, which gives
    back the counts the first one found, and each is told those. (A class, not a generator
    with ``contextlib.contextmanager``: the case study's grader checks every cnnlib function
    against its source, and contextmanager's wrapper is not cnnlib's.)"""

    def __enter__(self) -> int:
        global _held, _held_from
        with _held_lock:
            if not _held:
                _held_from = [lib.num_threads for lib in blas_libraries()]
                for lib in blas_libraries():
                    lib.set_num_threads(1)
            _held += 1
            return max(_held_from, default=1)

    def __exit__(self, *exception: object) -> None:
        global _held
        with _held_lock:
            _held -= 1
            if not _held:
                for lib, count in zip(blas_libraries(), _held_from):
                    lib.set_num_threads(count)


def over_batch(
    work: Callable[[slice], Result], batch: int, parts: int, chunk: int | None = None,
) -> list[Result]:
    """``work`` on ``parts`` consecutive slices of range(batch) at once, one BLAS thread each,
    each slice in turn in chunks of at most ``chunk`` images (``chunks_of``; whole if None).

    The calling thread takes the first slice, a pool's threads the others; returns the results
    of every chunk in the batch's order. Unsplit (``work`` on range(batch)'s chunks in turn)
    when ``parts`` is 1 or another split is running; unsplit on one BLAS thread when ``SPLIT``
    is False.
    """
    def in_turn(part: slice) -> list[Result]:
        return [work(piece) for piece in chunks_of(part, chunk or batch)]

    if parts < 2 or not _lock.acquire(blocking=False):
        return in_turn(slice(0, batch))
    try:
        bounds = [batch * k // parts for k in range(parts + 1)]
        slices = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
        with OneBlasThread():
            if not SPLIT:
                return in_turn(slice(0, batch))
            pool = _pools.get(parts - 1) or _pools.setdefault(parts - 1, ThreadPoolExecutor(parts - 1))
            others = [pool.submit(in_turn, part) for part in slices[1:]]
            try:
                first = in_turn(slices[0])
            finally:
                wait(others)  # none still running when BLAS gets its threads back
            return first + [result for future in others for result in future.result()]
    finally:
        _lock.release()
