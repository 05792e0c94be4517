"""Article pages: download every pending entry's page, politely and within the caps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from monitor.ingest.http import PAGE_TYPES, Fetcher
from monitor.models import Entry, FetchResult, FetchStatus, PageFailure, PageFetch


class RobotsChecker(Protocol):
    """Anything that can tell whether robots.txt allows a URL (see :mod:`monitor.ingest.robots`)."""

    async def allowed(self, url: str) -> bool: ...


async def fetch_pages(
    fetcher: Fetcher, entries: Sequence[Entry], max_bytes: int, robots: RobotsChecker | None = None
) -> tuple[list[PageFetch], list[PageFailure]]:
    """Download the article page of every entry concurrently.

    Args:
        fetcher: the HTTP fetcher.
        entries: entries whose pages to download.
        max_bytes: cap on a page after decompression.
        robots: when given, pages its robots.txt disallows are recorded, not fetched.

    Returns:
        Pages that downloaded, and a failure record for each one that did not.
    """

    async def one(entry: Entry) -> FetchResult:
        if robots is not None and not await robots.allowed(entry.url):
            return FetchResult(entry.url, entry.url, FetchStatus.PERMANENT, error="disallowed by robots.txt")
        return await fetcher.get(entry.url, accept_types=PAGE_TYPES, max_bytes=max_bytes)

    results = await asyncio.gather(*(one(e) for e in entries))
    pages: list[PageFetch] = []
    failures: list[PageFailure] = []
    for entry, result in zip(entries, results, strict=True):
        if result.status is FetchStatus.OK and result.body is not None:
            pages.append(PageFetch(entry=entry, fetch=result))
        else:
            status = result.status if result.status is not FetchStatus.OK else FetchStatus.PERMANENT
            failures.append(PageFailure(entry, status, result.http_status, result.error or "empty body"))
    return pages, failures
