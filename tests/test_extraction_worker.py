"""Extraction in the worker process: the same articles as in-process, and a dead worker loses nothing."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

from monitor.ingest.extraction import extract_batch
from monitor.pipeline import extraction_worker
from monitor.pipeline.extraction_worker import extract_pages
from tests.ingest.test_extraction import make_page, sample_html

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _pages() -> list:
    good = make_page(sample_html("iran-unveils-solid-fuel-missile"), published_at=NOW)
    empty = make_page("<html><body><p>Too short.</p></body></html>", url="http://127.0.0.1:8/empty.html")
    return [good, empty]


def _key(result: tuple[list, list]) -> tuple:
    articles, failures = result
    return (
        [(a.article_id, a.title, a.text, a.language, a.published_at) for a in articles],
        [(f.entry.url, f.status, f.error) for f in failures],
    )


def test_the_worker_extracts_what_this_process_would() -> None:
    pages = _pages()
    in_worker = extract_pages(pages)
    assert _key(in_worker) == _key(extract_batch(pages))
    assert len(in_worker[0]) == 1 and len(in_worker[1]) == 1
    pool = extraction_worker._pool
    assert pool is not None and all(p.pid != os.getpid() for p in pool._processes.values())
    assert _key(extract_pages(pages, in_worker=False)) == _key(in_worker)
    assert extract_pages([]) == ([], [])


def test_a_killed_worker_is_replaced_and_its_batch_is_not_lost() -> None:
    pages = _pages()
    expected = _key(extract_batch(pages))
    extract_pages(pages)
    pool = extraction_worker._pool
    assert pool is not None
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    assert _key(extract_pages(pages)) == expected  # extracted here, after the worker died
    assert extraction_worker._pool is not pool
    assert _key(extract_pages(pages)) == expected  # and a new worker takes the next batch
    assert extraction_worker._pool is not None and extraction_worker._pool is not pool
