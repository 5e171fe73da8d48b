"""conv2d forward + backward (float32): cnnlib against PyTorch on the CPU.

Run with ``make bench`` (once single-threaded, once with 2 threads). Prints one row per layer: the
fastest and the median time of each over the repeats, timed alternately so that load falls on both
alike, the ratios cnnlib / PyTorch of the fastest and of the medians, and the ratio of the
processes' CPU time (the fastest; steadier than wall time on a loaded machine, and with one thread
the same thing); then the median ratios, the worst layer and the machine's load average before and
after. Layers: small-channel (LeNet-5's, ResNet-20's 16-channel ones), CIFAR-sized, strided,
large-image (ResNet's 64->64 at 56x56) and deep (VGG's). With more than one thread each timed call
comes after a pause (``--gap``, 0.15 s): after a multi-threaded call OpenBLAS's idle threads spin
about 0.1 s and PyTorch's OpenMP threads 5-10 ms (measured as CPU time during a sleep), taking a
core from the other library's next call (a CPU ratio far above the wall-time ratio shows it). With
one thread nothing spins and a pause only lets the caches go cold (both libraries slower on LeNet
C3, 1.5-1.8 times), so there is none. ``--warm`` times each call right after an untimed call of
the same library instead, with no pause, as a training loop calls its layers: every thread of that
library is awake, and the other library's spinning threads fall on the untimed call. On this
project's virtual machines a pause also lets the idle virtual CPU sleep, and threads that wake
each other (PyTorch's, cnnlib's Winograd threads handing numpy's lock to each other) then wait for
it to wake: both libraries' medians after a pause can be several times their minimum. glibc's
malloc is told to keep freed memory (``keep_freed_memory``, ``--malloc``); the header says so.

``--floor`` adds, per layer, the BLAS floor: the time cnnlib's forward + backward spends inside
its matrix products (its ``np.matmul`` calls, timed in place as the step runs them: the shapes and
layouts of whichever path the layer takes, im2col, channels-last columns, the folded rows, the
planes' scatter, Winograd, with their operands as hot in the caches as they really are; the least
over the repeats); that over PyTorch's time (``/torch``: above 1, no layout of the copies can
reach PyTorch with these products); ``rest``, cnnlib's time outside the products (building
columns, col2im, transposes, Winograd's transforms, allocations); and the MiB the products read
and write, which the copies around them have to write or read once too. (Replaying the products
on their own, as this did before the batches went in chunks, read each chunk's operands cold and
made ResNet-20's 16 -> 16 look 1.5 times slower than in place.) With several threads of cnnlib's
own, the products' times are summed over the threads.

``--split on|off`` forces cnnlib's batch split across threads (``cnnlib/functional/batch_threads.py``)
on or off for every layer, for comparing the two in separate runs: in one process the split
runs right after multi-threaded products would find OpenBLAS's idle threads still spinning
(they wait about 0.1 s for more work before they sleep) and compete with them for the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

import cnnlib.functional as F
from cnnlib.functional import batch_threads


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
    Layer("ResNet-20 16@32", 32, 16, 16, 32, 3, padding=1),
    Layer("ResNet-20 16->32 s2", 32, 16, 32, 32, 3, stride=2, padding=1),
    Layer("ResNet 64@56", 4, 64, 64, 56, 3, padding=1),
    Layer("VGG conv2_1", 4, 64, 128, 56, 3, padding=1),
    Layer("VGG conv3_2", 4, 256, 256, 28, 3, padding=1),
    Layer("VGG conv4_2", 4, 512, 512, 14, 3, padding=1),
]


def paired_times(
    first, second, repeats: int, gap: float = 0.0, warm: bool = False
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(wall, CPU) seconds of each of two calls, ``repeats`` times, timed alternately after a
    warm-up of each, so that any load on the machine falls on both alike; each call after a
    pause of ``gap`` seconds, so that neither finds the other's idle threads still spinning, or
    (``warm``) right after an untimed call of its own, so that it finds its own threads awake.
    Which goes first alternates (first, second, second, first, ...): a call right after the
    other library's ran slower than one after its own (measured at 1 thread: 10-18% on LeNet
    C1, whichever of two cnnlib versions followed PyTorch), so neither takes that every time."""
    first(), second()
    times: tuple[list, list] = ([], [])
    for round_ in range(repeats):
        pairs = list(zip((first, second), times))
        for fn, bucket in pairs[::-1] if round_ % 2 else pairs:
            time.sleep(gap)
            if warm:
                fn()
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            bucket.append((time.perf_counter() - start, time.process_time() - cpu))
    return times


