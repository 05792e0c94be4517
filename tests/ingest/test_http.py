"""Fetcher against misbehaving local servers: every outcome classified, every call bounded.

Each test runs the async fetcher with ``asyncio.run`` from a plain test function and
checks the status, the error text where it matters, and the wall-clock time.
All traffic stays on 127.0.0.1; a socket sentinel refuses anything else.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import resource
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import TypeVar

import pytest

from monitor.ingest.guard import AddressGuard
from monitor.ingest.http import FEED_TYPES, PAGE_TYPES, Fetcher, FetchLimits, open_fetcher
from monitor.ingest.pages import fetch_pages
from monitor.ingest.parsing import parse_feed
from monitor.ingest.polling import poll_feeds
from monitor.ingest.urls import canonicalize
from monitor.models import Entry, Feed, FeedPoll, FetchResult, FetchStatus, PageFailure, PageFetch
from tests.servers import (
    FastScriptedServer,
    LoopbackOnlySockets,
    ScriptedServer,
    conditional,
    delayed_headers,
    endless,
    slow_drip,
    stall_after_headers,
)

T = TypeVar("T")

LIMITS = FetchLimits(
    connect_timeout_s=1.0,
    read_timeout_s=2.0,
    total_timeout_s=3.0,
    max_bytes=1024 * 1024,
    max_redirects=5,
)
SLACK_S = 2.0
HTML = b"<!doctype html><html><head><title>Hi</title></head><body><p>Hello</p></body></html>"
MB = 1024 * 1024


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"DNS is disabled in these tests (asked for {host})")


def _guard() -> AddressGuard:
    return AddressGuard(["127.0.0.1"], resolver=_no_dns)


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """Overrides conftest's fixture with a server whose teardown is fast."""
    with FastScriptedServer() as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnlySockets:
    """Refuse (and record) any socket connect outside 127.0.0.0/8 during each test."""
    return LoopbackOnlySockets.install(monkeypatch)


def run_with_fetcher(
    work: Callable[[Fetcher], Awaitable[T]], limits: FetchLimits = LIMITS, bound_s: float | None = None
) -> tuple[T, float]:
    """Open a fetcher, run ``work`` with it, and assert the whole thing ended in time."""

    async def go() -> T:
        async with open_fetcher(limits, _guard(), "test-agent") as fetcher:
            return await work(fetcher)

    started = time.monotonic()
    value = asyncio.run(go())
    elapsed = time.monotonic() - started
    bound = bound_s if bound_s is not None else limits.total_timeout_s + SLACK_S
    assert elapsed < bound, f"took {elapsed:.2f} s, bound {bound:.2f} s"
    return value, elapsed


def fetch_timed(
    url: str,
    *,
    limits: FetchLimits = LIMITS,
    accept_types: tuple[str, ...] = PAGE_TYPES,
    bound_s: float | None = None,
    **kwargs: object,
) -> tuple[FetchResult, float]:
    """GET one URL through a fresh fetcher; returns the result and the wall time."""

    async def work(fetcher: Fetcher) -> FetchResult:
        return await fetcher.get(url, accept_types=accept_types, **kwargs)  # type: ignore[arg-type]

    return run_with_fetcher(work, limits, bound_s)


def fetch(url: str, **kwargs: object) -> FetchResult:
    """Like :func:`fetch_timed`, result only."""
    return fetch_timed(url, **kwargs)[0]  # type: ignore[arg-type]


