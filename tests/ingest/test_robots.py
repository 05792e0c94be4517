"""RobotsPolicy through a real Fetcher against local servers, and fetch_pages with robots=.

All traffic stays on 127.0.0.1; a socket sentinel refuses anything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from monitor.ingest.guard import AddressGuard
from monitor.ingest.http import Fetcher, FetchLimits, open_fetcher
from monitor.ingest.pages import fetch_pages
from monitor.ingest.robots import RobotsPolicy
from monitor.ingest.urls import canonicalize
from monitor.models import Entry, FetchStatus
from tests.servers import FastScriptedServer, LoopbackOnlySockets, ScriptedServer

T = TypeVar("T")

UA = "MonitorBot/1.0 (+http://127.0.0.1/bot)"
LIMITS = FetchLimits(connect_timeout_s=1.0, read_timeout_s=2.0, total_timeout_s=3.0, per_host_delay_s=0.0)
HTML = b"<!doctype html><html><head><title>Hi</title></head><body><p>Hello</p></body></html>"


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"DNS is disabled in these tests (asked for {host})")


def run(work: Callable[[Fetcher], Awaitable[T]], user_agent: str = UA) -> T:
    async def go() -> T:
        guard = AddressGuard(["127.0.0.1"], resolver=_no_dns)
        async with open_fetcher(LIMITS, guard, user_agent) as fetcher:
            return await work(fetcher)

    return asyncio.run(go())


def allowed(base: str, paths: list[str], user_agent: str = UA) -> list[bool]:
    async def work(fetcher: Fetcher) -> list[bool]:
        policy = RobotsPolicy(fetcher, user_agent)
        return list(await asyncio.gather(*(policy.allowed(base + p) for p in paths)))

    return run(work, user_agent)


def robots(server: ScriptedServer, text: str, status: int = 200) -> None:
    server.add("/robots.txt", status, text, Content_Type="text/plain; charset=utf-8")


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    with FastScriptedServer() as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnlySockets:
    return LoopbackOnlySockets.install(monkeypatch)


def test_disallowed_path_is_refused_others_allowed(scripted_server: ScriptedServer) -> None:
    robots(scripted_server, "User-agent: *\nDisallow: /private/\n")
    base = scripted_server.base
    assert allowed(base, ["/private/a.html", "/news/a.html", "/private", "/"]) == [False, True, True, True]


def test_robots_is_fetched_once_per_host(scripted_server: ScriptedServer) -> None:
    robots(scripted_server, "User-agent: *\nDisallow: /private/\n")
    paths = [f"/news/{i}.html" for i in range(20)] + [f"/private/{i}.html" for i in range(5)]
    answers = allowed(scripted_server.base, paths)
    assert answers == [True] * 20 + [False] * 5
    assert scripted_server.requests == ["/robots.txt"]
    assert scripted_server.request_headers[0]["user-agent"] == UA


def test_missing_robots_allows_everything(scripted_server: ScriptedServer) -> None:
    # no route: the server answers 404
    assert allowed(scripted_server.base, ["/private/a.html", "/news/a.html"]) == [True, True]
    assert scripted_server.requests == ["/robots.txt"]


@pytest.mark.parametrize("status", [401, 403, 410])
def test_other_4xx_robots_allow_everything(scripted_server: ScriptedServer, status: int) -> None:
    robots(scripted_server, "", status)
    assert allowed(scripted_server.base, ["/a.html"]) == [True]


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_robots_disallow_everything(scripted_server: ScriptedServer, status: int) -> None:
    robots(scripted_server, "User-agent: *\nAllow: /\n", status)
    assert allowed(scripted_server.base, ["/news/a.html", "/"]) == [False, False]
    assert scripted_server.requests == ["/robots.txt"]


def test_unreachable_robots_disallows_everything(closed_port: int) -> None:
    assert allowed(f"http://127.0.0.1:{closed_port}", ["/news/a.html"]) == [False]


def test_agent_specific_rules_use_the_product_token(scripted_server: ScriptedServer) -> None:
    robots(
        scripted_server,
        "User-agent: monitorbot\nDisallow: /news/\n\nUser-agent: *\nDisallow: /private/\n",
    )
    base = scripted_server.base
    # our token "MonitorBot" matches its group (case-insensitively), which replaces "*"
    assert allowed(base, ["/news/a.html", "/private/a.html"]) == [False, True]
    # another crawler gets the "*" group
    assert allowed(base, ["/news/a.html", "/private/a.html"], "OtherBot/2.0") == [True, False]


def test_a_group_for_a_prefix_of_our_token_is_not_ours(scripted_server: ScriptedServer) -> None:
    """RFC 9309 2.2.1: the group is chosen by matching the product token, not a substring of it."""
    robots(scripted_server, "User-agent: Monitor\nAllow: /\n\nUser-agent: *\nDisallow: /\n")
    assert allowed(scripted_server.base, ["/news/a.html"]) == [False]


def test_the_most_specific_rule_wins(scripted_server: ScriptedServer) -> None:
    """RFC 9309 2.2.2: the longest matching path decides, whatever the line order."""
    robots(scripted_server, "User-agent: *\nAllow: /news/\nDisallow: /news/private/\n")
    assert allowed(scripted_server.base, ["/news/a.html", "/news/private/a.html"]) == [True, False]


def entry(url: str) -> Entry:
    return Entry("src", url, canonicalize(url), "t", None, None)


def test_fetch_pages_skips_disallowed_pages_without_requesting_them(scripted_server: ScriptedServer) -> None:
    robots(scripted_server, "User-agent: *\nDisallow: /private/\n")
    for path in ("/news/a.html", "/news/b.html", "/private/a.html"):
        scripted_server.add(path, 200, HTML, Content_Type="text/html")
    items = [entry(scripted_server.base + p) for p in ("/news/a.html", "/private/a.html", "/news/b.html")]

    async def work(fetcher: Fetcher):
        return await fetch_pages(fetcher, items, 1024 * 1024, robots=RobotsPolicy(fetcher, UA))

    pages, failures = run(work)
    assert sorted(p.entry.url for p in pages) == [items[0].url, items[2].url]
    assert all(p.fetch.body == HTML for p in pages)
    assert len(failures) == 1
    failure = failures[0]
    assert failure.entry == items[1]
    assert failure.status is FetchStatus.PERMANENT
    assert failure.http_status is None
    assert failure.error == "disallowed by robots.txt"
    assert "/private/a.html" not in scripted_server.requests
    assert scripted_server.requests.count("/robots.txt") == 1
    assert sorted(scripted_server.requests) == ["/news/a.html", "/news/b.html", "/robots.txt"]


def test_fetch_pages_with_unreadable_robots_fetches_nothing(scripted_server: ScriptedServer) -> None:
    robots(scripted_server, "", 500)
    scripted_server.add("/news/a.html", 200, HTML, Content_Type="text/html")
    items = [entry(scripted_server.base + "/news/a.html")]

    async def work(fetcher: Fetcher):
        return await fetch_pages(fetcher, items, 1024 * 1024, robots=RobotsPolicy(fetcher, UA))

    pages, failures = run(work)
    assert pages == []
    assert [f.error for f in failures] == ["disallowed by robots.txt"]
    assert scripted_server.requests == ["/robots.txt"]
