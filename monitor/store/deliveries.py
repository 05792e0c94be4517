"""The delivery ledger: one row per (alert, channel), claimed before sending and recorded after."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from monitor.models import Alert
from monitor.store.db import arrow_view, changed, insert_new, upsert

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Claimed:
    """A ledger row this sender holds."""

    alert_id: str
    channel_id: str
    topic_id: str
    mode: str
    digest_id: str | None
    attempts: int


def insert_deliveries(
    con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str, str, str]], now: datetime
) -> int:
    """Add pending ledger rows ``(alert_id, channel_id, channel name, mode)``; existing ones are kept."""
    if not rows:
        return 0
    table = pa.table(
        {
            "alert_id": [r[0] for r in rows],
            "channel_id": [r[1] for r in rows],
            "channel": [r[2] for r in rows],
            "mode": [r[3] for r in rows],
        }
    )
    with arrow_view(con, "new_deliveries", table):
        return len(
            insert_new(
                con,
                "deliveries",
                ["alert_id", "channel_id"],
                "SELECT alert_id, channel_id, channel, mode, 'pending' AS status, $now AS created_at, "
                "$now AS next_attempt_at FROM new_deliveries",
                {"now": now},
            )
        )


def release_stale_claims(
    con: duckdb.DuckDBPyConnection, now: datetime, alive: Callable[[str], bool], stale_after: timedelta
) -> int:
    """Turn claims whose sender died (or that are older than ``stale_after``) back into due rows.

    Their message may or may not have gone out, so they are resent at once; the repeat
    carries the same idempotency key, and a receiver that honours it drops the copy.

    Returns:
        How many claims were released.
    """
    rows = con.execute(
        "SELECT alert_id, channel_id, claimed_by, claimed_at FROM deliveries WHERE status = 'sending'"
    ).fetchall()
    stale = [(a, c) for a, c, by, at in rows if at is None or at < now - stale_after or not alive(by or "")]
    if not stale:
        return 0
    table = pa.table({"alert_id": [s[0] for s in stale], "channel_id": [s[1] for s in stale]})
    with arrow_view(con, "stale_claims", table):
        con.execute(
            """
            UPDATE deliveries SET status = 'failed', attempts = attempts + 1, next_attempt_at = $now,
                last_error = 'outcome unknown: the sender stopped between sending and recording; '
                             || 'resending with the same idempotency key',
                claimed_at = NULL, claimed_by = NULL
            FROM stale_claims s
            WHERE deliveries.alert_id = s.alert_id AND deliveries.channel_id = s.channel_id
            """,
            {"now": now},
        )
    return len(stale)


def give_up_old(con: duckdb.DuckDBPyConnection, now: datetime, after: timedelta) -> int:
    """Stop retrying rows that have not gone out within ``after`` of being queued."""
    return changed(
        con,
        """
        UPDATE deliveries SET status = 'gave-up',
            note = coalesce(note || '; ', '') || 'not delivered within ' || $hours || ' h'
        WHERE status IN ('pending', 'failed') AND created_at < $cutoff
        """,
        {"cutoff": now - after, "hours": round(after.total_seconds() / 3600, 1)},
    )


def waiting_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows not yet delivered (pending or failed) per channel."""
    rows = con.execute(
        "SELECT channel_id, count(*) FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY channel_id"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def blocked_channels(con: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, datetime]:
    """Channels backing off after a failure, with the time they may be tried again."""
    rows = con.execute(
        "SELECT channel_id, next_attempt_at FROM channel_state WHERE next_attempt_at > ?", [now]
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def immediate_waiting(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """Immediate rows not yet sent, ``(alert_id, channel_id, topic_id)``, oldest (then best) first."""
    return con.execute(
        """
        SELECT d.alert_id, d.channel_id, a.topic_id FROM deliveries d JOIN alerts a USING (alert_id)
        JOIN matches m ON m.article_id = a.article_id AND m.topic_id = a.topic_id
        WHERE d.mode = 'immediate' AND d.status IN ('pending', 'failed')
        ORDER BY d.created_at, m.score DESC, d.alert_id
        """
    ).fetchall()


def immediate_used(con: duckdb.DuckDBPyConnection, since: datetime) -> dict[tuple[str, str], int]:
    """Immediate messages sent (or being sent) since a time, per ``(topic_id, channel_id)``."""
    rows = con.execute(
        """
        SELECT a.topic_id, d.channel_id, count(*) FROM deliveries d JOIN alerts a USING (alert_id)
        WHERE d.mode = 'immediate' AND d.status IN ('sent', 'sending') AND coalesce(d.sent_at, d.claimed_at) > ?
        GROUP BY ALL
        """,
        [since],
    ).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def fold_into_digest(
    con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str]], note: str, now: datetime
) -> None:
    """Move immediate rows into the next digest of their topic and channel, saying why."""
    _update_rows(
        con,
        rows,
        "mode = 'digest', status = 'pending', next_attempt_at = $now, note = $note",
        {"now": now, "note": note},
    )


def claim_due(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    claimer: str,
    skip_channels: Sequence[str],
    mode: str,
    limit_per_channel: int,
    topic_id: str | None = None,
) -> list[Claimed]:
    """Claim due rows of one mode, oldest first per channel (best score first among equals).

    Args:
        con: the database (call inside a transaction).
        now: the current time.
        claimer: ``pid@host`` of this sender.
        skip_channels: channels backing off.
        mode: ``immediate``, or ``digest`` (digest rows are claimed whole per topic and channel).
        limit_per_channel: at most this many rows per channel.
        topic_id: only this topic's rows.

    Returns:
        The claimed rows.
    """
    rows = con.execute(
        """
        SELECT d.alert_id, d.channel_id, a.topic_id, d.mode, d.digest_id, d.attempts FROM deliveries d
        JOIN alerts a USING (alert_id)
        JOIN matches m ON m.article_id = a.article_id AND m.topic_id = a.topic_id
        WHERE d.status IN ('pending', 'failed') AND d.mode = $mode AND d.next_attempt_at <= $now
          AND NOT list_contains($skip::VARCHAR[], d.channel_id) AND ($topic IS NULL OR a.topic_id = $topic)
        QUALIFY row_number() OVER (PARTITION BY d.channel_id ORDER BY d.created_at, m.score DESC, d.alert_id)
                <= $limit
        ORDER BY d.channel_id, d.created_at, m.score DESC, d.alert_id
        """,
        {
            "mode": mode,
            "now": now,
            "skip": list(skip_channels),
            "topic": topic_id,
            "limit": limit_per_channel,
        },
    ).fetchall()
    claimed = [Claimed(*r) for r in rows]
    _set_claim(con, claimed, now, claimer)
    return claimed


def _keys(rows: Sequence[Claimed] | Sequence[tuple[str, str]]) -> pa.Table:
    pairs = [(r.alert_id, r.channel_id) if isinstance(r, Claimed) else r for r in rows]
    return pa.table({"alert_id": [p[0] for p in pairs], "channel_id": [p[1] for p in pairs]})


def _set_claim(con: duckdb.DuckDBPyConnection, rows: Sequence[Claimed], now: datetime, claimer: str) -> None:
    _update_rows(
        con, rows, "status = 'sending', claimed_at = $now, claimed_by = $by", {"now": now, "by": claimer}
    )


def _update_rows(
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[Claimed] | Sequence[tuple[str, str]],
    assignments: str,
    params: dict[str, Any],
) -> None:
    """``UPDATE deliveries SET <assignments>`` on the (alert, channel) rows given, in one statement.

    ``assignments`` is always a constant of this module; every value goes in ``params``.
    """
    if not rows:
        return
    with arrow_view(con, "keyed_rows", _keys(rows)):
        con.execute(
            f"UPDATE deliveries SET {assignments} FROM keyed_rows k "
            "WHERE deliveries.alert_id = k.alert_id AND deliveries.channel_id = k.channel_id",
            params,
        )


def assign_digest(
    con: duckdb.DuckDBPyConnection,
    digest_id: str,
    topic_id: str,
    channel_id: str,
    alert_ids: Sequence[str],
    now: datetime,
) -> None:
    """Fix a digest's membership: its rows keep the digest id, so a retry resends the same message."""
    insert_new(
        con,
        "digests",
        ["digest_id"],
        "SELECT ?::VARCHAR AS digest_id, ?::VARCHAR AS topic_id, ?::VARCHAR AS channel_id, "
        "?::TIMESTAMPTZ AS created_at, ?::INTEGER AS stories",
        [digest_id, topic_id, channel_id, now, len(alert_ids)],
    )
    _update_rows(con, [(a, channel_id) for a in alert_ids], "digest_id = $digest", {"digest": digest_id})


def record_sent(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str]], now: datetime) -> None:
    """Rows whose message went out."""
    if not rows:
        return
    _update_rows(
        con,
        rows,
        "status = 'sent', sent_at = $now, attempts = attempts + 1, last_error = NULL, "
        "claimed_at = NULL, claimed_by = NULL",
        {"now": now},
    )
    with arrow_view(con, "sent_rows", _keys(rows)):
        con.execute(
            "UPDATE alerts SET delivered_at = coalesce(delivered_at, $now), channel = coalesce(channel, 'ledger') "
            "WHERE alert_id IN (SELECT alert_id FROM sent_rows)",
            {"now": now},
        )
        con.execute(
            "UPDATE digests SET sent_at = $now WHERE digest_id IN "
            "(SELECT DISTINCT d.digest_id FROM deliveries d JOIN sent_rows s USING (alert_id, channel_id) "
            " WHERE d.digest_id IS NOT NULL)",
            {"now": now},
        )


