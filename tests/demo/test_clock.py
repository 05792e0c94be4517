"""The sample site's dates move forward by whole days, each date once, and stay in the past."""

from __future__ import annotations

import email.utils
import urllib.request
from datetime import UTC, date, datetime, timedelta

import feedparser
from hypothesis import given
from hypothesis import strategies as st

from monitor.demo import FEED_NAMES, serve_sample_site
from monitor.demo.clock import AUTHORED_AT, days_since_authored, shift_dates

DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
DAYS = st.integers(min_value=0, max_value=3000)


def _rfc822(d: date) -> str:
    return email.utils.format_datetime(datetime(d.year, d.month, d.day, 9, 5, tzinfo=UTC), usegmt=True)


@given(DATES, DAYS)
def test_an_rss_date_moves_by_the_days_with_its_weekday(d: date, days: int) -> None:
    moved = email.utils.parsedate_to_datetime(shift_dates(_rfc822(d), days))
    assert moved == datetime(d.year, d.month, d.day, 9, 5, tzinfo=UTC) + timedelta(days=days)
    assert shift_dates(_rfc822(d), days) == _rfc822(d + timedelta(days=days))  # weekday included


@given(DATES, DAYS)
def test_iso_and_byline_dates_move_and_a_time_after_them_stays(d: date, days: int) -> None:
    new = d + timedelta(days=days)
    meta, long, short = shift_dates(
        f'<meta content="{d.isoformat()}T07:30:00Z">|{d.day} {d:%B} {d.year}|{d.day} {d:%b} {d.year}', days
    ).split("|")
    assert meta == f'<meta content="{new.isoformat()}T07:30:00Z">'
    assert short == f"{new.day} {new:%b} {new.year}"
    # "May" is also a short name, so a long byline in May may come out short; either reads right.
    assert long in (f"{new.day} {new:%B} {new.year}", f"{new.day} {new:%b} {new.year}")
    assert long == f"{new.day} {new:%B} {new.year}" or d.month == 5


@given(DATES, DAYS, DAYS)
def test_shifting_twice_is_shifting_once_by_the_sum(d: date, a: int, b: int) -> None:
    # A date rewritten by one pattern must not be caught again by another (each date moves once).
    text = f"{_rfc822(d)} | {d.isoformat()} | {d.day} {d:%b} {d.year}"  # %B: "May" is ambiguous
    assert shift_dates(shift_dates(text, a), b) == shift_dates(text, a + b)


def test_no_days_before_the_site_was_written() -> None:
    assert days_since_authored(AUTHORED_AT - timedelta(days=3)) == 0
    assert days_since_authored(AUTHORED_AT + timedelta(days=4, hours=23)) == 4


def test_the_served_feeds_read_as_last_weeks_news() -> None:
    now = datetime.now(UTC)
    with serve_sample_site() as base:
        dates = []
        for file in FEED_NAMES:
            with urllib.request.urlopen(f"{base}/feeds/{file}", timeout=10) as response:
                parsed = feedparser.parse(response.read())
            dates += [
                datetime(*e.published_parsed[:6], tzinfo=UTC)
                for e in parsed.entries
                if e.get("published_parsed")
            ]
    assert len(dates) >= 10
    assert max(dates) <= now
    assert now - max(dates) < timedelta(days=2)  # the newest item is at most a couple of days old
    assert now - min(dates) < timedelta(days=14)
