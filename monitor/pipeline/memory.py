"""Returning a batch's freed heap to the operating system, so that long runs keep a flat RSS."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def _load_libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def return_freed_memory() -> None:
    """Hand the heap a batch freed back to the operating system (glibc only; elsewhere a no-op).

    A batch's pages, passages and query results are freed when it is stored, but glibc keeps
    freed memory in the arenas of the threads that used it (the download thread, the task
    runner's threads), so without this a long run's RSS creeps up batch after batch.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
