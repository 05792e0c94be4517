"""DuckDB storage: migrations, short write windows, and bulk writes through Arrow.

All SQL the pipeline runs lives here, so a different backend (DuckLake) would
change this module only. Writes are batched through Arrow tables; DuckDB's
row-by-row ``executemany`` is thousands of times slower.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from monitor.embed import DIMENSION
from monitor.models import (
    Alert,
    Article,
    Entry,
    Feed,
    FeedPoll,
    FeedState,
    FetchStatus,
    Match,
    PageFailure,
    Passage,
    Topic,
)
from monitor.urls import stable_id


class DatabaseBusy(RuntimeError):
    """Raised when another process holds the database for longer than the lock timeout."""


class DatabaseMissing(FileNotFoundError):
    """Raised when a read-only open names a database file that does not exist."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, lock_timeout_s: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for one short write (or read) window, migrating it first.

    Retries while another process holds the file lock, so a flow waits for an
    analyst's query to finish instead of failing at once.

    Args:
        path: the database file, or ``":memory:"``.
        read_only: open without write access (no migrations are applied).
        lock_timeout_s: how long to keep retrying a held lock.

    Yields:
        An open connection, closed on exit.

    Raises:
        DatabaseBusy: the lock was still held after ``lock_timeout_s``.
        DatabaseMissing: ``read_only`` and the file does not exist.
    """
    target = str(path)
    if target != ":memory:":
        if read_only and not Path(target).exists():
            raise DatabaseMissing(f"database not found: {target}")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(target, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusy(
                    f"{target} is locked by another process (waited {lock_timeout_s:g} s); "
                    "close other DuckDB sessions on it or query the snapshot file instead"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        if not read_only:
            migrate(con)
        yield con
    finally:
        con.close()


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations from ``monitor/migrations`` in order.

    Returns:
        Versions applied by this call.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[int] = []
    files = sorted(
        (f for f in resources.files("monitor.migrations").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    for file in files:
        version = int(file.name.split("_", 1)[0])
        if version in done:
            continue
        con.execute("BEGIN")
        try:
            con.execute(file.read_text(encoding="utf-8"))
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, file.name, _now()])
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _arrow(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[str]:
    con.register(name, table)
    try:
        yield name
    finally:
        con.unregister(name)


# ---------------------------------------------------------------- runs


def start_run(con: duckdb.DuckDBPyConnection, flow_run_id: str | None = None) -> str:
    """Record the start of a run and return its id."""
    started = _now()
    run_id = f"{started:%Y%m%dT%H%M%S}-{stable_id(str(time.time_ns()))[:6]}"
    # A run still marked running was killed: ingest runs one at a time per database
    # (the deployment's concurrency limit), so nothing else can be running now.
    con.execute(
        "UPDATE runs SET status = 'abandoned', error = 'process ended before the run finished' "
        "WHERE status = 'running'"
    )
    con.execute(
        "INSERT INTO runs (run_id, flow_run_id, started_at, status) VALUES (?, ?, ?, 'running')",
        [run_id, flow_run_id, started],
    )
    return run_id


RUN_COUNTERS = (
    "feeds_total", "feeds_ok", "feeds_not_modified", "feeds_failed", "entries_seen", "entries_new",
    "pages_fetched", "pages_failed", "articles_stored", "passages_stored", "matches_new",
    "alerts_new", "alerts_delivered",
)  # fmt: skip


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    counts: dict[str, int],
    error: str | None = None,
) -> None:
    """Record a run's outcome and its per-stage counts."""
    values = [int(counts.get(name, 0)) for name in RUN_COUNTERS]
    assignments = ", ".join(f"{name} = ?" for name in RUN_COUNTERS)  # names are constants above
    con.execute(
        f"UPDATE runs SET finished_at = ?, status = ?, error = ?, {assignments} WHERE run_id = ?",
        [_now(), status, error, *values, run_id],
    )


# ---------------------------------------------------------------- sources


