"""An exception nobody anticipated is a bug: recorded as ``error`` with its type, logged, retried later."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from monitor import store
from monitor.ingest.extraction import extract_batch
from monitor.ingest.guard import AddressGuard
from monitor.ingest.http import PAGE_TYPES, FetchLimits, open_fetcher
from monitor.ingest.polling import poll_feeds
from monitor.ingest.schedule import plan_next_poll
from monitor.ingest.urls import canonicalize
from monitor.models import Article, Entry, Feed, FeedPoll, FetchResult, FetchStatus, PageFailure, PageFetch
from tests.servers import ScriptedServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class BuggyGuard(AddressGuard):
    """A guard with a bug in it: every URL check raises something nobody planned for."""

    def check_url(self, url: str) -> None:
        raise KeyError("netloc")


def entry(url: str = "http://127.0.0.1:9/a.html") -> Entry:
    return Entry("src", url, canonicalize(url), "t", None, None)


def test_a_bug_while_fetching_is_an_error_not_a_verdict(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> FetchResult:
        async with open_fetcher(FetchLimits(), BuggyGuard(["127.0.0.1"]), "test") as fetcher:
            return await fetcher.get("http://127.0.0.1:9/page.html", accept_types=PAGE_TYPES)

    with caplog.at_level(logging.ERROR, logger="monitor.ingest.http"):
        result = asyncio.run(go())
    assert result.status is FetchStatus.ERROR
    assert result.error == "KeyError: 'netloc'"
    (record,) = caplog.records
    assert "bug while fetching http://127.0.0.1:9/page.html" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError  # the traceback is logged


def test_a_bug_in_the_feed_parser_is_an_error_and_counts_as_a_failed_poll(
    scripted_server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = scripted_server.add(
        "/feed.xml", 200, "<rss version='2.0'><channel></channel></rss>", Content_Type="text/xml"
    )
    feed = Feed("Buggy", url)

    def crashing_parser(feed: Feed, fetch: FetchResult) -> FeedPoll:
        raise ZeroDivisionError("division by zero")

    async def go() -> list[FeedPoll]:
        async with open_fetcher(FetchLimits(), AddressGuard(["127.0.0.1"]), "test") as fetcher:
            return await poll_feeds(fetcher, [feed], {}, 1 << 20, parse=crashing_parser)

    with caplog.at_level(logging.ERROR, logger="monitor.ingest.polling"):
        (poll,) = asyncio.run(go())
    assert poll.status is FetchStatus.ERROR
    assert poll.error == "ZeroDivisionError: division by zero"
    assert poll.content_hash is None  # so the same body is parsed again next time, not skipped as unchanged
    assert caplog.records and caplog.records[0].exc_info is not None
    plan = plan_next_poll(poll, None, NOW)
    assert plan.consecutive_failures == 1 and plan.interval_s == 300


def test_a_bug_in_extraction_is_an_error_with_its_type_and_the_batch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good_html = (
        b"<html><body><article>"
        + b"<p>A sentence about the talks in Vienna today.</p>" * 20
        + b"</article></body></html>"
    )
    pages = [
        PageFetch(
            entry("http://127.0.0.1:9/bad.html"),
            FetchResult("u", "u", FetchStatus.OK, 200, "text/html", b"x"),
        ),
        PageFetch(
            entry("http://127.0.0.1:9/good.html"),
            FetchResult("u", "u", FetchStatus.OK, 200, "text/html", good_html),
        ),
    ]
    from monitor.ingest.extraction import extract_article

    def sometimes_buggy(page: PageFetch, now: datetime | None) -> Article:
        if page.entry.url.endswith("bad.html"):
            raise AttributeError("'NoneType' object has no attribute 'text'")
        return extract_article(page, now)

    with caplog.at_level(logging.ERROR, logger="monitor.ingest.extraction"):
        articles, failures = extract_batch(pages, NOW, extract=sometimes_buggy)
    assert len(articles) == 1
    (failure,) = failures
    assert failure.status is FetchStatus.ERROR
    assert failure.error == "AttributeError: 'NoneType' object has no attribute 'text'"
    assert any(r.exc_info and r.exc_info[0] is AttributeError for r in caplog.records)


def test_pages_that_hit_a_bug_are_retried_with_back_off_and_never_given_up() -> None:
    e = entry()
    with store.connect(":memory:") as con:
        con.execute(
            "INSERT INTO sightings (article_id, source_id, url, first_seen_at, run_id) VALUES (?, 'src', ?, ?, 'r')",
            [e.article_id, e.url, NOW],
        )
        store.record_failures(con, [PageFailure(e, FetchStatus.ERROR, 200, "KeyError: 'x'")], NOW)
        assert store.pending_entries(con, 5, NOW + timedelta(minutes=4)) == []
        assert [p.url for p in store.pending_entries(con, 5, NOW + timedelta(minutes=6))] == [e.url]
        for _ in range(19):  # many more failures: the wait stops growing at 6 h, and it is never abandoned
            store.record_failures(con, [PageFailure(e, FetchStatus.ERROR, 200, "KeyError: 'x'")], NOW)
        assert con.execute("SELECT attempts, status FROM page_failures").fetchone() == (20, "error")
        assert store.pending_entries(con, 5, NOW + timedelta(hours=5)) == []
        assert [p.url for p in store.pending_entries(con, 5, NOW + timedelta(hours=6, minutes=1))] == [e.url]
        # A temporary failure with as many attempts is given up; a bug is not.
        store.record_failures(con, [PageFailure(e, FetchStatus.TEMPORARY, 503, "HTTP 503")], NOW)
        assert store.pending_entries(con, 5, NOW + timedelta(days=1)) == []
