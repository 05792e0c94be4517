"""Storage: migrations, the writer lease, short write windows, and bulk writes through Arrow.

All SQL the pipeline runs lives in this package, so a different backend (DuckLake)
changes these modules only. The store writes the rows it is given: which article is a
copy, which story it joins and which copy carries an alert are decided elsewhere
(``monitor.stories``, ``monitor.alerts``). Writes are batched through Arrow tables;
DuckDB's row-by-row ``executemany`` is thousands of times slower.
"""

from monitor.store.articles import (
    clear_failures,
    find_article,
    insert_aliases,
    insert_articles,
    insert_signatures,
    insert_stories,
    recent_signatures,
    record_failures,
    stored_duplicates,
)
from monitor.store.db import (
    DatabaseBusy,
    DatabaseMissing,
    DatabaseOutdated,
    connect,
    lock_holder,
    migrate,
    now_utc,
    transaction,
)
from monitor.store.feeds import INVALID, due_sources, pending_entries, record_polls, sync_sources
from monitor.store.lease import WriterBusy, WriterLease, writer_lease
from monitor.store.matches import insert_matches, match_evidence, run_matches, save_topics
from monitor.store.outbox import alert_candidates, insert_alerts
from monitor.store.passages import insert_passages
from monitor.store.runs import RUN_COLUMNS, finish_run, record_publish, start_run

__all__ = [
    "INVALID",
    "RUN_COLUMNS",
    "DatabaseBusy",
    "DatabaseMissing",
    "DatabaseOutdated",
    "WriterBusy",
    "WriterLease",
    "alert_candidates",
    "clear_failures",
    "connect",
    "due_sources",
    "find_article",
    "finish_run",
    "insert_alerts",
    "insert_aliases",
    "insert_articles",
    "insert_matches",
    "insert_passages",
    "insert_signatures",
    "insert_stories",
    "lock_holder",
    "match_evidence",
    "migrate",
    "now_utc",
    "pending_entries",
    "recent_signatures",
    "record_failures",
    "record_polls",
    "record_publish",
    "run_matches",
    "save_topics",
    "start_run",
    "stored_duplicates",
    "sync_sources",
    "transaction",
    "writer_lease",
]
