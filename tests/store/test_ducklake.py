"""The DuckLake backend on a real PostgreSQL catalog: its schema, exactly-once writes, the write lock.

Every test here runs a real PostgreSQL server on 127.0.0.1 (``tests/postgres.py``; ``.ci/run``
installs it) and DuckLake from its PyPI extension. Worker processes: ``tests/test_ducklake_workers.py``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.pipeline import store_batch
from monitor.store import ducklake
from monitor.store.ducklake import DuckLakeTarget
from tests.rows import article, counts, match, passages, sighted, start_run

MONITOR = [sys.executable, "-m", "monitor.cli"]


def test_the_lake_has_every_table_column_and_view_of_the_duckdb_file(ducklake_target, tmp_path: Path) -> None:
    with store.connect(tmp_path / "m.duckdb") as con:
        file_columns = ducklake._columns(con)
        file_views = {
            r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
    with store.connect(ducklake_target) as con:
        lake_columns = ducklake._columns(con)
        lake_views = {
            r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        (embedding_type,) = con.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'passages' AND column_name = 'embedding' "
            "AND database_name = current_database()"
        ).fetchone()
    assert {t: [c[0] for c in cols] for t, cols in lake_columns.items()} == {
        t: [c[0] for c in cols] for t, cols in file_columns.items()
    }
    assert lake_columns["articles"] == file_columns["articles"]
    assert len(file_columns) >= 18 and lake_views == file_views and "story_summary" in lake_views
    assert embedding_type == "FLOAT[]"


def test_opening_a_migrated_lake_again_applies_nothing(ducklake_target) -> None:
    with store.connect(ducklake_target) as con:
        first = con.execute("SELECT count(*) FROM schema_migrations").fetchone()
    with store.connect(ducklake_target) as con:
        assert ducklake.migrate(con, store.db.migration_names()) == []
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone() == first
    with store.connect(ducklake_target, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)


def test_a_batch_written_twice_to_the_lake_is_stored_once(ducklake_target) -> None:
    with store.connect(ducklake_target) as con:
        sighted(con, 1, 2)
        run = start_run(con)
        args = ([article(1), article(2)], passages(1) + passages(2), [match(1)], [])
        first = store_batch(con, run, *args)
        again = store_batch(con, run, *args)
        assert first == {"articles": 2, "aliases": 0, "stories": 2, "passages": 4, "matches": 1, "alerts": 1}
        assert set(again.values()) == {0}
        assert counts(con) == {
            "articles": 2, "passages": 4, "matches": 1, "alerts": 1, "page_failures": 0, "sightings": 2,
        }  # fmt: skip


def test_a_write_window_waits_for_the_one_in_progress_and_names_its_holder(ducklake_target) -> None:
    with store.connect(ducklake_target):
        pass  # migrated
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.connect(ducklake_target):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        busy = pytest.raises(store.DatabaseBusy, match=r"write lock is held by monitor pid \d+")
        with busy, store.connect(ducklake_target, lock_timeout_s=0.3):
            pass
        with store.connect(ducklake_target, read_only=True) as con:  # readers never wait
            assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)
    finally:
        release.set()
        holder.join()
    with store.connect(ducklake_target, lock_timeout_s=5) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)


def _write_at_the_barrier(
    target: DuckLakeTarget, numbers: list[int], copy_of: int, barrier: Any
) -> dict[str, int]:
    """Open a write window, wait (up to 3 s) for the other writer to be inside one too, then write."""
    from dataclasses import replace

    from monitor.stories import text_hash

    batch = [replace(article(n), text_hash=text_hash(article(n).text)) for n in numbers]
    source = article(copy_of)  # the same text under another URL: a syndicated copy
    copy = replace(article(100 + copy_of), text=source.text, text_hash=text_hash(source.text))
    with store.connect(target, lock_timeout_s=60) as con:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=3)  # without the write lock, both writers are in here at once
        return store_batch(con, f"run-{os.getpid()}", [*batch, copy],
                           [p for n in [*numbers, 100 + copy_of] for p in passages(n)],
                           [match(n) for n in numbers], [])  # fmt: skip


def test_two_processes_writing_overlapping_batches_at_the_same_moment_store_each_article_once(
    ducklake_target,
) -> None:
    import multiprocessing

    with store.connect(ducklake_target):
        pass  # migrated before the race, as the first worker's first window does
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        results = pool.starmap(
            _write_at_the_barrier,
            [(ducklake_target, [1, 2, 3], 4, barrier), (ducklake_target, [3, 4, 5], 1, barrier)],
        )
    with store.connect(ducklake_target, read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT article_id FROM articles").fetchall()]
        (texts,) = con.execute("SELECT count(DISTINCT text_hash) FROM articles").fetchone()
        (aliases,) = con.execute("SELECT count(*) FROM article_aliases").fetchone()
        alerts = con.execute(
            "SELECT a.story_id, al.topic_id, count(*) FROM alerts al JOIN articles a USING (article_id) GROUP BY ALL"
        ).fetchall()
        (passage_rows,) = con.execute("SELECT count(*) FROM passages").fetchone()
        alias_ids = [r[0] for r in con.execute("SELECT alias_id FROM article_aliases").fetchall()]
    # Seven URLs, five texts: each URL is stored once, as an article or as an alias of one.
    urls = {article(n).article_id for n in (1, 2, 3, 4, 5, 101, 104)}
    assert sorted(ids + alias_ids) == sorted(urls)
    assert texts == len(ids) == 5 and aliases == 2
    assert passage_rows == 2 * 5
    # Matches come with 1-5; the one of whichever URL became an alias goes: four stories, one alert each.
    assert len(alerts) == 4 and all(n == 1 for *_, n in alerts)
    assert sum(r["articles"] for r in results) == 5


def test_maintenance_compacts_the_lake_and_exports_finished_days(ducklake_target, tmp_path: Path) -> None:
    from datetime import timedelta

    from monitor.config import Settings
    from monitor.maintenance import run_maintenance

    with store.connect(ducklake_target) as con:
        sighted(con, 1, 2)
        store_batch(con, start_run(con), [article(1), article(2)], passages(1) + passages(2), [match(1)], [])
        # The rows' articles were fetched on 2026-11-20 (tests/rows.py): a finished day to export.
    settings = Settings(
        db=tmp_path / "unused.duckdb", store="ducklake", ducklake_catalog=ducklake_target.catalog,
        ducklake_data=ducklake_target.data, export_dir=tmp_path / "exports",
    )  # fmt: skip
    report = run_maintenance(settings)
    assert report.refresh is None  # a lake has no read copy
    exported = {(table, rows) for _, table, rows in report.exported}
    assert ("articles", 2) in exported
    assert list((tmp_path / "exports" / "articles").glob("day=*/articles.parquet"))
    assert timedelta(0) <= timedelta(seconds=report.seconds["checkpoint_vacuum_s"]) < timedelta(seconds=60)


def test_a_lake_on_an_s3_bucket_stores_a_batch_once_and_keeps_its_files_in_the_bucket(
    postgres, object_store, tmp_path: Path
) -> None:
    from monitor.config import Settings
    from monitor.maintenance import run_maintenance

    bucket = object_store.create_bucket("lake-batch")
    settings = Settings(
        db=tmp_path / "unused.duckdb", store="ducklake", ducklake_catalog=postgres.create_database("lake_s3"),
        ducklake_data=f"s3://{bucket}/monitor/", s3_endpoint=object_store.url, s3_key_id="monitor-test-key",
        s3_secret="monitor-test-secret", export_dir=tmp_path / "exports",
    )  # fmt: skip
    target = settings.store_target
    assert isinstance(target, DuckLakeTarget) and target.s3 == object_store.access()
    assert "monitor-test-secret" not in repr(target) + str(target)
    with store.connect(target) as con:
        sighted(con, 1, 2)
        run = start_run(con)
        args = ([article(1), article(2)], passages(1) + passages(2), [match(1)], [])
        assert store_batch(con, run, *args)["articles"] == 2
        assert set(store_batch(con, run, *args).values()) == {0}
    report = run_maintenance(settings)  # DuckLake's CHECKPOINT flushes inlined rows to Parquet files
    assert ("articles", 2) in {(table, rows) for _, table, rows in report.exported}
    keys = object_store.keys(bucket, "monitor/")
    assert any(k.startswith("monitor/main/passages/") and k.endswith(".parquet") for k in keys), keys
    with store.connect(target, read_only=True) as con:
        assert counts(con) == {
            "articles": 2, "passages": 4, "matches": 1, "alerts": 1, "page_failures": 0, "sightings": 2,
        }  # fmt: skip
        (vector_dims,) = con.execute("SELECT min(len(embedding)) FROM passages").fetchone()
        assert vector_dims == 384
    # The only local Parquet files are maintenance's day exports.
    assert all("exports" in p.relative_to(tmp_path).parts for p in tmp_path.glob("**/*.parquet"))


def test_s3_keys_with_quotes_reach_duckdb_as_literals_and_the_secret_is_scoped_to_the_data_path(
    postgres, object_store
) -> None:
    from dataclasses import replace

    bucket = object_store.create_bucket("lake-quotes")
    access = replace(object_store.access(), key_id="o'key", secret="it's'); DROP TABLE x; --")
    target = DuckLakeTarget(postgres.create_database("lake_quotes"), f"s3://{bucket}/q/", access)
    con = ducklake.attach(target)
    try:
        secrets = con.execute("SELECT name, type, persistent, scope FROM duckdb_secrets()").fetchall()
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(100)")  # above the inlining limit
        assert con.execute("SELECT sum(i) FROM t").fetchone() == (4950,)
    finally:
        con.close()
    assert secrets == [("monitor_lake_s3", "s3", False, [f"s3://{bucket}/q/"])]
    assert any(k.startswith("q/main/t/") for k in object_store.keys(bucket))
