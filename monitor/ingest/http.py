"""HTTP fetching with hard limits: timeouts, size caps, redirect caps, content types.

Every failure becomes a :class:`FetchResult` with a :class:`FetchStatus`; nothing
a remote server does can raise out of :meth:`Fetcher.get` or hold it past the
total timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from monitor.ingest.guard import AddressGuard, BlockedAddress, guarded_transport
from monitor.ingest.politeness import HostGate, parse_max_age, parse_retry_after
from monitor.models import FetchResult, FetchStatus

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/feed+json",
    "application/json",
    "text/html",  # many servers label feeds text/html; the parser decides
    "text/plain",
    "application/octet-stream",
)
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
PERMANENT_CODES = frozenset({400, 401, 403, 404, 405, 406, 410, 414, 451, 501})
QUEUE_BOUND_FACTOR = 20

log = logging.getLogger(__name__)


class ResponseTooLarge(Exception):
    """Raised internally when a body grows past its cap after decompression."""


@dataclass(frozen=True)
class FetchLimits:
    """Hard limits applied to every request."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    concurrency: int = 16
    per_host_concurrency: int = 2
    per_host_delay_s: float = 0.25
    backoff_after_429_s: float = 60.0


class _Decoder:
    """Incremental content-encoding decoder that never inflates past a cap."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total = 0
        enc = encoding.strip().lower()
        if enc in ("", "identity"):
            self._z: zlib._Decompress | None = None
        elif enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
        else:
            raise ValueError(f"unsupported content-encoding {encoding!r}")

    def feed(self, chunk: bytes) -> bytes:
        if self._z is None:
            out = chunk
        else:
            # max_length bounds the output of one call, so a small compressed chunk
            # cannot expand into gigabytes before we count it.
            room = self.max_bytes - self.total + 1
            out = self._z.decompress(chunk, room)
            if self._z.unconsumed_tail:
                raise ResponseTooLarge(f"body exceeds {self.max_bytes} bytes after decompression")
        self.total += len(out)
        if self.total > self.max_bytes:
            raise ResponseTooLarge(f"body exceeds {self.max_bytes} bytes")
        return out


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def classify_http_status(code: int) -> FetchStatus:
    """Map an HTTP status code that is not a success to a failure class.

    Args:
        code: the HTTP status code.

    Returns:
        TEMPORARY for 5xx, 429, 408 and unknown codes; PERMANENT for client errors.
    """
    if code in PERMANENT_CODES or (400 <= code < 500 and code not in (408, 425, 429)):
        return FetchStatus.PERMANENT
    return FetchStatus.TEMPORARY


class Fetcher:
    """Asynchronous HTTP GETs with per-host and global concurrency limits.

    Args:
        client: an httpx client whose transport enforces ``guard``; build both
            with :func:`open_fetcher`.
        limits: timeouts and caps.
        guard: the policy also applied to each URL's scheme before a request.
    """

    def __init__(self, client: httpx.AsyncClient, limits: FetchLimits, guard: AddressGuard) -> None:
        self.client = client
        self.limits = limits
        self.guard = guard
        self._global = asyncio.Semaphore(limits.concurrency)
        self.hosts = HostGate(limits.per_host_concurrency, limits.per_host_delay_s)

    async def get(
        self,
        url: str,
        *,
        accept_types: tuple[str, ...],
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET a URL, following redirects, and classify the outcome.

        Args:
            url: absolute http(s) URL.
            accept_types: media types accepted as a successful body.
            etag: validator for If-None-Match.
            last_modified: validator for If-Modified-Since.
            max_bytes: body cap after decompression; defaults to the limits'.

        Returns:
            The result; never raises for network or server faults.
        """
        started = time.monotonic()
        cap = self.limits.max_bytes if max_bytes is None else max_bytes
        # The total timeout counts from the first request actually sent (see _one); this
        # outer bound only stops a request from queueing politely for ever.
        queue_bound = self.limits.total_timeout_s * QUEUE_BOUND_FACTOR
        try:
            async with asyncio.timeout(queue_bound):
                result = await self._follow(url, accept_types, etag, last_modified, cap)
        except TimeoutError:
            result = FetchResult(
                url=url,
                final_url=url,
                status=FetchStatus.TEMPORARY,
                error=f"gave up after {queue_bound:g} s, most of it queued behind other requests to the host",
            )
        except Exception as exc:  # unanticipated: a bug, recorded as one, never a verdict
            log.exception("bug while fetching %s", url)
            result = FetchResult(
                url=url, final_url=url, status=FetchStatus.ERROR, error=f"{type(exc).__name__}: {exc}"
            )
        return dataclasses.replace(result, elapsed_s=time.monotonic() - started)

    async def _follow(
        self,
        url: str,
        accept_types: tuple[str, ...],
        etag: str | None,
        last_modified: str | None,
        cap: int,
    ) -> FetchResult:
        seen: set[str] = set()
        current = url
        deadline: list[float] = []  # set when the first request is sent
        for _hop in range(self.limits.max_redirects + 1):
            try:
                self.guard.check_url(current)
            except BlockedAddress as exc:
                return FetchResult(url, current, FetchStatus.PERMANENT, error=f"refused: {exc}")
            if current in seen:
                return FetchResult(url, current, FetchStatus.PERMANENT, error=f"redirect loop at {current}")
            seen.add(current)
            headers = {}
            if current == url and etag:
                headers["If-None-Match"] = etag
            if current == url and last_modified:
                headers["If-Modified-Since"] = last_modified
            outcome = await self._one(url, current, headers, accept_types, cap, deadline)
            if isinstance(outcome, FetchResult):
                return outcome
            current = outcome
        return FetchResult(
            url, current, FetchStatus.PERMANENT, error=f"more than {self.limits.max_redirects} redirects"
        )

    async def _one(
        self,
        url: str,
        current: str,
        headers: dict[str, str],
        accept_types: tuple[str, ...],
        cap: int,
        deadline: list[float],
    ) -> FetchResult | str:
        """Do one request; return a result, or the next URL for a redirect."""
        # Politeness is per server, and a port is a different server: a 429 from one
        # service on a machine must not hold back another one on the same address.
        parsed = httpx.URL(current)
        host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        async with self.hosts.slot(host), self._global:
            # Checked once the slot is ours: requests queued behind a 429 must not go out.
            waiting = self.hosts.blocked_for(host)
            if waiting > 0:
                return FetchResult(
                    url,
                    current,
                    FetchStatus.TEMPORARY,
                    error=f"backing off from {host} after HTTP 429 ({waiting:.0f} s left)",
                )
            if not deadline:
                deadline.append(asyncio.get_running_loop().time() + self.limits.total_timeout_s)
            try:
                async with asyncio.timeout_at(deadline[0]):
                    return await self._exchange(url, current, headers, accept_types, cap, host)
            except TimeoutError:
                return FetchResult(
                    url,
                    current,
                    FetchStatus.TEMPORARY,
                    error=f"timed out after {self.limits.total_timeout_s:g} s in total",
                )

    async def _exchange(
        self,
        url: str,
        current: str,
        headers: dict[str, str],
        accept_types: tuple[str, ...],
        cap: int,
        host: str,
    ) -> FetchResult | str:
        """Send one request and read its answer within the caps."""
        try:
            async with self.client.stream("GET", current, headers=headers) as resp:
                code = resp.status_code
                if code in REDIRECT_CODES:
                    location = resp.headers.get("location")
                    if not location:
                        return FetchResult(
                            url, current, FetchStatus.PERMANENT, code, error="redirect without Location"
                        )
                    return urljoin(current, location.strip())
                if 300 <= code < 400 and code != 304:
                    return FetchResult(
                        url, current, FetchStatus.PERMANENT, code, error=f"unsupported HTTP {code}"
                    )
                ctype = resp.headers.get("content-type")
                base = dict(url=url, final_url=current, http_status=code, content_type=ctype)
                if code == 304:
                    return FetchResult(
                        status=FetchStatus.NOT_MODIFIED,
                        max_age_s=parse_max_age(resp.headers.get("cache-control")),
                        **base,
                    )
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if code == 429:
                    self.hosts.back_off(host, retry_after or self.limits.backoff_after_429_s)
                if code >= 400 or code < 200:
                    return FetchResult(
                        status=classify_http_status(code),
                        error=f"HTTP {code}" + _retry_after(resp),
                        retry_after_s=retry_after,
                        **base,
                    )
                media = _media_type(ctype)
                if media and media not in accept_types:
                    return FetchResult(
                        status=FetchStatus.PERMANENT,
                        error=f"unwanted content type {media}",
                        **base,
                    )
                declared = resp.headers.get("content-length")
                if (
                    declared
                    and declared.isdigit()
                    and int(declared) > cap
                    and not resp.headers.get("content-encoding")
                ):
                    return FetchResult(
                        status=FetchStatus.PERMANENT,
                        error=f"body of {declared} bytes exceeds the {cap}-byte cap",
                        **base,
                    )
                body = await _read_capped(resp, cap)
                return FetchResult(
                    status=FetchStatus.OK,
                    body=body,
                    etag=resp.headers.get("etag"),
                    last_modified=resp.headers.get("last-modified"),
                    max_age_s=parse_max_age(resp.headers.get("cache-control")),
                    **base,
                )
        except BlockedAddress as exc:
            return FetchResult(url, current, FetchStatus.PERMANENT, error=f"refused: {exc}")
        except ResponseTooLarge as exc:
            return FetchResult(url, current, FetchStatus.PERMANENT, error=str(exc))
        except ValueError as exc:  # unsupported content-encoding, bad URL
            return FetchResult(url, current, FetchStatus.PERMANENT, error=str(exc))
        except zlib.error as exc:
            return FetchResult(url, current, FetchStatus.TEMPORARY, error=f"corrupt compressed body: {exc}")
        except httpx.TimeoutException as exc:
            return FetchResult(url, current, FetchStatus.TEMPORARY, error=f"timeout: {type(exc).__name__}")
        except httpx.UnsupportedProtocol as exc:
            return FetchResult(url, current, FetchStatus.PERMANENT, error=f"refused: {exc}")
        except httpx.HTTPError as exc:
            return FetchResult(
                url,
                current,
                FetchStatus.TEMPORARY,
                error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            )


