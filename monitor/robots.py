"""robots.txt for article pages: fetched once per host per run, through the guarded fetcher."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from monitor.fetch import Fetcher
from monitor.models import FetchStatus

ROBOTS_TYPES = ("text/plain", "text/html", "application/octet-stream")
MAX_ROBOTS_BYTES = 512 * 1024


class RobotsPolicy:
    """Answer "may this page be fetched?" for each host's robots.txt (RFC 9309).

    A robots.txt that is missing (4xx) allows everything; one that cannot be read
    (5xx, timeouts, refused) disallows the host for this run, as the RFC asks.

    Args:
        fetcher: the guarded HTTP fetcher.
        user_agent: the product token matched against ``User-agent`` lines.
    """

    def __init__(self, fetcher: Fetcher, user_agent: str) -> None:
        self.fetcher = fetcher
        self.agent = user_agent.split("/", 1)[0].strip() or "*"
        self._parsers: dict[str, RobotFileParser | bool] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        """Tell whether robots.txt lets this user agent fetch ``url``."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin not in self._parsers:
                self._parsers[origin] = await self._load(origin)
        policy = self._parsers[origin]
        if isinstance(policy, bool):
            return policy
        return policy.can_fetch(self.agent, url)

    async def _load(self, origin: str) -> RobotFileParser | bool:
        result = await self.fetcher.get(
            f"{origin}/robots.txt", accept_types=ROBOTS_TYPES, max_bytes=MAX_ROBOTS_BYTES
        )
        if result.status is FetchStatus.OK and result.body is not None:
            parser = RobotFileParser()
            parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
            return parser
        # RFC 9309: a missing robots.txt (4xx) allows all; an unreachable one (5xx) disallows all.
        return result.http_status is not None and 400 <= result.http_status < 500