def record_failed(
    con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str]], error: str, retry_at: datetime
) -> None:
    """Rows whose message failed: counted, with the error, due again at ``retry_at``."""
    _update_rows(
        con,
        rows,
        "status = 'failed', attempts = attempts + 1, last_error = $error, "
        "next_attempt_at = $retry, claimed_at = NULL, claimed_by = NULL",
        {"error": error, "retry": retry_at},
    )


def release(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str]], retry_at: datetime) -> None:
    """Rows claimed but not attempted (their channel failed first): due again with the channel."""
    _update_rows(
        con,
        rows,
        "status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'failed' END, "
        "next_attempt_at = $retry, claimed_at = NULL, claimed_by = NULL",
        {"retry": retry_at},
    )


def channel_failed(
    con: duckdb.DuckDBPyConnection,
    channel_id: str,
    name: str,
    error: str,
    backoff: Callable[[int], float],
    now: datetime,
) -> datetime:
    """Count a channel's failure and set its back-off; returns when it may be tried again."""
    row = con.execute(
        "SELECT consecutive_failures FROM channel_state WHERE channel_id = ?", [channel_id]
    ).fetchone()
    failures = (row[0] if row else 0) + 1
    retry_at = now + timedelta(seconds=backoff(failures))
    upsert(
        con,
        "channel_state",
        ["channel_id"],
        "SELECT $id::VARCHAR AS channel_id, $name::VARCHAR AS channel, $failures::INTEGER AS consecutive_failures, "
        "$retry::TIMESTAMPTZ AS next_attempt_at, $error::VARCHAR AS last_error",
        "channel = excluded.channel, consecutive_failures = excluded.consecutive_failures, "
        "next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error",
        {"id": channel_id, "name": name, "failures": failures, "retry": retry_at, "error": error},
    )
    return retry_at


