"""What two cores can give cnnlib: one layer's forward + backward on the whole batch at 1 thread,
its two halves on two Python threads at once (one BLAS thread each, as ``batch_threads``' split
runs them), and its two halves in two processes at once (no GIL between them), against PyTorch
on 1 and 2 threads.

bench_conv times cnnlib's choices; this measures the floor under them. Each figure is the
fastest of the calls made back to back for ``--seconds`` (every thread awake, as in a training
loop). If the halves ran as fast on threads as in processes, numpy's lock is not what holds
the second core back; if either takes longer than half of the whole batch's time, the two cores
slow each other down (the memory they share: cnnlib's copies move many bytes). Run with
``make bench``; the layers are bench_conv's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from benchmarks.bench_conv import LAYERS, Layer, cnnlib_step, keep_freed_memory, step_arrays, torch_step


def fastest(call: Callable[[], object], seconds: float) -> float:
    """The fastest of ``call``'s runs back to back for ``seconds`` (at least 3 runs), in ms."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < end:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def cnnlib_at(layer: Layer, batch: int) -> Callable[[], object]:
    """bench_conv's cnnlib step (forward + backward) on ``batch`` images of ``layer``."""
    return partial(cnnlib_step, layer, *step_arrays(layer, np.random.default_rng(0), batch))


def _half_in_a_process(layer: Layer, seconds: float, start: object, results: object) -> None:
    """One half of the batch, run back to back for ``seconds`` once both processes are ready
    (``start``, a Barrier); puts the (start, end) of every run on ``results`` (the monotonic
    clock, which all processes share)."""
    from threadpoolctl import threadpool_limits

    keep_freed_memory()
    with threadpool_limits(1):
        step = cnnlib_at(layer, layer.batch // 2)
        step()
        start.wait()  # type: ignore[attr-defined]
        runs, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            begin = time.perf_counter()
            step()
            runs.append((begin, time.perf_counter()))
    results.put(runs)  # type: ignore[attr-defined]


def both_at_once(runs: list[list[tuple[float, float]]]) -> float:
    """The fastest run, in ms, among those that ran while the other process was running too
    (a run after the other had finished has the memory to itself)."""
    first, last = max(r[0][0] for r in runs), min(r[-1][1] for r in runs)
    inside = [end - begin for r in runs for begin, end in r if begin >= first and end <= last]
    return min(inside) * 1e3


def measure(layer: Layer, seconds: float) -> tuple[float, float, float, float, float]:
    """(cnnlib 1 thread, halves on 2 threads, halves in 2 processes, PyTorch 1 thread, 2 threads), ms."""
    import torch
    from threadpoolctl import threadpool_limits

    half = layer.batch // 2
    with threadpool_limits(1):
        whole = fastest(cnnlib_at(layer, layer.batch), seconds)
        first, second = cnnlib_at(layer, half), cnnlib_at(layer, layer.batch - half)

        def halves() -> None:
            other = threading.Thread(target=second)
            other.start()
            first()
            other.join()

        threads = fastest(halves, seconds)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_half_in_a_process, args=(layer, seconds, start, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    processes = both_at_once([results.get(timeout=120 + 4 * seconds) for _ in workers])
    for worker in workers:
        worker.join()
    theirs_step = partial(torch_step, layer, *step_arrays(layer, np.random.default_rng(0)))
    theirs = []
    for count in (1, 2):
        torch.set_num_threads(count)
        theirs.append(fastest(theirs_step, seconds))
    return whole, threads, processes, theirs[0], theirs[1]


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each way runs")
    parser.add_argument("--layers", nargs="*", help="only the layers whose names contain one of these")
    args = parser.parse_args()
    keep_freed_memory()
    layers = [layer for layer in LAYERS
              if layer.batch >= 2 and (not args.layers or any(s in layer.name for s in args.layers))]
    print(f"conv2d forward + backward, float32, fastest of {args.seconds:g} s back to back (ms); "
          f"torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'layer':<20} {'1 thread':>9} {'halves on 2 threads':>20} {'in 2 processes':>15} "
          f"{'torch 1t':>9} {'torch 2t':>9} {'threads / torch 2t':>19}")
    for layer in layers:
        whole, threads, processes, torch1, torch2 = measure(layer, args.seconds)
        print(f"{layer.name:<20} {whole:9.2f} {threads:20.2f} {processes:15.2f} {torch1:9.2f} "
              f"{torch2:9.2f} {threads / torch2:19.2f}", flush=True)
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