def step_arrays(layer: Layer, rng, batch: int | None = None) -> tuple:
    """x, weight, bias and an output gradient for ``layer`` on ``batch`` images (the layer's own
    by default), float32: the arguments of ``cnnlib_step`` and ``torch_step`` after the layer."""
    x, w, b = (layer if batch is None else replace(layer, batch=batch)).arrays(rng)
    out = F.conv2d(x, w, b, stride=layer.stride, padding=layer.padding)
    return x, w, b, rng.standard_normal(out.shape, dtype=np.float32)


def cnnlib_step(layer: Layer, x, w, b, grad_out):
    kwargs = dict(stride=layer.stride, padding=layer.padding)
    F.conv2d(x, w, b, **kwargs)
    F.conv2d_backward(grad_out, x, w, **kwargs)


def torch_step(layer: Layer, x, w, b, grad_out):
    import torch

    tensors = [torch.from_numpy(a).requires_grad_() for a in (x, w, b)]
    out = torch.nn.functional.conv2d(*tensors, stride=layer.stride, padding=layer.padding)
    out.backward(torch.from_numpy(grad_out))


def blas_floor(step, repeats: int) -> tuple[float, float]:
    """The seconds ``step`` (cnnlib's forward + backward) spends inside ``np.matmul`` (cnnlib
    calls it as ``np.matmul`` everywhere it multiplies matrices), timed in place: the least over
    ``repeats`` steps after one untimed; and the MiB those products read and write."""
    real = np.matmul
    spent, moved = [0.0], [0]

    def timed(a, b, *args, **kwargs):
        start = time.perf_counter()
        out = real(a, b, *args, **kwargs)
        spent[0] += time.perf_counter() - start
        moved[0] += np.asarray(a).nbytes + np.asarray(b).nbytes + out.nbytes
        return out

    best = float("inf")
    np.matmul = timed
    try:
        for _ in range(repeats + 1):
            spent[0], moved[0] = 0.0, 0
            step()
            best = min(best, spent[0])
    finally:
        np.matmul = real
    return best, moved[0] / 2**20


def measure(
    layers=LAYERS, repeats: int = 5, seed: int = 0, floor: bool = False, gap: float = 0.0,
    warm: bool = False,
) -> list[dict]:
    """Time every layer both ways; one dict per layer with the times and their ratios."""
    rows = []
    rng = np.random.default_rng(seed)
    for layer in layers:
        args = (layer, *step_arrays(layer, rng))
        ours, theirs = paired_times(partial(cnnlib_step, *args), partial(torch_step, *args), repeats, gap,
                                    warm)
        row = dict(layer=layer.name, load=os.getloadavg()[0],
                   cnnlib_s=min(t for t, _ in ours), torch_s=min(t for t, _ in theirs),
                   cnnlib_median_s=statistics.median(t for t, _ in ours),
                   torch_median_s=statistics.median(t for t, _ in theirs),
                   torch_cpu_s=min(c for _, c in theirs))
        row["cpu_ratio"] = min(c for _, c in ours) / row["torch_cpu_s"]
        row["ratio"] = row["cnnlib_s"] / row["torch_s"]
        row["median_ratio"] = row["cnnlib_median_s"] / row["torch_median_s"]
        if floor:
            seconds, mib = blas_floor(partial(cnnlib_step, *args), repeats)
            row.update(floor_s=seconds, floor_ratio=seconds / row["torch_s"], moved_mib=mib,
                       rest_s=row["cnnlib_s"] - seconds)
        rows.append(row)
    return rows


