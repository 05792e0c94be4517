"""Storage: migrations, idempotent batch writes, alert outbox, lock handling."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from monitor import store
from monitor.ingest.schedule import plan_next_poll
from monitor.models import (
    Entry,
    Feed,
    FeedPoll,
    FetchResult,
    FetchStatus,
    PageFailure,
)
from monitor.pipeline import store_batch
from monitor.store.db import MIGRATIONS
from tests.rows import FEED, NOW, article, counts, entry, match, passages, plan, sighted, start_run

LATEST = len(list(MIGRATIONS.glob("*.sql")))


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db) as con:
        versions = con.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert [v for v, _ in versions] == list(range(1, LATEST + 1))
        assert store.migrate(con) == []
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == LATEST


def test_pending_entries_are_sightings_without_article_or_final_failure(con) -> None:
    sighted(con, 1, 2, 3, 4)
    store_batch(con, start_run(con), [article(1)], passages(1), [], [])
    store.record_failures(con, [PageFailure(entry(2), FetchStatus.PERMANENT, 404, "HTTP 404")])
    store.record_failures(con, [PageFailure(entry(3), FetchStatus.TEMPORARY, 503, "HTTP 503")])
    todo = store.pending_entries(con, max_attempts=2)
    assert sorted(e.canonical_url for e in todo) == [entry(3).canonical_url, entry(4).canonical_url]
    assert entry(3) in todo  # title, date and summary survive the round trip
    store.record_failures(con, [PageFailure(entry(3), FetchStatus.TEMPORARY, 503, "HTTP 503")])
    assert con.execute("SELECT attempts FROM page_failures WHERE url = ?", [entry(3).url]).fetchone() == (2,)
    assert [e.canonical_url for e in store.pending_entries(con, max_attempts=2)] == [entry(4).canonical_url]


def test_an_article_seen_in_two_feeds_is_pending_once(con) -> None:
    other = Feed(name="Other", url="http://127.0.0.1:9/other.xml")
    store.sync_sources(con, [other])
    sighted(con, 5)
    twin = Entry(other.source_id, entry(5).url, entry(5).canonical_url, "t", NOW, None)
    poll = FeedPoll(other, FetchResult(other.url, other.url, FetchStatus.OK, 200), (twin,))
    store.record_polls(con, start_run(con), [poll], [plan(poll)])
    assert counts(con)["sightings"] == 2
    assert [e.source_id for e in store.pending_entries(con, max_attempts=5)] == [FEED.source_id]


def test_record_polls_updates_feed_health_and_sightings_once(con) -> None:
    run = start_run(con)
    ok = FeedPoll(
        FEED, FetchResult(FEED.url, FEED.url, FetchStatus.OK, 200, etag='"v1"'), (entry(1), entry(2))
    )
    store.record_polls(con, run, [ok], [plan(ok)])
    store.record_polls(con, run, [ok], [plan(ok)])
    row = con.execute(
        "SELECT last_status, etag, entries_seen, consecutive_failures FROM sources WHERE source_id = ?",
        [FEED.source_id],
    ).fetchone()
    assert row == ("ok", '"v1"', 2, 0)
    assert counts(con)["sightings"] == 2
    bad = FeedPoll(FEED, FetchResult(FEED.url, FEED.url, FetchStatus.TEMPORARY, 503, error="HTTP 503"))
    state = store.sync_sources(con, [FEED])[FEED.source_id]
    first = plan_next_poll(bad, state, NOW)
    store.record_polls(con, run, [bad], [first])
    second = plan_next_poll(bad, store.sync_sources(con, [FEED])[FEED.source_id], NOW)
    store.record_polls(con, run, [bad], [second])
    assert second.interval_s == 2 * first.interval_s
    row = con.execute(
        "SELECT last_status, last_error, consecutive_failures, etag, last_success_at IS NOT NULL FROM sources"
    ).fetchone()
    assert row == ("temporary", "HTTP 503", 2, '"v1"', True)
    assert store.sync_sources(con, [FEED])[FEED.source_id].etag == '"v1"'


def test_each_new_alert_gets_one_ledger_row_per_channel_of_its_topic(con) -> None:
    from monitor.alerts.routing import channel_spec, file_spec
    from monitor.store import deliveries

    specs = [file_spec(Path("a.jsonl")), channel_spec("json://127.0.0.1:9/h", "digest", 3)]
    run = start_run(con)
    store_batch(
        con, run, [article(1), article(2)], passages(1) + passages(2), [match(1), match(2)], [], {"t1": specs}
    )
    rows = con.execute(
        "SELECT channel_id, mode, status, attempts FROM deliveries ORDER BY channel_id"
    ).fetchall()
    assert sorted(rows) == sorted(
        [("file", "immediate", "pending", 0)] * 2 + [(specs[1].channel_id, "digest", "pending", 0)] * 2
    )
    content = deliveries.alerts_by_id(
        con, [a for (a,) in con.execute("SELECT alert_id FROM alerts").fetchall()]
    )
    assert {a.topic_name for a in content.values()} == {"Topic one"} and len(content) == 2
    # The same matches again (a rerun) queue nothing more.
    store_batch(
        con, run, [article(1), article(2)], passages(1) + passages(2), [match(1), match(2)], [], {"t1": specs}
    )
    assert con.execute("SELECT count(*) FROM deliveries").fetchone() == (4,)


def test_killed_run_is_marked_abandoned_by_the_next(con) -> None:
    first = start_run(con)
    start_run(con)
    assert con.execute("SELECT status FROM runs WHERE run_id = ?", [first]).fetchone() == ("abandoned",)


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_writer_waits_for_a_held_lock_then_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with (
            pytest.raises(store.DatabaseBusy, match=rf"held open by pid {holder.pid} \(.*python"),
            store.connect(db, lock_timeout_s=1),
        ):
            pass
        assert 0.9 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_writer_gets_the_database_once_an_analyst_lets_go(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with store.connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with store.connect(db, lock_timeout_s=20) as con:
            assert con.execute("SELECT count(*) FROM schema_migrations").fetchone() == (LATEST,)
    finally:
        holder.kill()
        holder.wait()


def test_read_only_open_of_missing_database_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(store.DatabaseMissing), store.connect(tmp_path / "nope.duckdb", read_only=True):
        pass


def test_a_populated_database_from_the_first_schema_migrates_to_the_latest(tmp_path: Path) -> None:
    """Upgrading a database with rows in every table (several ALTERs per table) works and keeps the rows."""
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as raw:
        raw.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
            "applied_at TIMESTAMPTZ NOT NULL)"
        )
        raw.execute((store.db.MIGRATIONS / "001_initial.sql").read_text(encoding="utf-8"))
        raw.execute("INSERT INTO schema_migrations VALUES (1, '001_initial.sql', now())")
        raw.execute(
            "INSERT INTO sources (source_id, name, url, added_at) VALUES ('s', 'Wire', 'http://x/', now())"
        )
        raw.execute("INSERT INTO sightings VALUES ('a', 's', 'http://x/a', 't', NULL, now(), 'r')")
    with store.connect(db) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == LATEST
        assert con.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'passages' AND column_name = 'embedding'"
        ).fetchone() == ("FLOAT[]",)
        assert con.execute(
            "SELECT name, validators_trusted, dead, not_modified_streak FROM sources"
        ).fetchall() == [("Wire", True, False, 0)]
        assert [e.url for e in store.pending_entries(con, max_attempts=5)] == ["http://x/a"]
    with store.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM story_summary").fetchone() == (0,)


def test_rejected_feed_list_entries_are_recorded_and_replaced_on_the_next_sync(con) -> None:
    from monitor.models import RejectedFeed

    bad = RejectedFeed(2, "Passwords", "file:///etc/passwd", "feed #2 (Passwords): not an http(s) URL")
    store.sync_sources(con, [FEED], [bad])
    rows = con.execute(
        "SELECT name, url, last_status, last_error FROM sources WHERE source_id = ?", [bad.source_id]
    )
    assert rows.fetchall() == [("Passwords", "file:///etc/passwd", "invalid", bad.error)]
    store.sync_sources(con, [FEED], [])  # the user fixed the file
    assert con.execute("SELECT count(*) FROM sources WHERE last_status = 'invalid'").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM sources").fetchone() == (1,)


def test_written_tables_keep_small_row_groups_so_a_checkpoint_rewrites_little(tmp_path: Path) -> None:
    # At DuckDB's default row-group size (122,880) the passages of a 10k-article archive are one
    # row group, rewritten whole by every batch's checkpoint: memory and time grew with the
    # archive. Writers attach with ROW_GROUP_SIZE; each batch's appends must land in groups of
    # at most that many rows, whichever connection wrote them.
    db = tmp_path / "m.duckdb"
    for batch in range(3):
        with store.connect(db) as con:
            start_run(con)
            numbers = range(batch * 1200, (batch + 1) * 1200)
            store_batch(
                con, "r1", [article(n) for n in numbers], [p for n in numbers for p in passages(n)], [], []
            )
    with store.connect(db, read_only=True) as con:
        groups = con.execute(
            "SELECT row_group_id, max(start + count) - min(start) FROM pragma_storage_info('passages') "
            "WHERE column_id = 0 GROUP BY row_group_id"
        ).fetchall()
        (total,) = con.execute("SELECT count(*) FROM passages").fetchone()
    assert total == 7200
    assert len(groups) >= 4
    assert max(rows for _, rows in groups) <= 2048