def channel_ok(con: duckdb.DuckDBPyConnection, channel_id: str, name: str, now: datetime) -> None:
    """A channel that delivered: its failures and back-off are cleared."""
    upsert(
        con,
        "channel_state",
        ["channel_id"],
        "SELECT $id::VARCHAR AS channel_id, $name::VARCHAR AS channel, 0 AS consecutive_failures, "
        "$now::TIMESTAMPTZ AS last_success_at",
        "channel = excluded.channel, consecutive_failures = 0, next_attempt_at = NULL, last_error = NULL, "
        "last_success_at = excluded.last_success_at",
        {"id": channel_id, "name": name, "now": now},
    )


def alerts_by_id(con: duckdb.DuckDBPyConnection, alert_ids: Sequence[str]) -> dict[str, Alert]:
    """The content of alerts, with "also carried by" counted now (copies keep arriving)."""
    if not alert_ids:
        return {}
    with arrow_view(con, "wanted_alerts", pa.table({"alert_id": list(dict.fromkeys(alert_ids))})):
        rows = con.execute(
            """
            SELECT al.alert_id, al.article_id, al.topic_id, t.name, m.score, a.title, a.url,
                   a.site_name, a.published_at, m.best_passage, a.story_id,
                   coalesce((SELECT list(c.name ORDER BY c.name) FROM story_carriers c
                             WHERE c.story_id = a.story_id AND c.source_id <> a.source_id), []) AS also,
                   m.keyword_hits::VARCHAR, a.language, m.threshold, src.name
            FROM wanted_alerts w
            JOIN alerts al USING (alert_id)
            JOIN matches m ON m.article_id = al.article_id AND m.topic_id = al.topic_id
            JOIN articles a ON a.article_id = al.article_id
            JOIN topics t ON t.topic_id = al.topic_id
            LEFT JOIN sources src ON src.source_id = a.source_id
            """
        ).fetchall()
    return {
        r[0]: Alert(
            alert_id=r[0], article_id=r[1], topic_id=r[2], topic_name=r[3], score=r[4], title=r[5], url=r[6],
            site_name=r[7], published_at=r[8], passage=r[9], story_id=r[10], also_carried_by=tuple(r[11]),
            keyword_hits=json.loads(r[12]) if r[12] else {}, language=r[13], threshold=r[14], outlet=r[15],
        )
        for r in rows
    }  # fmt: skip


def delivery_log(
    con: duckdb.DuckDBPyConnection, limit: int = 50, channel: str | None = None
) -> tuple[list[str], list[tuple]]:
    """Recent ledger rows, newest first: ``(columns, rows)``."""
    cur = con.execute(
        """
        SELECT coalesce(d.sent_at, d.claimed_at, d.next_attempt_at) AS event_at, d.channel, d.status, d.mode,
               d.attempts, a.topic_id AS topic, ar.title, d.last_error, d.note, d.alert_id
        FROM deliveries d JOIN alerts a USING (alert_id) JOIN articles ar ON ar.article_id = a.article_id
        WHERE $channel IS NULL OR d.channel_id = $channel OR d.channel ILIKE '%' || $channel || '%'
        ORDER BY event_at DESC, d.alert_id LIMIT $limit
        """,
        {"channel": channel, "limit": limit},
    )
    return [d[0] for d in cur.description], cur.fetchall()