def _retry_after(resp: httpx.Response) -> str:
    value = resp.headers.get("retry-after")
    return f" (Retry-After: {value})" if value else ""


async def _read_capped(resp: httpx.Response, cap: int) -> bytes:
    decoder = _Decoder(resp.headers.get("content-encoding", ""), cap)
    parts: list[bytes] = []
    async for chunk in resp.aiter_raw():
        parts.append(decoder.feed(chunk))
    return b"".join(parts)


@asynccontextmanager
async def open_fetcher(limits: FetchLimits, guard: AddressGuard, user_agent: str) -> AsyncIterator[Fetcher]:
    """Open a guarded HTTP client and wrap it in a :class:`Fetcher`.

    Args:
        limits: timeouts and caps.
        guard: the SSRF policy every connection must pass.
        user_agent: sent with every request.

    Yields:
        A ready fetcher; the client is closed on exit.
    """
    timeout = httpx.Timeout(
        connect=limits.connect_timeout_s,
        read=limits.read_timeout_s,
        write=limits.read_timeout_s,
        pool=limits.total_timeout_s,
    )
    client = httpx.AsyncClient(
        transport=guarded_transport(guard, max_connections=max(limits.concurrency, 1) * 2),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={
            "User-Agent": user_agent,
            "Accept-Encoding": "gzip, deflate",
        },
    )
    async with client:
        yield Fetcher(client, limits, guard)
