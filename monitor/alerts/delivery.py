"""Delivery: hand pending alerts from the outbox to a channel, and record the outcome."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import duckdb

from monitor import store
from monitor.alerts.channels import Channel

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


def deliver_pending(connect: Connect, channel: Channel) -> int:
    """Send every undelivered alert to the channel and mark what went out.

    The database is held only to read the outbox and to record the result, never while
    the channel sends.

    Args:
        connect: opens a short-lived read-write connection.
        channel: where the alerts go.

    Returns:
        How many alerts were delivered.
    """
    with connect() as con:
        pending = store.pending_alerts(con)
    if not pending:
        return 0
    delivery = channel.send(pending)
    with connect() as con:
        store.mark_alerts(con, delivery.delivered, delivery.failed, delivery.channel)
    return len(delivery.delivered)
