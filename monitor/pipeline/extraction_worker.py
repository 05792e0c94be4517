"""Article extraction in a worker process of its own, so that it runs at full speed.

Extraction is pure Python (trafilatura on lxml) and holds the interpreter lock. In the
pipeline's process it competes for that lock with the network thread downloading the
next batch, and measured here it ran at about 40 ms a page against 10–20 ms on its own.
A worker process has no other threads: the pipeline sends it a batch of pages, waits
(releasing the lock to the downloads) and gets the articles back. The worker is started
on first use (forkserver: it inherits none of this process's threads) and reused for
every later batch and run of this process. A worker that dies is replaced, and the batch
it had is extracted in this process instead, so a crash there loses nothing.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

from monitor.ingest.extraction import extract_batch
from monitor.models import Article, PageFailure, PageFetch
from monitor.pipeline.memory import return_freed_memory

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None


def _worker_pool() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("forkserver")
            )
        return _pool


def _discard_pool(broken: concurrent.futures.ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


@atexit.register
def shutdown() -> None:
    """Stop the worker process (at exit, or when a caller wants it gone now)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _extract_in_worker(pages: list[PageFetch]) -> tuple[list[Article], list[PageFailure]]:
    result = extract_batch(pages)
    return_freed_memory()
    return result


def extract_pages(
    pages: Sequence[PageFetch], in_worker: bool = True
) -> tuple[list[Article], list[PageFailure]]:
    """:func:`monitor.ingest.extraction.extract_batch` of ``pages``, in the worker process.

    Args:
        pages: downloaded pages.
        in_worker: False extracts in this process (``MONITOR_EXTRACT_IN_WORKER=false``).

    Returns:
        The articles and the pages that failed extraction, as ``extract_batch`` returns them.
    """
    if not in_worker or not pages:
        return extract_batch(pages)
    pool = _worker_pool()
    try:
        return pool.submit(_extract_in_worker, list(pages)).result()
    except BrokenProcessPool as exc:
        # The worker died (killed, out of memory, a crash in a C extension): start a new one
        # for the next batch, and do this one here.
        log.warning("extraction worker died (%s); extracting this batch in-process", exc)
        _discard_pool(pool)
        return extract_batch(pages)