def sync_sources(con: duckdb.DuckDBPyConnection, feeds: Sequence[Feed]) -> dict[str, FeedState]:
    """Insert new feeds, refresh names and tags, and return stored fetch state.

    Feeds removed from feeds.yaml stay in the table with their history.
    """
    table = pa.table(
        {
            "source_id": [f.source_id for f in feeds],
            "name": [f.name for f in feeds],
            "url": [f.url for f in feeds],
            "language": pa.array([f.language for f in feeds], pa.string()),
            "tags": pa.array([list(f.tags) for f in feeds], pa.list_(pa.string())),
        }
    )
    with _arrow(con, "incoming_feeds", table):
        con.execute(
            """
            INSERT INTO sources (source_id, name, url, language, tags, added_at)
            SELECT source_id, name, url, language, tags, ? FROM incoming_feeds
            ON CONFLICT (source_id) DO UPDATE SET
                name = excluded.name, language = excluded.language, tags = excluded.tags
            """,
            [_now()],
        )
    rows = con.execute("SELECT source_id, etag, last_modified, consecutive_failures FROM sources").fetchall()
    return {r[0]: FeedState(r[0], r[1], r[2], r[3]) for r in rows}


def record_polls(con: duckdb.DuckDBPyConnection, run_id: str, polls: Sequence[FeedPoll]) -> None:
    """Store each feed's poll outcome and the sightings of its entries, in one transaction."""
    now = _now()
    ok = [p.status in (FetchStatus.OK, FetchStatus.NOT_MODIFIED) for p in polls]
    table = pa.table(
        {
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
        }
    )
    con.execute("BEGIN")
    try:
        with _arrow(con, "polls", table):
            con.execute(
                """
                UPDATE sources SET
                    last_polled_at = $now,
                    last_status = polls.status,
                    last_http_status = polls.http_status,
                    last_error = polls.error,
                    last_success_at = CASE WHEN polls.ok THEN $now ELSE sources.last_success_at END,
                    consecutive_failures = CASE WHEN polls.ok THEN 0 ELSE sources.consecutive_failures + 1 END,
                    etag = CASE WHEN polls.status = 'ok' THEN polls.etag ELSE sources.etag END,
                    last_modified = CASE WHEN polls.status = 'ok' THEN polls.last_modified
                                         ELSE sources.last_modified END
                FROM polls WHERE sources.source_id = polls.source_id
                """,
                {"now": now},
            )
        with _arrow(con, "incoming_sightings", sightings):
            inserted = con.execute(
                """
                INSERT INTO sightings
                SELECT article_id, source_id, url, title, feed_published_at, ?, ?
                FROM incoming_sightings
                ON CONFLICT DO NOTHING
                RETURNING source_id
                """,
                [now, run_id],
            ).fetchall()
        new_per_source: dict[str, int] = {}
        for (source_id,) in inserted:
            new_per_source[source_id] = new_per_source.get(source_id, 0) + 1
        if new_per_source:
            counts = pa.table({"source_id": list(new_per_source), "n": list(new_per_source.values())})
            with _arrow(con, "new_counts", counts):
                con.execute(
                    "UPDATE sources SET entries_seen = entries_seen + new_counts.n "
                    "FROM new_counts WHERE sources.source_id = new_counts.source_id"
                )
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise


def entries_to_fetch(
    con: duckdb.DuckDBPyConnection, entries: Sequence[Entry], max_attempts: int
) -> list[Entry]:
    """Keep entries whose article is not stored and has not failed for good.

    Entries for the same article from several feeds collapse to the first one.

    Args:
        con: the database.
        entries: entries from this run's polls.
        max_attempts: temporary failures are retried until this many attempts.

    Returns:
        Entries to download, in input order.
    """
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.article_id, entry)
    if not unique:
        return []
    ids = pa.table({"article_id": list(unique)})
    with _arrow(con, "candidate_ids", ids):
        done = {
            row[0]
            for row in con.execute(
                """
                SELECT c.article_id FROM candidate_ids c
                WHERE EXISTS (SELECT 1 FROM articles a WHERE a.article_id = c.article_id)
                   OR EXISTS (SELECT 1 FROM page_failures f WHERE f.article_id = c.article_id
                              AND (f.status = 'permanent' OR f.attempts >= ?))
                """,
                [max_attempts],
            ).fetchall()
        }
    return [e for aid, e in unique.items() if aid not in done]


# ---------------------------------------------------------------- articles, passages, matches


