"""Daily upkeep of a store: checkpoint and vacuum, a fresh read copy, and Parquet exports of finished days."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from monitor import store
from monitor.config import Settings
from monitor.store import exports
from monitor.store.readcopy import Refresh, refresh_read_copy


@dataclass
class MaintenanceReport:
    """What one maintenance run did."""

    seconds: dict[str, float] = field(default_factory=dict)
    exported: list[tuple[str, str, int]] = field(default_factory=list)  # (day, table, rows)
    refresh: Refresh | None = None


def export_root(settings: Settings) -> Path:
    """Where daily Parquet exports go: ``MONITOR_EXPORT_DIR``, else ``exports/`` beside the database."""
    return settings.export_dir or settings.db.parent / "exports"


def run_maintenance(settings: Settings, progress: Callable[[str], None] | None = None) -> MaintenanceReport:
    """Checkpoint and vacuum the live database, export finished days to Parquet, refresh the read copy.

    Holds the writer lease throughout, so it never interleaves with an ingest run.

    Raises:
        WriterBusy: another writer held the database past the lock timeout.
    """
    report = MaintenanceReport()
    say = progress or (lambda _line: None)
    with store.writer_lease(settings.store_target, "maintenance", settings.db_lock_timeout_s, on_wait=say):
        started = time.monotonic()
        with store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s) as con:
            con.execute("CHECKPOINT")
            if settings.store == "duckdb":  # DuckLake keeps its statistics in the catalog
                con.execute("VACUUM ANALYZE")  # fresh statistics for the analysts' query plans
        report.seconds["checkpoint_vacuum_s"] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        root = export_root(settings)
        with store.connect(settings.store_target, lock_timeout_s=settings.db_lock_timeout_s) as con:
            for day, name in exports.days_to_export(con, store.now_utc().date()):
                path, rows = exports.export_day(con, day, name, root)
                report.exported.append((day.isoformat(), name, rows))
                say(f"exported {rows} {name} of {day} to {path}")
        report.seconds["export_s"] = round(time.monotonic() - started, 3)
        if settings.read_copy and settings.store == "duckdb":  # DuckLake's readers never block
            report.refresh = refresh_read_copy(
                settings.db, settings.db_lock_timeout_s, fts=settings.fts_index
            )
            report.seconds["read_copy_s"] = report.refresh.seconds
            say(f"read copy {report.refresh.path} refreshed in {report.refresh.seconds:.1f} s")
    return report
