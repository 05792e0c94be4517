"""Recording verdicts: a short write under the writer lease, whoever records it."""

from __future__ import annotations

import getpass
from collections.abc import Callable

from monitor import store
from monitor.config import Settings
from monitor.models import ReviewDecision
from monitor.store import reviews


def reviewer_name(settings: Settings) -> str:
    """Who is reviewing: ``MONITOR_REVIEWER``, else the login name."""
    if settings.reviewer:
        return settings.reviewer
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "analyst"


def record(settings: Settings, decision: ReviewDecision, on_wait: Callable[[str], None] | None = None) -> str:
    """Store a verdict, holding the writer lease only for the write.

    Args:
        settings: where the database is, and how long to wait for another writer.
        decision: the verdict.
        on_wait: told when another writer (an ingest run) holds the lease and this write waits.

    Returns:
        The review's id.

    Raises:
        WriterBusy: another writer kept the database past the lock timeout.
    """
    with (
        store.writer_lease(
            settings.store_target, "monitor review", settings.db_lock_timeout_s, on_wait=on_wait
        ),
        store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s) as con,
        store.transaction(con),
    ):
        return reviews.record_review(con, decision, store.now_utc())
