"""Per-host politeness: concurrency, spacing between requests, and back-off after 429."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime


class HostGate:
    """Admit requests to each host politely.

    At most ``per_host`` requests run against one host at a time, consecutive
    requests to one host start at least ``min_delay_s`` apart, and a host that
    answered 429 is left alone until its back-off expires.

    Args:
        per_host: concurrent requests per host.
        min_delay_s: minimum spacing between request starts to one host.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(
        self, per_host: int, min_delay_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.min_delay_s = min_delay_s
        self.clock = clock
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next_start: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots, starting no sooner than its spacing allows."""
        async with self._slots[host]:
            async with self._locks[host]:
                wait = self._next_start.get(host, 0.0) - self.clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start[host] = self.clock() + self.min_delay_s
            yield

    def back_off(self, host: str, seconds: float) -> None:
        """Leave a host alone for ``seconds`` (after it answered 429)."""
        until = self.clock() + max(seconds, 0.0)
        self._blocked_until[host] = max(until, self._blocked_until.get(host, 0.0))

    def blocked_for(self, host: str) -> float:
        """Seconds left in a host's back-off (0 when it may be contacted)."""
        return max(self._blocked_until.get(host, 0.0) - self.clock(), 0.0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    Args:
        value: the header value.
        now: current UNIX time (default: now).

    Returns:
        Seconds (never negative), or None when absent or unparseable.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def parse_max_age(cache_control: str | None) -> float | None:
    """``max-age`` seconds from a Cache-Control header, or None."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        name, _, arg = directive.strip().partition("=")
        digits = arg.strip().strip('"')
        if name.lower() == "max-age" and digits.isascii() and digits.isdigit():
            return float(arg.strip().strip('"'))
    return None
