"""robots.txt for article pages: fetched once per host per run, through the guarded fetcher."""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import unquote, urlsplit

from monitor.ingest.http import Fetcher
from monitor.models import FetchStatus

ROBOTS_TYPES = ("text/plain", "text/html", "application/octet-stream")
MAX_ROBOTS_BYTES = 512 * 1024

log = logging.getLogger(__name__)


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
        self._parsers: dict[str, Rules | bool] = {}
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
        return policy.allowed(self.agent, url)

    async def _load(self, origin: str) -> Rules | bool:
        result = await self.fetcher.get(
            f"{origin}/robots.txt", accept_types=ROBOTS_TYPES, max_bytes=MAX_ROBOTS_BYTES
        )
        if result.status is FetchStatus.OK and result.body is not None:
            return Rules(result.body.decode("utf-8", errors="replace"))
        # RFC 9309: a missing robots.txt (4xx) allows all; an unreachable one (5xx) disallows all.
        if result.http_status is not None and 400 <= result.http_status < 500:
            return True
        log.warning(
            "robots.txt at %s unreadable (%s); not fetching pages from it this run", origin, result.error
        )
        return False


class Rules:
    """RFC 9309 groups: exact product-token match, longest path wins, Allow wins ties."""

    def __init__(self, text: str) -> None:
        self.groups: dict[str, list[tuple[bool, str]]] = {}
        agents: list[str] = []
        in_rules = False
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key, value = key.strip().lower(), value.strip()
            if key == "user-agent":
                if in_rules:
                    agents, in_rules = [], False
                agents.append(value.lower())
                for a in agents:
                    self.groups.setdefault(a, [])
            elif key in ("allow", "disallow") and agents:
                in_rules = True
                if value:
                    for a in agents:
                        self.groups[a].append((key == "allow", value))

    def allowed(self, agent: str, url: str) -> bool:
        rules = self.groups.get(agent.lower(), self.groups.get("*", []))
        parts = urlsplit(url)
        path = unquote(parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        best: tuple[int, bool] = (-1, True)
        for allow, pattern in rules:
            regex = "".join(".*" if c == "*" else re.escape(c) for c in unquote(pattern).rstrip("$"))
            if re.match(regex + ("$" if pattern.endswith("$") else ""), path):
                best = max(best, (len(pattern), allow))
        return best[1]
