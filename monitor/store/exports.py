"""Daily Parquet exports of new articles and matches, each day written once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from monitor.store.db import insert_new, now_utc

# Each export: the table's rows of one UTC day, by the column that says when they arrived.
EXPORTS = {
    "articles": ("articles", "fetched_at"),
    "matches": ("matches", "matched_at"),
}


def days_to_export(con: duckdb.DuckDBPyConnection, today: date) -> list[tuple[date, str]]:
    """Finished days (before today) with rows not yet exported, per table: ``(day, name)`` oldest first."""
    wanted: list[tuple[date, str]] = []
    for name, (table, column) in EXPORTS.items():
        day = f"CAST(timezone('UTC', {column}) AS DATE)"  # table and column are the constants above
        rows = con.execute(
            f"SELECT DISTINCT {day} AS day FROM {table} WHERE {day} < ? AND NOT EXISTS "
            f"(SELECT 1 FROM exports e WHERE e.table_name = ? AND e.day = {day}) ORDER BY day",
            [today, name],
        ).fetchall()
        wanted += [(r[0], name) for r in rows]
    return sorted(wanted)


def export_day(con: duckdb.DuckDBPyConnection, day: date, name: str, root: Path) -> tuple[Path, int]:
    """Write one day of a table to ``<root>/<name>/day=YYYY-MM-DD/<name>.parquet`` and record it.

    Returns:
        The file written and its row count.
    """
    table, column = EXPORTS[name]
    out = root / name / f"day={day.isoformat()}" / f"{name}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    select = f"SELECT * FROM {table} WHERE CAST(timezone('UTC', {column}) AS DATE) = $day"  # constants above
    (rows,) = con.execute(f"SELECT count(*) FROM ({select})", {"day": day}).fetchone() or (0,)
    # COPY takes no parameters in its target, so the (our own, derived) path is quoted by DuckDB's rules.
    quoted = str(tmp).replace("'", "''")
    con.execute(f"COPY ({select}) TO '{quoted}' (FORMAT parquet, COMPRESSION zstd)", {"day": day})
    tmp.replace(out)
    insert_new(
        con,
        "exports",
        ["day", "table_name"],
        "SELECT ?::DATE AS day, ?::VARCHAR AS table_name, ?::VARCHAR AS path, ?::BIGINT AS rows, "
        "?::TIMESTAMPTZ AS exported_at",
        [day, name, str(out), rows, now_utc()],
    )
    return out, int(rows)
