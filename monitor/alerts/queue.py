"""Queue alerts for newly matched articles, and their ledger rows, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb

from monitor import store
from monitor.alerts.carriers import choose_carriers
from monitor.alerts.routing import ChannelSpec
from monitor.store import deliveries as ledger


def queue_story_alerts(
    con: duckdb.DuckDBPyConnection,
    matched: Sequence[tuple[str, str]],
    now: datetime,
    routes: Mapping[str, Sequence[ChannelSpec]],
) -> int:
    """Queue one alert per story and topic for newly matched ``(article_id, topic_id)`` pairs.

    A syndicated copy of a story that already has an alert for the topic adds none (the
    alert id is derived from the story and topic, and the outbox keeps the first), so a
    story never alerts twice on a channel however many outlets carry it. Each new alert
    gets one pending ledger row per channel of its topic.

    Returns:
        How many alerts were queued.
    """
    chosen = choose_carriers(store.alert_candidates(con, matched))
    new = set(store.insert_alerts(con, chosen, now))
    rows = [
        (a.alert_id, spec.channel_id, spec.name, spec.mode)
        for a in chosen
        if a.alert_id in new
        for spec in routes.get(a.topic_id, ())
    ]
    ledger.insert_deliveries(con, rows, now)
    return len(new)
