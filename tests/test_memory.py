"""Returning freed heap to the operating system after a batch."""

from __future__ import annotations

import sys
import threading

import pytest

from monitor.pipeline import memory


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_in_a_thread_arena_goes_back_to_the_os() -> None:
    assert memory._LIBC is not None
    kept: list[bytes] = []

    def allocate() -> None:
        # 1 KB objects come from malloc (above pymalloc's 512 bytes), here in this thread's
        # arena; keeping every 16th one leaves the freed pages between them stranded.
        chunks = [bytes(1024) + bytes([i % 251]) for i in range(200_000)]
        kept.extend(chunks[::16])
        del chunks

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    before = _rss_mb()
    memory.return_freed_memory()
    after = _rss_mb()
    assert len(kept) == 12_500
    assert before - after > 100, (before, after)