def keep_freed_memory() -> str:
    """Have glibc's malloc keep freed memory in this process (``mallopt``): blocks up to 32 MiB
    from the heap and no trimming below 1 GiB, so a buffer freed by one call is reused by the
    next instead of being returned to the system and faulted in again, page by page. With
    glibc's defaults (a threshold that moves with what was last freed) CIFAR conv1's cnnlib step
    took 20-26 ms or 11-13 ms at 1 thread depending on the heap's history (00:08 UTC, load 2.0-2.3;
    PyTorch 9-14 ms either way). Both libraries allocate through it. Returns what was set, for
    the header ("" where the C library is not glibc)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return ""
    m_trim_threshold, m_mmap_threshold = -1, -3
    if mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 1 << 30):
        return "glibc malloc keeps freed memory (mmap threshold 32 MiB, trim threshold 1 GiB; --malloc)"
    return ""


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch threads (NumPy BLAS follows OPENBLAS_NUM_THREADS)")
    parser.add_argument("--layers", nargs="*", default=None,
                        help="only the layers whose names contain one of these")
    parser.add_argument("--floor", action="store_true",
                        help="also time the bare matrix products (the BLAS floor)")
    parser.add_argument("--gap", type=float, default=None,
                        help="seconds of pause before each timed call (default 0.15 with more than "
                             "one thread, else 0): after a multi-threaded call OpenBLAS's idle "
                             "threads spin about 0.1 s, PyTorch's 5-10 ms, and would compete with "
                             "the other library's next call")
    parser.add_argument("--split", choices=("on", "off", "one"), default=None,
                        help="force cnnlib's batch split across threads on or off for every layer; "
                             "one: the layers it would split run whole on one BLAS thread instead")
    parser.add_argument("--malloc", choices=("keep", "default"), default="keep",
                        help="keep (default): glibc's malloc keeps freed memory for the next call "
                             "(see keep_freed_memory); default: glibc's own thresholds")
    parser.add_argument("--warm", action="store_true",
                        help="time each call right after an untimed call of the same library, with "
                             "no pause (--gap 0): as a training loop runs its layers, with every "
                             "thread awake; the other library's spinning threads fall on the "
                             "untimed call")
    args = parser.parse_args()
    malloc = keep_freed_memory() if args.malloc == "keep" else ""
    if args.warm:
        args.gap = 0.0
    elif args.gap is None:
        args.gap = 0.15 if (args.threads or torch.get_num_threads()) > 1 else 0.0
    if args.threads:
        torch.set_num_threads(args.threads)
    layers = [layer for layer in LAYERS if not args.layers or any(s in layer.name for s in args.layers)]
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    if args.split == "one":
        batch_threads.SPLIT = False
        blas += ", small layers on one BLAS thread (no split)"
    elif args.split:
        batch_threads.FORCE = args.split == "on"
        blas += f", batch split forced {args.split}"
    timing = ("each right after an untimed call of its own (--warm)" if args.warm
              else f"each after a {args.gap} s pause (--gap)")
    print(f"conv2d forward+backward, float32, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), NumPy {np.__version__} BLAS threads: {blas}, {args.repeats} repeats, "
          f"{timing}; {malloc or 'glibc malloc defaults'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    header = (f"{'layer':<20}{'cnnlib min':>11}{'median':>9}{'torch min':>11}{'median':>9}"
              f"{'ratio min':>10}{'median':>8}{'cpu':>6}{'load':>6}")
    print(header + (f"{'floor':>8}{'/torch':>7}{'rest':>8}{'MiB':>7}" if args.floor else "") + "  (ms)")
    rows = measure(layers, repeats=args.repeats, floor=args.floor, gap=args.gap, warm=args.warm)
    for r in rows:
        line = (f"{r['layer']:<20}{r['cnnlib_s'] * 1e3:>11.2f}{r['cnnlib_median_s'] * 1e3:>9.2f}"
                f"{r['torch_s'] * 1e3:>11.2f}{r['torch_median_s'] * 1e3:>9.2f}{r['ratio']:>10.2f}"
                f"{r['median_ratio']:>8.2f}{r['cpu_ratio']:>6.2f}{r['load']:>6.2f}")
        if args.floor:
            line += (f"{r['floor_s'] * 1e3:>8.2f}{r['floor_ratio']:>7.2f}{r['rest_s'] * 1e3:>8.2f}"
                     f"{r['moved_mib']:>7.0f}")
        print(line)
    worst = max(rows, key=lambda r: r["ratio"])
    print(f"median ratio: {statistics.median(r['ratio'] for r in rows):.2f} (of the fastest), "
          f"{statistics.median(r['median_ratio'] for r in rows):.2f} (of the medians), "
          f"{statistics.median(r['cpu_ratio'] for r in rows):.2f} (CPU time); worst {worst['layer']} "
          f"{worst['ratio']:.2f}; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