def save_batch(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    articles: Sequence[Article],
    passages: Sequence[Passage],
    matches: Sequence[Match],
    failures: Sequence[PageFailure],
    model: str,
) -> dict[str, int]:
    """Write one batch's articles, passages, matches, alerts and failures atomically.

    A run killed mid-way therefore leaves whole batches or nothing, and the next run
    picks up the articles that are missing.

    Args:
        con: the database.
        run_id: the current run.
        articles: extracted articles.
        passages: their embedded passages.
        matches: matches found among them.
        failures: pages of this batch that could not become articles.
        model: name of the embedding model that produced the passages.

    Returns:
        Counts of rows actually inserted: ``articles``, ``passages``, ``matches``, ``alerts``.
    """
    now = _now()
    counts = {"articles": 0, "passages": 0, "matches": 0, "alerts": 0}
    con.execute("BEGIN")
    try:
        if articles:
            with _arrow(con, "batch_articles", _articles_table(articles, run_id)):
                counts["articles"] = len(
                    con.execute(
                        "INSERT INTO articles BY NAME SELECT * FROM batch_articles "
                        "ON CONFLICT DO NOTHING RETURNING article_id"
                    ).fetchall()
                )
            ids = pa.table({"article_id": [a.article_id for a in articles]})
            with _arrow(con, "stored_ids", ids):
                con.execute(
                    "DELETE FROM page_failures WHERE article_id IN (SELECT article_id FROM stored_ids)"
                )
        if passages:
            with _arrow(con, "batch_passages", _passages_table(passages, model)):
                counts["passages"] = len(
                    con.execute(
                        "INSERT INTO passages BY NAME SELECT * FROM batch_passages "
                        "ON CONFLICT DO NOTHING RETURNING seq"
                    ).fetchall()
                )
        if matches:
            with _arrow(con, "batch_matches", _matches_table(matches, run_id, now)):
                inserted = con.execute(
                    "INSERT INTO matches BY NAME SELECT * FROM batch_matches "
                    "ON CONFLICT DO NOTHING RETURNING article_id, topic_id"
                ).fetchall()
            counts["matches"] = len(inserted)
            alerts = pa.table(
                {
                    "alert_id": [stable_id(f"{a}:{t}") for a, t in inserted],
                    "article_id": [a for a, _ in inserted],
                    "topic_id": [t for _, t in inserted],
                }
            )
            with _arrow(con, "batch_alerts", alerts):
                counts["alerts"] = len(
                    con.execute(
                        "INSERT INTO alerts (alert_id, article_id, topic_id, created_at) "
                        "SELECT alert_id, article_id, topic_id, ? FROM batch_alerts "
                        "ON CONFLICT DO NOTHING RETURNING alert_id",
                        [now],
                    ).fetchall()
                )
        if failures:
            record_failures(con, failures, now)
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise
    return counts


def record_failures(
    con: duckdb.DuckDBPyConnection, failures: Sequence[PageFailure], now: datetime | None = None
) -> None:
    """Record pages that could not become articles; repeated failures count attempts."""
    now = now or _now()
    table = pa.table(
        {
            "article_id": [f.entry.article_id for f in failures],
            "canonical_url": [f.entry.canonical_url for f in failures],
            "url": [f.entry.url for f in failures],
            "source_id": [f.entry.source_id for f in failures],
            "status": [f.status.value for f in failures],
            "http_status": pa.array([f.http_status for f in failures], pa.int32()),
            "error": [f.error for f in failures],
        }
    )
    with _arrow(con, "batch_failures", table):
        con.execute(
            """
            INSERT INTO page_failures
            SELECT article_id, canonical_url, url, source_id, status, http_status, error, 1, $now, $now
            FROM batch_failures
            ON CONFLICT (article_id) DO UPDATE SET
                status = excluded.status, http_status = excluded.http_status, error = excluded.error,
                attempts = page_failures.attempts + 1, last_failed_at = excluded.last_failed_at
            """,
            {"now": now},
        )


