"""The alert outbox: what is waiting for delivery, and what was delivered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from monitor.models import Alert, AlertCandidate, QueuedAlert
from monitor.store.db import arrow_view, now_utc


def alert_candidates(
    con: duckdb.DuckDBPyConnection, matched: Sequence[tuple[str, str]]
) -> list[AlertCandidate]:
    """What the alert rule needs to know about newly matched ``(article_id, topic_id)`` pairs."""
    if not matched:
        return []
    table = pa.table({"article_id": [a for a, _ in matched], "topic_id": [t for _, t in matched]})
    with arrow_view(con, "new_matches", table):
        rows = con.execute(
            "SELECT n.article_id, n.topic_id, coalesce(a.story_id, n.article_id), a.published_at "
            "FROM new_matches n JOIN articles a USING (article_id)"
        ).fetchall()
    return [AlertCandidate(*r) for r in rows]


def insert_alerts(con: duckdb.DuckDBPyConnection, alerts: Sequence[QueuedAlert], now: datetime) -> int:
    """Queue alerts in the outbox; an alert id already there is left alone. Returns how many were new."""
    if not alerts:
        return 0
    table = pa.table(
        {
            "alert_id": [a.alert_id for a in alerts],
            "article_id": [a.article_id for a in alerts],
            "topic_id": [a.topic_id for a in alerts],
        }
    )
    with arrow_view(con, "batch_alerts", table):
        return len(
            con.execute(
                "INSERT INTO alerts (alert_id, article_id, topic_id, created_at) "
                "SELECT alert_id, article_id, topic_id, ? FROM batch_alerts "
                "ON CONFLICT DO NOTHING RETURNING alert_id",
                [now],
            ).fetchall()
        )


def pending_alerts(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """Alerts in the outbox that have not been delivered yet, oldest first.

    Each carries its story and the other feeds that carried the story ("also carried by"),
    counted at delivery time, so copies that arrived since the match are named too.
    """
    rows = con.execute(
        """
        SELECT al.alert_id, al.article_id, al.topic_id, t.name, m.score, a.title, a.url,
               a.site_name, a.published_at, m.best_passage, a.story_id,
               coalesce((SELECT list(c.name ORDER BY c.name) FROM story_carriers c
                         WHERE c.story_id = a.story_id AND c.source_id <> a.source_id), []) AS also
        FROM alerts al
        JOIN matches m USING (article_id, topic_id)
        JOIN articles a USING (article_id)
        JOIN topics t USING (topic_id)
        WHERE al.delivered_at IS NULL
        ORDER BY al.created_at, al.alert_id
        """
    ).fetchall()
    return [
        Alert(
            alert_id=r[0],
            article_id=r[1],
            topic_id=r[2],
            topic_name=r[3],
            score=r[4],
            title=r[5],
            url=r[6],
            site_name=r[7],
            published_at=r[8],
            passage=r[9],
            story_id=r[10],
            also_carried_by=tuple(r[11]),
        )
        for r in rows
    ]


def mark_alerts(
    con: duckdb.DuckDBPyConnection, delivered: Sequence[str], failed: dict[str, str], channel: str
) -> None:
    """Mark alerts delivered, or count a failed attempt with its error."""
    now = now_utc()
    if delivered:
        with arrow_view(con, "delivered_ids", pa.table({"alert_id": list(delivered)})):
            con.execute(
                "UPDATE alerts SET delivered_at = ?, channel = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE alert_id IN (SELECT alert_id FROM delivered_ids)",
                [now, channel],
            )
    if failed:
        table = pa.table({"alert_id": list(failed), "error": list(failed.values())})
        with arrow_view(con, "failed_alerts", table):
            con.execute(
                "UPDATE alerts SET attempts = attempts + 1, last_error = failed_alerts.error "
                "FROM failed_alerts WHERE alerts.alert_id = failed_alerts.alert_id"
            )
