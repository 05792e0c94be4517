"""Adaptive polling: plan_next_poll and publishing_interval on hand-built polls,
and the schedule hints (ttl, sy:updatePeriod) parse_feed extracts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ingest.parsing import parse_feed
from monitor.ingest.schedule import (
    DEFAULT_INTERVAL_S,
    QUIET_GROWTH,
    PollPlan,
    plan_next_poll,
    publishing_interval,
)
from monitor.ingest.urls import canonicalize
from monitor.models import Entry, Feed, FeedPoll, FeedState, FetchResult, FetchStatus

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FEED = Feed(name="Wire", url="https://news.example.com/feed.xml")
MIN, MAX = 300.0, 86400.0


def entries(gap_s: float, count: int = 6, start: datetime = NOW) -> tuple[Entry, ...]:
    """``count`` entries published every ``gap_s`` seconds, newest first."""
    out = []
    for i in range(count):
        url = f"https://news.example.com/a/{i}"
        when = start - timedelta(seconds=gap_s * i)
        out.append(Entry(FEED.source_id, url, canonicalize(url), f"T{i}", when, None))
    return tuple(out)


def undated(count: int = 3) -> tuple[Entry, ...]:
    return tuple(dataclasses.replace(e, published_at=None) for e in entries(60, count))


def poll(
    status: FetchStatus = FetchStatus.OK,
    items: tuple[Entry, ...] = (),
    *,
    max_age_s: float | None = None,
    retry_after_s: float | None = None,
    ttl_s: float | None = None,
    update_period_s: float | None = None,
    unchanged: bool = False,
) -> FeedPoll:
    code = {FetchStatus.OK: 200, FetchStatus.NOT_MODIFIED: 304, FetchStatus.TEMPORARY: 503}.get(status, 404)
    fetch = FetchResult(FEED.url, FEED.url, status, code, max_age_s=max_age_s, retry_after_s=retry_after_s)
    return FeedPoll(FEED, fetch, items, ttl_s=ttl_s, update_period_s=update_period_s, unchanged=unchanged)


def state(**kwargs: object) -> FeedState:
    return FeedState(FEED.source_id, **kwargs)  # type: ignore[arg-type]


def after(plan: PollPlan, previous: FeedState | None = None) -> FeedState:
    """The state the store would keep after ``plan``."""
    base = previous or state()
    return dataclasses.replace(
        base,
        consecutive_failures=plan.consecutive_failures,
        not_modified_streak=plan.not_modified_streak,
        poll_interval_s=plan.interval_s,
    )


# --- successful polls ------------------------------------------------------------


def test_hourly_publisher_is_polled_hourly() -> None:
    plan = plan_next_poll(poll(items=entries(3600)), None, NOW)
    assert plan.interval_s == pytest.approx(3600)
    assert plan.next_poll_at == NOW + timedelta(seconds=3600)
    assert plan.consecutive_failures == 0
    assert plan.not_modified_streak == 0
    assert not plan.dead


def test_fast_publisher_is_clamped_to_the_minimum() -> None:
    plan = plan_next_poll(poll(items=entries(60)), None, NOW)
    assert plan.interval_s == MIN


def test_slow_publisher_is_clamped_to_the_maximum() -> None:
    plan = plan_next_poll(poll(items=entries(7 * 86400)), None, NOW)
    assert plan.interval_s == MAX


def test_custom_bounds_are_used() -> None:
    plan = plan_next_poll(poll(items=entries(60)), None, NOW, min_interval_s=120, max_interval_s=1000)
    assert plan.interval_s == 120
    plan = plan_next_poll(poll(items=entries(3600)), None, NOW, min_interval_s=120, max_interval_s=1000)
    assert plan.interval_s == 1000


def test_no_dated_entries_keeps_the_previous_interval_or_the_default() -> None:
    assert plan_next_poll(poll(items=undated()), state(poll_interval_s=5400), NOW).interval_s == 5400
    assert plan_next_poll(poll(items=undated()), None, NOW).interval_s == DEFAULT_INTERVAL_S
    assert plan_next_poll(poll(), state(), NOW).interval_s == DEFAULT_INTERVAL_S
    # one dated entry gives no gap either
    assert plan_next_poll(poll(items=entries(60, count=1)), state(poll_interval_s=900), NOW).interval_s == 900


def test_rss_ttl_lengthens_the_interval() -> None:
    plan = plan_next_poll(poll(items=entries(3600), ttl_s=7200), None, NOW)
    assert plan.interval_s == 7200


def test_sy_update_period_daily_lengthens_the_interval() -> None:
    plan = plan_next_poll(
        poll(items=entries(3600), update_period_s=86400), None, NOW, max_interval_s=7 * 86400
    )
    assert plan.interval_s == 86400


def test_cache_control_max_age_is_honoured() -> None:
    plan = plan_next_poll(poll(items=entries(60), max_age_s=900), None, NOW)
    assert plan.interval_s == 900


def test_server_hints_shorter_than_the_publishing_interval_do_not_shorten_it() -> None:
    plan = plan_next_poll(poll(items=entries(7200), max_age_s=600, ttl_s=60), None, NOW)
    assert plan.interval_s == 7200


def test_server_hints_never_exceed_the_maximum() -> None:
    plan = plan_next_poll(poll(items=entries(3600), ttl_s=30 * 86400, max_age_s=10**9), None, NOW)
    assert plan.interval_s == MAX


# --- not modified ----------------------------------------------------------------


def test_not_modified_lengthens_the_previous_interval() -> None:
    plan = plan_next_poll(
        poll(FetchStatus.NOT_MODIFIED), state(poll_interval_s=1000, not_modified_streak=3), NOW
    )
    assert plan.interval_s == pytest.approx(1000 * QUIET_GROWTH) == pytest.approx(1250)
    assert plan.not_modified_streak == 4
    assert plan.consecutive_failures == 0


def test_unchanged_body_counts_as_not_modified() -> None:
    plan = plan_next_poll(
        poll(FetchStatus.OK, unchanged=True), state(poll_interval_s=2000, not_modified_streak=1), NOW
    )
    assert plan.interval_s == pytest.approx(2500)
    assert plan.consecutive_failures == 0


def test_not_modified_growth_stops_at_the_maximum() -> None:
    plan = plan_next_poll(poll(FetchStatus.NOT_MODIFIED), state(poll_interval_s=80000), NOW)
    assert plan.interval_s == MAX


def test_ok_resets_the_not_modified_streak() -> None:
    plan = plan_next_poll(poll(items=entries(3600)), state(not_modified_streak=7), NOW)
    assert plan.not_modified_streak == 0


# --- failures --------------------------------------------------------------------


def test_failures_back_off_exponentially_from_the_minimum() -> None:
    current: FeedState | None = None
    intervals, failures = [], []
    for _ in range(5):
        plan = plan_next_poll(poll(FetchStatus.TEMPORARY), current, NOW)
        intervals.append(plan.interval_s)
        failures.append(plan.consecutive_failures)
        current = after(plan, current)
    assert intervals == [300, 600, 1200, 2400, 4800]
    assert failures == [1, 2, 3, 4, 5]


def test_permanent_failures_back_off_too() -> None:
    plan = plan_next_poll(poll(FetchStatus.PERMANENT), state(consecutive_failures=2), NOW)
    assert plan.interval_s == 1200
    assert plan.consecutive_failures == 3


def test_retry_after_is_honoured() -> None:
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY, retry_after_s=5000), None, NOW)
    assert plan.interval_s == 5000
    assert plan.next_poll_at == NOW + timedelta(seconds=5000)
    # a Retry-After shorter than the back-off does not shorten it
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY, retry_after_s=10), state(consecutive_failures=3), NOW)
    assert plan.interval_s == 2400
    # nor can one push the feed past the maximum
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY, retry_after_s=10**7), None, NOW)
    assert plan.interval_s == MAX


def test_backoff_never_exceeds_the_maximum() -> None:
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY), state(consecutive_failures=8), NOW, dead_after=100)
    assert plan.interval_s == 76800  # 300 * 2**8, still under the maximum
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY), state(consecutive_failures=9), NOW, dead_after=100)
    assert plan.interval_s == MAX


def test_a_feed_dead_for_years_still_gets_a_plan() -> None:
    # A dead feed is still polled once a day and keeps counting failures; after ~1025 of
    # them (under three years) 300 * 2**(failures - 1) no longer fits in a float.
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY), state(consecutive_failures=1100), NOW)
    assert plan.dead
    assert plan.interval_s == MAX
    assert plan.consecutive_failures == 1101


def test_dead_after_enough_failures() -> None:
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY), state(consecutive_failures=8), NOW, dead_after=10)
    assert not plan.dead
    plan = plan_next_poll(poll(FetchStatus.TEMPORARY), state(consecutive_failures=9), NOW, dead_after=10)
    assert plan.dead
    assert plan.consecutive_failures == 10
    assert plan.interval_s == MAX
    assert plan.next_poll_at == NOW + timedelta(seconds=MAX)
    plan = plan_next_poll(poll(FetchStatus.PERMANENT), state(consecutive_failures=3), NOW, dead_after=3)
    assert plan.dead and plan.interval_s == MAX


def test_ok_after_failures_resets_them_and_revives_the_feed() -> None:
    plan = plan_next_poll(
        poll(items=entries(3600)), state(consecutive_failures=12, poll_interval_s=MAX), NOW, dead_after=10
    )
    assert plan.consecutive_failures == 0
    assert not plan.dead
    assert plan.interval_s == 3600


def test_not_modified_after_failures_resets_them() -> None:
    plan = plan_next_poll(
        poll(FetchStatus.NOT_MODIFIED), state(consecutive_failures=4, poll_interval_s=600), NOW
    )
    assert plan.consecutive_failures == 0
    assert not plan.dead


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from(list(FetchStatus)),
    gap=st.none() | st.floats(1, 10**7),
    hint=st.none() | st.floats(1, 10**8),
    retry=st.none() | st.floats(1, 10**8),
    previous=st.none() | st.floats(1, 10**7),
    failures=st.integers(0, 40),
    streak=st.integers(0, 40),
)
def test_interval_always_within_bounds(
    status: FetchStatus,
    gap: float | None,
    hint: float | None,
    retry: float | None,
    previous: float | None,
    failures: int,
    streak: int,
) -> None:
    items = entries(gap) if gap else ()
    p = poll(status, items, max_age_s=hint, retry_after_s=retry, ttl_s=hint)
    s = state(poll_interval_s=previous, consecutive_failures=failures, not_modified_streak=streak)
    plan = plan_next_poll(p, s, NOW)
    assert MIN <= plan.interval_s <= MAX
    assert plan.next_poll_at == NOW + timedelta(seconds=plan.interval_s)
    assert plan.dead == (plan.consecutive_failures >= 10)


# --- publishing_interval -----------------------------------------------------------


def test_publishing_interval_is_the_median_gap() -> None:
    times = [NOW - timedelta(seconds=s) for s in (0, 60, 3660, 7260)]  # gaps 60, 3600, 3600
    items = tuple(dataclasses.replace(e, published_at=t) for e, t in zip(entries(1, 4), times, strict=True))
    assert publishing_interval(poll(items=items)) == 3600
    # the order entries appear in does not matter
    assert publishing_interval(poll(items=items[::-1])) == 3600


def test_publishing_interval_even_count_and_duplicates() -> None:
    offsets = (0, 60, 180, 3780, 3780, 11 * 3600)  # gaps 60, 120, 3600, (0 ignored), 36000 - 3780
    times = [NOW - timedelta(seconds=s) for s in offsets]
    items = tuple(dataclasses.replace(e, published_at=t) for e, t in zip(entries(1, 6), times, strict=True))
    assert publishing_interval(poll(items=items)) == pytest.approx((120 + 3600) / 2)


def test_publishing_interval_uses_only_recent_entries() -> None:
    recent = entries(600, 5)  # the last five, ten minutes apart
    old = tuple(
        dataclasses.replace(e, published_at=NOW - timedelta(days=30 + i), url=f"{e.url}-old")
        for i, e in enumerate(entries(1, 10))
    )
    assert publishing_interval(poll(items=recent + old), recent=5) == 600


def test_publishing_interval_none_without_two_dated_entries() -> None:
    assert publishing_interval(poll()) is None
    assert publishing_interval(poll(items=undated())) is None
    assert publishing_interval(poll(items=entries(60, 1))) is None


# --- ttl and sy:updatePeriod from the feed body -------------------------------------


def fetched(body: str) -> FetchResult:
    return FetchResult(FEED.url, FEED.url, FetchStatus.OK, 200, "application/rss+xml", body.encode())


def rss(channel_extra: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
        "<title>T</title><link>https://news.example.com/</link><description>d</description>"
        f"{channel_extra}"
        "<item><title>A</title><link>https://news.example.com/a</link>"
        "<pubDate>Mon, 01 Jun 2026 10:00:00 GMT</pubDate></item>"
        "</channel></rss>"
    )


@pytest.mark.parametrize(
    ("extra", "ttl", "period"),
    [
        ("<ttl>90</ttl>", 5400.0, None),
        ("<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>", None, 1800.0),
        ("<sy:updatePeriod>daily</sy:updatePeriod>", None, 86400.0),
        (
            "<sy:updatePeriod> Weekly </sy:updatePeriod><sy:updateFrequency>7</sy:updateFrequency>",
            None,
            86400.0,
        ),
        (
            "<ttl>120</ttl><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>1</sy:updateFrequency>",
            7200.0,
            3600.0,
        ),
        ("<ttl>soon</ttl><sy:updatePeriod>fortnightly</sy:updatePeriod>", None, None),
        ("<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>0</sy:updateFrequency>", None, 3600.0),
        ("<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>x</sy:updateFrequency>", None, 3600.0),
        ("", None, None),
    ],
)
def test_parse_feed_extracts_schedule_hints(extra: str, ttl: float | None, period: float | None) -> None:
    parsed = parse_feed(FEED, fetched(rss(extra)), now=NOW)
    assert parsed.parse_error is None
    assert len(parsed.entries) == 1
    assert parsed.ttl_s == ttl
    assert parsed.update_period_s == period


def test_parsed_hints_drive_the_plan() -> None:
    parsed = parse_feed(FEED, fetched(rss("<ttl>180</ttl>")), now=NOW)
    assert plan_next_poll(parsed, None, NOW).interval_s == 3 * 3600
