"""The alert outbox: one alert per story and topic, queued in the same transaction as its match."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from monitor.models import AlertCandidate, QueuedAlert
from monitor.store.db import arrow_view, insert_new


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


def insert_alerts(con: duckdb.DuckDBPyConnection, alerts: Sequence[QueuedAlert], now: datetime) -> list[str]:
    """Queue alerts in the outbox; an alert id already there is left alone. Returns the new ids."""
    if not alerts:
        return []
    table = pa.table(
        {
            "alert_id": [a.alert_id for a in alerts],
            "article_id": [a.article_id for a in alerts],
            "topic_id": [a.topic_id for a in alerts],
        }
    )
    with arrow_view(con, "batch_alerts", table):
        rows = insert_new(
            con,
            "alerts",
            ["alert_id"],
            "SELECT alert_id, article_id, topic_id, ? AS created_at FROM batch_alerts",
            [now],
            returning=["alert_id"],
        )
    return [r[0] for r in rows]
