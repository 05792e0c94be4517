"""DuckDB storage: migrations, short write windows, and bulk writes through Arrow.

All SQL the pipeline runs lives in this package, so a different backend (DuckLake)
would change these modules only. Writes are batched through Arrow tables; DuckDB's
row-by-row ``executemany`` is thousands of times slower.
"""

from monitor.store.articles import find_article, match_evidence, record_failures, save_batch, save_topics
from monitor.store.db import DatabaseBusy, DatabaseMissing, DatabaseOutdated, connect, migrate
from monitor.store.feeds import (
    RUN_COUNTERS,
    due_sources,
    finish_run,
    pending_entries,
    record_polls,
    start_run,
    sync_sources,
)
from monitor.store.outbox import mark_alerts, pending_alerts

__all__ = [
    "RUN_COUNTERS",
    "DatabaseBusy",
    "DatabaseMissing",
    "DatabaseOutdated",
    "connect",
    "due_sources",
    "find_article",
    "finish_run",
    "mark_alerts",
    "match_evidence",
    "migrate",
    "pending_alerts",
    "pending_entries",
    "record_failures",
    "record_polls",
    "save_batch",
    "save_topics",
    "start_run",
    "sync_sources",
]