def _articles_table(articles: Sequence[Article], run_id: str) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "article_id": [a.article_id for a in articles],
            "canonical_url": [a.canonical_url for a in articles],
            "url": [a.url for a in articles],
            "source_id": [a.source_id for a in articles],
            "title": pa.array([a.title for a in articles], pa.string()),
            "author": pa.array([a.author for a in articles], pa.string()),
            "published_at": pa.array([a.published_at for a in articles], ts),
            "date_method": [a.date_method for a in articles],
            "language": pa.array([a.language for a in articles], pa.string()),
            "site_name": pa.array([a.site_name for a in articles], pa.string()),
            "text": [a.text for a in articles],
            "word_count": pa.array([a.word_count for a in articles], pa.int32()),
            "extract_method": [a.extract_method for a in articles],
            "fetched_at": pa.array([a.fetched_at for a in articles], ts),
            "run_id": [run_id] * len(articles),
        }
    )


def _passages_table(passages: Sequence[Passage], model: str) -> pa.Table:
    flat = np.ascontiguousarray(np.stack([p.vector for p in passages]), dtype=np.float32).ravel()
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat), DIMENSION)
    return pa.table(
        {
            "article_id": [p.article_id for p in passages],
            "seq": pa.array([p.seq for p in passages], pa.int32()),
            "text": [p.text for p in passages],
            "embedding": vectors,
            "model": [model] * len(passages),
        }
    )


def _matches_table(matches: Sequence[Match], run_id: str, now: datetime) -> pa.Table:
    return pa.table(
        {
            "article_id": [m.article_id for m in matches],
            "topic_id": [m.topic_id for m in matches],
            "score": [m.score for m in matches],
            "threshold": [m.threshold for m in matches],
            "best_passage_seq": pa.array([m.best_passage_seq for m in matches], pa.int32()),
            "best_passage": [m.best_passage for m in matches],
            "exemplar": [m.exemplar for m in matches],
            "model": [m.model for m in matches],
            "status": ["new"] * len(matches),
            "matched_at": pa.array([now] * len(matches), pa.timestamp("us", tz="UTC")),
            "run_id": [run_id] * len(matches),
        }
    )


def save_topics(con: duckdb.DuckDBPyConnection, topics: Sequence[Topic]) -> None:
    """Upsert the topic profiles in force, so matches can be audited against them."""
    table = pa.table(
        {
            "topic_id": [t.topic_id for t in topics],
            "name": [t.name for t in topics],
            "description": [t.description for t in topics],
            "threshold": [t.threshold for t in topics],
            "exemplars": pa.array([list(t.exemplars) for t in topics], pa.list_(pa.string())),
            "negatives": pa.array([list(t.negatives) for t in topics], pa.list_(pa.string())),
        }
    )
    with _arrow(con, "incoming_topics", table):
        con.execute(
            """
            INSERT INTO topics SELECT *, ? FROM incoming_topics
            ON CONFLICT (topic_id) DO UPDATE SET
                name = excluded.name, description = excluded.description, threshold = excluded.threshold,
                exemplars = excluded.exemplars, negatives = excluded.negatives, updated_at = excluded.updated_at
            """,
            [_now()],
        )


# ---------------------------------------------------------------- alerts


def pending_alerts(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    """Alerts in the outbox that have not been delivered yet, oldest first."""
    rows = con.execute(
        """
        SELECT al.alert_id, al.article_id, al.topic_id, t.name, m.score, a.title, a.url,
               a.site_name, a.published_at, m.best_passage
        FROM alerts al
        JOIN matches m USING (article_id, topic_id)
        JOIN articles a USING (article_id)
        JOIN topics t USING (topic_id)
        WHERE al.delivered_at IS NULL
        ORDER BY al.created_at, al.alert_id
        """
    ).fetchall()
    return [Alert(*row) for row in rows]


def mark_alerts(
    con: duckdb.DuckDBPyConnection, delivered: Sequence[str], failed: dict[str, str], channel: str
) -> None:
    """Mark alerts delivered, or count a failed attempt with its error."""
    now = _now()
    if delivered:
        with _arrow(con, "delivered_ids", pa.table({"alert_id": list(delivered)})):
            con.execute(
                "UPDATE alerts SET delivered_at = ?, channel = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE alert_id IN (SELECT alert_id FROM delivered_ids)",
                [now, channel],
            )
    if failed:
        table = pa.table({"alert_id": list(failed), "error": list(failed.values())})
        with _arrow(con, "failed_alerts", table):
            con.execute(
                "UPDATE alerts SET attempts = attempts + 1, last_error = failed_alerts.error "
                "FROM failed_alerts WHERE alerts.alert_id = failed_alerts.alert_id"
            )
