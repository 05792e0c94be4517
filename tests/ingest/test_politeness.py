"""Per-host politeness: HostGate spacing and concurrency, Retry-After / max-age parsing,
and the Fetcher's back-off after 429 against local servers.

All traffic stays on 127.0.0.0/8; a socket sentinel refuses anything else.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import TypeVar
from urllib.parse import urlsplit

import pytest

from monitor.ingest.guard import AddressGuard
from monitor.ingest.http import FEED_TYPES, PAGE_TYPES, Fetcher, FetchLimits, open_fetcher
from monitor.ingest.politeness import HostGate, parse_max_age, parse_retry_after
from monitor.models import FetchStatus
from tests.servers import FastScriptedServer, LoopbackOnlySockets, ScriptedServer, delayed_headers

T = TypeVar("T")

UA = "politeness-test-bot/3.1 (+http://127.0.0.1/bot)"
LIMITS = FetchLimits(
    connect_timeout_s=1.0,
    read_timeout_s=2.0,
    total_timeout_s=3.0,
    max_bytes=1024 * 1024,
    per_host_delay_s=0.0,
)
HTML = b"<!doctype html><html><head><title>Hi</title></head><body><p>Hello</p></body></html>"
EPS = 0.02  # scheduler jitter allowed on sleeps


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"DNS is disabled in these tests (asked for {host})")


def guard(*allow: str) -> AddressGuard:
    return AddressGuard(list(allow) or ["127.0.0.1"], resolver=_no_dns)


def with_fetcher(
    work: Callable[[Fetcher], Awaitable[T]],
    limits: FetchLimits = LIMITS,
    allow: tuple[str, ...] = ("127.0.0.1",),
) -> T:
    async def go() -> T:
        async with open_fetcher(limits, guard(*allow), UA) as fetcher:
            return await work(fetcher)

    return asyncio.run(go())


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    with FastScriptedServer() as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[ScriptedServer]:
    """A second server on another loopback address (a different host to the gate)."""
    with FastScriptedServer(host="127.0.0.2") as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnlySockets:
    return LoopbackOnlySockets.install(monkeypatch)


# --- HostGate --------------------------------------------------------------------


def test_slots_are_spaced_and_capped_per_host() -> None:
    gate = HostGate(per_host=2, min_delay_s=0.2)
    starts: list[float] = []
    inside = {"now": 0, "max": 0}

    async def user() -> None:
        async with gate.slot("news.example"):
            starts.append(time.monotonic())
            inside["now"] += 1
            inside["max"] = max(inside["max"], inside["now"])
            await asyncio.sleep(0.5)
            inside["now"] -= 1

    async def main() -> None:
        await asyncio.gather(*(user() for _ in range(5)))

    began = time.monotonic()
    asyncio.run(main())
    elapsed = time.monotonic() - began

    assert len(starts) == 5
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.2 - EPS for gap in gaps), gaps
    assert inside["max"] == 2
    # u1 0.0, u2 0.2, u3 0.5 (waits for a slot), u4 0.7, u5 1.0 -> ends 1.5
    assert 1.4 <= elapsed < 2.5


def test_different_hosts_do_not_delay_each_other() -> None:
    gate = HostGate(per_host=1, min_delay_s=0.5)
    starts: dict[str, list[float]] = {"a": [], "b": []}

    async def user(host: str) -> None:
        async with gate.slot(host):
            starts[host].append(time.monotonic())

    async def main() -> float:
        t0 = time.monotonic()
        await asyncio.gather(user("a"), user("b"), user("a"))
        return t0

    t0 = asyncio.run(main())
    assert starts["a"][0] - t0 < 0.1
    assert starts["b"][0] - t0 < 0.1  # not held back by host a's spacing
    assert starts["a"][1] - starts["a"][0] >= 0.5 - EPS


def test_back_off_expires_with_the_clock() -> None:
    now = [1000.0]
    gate = HostGate(per_host=2, min_delay_s=0.0, clock=lambda: now[0])
    assert gate.blocked_for("h") == 0.0
    gate.back_off("h", 1.0)
    assert gate.blocked_for("h") == pytest.approx(1.0)
    assert gate.blocked_for("other") == 0.0
    now[0] += 0.4
    assert gate.blocked_for("h") == pytest.approx(0.6)
    now[0] += 0.6
    assert gate.blocked_for("h") == 0.0
    now[0] += 10
    assert gate.blocked_for("h") == 0.0


def test_back_off_never_shortens_an_existing_one() -> None:
    now = [0.0]
    gate = HostGate(per_host=1, min_delay_s=0.0, clock=lambda: now[0])
    gate.back_off("h", 60)
    gate.back_off("h", 1)
    gate.back_off("h", -5)
    assert gate.blocked_for("h") == pytest.approx(60)


# --- header parsing --------------------------------------------------------------


NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC, a whole second


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 3600, usegmt=True), 0.0),  # a past date: no wait, never negative
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_never_raises_on_odd_digits() -> None:
    # str.isdigit() accepts "²", which float() rejects: must be "unparseable", not a crash.
    assert parse_retry_after("²", now=NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("public, max-age=600", 600.0),
        ('max-age="60"', 60.0),
        ("Max-Age=5, must-revalidate", 5.0),
        ("no-cache", None),
        ("max-age=", None),
        ("max-age=abc", None),
        (None, None),
        ("", None),
    ],
)
def test_parse_max_age(value: str | None, expected: float | None) -> None:
    assert parse_max_age(value) == expected


def test_parse_max_age_never_raises_on_odd_digits() -> None:
    assert parse_max_age("max-age=²") is None


# --- through the Fetcher -----------------------------------------------------------


def test_429_backs_off_that_host_only(scripted_server: ScriptedServer, other_host: ScriptedServer) -> None:
    limited = scripted_server.add("/feed.xml", 429, "", Retry_After="30")
    again = scripted_server.add("/other.xml", 200, HTML, Content_Type="text/html")
    elsewhere = other_host.add("/page", 200, HTML, Content_Type="text/html")

    async def work(fetcher: Fetcher):
        first = await fetcher.get(limited, accept_types=FEED_TYPES)
        second = await fetcher.get(again, accept_types=PAGE_TYPES)
        third = await fetcher.get(elsewhere, accept_types=PAGE_TYPES)
        return first, second, third, fetcher.hosts.blocked_for(urlsplit(limited).netloc)

    first, second, third, blocked = with_fetcher(work, allow=("127.0.0.0/8",))

    assert first.status is FetchStatus.TEMPORARY
    assert first.http_status == 429
    assert first.retry_after_s == 30
    assert "HTTP 429" in (first.error or "")
    assert second.status is FetchStatus.TEMPORARY
    assert "backing off" in (second.error or "")
    assert second.http_status is None
    assert scripted_server.requests == ["/feed.xml"]  # the second request never left
    assert third.status is FetchStatus.OK, third.error
    assert other_host.requests == ["/page"]
    assert 25 < blocked <= 30


def test_429_without_retry_after_uses_the_default_back_off(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/x", 429)
    limits = FetchLimits(connect_timeout_s=1.0, per_host_delay_s=0.0, backoff_after_429_s=45.0)

    async def work(fetcher: Fetcher):
        result = await fetcher.get(url, accept_types=PAGE_TYPES)
        return result, fetcher.hosts.blocked_for(urlsplit(url).netloc)

    result, blocked = with_fetcher(work, limits)
    assert result.status is FetchStatus.TEMPORARY
    assert result.retry_after_s is None
    assert 40 < blocked <= 45


def test_429_stops_requests_already_queued_for_the_host(scripted_server: ScriptedServer) -> None:
    """Requests waiting for the host's slot when the 429 arrives must not be sent."""

    def slow_429(h: BaseHTTPRequestHandler) -> None:
        time.sleep(0.2)  # the others are queued behind this one by now
        h.send_response(429)
        h.send_header("Retry-After", "30")
        h.send_header("Content-Length", "0")
        h.end_headers()

    first = scripted_server.add_handler("/first", slow_429)
    rest = [scripted_server.add(f"/p{i}", 200, HTML, Content_Type="text/html") for i in range(4)]
    limits = FetchLimits(
        connect_timeout_s=1.0, total_timeout_s=3.0, per_host_concurrency=1, per_host_delay_s=0
    )

    async def work(fetcher: Fetcher):
        return await asyncio.gather(*(fetcher.get(u, accept_types=PAGE_TYPES) for u in [first, *rest]))

    results = with_fetcher(work, limits)
    assert results[0].http_status == 429
    assert scripted_server.requests == ["/first"], "requests queued behind the 429 still reached the host"
    assert all(r.status is FetchStatus.TEMPORARY and "backing off" in (r.error or "") for r in results[1:])


