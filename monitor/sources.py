"""Feeds: the user's feed list, polling, and parsing feed bodies into entries."""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import hashlib
import html
import re
import xml.sax
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import yaml

from monitor.fetch import FEED_TYPES, Fetcher
from monitor.models import Entry, Feed, FeedPoll, FeedState, FetchResult, FetchStatus
from monitor.urls import InvalidURL, canonicalize

EARLIEST_DATE = datetime(1995, 1, 1, tzinfo=UTC)
# Clock skew allowance: a feed date this far ahead is still believed.
FUTURE_SLACK = timedelta(hours=2)
FEED_KEYS = frozenset({"name", "url", "language", "tags"})
# Fetch in full (without validators) after this many not-modified answers in a row,
# to catch servers whose ETag or Last-Modified stays the same when content changes.
REVALIDATE_EVERY = 12
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
SY_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 604800.0,
    "monthly": 2592000.0,
    "yearly": 31536000.0,
}

_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


class FeedListError(ValueError):
    """Raised when feeds.yaml is missing or malformed."""


def load_feeds(path: Path) -> list[Feed]:
    """Load and validate the feed list.

    Args:
        path: a YAML file with a top-level ``feeds:`` list of ``{name, url}``
            mappings, each optionally with ``language`` and ``tags``.

    Returns:
        The feeds in file order, without duplicate URLs.

    Raises:
        FeedListError: the file is missing, is not valid YAML, or an entry is invalid.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FeedListError(f"feed list not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise FeedListError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("feeds"), list):
        raise FeedListError(f"{path}: expected a top-level 'feeds:' list")
    feeds: list[Feed] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["feeds"], start=1):
        where = f"{path}: feed #{i}"
        if not isinstance(item, Mapping):
            raise FeedListError(f"{where}: expected a mapping with name and url")
        unknown = set(item) - FEED_KEYS
        if unknown:
            raise FeedListError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(FEED_KEYS)}")
        name, url = item.get("name"), item.get("url")
        if not isinstance(name, str) or not name.strip():
            raise FeedListError(f"{where}: 'name' must be a non-empty string")
        if not isinstance(url, str):
            raise FeedListError(f"{where} ({name}): 'url' must be a string")
        try:
            canonicalize(url)
        except InvalidURL as exc:
            raise FeedListError(f"{where} ({name}): {exc}") from exc
        tags = item.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise FeedListError(f"{where} ({name}): 'tags' must be a list of strings")
        language = item.get("language")
        if language is not None and not isinstance(language, str):
            raise FeedListError(f"{where} ({name}): 'language' must be a string")
        if url in seen:
            continue
        seen.add(url)
        feeds.append(Feed(name=name.strip(), url=url.strip(), language=language, tags=tuple(tags)))
    return feeds


async def poll_feeds(
    fetcher: Fetcher,
    feeds: Sequence[Feed],
    states: Mapping[str, FeedState],
    max_bytes: int,
) -> list[FeedPoll]:
    """Fetch and parse every feed concurrently; one bad feed never affects another.

    Args:
        fetcher: the HTTP fetcher.
        feeds: feeds to poll.
        states: stored validators per source id, for conditional GET.
        max_bytes: cap on a feed body after decompression.

    Returns:
        One :class:`FeedPoll` per feed, in input order.
    """

    async def one(feed: Feed) -> FeedPoll:
        state = states.get(feed.source_id) or FeedState(feed.source_id)
        # Validators are sent only while the server has earned trust, and every
        # REVALIDATE_EVERY not-modified answers we fetch in full to check it still does.
        streak = state.not_modified_streak
        conditional = state.validators_trusted and (streak == 0 or streak % REVALIDATE_EVERY != 0)
        result = await fetcher.get(
            feed.url,
            accept_types=FEED_TYPES,
            etag=state.etag if conditional else None,
            last_modified=state.last_modified if conditional else None,
            max_bytes=max_bytes,
        )
        if result.status is not FetchStatus.OK or result.body is None:
            return FeedPoll(feed=feed, fetch=result)
        digest = hashlib.sha256(result.body).hexdigest()
        if state.content_hash == digest:
            return FeedPoll(feed=feed, fetch=result, content_hash=digest, unchanged=True)
        untrusted = state.content_hash is not None and (
            (state.etag is not None and result.etag == state.etag)
            or (state.last_modified is not None and result.last_modified == state.last_modified)
        )
        # Parsing is CPU work; run it off the event loop so downloads keep flowing.
        poll = await asyncio.to_thread(parse_feed, feed, result)
        return dataclasses.replace(poll, content_hash=digest, validators_untrusted=untrusted)

    return list(await asyncio.gather(*(one(feed) for feed in feeds)))


def parse_feed(feed: Feed, fetch: FetchResult, now: datetime | None = None) -> FeedPoll:
    """Parse a downloaded feed body into entries.

    Args:
        feed: the feed the body came from.
        fetch: a successful fetch result carrying the body.
        now: the current time, for rejecting future dates (default: now).

    Returns:
        A poll with the entries, or with ``parse_error`` set when nothing usable was found.
    """
    now = now or datetime.now(UTC)
    body = fetch.body or b""
    # The whole body is searched (a long comment can push a DOCTYPE far down), and again
    # without NUL bytes so that UTF-16 cannot hide the declaration.
    if _ENTITY_DECLARATION.search(body) or (
        b"\x00" in body and _ENTITY_DECLARATION.search(body.replace(b"\x00", b""))
    ):
        # Entity declarations are how "billion laughs" and external-entity attacks start;
        # real news feeds do not declare their own entities.
        return FeedPoll(feed=feed, fetch=fetch, parse_error="refused: the feed declares XML entities")
    # Without a Content-Type feedparser reports every feed as bozo; a file or a server that
    # names no type is read as XML, the way feedparser reads a local file.
    headers = {"content-location": fetch.final_url, "content-type": fetch.content_type or "application/xml"}
    # Titles and summaries are reduced to plain text by clean_text and never rendered as
    # HTML, so feedparser's sanitiser and URI rewriting (about 40% of its time) are skipped.
    parsed = feedparser.parse(
        body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    bozo = bool(parsed.get("bozo"))
    problem = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        return FeedPoll(
            feed=feed, fetch=fetch, parse_error=f"not a feed: {problem or 'no feed found'}", bozo=bozo
        )
    entries = tuple(entries_from(parsed.entries, feed.source_id, fetch.final_url, now))
    if not entries and isinstance(problem, xml.sax.SAXException):
        # Cut off before its first complete item: a broken feed, not a quiet one.
        error = f"malformed feed with no usable entries: {problem}"
        return FeedPoll(feed=feed, fetch=fetch, parse_error=error, bozo=bozo)
    return FeedPoll(
        feed=feed,
        fetch=fetch,
        entries=entries,
        bozo=bozo,
        ttl_s=_ttl_seconds(parsed.feed),
        update_period_s=_update_period_seconds(parsed.feed),
    )


def _ttl_seconds(channel: Mapping[str, Any]) -> float | None:
    value = str(channel.get("ttl", "")).strip()
    return float(value) * 60 if value.isdigit() else None


def _update_period_seconds(channel: Mapping[str, Any]) -> float | None:
    period = SY_PERIODS.get(str(channel.get("sy_updateperiod", "")).strip().lower())
    if period is None:
        return None
    frequency = str(channel.get("sy_updatefrequency", "1")).strip()
    return period / max(int(frequency), 1) if frequency.isdigit() else period


def entries_from(
    items: Iterable[Mapping[str, Any]], source_id: str, base_url: str, now: datetime
) -> Iterable[Entry]:
    """Turn feedparser entries into :class:`Entry` records, skipping unusable ones.

    Entries without a link, or whose link is not http(s) (``file:``, ``javascript:``),
    are dropped here so that nothing downstream ever sees them.
    """
    seen: set[str] = set()
    for item in items:
        link = _entry_link(item)
        if not link:
            continue
        try:
            url = urljoin(base_url, link.strip())
            canonical = canonicalize(url)
        except (InvalidURL, ValueError):
            continue
        if canonical in seen:
            continue
        seen.add(canonical)
        yield Entry(
            source_id=source_id,
            url=url,
            canonical_url=canonical,
            title=clean_text(item.get("title")),
            published_at=_entry_date(item, now),
            summary=clean_text(item.get("summary")),
        )


def _entry_link(item: Mapping[str, Any]) -> str | None:
    link = item.get("link")
    if isinstance(link, str) and link:
        return link
    for candidate in item.get("links") or []:
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            return str(candidate["href"])
    return None


def _entry_date(item: Mapping[str, Any], now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = item.get(key)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
            if plausible_date(when, now):
                return when
    return None


def plausible_date(when: datetime, now: datetime) -> bool:
    """Tell whether a publication date is believable (not before 1995, not in the future).

    Args:
        when: a timezone-aware datetime.
        now: the current time.

    Returns:
        True when the date can be stored as a publication date.
    """
    return EARLIEST_DATE <= when <= now + FUTURE_SLACK


def clean_text(value: object) -> str | None:
    """Strip markup and collapse whitespace in a feed title or summary."""
    if not isinstance(value, str):
        return None
    text = _SPACE_RE.sub(" ", html.unescape(_TAG_RE.sub(" ", value))).strip()
    return text or None
