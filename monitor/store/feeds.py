"""Feeds: feed state and health, rejected feed-list entries, sightings, and what to fetch next."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from monitor.ingest.schedule import PollPlan
from monitor.ingest.urls import canonicalize
from monitor.models import Entry, Feed, FeedPoll, FeedState, FetchStatus, RejectedFeed
from monitor.store.db import arrow_view, insert_new, now_utc, upsert

# last_status of a feed-list entry that could not be polled at all (see ingest.feedlist).
INVALID = "invalid"
# An unanticipated error on a page is retried after this long, doubling per attempt up to the cap.
ERROR_RETRY_FIRST_S = 300
ERROR_RETRY_MAX_S = 6 * 3600


def sync_sources(
    con: duckdb.DuckDBPyConnection, feeds: Sequence[Feed], rejected: Sequence[RejectedFeed] = ()
) -> dict[str, FeedState]:
    """Insert new feeds, refresh names and tags, record rejected entries, and return stored fetch state.

    Feeds removed from feeds.yaml stay in the table with their history. Rejected entries
    get a row with ``last_status = 'invalid'`` and their error; such rows are replaced on
    every sync, so an entry fixed in the file leaves no stale row behind.

    Args:
        con: the database.
        feeds: the valid feeds.
        rejected: feed-list entries that cannot be polled, with their reasons.

    Returns:
        Stored fetch state per source id.
    """
    now = now_utc()
    invalid = pa.table(
        {
            "source_id": pa.array([r.source_id for r in rejected], pa.string()),
            "name": pa.array([r.name for r in rejected], pa.string()),
            "url": pa.array([r.url for r in rejected], pa.string()),
            "error": pa.array([r.error for r in rejected], pa.string()),
        }
    )
    with arrow_view(con, "rejected_feeds", invalid):
        con.execute(
            "DELETE FROM sources WHERE last_status = ? AND source_id NOT IN (SELECT source_id FROM rejected_feeds)",
            [INVALID],
        )
    if rejected:
        with arrow_view(con, "rejected_feeds", invalid):
            upsert(
                con,
                "sources",
                ["source_id"],
                "SELECT source_id, name, url, $now AS added_at, $now AS last_polled_at, "
                "$invalid AS last_status, error AS last_error FROM rejected_feeds",
                "name = excluded.name, last_polled_at = excluded.last_polled_at, last_error = excluded.last_error",
                {"now": now, "invalid": INVALID},
            )
    table = pa.table(
        {
            "source_id": [f.source_id for f in feeds],
            "name": [f.name for f in feeds],
            "url": [f.url for f in feeds],
            "language": pa.array([f.language for f in feeds], pa.string()),
            "tags": pa.array([list(f.tags) for f in feeds], pa.list_(pa.string())),
        }
    )
    with arrow_view(con, "incoming_feeds", table):
        upsert(
            con,
            "sources",
            ["source_id"],
            "SELECT source_id, name, url, language, tags, ? AS added_at FROM incoming_feeds",
            "name = excluded.name, language = excluded.language, tags = excluded.tags",
            [now],
        )
    rows = con.execute(
        "SELECT source_id, etag, last_modified, consecutive_failures, content_hash, "
        "coalesce(validators_trusted, true), coalesce(not_modified_streak, 0), poll_interval_s FROM sources"
    ).fetchall()
    return {r[0]: FeedState(*r) for r in rows}


def due_sources(con: duckdb.DuckDBPyConnection, now: datetime) -> set[str]:
    """Ids of feeds whose next poll is due (or that were never polled)."""
    rows = con.execute("SELECT source_id FROM sources WHERE next_poll_at IS NULL OR next_poll_at <= ?", [now])
    return {r[0] for r in rows.fetchall()}


def record_polls(
    con: duckdb.DuckDBPyConnection, run_id: str, polls: Sequence[FeedPoll], plans: Sequence[PollPlan]
) -> None:
    """Store each feed's poll outcome, schedule and health, and its entries' sightings, in one transaction.

    Args:
        con: the database.
        run_id: the current run.
        polls: this run's polls.
        plans: the schedule decided for each poll (same order).
    """
    now = now_utc()
    ok = [p.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED) for p in polls]
    table = pa.table(
        {
            "next_poll_at": pa.array([plan.next_poll_at for plan in plans], pa.timestamp("us", tz="UTC")),
            "interval_s": pa.array([plan.interval_s for plan in plans], pa.float64()),
            "failures": pa.array([plan.consecutive_failures for plan in plans], pa.int32()),
            "dead": pa.array([plan.dead for plan in plans], pa.bool_()),
            "streak": pa.array([plan.not_modified_streak for plan in plans], pa.int32()),
            "content_hash": pa.array([p.content_hash for p in polls], pa.string()),
            "untrusted": pa.array([p.validators_untrusted for p in polls], pa.bool_()),
            "source_id": [p.feed.source_id for p in polls],
            "status": [p.status.value for p in polls],
            "http_status": pa.array([p.fetch.http_status for p in polls], pa.int32()),
            "error": pa.array([p.error for p in polls], pa.string()),
            "ok": ok,
            "etag": pa.array([p.fetch.etag for p in polls], pa.string()),
            "last_modified": pa.array([p.fetch.last_modified for p in polls], pa.string()),
            "entries": pa.array([len(p.entries) for p in polls], pa.int64()),
        }
    )
    entries = [e for p in polls for e in p.entries]
    sightings = pa.table(
        {
            "article_id": [e.article_id for e in entries],
            "source_id": [e.source_id for e in entries],
            "url": [e.url for e in entries],
            "title": pa.array([e.title for e in entries], pa.string()),
            "feed_published_at": pa.array([e.published_at for e in entries], pa.timestamp("us", tz="UTC")),
            "summary": pa.array([e.summary for e in entries], pa.string()),
        }
    )
    con.execute("BEGIN")
    try:
        with arrow_view(con, "polls", table):
            con.execute(
                """
                UPDATE sources SET
                    last_polled_at = $now,
                    last_status = polls.status,
                    last_http_status = polls.http_status,
                    last_error = polls.error,
                    last_success_at = CASE WHEN polls.ok THEN $now ELSE sources.last_success_at END,
                    consecutive_failures = polls.failures,
                    next_poll_at = polls.next_poll_at,
                    poll_interval_s = polls.interval_s,
                    dead = polls.dead,
                    not_modified_streak = polls.streak,
                    content_hash = coalesce(polls.content_hash, sources.content_hash),
                    validators_trusted = sources.validators_trusted AND NOT polls.untrusted,
                    etag = CASE WHEN polls.status = 'ok' THEN polls.etag ELSE sources.etag END,
                    last_modified = CASE WHEN polls.status = 'ok' THEN polls.last_modified
                                         ELSE sources.last_modified END
                FROM polls WHERE sources.source_id = polls.source_id
                """,
                {"now": now},
            )
        with arrow_view(con, "incoming_sightings", sightings):
            inserted = insert_new(
                con,
                "sightings",
                ["article_id", "source_id"],
                "SELECT article_id, source_id, url, title, feed_published_at, summary, "
                "? AS first_seen_at, ? AS run_id FROM incoming_sightings",
                [now, run_id],
                returning=["source_id"],
            )
        new_per_source: dict[str, int] = {}
        for (source_id,) in inserted:
            new_per_source[source_id] = new_per_source.get(source_id, 0) + 1
        if new_per_source:
            counts = pa.table({"source_id": list(new_per_source), "n": list(new_per_source.values())})
            with arrow_view(con, "new_counts", counts):
                con.execute(
                    "UPDATE sources SET entries_seen = entries_seen + new_counts.n "
                    "FROM new_counts WHERE sources.source_id = new_counts.source_id"
                )
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise


def pending_entries(
    con: duckdb.DuckDBPyConnection, max_attempts: int, now: datetime | None = None
) -> list[Entry]:
    """Entries seen in a feed whose article is still missing: this run's work.

    Everything a feed ever listed is in ``sightings``, so an article that a killed run
    never stored, or whose page failed temporarily, is picked up here even when its
    feed has not changed since. Pages that failed for good, or temporarily ``max_attempts``
    times, are left alone. Pages that hit an unanticipated error (a bug) are retried with
    a back-off that starts at 5 minutes and stops doubling at 6 hours, without a limit,
    so that a fixed bug heals them. Each article appears once (its first sighting).

    Args:
        con: the database.
        max_attempts: temporary failures are retried until this many attempts.
        now: the current time (default: now).

    Returns:
        Entries to download, oldest sighting first.
    """
    rows = con.execute(
        """
        SELECT s.source_id, s.url, s.title, s.feed_published_at, s.summary
        FROM sightings s
        WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.article_id = s.article_id)
          AND NOT EXISTS (SELECT 1 FROM article_aliases al WHERE al.alias_id = s.article_id)
          AND NOT EXISTS (
              SELECT 1 FROM page_failures f WHERE f.article_id = s.article_id AND (
                  f.status = 'permanent'
                  OR (f.status = 'temporary' AND f.attempts >= $max_attempts)
                  OR (f.status = 'error' AND f.last_failed_at + to_seconds(
                          least($first * pow(2, least(f.attempts - 1, 30)), $cap)::BIGINT) > $now)))
        QUALIFY row_number() OVER (PARTITION BY s.article_id ORDER BY s.first_seen_at, s.source_id) = 1
        ORDER BY s.first_seen_at, s.feed_published_at NULLS LAST, s.article_id
        """,
        {
            "max_attempts": max_attempts,
            "first": ERROR_RETRY_FIRST_S,
            "cap": ERROR_RETRY_MAX_S,
            "now": now or now_utc(),
        },
    ).fetchall()
    return [Entry(source_id, url, canonicalize(url), title, published, summary)
            for source_id, url, title, published, summary in rows]  # fmt: skip
