"""Polling feeds: conditional GETs, change detection, and parsing off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence

from monitor.ingest.http import FEED_TYPES, Fetcher
from monitor.ingest.parsing import parse_feed
from monitor.models import Feed, FeedPoll, FeedState, FetchResult, FetchStatus

log = logging.getLogger(__name__)

# Fetch in full (without validators) after this many not-modified answers in a row,
# to catch servers whose ETag or Last-Modified stays the same when content changes.
REVALIDATE_EVERY = 12


async def poll_feeds(
    fetcher: Fetcher,
    feeds: Sequence[Feed],
    states: Mapping[str, FeedState],
    max_bytes: int,
    parse: Callable[[Feed, FetchResult], FeedPoll] = parse_feed,
) -> list[FeedPoll]:
    """Fetch and parse every feed concurrently; one bad feed never affects another.

    A parser exception nobody anticipated is a bug: it is logged with its traceback and
    the feed's poll is recorded as ``error`` (retried at the next poll), never as a verdict.

    Args:
        fetcher: the HTTP fetcher.
        feeds: feeds to poll.
        states: stored validators per source id, for conditional GET.
        max_bytes: cap on a feed body after decompression.
        parse: the feed parser (default :func:`parse_feed`).

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
        try:
            poll = await asyncio.to_thread(parse, feed, result)
        except Exception as exc:  # unanticipated: a bug, recorded as one, retried next poll
            log.exception("bug while parsing the feed %s <%s>", feed.name, feed.url)
            return FeedPoll(feed=feed, fetch=result, crash=f"{type(exc).__name__}: {exc}")
        return dataclasses.replace(poll, content_hash=digest, validators_untrusted=untrusted)

    return list(await asyncio.gather(*(one(feed) for feed in feeds)))
