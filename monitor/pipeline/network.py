"""One network session per run: a guarded fetcher on its own event-loop thread, shared by every stage.

Keeping one fetcher for the whole run means per-host pacing, 429 back-off, robots.txt
answers and open connections carry over from batch to batch, and it lets the pipeline
download batch N+1 on this thread while batch N is extracted and embedded on another.
Feed bodies are parsed in worker processes, so parsing neither stalls the event loop
nor competes with it for the interpreter lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitor.config import Settings
from monitor.ingest.guard import AddressGuard
from monitor.ingest.http import Fetcher, open_fetcher
from monitor.ingest.pages import fetch_pages
from monitor.ingest.parsing import parse_feed
from monitor.ingest.polling import poll_feeds
from monitor.ingest.robots import RobotsPolicy
from monitor.models import Entry, Feed, FeedPoll, FeedState, FetchResult, PageFailure, PageFetch
from monitor.pipeline.workers import owned_pool

# Below this many feeds, parsing in a thread costs less than starting worker processes.
PROCESS_PARSING_FROM = 40


class NetworkSession:
    """The run's fetcher, robots policy and feed parsers, usable from any thread.

    Args:
        settings: limits, guard allow-list, user agent and caps.
        parse_workers: worker processes for feed parsing (0: parse in a thread).
    """

    def __init__(self, settings: Settings, parse_workers: int = 2) -> None:
        self.settings = settings
        self.parse_workers = parse_workers
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="network", daemon=True)
        self._ready: concurrent.futures.Future[Fetcher] = concurrent.futures.Future()
        self._closing: asyncio.Event | None = None
        self._holder: concurrent.futures.Future[None] | None = None
        self._parsers: concurrent.futures.ProcessPoolExecutor | None = None
        self.fetcher: Fetcher | None = None
        self.robots: RobotsPolicy | None = None

    def __enter__(self) -> NetworkSession:
        self._thread.start()
        self._holder = asyncio.run_coroutine_threadsafe(self._hold(), self._loop)
        self.fetcher = self._ready.result()
        if self.settings.obey_robots:
            self.robots = RobotsPolicy(self.fetcher, self.settings.user_agent)
        return self

    async def _hold(self) -> None:
        self._closing = asyncio.Event()
        limits, guard = self.settings.fetch_limits(), AddressGuard(self.settings.fetch_allow)
        async with open_fetcher(limits, guard, self.settings.user_agent) as fetcher:
            self._ready.set_result(fetcher)
            await self._closing.wait()

    def __exit__(self, *exc: object) -> None:
        if self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)
        if self._holder is not None:
            self._holder.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
        if self._parsers is not None:
            self._parsers.shutdown(cancel_futures=True)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def poll(self, feeds: Sequence[Feed], states: Mapping[str, FeedState]) -> list[FeedPoll]:
        """Fetch and parse feeds concurrently (parsing in worker processes when there are many)."""
        assert self.fetcher is not None, "use the session as a context manager"
        parse: Callable[[Feed, FetchResult], FeedPoll] = parse_feed
        if self.parse_workers and len(feeds) >= PROCESS_PARSING_FROM:
            if self._parsers is None:
                # forkserver: the workers do not inherit this process's threads (Prefect's, torch's).
                self._parsers = owned_pool(self.parse_workers)
            parse = _ProcessParser(self._parsers)
        return list(
            self._run(poll_feeds(self.fetcher, feeds, states, self.settings.max_feed_bytes, parse=parse))
        )

    def download(self, entries: Sequence[Entry]) -> tuple[list[PageFetch], list[PageFailure]]:
        """Download article pages concurrently, within the per-host limits, obeying robots.txt."""
        assert self.fetcher is not None, "use the session as a context manager"
        pages, failures = self._run(
            fetch_pages(self.fetcher, entries, self.settings.max_page_bytes, self.robots)
        )
        return pages, failures


class _ProcessParser:
    """``parse_feed`` run in a worker process; ``poll_feeds`` calls it from a thread, so it just waits."""

    def __init__(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        self.pool = pool

    def __call__(self, feed: Feed, fetch: FetchResult) -> FeedPoll:
        return self.pool.submit(parse_feed, feed, fetch).result()
