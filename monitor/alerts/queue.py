"""Queue alerts for newly matched articles, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb

from monitor import store
from monitor.alerts.carriers import choose_carriers


def queue_story_alerts(
    con: duckdb.DuckDBPyConnection, matched: Sequence[tuple[str, str]], now: datetime
) -> int:
    """Queue one alert per story and topic for newly matched ``(article_id, topic_id)`` pairs.

    A syndicated copy of a story that already has an alert for the topic adds none (the
    alert id is derived from the story and topic, and the outbox keeps the first).

    Returns:
        How many alerts were queued.
    """
    return store.insert_alerts(con, choose_carriers(store.alert_candidates(con, matched)), now)