def gzip_bomb(decompressed: int) -> bytes:
    """A gzip stream of ``decompressed`` zero bytes, built without holding them in memory."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MB)
    parts = [z.compress(block) for _ in range(decompressed // MB)]
    parts.append(z.flush())
    return b"".join(parts)


def make_entry(url: str, source_id: str = "src") -> Entry:
    return Entry(
        source_id=source_id,
        url=url,
        canonical_url=canonicalize(url),
        title=f"title of {url}",
        published_at=None,
        summary=None,
    )


def rss(*links: str) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>{link}</link><guid>g{i}</guid>"
        f"<pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate><description>About {i}</description></item>"
        for i, link in enumerate(links)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>Test feed</title><link>http://127.0.0.1/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


# --- success and conditional GET -------------------------------------------------


def test_ok_html_returns_body_and_validators(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add(
        "/page",
        200,
        HTML,
        Content_Type="text/html; charset=utf-8",
        ETag='"v1"',
        Last_Modified="Mon, 06 Jan 2025 10:00:00 GMT",
    )
    result = fetch(url)
    assert result.status is FetchStatus.OK, result.error
    assert result.error is None
    assert result.http_status == 200
    assert result.body == HTML
    assert result.etag == '"v1"'
    assert result.last_modified == "Mon, 06 Jan 2025 10:00:00 GMT"
    assert result.content_type == "text/html; charset=utf-8"
    assert result.url == url and result.final_url == url
    assert result.elapsed_s > 0
    sent = scripted_server.request_headers[0]
    assert sent["user-agent"] == "test-agent"
    assert "if-none-match" not in sent and "if-modified-since" not in sent


def test_not_modified_when_etag_matches(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add_handler("/cond", conditional('"abc"', HTML))
    first = fetch(url)
    assert first.status is FetchStatus.OK
    assert first.etag == '"abc"'

    second = fetch(url, etag=first.etag, last_modified="Mon, 06 Jan 2025 10:00:00 GMT")
    assert second.status is FetchStatus.NOT_MODIFIED, second.error
    assert second.http_status == 304
    assert second.body is None
    assert second.error is None
    sent = scripted_server.request_headers[-1]
    assert sent["if-none-match"] == '"abc"'
    assert sent["if-modified-since"] == "Mon, 06 Jan 2025 10:00:00 GMT"


# --- HTTP error codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (400, FetchStatus.PERMANENT),
        (403, FetchStatus.PERMANENT),
        (404, FetchStatus.PERMANENT),
        (410, FetchStatus.PERMANENT),
        (408, FetchStatus.TEMPORARY),
        (429, FetchStatus.TEMPORARY),
        (500, FetchStatus.TEMPORARY),
        (502, FetchStatus.TEMPORARY),
        (503, FetchStatus.TEMPORARY),
    ],
)
def test_http_error_codes_are_classified(
    scripted_server: ScriptedServer, code: int, expected: FetchStatus
) -> None:
    url = scripted_server.add("/x", code, b"nope", Content_Type="text/html")
    result = fetch(url)
    assert result.status is expected
    assert result.http_status == code
    assert result.error == f"HTTP {code}"
    assert result.body is None


@pytest.mark.parametrize("code", [503, 429])
def test_retry_after_is_reported(scripted_server: ScriptedServer, code: int) -> None:
    url = scripted_server.add("/busy", code, b"busy", Content_Type="text/html", Retry_After="120")
    result = fetch(url)
    assert result.status is FetchStatus.TEMPORARY
    assert result.http_status == code
    assert result.error is not None
    assert "Retry-After" in result.error
    assert "120" in result.error


# --- network faults and time limits ---------------------------------------------


def test_connection_refused_is_temporary(closed_port: int) -> None:
    result, elapsed = fetch_timed(f"http://127.0.0.1:{closed_port}/")
    assert result.status is FetchStatus.TEMPORARY
    assert result.http_status is None
    assert result.error is not None
    assert "ConnectError" in result.error
    assert elapsed < 2.0


def test_headers_that_never_arrive_hit_the_read_timeout(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add_handler("/silent", delayed_headers(5.0))
    limits = FetchLimits(connect_timeout_s=1.0, read_timeout_s=0.5, total_timeout_s=3.0)
    result, elapsed = fetch_timed(url, limits=limits)
    assert result.status is FetchStatus.TEMPORARY
    assert result.error is not None
    assert "ReadTimeout" in result.error
    assert elapsed < 2.0


def test_slow_drip_body_hits_the_total_timeout(scripted_server: ScriptedServer) -> None:
    # One byte every 0.3 s never trips the 2 s read timeout; only the total timeout can stop it.
    url = scripted_server.add_handler("/drip", slow_drip(interval_s=0.3))
    limits = FetchLimits(connect_timeout_s=1.0, read_timeout_s=2.0, total_timeout_s=1.5)
    result, elapsed = fetch_timed(url, limits=limits, bound_s=4.0)
    assert result.status is FetchStatus.TEMPORARY
    assert result.error is not None
    assert "timed out" in result.error
    assert result.body is None
    assert 1.4 < elapsed < 4.0


def test_endless_body_hits_the_byte_cap(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add_handler("/endless", endless())
    limits = FetchLimits(connect_timeout_s=1.0, read_timeout_s=2.0, total_timeout_s=5.0, max_bytes=MB)
    result, elapsed = fetch_timed(url, limits=limits)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert "exceeds" in result.error
    assert str(MB) in result.error
    assert result.body is None
    assert elapsed < 3.0


def test_declared_length_over_cap_is_refused_without_reading(scripted_server: ScriptedServer) -> None:
    # The server declares 50 MB, sends 6 bytes and stalls: reading the body would hang
    # until the total timeout, so a quick PERMANENT proves the body was never read.
    url = scripted_server.add_handler("/huge", stall_after_headers(50 * MB, stall_s=5.0))
    result, elapsed = fetch_timed(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.http_status == 200
    assert result.error is not None
    assert str(50 * MB) in result.error
    assert "cap" in result.error
    assert result.body is None
    assert elapsed < 1.5


def test_per_call_max_bytes_overrides_the_limit(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/page", 200, b"x" * 5000, Content_Type="text/html")
    assert fetch(url).status is FetchStatus.OK
    small = fetch(url, max_bytes=1000)
    assert small.status is FetchStatus.PERMANENT
    assert small.error is not None and "1000-byte cap" in small.error


# --- content encodings -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
def test_compressed_body_is_decoded(scripted_server: ScriptedServer, encoding: str) -> None:
    body = zlib.compress(HTML) if encoding == "deflate" else gzip.compress(HTML)
    url = scripted_server.add("/z", 200, body, Content_Type="text/html", Content_Encoding=encoding)
    result = fetch(url)
    assert result.status is FetchStatus.OK, result.error
    assert result.body == HTML
    assert "gzip" in scripted_server.request_headers[0]["accept-encoding"]


def test_gzip_bomb_is_capped_without_inflating(scripted_server: ScriptedServer) -> None:
    bomb = gzip_bomb(200 * MB)
    assert len(bomb) < 1 * MB  # ~200 KB on the wire
    url = scripted_server.add("/bomb", 200, bomb, Content_Type="text/html", Content_Encoding="gzip")
    limits = FetchLimits(connect_timeout_s=1.0, read_timeout_s=2.0, total_timeout_s=5.0, max_bytes=5 * MB)

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        result, elapsed = fetch_timed(url, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kb) / 1024

    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert "exceeds" in result.error
    assert str(5 * MB) in result.error
    assert result.body is None
    assert peak < 100 * MB, f"peak traced allocation {peak / MB:.0f} MB"
    assert rss_growth_mb < 100, f"max RSS grew by {rss_growth_mb:.0f} MB"
    assert elapsed < 3.0


def test_corrupt_gzip_body_is_a_failure_not_a_crash(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add(
        "/bad", 200, b"\x1f\x8b\x08\x00garbage-not-gzip", Content_Type="text/html", Content_Encoding="gzip"
    )
    result = fetch(url)
    assert result.status is not FetchStatus.OK
    assert result.error is not None and "corrupt" in result.error


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_unsupported_content_encoding_is_permanent(scripted_server: ScriptedServer, encoding: str) -> None:
    url = scripted_server.add(
        "/enc", 200, b"\x0b\x02\x80hello\x03", Content_Type="text/html", Content_Encoding=encoding
    )
    result = fetch(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert "content-encoding" in result.error
    assert encoding in result.error
    assert result.body is None


# --- redirects ------------------------------------------------------------------


def test_redirect_loop_is_permanent(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/a", 302, b"", Location="/b")
    scripted_server.add("/b", 301, b"", Location=url)
    result = fetch(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert "redirect loop" in result.error
    assert scripted_server.requests == ["/a", "/b"]


def test_too_many_redirects_is_permanent(scripted_server: ScriptedServer) -> None:
    for i in range(10):
        scripted_server.add(f"/r{i}", 302, b"", Location=f"/r{i + 1}")
    limits = FetchLimits(connect_timeout_s=1.0, read_timeout_s=2.0, total_timeout_s=3.0, max_redirects=3)
    result = fetch(scripted_server.base + "/r0", limits=limits)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert "more than 3 redirects" in result.error
    # The original request plus exactly max_redirects hops; the 5th URL is never requested.
    assert scripted_server.requests == ["/r0", "/r1", "/r2", "/r3"]


def test_redirect_chain_at_the_limit_is_followed(scripted_server: ScriptedServer) -> None:
    for i in range(3):
        scripted_server.add(f"/r{i}", 307, b"", Location=f"/r{i + 1}")
    final = scripted_server.add("/r3", 200, HTML, Content_Type="text/html")
    limits = FetchLimits(connect_timeout_s=1.0, read_timeout_s=2.0, total_timeout_s=3.0, max_redirects=3)
    result = fetch(scripted_server.base + "/r0", limits=limits)
    assert result.status is FetchStatus.OK, result.error
    assert result.final_url == final
    assert result.url == scripted_server.base + "/r0"
    assert result.body == HTML


@pytest.mark.parametrize(
    ("location", "final_path"),
    [
        ("target", "/dir/target"),
        ("../other/target", "/other/target"),
        ("/abs/target?q=1", "/abs/target?q=1"),
        ("  next  ", "/dir/next"),
    ],
)
def test_relative_redirect_is_followed(
    scripted_server: ScriptedServer, location: str, final_path: str
) -> None:
    start = scripted_server.add("/dir/start", 302, b"", Location=location)
    scripted_server.add(final_path.split("?")[0], 200, HTML, Content_Type="text/html")
    result = fetch(start)
    assert result.status is FetchStatus.OK, result.error
    assert result.final_url == scripted_server.base + final_path
    assert result.body == HTML
    assert scripted_server.requests == ["/dir/start", final_path]


def test_redirect_drops_conditional_headers(scripted_server: ScriptedServer) -> None:
    start = scripted_server.add("/old", 301, b"", Location="/new")
    scripted_server.add("/new", 200, HTML, Content_Type="text/html")
    result = fetch(start, etag='"e"')
    assert result.status is FetchStatus.OK
    assert scripted_server.request_headers[0]["if-none-match"] == '"e"'
    assert "if-none-match" not in scripted_server.request_headers[1]


def test_redirect_without_location_is_permanent(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/nowhere", 302, b"")
    result = fetch(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.http_status == 302
    assert result.error == "redirect without Location"


@pytest.mark.parametrize(
    "location",
    [
        "http://[::1",  # unbalanced bracket
        "http://127.0.0.1:99999/",  # port out of range
        "http://127.0.0.1:1/\x01x",  # control character
    ],
    ids=["bracket", "port-99999", "control-char"],
)
def test_malformed_redirect_location_is_a_result_not_an_exception(
    scripted_server: ScriptedServer, location: str
) -> None:
    """Fetcher.get promises that nothing a server sends can raise out of it."""

    def redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    url = scripted_server.add_handler("/bad-redirect", redirect)
    result = fetch(url)
    assert result.status in (FetchStatus.PERMANENT, FetchStatus.TEMPORARY)
    assert result.error
    assert result.body is None


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://127.0.0.1:99999/", "http://127.0.0.1:1/\x00"],
    ids=["bracket", "port-99999", "nul"],
)
def test_malformed_url_is_refused_not_raised(url: str) -> None:
    result = fetch(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.error


def test_redirect_to_non_http_scheme_is_refused(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add("/to-file", 302, b"", Location="file:///etc/passwd")
    result = fetch(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert result.error.startswith("refused")
    assert result.final_url == "file:///etc/passwd"


# --- content types and URL schemes --------------------------------------------------


@pytest.mark.parametrize("ctype", ["application/pdf", "image/png", "application/octet-stream"])
def test_unwanted_content_type_is_permanent(scripted_server: ScriptedServer, ctype: str) -> None:
    url = scripted_server.add("/file", 200, b"%PDF-1.4 \x89PNG", Content_Type=ctype)
    result = fetch(url, accept_types=PAGE_TYPES)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert "content type" in result.error
    assert ctype in result.error
    assert result.body is None


def test_content_type_matching_ignores_case_and_parameters(scripted_server: ScriptedServer) -> None:
    url = scripted_server.add(
        "/feed", 200, rss("http://127.0.0.1/a"), Content_Type="Application/RSS+XML; charset=UTF-8"
    )
    assert fetch(url, accept_types=FEED_TYPES).status is FetchStatus.OK
    assert fetch(url, accept_types=PAGE_TYPES).status is FetchStatus.PERMANENT


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "gopher://127.0.0.1:70/_",
        "http:///no-host",
        "",
    ],
)
def test_non_http_urls_are_refused(url: str, loopback_only: LoopbackOnlySockets) -> None:
    result, elapsed = fetch_timed(url)
    assert result.status is FetchStatus.PERMANENT
    assert result.error is not None
    assert result.error.startswith("refused")
    assert loopback_only.calls == []
    assert elapsed < 1.0


# --- fetch_pages and poll_feeds ----------------------------------------------------


def test_fetch_pages_separates_pages_from_failures(scripted_server: ScriptedServer, closed_port: int) -> None:
    good1 = scripted_server.add("/good1", 200, HTML, Content_Type="text/html")
    good2 = scripted_server.add("/good2", 200, b"plain text", Content_Type="text/plain")
    scripted_server.add("/moved-target", 200, HTML, Content_Type="text/html")
    moved = scripted_server.add("/moved", 301, b"", Location="/moved-target")
    missing = scripted_server.base + "/missing"  # unscripted: 404
    gone = scripted_server.add("/gone", 410, b"")
    broken = scripted_server.add("/broken", 500, b"", Retry_After="30")
    pdf = scripted_server.add("/doc", 200, b"%PDF", Content_Type="application/pdf")
    big = scripted_server.add("/big", 200, b"y" * 10_000, Content_Type="text/html")
    refused = f"http://127.0.0.1:{closed_port}/x"
    urls = [good1, missing, good2, gone, broken, pdf, moved, big, refused]
    entries = [make_entry(u) for u in urls]

    async def work(fetcher: Fetcher) -> tuple[list[PageFetch], list[PageFailure]]:
        return await fetch_pages(fetcher, entries, max_bytes=5000)

    (pages, failures), _ = run_with_fetcher(work)

    assert [p.entry.url for p in pages] == [good1, good2, moved]
    assert all(p.fetch.status is FetchStatus.OK and p.fetch.body for p in pages)
    assert pages[0].entry is entries[0]
    assert pages[2].fetch.final_url == scripted_server.base + "/moved-target"

    by_url = {f.entry.url: f for f in failures}
    assert list(by_url) == [missing, gone, broken, pdf, big, refused]
    assert (by_url[missing].status, by_url[missing].http_status) == (FetchStatus.PERMANENT, 404)
    assert (by_url[gone].status, by_url[gone].http_status) == (FetchStatus.PERMANENT, 410)
    assert (by_url[broken].status, by_url[broken].http_status) == (FetchStatus.TEMPORARY, 500)
    assert "Retry-After: 30" in by_url[broken].error
    assert by_url[pdf].status is FetchStatus.PERMANENT and "content type" in by_url[pdf].error
    assert by_url[big].status is FetchStatus.PERMANENT and "5000" in by_url[big].error
    assert by_url[refused].status is FetchStatus.TEMPORARY and by_url[refused].http_status is None
    assert all(f.error for f in failures)


@pytest.mark.parametrize(
    ("bad_body", "bad_type"),
    [
        (b"<html><body>oops", "text/html"),
        (random.Random(0).randbytes(4096), "application/octet-stream"),
    ],
    ids=["html", "random-bytes"],
)
def test_poll_feeds_isolates_bad_feeds(
    scripted_server: ScriptedServer, bad_body: bytes, bad_type: str
) -> None:
    article = scripted_server.base + "/articles/one"
    good_url = scripted_server.add(
        "/good.xml", 200, rss(article, "/articles/two"), Content_Type="application/rss+xml"
    )
    err_url = scripted_server.add("/err.xml", 500, b"", Retry_After="60")
    bad_url = scripted_server.add("/bad.xml", 200, bad_body, Content_Type=bad_type)
    feeds = [Feed("good", good_url), Feed("err", err_url), Feed("bad", bad_url)]

    async def work(fetcher: Fetcher) -> list[FeedPoll]:
        return await poll_feeds(fetcher, feeds, {}, max_bytes=MB)

    polls, _ = run_with_fetcher(work)

    assert len(polls) == 3
    good, err, bad = polls
    assert [p.feed for p in polls] == feeds

    assert good.status is FetchStatus.OK
    assert good.parse_error is None
    assert [e.url for e in good.entries] == [article, scripted_server.base + "/articles/two"]
    assert all(e.source_id == feeds[0].source_id for e in good.entries)
    assert good.entries[0].title == "Item 0"
    assert good.entries[0].published_at is not None

    assert err.status is FetchStatus.TEMPORARY
    assert err.fetch.http_status == 500
    assert err.entries == ()
    assert err.error is not None and "Retry-After" in err.error

    assert bad.fetch.status is FetchStatus.OK
    assert bad.parse_error is not None
    assert bad.status is FetchStatus.PERMANENT
    assert bad.entries == ()
    assert bad.error == bad.parse_error


EVIL_LINKS = (
    "file:///etc/passwd",
    "javascript:alert(1)",
    "data:text/html,hi",
    "ftp://127.0.0.1/pub/x",
)


def test_parse_feed_drops_non_http_links() -> None:
    feed = Feed("mixed", "http://127.0.0.1:8080/feed.xml")
    body = rss(
        EVIL_LINKS[0],
        "http://127.0.0.1:8080/news/a?utm_source=rss",
        EVIL_LINKS[1],
        "https://127.0.0.1/news/b",
        EVIL_LINKS[2],
        "/news/c",
        EVIL_LINKS[3],
    )
    fetch_result = FetchResult(
        url=feed.url,
        final_url=feed.url,
        status=FetchStatus.OK,
        http_status=200,
        content_type="application/rss+xml",
        body=body,
    )
    poll = parse_feed(feed, fetch_result)
    assert poll.parse_error is None
    assert poll.status is FetchStatus.OK
    urls = [e.url for e in poll.entries]
    assert urls == [
        "http://127.0.0.1:8080/news/a?utm_source=rss",
        "https://127.0.0.1/news/b",
        "http://127.0.0.1:8080/news/c",
    ]
    assert poll.entries[0].canonical_url == "http://127.0.0.1:8080/news/a"
    for entry in poll.entries:
        assert entry.url.startswith(("http://", "https://"))
        assert entry.canonical_url.startswith(("http://", "https://"))


def test_poll_feeds_drops_non_http_links(scripted_server: ScriptedServer) -> None:
    kept = scripted_server.base + "/news/ok"
    url = scripted_server.add(
        "/feed.xml", 200, rss(EVIL_LINKS[0], kept, EVIL_LINKS[1]), Content_Type="application/rss+xml"
    )

    async def work(fetcher: Fetcher) -> list[FeedPoll]:
        return await poll_feeds(fetcher, [Feed("f", url)], {}, max_bytes=MB)

    (poll,), _ = run_with_fetcher(work)
    assert poll.status is FetchStatus.OK
    assert [e.url for e in poll.entries] == [kept]
