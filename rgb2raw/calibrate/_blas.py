"""Run small dense solves on one BLAS thread.

The fit solves a few hundred unknowns many times. OpenBLAS splits such small problems over
all cores, and on a loaded 2-core machine that made a 381 x 381 solve take 60-250 ms instead of
5 ms (measured here). `single_threaded` sets NumPy's bundled OpenBLAS to one thread for the
block and restores it; when the library cannot be found (another BLAS, another build) it does
nothing, so it can only make things faster, never wrong.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator

import numpy as np

_SYMBOLS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads"))
_cache: dict[str, object] = {}


def _controls() -> tuple[object, object] | None:
    if "controls" in _cache:
        return _cache["controls"]  # type: ignore[return-value]
    found = None
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "*openblas*.so*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            getter, setter = getattr(library, get_name, None), getattr(library, set_name, None)
            if getter is not None and setter is not None:
                getter.restype = ctypes.c_int
                setter.argtypes = [ctypes.c_int]
                found = (getter, setter)
                break
        if found:
            break
    _cache["controls"] = found
    return found


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """One OpenBLAS thread inside the block (a no-op when NumPy's OpenBLAS is not found)."""
    controls = _controls()
    if controls is None:
        yield
        return
    getter, setter = controls
    before = int(getter())  # type: ignore[operator]
    setter(1)  # type: ignore[operator]
    try:
        yield
    finally:
        setter(before)  # type: ignore[operator]