def test_retry_after_with_odd_digits_is_still_temporary(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/x", 429, "", Retry_After="²")
    result = with_fetcher(lambda f: f.get(url, accept_types=PAGE_TYPES))
    assert result.status is FetchStatus.TEMPORARY, result.error
    assert result.retry_after_s is None


def test_cache_control_max_age_is_reported(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add(
        "/feed", 200, HTML, Content_Type="text/html", Cache_Control="public, max-age=900"
    )
    result = with_fetcher(lambda f: f.get(url, accept_types=PAGE_TYPES))
    assert result.status is FetchStatus.OK, result.error
    assert result.max_age_s == 900
    assert result.retry_after_s is None


def test_odd_cache_control_does_not_fail_a_good_response(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/feed", 200, HTML, Content_Type="text/html", Cache_Control="max-age=²")
    result = with_fetcher(lambda f: f.get(url, accept_types=PAGE_TYPES))
    assert result.status is FetchStatus.OK, result.error
    assert result.body == HTML
    assert result.max_age_s is None


def test_user_agent_is_sent_as_configured(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/p", 200, HTML, Content_Type="text/html")
    with_fetcher(lambda f: f.get(url, accept_types=PAGE_TYPES))
    assert scripted_server.request_headers[0]["user-agent"] == UA


def test_requests_to_one_host_are_spaced(scripted_server: ScriptedServer) -> None:
    arrivals: list[float] = []

    def stamp(h: BaseHTTPRequestHandler) -> None:
        arrivals.append(time.monotonic())
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(HTML)))
        h.end_headers()
        h.wfile.write(HTML)

    urls = [scripted_server.add_handler(f"/s{i}", stamp) for i in range(4)]
    limits = FetchLimits(connect_timeout_s=1.0, per_host_concurrency=4, per_host_delay_s=0.15)

    async def work(fetcher: Fetcher):
        return await asyncio.gather(*(fetcher.get(u, accept_types=PAGE_TYPES) for u in urls))

    results = with_fetcher(work, limits)
    assert all(r.status is FetchStatus.OK for r in results)
    arrivals.sort()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap >= 0.15 - 0.05 for gap in gaps), gaps


def test_total_timeout_does_not_count_waiting_for_a_host_slot(scripted_server: ScriptedServer) -> None:
    """A request that waits its turn politely must not fail as "timed out" before it is sent.

    Each response takes 0.6 s, well inside the 1.5 s total timeout, but with one slot
    per host the third request only starts after 1.2 s of queueing.
    """
    urls = [scripted_server.add_handler(f"/slow{i}", delayed_headers(0.6)) for i in range(3)]
    limits = FetchLimits(
        connect_timeout_s=1.0,
        read_timeout_s=1.5,
        total_timeout_s=1.5,
        per_host_concurrency=1,
        per_host_delay_s=0.0,
    )

    async def work(fetcher: Fetcher):
        return await asyncio.gather(*(fetcher.get(u, accept_types=PAGE_TYPES) for u in urls))

    results = with_fetcher(work, limits)
    assert [r.status for r in results] == [FetchStatus.OK] * 3, [r.error for r in results]
    assert sorted(scripted_server.requests) == ["/slow0", "/slow1", "/slow2"]
