"""How many threads numpy's BLAS runs a matrix product on, through threadpoolctl."""

from __future__ import annotations

import functools


@functools.cache
def blas_libraries() -> tuple:
    """threadpoolctl's handles on the BLAS libraries loaded (numpy's), or none without it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn, a dependency, brings it
        return ()
    return tuple(lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas")


def blas_threads() -> int:
    """The threads numpy's BLAS runs a product on now (1 when it cannot be told)."""
    return max((lib.num_threads for lib in blas_libraries()), default=1)
